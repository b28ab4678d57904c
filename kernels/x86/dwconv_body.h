/* The depthwise row loop shared by the AVX2 and AVX-512 kernels, written once
 * over a vector of DW_CT int16 lanes (included by kernels/x86/dwconv_*.c after
 * they define the vector operations below).
 *
 * Taps are taken in pairs: the int16 inputs of taps t and t + 1 are
 * interleaved with punpck{l,h}wd and multiplied by the packed weight pairs
 * with pmaddwd (or vpdpwssd), which is exact: each product fits int16
 * (|x| <= 255, |w| <= 128 give at most 32640) and the pair sum int32. Padding
 * reads zero-point bytes, cancelled by the packed column terms (see the
 * depthwise section of q8/kernels.h). Channel blocks are the outer loop of a
 * row, so a block's weights and requantization parameters are loaded once per
 * row and the kernel_h input rows (a few KB) stay in L1 across blocks.
 *
 * Required: DW_VEC, DW_CT, DW_INLINE, DW_RQ (requantization state),
 * dw_load_x(p, cn, full, u8), DW_UNPACKLO/HI, DW_DOT(acc, x, w),
 * dw_rq_init(state, rq, c0, cn), dw_store(out, cn, lo, hi, rq, state). */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define DW_MAX_PAIRS 13 /* 5x5: dedicated kernels keep their weights in registers */

/* The input of tap (ky, kx) for the pixel whose first tap column is ix0. */
DW_INLINE const uint8_t *dw_tap(const q8_dwconv_row *r, size_t ky, size_t kx, ptrdiff_t ix0,
                                size_t dilation, size_t c0, bool interior) {
  const ptrdiff_t ix = ix0 + (ptrdiff_t)(kx * dilation);
  if (interior || (ix >= 0 && (size_t)ix < r->in_w)) {
    return (const uint8_t *)r->rows[ky] + (size_t)ix * r->channels + c0;
  }
  return (const uint8_t *)r->zero_pixel + c0;
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

/* One channel block over the whole output row. */
DW_INLINE void dw_block(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                        size_t dilation, bool u8, bool dedicated, bool full, size_t c0,
                        size_t cn, const DW_VEC *block) {
  const size_t pairs = (kh * kw + 1) / 2, out_elem = r->rq ? 1 : sizeof(int32_t);
  const DW_VEC bias_lo = block[0], bias_hi = block[1];
  const DW_VEC *w = block + 2;
  DW_VEC wv[2 * DW_MAX_PAIRS];
  if (dedicated) {
    for (size_t i = 0; i < 2 * pairs; ++i) wv[i] = w[i];
    w = wv;
  }
  DW_RQ rs;
  memset(&rs, 0, sizeof rs); /* halves past the tail stay unused */
  if (r->rq) dw_rq_init(&rs, r->rq, c0, cn);
  const size_t span = (kw - 1) * dilation;
  for (size_t x = 0; x < r->out_w; ++x) {
    const ptrdiff_t ix0 = (ptrdiff_t)(x * stride) - (ptrdiff_t)r->pad_left;
    DW_VEC lo = bias_lo, hi = bias_hi;
    if (ix0 >= 0 && (size_t)ix0 + span < r->in_w) {
      dw_pixel(r, kh, kw, dilation, ix0, c0, cn, full, u8, true, w, &lo, &hi);
    } else {
      dw_pixel(r, kh, kw, dilation, ix0, c0, cn, full, u8, false, w, &lo, &hi);
    }
    dw_store((unsigned char *)r->out + (x * r->channels + c0) * out_elem, cn, lo, hi, r->rq, &rs);
  }
}

DW_INLINE void dw_row(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                      size_t dilation, bool u8, bool dedicated) {
  const size_t block_vecs = 2 + 2 * ((kh * kw + 1) / 2);
  const DW_VEC *packed = r->packed;
  for (size_t c0 = 0; c0 < r->channels; c0 += DW_CT) {
    const size_t cn = r->channels - c0 < DW_CT ? r->channels - c0 : DW_CT;
    const DW_VEC *block = packed + c0 / DW_CT * block_vecs;
    if (cn == DW_CT) {
      dw_block(r, kh, kw, stride, dilation, u8, dedicated, true, c0, cn, block);
    } else {
      dw_block(r, kh, kw, stride, dilation, u8, dedicated, false, c0, cn, block);
    }
  }
}

static size_t dw_packed_bytes(size_t channels, size_t taps) {
  return q8_dwconv_pack_pairs_bytes(DW_CT, channels, taps);
}

static void dw_pack(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                    void *packed) {
  q8_dwconv_pack_pairs(DW_CT, channels, taps, w, col_term, packed);
}

/* A kernel per shape, specialised per activation type; the generic kernel
 * passes the row's own shape and 0 (any) in its descriptor. */
#define DW_ENTRY(symbol, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, KH_, KW_, S_)         \
  DW_FN void symbol##_s8(const q8_dwconv_row *r) {                                          \
    dw_row(r, ROW_KH, ROW_KW, ROW_S, ROW_DIL, false, DEDICATED);                            \
  }                                                                                         \
  DW_FN void symbol##_u8(const q8_dwconv_row *r) {                                          \
    dw_row(r, ROW_KH, ROW_KW, ROW_S, ROW_DIL, true, DEDICATED);                             \
  }                                                                                         \
  static void symbol##_run(const q8_dwconv_row *r) {                                        \
    (r->in_dtype == Q8_UINT8 ? symbol##_u8 : symbol##_s8)(r);                               \
  }                                                                                         \
  const q8_dwconv_ukernel symbol = {.name = #symbol, .kernel_h = KH_, .kernel_w = KW_,      \
                                    .stride = S_, .channel_tile = DW_CT,                    \
                                    .packed_bytes = dw_packed_bytes, .pack = dw_pack,       \
                                    .run = symbol##_run};

#define DW_DEFINE(symbol, KH_, KW_, S_) DW_ENTRY(symbol, KH_, KW_, S_, 1, true, KH_, KW_, S_)
#define DW_DEFINE_GENERIC(symbol)                                                           \
  DW_ENTRY(symbol, r->kernel_h, r->kernel_w, r->stride_w, r->dilation_w, false, 0, 0, 0)
