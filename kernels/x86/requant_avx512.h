/* AVX-512 requantization epilogue: int32 accumulators -> int8/uint8, the three
 * modes of kernels/ref/requantize.c, bit for bit.
 *
 * Generic over 16 output columns (one __m512i of int32, lane i = column i) with
 * a lane mask for column tails, so any AVX-512 kernel (GEMM, depthwise) can use
 * it:
 *
 *   q8_rq512 p;
 *   q8_rq512_init(&p, rq, col, lanes);     // once per 16 columns of a tile
 *   // per mode, chosen outside the rows:
 *   z = q8_rq512_gemmlowp(&p, acc);        // or q8_rq512_single(&p, acc), or
 *   z = q8_rq512_fp32_upper(acc, p.scale, fhi);
 *   b = q8_rq512_pack4(z0, z1, z2, z3, ...) // four vectors -> 64 output bytes
 *
 * `col` is the first column of the 16 relative to the arrays of rq (per-channel
 * arrays are read at [col, col + 16) under `lanes`, never past them; per-tensor
 * rq, channels == 1, broadcasts element 0). gemmlowp and single return the
 * final value, already clamped to [qmin, qmax], as int32 lanes; fp32 leaves
 * the zero point and the lower clamp to q8_rq512_pack4.
 *
 * Each function carries its own target attribute (AVX-512 F/BW/DQ/VL), so the
 * header compiles without -m flags and inlines into any kernel compiled for a
 * superset of those features. */
#ifndef Q8_KERNELS_X86_REQUANT_AVX512_H
#define Q8_KERNELS_X86_REQUANT_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/kernels.h"

#define Q8_RQ512_FN \
  static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl")))

typedef struct q8_rq512 {
  /* gemmlowp: m0 = multiplier (even lanes' value in each 64-bit lane),
   *   m1 = odd lanes' multiplier moved down, left/right = positive and negative
   *   parts of the shift, rmask = 2^right - 1, rhalf = rmask >> 1.
   * single: m0, m1 as above, s0/s1 = total shift 31 - shift of even/odd lanes
   *   as 64-bit counts, r0/r1 = 2^(s-1) as 64-bit. */
  __m512i m0, m1, a, b, c, d;
  __m512 scale;                /* fp32 */
  __m512i lo, hi;              /* int32 clamp qmin - zp, qmax - zp */
  __m512i lo64, hi64;          /* the same as 64-bit lanes (single) */
  __m512i zp;
  int left_any;                /* gemmlowp: some lane shifts left */
  int min_mult_any;            /* gemmlowp: some lane's multiplier is INT32_MIN */
} q8_rq512;

/* The lanes of vector v (columns [16 v, 16 v + 16)) that hold one of a
 * tile's first nr columns. */
Q8_RQ512_FN __mmask16 q8_rq512_lane_mask(size_t nr, int v) {
  const size_t lo = (size_t)v * 16;
  if (nr >= lo + 16) return 0xFFFF;
  if (nr <= lo) return 0;
  return (__mmask16)((1u << (nr - lo)) - 1u);
}

/* Per-channel int32 array at [col, col + 16) under lanes, or element 0 broadcast. */
Q8_RQ512_FN __m512i q8_rq512_load_i32(const int32_t *v, size_t channels, size_t col,
                                      __mmask16 lanes) {
  if (channels == 1) return _mm512_set1_epi32(v[0]);
  return _mm512_maskz_loadu_epi32(lanes, v + col);
}

Q8_RQ512_FN void q8_rq512_init(q8_rq512 *p, const q8_requant_params *rq, size_t col,
                               __mmask16 lanes) {
  const int32_t zp = rq->zero_point;
  p->zp = _mm512_set1_epi32(zp);
  p->lo = _mm512_set1_epi32(rq->qmin - zp);
  p->hi = _mm512_set1_epi32(rq->qmax - zp);
  p->lo64 = _mm512_set1_epi64((int64_t)rq->qmin - zp);
  p->hi64 = _mm512_set1_epi64((int64_t)rq->qmax - zp);
  p->left_any = 0;
  p->min_mult_any = 0;
  const __m512i zero = _mm512_setzero_si512();
  p->m0 = p->m1 = p->a = p->b = p->c = p->d = zero;
  p->scale = _mm512_setzero_ps();
  switch (rq->mode) {
    case Q8_REQUANT_GEMMLOWP: {
      const __m512i m = q8_rq512_load_i32(rq->multiplier, rq->channels, col, lanes);
      const __m512i shift = q8_rq512_load_i32(rq->shift, rq->channels, col, lanes);
      const __m512i left = _mm512_max_epi32(shift, zero);
      const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
      const __m512i rmask =
          _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), right), _mm512_set1_epi32(1));
      p->m0 = m;
      p->m1 = _mm512_srli_epi64(m, 32);
      p->a = left;
      p->b = right;
      p->c = rmask;
      p->d = _mm512_srli_epi32(rmask, 1);
      p->left_any = _mm512_test_epi32_mask(left, left) != 0;
      p->min_mult_any = _mm512_cmpeq_epi32_mask(m, _mm512_set1_epi32(INT32_MIN)) != 0;
      break;
    }
    case Q8_REQUANT_SINGLE: {
      const __m512i m = q8_rq512_load_i32(rq->multiplier, rq->channels, col, lanes);
      const __m512i shift = q8_rq512_load_i32(rq->shift, rq->channels, col, lanes);
      /* Total shift in [1, 62]; masked-off lanes get 31 (harmless). */
      const __m512i s = _mm512_sub_epi32(_mm512_set1_epi32(31), shift);
      const __m512i s0 = _mm512_and_si512(s, _mm512_set1_epi64(0xffffffff));
      const __m512i s1 = _mm512_srli_epi64(s, 32);
      const __m512i one = _mm512_set1_epi64(1);
      p->m0 = m;
      p->m1 = _mm512_srli_epi64(m, 32);
      p->a = s0;
      p->b = s1;
      p->c = _mm512_sllv_epi64(one, _mm512_sub_epi64(s0, one));
      p->d = _mm512_sllv_epi64(one, _mm512_sub_epi64(s1, one));
      break;
    }
    case Q8_REQUANT_FP32:
    default:
      if (rq->channels == 1) {
        p->scale = _mm512_set1_ps(rq->scale[0]);
      } else {
        p->scale = _mm512_maskz_loadu_ps(lanes, rq->scale + col);
      }
      break;
  }
}

/* Clamp to [qmin - zp, qmax - zp], then add zp: never wraps. */
Q8_RQ512_FN __m512i q8_rq512_finish(const q8_rq512 *p, __m512i v) {
  v = _mm512_min_epi32(_mm512_max_epi32(v, p->lo), p->hi);
  return _mm512_add_epi32(v, p->zp);
}

/* gemmlowp: saturating x * 2^left, SaturatingRoundingDoublingHighMul, then
 * RoundingDivideByPOT (ties away from zero). */
Q8_RQ512_FN __m512i q8_rq512_gemmlowp(const q8_rq512 *p, __m512i acc) {
  __m512i x = acc;
  if (p->left_any) {
    const __m512i shifted = _mm512_sllv_epi32(acc, p->a);
    const __mmask16 ovf = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(shifted, p->a), acc);
    /* acc < 0 -> INT32_MIN, else INT32_MAX */
    const __m512i sat = _mm512_xor_si512(_mm512_srai_epi32(acc, 31), _mm512_set1_epi32(INT32_MAX));
    x = _mm512_mask_mov_epi32(shifted, ovf, sat);
  }
  /* SRDHM: with the nudge, gemmlowp's truncating division of ab + nudge by
   * 2^31 equals floor((ab + 2^30) / 2^31) for either sign of ab. */
  const __m512i half = _mm512_set1_epi64((int64_t)1 << 30);
  const __m512i p0 = _mm512_add_epi64(_mm512_mul_epi32(x, p->m0), half);
  const __m512i p1 = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), p->m1), half);
  __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(p0, 31), _mm512_slli_epi64(p1, 1));
  /* Only INT32_MIN * INT32_MIN gives 2^31, which wrapped to INT32_MIN (no
   * other product reaches INT32_MIN): saturate it to INT32_MAX. Valid
   * multipliers are >= 0, so this is off the common path. */
  if (p->min_mult_any) {
    const __m512i int_min = _mm512_set1_epi32(INT32_MIN);
    h = _mm512_mask_sub_epi32(h, _mm512_cmpeq_epi32_mask(h, int_min), h, _mm512_set1_epi32(1));
  }
  /* RoundingDivideByPOT */
  const __m512i rem = _mm512_and_si512(h, p->c);
  const __m512i thr = _mm512_add_epi32(p->d, _mm512_srli_epi32(h, 31));
  __m512i q = _mm512_srav_epi32(h, p->b);
  q = _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, _mm512_set1_epi32(1));
  return q8_rq512_finish(p, q);
}

/* single: (acc * m + 2^(s-1)) >> s in 64 bits, clamped in 64 bits. */
Q8_RQ512_FN __m512i q8_rq512_single(const q8_rq512 *p, __m512i acc) {
  __m512i e = _mm512_add_epi64(_mm512_mul_epi32(acc, p->m0), p->c);
  __m512i o = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), p->m1), p->d);
  e = _mm512_srav_epi64(e, p->a);
  o = _mm512_srav_epi64(o, p->b);
  e = _mm512_min_epi64(_mm512_max_epi64(e, p->lo64), p->hi64);
  o = _mm512_min_epi64(_mm512_max_epi64(o, p->lo64), p->hi64);
  const __m512i v = _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32));
  return _mm512_add_epi32(v, p->zp);
}

/* fp32 without the zero point and the lower bound, for q8_rq512_pack4:
 * float(acc) * scale, at most qmax - zp (an integer, so clamping before
 * rounding is exact; and no positive overflow of the conversion), rounded
 * half to even. Below the int32 range the conversion gives INT32_MIN, which
 * stays below qmin through the saturating steps of q8_rq512_pack4. */
Q8_RQ512_FN __m512i q8_rq512_fp32_upper(__m512i acc, __m512 scale, __m512 fhi) {
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
  return _mm512_cvtps_epi32(_mm512_min_ps(v, fhi));
}

/* q8_rq512_fp32_upper without the clamp, where it guards nothing but the
 * conversion and that cannot overflow (qmax the type's maximum, |float(acc)
 * * scale| < 2^30: q8_requant_params.fp32_clamp_free): what lies above qmax - zp
 * saturates to qmax in q8_rq512_pack4 as the clamp would have left it. */
Q8_RQ512_FN __m512i q8_rq512_fp32_unclamped(__m512i acc, __m512 scale) {
  return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale));
}

/* Narrows four vectors of int32 to 64 output bytes with saturating packs.
 * fp32 (values from q8_rq512_fp32_upper): adds zp16 (the zero point, 16-bit
 * lanes) with saturation and raises the bytes to qmin8 (qmin, 8-bit lanes):
 * exact, as every step is monotonic and clamps only values the reference
 * clamps too. Otherwise the values are final (within the output type) and the
 * packs are exact. Cheaper than four vpmovdb, and no float lower clamp.
 * Byte order is the packs' lane interleave: the 16-byte lane i holds 4 bytes
 * each of z0, z1, z2, z3, their lanes i. */
Q8_RQ512_FN __m512i q8_rq512_pack4(__m512i z0, __m512i z1, __m512i z2, __m512i z3, int fp32,
                                   __m512i zp16, __m512i qmin8, q8_dtype out_dtype) {
  __m512i w01 = _mm512_packs_epi32(z0, z1), w23 = _mm512_packs_epi32(z2, z3);
  if (fp32) {
    w01 = _mm512_adds_epi16(w01, zp16);
    w23 = _mm512_adds_epi16(w23, zp16);
  }
  if (out_dtype == Q8_UINT8) {
    const __m512i b = _mm512_packus_epi16(w01, w23);
    return fp32 ? _mm512_max_epu8(b, qmin8) : b;
  }
  const __m512i b = _mm512_packs_epi16(w01, w23);
  return fp32 ? _mm512_max_epi8(b, qmin8) : b;
}

#endif
