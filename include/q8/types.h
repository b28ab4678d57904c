/* q8 — types shared by the public API and the vendorable kernels.
 *
 * This header depends on nothing but the C standard library, so a runtime can
 * copy kernels/ together with include/q8/types.h and include/q8/kernels.h. */
#ifndef Q8_TYPES_H
#define Q8_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum q8_status {
  Q8_OK = 0,
  Q8_ERR_NULL = 1,        /* a required pointer is NULL */
  Q8_ERR_ARG = 2,         /* a dimension, stride, enum or option is invalid */
  Q8_ERR_SCALE = 3,       /* a scale is zero, negative, NaN or infinite */
  Q8_ERR_ZERO_POINT = 4,  /* a zero point or clamp bound is outside its type */
  Q8_ERR_OVERFLOW = 5,    /* the int32 accumulator could overflow (K, bias) */
  Q8_ERR_UNSUPPORTED = 6, /* valid request that q8 does not implement */
  Q8_ERR_ISA = 7,         /* unknown ISA name, or one this CPU/OS cannot run */
  Q8_ERR_NOMEM = 8,       /* allocation failed */
  Q8_ERR_INTERNAL = 9,    /* a bug in q8: please report it */
  Q8_ERR_IO = 10,         /* a file is missing or cannot be read */
  Q8_ERR_FORMAT = 11      /* a model or tensor file is corrupt or inconsistent */
} q8_status;

typedef enum q8_dtype {
  Q8_INT8 = 1,
  Q8_UINT8 = 2,
  Q8_INT32 = 3,
  Q8_FLOAT32 = 4
} q8_dtype;

/* How an int32 accumulator becomes int8/uint8 (see DESIGN.md, numeric contract). */
typedef enum q8_requant_mode {
  /* TFLite reference: SaturatingRoundingDoublingHighMul by a Q31 multiplier
   * (ties toward +infinity), then RoundingDivideByPOT (ties away from zero).
   * Two roundings: 5 * 0.25 gives 2 here, 1 in the other modes. */
  Q8_REQUANT_GEMMLOWP = 0,
  /* ruy / TFLite single rounding: (acc * m + 2^(s-1)) >> s in 64 bits,
   * s = 31 - shift. One rounding, ties toward +infinity. */
  Q8_REQUANT_SINGLE = 1,
  /* ONNX QLinear*, XNNPACK, FBGEMM, oneDNN: round_half_even(float(acc) * scale). */
  Q8_REQUANT_FP32 = 2
} q8_requant_mode;

/* Rounding of float -> integer in quantize. */
typedef enum q8_rounding {
  Q8_ROUND_HALF_AWAY = 0, /* TFLite: 2.5 -> 3, -2.5 -> -3 */
  Q8_ROUND_HALF_EVEN = 1  /* ONNX, PyTorch: 2.5 -> 2, 3.5 -> 4 */
} q8_rounding;

/* Whether quantize divides by the scale or multiplies by its float reciprocal;
 * the two differ in the last bit for some inputs, so a profile fixes one. */
typedef enum q8_scale_op {
  Q8_SCALE_DIVIDE = 0,    /* TFLite runtime, ONNX: x / scale */
  Q8_SCALE_RECIPROCAL = 1 /* TFLite converter, PyTorch: x * (1.0f / scale) */
} q8_scale_op;

/* Requantization parameters, per tensor (channels == 1) or per channel.
 * The channel of element i of an array is (i / inner) % channels, where
 * `inner` is given with the array (1 for a row of a GEMM output or NHWC data). */
typedef struct q8_requant_params {
  q8_requant_mode mode;
  q8_dtype out_dtype;        /* Q8_INT8 or Q8_UINT8 */
  int32_t zero_point;        /* output zero point, within out_dtype */
  int32_t qmin, qmax;        /* clamp, within out_dtype, qmin <= qmax */
  size_t channels;           /* >= 1 */
  const int32_t *multiplier; /* gemmlowp, single: Q31 mantissa in [2^30, 2^31) or 0 */
  const int32_t *shift;      /* gemmlowp, single: TFLite convention, > 0 shifts left; [-31, 30] */
  const float *scale;        /* fp32: finite, >= 0 */
  /* fp32 only, a hint to kernels (false: none; leave it false unless you can
   * prove it): the upper clamp to qmax - zero_point guards nothing but the
   * float-to-int conversion, as qmax is the output type's maximum and every
   * |accumulator| x its scale < 2^30, so a kernel whose narrowing saturates
   * may skip it. q8's GEMM and conv plans set it on their own parameters. */
  bool fp32_clamp_free;
} q8_requant_params;

/* Quantization parameters of an int8/uint8 tensor, per tensor or per channel. */
typedef struct q8_quant_params {
  q8_dtype dtype;            /* Q8_INT8 or Q8_UINT8 */
  size_t channels;           /* >= 1 */
  const float *scale;        /* `channels` entries, finite and > 0 */
  const int32_t *zero_point; /* `channels` entries within dtype, or NULL for all 0 */
} q8_quant_params;

#ifdef __cplusplus
}
#endif
#endif
