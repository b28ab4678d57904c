/* q8 — public C API.
 *
 * Every function returns a q8_status (or cannot fail). On failure,
 * q8_error_detail() returns a message naming the problem (which argument,
 * which channel, which limit) for the calling thread. */
#ifndef Q8_Q8_H
#define Q8_Q8_H

#include <stdbool.h>

#include "q8/kernels.h"
#include "q8/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- basics ------------------------------------------------------------ */
const char *q8_version(void);
/* Short generic text for a status ("invalid argument", ...). Never NULL. */
const char *q8_status_str(q8_status status);
/* Detail of the last failed call on this thread ("" if none). Diagnostic
 * only: valid until the next q8 call on the same thread. */
const char *q8_error_detail(void);

/* ---- numeric profiles ---------------------------------------------------
 * A profile fixes every rounding choice once (DESIGN.md, numeric contract). */
typedef struct q8_profile {
  q8_rounding rounding;   /* quantize: float -> int rounding */
  q8_scale_op scale_op;   /* quantize: divide by scale or multiply by 1/scale */
  q8_requant_mode requant; /* accumulator -> int8 */
} q8_profile;

typedef enum q8_profile_id {
  Q8_PROFILE_TFLITE = 0,  /* half away, divide, gemmlowp */
  Q8_PROFILE_ONNX = 1,    /* half even, divide, fp32 */
  Q8_PROFILE_PYTORCH = 2  /* half even, reciprocal, fp32 */
} q8_profile_id;

q8_profile q8_profile_get(q8_profile_id id);

/* ---- multiplier math ----------------------------------------------------
 * real -> (Q31 mantissa, shift), exactly TFLite's QuantizeMultiplier:
 * real == multiplier * 2^(shift - 31) up to the mantissa's rounding.
 * Limits: real must be finite and >= 0; real < 2^-32 (shift < -31) flushes to
 * (0, 0); real >= 2^30 saturates to (2^31 - 1, 30). */
q8_status q8_multiplier_from_scale(double real, int32_t *multiplier, int32_t *shift);

/* Fills p (and the caller's arrays of `channels` entries: multiplier/shift for
 * gemmlowp and single, scale_out for fp32) from real scales
 * real[c] = input_scale * weight_scale[c] / output_scale. */
q8_status q8_requant_params_init(q8_requant_params *p, q8_requant_mode mode, size_t channels,
                                 float input_scale, const float *weight_scales,
                                 float output_scale, q8_dtype out_dtype, int32_t zero_point,
                                 int32_t qmin, int32_t qmax,
                                 int32_t *multiplier, int32_t *shift, float *scale_out);

/* ---- element-wise ops ---------------------------------------------------
 * Arrays of `count` elements; for per-channel parameters the channel of
 * element i is (i / inner) % channels (NHWC: inner = 1; NCHW axis 1:
 * inner = H * W). inner is ignored for per-tensor parameters. */
q8_status q8_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                      q8_profile profile, void *y);
q8_status q8_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                        float *y);
q8_status q8_requantize(const int32_t *acc, size_t count, size_t inner,
                        const q8_requant_params *p, void *y);

/* ---- GEMM plan ----------------------------------------------------------
 * C[m][n] = requant(bias[n] + sum_k (A[m][k] - a_zero_point) * (W[n][k] - w_zero_point[n]))
 * A: M x K activations (int8 or uint8), W: N x K int8 weights, one row per
 * output channel. Weights are packed at plan creation; the caller's weight,
 * scale and bias arrays may be freed after q8_gemm_plan_create returns. */
typedef struct q8_gemm_desc {
  size_t m, n, k;            /* k <= Q8_GEMM_MAX_K (33025) */
  q8_dtype a_dtype;          /* Q8_INT8 or Q8_UINT8 */
  int32_t a_zero_point;
  float a_scale;             /* needed for requantized output */
  const int8_t *weights;     /* n x k, row stride k */
  size_t w_channels;         /* 1: per-tensor scale, n: per output channel */
  const float *w_scales;     /* w_channels entries (requantized output) */
  const int32_t *w_zero_points; /* n entries, or NULL: symmetric (all 0) */
  const int32_t *bias;       /* n entries, or NULL */
  q8_dtype out_dtype;        /* Q8_INT32, Q8_INT8 or Q8_UINT8 */
  q8_requant_mode requant;   /* for int8/uint8 output */
  float out_scale;
  int32_t out_zero_point;
  bool clamp;                /* false: clamp to out_dtype's range */
  int32_t out_min, out_max;  /* with clamp: fused ReLU/ReLU6 bounds */
  size_t threads;            /* 0: one per physical core (hwloc); results are
                                bit-identical for any thread count */
} q8_gemm_desc;

typedef struct q8_gemm_plan q8_gemm_plan;

q8_status q8_gemm_plan_create(const q8_gemm_desc *desc, q8_gemm_plan **plan);
/* A row stride lda >= k elements; C row stride ldc >= n elements (of out_dtype).
 * No alignment beyond the element type is required (int32 C: 4 bytes). */
q8_status q8_gemm_run(const q8_gemm_plan *plan, const void *a, size_t lda, void *c, size_t ldc);
void q8_gemm_plan_destroy(q8_gemm_plan *plan);
/* Name of the kernel the plan runs (e.g. "q8_gemm_x8s8_1x1c1__ref"). */
const char *q8_gemm_plan_kernel(const q8_gemm_plan *plan);
/* Bytes of packed weights held by the plan. */
size_t q8_gemm_plan_packed_bytes(const q8_gemm_plan *plan);
/* Threads q8_gemm_run uses. */
size_t q8_gemm_plan_threads(const q8_gemm_plan *plan);

/* ---- convolution plan ---------------------------------------------------
 * NHWC int8/uint8 activations, int8 symmetric weights, int32 bias, output
 * int32 or requantized int8/uint8 NHWC [batch][out_h][out_w][out_channels];
 * the arithmetic is q8_conv_ref's (include/q8/kernels.h), with the GEMM's
 * requantization. Weights are repacked at plan creation; the caller's weight,
 * scale and bias arrays may be freed after q8_conv_plan_create returns. */
typedef enum q8_weights_layout {
  /* ONNX Conv: [out_channels][in_channels / groups][kernel_h][kernel_w] */
  Q8_WEIGHTS_OIHW = 0,
  /* TFLite Conv2D, q8's canonical layout: [out_channels][kernel_h][kernel_w][in_channels / groups].
   * (TFLite DepthwiseConv2D's [1][kernel_h][kernel_w][out_channels] is not this.) */
  Q8_WEIGHTS_OHWI = 1
} q8_weights_layout;

typedef struct q8_conv_desc {
  q8_conv_shape shape;       /* sizes, stride, dilation, padding, groups (kernels.h) */
  q8_dtype in_dtype;         /* Q8_INT8 or Q8_UINT8 */
  int32_t in_zero_point;     /* also the value padded positions read */
  float in_scale;            /* needed for requantized output */
  const int8_t *weights;     /* out_channels x kernel_h x kernel_w x in_channels / groups */
  q8_weights_layout w_layout;
  size_t w_channels;         /* 1: per-tensor scale, out_channels: per output channel */
  const float *w_scales;     /* w_channels entries (requantized output) */
  const int32_t *bias;       /* out_channels entries, or NULL */
  q8_dtype out_dtype;        /* Q8_INT32, Q8_INT8 or Q8_UINT8 */
  q8_requant_mode requant;   /* for int8/uint8 output */
  float out_scale;
  int32_t out_zero_point;
  bool clamp;                /* false: clamp to out_dtype's range */
  int32_t out_min, out_max;  /* with clamp: fused ReLU/ReLU6 bounds */
  size_t threads;            /* 0: one per physical core; results are
                                bit-identical for any thread count */
} q8_conv_desc;

typedef struct q8_conv_plan q8_conv_plan;

/* Checks the geometry of a convolution (sizes >= 1 and <= INT32_MAX, stride
 * and dilation >= 1, groups dividing both channel counts, the dilated kernel
 * within the padded input, element counts within size_t) and gives the output
 * extent. out_h, out_w may be NULL. */
q8_status q8_conv_output_shape(const q8_conv_shape *shape, size_t *out_h, size_t *out_w);
q8_status q8_conv_plan_create(const q8_conv_desc *desc, q8_conv_plan **plan);
/* input: dense NHWC of in_dtype; output: dense NHWC of out_dtype. No
 * alignment is required beyond the element type. */
q8_status q8_conv_run(const q8_conv_plan *plan, const void *input, void *output);
void q8_conv_plan_destroy(q8_conv_plan *plan);
/* Name of the algorithm and kernel the plan runs: "gemm:<micro-kernel>" for
 * 1x1 stride-1 unpadded convs (the input is the GEMM's A);
 * "igemm:<micro-kernel>" (e.g. "igemm:q8_gemm_x8s8_8x32c4__avx512vnni") for
 * other dense or grouped convs (indirect GEMM); "igemm+border:<micro-kernel>"
 * where padded border tiles skip their padded taps; "windows:<micro-kernel>"
 * for inputs of few channels (the stems: each output line's input rows are
 * copied once, padded, and each kernel row is one K range); the depthwise
 * kernel's own name for depthwise convs (e.g.
 * "q8_dwconv_x8s8_3x3s1c64__avx512vnni"); "q8_conv_ref" for the reference
 * (Q8_ISA=ref); "" for NULL. */
const char *q8_conv_plan_kernel(const q8_conv_plan *plan);
/* Threads q8_conv_run uses (desc threads, or one per physical core for 0);
 * 0 for NULL. */
size_t q8_conv_plan_threads(const q8_conv_plan *plan);

/* ---- ISA selection ------------------------------------------------------
 * Names: ref, hwy, avx2, avxvnni, avx512vnni, amx, neon, neondot, neoni8mm.
 * By default every operation uses the best kernel the CPU and OS allow.
 * q8_set_isa forces one ISA for the whole process (same as the environment
 * variable Q8_ISA): each operation then uses that ISA's kernel, or the best
 * of the ISAs it builds on (e.g. avx512vnni -> avx2 -> hwy -> ref) where q8
 * has none for it. An unknown name, or one this CPU/OS cannot run, is
 * Q8_ERR_ISA and changes nothing. NULL or "" restores automatic selection.
 * Plans already created keep their kernel. */
q8_status q8_set_isa(const char *name);
/* The forced ISA, or NULL when selection is automatic. */
const char *q8_forced_isa(void);
/* Whether this CPU and OS can run the ISA (false for unknown names); if not
 * and reason is non-NULL, *reason says why. */
bool q8_isa_usable(const char *name, const char **reason);

#ifdef __cplusplus
}
#endif
#endif
