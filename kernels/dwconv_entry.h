/* What the vector depthwise kernels (x86, Arm) share: the tap addressing, and the
 * descriptors, one macro for every file: each shape gets a noinline function
 * per activation type (so the type is a constant inside), behind the
 * descriptor's run. Before expanding DW_DEFINE, the including file defines
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
#define DW_ENTRY(symbol, ROW, PACK, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, KH_, KW_, S_) \
  DW_ENTRY_TYPE(symbol##_s8, ROW, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, false)         \
  DW_ENTRY_TYPE(symbol##_u8, ROW, ROW_KH, ROW_KW, ROW_S, ROW_DIL, DEDICATED, true)          \
  static void symbol##_run(const q8_dwconv_row *r) {                                        \
    (r->in_dtype == Q8_UINT8 ? symbol##_u8 : symbol##_s8)(r);                               \
  }                                                                                         \
  const q8_dwconv_ukernel symbol = {.name = #symbol, .kernel_h = KH_, .kernel_w = KW_,      \
                                    .stride = S_, .channel_tile = DW_CT,                    \
                                    .int8_a_offset = DW_INT8_A_OFFSET,                      \
                                    .uint8_a_offset = DW_UINT8_A_OFFSET,                    \
                                    .packed_bytes = dw_packed_bytes, .pack = PACK,          \
                                    .run = symbol##_run};

/* Dedicated: dilation 1, the shape fixed at compile time. */
#define DW_DEFINE_WITH(symbol, ROW, PACK, KH_, KW_, S_)                                     \
  DW_ENTRY(symbol, ROW, PACK, KH_, KW_, S_, 1, true, KH_, KW_, S_)
#define DW_DEFINE(symbol, KH_, KW_, S_) DW_DEFINE_WITH(symbol, dw_row, dw_pack, KH_, KW_, S_)
#define DW_DEFINE_GENERIC(symbol)                                                           \
  DW_ENTRY(symbol, dw_row, dw_pack, r->kernel_h, r->kernel_w, r->stride_w, r->dilation_w,   \
           false, 0, 0, 0)

#endif
