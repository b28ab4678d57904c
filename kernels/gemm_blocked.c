/* The blocked loop nest shared by every GEMM micro-kernel (BLIS-style: the
 * ISA contributes a micro-kernel and its tile, not a driver). */
#include <stdlib.h>
#include <string.h>

#include "q8/kernels.h"

/* A of a type the kernel reads with an offset (int8 as A + 128, uint8 as
 * A - 128): flip the sign bits of the row tile once into a panel of the other
 * type, instead of once per column tile inside the kernel. col_term already
 * holds the correction, so this is exact. */
static const unsigned char *flip_panel(const unsigned char *a, size_t lda, size_t rows, size_t k,
                                       unsigned char *panel) {
  for (size_t r = 0; r < rows; ++r) q8_copy_flip(panel + r * k, a + r * lda, k, 0x80u);
  return panel;
}

/* Inline here: the row tile loop calls it per tile, and at small k (1x1
 * convs of 16-32 channels) a call per tile is a measurable share. */
static inline const q8_requant_params *params_at(const q8_requant_params *rq, size_t column,
                                                 q8_requant_params *scratch) {
  if (rq == NULL || rq->channels == 1) return rq;
  *scratch = *rq;
  scratch->channels = rq->channels - column;
  if (rq->multiplier) scratch->multiplier = rq->multiplier + column;
  if (rq->shift) scratch->shift = rq->shift + column;
  if (rq->scale) scratch->scale = rq->scale + column;
  return scratch;
}

const q8_requant_params *q8_requant_params_at(const q8_requant_params *rq, size_t column,
                                              q8_requant_params *scratch) {
  return params_at(rq, column, scratch);
}

void *q8_gemm_a_panel_new(const q8_gemm_ukernel *uk, size_t k) {
  if (uk->pack_a == NULL || uk->run_panel == NULL || uk->a_panel_bytes == NULL) return NULL;
  return aligned_alloc(64, (uk->a_panel_bytes(k) + 63) / 64 * 64);
}

/* The packed block of column n (a multiple of NR), and C at row m, column n.
 * The column loops step the block pointer instead of calling this per tile:
 * a call and a 64-bit division per column tile cost the one-row GEMVs of the
 * kernels without run_cols (Zen 5, alternating processes, 10 pairs, median:
 * avxvnni 1x768x768 1.04x, 1x256x256 1.08x faster; avx2 1.02x, 1.03x). */
static inline const unsigned char *block_at(const q8_gemm_ukernel *uk,
                                            const q8_gemm_blocked_args *args, size_t n) {
  return (const unsigned char *)args->packed +
         n / uk->nr * q8_gemm_block_bytes(uk->nr, uk->kr, args->k);
}

static inline void *output_at(const q8_gemm_blocked_args *args, size_t m, size_t n) {
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  return (unsigned char *)args->c + (m * args->ldc + n) * c_elem;
}

void q8_gemm_row_tile(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args, size_t m,
                      size_t rows, const void *a, size_t a_stride, q8_dtype a_dtype,
                      void *a_panel, size_t n0, size_t n1) {
  const size_t nr = uk->nr, k = args->k;
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  q8_requant_params rq_tile;
  if (a_panel) uk->pack_a(rows, k, a, a_stride, a_dtype, a_panel);
  if (a_panel == NULL && uk->run_cols) {
    uk->run_cols(rows, n1 - n0, k, a, a_stride, a_dtype, block_at(uk, args, n0),
                 output_at(args, m, n0), args->ldc * c_elem, params_at(args->rq, n0, &rq_tile));
    return;
  }
  const size_t block = q8_gemm_block_bytes(uk->nr, uk->kr, k);
  const unsigned char *packed = block_at(uk, args, n0);
  for (size_t n = n0; n < n1; n += nr, packed += block) {
    const size_t cols = n1 - n < nr ? n1 - n : nr;
    const q8_requant_params *rq = params_at(args->rq, n, &rq_tile);
    void *c = output_at(args, m, n);
    if (a_panel) {
      uk->run_panel(rows, cols, k, a_panel, packed, c, args->ldc * c_elem, rq);
    } else {
      uk->run(rows, cols, k, a, a_stride, a_dtype, packed, c, args->ldc * c_elem, rq);
    }
  }
}

/* See q8_gemm_chunk_rows (kernels.h): which shapes take chunks, and how
 * large they are. */
#define Q8_ROWS_CHUNK_BYTES 16384
#define Q8_ROWS_CHUNK_MAX_BYTES 65536

/* The deepest K at which a kernel with its own A panel (pack_a) takes
 * chunks: run_rows reads A as is, so each column tile widens it again where
 * the panel widens each row tile once. AVX2, Zen 5, alternating processes,
 * u8 in, s8 out, chunks against panels: k = 16-32 1.09-1.13x faster, 64
 * level, 256-960 2-4 % slower. */
#define Q8_PANEL_CHUNK_MAX_K 32

size_t q8_gemm_chunk_rows(const q8_gemm_ukernel *uk, size_t k, size_t cols, size_t c_elem,
                          size_t mc_bytes) {
  if (uk->run_rows == NULL) return 0;
  if (uk->pack_a != NULL && k > Q8_PANEL_CHUNK_MAX_K) return 0;
  if (c_elem == 1 && k > 0 && mc_bytes / k / uk->mr >= 2) return mc_bytes / k / uk->mr * uk->mr;
  const size_t row_bytes = k + cols * c_elem;
  if (Q8_ROWS_CHUNK_BYTES / row_bytes / uk->mr < 4) return 0;
  return Q8_ROWS_CHUNK_MAX_BYTES / row_bytes / uk->mr * uk->mr;
}

void q8_gemm_row_chunk(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args, size_t m,
                       size_t rows, const void *a, size_t a_stride, q8_dtype a_dtype, size_t n0,
                       size_t n1) {
  const size_t nr = uk->nr, k = args->k;
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  q8_requant_params rq_tile;
  const size_t block = q8_gemm_block_bytes(uk->nr, uk->kr, k);
  const unsigned char *packed = block_at(uk, args, n0);
  for (size_t n = n0; n < n1; n += nr, packed += block) {
    const size_t cols = n1 - n < nr ? n1 - n : nr;
    void *c = output_at(args, m, n);
    uk->run_rows(rows, cols, k, a, a_stride, a_dtype, packed, c, args->ldc * c_elem,
                 params_at(args->rq, n, &rq_tile));
  }
}

/* A of a tall row tile: what stays in L1 (48 KiB on Zen 5) beside the
 * column tile's weights streaming through it. */
#define Q8_TALL_A_BYTES 32768

size_t q8_gemm_tall_rows(const q8_gemm_ukernel *uk, size_t k) {
  const size_t rows = q8_gemm_k_ranges_mr(uk);
  if (rows <= uk->mr || uk->run_k_ranges == NULL || uk->pack_a != NULL) return 0;
  if (k == 0 || k % uk->kr != 0 || rows * k > Q8_TALL_A_BYTES) return 0;
  return rows;
}

void q8_gemm_tall_tile(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args, size_t m,
                       size_t rows, const void *a, size_t a_stride, q8_dtype a_dtype, size_t n0,
                       size_t n1) {
  const size_t nr = uk->nr, k = args->k;
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  const q8_k_range depth = {.begin = 0, .len = k, .a_offset = 0};
  q8_requant_params rq_tile;
  const size_t block = q8_gemm_block_bytes(uk->nr, uk->kr, k);
  const unsigned char *packed = block_at(uk, args, n0);
  for (size_t n = n0; n < n1; n += nr, packed += block) {
    const size_t cols = n1 - n < nr ? n1 - n : nr;
    void *c = output_at(args, m, n);
    uk->run_k_ranges(rows, cols, &depth, 1, a, a_stride, a_dtype, packed, NULL, c,
                     args->ldc * c_elem, params_at(args->rq, n, &rq_tile));
  }
}

#define Q8_STACK_PANEL_BYTES 4096
/* The most A bytes flipped at once: within glibc's largest dynamic mmap
 * threshold (32 MiB), so that after the first run the panel comes from the
 * heap, without page faults. */
#define Q8_WHOLE_PANEL_BYTES ((size_t)8 << 20)

void q8_gemm_blocked(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args,
                     size_t m0, size_t m1, size_t n0, size_t n1) {
  const size_t mr = uk->mr, nr = uk->nr;
  size_t nc = args->nc >= nr ? args->nc / nr * nr : nr;
  /* nc is half of L2: weights up to an eighth over it stay one block, not a
   * block and a sliver streamed after it (Zen 5, 1x1 conv 14x14x1024:512,
   * nc 480: paired A/B 1.0 % less time; evenly split blocks 0.2 %). */
  if (n1 - n0 > nc && n1 - n0 <= nc + nc / 8) nc = n1 - n0;
  /* One row tile (the batch-1 GEMV and other small M) reuses no block: all
   * of [n0, n1) is one, and run_cols pairs its column tiles without an odd
   * one at every block's end (paired A/B, one process: 1x4096x4096 3.4 %
   * less time, 1x1024x768 1.1 %, 1x768x768 0.5 %, 4x768x768 0.3 %). */
  if (m1 - m0 <= mr) nc = n1 - n0;
  /* Chunks of rows through run_rows (q8_gemm_chunk_rows) from two row tiles
   * up. */
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  /* L2-sized chunks only where the weights of [n0, n1) are one column block:
   * they then stay in L2 from run to run. Where they stream from L3 (more
   * blocks), each row tile's weight prefetch in the tile functions pays. */
  const size_t mc = q8_gemm_chunk_rows(uk, args->k, nc < n1 - n0 ? nc : n1 - n0, c_elem,
                                       n1 - n0 <= nc ? args->mc_bytes : 0);
  const int by_rows = mc != 0 && m1 - m0 >= 2 * mr;
  /* Tall row tiles (q8_gemm_tall_rows) where there is more than one MR
   * tile: a few rows go through run_cols (the batch-1 GEMV), whose weight
   * prefetch and K-split sets the K-range tiles have not. */
  size_t tall = by_rows || m1 - m0 <= mr ? 0 : q8_gemm_tall_rows(uk, args->k);
  size_t step = by_rows ? mc : tall ? tall : mr;
  /* Weights of more than one column block come from L3 on the first pass
   * over each block: that row tile is an MR tile, whose weight prefetch pulls
   * the block into L2 for the tall ones (paired A/B without it: 16x2048x2048
   * 0.93, 49x512x2048 and 1024^3 level). */
  const bool streamed = n1 - n0 > nc;
  /* No panel (allocation failed, or the kernel reads A as is): the kernel
   * handles int8 itself. */
  unsigned char *panel = NULL;
  /* Small panels (batch-1 GEMV, short k) on the stack: a malloc and free per
   * call were a measurable share of a small GEMM (Zen 5, int8 A: 1x32x64
   * 61 -> 55 ns, 1x64x256 126 -> 122). */
  _Alignas(64) unsigned char stack_panel[Q8_STACK_PANEL_BYTES];
  /* Where the weights span several column blocks, all rows [m0, m1) are
   * flipped once (up to Q8_WHOLE_PANEL_BYTES), not once per block: the
   * flip of a row tile runs before its first column tile, and per block it
   * was paid again. Zen 5, int8 A, paired A/B: 49x512x2048 and 56x512x2048
   * 3 % less time, 49x2048x1024 2 %, 64x768x768 and 256x3072x768 1 %,
   * 1024^3 1.9 %, 2048x1024x1024 2.9 %. */
  bool whole = false;
  if (q8_gemm_a_offset(uk, args->a_dtype) != 0) {
    const size_t all_bytes = (m1 - m0) * args->k;
    if (streamed && all_bytes <= Q8_WHOLE_PANEL_BYTES) {
      panel = all_bytes <= sizeof stack_panel ? stack_panel : malloc(all_bytes);
      whole = panel != NULL;
    }
    if (!whole) {
      const size_t panel_bytes = (step < m1 - m0 ? step : m1 - m0) * args->k;
      panel = panel_bytes <= sizeof stack_panel ? stack_panel : malloc(panel_bytes);
    }
  }
  if (whole) flip_panel((const unsigned char *)args->a + m0 * args->lda, args->lda, m1 - m0,
                        args->k, panel);
  const q8_dtype flipped = args->a_dtype == Q8_INT8 ? Q8_UINT8 : Q8_INT8;
  const q8_dtype a_dtype = panel ? flipped : args->a_dtype;
  /* Without the panel (no memory), A keeps an offset run_k_ranges does not
   * take: MR tiles (the panel, if any, is at least their size). */
  if (tall && q8_gemm_a_offset(uk, a_dtype) != 0) {
    tall = 0;
    step = mr;
  }
  void *a_panel = by_rows ? NULL : q8_gemm_a_panel_new(uk, args->k);
  /* Column blocks outermost: a block of packed weights (nc x k bytes) stays in
   * L2 while every row tile (or chunk) of A, in L1, passes over it. */
  for (size_t nb = n0; nb < n1; nb += nc) {
    const size_t nb_end = nb + nc < n1 ? nb + nc : n1;
    for (size_t m = m0, m_step; m < m1; m += m_step) {
      const bool tall_tile = tall && !(streamed && m == m0);
      m_step = tall && !tall_tile ? mr : step;
      const size_t rows = m1 - m < m_step ? m1 - m : m_step;
      const unsigned char *a = (const unsigned char *)args->a + m * args->lda;
      size_t a_stride = args->lda;
      if (whole) {
        a = panel + (m - m0) * args->k;
        a_stride = args->k;
      } else if (panel) {
        a = flip_panel(a, args->lda, rows, args->k, panel);
        a_stride = args->k;
      }
      if (by_rows) {
        q8_gemm_row_chunk(uk, args, m, rows, a, a_stride, a_dtype, nb, nb_end);
      } else if (tall_tile) {
        q8_gemm_tall_tile(uk, args, m, rows, a, a_stride, a_dtype, nb, nb_end);
      } else {
        q8_gemm_row_tile(uk, args, m, rows, a, a_stride, a_dtype, a_panel, nb, nb_end);
      }
    }
  }
  free(a_panel);
  if (panel != stack_panel) free(panel);
}
