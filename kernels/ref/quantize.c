/* Reference quantize (float -> int8/uint8) and dequantize (int8/uint8 -> float). */
#include <math.h>

#include "q8/kernels.h"

static int32_t dtype_min(q8_dtype dtype) { return dtype == Q8_UINT8 ? 0 : -128; }
static int32_t dtype_max(q8_dtype dtype) { return dtype == Q8_UINT8 ? 255 : 127; }

int32_t q8_ref_quantize_one(float x, float scale, int32_t zero_point, q8_dtype dtype,
                            q8_rounding rounding, q8_scale_op scale_op) {
  if (isnan(x)) return zero_point;
  /* One float operation, in float: the profile decides which. */
  float v = scale_op == Q8_SCALE_RECIPROCAL ? x * (1.0f / scale) : x / scale;
  /* 0 * (1 / denormal scale) is 0 * inf: NaN, quantized like a NaN input. */
  if (isnan(v)) return zero_point;
  /* Clamp before rounding (same result: the bounds are integers) so that
   * huge values and infinities never reach an out-of-range conversion. */
  const float lo = (float)(dtype_min(dtype) - zero_point);
  const float hi = (float)(dtype_max(dtype) - zero_point);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  const float r = rounding == Q8_ROUND_HALF_AWAY ? roundf(v) : nearbyintf(v);
  return (int32_t)r + zero_point;
}

void q8_ref_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                     q8_rounding rounding, q8_scale_op scale_op, void *out) {
  for (size_t i = 0; i < count; ++i) {
    const size_t c = p->channels == 1 ? 0 : (i / inner) % p->channels;
    const int32_t zp = p->zero_point ? p->zero_point[c] : 0;
    const int32_t q = q8_ref_quantize_one(x[i], p->scale[c], zp, p->dtype, rounding, scale_op);
    if (p->dtype == Q8_UINT8) {
      ((uint8_t *)out)[i] = (uint8_t)q;
    } else {
      ((int8_t *)out)[i] = (int8_t)q;
    }
  }
}

void q8_ref_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                       float *out) {
  for (size_t i = 0; i < count; ++i) {
    const size_t c = p->channels == 1 ? 0 : (i / inner) % p->channels;
    const int32_t zp = p->zero_point ? p->zero_point[c] : 0;
    const int32_t v = p->dtype == Q8_UINT8 ? ((const uint8_t *)q)[i] : ((const int8_t *)q)[i];
    /* v - zp is exact in int32 and in float (|v - zp| <= 510). */
    out[i] = (float)(v - zp) * p->scale[c];
  }
}
