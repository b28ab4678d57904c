/* Reference requantization: int32 accumulator -> int8/uint8, three modes.
 * This file is the specification that every SIMD path must match bit for bit. */
#include <math.h>

#include "q8/kernels.h"

int32_t q8_ref_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  /* The only product whose doubled high half overflows. */
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  /* gemmlowp's nudge, then truncating division: positive ties round up and
   * negative ties toward zero (-1.5 -> -1), i.e. ties toward +infinity, the
   * same as Arm's sqrdmulh. */
  const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
  return (int32_t)((ab + nudge) / (1LL << 31));
}

int32_t q8_ref_rounding_divide_by_pot(int32_t x, int exponent) {
  const int64_t mask = (1LL << exponent) - 1;
  const int64_t remainder = (int64_t)x & mask;
  /* Ties away from zero: negative values need a strictly larger remainder. */
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (int32_t)(((int64_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* gemmlowp: the positive part of the shift is applied before the multiply
 * (TFLite: x * (1 << left_shift)); q8 saturates that product to int32 where
 * TFLite's would overflow, so large left shifts stay defined. */
static int64_t requantize_gemmlowp(int32_t acc, int32_t multiplier, int32_t shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const int32_t shifted = (int32_t)clamp_i64((int64_t)acc * ((int64_t)1 << left), INT32_MIN, INT32_MAX);
  return q8_ref_rounding_divide_by_pot(
      q8_ref_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}

/* single: one rounding of the exact product, ties toward +infinity (floor of x + 1/2).
 * total shift 31 - shift is in [1, 62]; |acc * m| < 2^62, so nothing overflows. */
static int64_t requantize_single(int32_t acc, int32_t multiplier, int32_t shift) {
  const int total = 31 - shift;
  const int64_t rounding = (int64_t)1 << (total - 1);
  return ((int64_t)acc * multiplier + rounding) >> total;
}

/* fp32: float(acc) rounds to nearest even, the product is one float rounding,
 * then half-to-even to integer. Clamping in float before rounding equals
 * clamping after (the bounds are integers) and avoids out-of-range conversion. */
static int64_t requantize_fp32_clamped(int32_t acc, float scale, int32_t lo, int32_t hi) {
  float v = (float)acc * scale;
  if (v < (float)lo) v = (float)lo;
  if (v > (float)hi) v = (float)hi;
  return (int64_t)nearbyintf(v);
}

int32_t q8_ref_requantize_one(int32_t acc, const q8_requant_params *p, size_t channel) {
  const int32_t zp = p->zero_point;
  int64_t value;
  switch (p->mode) {
    case Q8_REQUANT_GEMMLOWP:
      value = requantize_gemmlowp(acc, p->multiplier[channel], p->shift[channel]) + zp;
      break;
    case Q8_REQUANT_SINGLE:
      value = requantize_single(acc, p->multiplier[channel], p->shift[channel]) + zp;
      break;
    case Q8_REQUANT_FP32:
    default:
      value = requantize_fp32_clamped(acc, p->scale[channel], p->qmin - zp, p->qmax - zp) + zp;
      break;
  }
  return (int32_t)clamp_i64(value, p->qmin, p->qmax);
}

void q8_ref_requantize(const int32_t *acc, size_t count, size_t inner,
                       const q8_requant_params *p, void *out) {
  for (size_t i = 0; i < count; ++i) {
    const size_t channel = p->channels == 1 ? 0 : (i / inner) % p->channels;
    const int32_t q = q8_ref_requantize_one(acc[i], p, channel);
    if (p->out_dtype == Q8_UINT8) {
      ((uint8_t *)out)[i] = (uint8_t)q;
    } else {
      ((int8_t *)out)[i] = (int8_t)q;
    }
  }
}
