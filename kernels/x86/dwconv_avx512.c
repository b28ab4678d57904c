/* AVX-512 VNNI depthwise kernels: 64 channels per block, taps in groups of 4
 * through vpdpbusd (u8 activations x s8 weights, 4 products summed into each
 * int32 lane, exactly: |x * w| <= 255 * 128 and no saturation).
 *
 * Why this shape: on Zen 4 the depthwise loop is bound by shuffles, not by
 * multiplies. Interleaving 4 taps of 64 channels takes 8 in-lane unpacks
 * (bytes, then words) for 256 products; widening to int16 for pmaddwd took
 * 4 shuffles for 64. The unpacks leave the 4 accumulators in the order
 * acc[a] lane (L, i) = channel 16L + 4a + i, which the final packs
 * (packssdw, then packsswb/packuswb) turn back into channel order for free;
 * the per-channel requantization parameters are loaded in that order.
 *
 * int8 activations are read as x + 128 (a sign-bit flip: int8_a_offset = 128,
 * folded into the column terms; padding reads the zero point and is flipped
 * the same way). Masked loads and stores cover channel tails without touching
 * bytes past them. Compiled through function attributes only, like
 * kernels/x86/gemm_avx512vnni.c. */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/x86/requant_avx512.h"
/* Each block runs every output row of a call (set up once, see q8_dwconv_row). */
#define DW_ROWS_INSIDE 1
#include "kernels/dwconv_entry.h"
#include "q8/kernels.h"

#define DW_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"
#define DW_INLINE static inline __attribute__((always_inline, target(DW_TARGET)))
#define DW_FN static __attribute__((noinline, target(DW_TARGET)))
#define DW_CT 64
#define DW_INT8_A_OFFSET 128
#define DW_UINT8_A_OFFSET 0

/* Channel of accumulator slot s: acc s / 16, lane (L, i) = s % 16. */
static size_t slot_channel(size_t slot) {
  const size_t a = slot / 16, lane = slot % 16;
  return 16 * (lane / 4) + 4 * a + lane % 4;
}

static size_t block_bytes_of_groups(size_t groups) {
  return DW_CT * sizeof(int32_t) + groups * DW_CT * 4;
}

static size_t block_bytes(size_t taps) {
  return block_bytes_of_groups((taps + 3) / 4);
}

static size_t dw_packed_bytes(size_t channels, size_t taps) {
  return (channels + DW_CT - 1) / DW_CT * block_bytes(taps);
}

/* Per block of 64 channels: int32 col_term[64] in slot order, then per group
 * of 4 taps, int8 w[64 slots][4 taps] (missing channels and taps are 0).
 * tap_of(g, e): the tap in element e of group g, or taps for none. */
static void dw_pack_groups(size_t channels, size_t taps, size_t groups, const int8_t *w,
                           const int32_t *col_term,
                           size_t (*tap_of)(size_t g, size_t e, size_t taps), void *packed) {
  for (size_t c0 = 0; c0 < channels; c0 += DW_CT) {
    unsigned char *block = (unsigned char *)packed + c0 / DW_CT * block_bytes_of_groups(groups);
    int8_t *wp = (int8_t *)(block + DW_CT * sizeof(int32_t));
    for (size_t slot = 0; slot < DW_CT; ++slot) {
      const size_t c = c0 + slot_channel(slot);
      const int32_t term = c < channels ? col_term[c] : 0;
      memcpy(block + slot * sizeof(int32_t), &term, sizeof term);
      for (size_t g = 0; g < groups; ++g) {
        for (size_t e = 0; e < 4; ++e) {
          const size_t t = tap_of(g, e, taps);
          wp[(g * DW_CT + slot) * 4 + e] = c < channels && t < taps ? w[c * taps + t] : 0;
        }
      }
    }
  }
}

static size_t tap_in_order(size_t g, size_t e, size_t taps) {
  (void)taps;
  return 4 * g + e;
}

/* 3x3 stride 1 (dw_row_columns): group kx holds the column (ky = 0, 1, 2) of
 * taps at kx, element 3 empty. */
static size_t tap_in_column(size_t g, size_t e, size_t taps) {
  return e < 3 ? 3 * e + g : taps;
}

static void dw_pack(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                    void *packed) {
  dw_pack_groups(channels, taps, (taps + 3) / 4, w, col_term, tap_in_order, packed);
}

static void dw_pack_columns(size_t channels, size_t taps, const int8_t *w,
                            const int32_t *col_term, void *packed) {
  dw_pack_groups(channels, taps, (taps + 3) / 4, w, col_term, tap_in_column, packed);
}

DW_INLINE __m512i dw_load(const uint8_t *p, __mmask64 mask, bool full, bool s8) {
  const __m512i v = full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(mask, p);
  return s8 ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
}

DW_INLINE void dw_pixel(const q8_dwconv_row *r, size_t kh, size_t kw, size_t dilation,
                        ptrdiff_t ix0, size_t c0, __mmask64 mask, bool full, bool s8,
                        bool interior, const __m512i *w, __m512i acc[4]) {
  const size_t taps = kh * kw;
  size_t ky = 0, kx = 0;
  for (size_t t = 0; t < taps; t += 4) {
    __m512i x[4];
    for (size_t e = 0; e < 4; ++e) {
      x[e] = _mm512_setzero_si512(); /* missing taps meet zero weights */
      if (t + e < taps) {
        x[e] = dw_load(dw_tap(r, ky, kx, ix0, dilation, c0, interior), mask, full, s8);
        if (++kx == kw) kx = 0, ++ky;
      }
    }
    const __m512i a_lo = _mm512_unpacklo_epi8(x[0], x[1]), a_hi = _mm512_unpackhi_epi8(x[0], x[1]);
    const __m512i b_lo = _mm512_unpacklo_epi8(x[2], x[3]), b_hi = _mm512_unpackhi_epi8(x[2], x[3]);
    const __m512i *g = w + t;
    acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(a_lo, b_lo), g[0]);
    acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(a_lo, b_lo), g[1]);
    acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(a_hi, b_hi), g[2]);
    acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(a_hi, b_hi), g[3]);
  }
}

/* A block of at most 32 channels (a tail, or a 32-channel layer) at half the
 * width: slots (L, i) with L < 2 are channels below 32 and sit in the low
 * 256 bits of every packed vector, so the same packing serves. */
DW_INLINE void dw_pixel_half(const q8_dwconv_row *r, size_t kh, size_t kw, size_t dilation,
                             ptrdiff_t ix0, size_t c0, __mmask32 mask, bool s8, bool interior,
                             const __m512i *w, __m512i acc[4]) {
  const size_t taps = kh * kw;
  size_t ky = 0, kx = 0;
  __m256i h[4];
  for (size_t a = 0; a < 4; ++a) h[a] = _mm512_castsi512_si256(acc[a]);
  for (size_t t = 0; t < taps; t += 4) {
    __m256i x[4];
    for (size_t e = 0; e < 4; ++e) {
      x[e] = _mm256_setzero_si256();
      if (t + e < taps) {
        const __m256i v = _mm256_maskz_loadu_epi8(mask, dw_tap(r, ky, kx, ix0, dilation, c0, interior));
        x[e] = s8 ? _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)) : v;
        if (++kx == kw) kx = 0, ++ky;
      }
    }
    const __m256i a_lo = _mm256_unpacklo_epi8(x[0], x[1]), a_hi = _mm256_unpackhi_epi8(x[0], x[1]);
    const __m256i b_lo = _mm256_unpacklo_epi8(x[2], x[3]), b_hi = _mm256_unpackhi_epi8(x[2], x[3]);
    const __m512i *g = w + t;
    h[0] = _mm256_dpbusd_epi32(h[0], _mm256_unpacklo_epi16(a_lo, b_lo), _mm512_castsi512_si256(g[0]));
    h[1] = _mm256_dpbusd_epi32(h[1], _mm256_unpackhi_epi16(a_lo, b_lo), _mm512_castsi512_si256(g[1]));
    h[2] = _mm256_dpbusd_epi32(h[2], _mm256_unpacklo_epi16(a_hi, b_hi), _mm512_castsi512_si256(g[2]));
    h[3] = _mm256_dpbusd_epi32(h[3], _mm256_unpackhi_epi16(a_hi, b_hi), _mm512_castsi512_si256(g[3]));
  }
  for (size_t a = 0; a < 4; ++a) acc[a] = _mm512_zextsi256_si512(h[a]);
}

/* Requantization of one block, parameters in slot order. */
typedef struct dw_rq {
  q8_rq512 acc[4];
  /* fp32, its own shorter path: the upper bound and zero point are shared
   * by the 4 accumulators (registers, not 4 copies), the zero point is added
   * to 32 int16 lanes after the first pack, the lower bound applied to 64
   * bytes after the last (see dw_store). */
  __m512 scale[4], fhi;
  __m512i zp16, qmin8;
} dw_rq;

/* Slot order <-> channel order of 64 int32 lanes: a 4 x 4 transpose of
 * 128-bit blocks (its own inverse). */
DW_INLINE void dw_transpose(const __m512i in[4], __m512i out[4]) {
  const __m512i t0 = _mm512_shuffle_i64x2(in[0], in[1], 0x44);
  const __m512i t1 = _mm512_shuffle_i64x2(in[2], in[3], 0x44);
  const __m512i t2 = _mm512_shuffle_i64x2(in[0], in[1], 0xEE);
  const __m512i t3 = _mm512_shuffle_i64x2(in[2], in[3], 0xEE);
  out[0] = _mm512_shuffle_i64x2(t0, t1, 0x88);
  out[1] = _mm512_shuffle_i64x2(t0, t1, 0xDD);
  out[2] = _mm512_shuffle_i64x2(t2, t3, 0x88);
  out[3] = _mm512_shuffle_i64x2(t2, t3, 0xDD);
}

DW_INLINE __mmask16 dw_lanes(size_t cn, size_t q) {
  const size_t n = cn > 16 * q ? cn - 16 * q : 0;
  return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/* A per-channel int32 array (or float bits) of the block in slot order;
 * channels past cn read 0 (harmless parameters, never stored). pixels: how
 * many pixels one vector holds: 1; 2 for a block of at most 32 channels
 * (dw_block_half_columns, dw_block_half_s2), the parameters of channels
 * c0 .. c0 + 31 in both 256-bit halves. */
DW_INLINE void dw_slot_vectors(const void *v, size_t c0, size_t cn, size_t pixels,
                               __m512i slots[4]) {
  __m512i natural[4];
  for (size_t q = 0; q < 4; ++q) {
    const size_t qc = q % (4 / pixels);
    natural[q] = _mm512_maskz_loadu_epi32(dw_lanes(cn, qc), (const int32_t *)v + c0 + 16 * qc);
  }
  dw_transpose(natural, slots);
}

DW_INLINE void dw_slot_params(const int32_t *v, size_t c0, size_t cn, size_t pixels,
                              int32_t out[DW_CT]) {
  __m512i slots[4];
  dw_slot_vectors(v, c0, cn, pixels, slots);
  for (size_t a = 0; a < 4; ++a) _mm512_storeu_si512(out + 16 * a, slots[a]);
}

/* The registers every kind of dw_store names (GCC cannot see that int32
 * output reads none of them); zeroing them is free, unlike the whole struct. */
DW_INLINE void dw_rq_clear(dw_rq *s) {
  s->scale[0] = s->scale[1] = s->scale[2] = s->scale[3] = s->fhi = _mm512_setzero_ps();
  s->zp16 = s->qmin8 = _mm512_setzero_si512();
}

DW_INLINE void dw_rq_init(dw_rq *s, const q8_requant_params *rq, size_t c0, size_t cn,
                          size_t pixels) {
  dw_rq_clear(s);
  int32_t multiplier[DW_CT], shift[DW_CT];
  q8_requant_params slots = *rq;
  if (rq->mode == Q8_REQUANT_FP32) {
    if (rq->channels > 1) {
      __m512i bits[4];
      dw_slot_vectors(rq->scale, c0, cn, pixels, bits);
      for (size_t a = 0; a < 4; ++a) s->scale[a] = _mm512_castsi512_ps(bits[a]);
    } else {
      for (size_t a = 0; a < 4; ++a) s->scale[a] = _mm512_set1_ps(rq->scale[0]);
    }
    s->qmin8 = _mm512_set1_epi8((char)rq->qmin);
    s->fhi = _mm512_set1_ps((float)(rq->qmax - rq->zero_point));
    s->zp16 = _mm512_set1_epi16((short)rq->zero_point);
    return;
  }
  if (rq->channels > 1) {
    dw_slot_params(rq->multiplier, c0, cn, pixels, multiplier);
    dw_slot_params(rq->shift, c0, cn, pixels, shift);
    slots.channels = DW_CT;
    slots.multiplier = multiplier;
    slots.shift = shift;
  }
  for (size_t a = 0; a < 4; ++a) q8_rq512_init(&s->acc[a], &slots, 16 * a, 0xFFFF);
}

/* A block's requantization, or (int32 output) the cleared registers. */
DW_INLINE void dw_rq_for(dw_rq *s, const q8_dwconv_row *r, int kind, size_t c0, size_t cn,
                         size_t pixels) {
  dw_rq_clear(s);
  if (kind != DW_OUT_I32) dw_rq_init(s, r->rq, c0, cn, pixels);
}

DW_INLINE __m512i dw_requant(const q8_rq512 *p, int kind, __m512i acc) {
  return kind == DW_OUT_GEMMLOWP ? q8_rq512_gemmlowp(p, acc) : q8_rq512_single(p, acc);
}

/* Accumulator a of a block, requantized (fp32: without zero point and lower
 * bound, see q8_rq512_pack4). */
DW_INLINE __m512i dw_rq_slot(const dw_rq *s, int kind, const __m512i acc[4], size_t a) {
  if (kind == DW_OUT_FP32_FREE) return q8_rq512_fp32_unclamped(acc[a], s->scale[a]);
  return kind == DW_OUT_FP32 ? q8_rq512_fp32_upper(acc[a], s->scale[a], s->fhi)
                             : dw_requant(&s->acc[a], kind, acc[a]);
}

/* The 64 output bytes of a block's four accumulators, in the order of their
 * 128-bit lanes: the saturating packs interleave the slots back into channel
 * order. Four values, not an array: GCC stored such an array to the stack in
 * every iteration of the pair loops. */
DW_INLINE __m512i dw_requant_bytes(const dw_rq *s, int kind, const __m512i acc[4],
                                   q8_dtype out_dtype) {
  return q8_rq512_pack4(dw_rq_slot(s, kind, acc, 0), dw_rq_slot(s, kind, acc, 1),
                        dw_rq_slot(s, kind, acc, 2), dw_rq_slot(s, kind, acc, 3),
                        kind >= DW_OUT_FP32, s->zp16, s->qmin8, out_dtype);
}

/* pair_step: 0, or two pixels of at most 32 channels (see dw_slot_vectors),
 * the second's output pair_step bytes after the first's. */
DW_INLINE void dw_store(unsigned char *out, size_t cn, __mmask64 mask, bool full, int kind,
                        const __m512i acc[4], q8_dtype out_dtype, const dw_rq *s,
                        size_t pair_step) {
  if (kind == DW_OUT_I32) {
    __m512i v[4];
    dw_transpose(acc, v); /* back to channel order */
    for (size_t q = 0; q < 4; ++q) {
      const size_t qc = pair_step ? q % 2 : q;
      if (16 * qc >= cn) continue;
      unsigned char *dst = out + (pair_step && q >= 2 ? pair_step : 0) + 64 * qc;
      _mm512_mask_storeu_epi32(dst, dw_lanes(cn, qc), v[q]);
    }
    return;
  }
  const __m512i b = dw_requant_bytes(s, kind, acc, out_dtype);
  if (pair_step && cn == DW_CT / 2) { /* whole rows: no byte mask (112x112x32 s1 39 -> 38 us) */
    _mm256_storeu_si256((__m256i *)out, _mm512_castsi512_si256(b));
    _mm256_storeu_si256((__m256i *)(out + pair_step), _mm512_extracti64x4_epi64(b, 1));
  } else if (pair_step) {
    _mm256_mask_storeu_epi8(out, (__mmask32)mask, _mm512_castsi512_si256(b));
    _mm256_mask_storeu_epi8(out + pair_step, (__mmask32)mask, _mm512_extracti64x4_epi64(b, 1));
  } else if (full) {
    _mm512_storeu_si512(out, b);
  } else {
    _mm512_mask_storeu_epi8(out, mask, b);
  }
}

/* 3x3 by columns: the 3 input pixels of a column (rows 0..2 at one input x)
 * are interleaved once into the 4 dpbusd operands, which then serve every
 * output pixel reading that column (with the weights of kx = 2, 1, 0): per
 * output pixel 3 loads and 8 unpacks at stride 1 (3 pixels share a column),
 * 6 and 16 at stride 2 (2 pixels share every other column), instead of 12
 * loads and 24 unpacks for 3 groups of 4 taps. Blocks of at most 32
 * channels put two pixels in a vector (dw_block_half_columns,
 * dw_block_half_s2). */
/* The 3 input rows of output row i of a 3x3 block, at its first channel: one
 * bounds test per column (not per tap), and no multiply (the column's byte
 * offset is kept). */
typedef struct dw_rows3 {
  const uint8_t *row[3], *zero;
  size_t in_w, channels;
} dw_rows3;

DW_INLINE dw_rows3 dw_rows3_of(const q8_dwconv_row *r, size_t i, size_t c0) {
  dw_rows3 R = {.zero = (const uint8_t *)r->zero_pixel + c0, .in_w = r->in_w,
                .channels = r->channels};
  for (size_t ky = 0; ky < 3; ++ky) R.row[ky] = (const uint8_t *)r->rows[3 * i + ky] + c0;
  return R;
}

/* Row ky of input column ix, or the zero pixel outside the row: a select of
 * addresses, not a branch. Stride 2 reads its columns so; with a branch,
 * whose rare side joins the hot loop again, GCC kept the loop's columns on
 * the stack. */
DW_INLINE const void *dw_column_at(const dw_rows3 *R, ptrdiff_t ix, size_t ky) {
  /* Unsigned: a column left of the input wraps to a huge value. */
  const uintptr_t inside = -(uintptr_t)((size_t)ix < R->in_w);
  const uintptr_t at = (uintptr_t)R->row[ky] + (uintptr_t)ix * R->channels;
  const uintptr_t zero = (uintptr_t)R->zero;
  return (const void *)(zero + ((at - zero) & inside));
}

#define DW_INTERLEAVE(W)                                                                     \
  /* The 3 rows of a column as the 4 dpbusd operands, in slot order. */                      \
  DW_INLINE void dw_interleave##W(const __m##W##i x[3], __m##W##i col[4]) {                  \
    /* Element 3 of each group has weight 0: row 2 fills it. */                              \
    const __m##W##i a_lo = _mm##W##_unpacklo_epi8(x[0], x[1]);                               \
    const __m##W##i a_hi = _mm##W##_unpackhi_epi8(x[0], x[1]);                               \
    const __m##W##i b_lo = _mm##W##_unpacklo_epi8(x[2], x[2]);                               \
    const __m##W##i b_hi = _mm##W##_unpackhi_epi8(x[2], x[2]);                               \
    col[0] = _mm##W##_unpacklo_epi16(a_lo, b_lo);                                            \
    col[1] = _mm##W##_unpackhi_epi16(a_lo, b_lo);                                            \
    col[2] = _mm##W##_unpacklo_epi16(a_hi, b_hi);                                            \
    col[3] = _mm##W##_unpackhi_epi16(a_hi, b_hi);                                            \
  }
DW_INTERLEAVE(512)

DW_INLINE void dw_column(const dw_rows3 *R, ptrdiff_t ix, __mmask64 mask, bool s8, bool select,
                         __m512i col[4]) {
  /* Unsigned: a column left of the input wraps to a huge value. */
  const bool inside = (size_t)ix < R->in_w;
  const size_t at = (size_t)ix * R->channels;
  __m512i x[3];
  if (select) {
    for (size_t ky = 0; ky < 3; ++ky) {
      x[ky] = _mm512_maskz_loadu_epi8(mask, dw_column_at(R, ix, ky));
    }
  } else if (__builtin_expect(inside, 1)) {
    for (size_t ky = 0; ky < 3; ++ky) x[ky] = _mm512_maskz_loadu_epi8(mask, R->row[ky] + at);
  } else {
    x[0] = x[1] = x[2] = _mm512_maskz_loadu_epi8(mask, R->zero);
  }
  for (size_t ky = 0; ky < 3 && s8; ++ky) {
    x[ky] = _mm512_xor_si512(x[ky], _mm512_set1_epi8((char)0x80));
  }
  dw_interleave512(x, col);
}

DW_INLINE void dw_pixel_columns(const __m512i terms[4], const __m512i w[12], __m512i left[4],
                                __m512i mid[4], const __m512i right[4], __m512i acc[4]) {
  for (size_t a = 0; a < 4; ++a) {
    const __m512i v = _mm512_dpbusd_epi32(terms[a], left[a], w[a]);
    acc[a] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(v, mid[a], w[4 + a]), right[a], w[8 + a]);
    left[a] = mid[a];
    mid[a] = right[a];
  }
}

/* Stride 2: a pixel's middle column (taps kx = 1) onto `next`, which holds
 * its left one; then its right column (kx = 2), which is also the next
 * pixel's left one and starts `next` again. */
DW_INLINE void dw_s2_mid(const __m512i col[4], const __m512i w[12], const __m512i next[4],
                         __m512i acc[4]) {
  for (size_t a = 0; a < 4; ++a) acc[a] = _mm512_dpbusd_epi32(next[a], col[a], w[4 + a]);
}

DW_INLINE void dw_s2_right(const __m512i col[4], const __m512i w[12], const __m512i terms[4],
                           __m512i next[4], __m512i acc[4]) {
  for (size_t a = 0; a < 4; ++a) {
    acc[a] = _mm512_dpbusd_epi32(acc[a], col[a], w[8 + a]);
    next[a] = _mm512_dpbusd_epi32(terms[a], col[a], w[a]);
  }
}

/* Stride 2, column by column: the pixel's middle and right columns are
 * multiplied as soon as they are made, and the right one also starts the
 * next pixel (its left column, weights kx = 0) in `next`. No left/mid/right
 * arrays stay live across pixels: with them, 12 column registers, 12 weight
 * registers, the terms and the requantization did not fit in 32 and the
 * loop spilled to the stack. */
DW_INLINE void dw_pixel_s2(const dw_rows3 *R, ptrdiff_t right_x, __mmask64 mask, bool s8,
                           const __m512i terms[4], const __m512i w[12], __m512i next[4],
                           __m512i acc[4]) {
  __m512i col[4];
  dw_column(R, right_x - 1, mask, s8, true, col);
  dw_s2_mid(col, w, next, acc);
  dw_column(R, right_x, mask, s8, true, col);
  dw_s2_right(col, w, terms, next, acc);
}

DW_INLINE void dw_block_columns(const q8_dwconv_row *r, size_t stride, bool s8, bool full,
                                int kind, size_t c0, size_t cn, const unsigned char *block) {
  const __mmask64 mask = full ? ~(__mmask64)0 : (((__mmask64)1 << cn) - 1);
  const __m512i *packed = (const __m512i *)(const void *)block;
  __m512i terms[4], w[12];
  for (size_t i = 0; i < 4; ++i) terms[i] = packed[i];
  for (size_t i = 0; i < 12; ++i) w[i] = packed[4 + i];
  dw_rq rs;
  dw_rq_for(&rs, r, kind, c0, cn, 1);
  const dw_out o = dw_out_of(r);
  const ptrdiff_t pad = (ptrdiff_t)r->pad_left;
  for (size_t i = 0; i < o.rows; ++i) {
    /* Stride 1: the current pixel's columns (left, mid, right); stride 2:
     * next, the next pixel's accumulators (dw_pixel_s2). */
    __m512i left[4], mid[4], right[4], next[4];
    const dw_rows3 R = dw_rows3_of(r, i, c0);
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    dw_column(&R, -pad, mask, s8, false, left);
    for (size_t a = 0; a < 4; ++a) next[a] = terms[a];
    if (stride == 1) {
      dw_column(&R, 1 - pad, mask, s8, false, mid);
    } else {
      for (size_t a = 0; a < 4; ++a) next[a] = _mm512_dpbusd_epi32(next[a], left[a], w[a]);
    }
    for (size_t x = 0; x < o.out_w; ++x) {
      unsigned char *out = out_row + x * o.step;
      const ptrdiff_t right_x = (ptrdiff_t)(x * stride + 2) - pad;
      /* The pixel's accumulators, scoped to the iteration: declared outside
       * the loop, GCC stored all four to the stack every pixel (Zen 5, median
       * of 5 alternating runs: 14x14x576 s2 3.61 -> 3.46 us, 28x28x192 s2 3.38
       * -> 3.29, 112x112x64 s2 18.9 -> 18.4). */
      __m512i first[4];
      if (stride == 2) {
        dw_pixel_s2(&R, right_x, mask, s8, terms, w, next, first);
      } else {
        /* Stride 1: one new column; left and mid shifted by the previous pixel. */
        dw_column(&R, right_x, mask, s8, false, right);
        dw_pixel_columns(terms, w, left, mid, right, first);
      }
      dw_store(out, cn, mask, full, kind, first, o.dtype, &rs, 0);
    }
  }
}

/* 3x3, blocks of at most 32 channels (a 32-channel layer, or a tail as
 * 96 = 64 + 32): two pixels per 512-bit vector, pixel x in the low 256 bits
 * and x + 1 in the high ones (the layout dw_store takes with pair_step), so
 * a pixel pair is 12 dpbusd of 512 bits where the 256-bit pixel-pair path
 * it replaced issued 24 of 256 (Zen 5, 112x112x32 s1: 48 -> 34 us with the
 * contiguous load below). Stride 1: pair x reads the column pairs j0, j1, j2
 * (taps kx = 0, 1, 2 of both pixels), c = x - pad: (c | c + 1),
 * (c + 1 | c + 2), (c + 2 | c + 3); j0 is the previous pair's j2 and j1 a
 * lane shuffle of j0 and j2, one new column pair per pixel pair. Stride 2
 * pairs distant pixels instead (dw_block_half_s2). A column pair: columns
 * ix and ix + dx. */
DW_INLINE void dw_column_pair_half(const dw_rows3 *R, ptrdiff_t ix, ptrdiff_t dx, __mmask32 mask,
                                   bool s8, __m512i col[4]) {
  /* Stride 1 in a 32-channel layer, both columns inside: they are 64
   * contiguous bytes (112x112x32 s1: 38 -> 33 us). */
  const bool contiguous =
      dx == 1 && R->channels == DW_CT / 2 && ix >= 0 && (size_t)ix + 1 < R->in_w;
  __m512i x[3];
  for (size_t ky = 0; ky < 3; ++ky) {
    if (contiguous) {
      x[ky] = _mm512_loadu_si512(R->row[ky] + (size_t)ix * (DW_CT / 2));
    } else {
      const __m256i lo = _mm256_maskz_loadu_epi8(mask, dw_column_at(R, ix, ky));
      const __m256i hi = _mm256_maskz_loadu_epi8(mask, dw_column_at(R, ix + dx, ky));
      x[ky] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    if (s8) x[ky] = _mm512_xor_si512(x[ky], _mm512_set1_epi8((char)0x80));
  }
  dw_interleave512(x, col);
}

/* The low 256 bits of v in both halves of a vector. */
DW_INLINE __m512i dw_low_half_twice(__m512i v) {
  return _mm512_broadcast_i64x4(_mm512_castsi512_si256(v));
}

/* A block of cn <= 32 channels, two pixels per vector: its column terms and
 * weights (the slots of channels below 32, the low 256 bits of each packed
 * vector) in both halves, its requantization, and its channel mask. */
DW_INLINE __mmask32 dw_half_setup(const q8_dwconv_row *r, int kind, size_t c0, size_t cn,
                                  const unsigned char *block, __m512i terms[4], __m512i w[12],
                                  dw_rq *rs) {
  const __m512i *packed = (const __m512i *)(const void *)block;
  for (size_t i = 0; i < 4; ++i) terms[i] = dw_low_half_twice(packed[i]);
  for (size_t i = 0; i < 12; ++i) w[i] = dw_low_half_twice(packed[4 + i]);
  dw_rq_for(rs, r, kind, c0, cn, 2);
  return (__mmask32)(((uint64_t)1 << cn) - 1);
}

DW_INLINE void dw_block_half_columns(const q8_dwconv_row *r, bool s8, int kind, size_t c0,
                                     size_t cn, const unsigned char *block) {
  __m512i terms[4], w[12];
  dw_rq rs;
  const __mmask32 mask = dw_half_setup(r, kind, c0, cn, block, terms, w, &rs);
  const dw_out o = dw_out_of(r);
  const ptrdiff_t pad = (ptrdiff_t)r->pad_left;
  for (size_t i = 0; i < o.rows; ++i) {
    const dw_rows3 R = dw_rows3_of(r, i, c0);
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    __m512i j2[4]; /* before pair 0: pair 0's j0 itself */
    dw_column_pair_half(&R, -pad, 1, mask, s8, j2);
    /* Past the row's last pixel the high half computes a harmless value
     * (columns outside the input read the zero pixel) that is not stored. */
    for (size_t x = 0; x < o.out_w; x += 2) {
      __m512i j0[4], j1[4], acc[4];
      const ptrdiff_t c = (ptrdiff_t)x - pad;
      for (size_t a = 0; a < 4; ++a) j0[a] = j2[a];
      dw_column_pair_half(&R, c + 2, 1, mask, s8, j2);
      for (size_t a = 0; a < 4; ++a) j1[a] = _mm512_shuffle_i64x2(j0[a], j2[a], 0x4E);
      for (size_t a = 0; a < 4; ++a) {
        const __m512i v = _mm512_dpbusd_epi32(terms[a], j0[a], w[a]);
        acc[a] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(v, j1[a], w[4 + a]), j2[a], w[8 + a]);
      }
      dw_store(out_row + x * o.step, cn, mask, false, kind, acc, o.dtype, &rs,
               x + 1 < o.out_w ? o.step : 0);
    }
  }
}

/* The stride-2 pixels x >= pad / 2 (2 x + 1 >= pad) and x < the result have
 * both columns 2 x + 1 - pad and 2 x + 2 - pad inside a row of in_w pixels. */
static inline size_t dw_s2_inner_end(size_t in_w, size_t pad) {
  return in_w + pad >= 3 ? (in_w + pad - 3) / 2 + 1 : 0; /* 2 x + 2 - pad <= in_w - 1 */
}

/* One stride-2 pixel pair of dw_block_half_s2 with its four new columns
 * inside the row: row[ky] points at the pair's low column 2 x + 1 - pad,
 * the high one `high` bytes further. full: 32 channels, unmasked loads. */
DW_INLINE void dw_pair_s2_inside(const uint8_t *const row[3], size_t channels, size_t high,
                                 __mmask32 mask, bool full, bool s8, const __m512i w[12],
                                 const __m512i terms[4], __m512i next[4], __m512i acc[4]) {
  for (size_t dc = 0; dc < 2; ++dc) {
    __m512i x[3], col[4];
    for (size_t ky = 0; ky < 3; ++ky) {
      const uint8_t *p = row[ky] + dc * channels;
      const __m256i lo = full ? _mm256_loadu_si256((const __m256i *)(const void *)p)
                              : _mm256_maskz_loadu_epi8(mask, p);
      const __m256i hi = full ? _mm256_loadu_si256((const __m256i *)(const void *)(p + high))
                              : _mm256_maskz_loadu_epi8(mask, p + high);
      x[ky] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      if (s8) x[ky] = _mm512_xor_si512(x[ky], _mm512_set1_epi8((char)0x80));
    }
    dw_interleave512(x, col);
    if (dc == 0) {
      dw_s2_mid(col, w, next, acc);
    } else {
      dw_s2_right(col, w, terms, next, acc);
    }
  }
}

/* Stride 2, blocks of at most 32 channels: the low 256 bits hold pixel x,
 * the high ones pixel x + h of the same row (h = half the row, rounded up),
 * so each half walks its own run of columns and the loop is dw_pixel_s2's:
 * two new column pairs per pixel pair, the right one also starting the next
 * pair (next), no lane shuffles and few live registers. Pairing neighbours
 * instead (x | x + 1) needed the previous pair's columns for j0 and spilled
 * 12 vectors per iteration (112x112x32 s2 took longer than 112x112x64 s2).
 * Blocks of at most 16 channels take this path too: it beat their own
 * 4-pixel path, which permuted 128-bit lanes. Zen 5, u8 in, s8 out, median
 * of 5 alternating runs: 112x112x96 s2 45.9 -> 36.5 us, 56x56x144 s2 14.7
 * -> 13.5, 56x56x16 s2 3.76 -> 3.49. */
DW_INLINE void dw_block_half_s2(const q8_dwconv_row *r, bool s8, int kind, size_t c0, size_t cn,
                                const unsigned char *block) {
  __m512i terms[4], w[12];
  dw_rq rs;
  const __mmask32 mask = dw_half_setup(r, kind, c0, cn, block, terms, w, &rs);
  const dw_out o = dw_out_of(r);
  const size_t out_w = o.out_w, h = (out_w + 1) / 2;
  const ptrdiff_t pad = (ptrdiff_t)r->pad_left;
  /* Input columns of pixel x + h lie 2 h to the right of pixel x's. With
   * out_w odd, the last pair's high half is pixel out_w: its columns read
   * the zero pixel or the row's end, and it is not stored. */
  const ptrdiff_t dx = (ptrdiff_t)(2 * h);
  /* Pairs [inner_lo, inner_hi): all four columns inside the row (pixel x's
   * and pixel x + h's), read at plain addresses. */
  const size_t inner_lo = r->pad_left / 2, inner_end = dw_s2_inner_end(r->in_w, r->pad_left);
  const size_t inner_hi = inner_end > h ? inner_end - h : 0;
  for (size_t i = 0; i < o.rows; ++i) {
    const dw_rows3 R = dw_rows3_of(r, i, c0);
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    __m512i col[4], next[4], acc[4];
    dw_column_pair_half(&R, -pad, dx, mask, s8, col);
    for (size_t a = 0; a < 4; ++a) next[a] = _mm512_dpbusd_epi32(terms[a], col[a], w[a]);
    for (size_t x = 0; x < h; ++x) {
      if (x == inner_lo && inner_lo < inner_hi) {
        /* Locals, not r's fields: a field reloaded after the stores to out
         * (which may alias r) would make each pair's loads wait for them. */
        const size_t channels = r->channels, step = o.step, end = inner_hi;
        const size_t at = (2 * x + 1 - r->pad_left) * channels, high = (size_t)dx * channels;
        const uint8_t *row[3] = {R.row[0] + at, R.row[1] + at, R.row[2] + at};
        unsigned char *out = out_row + x * step;
        for (; x < end; ++x, out += step) {
          dw_pair_s2_inside(row, channels, high, mask, cn == DW_CT / 2, s8, w, terms, next, acc);
          dw_store(out, cn, mask, false, kind, acc, o.dtype, &rs, h * step); /* x + h < out_w */
          for (size_t ky = 0; ky < 3; ++ky) row[ky] += 2 * channels;
        }
        if (x == h) break;
      }
      const ptrdiff_t right_x = (ptrdiff_t)(2 * x + 2) - pad;
      dw_column_pair_half(&R, right_x - 1, dx, mask, s8, col);
      dw_s2_mid(col, w, next, acc);
      dw_column_pair_half(&R, right_x, dx, mask, s8, col);
      dw_s2_right(col, w, terms, next, acc);
      dw_store(out_row + x * o.step, cn, mask, false, kind, acc, o.dtype, &rs,
               x + h < out_w ? h * o.step : 0);
    }
  }
}

/* 5x5 by columns, two output pixels at a time (dw5_run). Rows 0-3 of an
 * input column are interleaved once into the 4 dpbusd operands of a group
 * (element e = row e) and serve both pixels that read the column, with the
 * weights of their kx; row 4 goes in blocks of 4 adjacent columns (element
 * e = the run's column 4 b + e), each pixel taking block 0 with the weights
 * of its phase (its first column's place in the block) and block 1 with
 * the rest. Per pixel pair at stride 1: 6 columns and 2 row-4 blocks
 * interleaved (64 unpacks) and 56 dpbusd, where the per-pixel loop of
 * dw_pixel (7 groups of 4 taps, each interleaved per pixel) took 112 and 56.
 * The packing (dw_pack_5x5): groups 0-4 the columns kx = 0..4 (rows 0-3),
 * then per phase p = 0..3 the first block's weights (element e: tap kx =
 * e - p, e >= p) and the second's (kx = 4 + e - p, e <= p). Columns outside
 * the input read the zero pixel; a pixel past the row's end is computed
 * and not stored. Channel tails of at most 32 run two pixel runs per vector
 * (dw_block_5x5_half). Zen 5, u8 -> s8, against oneDNN's AVX-512 kernel in
 * the same run: 56x56x144 s1 1.84x, 28x28x240 s1 2.16x, 14x14x480 s1 2.24x,
 * 56x56x144 s2 1.66x, 14x14x672 s2 1.76x (the per-pixel loop: 0.95x,
 * 1.08x, 1.13x, 0.96x, 1.22x). The loop is bound by loads: every dpbusd
 * takes its weights from memory (52 vectors do not fit the registers), and
 * with C not a multiple of 64 most input loads split a cache line; with
 * the weights in registers (a wrong-result test build) it ran 1.2-1.3x
 * faster. */
#define DW5_GROUPS 13

static size_t tap_5x5(size_t g, size_t e, size_t taps) {
  if (g < 5) return 5 * e + g; /* column kx = g, rows ky = e */
  const size_t phase = (g - 5) / 2;
  if ((g - 5) % 2 == 0) return e >= phase ? 20 + e - phase : taps;
  return e <= phase ? 24 + e - phase : taps;
}

static size_t dw_packed_bytes_5x5(size_t channels, size_t taps) {
  (void)taps;
  return (channels + DW_CT - 1) / DW_CT * block_bytes_of_groups(DW5_GROUPS);
}

static void dw_pack_5x5(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                        void *packed) {
  dw_pack_groups(channels, taps, DW5_GROUPS, w, col_term, tap_5x5, packed);
}

/* Four inputs as the 4 dpbusd operands of a group, in slot order; fields,
 * not an array (GCC kept arrays of these on the stack). */
typedef struct dw5_group {
  __m512i g0, g1, g2, g3;
} dw5_group;

DW_INLINE dw5_group dw5_interleave(__m512i x0, __m512i x1, __m512i x2, __m512i x3) {
  const __m512i a_lo = _mm512_unpacklo_epi8(x0, x1), a_hi = _mm512_unpackhi_epi8(x0, x1);
  const __m512i b_lo = _mm512_unpacklo_epi8(x2, x3), b_hi = _mm512_unpackhi_epi8(x2, x3);
  return (dw5_group){_mm512_unpacklo_epi16(a_lo, b_lo), _mm512_unpackhi_epi16(a_lo, b_lo),
                     _mm512_unpacklo_epi16(a_hi, b_hi), _mm512_unpackhi_epi16(a_hi, b_hi)};
}

/* Row ky of input column ix (at byte offset off; in: inside the row). half:
 * a block of at most 32 channels, two runs in a vector: column ix in the
 * low 256 bits, ix + dx in the high ones. */
DW_INLINE __m512i dw5_load(const dw_rows5 *R, size_t ky, ptrdiff_t ix, size_t off, uintptr_t in,
                           bool half, ptrdiff_t dx, __mmask64 mask, bool full, bool s8,
                           bool inside) {
  if (!half) return dw_load(dw_rows5_at(R, ky, off, in, inside), mask, full, s8);
  const uintptr_t in_hi = -(uintptr_t)((size_t)(ix + dx) < R->in_w);
  const size_t off_hi = off + (size_t)dx * R->channels;
  const __m256i lo = _mm256_maskz_loadu_epi8((__mmask32)mask, dw_rows5_at(R, ky, off, in, inside));
  const __m256i hi =
      _mm256_maskz_loadu_epi8((__mmask32)mask, dw_rows5_at(R, ky, off_hi, in_hi, inside));
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return s8 ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
}

/* A value GCC cannot see through: each column's weight addresses and input
 * offset are then computed in place. As loop invariants, GCC hoisted the
 * 52 weight vectors (or their addresses) and every column's offset out of
 * the pixel loop into registers of their own, which spilled the
 * accumulators. */
DW_INLINE size_t dw5_opaque(size_t v) {
  __asm__("" : "+r"(v));
  return v;
}

#define DW5_DOT(acc, G, W)                          \
  do {                                              \
    (acc)[0] = _mm512_dpbusd_epi32((acc)[0], (G).g0, (W)[0]); \
    (acc)[1] = _mm512_dpbusd_epi32((acc)[1], (G).g1, (W)[1]); \
    (acc)[2] = _mm512_dpbusd_epi32((acc)[2], (G).g2, (W)[2]); \
    (acc)[3] = _mm512_dpbusd_epi32((acc)[3], (G).g3, (W)[3]); \
  } while (0)

/* Rows 0-3 of column ix (see dw5_load). */
DW_INLINE dw5_group dw5_column(const dw_rows5 *R, ptrdiff_t ix, size_t off, uintptr_t in,
                               bool half, ptrdiff_t dx, __mmask64 mask, bool full, bool s8,
                               bool inside) {
  return dw5_interleave(dw5_load(R, 0, ix, off, in, half, dx, mask, full, s8, inside),
                        dw5_load(R, 1, ix, off, in, half, dx, mask, full, s8, inside),
                        dw5_load(R, 2, ix, off, in, half, dx, mask, full, s8, inside),
                        dw5_load(R, 3, ix, off, in, half, dx, mask, full, s8, inside));
}

/* Two pixels whose first input columns are x0 and x0 + stride, reading the
 * DW5_COLS(stride) columns from x0. Their column taps go kx by kx: a weight
 * group is loaded once for both pixels (columns kx and stride + kx), the
 * last stride + 1 columns held; the row-4 blocks follow. (Splitting each
 * pixel's 7-deep chain in two measured level.) inside: every column read is
 * inside the row; half, dx: see dw5_load. */
DW_INLINE void dw5_run(const dw_rows5 *R, ptrdiff_t x0, size_t stride, bool half, ptrdiff_t dx,
                       __mmask64 mask, bool full, bool s8, bool inside, const __m512i *terms,
                       const __m512i *w, __m512i acc[2][4]) {
  const size_t cols = DW5_COLS(stride), C = R->channels;
  for (size_t j = 0; j < 2; ++j) {
    for (size_t a = 0; a < 4; ++a) acc[j][a] = terms[a];
  }
  const size_t off0 = (size_t)x0 * C;
  dw5_group back2 = {0}, back1 = {0}; /* columns c - 2 and c - 1 */
#pragma GCC unroll 8
  for (size_t c = 0; c < cols; ++c) {
    const size_t off = dw5_opaque(off0 + c * C);
    const ptrdiff_t ix = x0 + (ptrdiff_t)c;
    const uintptr_t in = -(uintptr_t)((size_t)ix < R->in_w);
    const dw5_group g = dw5_column(R, ix, off, in, half, dx, mask, full, s8, inside);
    if (c >= stride) {
      const size_t kx = c - stride;
      const __m512i *wk = (const __m512i *)dw5_opaque((size_t)w) + 4 * kx;
      const dw5_group first = stride == 1 ? back1 : back2; /* column kx */
      DW5_DOT(acc[0], first, wk);
      DW5_DOT(acc[1], g, wk);
    }
    back2 = back1;
    back1 = g;
  }
  /* Row 4 in blocks of 4 columns; a column past the last one read repeats
   * it (its weights are 0), so a run reads no further than its taps. */
#pragma GCC unroll 2
  for (size_t b = 0; b < 2; ++b) {
    __m512i x[4];
    for (size_t e = 0; e < 4; ++e) {
      const size_t c = 4 * b + e < cols ? 4 * b + e : cols - 1;
      const ptrdiff_t ix = x0 + (ptrdiff_t)c;
      const uintptr_t in = -(uintptr_t)((size_t)ix < R->in_w);
      x[e] = dw5_load(R, 4, ix, dw5_opaque(off0 + c * C), in, half, dx, mask, full, s8, inside);
    }
    const dw5_group g = dw5_interleave(x[0], x[1], x[2], x[3]);
    const __m512i *wb = (const __m512i *)dw5_opaque((size_t)w);
    for (size_t j = 0; j < 2; ++j) {
      /* Pixel j's first column is stride * j (< 4): block 0 with the first
       * weights of its phase, block 1 with the second. */
      const size_t phase = stride * j;
      DW5_DOT(acc[j], g, wb + 4 * (5 + 2 * phase + b));
    }
  }
}

DW_INLINE void dw_block_5x5(const q8_dwconv_row *r, size_t stride, bool s8, bool full, int kind,
                            size_t c0, size_t cn, const unsigned char *block) {
  const __mmask64 mask = full ? ~(__mmask64)0 : (((__mmask64)1 << cn) - 1);
  const __m512i *terms = (const __m512i *)(const void *)block;
  dw_rq rs;
  dw_rq_for(&rs, r, kind, c0, cn, 1);
  const dw_out o = dw_out_of(r);
  const ptrdiff_t pad = (ptrdiff_t)r->pad_left;
  for (size_t i = 0; i < o.rows; ++i) {
    const dw_rows5 R = dw_rows5_of(r, i, c0);
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    for (size_t x = 0; x < o.out_w; x += 2) {
      const ptrdiff_t x0 = (ptrdiff_t)(x * stride) - pad;
      __m512i acc[2][4];
      if (dw5_run_inside(r, x0, stride)) {
        dw5_run(&R, x0, stride, false, 0, mask, full, s8, true, terms, terms + 4, acc);
      } else {
        dw5_run(&R, x0, stride, false, 0, mask, full, s8, false, terms, terms + 4, acc);
      }
      dw_store(out_row + x * o.step, cn, mask, full, kind, acc[0], o.dtype, &rs, 0);
      if (x + 1 < o.out_w) {
        dw_store(out_row + (x + 1) * o.step, cn, mask, full, kind, acc[1], o.dtype, &rs, 0);
      }
    }
  }
}

/* A block of at most 32 channels, two runs per vector: the runs from pixel x
 * in the low 256 bits and from x + h in the high ones (h: half the row,
 * even), with the weights and requantization of the block's channels in
 * both halves (as dw_block_half_s2 does for 3x3). */
DW_INLINE void dw_block_5x5_half(const q8_dwconv_row *r, size_t stride, bool s8, int kind,
                                 size_t c0, size_t cn, const unsigned char *block) {
  const __mmask64 mask = ((__mmask64)1 << cn) - 1;
  const __m512i *packed = (const __m512i *)(const void *)block;
  __m512i both[4 + 4 * DW5_GROUPS]; /* terms, then the weight groups */
  for (size_t i = 0; i < 4 + 4 * DW5_GROUPS; ++i) both[i] = dw_low_half_twice(packed[i]);
  dw_rq rs;
  dw_rq_for(&rs, r, kind, c0, cn, 2);
  const dw_out o = dw_out_of(r);
  const ptrdiff_t pad = (ptrdiff_t)r->pad_left;
  const size_t h = (o.out_w + 3) / 4 * 2;
  const ptrdiff_t dx = (ptrdiff_t)(h * stride);
  for (size_t i = 0; i < o.rows; ++i) {
    const dw_rows5 R = dw_rows5_of(r, i, c0);
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    for (size_t x = 0; x < h && x < o.out_w; x += 2) {
      const ptrdiff_t x0 = (ptrdiff_t)(x * stride) - pad;
      __m512i acc[2][4];
      if (dw5_run_inside(r, x0, stride) && dw5_run_inside(r, x0 + dx, stride)) {
        dw5_run(&R, x0, stride, true, dx, mask, false, s8, true, both, both + 4, acc);
      } else {
        dw5_run(&R, x0, stride, true, dx, mask, false, s8, false, both, both + 4, acc);
      }
      for (size_t j = 0; j < 2 && x + j < o.out_w; ++j) {
        const size_t step = x + j + h < o.out_w ? h * o.step : 0;
        dw_store(out_row + (x + j) * o.step, cn, mask, false, kind, acc[j], o.dtype, &rs, step);
      }
    }
  }
}

DW_INLINE void dw_row_5x5(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                          size_t dilation, bool u8, bool dedicated) {
  (void)kh, (void)kw, (void)dilation, (void)dedicated;
  const bool s8 = !u8;
  const size_t bytes = block_bytes_of_groups(DW5_GROUPS);
  const int kind = dw_out_kind(r->rq);
  for (size_t c0 = 0; c0 < r->channels; c0 += DW_CT) {
    const size_t cn = r->channels - c0 < DW_CT ? r->channels - c0 : DW_CT;
    const unsigned char *block = (const unsigned char *)r->packed + c0 / DW_CT * bytes;
#define DW_BLOCK_AS(k) dw_block_5x5(r, stride, s8, true, k, c0, cn, block)
#define DW_TAIL_AS(k) dw_block_5x5(r, stride, s8, false, k, c0, cn, block)
    if (cn == DW_CT) {
      DW_WITH_KIND_CONSTANT(kind, DW_BLOCK_AS)
    } else if (cn <= DW_CT / 2) {
      dw_block_5x5_half(r, stride, s8, kind, c0, cn, block);
    } else {
      DW_WITH_KIND_CONSTANT(kind, DW_TAIL_AS)
    }
#undef DW_BLOCK_AS
#undef DW_TAIL_AS
  }
}

/* One channel block over the whole output row. */
DW_INLINE void dw_block(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                        size_t dilation, bool s8, bool dedicated, bool columns, bool full,
                        bool half, int kind, size_t c0, size_t cn, const unsigned char *block) {
  if (columns && half && stride == 2) {
    dw_block_half_s2(r, s8, kind, c0, cn, block);
    return;
  }
  if (columns && half) {
    dw_block_half_columns(r, s8, kind, c0, cn, block);
    return;
  }
  if (columns) {
    dw_block_columns(r, stride, s8, full, kind, c0, cn, block);
    return;
  }
  const __mmask64 mask = full ? ~(__mmask64)0 : (((__mmask64)1 << cn) - 1);
  const __m512i *terms = (const __m512i *)(const void *)block;
  const __m512i *w = terms + 4; /* from memory (the generic kernel, any shape) */
  (void)dedicated;
  dw_rq rs;
  dw_rq_for(&rs, r, kind, c0, cn, 1);
  const size_t span = (kw - 1) * dilation;
  const dw_out o = dw_out_of(r);
  for (size_t i = 0; i < o.rows; ++i) {
    const q8_dwconv_row one = q8_dwconv_row_at(r, i); /* the taps read one.rows */
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    for (size_t x = 0; x < one.out_w; ++x) {
      const ptrdiff_t ix0 = (ptrdiff_t)(x * stride) - (ptrdiff_t)one.pad_left;
      __m512i acc[4] = {terms[0], terms[1], terms[2], terms[3]};
      const bool interior = ix0 >= 0 && (size_t)ix0 + span < one.in_w;
      if (half && interior) {
        dw_pixel_half(&one, kh, kw, dilation, ix0, c0, (__mmask32)mask, s8, true, w, acc);
      } else if (half) {
        dw_pixel_half(&one, kh, kw, dilation, ix0, c0, (__mmask32)mask, s8, false, w, acc);
      } else if (interior) {
        dw_pixel(&one, kh, kw, dilation, ix0, c0, mask, full, s8, true, w, acc);
      } else {
        dw_pixel(&one, kh, kw, dilation, ix0, c0, mask, full, s8, false, w, acc);
      }
      dw_store(out_row + x * o.step, cn, mask, full, kind, acc, o.dtype, &rs, 0);
    }
  }
}

/* dw_block with the output kind as a constant: one loop per kind. */
DW_INLINE void dw_block_kind(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                             size_t dilation, bool s8, bool dedicated, bool columns, bool full,
                             bool half, int kind, size_t c0, size_t cn,
                             const unsigned char *block) {
#define DW_BLOCK_AS(k)                                                                       \
  dw_block(r, kh, kw, stride, dilation, s8, dedicated, columns, full, half, k, c0, cn, block)
  DW_WITH_KIND_CONSTANT(kind, DW_BLOCK_AS)
#undef DW_BLOCK_AS
}

DW_INLINE void dw_row_by(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                         size_t dilation, bool u8, bool dedicated, bool columns) {
  const bool s8 = !u8;
  const size_t bytes = block_bytes(kh * kw);
  for (size_t c0 = 0; c0 < r->channels; c0 += DW_CT) {
    const size_t cn = r->channels - c0 < DW_CT ? r->channels - c0 : DW_CT;
    const unsigned char *block = (const unsigned char *)r->packed + c0 / DW_CT * bytes;
    const int kind = dw_out_kind(r->rq);
    if (cn == DW_CT) {
      dw_block_kind(r, kh, kw, stride, dilation, s8, dedicated, columns, true, false, kind, c0,
                    cn, block);
    } else if (cn <= DW_CT / 2) {
      dw_block_kind(r, kh, kw, stride, dilation, s8, dedicated, columns, false, true, kind, c0,
                    cn, block);
    } else {
      dw_block(r, kh, kw, stride, dilation, s8, dedicated, columns, false, false, kind, c0, cn,
               block);
    }
  }
}

DW_INLINE void dw_row(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                      size_t dilation, bool u8, bool dedicated) {
  dw_row_by(r, kh, kw, stride, dilation, u8, dedicated, false);
}

DW_INLINE void dw_row_columns(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                              size_t dilation, bool u8, bool dedicated) {
  dw_row_by(r, kh, kw, stride, dilation, u8, dedicated, true);
}

DW_DEFINE_WITH(q8_dwconv_x8s8_3x3s1c64__avx512vnni, dw_row_columns, dw_pack_columns, 3, 3, 1)
DW_DEFINE_WITH(q8_dwconv_x8s8_3x3s2c64__avx512vnni, dw_row_columns, dw_pack_columns, 3, 3, 2)
DW_DEFINE_PACKED(q8_dwconv_x8s8_5x5s1c64__avx512vnni, dw_row_5x5, dw_pack_5x5,
                 dw_packed_bytes_5x5, 5, 5, 1)
DW_DEFINE_PACKED(q8_dwconv_x8s8_5x5s2c64__avx512vnni, dw_row_5x5, dw_pack_5x5,
                 dw_packed_bytes_5x5, 5, 5, 2)
DW_DEFINE_GENERIC(q8_dwconv_x8s8_generic_c64__avx512vnni)
