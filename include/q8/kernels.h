/* q8 — the vendorable kernel layer (kernels/).
 *
 * Pure functions of their arguments: no global state, no threads, no dispatch.
 * Arguments are assumed valid (the public API in q8.h validates them); each
 * function states its preconditions. kernels/ref is the specification: every
 * other implementation returns bit-identical results for the same inputs. */
#ifndef Q8_KERNELS_H
#define Q8_KERNELS_H

#include "q8/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest K for which the GEMM accumulator cannot overflow int32 for any input:
 * every product (A - za) * (B - zb) has magnitude <= 255 * 255 = 65025, and
 * 33025 * 65025 = 2147450625 <= INT32_MAX < 33026 * 65025. */
#define Q8_GEMM_MAX_K 33025

/* ---- multiplier math (kernels/ref/multiplier.c) ---------------------------
 * Real multiplier -> (Q31 mantissa, shift) exactly as TFLite's QuantizeMultiplier:
 * frexp, mantissa * 2^31 rounded half away from zero, a mantissa that rounds up
 * to 2^31 is halved with shift + 1, shifts below -31 flush to (0, 0), shifts
 * above 30 saturate to (2^31 - 1, 30). real = multiplier * 2^(shift - 31).
 * Precondition: real >= 0 and finite. real == 0 gives (0, 0). */
void q8_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift);

/* ---- requantization (kernels/ref/requantize.c) ---------------------------- */
/* gemmlowp building blocks, exactly as gemmlowp/TFLite define them. */
int32_t q8_ref_saturating_rounding_doubling_high_mul(int32_t a, int32_t b);
/* Precondition: 0 <= exponent <= 31. Rounds half away from zero. */
int32_t q8_ref_rounding_divide_by_pot(int32_t x, int exponent);
/* One accumulator of channel `channel` -> output value (already clamped). */
int32_t q8_ref_requantize_one(int32_t acc, const q8_requant_params *p, size_t channel);
/* out[i] = requantize(acc[i]) with channel (i / inner) % p->channels.
 * out has p->out_dtype elements. Preconditions: inner >= 1, p valid. */
void q8_ref_requantize(const int32_t *acc, size_t count, size_t inner,
                       const q8_requant_params *p, void *out);

/* ---- quantize / dequantize (kernels/ref/quantize.c) ----------------------- */
/* y = clamp(round(x / scale) + zero_point) (or x * (1/scale), per scale_op),
 * rounding per `rounding`, saturated to the dtype. NaN (also a NaN product 0 * inf) -> zero_point,
 * +Inf -> max, -Inf -> min. */
int32_t q8_ref_quantize_one(float x, float scale, int32_t zero_point, q8_dtype dtype,
                            q8_rounding rounding, q8_scale_op scale_op);
void q8_ref_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                     q8_rounding rounding, q8_scale_op scale_op, void *out);
/* y = scale * (q - zero_point), computed as (float)(q - zero_point) * scale. */
void q8_ref_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                       float *out);

/* ---- GEMM (kernels/ref/gemm.c) ---------------------------------------------
 * acc[i][j] = bias[j] + sum_k (A[i][k] - a_zero_point) * (B[j][k] - b_zero_point[j])
 * exactly in int32. A: m x k, int8 or uint8, row stride lda elements.
 * B: n x k int8, row stride ldb, one row per output channel. b_zero_point and
 * bias: n entries or NULL (0). Output C (row stride ldc elements): int32 acc
 * when rq is NULL, else requantized with channel j of rq (rq->channels is 1 or n).
 * Returns Q8_ERR_OVERFLOW if k > Q8_GEMM_MAX_K or bias + sum leaves int32
 * (C is then partly written), else Q8_OK. */
q8_status q8_ref_gemm(size_t m, size_t n, size_t k,
                      const void *a, size_t lda, q8_dtype a_dtype, int32_t a_zero_point,
                      const int8_t *b, size_t ldb, const int32_t *b_zero_point,
                      const int32_t *bias, const q8_requant_params *rq,
                      void *c, size_t ldc);

/* ---- Highway kernels (kernels/hwy/, C++ behind extern "C") ----------------
 * Same contracts as the q8_ref_ functions of the same name; Highway's dynamic
 * dispatch picks the best target the CPU supports on first call. */
void q8_hwy_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                     q8_rounding rounding, q8_scale_op scale_op, void *out);
void q8_hwy_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                       float *out);
void q8_hwy_requantize(const int32_t *acc, size_t count, size_t inner,
                       const q8_requant_params *p, void *out);
/* Name of the Highway target dynamic dispatch uses now (e.g. "AVX3", "AVX2"). */
const char *q8_hwy_target(void);
/* Targets compiled in and supported by this CPU, best first: writes up to
 * `max` names, returns how many there are. For tests and `qbench info`. */
size_t q8_hwy_supported_targets(const char **names, size_t max);
/* Restrict dispatch to the named target (one of the above), or NULL to undo.
 * Returns 0 on success, -1 for an unknown/unsupported name. Not thread-safe:
 * for tests and benchmarks. */
int q8_hwy_force_target(const char *name);

#ifdef __cplusplus
}
#endif
#endif
