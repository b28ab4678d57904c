/* NEON requantization epilogue: int32 accumulators -> int8/uint8, the three
 * modes of kernels/ref/requantize.c, bit for bit. Plain Armv8.0 AArch64 NEON
 * (no target attribute needed), so any Arm kernel can include it.
 *
 * Generic over 4 output channels (one int32x4_t, lane i = channel col + i)
 * with a lane count for channel tails, so it serves GEMM tiles of any NR and
 * depthwise rows of any number of channels:
 *
 *   q8_rqn p;
 *   q8_rqn_init(&p, rq, col, lanes);       // once per 4 channels (lanes 1..4)
 *   int32x4_t q = q8_rqn_apply(&p, rq->mode, acc);  // or the mode's own function
 *   uint8x16_t b = q8_rqn_narrow16(q0, q1, q2, q3); // 16 results -> 16 bytes
 *   q8_rqn_store(dst, n, b);               // n <= 16 bytes, never past them
 *
 * or, for N accumulators in a row, q8_rqn_requantize_store(rq, col, acc, n, dst).
 *
 * `col` is the first channel relative to the arrays of rq: per-channel arrays
 * are read at [col, col + lanes), never past; per-tensor rq (channels == 1)
 * broadcasts element 0. The apply functions return the final value, clamped to
 * [qmin, qmax], as int32 lanes, so narrowing only keeps the low byte. */
#ifndef Q8_KERNELS_ARM_REQUANT_NEON_H
#define Q8_KERNELS_ARM_REQUANT_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "q8/kernels.h"

#define Q8_RQN_FN static inline __attribute__((always_inline))

typedef struct q8_rqn {
  int32x4_t mult;    /* gemmlowp, single: Q31 multiplier */
  int32x4_t left;    /* gemmlowp: positive part of the shift */
  int32x4_t right;   /* gemmlowp: minus the negative part (a shift count for vrshl) */
  int64x2_t total;   /* single: -(31 - shift) of lanes 0,1 (vrshl counts) */
  int64x2_t total_hi;/* single: the same for lanes 2,3 */
  float32x4_t scale; /* fp32 */
  float32x4_t flo, fhi; /* fp32 clamp qmin - zp, qmax - zp */
  int32x4_t lo, hi;  /* int32 clamp qmin - zp, qmax - zp */
  int32x4_t zp;
} q8_rqn;

/* Per-channel int32 array at [col, col + lanes), lanes past them 0; or element 0 broadcast. */
Q8_RQN_FN int32x4_t q8_rqn_load_i32(const int32_t *v, size_t channels, size_t col, size_t lanes) {
  if (channels == 1) return vdupq_n_s32(v[0]);
  if (lanes >= 4) return vld1q_s32(v + col);
  int32_t tmp[4] = {0, 0, 0, 0};
  memcpy(tmp, v + col, lanes * sizeof(int32_t));
  return vld1q_s32(tmp);
}

Q8_RQN_FN void q8_rqn_init(q8_rqn *p, const q8_requant_params *rq, size_t col, size_t lanes) {
  const int32_t zp = rq->zero_point;
  const int32x4_t zero = vdupq_n_s32(0);
  p->zp = vdupq_n_s32(zp);
  p->lo = vdupq_n_s32(rq->qmin - zp);
  p->hi = vdupq_n_s32(rq->qmax - zp);
  p->flo = vdupq_n_f32((float)(rq->qmin - zp));
  p->fhi = vdupq_n_f32((float)(rq->qmax - zp));
  p->mult = p->left = p->right = zero;
  p->total = p->total_hi = vdupq_n_s64(0);
  p->scale = vdupq_n_f32(0.0f);
  switch (rq->mode) {
    case Q8_REQUANT_GEMMLOWP: {
      const int32x4_t shift = q8_rqn_load_i32(rq->shift, rq->channels, col, lanes);
      p->mult = q8_rqn_load_i32(rq->multiplier, rq->channels, col, lanes);
      p->left = vmaxq_s32(shift, zero);
      p->right = vminq_s32(shift, zero);
      break;
    }
    case Q8_REQUANT_SINGLE: {
      const int32x4_t shift = q8_rqn_load_i32(rq->shift, rq->channels, col, lanes);
      /* -(31 - shift) in [-62, -1]: a rounding right shift by 31 - shift. */
      const int32x4_t neg_total = vsubq_s32(shift, vdupq_n_s32(31));
      p->mult = q8_rqn_load_i32(rq->multiplier, rq->channels, col, lanes);
      p->total = vmovl_s32(vget_low_s32(neg_total));
      p->total_hi = vmovl_high_s32(neg_total);
      break;
    }
    case Q8_REQUANT_FP32:
    default:
      if (rq->channels == 1) {
        p->scale = vdupq_n_f32(rq->scale[0]);
      } else if (lanes >= 4) {
        p->scale = vld1q_f32(rq->scale + col);
      } else {
        float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(tmp, rq->scale + col, lanes * sizeof(float));
        p->scale = vld1q_f32(tmp);
      }
      break;
  }
}

/* Clamp to [qmin - zp, qmax - zp], then add zp: never wraps. */
Q8_RQN_FN int32x4_t q8_rqn_finish(const q8_rqn *p, int32x4_t v) {
  return vaddq_s32(vminq_s32(vmaxq_s32(v, p->lo), p->hi), p->zp);
}

/* gemmlowp: saturating x * 2^left (sqshl saturates exactly as the reference
 * clamps), SaturatingRoundingDoublingHighMul (sqrdmulh: the same nudge, ties
 * toward +infinity, and INT32_MIN * INT32_MIN saturates to INT32_MAX), then
 * RoundingDivideByPOT. srshl rounds ties toward +infinity; subtracting 1 from
 * a negative value first (when it shifts at all) turns that into ties away
 * from zero. The subtraction saturates, which is harmless: INT32_MIN has no
 * remainder, and INT32_MIN - 1 would round to the same quotient. */
Q8_RQN_FN int32x4_t q8_rqn_gemmlowp(const q8_rqn *p, int32x4_t acc) {
  const int32x4_t x = vqshlq_s32(acc, p->left);
  const int32x4_t h = vqrdmulhq_s32(x, p->mult);
  /* right < 0 exactly when it shifts: the sign bit of h & right is the fix-up. */
  const int32x4_t fixup = vshrq_n_s32(vandq_s32(h, p->right), 31);
  const int32x4_t q = vrshlq_s32(vqaddq_s32(h, fixup), p->right);
  return q8_rqn_finish(p, q);
}

/* single: (acc * m + 2^(s-1)) >> s in 64 bits (srshl rounds exactly so:
 * |acc * m| < 2^62), saturated to int32 (the clamp bounds are well inside),
 * then clamped. */
Q8_RQN_FN int32x4_t q8_rqn_single(const q8_rqn *p, int32x4_t acc) {
  const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(acc), vget_low_s32(p->mult)), p->total);
  const int64x2_t hi = vrshlq_s64(vmull_high_s32(acc, p->mult), p->total_hi);
  return q8_rqn_finish(p, vqmovn_high_s64(vqmovn_s64(lo), hi));
}

/* fp32: float(acc) (scvtf, to nearest even) * scale (one multiply), clamp in
 * float, round half to even (fcvtns), + zp. The clamp makes the conversion
 * exact and the final clamp a no-op. */
Q8_RQN_FN int32x4_t q8_rqn_fp32(const q8_rqn *p, int32x4_t acc) {
  float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), p->scale);
  v = vminq_f32(vmaxq_f32(v, p->flo), p->fhi);
  return vaddq_s32(vcvtnq_s32_f32(v), p->zp);
}

Q8_RQN_FN int32x4_t q8_rqn_apply(const q8_rqn *p, q8_requant_mode mode, int32x4_t acc) {
  switch (mode) {
    case Q8_REQUANT_GEMMLOWP: return q8_rqn_gemmlowp(p, acc);
    case Q8_REQUANT_SINGLE: return q8_rqn_single(p, acc);
    case Q8_REQUANT_FP32:
    default: return q8_rqn_fp32(p, acc);
  }
}

/* 16 clamped results (int8 or uint8 range) -> their low bytes, in order. */
Q8_RQN_FN uint8x16_t q8_rqn_narrow16(int32x4_t q0, int32x4_t q1, int32x4_t q2, int32x4_t q3) {
  const int16x8_t lo = vmovn_high_s32(vmovn_s32(q0), q1);
  const int16x8_t hi = vmovn_high_s32(vmovn_s32(q2), q3);
  return vreinterpretq_u8_s8(vmovn_high_s16(vmovn_s16(lo), hi));
}

/* Stores the first n (<= 16) bytes of b. */
Q8_RQN_FN void q8_rqn_store(void *dst, size_t n, uint8x16_t b) {
  if (n >= 16) {
    vst1q_u8((uint8_t *)dst, b);
  } else {
    uint8_t tmp[16];
    vst1q_u8(tmp, b);
    memcpy(dst, tmp, n);
  }
}

/* Requantizes n accumulators of one row (acc[i / 4] lane i % 4 = channel
 * col + i) and stores n int8/uint8 bytes at dst. acc has ceil(n / 4) vectors. */
Q8_RQN_FN void q8_rqn_requantize_store(const q8_requant_params *rq, size_t col,
                                       const int32x4_t *acc, size_t n, void *dst) {
  unsigned char *out = dst;
  for (size_t i = 0; i < n; i += 16) {
    int32x4_t q[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    const size_t left = n - i < 16 ? n - i : 16;
    for (size_t v = 0; v * 4 < left; ++v) {
      q8_rqn p;
      const size_t lanes = left - v * 4 < 4 ? left - v * 4 : 4;
      q8_rqn_init(&p, rq, col + i + v * 4, lanes);
      q[v] = q8_rqn_apply(&p, rq->mode, acc[i / 4 + v]);
    }
    q8_rqn_store(out + i, left, q8_rqn_narrow16(q[0], q[1], q[2], q[3]));
  }
}

#endif
