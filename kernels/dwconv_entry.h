/* What the vector depthwise kernels (x86, Arm) share: the tap addressing, and the
 * descriptors, one macro for every file: each shape gets a noinline function
 * per activation type (so the type is a constant inside), behind the
 * descriptor's run. Before expanding the DW_DEFINE_* macros, the including file defines
 * DW_FN, DW_CT, DW_INT8_A_OFFSET, DW_UINT8_A_OFFSET, dw_row(r, kh, kw, stride,
 * dilation, u8, dedicated), dw_packed_bytes and dw_pack; and DW_ROWS_INSIDE 1
 * where its row functions run every output row of a call themselves
 * (q8_dwconv_row.out_rows), else the entry calls them once per row. */
#ifndef Q8_KERNELS_DWCONV_ENTRY_H
#define Q8_KERNELS_DWCONV_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/kernels.h"

/* The input of tap (ky, kx) for the pixel whose first tap column is ix0: the
 * row's pixel, or the zero-point pixel outside the row (known not to happen
 * for an interior pixel, so that test folds away). */
static inline __attribute__((always_inline)) const uint8_t *dw_tap(
    const q8_dwconv_row *r, size_t ky, size_t kx, ptrdiff_t ix0, size_t dilation, size_t c0,
    bool interior) {
  const ptrdiff_t ix = ix0 + (ptrdiff_t)(kx * dilation);
  if (interior || (ix >= 0 && (size_t)ix < r->in_w)) {
    return (const uint8_t *)r->rows[ky] + (size_t)ix * r->channels + c0;
  }
  return (const uint8_t *)r->zero_pixel + c0;
}

/* The 5 input rows of output row i of a call, at channel c0 (the 5x5 column
 * kernels), and the columns a run of two output pixels reads at a stride. */
typedef struct dw_rows5 {
  const uint8_t *row[5], *zero;
  size_t in_w, channels;
} dw_rows5;
#define DW5_COLS(stride) ((stride) + 5)

static inline __attribute__((always_inline)) dw_rows5 dw_rows5_of(const q8_dwconv_row *r,
                                                                   size_t i, size_t c0) {
  dw_rows5 R = {.zero = (const uint8_t *)r->zero_pixel + c0, .in_w = r->in_w,
                .channels = r->channels};
  for (size_t ky = 0; ky < 5; ++ky) R.row[ky] = (const uint8_t *)r->rows[5 * i + ky] + c0;
  return R;
}

/* A run whose first input column is x0 reads only columns inside the row. */
static inline bool dw5_run_inside(const q8_dwconv_row *r, ptrdiff_t x0, size_t stride) {
  return x0 >= 0 && (size_t)x0 + DW5_COLS(stride) <= r->in_w;
}

/* Row ky at byte offset off (a column's), or the zero pixel where in is 0
 * (in: all ones for a column inside the row; inside: known, no select). A
 * select of addresses, not a branch. */
static inline __attribute__((always_inline)) const uint8_t *dw_rows5_at(const dw_rows5 *R,
                                                                        size_t ky, size_t off,
                                                                        uintptr_t in, bool inside) {
  const uint8_t *at = R->row[ky] + off;
  if (inside) return at;
  const uintptr_t zero = (uintptr_t)R->zero;
  return (const uint8_t *)(zero + (((uintptr_t)at - zero) & in));
}

/* What a block stores: int32 accumulators or one of the requantization modes
 * (fp32 without its upper clamp where rq allows: q8_requant_params.fp32_clamp_free).
 * A constant in the full-block loops, so each gets its own code. */
enum { DW_OUT_I32 = 0, DW_OUT_GEMMLOWP, DW_OUT_SINGLE, DW_OUT_FP32, DW_OUT_FP32_FREE };

static inline int dw_out_kind(const q8_requant_params *rq) {
  if (rq == NULL) return DW_OUT_I32;
  if (rq->mode == Q8_REQUANT_GEMMLOWP) return DW_OUT_GEMMLOWP;
  if (rq->mode == Q8_REQUANT_SINGLE) return DW_OUT_SINGLE;
  return rq->fp32_clamp_free ? DW_OUT_FP32_FREE : DW_OUT_FP32;
}

/* Expands AS(k) with k the constant equal to kind: one loop per kind. */
#define DW_WITH_KIND_CONSTANT(kind, AS)                                                     \
  switch (kind) {                                                                           \
    case DW_OUT_I32: AS(DW_OUT_I32); break;                                                 \
    case DW_OUT_GEMMLOWP: AS(DW_OUT_GEMMLOWP); break;                                       \
    case DW_OUT_SINGLE: AS(DW_OUT_SINGLE); break;                                           \
    case DW_OUT_FP32: AS(DW_OUT_FP32); break;                                               \
    default: AS(DW_OUT_FP32_FREE); break;                                                   \
  }

/* A call's output: element bytes, bytes from one pixel to the next, type,
 * pixels per row and rows. Copies of r's fields: read from r after the
 * stores to the output (which may alias r), they were reloaded every pixel,
 * r itself from the stack first. */
typedef struct dw_out {
  size_t elem, step;
  q8_dtype dtype;
  size_t out_w, rows;
} dw_out;

static inline __attribute__((always_inline)) dw_out dw_out_of(const q8_dwconv_row *r) {
  const size_t elem = r->rq ? 1 : sizeof(int32_t);
  return (dw_out){.elem = elem, .step = r->channels * elem,
                  .dtype = r->rq ? r->rq->out_dtype : Q8_INT32, .out_w = r->out_w,
                  .rows = q8_dwconv_out_rows(r)};
}

/* Output row i of the call, at channel c0. */
static inline __attribute__((always_inline)) unsigned char *dw_out_row(const q8_dwconv_row *r,
                                                                       const dw_out *o, size_t i,
                                                                       size_t c0) {
  return (unsigned char *)r->out + i * o->out_w * o->step + c0 * o->elem;
}

/* ROW, PACK: the row loop and its packing (dw_row and dw_pack unless a shape
 * has its own); ROW_*: the loop's shape (constants, or the row's own for the
 * generic kernel); KH_, KW_, S_: the descriptor's (0 for any). */
#ifndef DW_ROWS_INSIDE
#define DW_ROWS_INSIDE 0
#endif
#define DW_ENTRY_TYPE(symbol, ROW, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, U8)           \
  DW_FN void symbol(const q8_dwconv_row *r) {                                               \
    if (DW_ROWS_INSIDE) {                                                                   \
      ROW(r, ROW_KH, ROW_KW, ROW_S, ROW_DIL, U8, DEDICATED);                                \
      return;                                                                               \
    }                                                                                       \
    for (size_t i = 0; i < q8_dwconv_out_rows(r); ++i) {                                    \
      const q8_dwconv_row one = q8_dwconv_row_at(r, i);                                     \
      ROW((&one), ROW_KH, ROW_KW, ROW_S, ROW_DIL, U8, DEDICATED);                           \
    }                                                                                       \
  }
#define DW_ENTRY(symbol, ROW, PACK, BYTES, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, KH_, KW_, \
                 S_)                                                                        \
  DW_ENTRY_TYPE(symbol##_s8, ROW, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, false)         \
  DW_ENTRY_TYPE(symbol##_u8, ROW, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, true)          \
  static void symbol##_run(const q8_dwconv_row *r) {                                        \
    (r->in_dtype == Q8_UINT8 ? symbol##_u8 : symbol##_s8)(r);                               \
  }                                                                                         \
  const q8_dwconv_ukernel symbol = {.name = #symbol, .kernel_h = KH_, .kernel_w = KW_,      \
                                    .stride = S_, .channel_tile = DW_CT,                    \
                                    .int8_a_offset = DW_INT8_A_OFFSET,                      \
                                    .uint8_a_offset = DW_UINT8_A_OFFSET,                    \
                                    .packed_bytes = BYTES, .pack = PACK,                    \
                                    .run = symbol##_run};

/* Dedicated: dilation 1, the shape fixed at compile time; _PACKED: with a
 * packed layout of its own (BYTES its size). */
#define DW_DEFINE_PACKED(symbol, ROW, PACK, BYTES, KH_, KW_, S_)                            \
  DW_ENTRY(symbol, ROW, PACK, BYTES, KH_, KW_, S_, 1, true, KH_, KW_, S_)
#define DW_DEFINE_WITH(symbol, ROW, PACK, KH_, KW_, S_)                                     \
  DW_DEFINE_PACKED(symbol, ROW, PACK, dw_packed_bytes, KH_, KW_, S_)
#define DW_DEFINE_GENERIC(symbol)                                                           \
  DW_ENTRY(symbol, dw_row, dw_pack, dw_packed_bytes, r->kernel_h, r->kernel_w, r->stride_w, \
           r->dilation_w, false, 0, 0, 0)

#endif
