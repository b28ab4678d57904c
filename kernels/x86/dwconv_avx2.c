/* AVX2 depthwise kernels: 16 channels per block (two ymm accumulators of 8
 * int32), taps in pairs: the int16 inputs of taps t and t + 1 are interleaved
 * with punpck{l,h}wd and multiplied by the packed weight pairs with pmaddwd,
 * which is exact (each product fits int16: |x| <= 255, |w| <= 128; the pair
 * sum int32), unlike pmaddubsw. 3x3 pairs the taps by columns instead
 * (dw_block_columns). Padding reads zero-point bytes, cancelled by
 * the packed column terms (see the depthwise section of q8/kernels.h).
 * Channel blocks are the outer loop of a call, so a block's weights and
 * requantization parameters are loaded once for all the call's output rows
 * and the input rows (a few KB each) stay in L1 across blocks. Channel tails
 * go through a small stack copy: AVX2 has no byte-masked loads and the input
 * may end at a page boundary. Compiled through function attributes. */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/x86/requant_avx2.h"
/* Each block runs every output row of a call (set up once, see q8_dwconv_row). */
#define DW_ROWS_INSIDE 1
#include "kernels/dwconv_entry.h"
#include "q8/kernels.h"

#define DW_INLINE static inline __attribute__((always_inline)) Q8_AVX2_TARGET
#define DW_FN static __attribute__((noinline)) Q8_AVX2_TARGET
#define DW_VEC __m256i
#define DW_CT 16
#define DW_INT8_A_OFFSET 0
#define DW_UINT8_A_OFFSET 0
#define DW_UNPACKLO _mm256_unpacklo_epi16
#define DW_UNPACKHI _mm256_unpackhi_epi16
#define DW_DOT(acc, x, w) _mm256_add_epi32((acc), _mm256_madd_epi16((x), (w)))

/* Requantization of a block in the accumulators' order (the unpacks leave
 * channels 0-3 and 8-11 in lo, 4-7 and 12-15 in hi), so the packs put the
 * bytes back in channel order without the lane permutes of a column-order
 * epilogue (2 of them per pixel, plus one in the narrowing). */
typedef struct dw_rq {
  q8_rq8_avx2 half[2]; /* for lo, for hi */
} DW_RQ;

DW_INLINE __m256i dw_load_x(const uint8_t *p, size_t cn, bool full, bool u8) {
  __m128i v;
  if (full) {
    v = _mm_loadu_si128((const __m128i_u *)p);
  } else {
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, cn);
    v = _mm_loadu_si128((const __m128i_u *)tmp);
  }
  return u8 ? _mm256_cvtepu8_epi16(v) : _mm256_cvtepi8_epi16(v);
}

/* Channel of the block in lane i of half h (0: lo, 1: hi). */
static size_t dw_lane_channel(size_t h, size_t i) {
  return 4 * h + (i < 4 ? i : i + 4);
}

/* Half h of 16 per-channel 32-bit entries at p (int32 or float) in the
 * accumulators' lane order (dw_lane_channel): the low (h = 0) or high
 * 128-bit halves of entries 0-7 and 8-15. */
DW_INLINE __m256i dw_lanes32(const void *p, size_t h) {
  const __m256i first = _mm256_loadu_si256((const __m256i *)p);
  const __m256i second = _mm256_loadu_si256((const __m256i *)p + 1);
  return h == 0 ? _mm256_permute2x128_si256(first, second, 0x20)
                : _mm256_permute2x128_si256(first, second, 0x31);
}

DW_FN void dw_rq_init(DW_RQ *s, const q8_requant_params *rq, size_t c0, size_t cn) {
  if (rq->channels == 1) { /* per tensor: the same lanes in both halves */
    q8_rq8_avx2_prepare(rq, 0, 8, &s->half[0]);
    s->half[1] = s->half[0];
    return;
  }
  if (cn == DW_CT) {
    /* A full block: the lanes of half h by 128-bit permutes (through the
     * scalar lanes below, this setup was 7 % of a one-row call, 112x112x96
     * s2). */
    const bool integer = rq->mode == Q8_REQUANT_GEMMLOWP || rq->mode == Q8_REQUANT_SINGLE;
    const __m256i zero = _mm256_setzero_si256();
    for (size_t h = 0; h < 2; ++h) {
      q8_rq8_avx2_prepare_from(
          rq, integer ? dw_lanes32(rq->multiplier + c0, h) : zero,
          integer ? dw_lanes32(rq->shift + c0, h) : zero,
          integer ? _mm256_setzero_ps() : _mm256_castsi256_ps(dw_lanes32(rq->scale + c0, h)),
          &s->half[h]);
    }
    return;
  }
  for (size_t h = 0; h < 2; ++h) {
    /* Lanes past the block's channels get zeros: harmless, never stored. */
    int32_t multiplier[8] = {0}, shift[8] = {0};
    float scale[8] = {0};
    for (size_t i = 0; i < 8; ++i) {
      const size_t c = dw_lane_channel(h, i);
      if (c >= cn) continue;
      if (rq->multiplier) multiplier[i] = rq->multiplier[c0 + c];
      if (rq->shift) shift[i] = rq->shift[c0 + c];
      if (rq->scale) scale[i] = rq->scale[c0 + c];
    }
    q8_requant_params lanes = *rq;
    lanes.channels = 8;
    lanes.multiplier = multiplier;
    lanes.shift = shift;
    lanes.scale = scale;
    q8_rq8_avx2_prepare(&lanes, 0, 8, &s->half[h]);
  }
}

DW_INLINE void dw_store(unsigned char *out, size_t cn, __m256i lo, __m256i hi, int kind,
                        q8_dtype out_dtype, const DW_RQ *s) {
  if (kind == DW_OUT_I32) {
    /* int32 goes out in channel order: swap the middle halves. */
    const __m256i first = _mm256_permute2x128_si256(lo, hi, 0x20);
    const __m256i second = _mm256_permute2x128_si256(lo, hi, 0x31);
    q8_rq_avx2_store8_i32(out, first, cn < 8 ? cn : 8);
    if (cn > 8) q8_rq_avx2_store8_i32(out + 32, second, cn - 8);
    return;
  }
  __m128i b;
  if (kind >= DW_OUT_FP32) {
    const bool clamp_free = kind == DW_OUT_FP32_FREE;
    b = q8_rq_avx2_narrow16_fp32(q8_rq_avx2_fp32_upper(lo, &s->half[0], clamp_free),
                                 q8_rq_avx2_fp32_upper(hi, &s->half[1], clamp_free), &s->half[0],
                                 out_dtype, false);
  } else {
    const int mode = kind == DW_OUT_GEMMLOWP ? Q8_REQUANT_GEMMLOWP : Q8_REQUANT_SINGLE;
    b = q8_rq_avx2_narrow16(q8_rq8_avx2_apply_as(lo, &s->half[0], mode),
                            q8_rq8_avx2_apply_as(hi, &s->half[1], mode), out_dtype, false);
  }
  q8_rq_avx2_store_bytes16(out, b, cn);
}


DW_INLINE void dw_pixel(const q8_dwconv_row *r, size_t kh, size_t kw, size_t dilation,
                        ptrdiff_t ix0, size_t c0, size_t cn, bool full, bool u8, bool interior,
                        const DW_VEC *w, DW_VEC *lo, DW_VEC *hi) {
  const size_t taps = kh * kw;
  size_t ky = 0, kx = 0;
  for (size_t t = 0; t < taps; t += 2) {
    const DW_VEC xa = dw_load_x(dw_tap(r, ky, kx, ix0, dilation, c0, interior), cn, full, u8);
    if (++kx == kw) kx = 0, ++ky;
    DW_VEC xb = xa; /* an odd last tap meets zero weights */
    if (t + 1 < taps) {
      xb = dw_load_x(dw_tap(r, ky, kx, ix0, dilation, c0, interior), cn, full, u8);
      if (++kx == kw) kx = 0, ++ky;
    }
    *lo = DW_DOT(*lo, DW_UNPACKLO(xa, xb), w[t]);
    *hi = DW_DOT(*hi, DW_UNPACKHI(xa, xb), w[t + 1]);
  }
}

/* One channel block over every output row of the call. */
DW_INLINE void dw_block(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                        size_t dilation, bool u8, bool dedicated, bool full, int kind, size_t c0,
                        size_t cn, const DW_VEC *block) {
  const DW_VEC bias_lo = block[0], bias_hi = block[1];
  const DW_VEC *w = block + 2; /* from memory (the generic kernel, any shape) */
  (void)dedicated;
  DW_RQ rs;
  if (kind != DW_OUT_I32) dw_rq_init(&rs, r->rq, c0, cn);
  const size_t span = (kw - 1) * dilation;
  const dw_out o = dw_out_of(r);
  for (size_t i = 0; i < o.rows; ++i) {
    const q8_dwconv_row one = q8_dwconv_row_at(r, i); /* the taps read one.rows */
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    for (size_t x = 0; x < o.out_w; ++x) {
      const ptrdiff_t ix0 = (ptrdiff_t)(x * stride) - (ptrdiff_t)one.pad_left;
      DW_VEC lo = bias_lo, hi = bias_hi;
      if (ix0 >= 0 && (size_t)ix0 + span < one.in_w) {
        dw_pixel(&one, kh, kw, dilation, ix0, c0, cn, full, u8, true, w, &lo, &hi);
      } else {
        dw_pixel(&one, kh, kw, dilation, ix0, c0, cn, full, u8, false, w, &lo, &hi);
      }
      dw_store(out_row + x * o.step, cn, lo, hi, kind, o.dtype, &rs);
    }
  }
}

/* 3x3 by columns: rows 0 and 1 of an input column are interleaved once into
 * the (lo, hi) operands of a tap pair and serve every output pixel that reads
 * the column (3 at stride 1, with the weights of kx = 2, 1, 0; 2 at stride 2);
 * row 2 pairs the pixel's first two columns, and its third column with a
 * zero weight. Per output pixel at stride 1, 3 widening loads and 6 unpacks
 * instead of 9 and 10 (both on the two shuffle pipes); at stride 2, 6 and 8;
 * the same 10 pmaddwd. The packing pairs the taps so (dw_pack_columns). Zen
 * 5, alternating processes, median of 8-10 pairs: stride 1 56x56x144 1.16x,
 * 112x112x32 1.17x, 14x14x576 1.20x faster; stride 2 (after the lane-order
 * requantization, which made the rest cheaper: before it, 0.93-1.09x)
 * 56x56x144 1.08x, 112x112x96 1.07x, 14x14x576 1.08x, 28x28x192 1.07x. */
static const uint8_t dw_column_order[9] = {0, 3, 1, 4, 2, 5, 6, 7, 8};

/* The 3 input rows of an output row at the block's first channel, and the
 * zero pixel read outside them. */
typedef struct dw_rows3 {
  const uint8_t *row[3], *zero;
  size_t in_w, channels;
} dw_rows3;

/* Input column ix (the zero pixel outside the row), widened: rows 0-1
 * interleaved (lo, hi), and row 2. */
typedef struct dw_col {
  DW_VEC lo, hi, r2;
} dw_col;

/* Input column ix, known to be inside the row, widened. */
DW_INLINE dw_col dw_col_inside(const dw_rows3 *R, size_t ix, size_t cn, bool full, bool u8) {
  const size_t at = ix * R->channels;
  const DW_VEC x0 = dw_load_x(R->row[0] + at, cn, full, u8);
  const DW_VEC x1 = dw_load_x(R->row[1] + at, cn, full, u8);
  return (dw_col){.lo = DW_UNPACKLO(x0, x1), .hi = DW_UNPACKHI(x0, x1),
                  .r2 = dw_load_x(R->row[2] + at, cn, full, u8)};
}

/* Input column ix, the zero pixel outside the row. */
DW_INLINE dw_col dw_col_at(const dw_rows3 *R, ptrdiff_t ix, size_t cn, bool full, bool u8) {
  /* One bounds test for the column (unsigned: left of the input wraps to a
   * huge value), not dw_tap's per row. */
  if ((size_t)ix < R->in_w) return dw_col_inside(R, (size_t)ix, cn, full, u8);
  const DW_VEC z = dw_load_x(R->zero, cn, full, u8);
  return (dw_col){.lo = DW_UNPACKLO(z, z), .hi = DW_UNPACKHI(z, z), .r2 = z};
}

/* One output pixel from its three columns. */
DW_INLINE void dw_pixel3(const dw_col *a, const dw_col *b, const dw_col *c, const DW_VEC *w,
                         DW_VEC bias_lo, DW_VEC bias_hi, unsigned char *out, size_t cn, int kind,
                         q8_dtype out_dtype, const DW_RQ *rs) {
  DW_VEC lo = DW_DOT(bias_lo, a->lo, w[0]), hi = DW_DOT(bias_hi, a->hi, w[1]);
  lo = DW_DOT(lo, b->lo, w[2]);
  hi = DW_DOT(hi, b->hi, w[3]);
  lo = DW_DOT(lo, c->lo, w[4]);
  hi = DW_DOT(hi, c->hi, w[5]);
  lo = DW_DOT(lo, DW_UNPACKLO(a->r2, b->r2), w[6]);
  hi = DW_DOT(hi, DW_UNPACKHI(a->r2, b->r2), w[7]);
  /* Tap (2, 2), paired with a zero weight (c->r2 itself fills the pair). */
  lo = DW_DOT(lo, DW_UNPACKLO(c->r2, c->r2), w[8]);
  hi = DW_DOT(hi, DW_UNPACKHI(c->r2, c->r2), w[9]);
  dw_store(out, cn, lo, hi, kind, out_dtype, rs);
}

/* A pixel at the border: each of its columns tested. */
DW_INLINE void dw_pixel3_border(const dw_rows3 *R, ptrdiff_t ix0, const DW_VEC *w, DW_VEC bias_lo,
                                DW_VEC bias_hi, unsigned char *out, size_t cn, bool full, bool u8,
                                int kind, q8_dtype out_dtype, const DW_RQ *rs) {
  const dw_col a = dw_col_at(R, ix0, cn, full, u8), b = dw_col_at(R, ix0 + 1, cn, full, u8),
               c = dw_col_at(R, ix0 + 2, cn, full, u8);
  dw_pixel3(&a, &b, &c, w, bias_lo, bias_hi, out, cn, kind, out_dtype, rs);
}

/* Each row: the pixels whose three columns are all inside the input run
 * without bounds tests; the border pixels test each column. Together with
 * the vector lane setup of dw_rq_init, Zen 5, alternating processes, u8 in,
 * s8 out, median of 8 pairs: stride 2 112x112x96 1.09x, 56x56x144 1.10x,
 * 28x28x192 1.07x, 14x14x576 1.03x faster; stride 1 level. Two pixels per
 * iteration (no register copies for the column rotation) ran slower: at
 * stride 2 five live columns are 15 of the 16 ymm. */
DW_INLINE void dw_block_columns(const q8_dwconv_row *r, size_t stride, bool u8, bool full,
                                int kind, size_t c0, size_t cn, const DW_VEC *block) {
  const DW_VEC bias_lo = block[0], bias_hi = block[1];
  const DW_VEC *w = block + 2; /* pair p: w[2 p] for the low unpack, w[2 p + 1] the high */
  DW_RQ rs;
  if (kind != DW_OUT_I32) dw_rq_init(&rs, r->rq, c0, cn);
  const size_t pad = r->pad_left, in_w = r->in_w;
  const dw_out o = dw_out_of(r);
  /* Interior pixels [first, end): ox * stride >= pad and ox * stride - pad + 2 < in_w. */
  const size_t first_inside = (pad + stride - 1) / stride;
  const size_t first = first_inside < o.out_w ? first_inside : o.out_w;
  size_t end = in_w + pad >= 3 ? (in_w + pad - 3) / stride + 1 : 0;
  if (end > o.out_w) end = o.out_w;
  if (end < first) end = first;
  for (size_t i = 0; i < o.rows; ++i) {
    dw_rows3 R = {.zero = (const uint8_t *)r->zero_pixel + c0, .in_w = in_w,
                  .channels = r->channels};
    for (size_t ky = 0; ky < 3; ++ky) R.row[ky] = (const uint8_t *)r->rows[3 * i + ky] + c0;
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    for (size_t ox = 0; ox < first; ++ox) {
      dw_pixel3_border(&R, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad, w, bias_lo, bias_hi,
                       out_row + ox * o.step, cn, full, u8, kind, o.dtype, &rs);
    }
    if (first < end) {
      size_t ix = first * stride - pad;
      dw_col a = dw_col_inside(&R, ix, cn, full, u8), b = dw_col_inside(&R, ix + 1, cn, full, u8);
      for (size_t ox = first; ox < end; ++ox, ix += stride) {
        /* Stride 2 shares only the last column with the next pixel. */
        if (stride == 2 && ox > first) b = dw_col_inside(&R, ix + 1, cn, full, u8);
        const dw_col c = dw_col_inside(&R, ix + 2, cn, full, u8);
        dw_pixel3(&a, &b, &c, w, bias_lo, bias_hi, out_row + ox * o.step, cn, kind, o.dtype, &rs);
        a = stride == 1 ? b : c;
        b = c;
      }
    }
    for (size_t ox = end; ox < o.out_w; ++ox) {
      dw_pixel3_border(&R, (ptrdiff_t)(ox * stride) - (ptrdiff_t)pad, w, bias_lo, bias_hi,
                       out_row + ox * o.step, cn, full, u8, kind, o.dtype, &rs);
    }
  }
}

/* 5x5 by columns, two output pixels at a time (dw5_run): rows 0-1 and 2-3 of
 * an input column are widened and interleaved once (the 4 pmaddwd operands
 * of the column) and serve both pixels that read it, with the weights of
 * their kx; row 4 goes in pairs of adjacent columns, each pixel taking the
 * 3 pairs from its first column's pair with the weights of its phase (its
 * first column even or odd). Per pixel pair at stride 1: 30 widening loads
 * and 18 unpacks, where the per-pixel loop of dw_pixel took 50 and 52; the
 * same 52 pmaddwd. Zen 5, u8 -> s8, against oneDNN capped to AVX2
 * (EfficientNet-B0's 5x5 layers): 1.29-1.81x, where the per-pixel loop ran
 * at 0.9-1.0x. Packing (dw_pack_5x5, dw_5x5_order): pairs 2 kx and
 * 2 kx + 1 rows (0, 1) and (2, 3) of column kx, then row 4 by phase:
 * (w40, w41) (w42, w43) (w44, 0), and (0, w40) (w41, w42) (w43, w44). */
static const uint8_t dw_5x5_order[32] = {
    0,  5,  10, 15, 1,  6,  11, 16, 2,  7,  12, 17, 3,  8,  13, 18,
    4,  9,  14, 19, 20, 21, 22, 23, 24, 25, 25, 20, 21, 22, 23, 24};
/* 25: no tap (weight 0). */

static size_t dw_packed_bytes_5x5(size_t channels, size_t taps) {
  (void)taps;
  return q8_dwconv_pack_pairs_bytes(DW_CT, channels, sizeof dw_5x5_order);
}

static void dw_pack_5x5(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                        void *packed) {
  q8_dwconv_pack_pairs_ordered(DW_CT, channels, taps, w, col_term, dw_5x5_order,
                               sizeof dw_5x5_order, packed);
}

/* Row ky of input column ix, widened; the zero pixel outside the row
 * (inside: known not to happen). */
DW_INLINE DW_VEC dw5_load(const dw_rows5 *R, size_t ky, ptrdiff_t ix, size_t cn, bool full,
                          bool u8, bool inside) {
  const uintptr_t in = -(uintptr_t)((size_t)ix < R->in_w);
  return dw_load_x(dw_rows5_at(R, ky, (size_t)ix * R->channels, in, inside), cn, full, u8);
}

/* A column's rows 0-1 and 2-3 as pmaddwd operands. */
typedef struct dw5_col {
  DW_VEC lo01, hi01, lo23, hi23;
} dw5_col;

/* w, as an address GCC cannot see through: the weights are then read where
 * used (pmaddwd memory operands). As loop invariants GCC copied all 32 to
 * the stack before the loop and added through spilled registers. */
DW_INLINE const DW_VEC *dw5_opaque(const DW_VEC *w) {
  __asm__("" : "+r"(w));
  return w;
}

/* Two pixels whose first input columns are x0 and x0 + stride; acc: lo, hi
 * of pixel 0, then of pixel 1. */
DW_INLINE void dw5_run(const dw_rows5 *R, ptrdiff_t x0, size_t stride, size_t cn, bool full,
                       bool u8, bool inside, const DW_VEC *w, DW_VEC acc[4]) {
  const size_t cols = DW5_COLS(stride);
#pragma GCC unroll 8
  for (size_t c = 0; c < cols; ++c) {
    const ptrdiff_t ix = x0 + (ptrdiff_t)c;
    const DW_VEC x0v = dw5_load(R, 0, ix, cn, full, u8, inside);
    const DW_VEC x1v = dw5_load(R, 1, ix, cn, full, u8, inside);
    const DW_VEC x2v = dw5_load(R, 2, ix, cn, full, u8, inside);
    const DW_VEC x3v = dw5_load(R, 3, ix, cn, full, u8, inside);
    const dw5_col g = {DW_UNPACKLO(x0v, x1v), DW_UNPACKHI(x0v, x1v), DW_UNPACKLO(x2v, x3v),
                       DW_UNPACKHI(x2v, x3v)};
    for (size_t j = 0; j < 2; ++j) {
      if (c < stride * j || c > stride * j + 4) continue;
      const DW_VEC *wk = dw5_opaque(w) + 4 * (c - stride * j);
      acc[2 * j] = DW_DOT(DW_DOT(acc[2 * j], g.lo01, wk[0]), g.lo23, wk[2]);
      acc[2 * j + 1] = DW_DOT(DW_DOT(acc[2 * j + 1], g.hi01, wk[1]), g.hi23, wk[3]);
    }
    /* Column by column: free to reassociate the sums, GCC computed the
     * products of several columns first and spilled them. */
    __asm__("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
  }
  /* Row 4 in pairs of columns (2 k, 2 k + 1); a column past the run's last
   * one repeats it (its weight is 0). */
#pragma GCC unroll 4
  for (size_t k = 0; k < (cols + 1) / 2; ++k) {
    const size_t c1 = 2 * k + 1 < cols ? 2 * k + 1 : cols - 1;
    const DW_VEC a = dw5_load(R, 4, x0 + (ptrdiff_t)(2 * k), cn, full, u8, inside);
    const DW_VEC b = dw5_load(R, 4, x0 + (ptrdiff_t)c1, cn, full, u8, inside);
    const DW_VEC lo = DW_UNPACKLO(a, b), hi = DW_UNPACKHI(a, b);
    for (size_t j = 0; j < 2; ++j) {
      const size_t first = stride * j, phase = first % 2, base = first / 2;
      if (k < base || k > base + 2) continue;
      const DW_VEC *wp = dw5_opaque(w) + 2 * (10 + 3 * phase + (k - base));
      acc[2 * j] = DW_DOT(acc[2 * j], lo, wp[0]);
      acc[2 * j + 1] = DW_DOT(acc[2 * j + 1], hi, wp[1]);
    }
  }
}

DW_INLINE void dw_block_5x5(const q8_dwconv_row *r, size_t stride, bool u8, bool full, int kind,
                            size_t c0, size_t cn, const DW_VEC *block) {
  const DW_VEC bias_lo = block[0], bias_hi = block[1];
  const DW_VEC *w = block + 2;
  DW_RQ rs;
  if (kind != DW_OUT_I32) dw_rq_init(&rs, r->rq, c0, cn);
  const dw_out o = dw_out_of(r);
  const ptrdiff_t pad = (ptrdiff_t)r->pad_left;
  for (size_t i = 0; i < o.rows; ++i) {
    const dw_rows5 R = dw_rows5_of(r, i, c0);
    unsigned char *const out_row = dw_out_row(r, &o, i, c0);
    for (size_t x = 0; x < o.out_w; x += 2) {
      const ptrdiff_t x0 = (ptrdiff_t)(x * stride) - pad;
      DW_VEC acc[4] = {bias_lo, bias_hi, bias_lo, bias_hi};
      if (dw5_run_inside(r, x0, stride)) {
        dw5_run(&R, x0, stride, cn, full, u8, true, w, acc);
      } else {
        dw5_run(&R, x0, stride, cn, full, u8, false, w, acc);
      }
      dw_store(out_row + x * o.step, cn, acc[0], acc[1], kind, o.dtype, &rs);
      if (x + 1 < o.out_w) dw_store(out_row + (x + 1) * o.step, cn, acc[2], acc[3], kind, o.dtype, &rs);
    }
  }
}

DW_INLINE void dw_row_5x5(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                          size_t dilation, bool u8, bool dedicated) {
  (void)kh, (void)kw, (void)dilation, (void)dedicated;
  const size_t block_vecs = 2 + 2 * ((sizeof dw_5x5_order + 1) / 2); /* terms, pairs */
  const int kind = dw_out_kind(r->rq);
  for (size_t c0 = 0; c0 < r->channels; c0 += DW_CT) {
    const size_t cn = r->channels - c0 < DW_CT ? r->channels - c0 : DW_CT;
    const DW_VEC *block = (const DW_VEC *)r->packed + c0 / DW_CT * block_vecs;
    if (cn < DW_CT) {
      dw_block_5x5(r, stride, u8, false, kind, c0, cn, block);
      continue;
    }
#define DW_BLOCK_AS(k) dw_block_5x5(r, stride, u8, true, k, c0, cn, block)
    DW_WITH_KIND_CONSTANT(kind, DW_BLOCK_AS)
#undef DW_BLOCK_AS
  }
}

/* A full block with its output kind as a constant (one loop per kind); tails
 * test the kind per pixel. */
DW_INLINE void dw_block_any(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                            size_t dilation, bool u8, bool dedicated, bool columns, bool full,
                            int kind, size_t c0, size_t cn, const DW_VEC *block) {
  if (columns) {
    dw_block_columns(r, stride, u8, full, kind, c0, cn, block);
  } else {
    dw_block(r, kh, kw, stride, dilation, u8, dedicated, full, kind, c0, cn, block);
  }
}

DW_INLINE void dw_row(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                      size_t dilation, bool u8, bool dedicated) {
  const size_t block_vecs = 2 + 2 * ((kh * kw + 1) / 2);
  /* The dedicated 3x3 kernels (strides 1 and 2), packed by dw_pack_columns. */
  const bool columns = dedicated && kh == 3 && kw == 3 && stride <= 2;
  const int kind = dw_out_kind(r->rq);
  const DW_VEC *packed = r->packed;
  for (size_t c0 = 0; c0 < r->channels; c0 += DW_CT) {
    const size_t cn = r->channels - c0 < DW_CT ? r->channels - c0 : DW_CT;
    const DW_VEC *block = packed + c0 / DW_CT * block_vecs;
    if (cn < DW_CT) {
      dw_block_any(r, kh, kw, stride, dilation, u8, dedicated, columns, false, kind, c0, cn,
                   block);
      continue;
    }
#define DW_BLOCK_AS(k) \
  dw_block_any(r, kh, kw, stride, dilation, u8, dedicated, columns, true, k, c0, cn, block)
    DW_WITH_KIND_CONSTANT(kind, DW_BLOCK_AS)
#undef DW_BLOCK_AS
  }
}

static void dw_pack_columns(size_t channels, size_t taps, const int8_t *w,
                            const int32_t *col_term, void *packed) {
  q8_dwconv_pack_pairs_ordered(DW_CT, channels, taps, w, col_term, dw_column_order,
                               sizeof dw_column_order, packed);
}

static size_t dw_packed_bytes(size_t channels, size_t taps) {
  return q8_dwconv_pack_pairs_bytes(DW_CT, channels, taps);
}

static void dw_pack(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                    void *packed) {
  q8_dwconv_pack_pairs(DW_CT, channels, taps, w, col_term, packed);
}


DW_DEFINE_WITH(q8_dwconv_x8s8_3x3s1c16__avx2, dw_row, dw_pack_columns, 3, 3, 1)
DW_DEFINE_WITH(q8_dwconv_x8s8_3x3s2c16__avx2, dw_row, dw_pack_columns, 3, 3, 2)
DW_DEFINE_PACKED(q8_dwconv_x8s8_5x5s1c16__avx2, dw_row_5x5, dw_pack_5x5, dw_packed_bytes_5x5, 5,
                 5, 1)
DW_DEFINE_PACKED(q8_dwconv_x8s8_5x5s2c16__avx2, dw_row_5x5, dw_pack_5x5, dw_packed_bytes_5x5, 5,
                 5, 2)
DW_DEFINE_GENERIC(q8_dwconv_x8s8_generic_c16__avx2)
