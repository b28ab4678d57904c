/* AVX2 requantization epilogue of the x86 GEMM micro-kernels: 8 int32
 * accumulators (one __m256i, 8 consecutive output columns) -> int8/uint8 in the
 * three modes of kernels/ref/requantize.c, bit for bit.
 *
 * Use: once per tile and group of 8 columns, q8_rq8_avx2_prepare() loads the
 * (per-tensor broadcast or per-channel) parameters of columns
 * [col0, col0 + count); then, per row, q8_rq8_avx2_apply() turns 8 accumulators
 * into the final values (already clamped to [qmin, qmax], as int32 lanes) and
 * q8_rq_avx2_store16/8() narrow and store them.
 *
 * Every function carries target("avx2,fma") and is always inlined, so it can be
 * used from functions compiled for AVX2 or any superset (AVX-VNNI, AVX-512)
 * without raising the baseline of the translation unit. */
#ifndef Q8_KERNELS_X86_REQUANT_AVX2_H
#define Q8_KERNELS_X86_REQUANT_AVX2_H

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "q8/kernels.h"

#define Q8_AVX2_TARGET __attribute__((target("avx2,fma")))
#define Q8_RQ_AVX2_INLINE static inline __attribute__((always_inline)) Q8_AVX2_TARGET

/* Parameters of 8 columns, prepared once per tile. */
typedef struct q8_rq8_avx2 {
  __m256i mult;       /* gemmlowp/single: multiplier of each column */
  __m256i mult_odd;   /* multiplier of the odd columns in the low dword of each qword */
  __m256i left;       /* gemmlowp: max(shift, 0) */
  __m256i right;      /* gemmlowp: max(-shift, 0) */
  __m256i rmask;      /* gemmlowp: (1 << right) - 1 */
  __m256i rhalf;      /* gemmlowp: rmask >> 1 */
  __m256i s_even;     /* single: 31 - shift of columns 0,2,4,6 as 4 x int64 */
  __m256i s_odd;      /* single: 31 - shift of columns 1,3,5,7 as 4 x int64 */
  __m256i rnd_even;   /* single: 2^(s-1), int64, even columns */
  __m256i rnd_odd;    /* single: 2^(s-1), int64, odd columns */
  __m256 scale;       /* fp32 */
  __m256 flo, fhi;    /* fp32: qmin - zp, qmax - zp as float */
  __m256i lo, hi;     /* qmin - zp, qmax - zp */
  __m256i lo64, hi64; /* same, as int64 (single mode) */
  __m256i zp;
  __m256i zp16;       /* fp32 narrowing: zp as 16-bit lanes */
  __m128i qmin8;      /* fp32 narrowing: qmin as 8-bit lanes */
  int mode;           /* q8_requant_mode */
  int any_left;       /* gemmlowp: some column has shift > 0 */
} q8_rq8_avx2;

/* Loads `count` (1..8) int32 entries of a per-channel array starting at
 * `col0`, or broadcasts entry 0 when per tensor. Never reads past the columns
 * of the tile (the arrays may end there). */
Q8_RQ_AVX2_INLINE __m256i q8_rq_avx2_load_param_i32(const int32_t *p, size_t channels,
                                                    size_t col0, size_t count) {
  if (channels == 1) return _mm256_set1_epi32(p[0]);
  if (count >= 8) return _mm256_loadu_si256((const __m256i *)(p + col0));
  int32_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  memcpy(tmp, p + col0, count * sizeof(int32_t));
  return _mm256_loadu_si256((const __m256i *)tmp);
}

Q8_RQ_AVX2_INLINE __m256 q8_rq_avx2_load_param_f32(const float *p, size_t channels, size_t col0,
                                                   size_t count) {
  if (channels == 1) return _mm256_set1_ps(p[0]);
  if (count >= 8) return _mm256_loadu_ps(p + col0);
  float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  memcpy(tmp, p + col0, count * sizeof(float));
  return _mm256_loadu_ps(tmp);
}

/* Every field defined, whatever the mode, field by field: memset of the
 * struct was a rep stos of 600 bytes per tile (10 % of a one-row AVX-VNNI
 * GEMV); these stores are vector stores, and those a mode overwrites are
 * dead. */
Q8_RQ_AVX2_INLINE void q8_rq8_avx2_clear(q8_rq8_avx2 *o) {
  const __m256i z = _mm256_setzero_si256();
  o->mult = o->mult_odd = o->left = o->right = o->rmask = o->rhalf = z;
  o->s_even = o->s_odd = o->rnd_even = o->rnd_odd = z;
  o->scale = o->flo = o->fhi = _mm256_setzero_ps();
  o->lo = o->hi = o->lo64 = o->hi64 = o->zp = o->zp16 = z;
  o->qmin8 = _mm_setzero_si128();
  o->mode = 0;
  o->any_left = 0;
}

/* As q8_rq8_avx2_prepare, from the 8 lanes' parameters already loaded (the
 * vectors of the fields rq->mode does not use are not read). */
Q8_RQ_AVX2_INLINE void q8_rq8_avx2_prepare_from(const q8_requant_params *rq, __m256i mult,
                                                __m256i shift, __m256 scale, q8_rq8_avx2 *o) {
  const int32_t zp = rq->zero_point;
  const int32_t lo = rq->qmin - zp, hi = rq->qmax - zp;
  q8_rq8_avx2_clear(o);
  o->mode = (int)rq->mode;
  o->zp = _mm256_set1_epi32(zp);
  o->lo = _mm256_set1_epi32(lo);
  o->hi = _mm256_set1_epi32(hi);
  o->any_left = 0;
  switch (rq->mode) {
    case Q8_REQUANT_GEMMLOWP: {
      const __m256i m = mult, s = shift;
      const __m256i zero = _mm256_setzero_si256();
      o->mult = m;
      o->mult_odd = _mm256_srli_epi64(m, 32);
      o->left = _mm256_max_epi32(s, zero);
      o->right = _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero);
      o->rmask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), o->right),
                                  _mm256_set1_epi32(1));
      o->rhalf = _mm256_srli_epi32(o->rmask, 1);
      o->any_left = !_mm256_testz_si256(o->left, o->left);
      break;
    }
    case Q8_REQUANT_SINGLE: {
      const __m256i m = mult;
      /* Padding columns (shift 0 -> s = 31) stay in range. */
      const __m256i s = _mm256_sub_epi32(_mm256_set1_epi32(31), shift);
      const __m256i low = _mm256_set1_epi64x(0xFFFFFFFF);
      const __m256i one = _mm256_set1_epi64x(1);
      o->mult = m;
      o->mult_odd = _mm256_srli_epi64(m, 32);
      o->s_even = _mm256_and_si256(s, low);
      o->s_odd = _mm256_srli_epi64(s, 32);
      o->rnd_even = _mm256_sllv_epi64(one, _mm256_sub_epi64(o->s_even, one));
      o->rnd_odd = _mm256_sllv_epi64(one, _mm256_sub_epi64(o->s_odd, one));
      o->lo64 = _mm256_set1_epi64x(lo);
      o->hi64 = _mm256_set1_epi64x(hi);
      break;
    }
    case Q8_REQUANT_FP32:
    default:
      o->mode = (int)Q8_REQUANT_FP32;
      o->scale = scale;
      o->flo = _mm256_set1_ps((float)lo);
      o->fhi = _mm256_set1_ps((float)hi);
      o->zp16 = _mm256_set1_epi16((short)zp);
      o->qmin8 = _mm_set1_epi8((char)rq->qmin);
      break;
  }
}

/* Columns [col0, col0 + count) of the tile, count in 1..8 (columns past count
 * get harmless parameters; their results must not be stored). */
Q8_RQ_AVX2_INLINE void q8_rq8_avx2_prepare(const q8_requant_params *rq, size_t col0, size_t count,
                                           q8_rq8_avx2 *o) {
  const bool integer = rq->mode == Q8_REQUANT_GEMMLOWP || rq->mode == Q8_REQUANT_SINGLE;
  const __m256i zero = _mm256_setzero_si256();
  q8_rq8_avx2_prepare_from(
      rq, integer ? q8_rq_avx2_load_param_i32(rq->multiplier, rq->channels, col0, count) : zero,
      integer ? q8_rq_avx2_load_param_i32(rq->shift, rq->channels, col0, count) : zero,
      integer ? _mm256_setzero_ps() : q8_rq_avx2_load_param_f32(rq->scale, rq->channels, col0, count),
      o);
}

/* gemmlowp SaturatingRoundingDoublingHighMul(x, m) per lane:
 * (x * m + 2^30) >> 31 (floor) equals gemmlowp's nudge-then-truncate for both
 * signs; the one overflowing product, INT32_MIN * INT32_MIN, gives 2^31, which
 * is the only way to get 0x80000000 in the low dword: it becomes INT32_MAX. */
/* The 8-column halves of a 16-column tile with nr columns that
 * q8_rq_avx2_store_row16 reads: none for int32 output (rq NULL), hi only
 * where nr > 8. */
Q8_RQ_AVX2_INLINE void q8_rq8_avx2_prepare_row16(const q8_requant_params *rq, size_t nr,
                                                 q8_rq8_avx2 *lo, q8_rq8_avx2 *hi) {
  if (rq == NULL) { /* defined, though not read */
    q8_rq8_avx2_clear(lo);
    q8_rq8_avx2_clear(hi);
    return;
  }
  q8_rq8_avx2_prepare(rq, 0, nr < 8 ? nr : 8, lo);
  if (nr > 8) {
    q8_rq8_avx2_prepare(rq, 8, nr - 8, hi);
  } else {
    q8_rq8_avx2_clear(hi);
  }
}

Q8_RQ_AVX2_INLINE __m256i q8_rq_avx2_srdhm(__m256i x, __m256i m, __m256i m_odd) {
  const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
  const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
  const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m_odd), nudge);
  /* bits 31..62 of each product: low dword for even lanes, high dword for odd. */
  const __m256i r = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
  const __m256i ovf = _mm256_cmpeq_epi32(r, _mm256_set1_epi32(INT32_MIN));
  return _mm256_xor_si256(r, ovf);
}

/* RoundingDivideByPOT(x, right) per lane, ties away from zero. */
Q8_RQ_AVX2_INLINE __m256i q8_rq_avx2_rdbpot(__m256i x, const q8_rq8_avx2 *p) {
  const __m256i rem = _mm256_and_si256(x, p->rmask);
  const __m256i thr = _mm256_sub_epi32(p->rhalf, _mm256_srai_epi32(x, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(x, p->right), _mm256_cmpgt_epi32(rem, thr));
}

/* Arithmetic right shift of int64 lanes by per-lane counts in [1, 62]. */
Q8_RQ_AVX2_INLINE __m256i q8_rq_avx2_sra64(__m256i v, __m256i s) {
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), s), sign);
}

Q8_RQ_AVX2_INLINE __m256i q8_rq_avx2_clamp64(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

/* 8 accumulators -> 8 output values in [qmin, qmax] (int32 lanes), in mode
 * `mode` (p's own: a constant there folds the other modes away). */
Q8_RQ_AVX2_INLINE __m256i q8_rq8_avx2_apply_as(__m256i acc, const q8_rq8_avx2 *p, int mode) {
  __m256i v;
  if (mode == Q8_REQUANT_GEMMLOWP) {
    __m256i x = acc;
    if (p->any_left) {
      /* Saturating acc * 2^left: overflow iff shifting back changes the value. */
      const __m256i sh = _mm256_sllv_epi32(acc, p->left);
      const __m256i ovf = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_srav_epi32(sh, p->left), acc),
                                           _mm256_set1_epi32(-1));
      const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(acc, 31), _mm256_set1_epi32(INT32_MAX));
      x = _mm256_blendv_epi8(sh, sat, ovf);
    }
    v = q8_rq_avx2_rdbpot(q8_rq_avx2_srdhm(x, p->mult, p->mult_odd), p);
    v = _mm256_min_epi32(_mm256_max_epi32(v, p->lo), p->hi);
  } else if (mode == Q8_REQUANT_SINGLE) {
    /* |acc * m| <= 2^62 and the rounding term is < 2^62: no int64 overflow. */
    const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(acc, p->mult), p->rnd_even);
    const __m256i po = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), p->mult_odd), p->rnd_odd);
    const __m256i qe = q8_rq_avx2_clamp64(q8_rq_avx2_sra64(pe, p->s_even), p->lo64, p->hi64);
    const __m256i qo = q8_rq_avx2_clamp64(q8_rq_avx2_sra64(po, p->s_odd), p->lo64, p->hi64);
    v = _mm256_blend_epi32(qe, _mm256_slli_epi64(qo, 32), 0xAA);
  } else {
    /* One rounding for the conversion, one for the product (no FMA), clamp in
     * float (the bounds are integers), then round half to even (MXCSR default). */
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), p->scale);
    f = _mm256_min_ps(_mm256_max_ps(f, p->flo), p->fhi);
    v = _mm256_cvtps_epi32(f);
  }
  /* v is within [qmin - zp, qmax - zp]: adding zp cannot wrap. */
  return _mm256_add_epi32(v, p->zp);
}

Q8_RQ_AVX2_INLINE __m256i q8_rq8_avx2_apply(__m256i acc, const q8_rq8_avx2 *p) {
  return q8_rq8_avx2_apply_as(acc, p, p->mode);
}

/* fp32 without the zero point and the lower clamp, for
 * q8_rq_avx2_narrow16_fp32: float(acc) * scale, at most qmax - zp (an
 * integer, so clamping before rounding is exact, and the conversion cannot
 * overflow upwards), rounded half to even. Below the int32 range the
 * conversion gives INT32_MIN, which stays below qmin through the saturating
 * steps. clamp_free (q8_requant_params.fp32_clamp_free): no upper clamp,
 * what lies above qmax - zp saturates to qmax as the clamp would leave it. */
Q8_RQ_AVX2_INLINE __m256i q8_rq_avx2_fp32_upper(__m256i acc, const q8_rq8_avx2 *p,
                                                bool clamp_free) {
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), p->scale);
  return _mm256_cvtps_epi32(clamp_free ? v : _mm256_min_ps(v, p->fhi));
}

/* 16 values of q8_rq_avx2_fp32_upper -> 16 output bytes, with p's zero
 * point and qmin. in_order: z0 holds values 0-7 and z1 8-15; else the
 * bytes come in the order of the packs' lane interleave (16-bit lane i of
 * packs_epi32(z0, z1)): 0-3 from z0's low lane, 4-7 from z1's low lane,
 * 8-11 z0's high lane, 12-15 z1's (no lane permute). Adds the zero point
 * with 16-bit saturation and raises the bytes to qmin: exact, as every step
 * is monotonic and clamps only values the reference clamps too (the same
 * steps as q8_rq512_pack4). */
Q8_RQ_AVX2_INLINE __m128i q8_rq_avx2_narrow16_fp32(__m256i z0, __m256i z1, const q8_rq8_avx2 *p,
                                                   q8_dtype out, bool in_order) {
  __m256i w = _mm256_adds_epi16(_mm256_packs_epi32(z0, z1), p->zp16);
  if (in_order) w = _mm256_permute4x64_epi64(w, 0xD8);
  const __m128i w0 = _mm256_castsi256_si128(w), w1 = _mm256_extracti128_si256(w, 1);
  return out == Q8_UINT8 ? _mm_max_epu8(_mm_packus_epi16(w0, w1), p->qmin8)
                         : _mm_max_epi8(_mm_packs_epi16(w0, w1), p->qmin8);
}

/* Stores the first n (1..16) bytes of b. */
Q8_RQ_AVX2_INLINE void q8_rq_avx2_store_bytes16(void *c, __m128i b, size_t n) {
  if (n >= 16) {
    _mm_storeu_si128((__m128i *)c, b);
  } else {
    unsigned char tmp[16];
    _mm_storeu_si128((__m128i *)tmp, b);
    memcpy(c, tmp, n);
  }
}

/* Narrows 16 values, already within the output type, to 16 bytes. in_order:
 * z0 holds values 0-7 and z1 8-15; else the bytes come in the lane
 * interleave of q8_rq_avx2_narrow16_fp32. */
Q8_RQ_AVX2_INLINE __m128i q8_rq_avx2_narrow16(__m256i z0, __m256i z1, q8_dtype out,
                                              bool in_order) {
  __m256i w = _mm256_packs_epi32(z0, z1);
  if (in_order) w = _mm256_permute4x64_epi64(w, 0xD8);
  const __m128i w0 = _mm256_castsi256_si128(w), w1 = _mm256_extracti128_si256(w, 1);
  return out == Q8_UINT8 ? _mm_packus_epi16(w0, w1) : _mm_packs_epi16(w0, w1);
}

/* Stores the first n (1..16) columns of a row. */
Q8_RQ_AVX2_INLINE void q8_rq_avx2_store16(void *c, __m256i lo, __m256i hi, q8_dtype out,
                                          size_t n) {
  q8_rq_avx2_store_bytes16(c, q8_rq_avx2_narrow16(lo, hi, out, true), n);
}

/* Stores the first n (1..8) columns of 8 values. */
Q8_RQ_AVX2_INLINE void q8_rq_avx2_store8(void *c, __m256i v, q8_dtype out, size_t n) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b = out == Q8_UINT8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
  if (n >= 8) {
    _mm_storel_epi64((__m128i *)c, b);
  } else {
    unsigned char tmp[16];
    _mm_storeu_si128((__m128i *)tmp, b);
    memcpy(c, tmp, n);
  }
}

/* Stores the first n (1..8) int32 columns. */
Q8_RQ_AVX2_INLINE void q8_rq_avx2_store8_i32(void *c, __m256i v, size_t n) {
  if (n >= 8) {
    _mm256_storeu_si256((__m256i *)c, v);
  } else {
    int32_t tmp[8];
    _mm256_storeu_si256((__m256i *)tmp, v);
    memcpy(c, tmp, n * sizeof(int32_t));
  }
}

/* One row of a 16-column tile (two 8-column accumulators): int32 out when rq
 * is NULL, else requantized with the tile's prepared parameters. Writes
 * exactly nr (1..16) elements. Shared by the AVX2 and AVX-VNNI kernels. */
Q8_RQ_AVX2_INLINE void q8_rq_avx2_store_row16(unsigned char *c, __m256i lo, __m256i hi, size_t nr,
                                              const q8_requant_params *rq,
                                              const q8_rq8_avx2 *rp0, const q8_rq8_avx2 *rp1) {
  if (rq == NULL) {
    if (nr == 16) {
      _mm256_storeu_si256((__m256i *)c, lo);
      _mm256_storeu_si256((__m256i *)(c + 32), hi);
    } else {
      q8_rq_avx2_store8_i32(c, lo, nr < 8 ? nr : 8);
      if (nr > 8) q8_rq_avx2_store8_i32(c + 32, hi, nr - 8);
    }
    return;
  }
  if (rp0->mode == Q8_REQUANT_FP32) { /* hi's lanes past nr are never stored */
    const bool clamp_free = rq->fp32_clamp_free;
    q8_rq_avx2_store_bytes16(
        c,
        q8_rq_avx2_narrow16_fp32(q8_rq_avx2_fp32_upper(lo, rp0, clamp_free),
                                 q8_rq_avx2_fp32_upper(hi, rp1, clamp_free), rp0, rq->out_dtype,
                                 true),
        nr);
    return;
  }
  const __m256i q0 = q8_rq8_avx2_apply(lo, rp0);
  if (nr > 8) {
    q8_rq_avx2_store16(c, q0, q8_rq8_avx2_apply(hi, rp1), rq->out_dtype, nr);
  } else {
    q8_rq_avx2_store8(c, q0, rq->out_dtype, nr);
  }
}

#endif
