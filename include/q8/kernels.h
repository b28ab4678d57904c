/* q8 — the vendorable kernel layer (kernels/).
 *
 * Pure functions of their arguments: no global state, no threads, no dispatch.
 * Arguments are assumed valid (the public API in q8.h validates them); each
 * function states its preconditions. kernels/ref is the specification: every
 * other implementation returns bit-identical results for the same inputs. */
#ifndef Q8_KERNELS_H
#define Q8_KERNELS_H

#include <stdbool.h>

#include "q8/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest K for which the GEMM accumulator cannot overflow int32 for any input:
 * every product (A - za) * (B - zb) has magnitude <= 255 * 255 = 65025, and
 * 33025 * 65025 = 2147450625 <= INT32_MAX < 33026 * 65025. */
#define Q8_GEMM_MAX_K 33025

/* ---- multiplier math (kernels/ref/multiplier.c) ---------------------------
 * Real multiplier -> (Q31 mantissa, shift) exactly as TFLite's QuantizeMultiplier:
 * frexp, mantissa * 2^31 rounded half away from zero, a mantissa that rounds up
 * to 2^31 is halved with shift + 1, shifts below -31 flush to (0, 0), shifts
 * above 30 saturate to (2^31 - 1, 30). real = multiplier * 2^(shift - 31).
 * Precondition: real >= 0 and finite. real == 0 gives (0, 0). */
void q8_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift);

/* ---- requantization (kernels/ref/requantize.c) ---------------------------- */
/* gemmlowp building blocks, exactly as gemmlowp/TFLite define them. */
int32_t q8_ref_saturating_rounding_doubling_high_mul(int32_t a, int32_t b);
/* Precondition: 0 <= exponent <= 31. Rounds half away from zero. */
int32_t q8_ref_rounding_divide_by_pot(int32_t x, int exponent);
/* One accumulator of channel `channel` -> output value (already clamped). */
int32_t q8_ref_requantize_one(int32_t acc, const q8_requant_params *p, size_t channel);
/* out[i] = requantize(acc[i]) with channel (i / inner) % p->channels.
 * out has p->out_dtype elements. Preconditions: inner >= 1, p valid. */
void q8_ref_requantize(const int32_t *acc, size_t count, size_t inner,
                       const q8_requant_params *p, void *out);

/* ---- quantize / dequantize (kernels/ref/quantize.c) ----------------------- */
/* y = clamp(round(x / scale) + zero_point) (or x * (1/scale), per scale_op),
 * rounding per `rounding`, saturated to the dtype. NaN (also a NaN product 0 * inf) -> zero_point,
 * +Inf -> max, -Inf -> min. */
int32_t q8_ref_quantize_one(float x, float scale, int32_t zero_point, q8_dtype dtype,
                            q8_rounding rounding, q8_scale_op scale_op);
void q8_ref_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                     q8_rounding rounding, q8_scale_op scale_op, void *out);
/* y = scale * (q - zero_point), computed as (float)(q - zero_point) * scale. */
void q8_ref_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                       float *out);

/* ---- GEMM (kernels/ref/gemm.c) ---------------------------------------------
 * acc[i][j] = bias[j] + sum_k (A[i][k] - a_zero_point) * (B[j][k] - b_zero_point[j])
 * exactly in int32. A: m x k, int8 or uint8, row stride lda elements.
 * B: n x k int8, row stride ldb, one row per output channel. b_zero_point and
 * bias: n entries or NULL (0). Output C (row stride ldc elements): int32 acc
 * when rq is NULL, else requantized with channel j of rq (rq->channels is 1 or n).
 * Returns Q8_ERR_OVERFLOW if k > Q8_GEMM_MAX_K or bias + sum leaves int32
 * (C is then partly written), else Q8_OK. */
q8_status q8_ref_gemm(size_t m, size_t n, size_t k,
                      const void *a, size_t lda, q8_dtype a_dtype, int32_t a_zero_point,
                      const int8_t *b, size_t ldb, const int32_t *b_zero_point,
                      const int32_t *bias, const q8_requant_params *rq,
                      void *c, size_t ldc);

/* ---- convolution (kernels/ref/conv.c) -------------------------------------
 * NHWC int8/uint8 input [batch][in_h][in_w][in_channels], int8 weights in the
 * canonical layout OHWI per group: [out_channels][kernel_h][kernel_w][in_channels / groups].
 * Output channel oc belongs to group g = oc / (out_channels / groups) and reads
 * input channels [g * in_channels / groups, (g + 1) * in_channels / groups).
 * Depthwise is groups = in_channels with out_channels = in_channels * multiplier
 * (output channel c * multiplier + m reads input channel c, as TFLite orders it).
 * Output NHWC [batch][out_h][out_w][out_channels], out_h from q8_conv_out_extent. */
typedef struct q8_conv_shape {
  size_t batch, in_h, in_w, in_channels;
  size_t out_channels;
  size_t kernel_h, kernel_w;
  size_t stride_h, stride_w;       /* >= 1 */
  size_t dilation_h, dilation_w;   /* >= 1: 1 is a dense kernel */
  size_t pad_top, pad_bottom, pad_left, pad_right; /* padded positions read as the input zero point */
  size_t groups;                   /* divides in_channels and out_channels */
} q8_conv_shape;

/* Output extent along one axis: floor((in + pads - dilated kernel) / stride) + 1,
 * dilated kernel = (kernel - 1) * dilation + 1; 0 when the dilated kernel is
 * larger than the padded input. Preconditions: stride, dilation, kernel >= 1,
 * every argument <= INT32_MAX (so nothing overflows a 64-bit size_t). */
size_t q8_conv_out_extent(size_t in, size_t kernel, size_t stride, size_t dilation,
                          size_t pad_before, size_t pad_after);

/* The specification of int8 convolution, plain loops:
 *   acc[n][y][x][oc] = bias[oc] + sum_{ky,kx,ic} (X[n][iy][ix][ic] - in_zero_point) * W[oc][ky][kx][ic]
 *   iy = y * stride_h + ky * dilation_h - pad_top (ix likewise); a position
 *   outside the input is padding and contributes exactly 0.
 * Weights are symmetric (zero point 0). bias: out_channels entries or NULL.
 * Output int32 acc when rq is NULL, else requantized with channel oc of rq
 * (rq->channels is 1 or out_channels). Returns Q8_ERR_OVERFLOW when an exact
 * acc leaves int32 (the output is then partly written; plans prove this cannot
 * happen), else Q8_OK. Preconditions: the shape is valid (q8_conv_output_shape
 * accepts it) and every out extent >= 1. */
q8_status q8_conv_ref(const q8_conv_shape *shape, const void *input, q8_dtype in_dtype,
                      int32_t in_zero_point, const int8_t *weights, const int32_t *bias,
                      const q8_requant_params *rq, void *output);

/* ---- GEMM micro-kernels -----------------------------------------------------
 * A micro-kernel computes one tile of at most MR rows x NR output channels:
 *
 *   acc[m][n] = col_term[n] + sum_k A'[m][k] * W[n][k]        (int32, wrapping)
 *   C[m][n]   = rq ? requantize(acc[m][n], channel n) : acc[m][n]
 *
 * A' is A as the kernel's multiply reads it. Kernels built on u8 x s8 dot
 * products (vpdpbusd) read int8 activations as A + 128 (a sign-bit flip) and
 * declare int8_a_offset = 128; kernels built on s8 x s8 dot products (sdot)
 * read uint8 activations as A - 128 (the same flip) and declare
 * uint8_a_offset = -128; the others read A as is (both offsets 0).
 * The driver folds everything else into col_term at plan time:
 *   col_term[n] = bias[n] - (a_zero_point + offset) * sum_k W[n][k],
 * offset = q8_gemm_a_offset(uk, activation type). Every step is exact modulo
 * 2^32 and the plan proves the true result fits int32, so the wrapped int32
 * arithmetic yields it exactly. A driver may flip the sign bits of A itself
 * when the offset is not 0 and pass the kernel the other activation type
 * (which the kernel then reads as is): the flipped bytes are exactly A'.
 *
 * Packed layout (q8_gemm_pack_nrkr; a kernel may define its own pack): for each
 * block of NR output channels (the last one padded with zero channels):
 *   int32_t col_term[NR];
 *   int8_t  w[ceil(k / KR)][NR][KR];   (k padded with zeros to a multiple of KR)
 * The block size is q8_gemm_block_bytes(NR, KR, k); block j starts at
 * j * block_bytes and holds channels [j * NR, j * NR + NR). */
/* A range of the depth K, [begin, begin + len), and where each row of A holds
 * those len bytes: a_offset bytes from the row's start (= begin when A rows
 * are laid out along K). */
typedef struct q8_k_range {
  size_t begin, len, a_offset;
} q8_k_range;

typedef struct q8_gemm_ukernel {
  const char *name;       /* q8_gemm_<types>_<MR>x<NR>c<KR>__<isa> (docs/naming.md) */
  unsigned mr, nr, kr;
  int32_t int8_a_offset;  /* 128 or 0, see above */
  /* Packs n channels of W (row stride k) with their col_term into `packed`,
   * which has q8_gemm_packed_bytes(nr, kr, n, k) bytes. */
  void (*pack)(unsigned nr, unsigned kr, size_t n, size_t k, const int8_t *w,
               const int32_t *col_term, void *packed);
  /* One tile: mr <= MR rows, nr <= NR columns, depth k >= 1.
   * a: the tile's first row, a_stride bytes between rows; reads exactly k bytes
   *    per row (never past them: A may end at a page boundary).
   * packed: the tile's NR block. c: the tile's first output element,
   *    c_stride bytes between rows; writes exactly mr x nr elements.
   * rq: NULL for int32 output; else the output is rq->out_dtype and per-channel
   *    arrays start at the tile's first column (rq->channels == 1: per tensor).
   * No alignment is required of a, c or the strides beyond the element size. */
  void (*run)(size_t mr, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,
              const void *packed, void *c, size_t c_stride, const q8_requant_params *rq);
  int32_t uint8_a_offset; /* -128 or 0, see above (after run: older initialisers leave it 0) */
  /* Optional A panel (all three or none; NULL: drivers call run). For kernels
   * that transform A before multiplying (AVX2 widens it to int16 pairs): the
   * driver has pack_a transform a row tile once and calls run_panel for each
   * of its column tiles, instead of run transforming it again per tile.
   * a_panel_bytes(k): size of a panel of MR rows of depth k.
   * pack_a: mr <= MR rows of A (read as run reads them: exactly k bytes per
   *   row) into `panel`, which is 64-byte aligned.
   * run_panel: as run, on a panel pack_a built with the same mr and k. */
  size_t (*a_panel_bytes)(size_t k);
  void (*pack_a)(size_t mr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,
                 void *panel);
  void (*run_panel)(size_t mr, size_t nr, size_t k, const void *panel, const void *packed,
                    void *c, size_t c_stride, const q8_requant_params *rq);
  /* Optional (NULL: none): a tile over some K ranges only, for the indirect
   * conv to skip taps that are padding in every row of a tile. As run, but:
   *   acc[m][n] = col_term[n] + (col_adjust ? col_adjust[n] : 0)
   *             + sum over ranges r, k in [begin_r, begin_r + len_r) of A[m][k] * W[n][k]
   * with A read as is: a_dtype must be a type whose q8_gemm_a_offset is 0
   * (drivers flip the other). Row m of A is at a + m * a_stride and range r
   * reads its len_r bytes at a_offset_r from there (so A may be the input
   * image itself, rows being receptive fields); begin and len are multiples
   * of KR within the packed depth; nranges may be 0. Kernels with an A
   * panel read instead the panel pack_a made of the rows with the full
   * packed depth (a_stride unused; a_offset must equal begin). col_adjust
   * (NULL or nr entries) starts at the tile's first column. */
  void (*run_k_ranges)(size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges,
                       const void *a, size_t a_stride, q8_dtype a_dtype, const void *packed,
                       const int32_t *col_adjust, void *c, size_t c_stride,
                       const q8_requant_params *rq);
  /* Optional (NULL: drivers call run per tile): as run, but over any number
   * of rows m (row tiles of MR, then the rest), the rows of A a_stride bytes
   * apart and those of C c_stride bytes apart. For kernels whose per-tile
   * setup (requantization constants, the call) is a measurable share of a
   * tile at small k. */
  void (*run_rows)(size_t m, size_t nr, size_t k, const void *a, size_t a_stride,
                   q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                   const q8_requant_params *rq);
  /* Optional (NULL: drivers call run_k_ranges per tile): run_k_ranges
   * without col_adjust over any number of rows m, as run_rows is to run
   * (ranges not NULL). For the kernel-row windows (q8_conv_windows), whose
   * tiles are short (the stem: 9 K groups). */
  void (*run_rows_k_ranges)(size_t m, size_t nr, const q8_k_range *ranges, size_t nranges,
                            const void *a, size_t a_stride, q8_dtype a_dtype,
                            const void *packed, void *c, size_t c_stride,
                            const q8_requant_params *rq);
  /* Optional (NULL: drivers call run per column tile): as run, but over any
   * number of columns n (column tiles of NR, then the rest), the NR blocks
   * back to back from packed (q8_gemm_block_bytes apart) and per-channel rq
   * arrays starting at the first column. For the batch-1 GEMV, one row tile
   * over all the weights: the per-tile call and setup are a measurable share
   * of its time. */
  void (*run_cols)(size_t mr, size_t n, size_t k, const void *a, size_t a_stride,
                   q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                   const q8_requant_params *rq);
  /* Rows run_k_ranges takes (0: mr). A K-range tile keeps no A panel, so a
   * kernel without one may take more rows there than its GEMM tile has: the
   * indirect conv then cuts output lines into fewer, longer tiles. */
  unsigned k_ranges_mr;
} q8_gemm_ukernel;

/* The most rows run_k_ranges takes. */
static inline unsigned q8_gemm_k_ranges_mr(const q8_gemm_ukernel *uk) {
  return uk->k_ranges_mr ? uk->k_ranges_mr : uk->mr;
}

/* What the kernel adds to activations of type a_dtype: the offset of col_term. */
static inline int32_t q8_gemm_a_offset(const q8_gemm_ukernel *uk, q8_dtype a_dtype) {
  return a_dtype == Q8_INT8 ? uk->int8_a_offset : uk->uint8_a_offset;
}

/* kernels/pack.c: the common packed layout. */
size_t q8_gemm_block_bytes(unsigned nr, unsigned kr, size_t k);
size_t q8_gemm_packed_bytes(unsigned nr, unsigned kr, size_t n, size_t k);
void q8_gemm_pack_nrkr(unsigned nr, unsigned kr, size_t n, size_t k, const int8_t *w,
                       const int32_t *col_term, void *packed);
/* col_term[n] = bias[n] - (a_zero_point + offset) * sum_k W[n][k] (wrapping). */
void q8_gemm_col_terms(size_t n, size_t k, const int8_t *w, const int32_t *bias,
                       int32_t a_zero_point, int32_t offset, int32_t *col_term);

/* kernels/gemm_blocked.c: the single-threaded loop nest shared by every ISA.
 * Computes rows [m0, m1) x columns [n0, n1) of C with micro-kernel uk, where
 * n0 is a multiple of uk->nr. Columns are taken in blocks of nc (a multiple of
 * nr, sized by the caller from the L2 cache) so that a block of packed weights
 * stays in L2 while every row tile of A streams past it. */
typedef struct q8_gemm_blocked_args {
  size_t k;
  const void *a;
  size_t lda;               /* elements (= bytes) */
  q8_dtype a_dtype;
  const void *packed;
  void *c;
  size_t ldc;               /* elements of the output type */
  const q8_requant_params *rq; /* NULL: int32 output; per-channel arrays index from column 0 */
  size_t nc;                /* column block, multiple of uk->nr */
  size_t mc_bytes;          /* A bytes per run_rows chunk for requantized output
                               (q8_gemm_chunk_rows; L2-sized by the caller), 0: none */
} q8_gemm_blocked_args;
/* The kernel's own A panel for depth k (see q8_gemm_ukernel.pack_a), 64-byte
 * aligned, or NULL when the kernel has none or there is no memory (drivers
 * then call run). Release with free(). */
void *q8_gemm_a_panel_new(const q8_gemm_ukernel *uk, size_t k);
/* The column tiles [n0, n1) of one row tile, shared by the GEMM and indirect
 * conv drivers: `rows` rows of A at a (a_stride bytes apart, read as a_dtype;
 * args->a, lda and a_dtype are not used), written from row m of args->c.
 * With a_panel (q8_gemm_a_panel_new) the kernel's pack_a transforms the rows
 * once and run_panel runs every tile on them; else run reads A. */
void q8_gemm_row_tile(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args, size_t m,
                      size_t rows, const void *a, size_t a_stride, q8_dtype a_dtype,
                      void *a_panel, size_t n0, size_t n1);
void q8_gemm_blocked(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args,
                     size_t m0, size_t m1, size_t n0, size_t n1);
/* Rows per run_rows call for depth k and `cols` output columns of c_elem
 * bytes per row, or 0 where the kernel has no run_rows or no chunk pays
 * (for a kernel with its own A panel, beyond a small k: see
 * kernels/gemm_blocked.c).
 * Requantized output (c_elem 1) with mc_bytes (the callers pass a quarter
 * of L2 where the weights are one column block, so they stay in L2 from run
 * to run, else 0): the whole row tiles of mc_bytes of A, where at least two
 * fit. Each column tile's weights then serve every row tile of the chunk
 * from L1, A streams from L2 (8 bytes of it per 32 of weights), and the
 * requantization is set up once per chunk, not per tile. Zen 5, u8 in, s8
 * out, min of 3 alternating runs, against the rule below: 28x28x128:512
 * 136.6 -> 131.7 us, 28x28x512:128 121.3 -> 117.5, 28x28x512:256 241.3 ->
 * 237.0, 56x56x64:256 155.8 -> 151.5, 56x56x24:144 42.5 -> 40.0,
 * 14x14x96:576 30.0 -> 29.0, 14x14x576:96 25.7 -> 24.9, 7x7x960:320 36.0
 * -> 34.9, 7x7x576:160 11.0 -> 10.7, the other 1x1 layers of both suites
 * within 1 %. Not taken: int32 output (784x256x512 242 -> 246 us, 1024^3
 * 2521 -> 2558 with such chunks), and weights of several column blocks
 * (two threads, 256x3072x768 s8: 741 -> 765 us, each task streaming them
 * from L3 without the tile functions' weight prefetch).
 * Otherwise: chunks where at least four row tiles' A and output fit in
 * 16 KiB. Below four tiles the call and setup
 * saved are little, and it measured a loss: 3 tiles 2 %, 1 tile 8 %
 * (14x14x256:1024: run_rows leaves out the tiles' weight prefetch, which
 * pays where each row tile streams the weights from L2 or L3); with 64 KiB
 * as that bound, the layers of k >= 512 it then let in lost 4-7 %. Where
 * chunks are taken, they hold the whole row tiles of 64 KiB of A and
 * output: each column tile's weights then serve more tiles from L1, and the
 * per-call setup (requantization constants, output layout) is paid less
 * often. The A of such a chunk still fits L1; its output is only written.
 * Zen 5, against 16 KiB chunks (min of 3): 14x14x64:384 16.4 -> 14.6 us,
 * 28x28x32:192 17.7 -> 15.9, 56x56x24:144 44.4 -> 41.8, 56x56x64:256
 * 167 -> 159. */
size_t q8_gemm_chunk_rows(const q8_gemm_ukernel *uk, size_t k, size_t cols, size_t c_elem,
                          size_t mc_bytes);
/* Rows of a tall row tile, or 0 where the blocked driver keeps MR-row tiles.
 * Kernels whose K-range tiles take more rows than their GEMM tile
 * (k_ranges_mr > mr; no A panel) run row tiles of k_ranges_mr rows through
 * run_k_ranges over the whole depth (q8_gemm_tall_tile) where k is a
 * multiple of KR and such a tile's A (k_ranges_mr x k bytes) fits 32 KiB of
 * L1 beside the weights: each column block of weights is read from L2 by
 * fewer row tiles, and a ragged M loses less to its last tile (49 rows: 4
 * tiles of 14, 14, 14, 7 instead of 7 of 8 and a 1-row one). Zen 5,
 * avx512vnni, u8 x s8 -> s8, paired in-process A/B (median speed-up of 30
 * alternating 20 ms slots): 49x512x2048 1.026, 49x2048x1024 1.028,
 * 64x768x768 1.011, 1024^3 1.015, 256x3072x768 1.008, 9x512x512 1.19,
 * 196x256x1024 and 784x512x128 level. Where 14 rows of A did not fit
 * (32x4096x4096, k = 4096: 56 KiB), 0.94. The first row tile of each
 * column block of streamed weights stays an MR tile (see q8_gemm_blocked). */
size_t q8_gemm_tall_rows(const q8_gemm_ukernel *uk, size_t k);
/* A tall row tile (rows <= q8_gemm_tall_rows) over the column tiles
 * [n0, n1), each through run_k_ranges with one range, the whole depth; A as
 * q8_gemm_row_tile takes it, of a type the kernel reads without offset. */
void q8_gemm_tall_tile(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args, size_t m,
                       size_t rows, const void *a, size_t a_stride, q8_dtype a_dtype, size_t n0,
                       size_t n1);
/* As q8_gemm_row_tile without an A panel, for any number of rows (a chunk),
 * each column tile through uk->run_rows. */
void q8_gemm_row_chunk(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args, size_t m,
                       size_t rows, const void *a, size_t a_stride, q8_dtype a_dtype, size_t n0,
                       size_t n1);
/* Parameters for output columns starting at `column`: per-channel arrays
 * offset into *scratch (which is returned); per-tensor ones returned as is. */
const q8_requant_params *q8_requant_params_at(const q8_requant_params *rq, size_t column,
                                              q8_requant_params *scratch);

/* ---- indirect convolution (kernels/conv_indirect.c) ------------------------
 * A dense or grouped convolution is, per group, a GEMM whose row p (output
 * pixel p, NHWC order over batch, out_h, out_w) is the pixel's receptive field:
 * K = kernel_h * kernel_w * Cg bytes, tap by tap (ky, kx), Cg = in_channels /
 * groups channels per tap, the order of the OHWI weights. Instead of an
 * im2col copy of the whole input, an indirection table built once per shape
 * says where each row's bytes are, and the driver gathers one MR-row tile at a
 * time into a small panel that every column tile then reuses.
 *
 * The table gives each output pixel of one image an anchor (the byte offset
 * of its receptive field's top-left tap, which may lie in the padding, so it
 * can be negative) and a pattern: segments of `len` bytes at byte `offset`
 * from the anchor, or, for offset Q8_CONV_PADDING, `len` bytes of the input
 * zero point (padded taps, which thus contribute exactly 0). Pixels whose
 * taps are padded alike share a pattern (all interior pixels share one), so
 * the table is one small record per pixel plus a few patterns. Taps adjacent
 * in memory share one segment: with one group and no horizontal padding or
 * dilation, a whole kernel row (kernel_w * in_channels bytes) is one copy,
 * which matters when taps are only a few channels wide (conv1). Offsets are
 * relative, so one table serves any input pointer, image and group. */
#define Q8_CONV_PADDING INT64_C(-1)
typedef struct q8_conv_segment {
  int64_t offset; /* bytes from the pixel's anchor, or Q8_CONV_PADDING */
  size_t len;     /* bytes, >= 1 */
} q8_conv_segment;
typedef struct q8_conv_pixel {
  int64_t anchor; /* bytes from the image's first byte (plus the group's first channel) */
  size_t first, count; /* its pattern: segments[first .. first + count) */
} q8_conv_pixel;

/* Builds the table of one image of `shape` (valid, out extents out_h x out_w
 * >= 1; batch is ignored: images differ by a base offset): pixel p =
 * y * out_w + x gets pixels[p]. Returns the number of pattern segments; with
 * pixels and segments NULL only counts them, so a caller sizes the array
 * first (pixels has out_h * out_w entries). */
size_t q8_conv_indirection(const q8_conv_shape *shape, size_t out_h, size_t out_w,
                           q8_conv_pixel *pixels, q8_conv_segment *segments);

/* The single-threaded loop nest of one group: rows (pixels) [m0, m1) x
 * columns [n0, n1) of the group's output, n0 a multiple of uk->nr. Column
 * blocks of nc outermost as in q8_gemm_blocked; per row tile the driver
 * gathers the MR x k panel (flipped to A' on the way for kernels whose
 * q8_gemm_a_offset is not 0, whose col_term holds the correction),
 * then runs every column tile of the block over it. Panel rows are
 * panel_stride bytes apart: k rounded up to uk->kr, the bytes past k holding
 * the padded byte. They meet the zero padding of the packed weights, so the
 * kernels run over panel_stride bytes, exactly, with no K remainder. */
typedef struct q8_conv_indirect_args q8_conv_indirect_args;
/* Gathers rows [m, m + rows) (rows <= MR) of the implicit GEMM into
 * args->panel, panel_stride bytes apart, each byte xor flip (0 or 0x80),
 * padded taps and the bytes [k, panel_stride) as the zero point xor flip. Reads only bytes of the receptive fields; may
 * write up to Q8_CONV_PANEL_SLACK bytes past the last row (the panel has
 * them). */
typedef void (*q8_conv_gather_fn)(const q8_conv_indirect_args *args, size_t m, size_t rows,
                                  uint8_t flip);
#define Q8_CONV_PANEL_SLACK 64

/* Strided row tiles: `rows` pixels of the pattern starting at segments index
 * `pattern` whose anchors are `step` bytes apart (a run along one output row:
 * step = stride_w x in_channels). When each data segment of the pattern spans
 * at most 64 bytes over all rows ((rows - 1) x step + len: few input
 * channels, as in stems), the tile's panel is one load per segment (a source)
 * and, per 64-byte chunk of the panel, one byte permute per source that
 * supplies bytes to it: the entries below, made once per plan. */
#define Q8_CONV_STRIDED_MAX_SOURCES 16
#define Q8_CONV_STRIDED_MAX_CHUNKS 64
typedef struct q8_conv_strided_entry {
  uint8_t index[64]; /* chunk byte b = source byte index[b], where mask has bit b */
  uint64_t mask;
  size_t source;
} q8_conv_strided_entry;
typedef struct q8_conv_strided {
  size_t pattern, rows;
  int64_t step;
  size_t sources;
  int64_t source_offset[Q8_CONV_STRIDED_MAX_SOURCES]; /* from the first row's anchor */
  uint64_t source_mask[Q8_CONV_STRIDED_MAX_SOURCES];  /* the span's bytes */
  size_t chunks;
  size_t chunk_first[Q8_CONV_STRIDED_MAX_CHUNKS + 1]; /* entries of chunk c: [first[c], first[c+1]) */
  q8_conv_strided_entry *entries;
} q8_conv_strided;
/* Fills *out (entries allocated, free with q8_conv_strided_free) for tiles
 * of `rows` rows of the pattern of segments[pattern .. pattern + count),
 * panel rows panel_stride bytes apart. Returns false when such tiles do not
 * qualify (a span over 64 bytes, too many segments or chunks) or on no
 * memory; *out is then empty. */
bool q8_conv_strided_build(const q8_conv_segment *segments, size_t pattern, size_t count,
                           size_t rows, int64_t step, size_t panel_stride,
                           q8_conv_strided *out);
void q8_conv_strided_free(q8_conv_strided *s);
struct q8_conv_indirect_args {
  size_t k;                       /* kernel_h * kernel_w * Cg */
  size_t panel_stride;            /* q8_conv_indirect_panel_stride(uk, k) */
  const void *input;              /* the group's first channel: input + g * Cg */
  size_t image_pixels;            /* out_h * out_w: row m is pixel m % image_pixels... */
  size_t image_bytes;             /* ...of image m / image_pixels, this many bytes apart */
  q8_dtype in_dtype;              /* Q8_INT8 or Q8_UINT8 */
  int32_t in_zero_point;          /* the value padded bytes hold */
  const q8_conv_pixel *pixels;    /* from q8_conv_indirection */
  const q8_conv_segment *segments;
  const void *packed;             /* the group's weights, packed by uk->pack */
  void *c;                        /* the group's first output column */
  size_t ldc;                     /* elements of the output type (out_channels) */
  const q8_requant_params *rq;    /* NULL: int32; per-channel arrays from the group's column 0 */
  size_t nc;                      /* column block, multiple of uk->nr */
  unsigned char *panel;           /* q8_conv_indirect_panel_bytes(uk, k) bytes of scratch */
  q8_conv_gather_fn gather;       /* NULL: q8_conv_gather (portable) */
  const q8_conv_strided *strided; /* for q8_conv_gather_x8__avx512vbmi; NULL: none */
};
/* k rounded up to uk->kr. */
size_t q8_conv_indirect_panel_stride(const q8_gemm_ukernel *uk, size_t k);
/* q8_conv_indirect_chunk_rows x panel stride plus Q8_CONV_PANEL_SLACK. */
size_t q8_conv_indirect_panel_bytes(const q8_gemm_ukernel *uk, size_t k);
/* Rows the panel holds: MR, or for kernels with run_rows, a chunk of row tiles
 * of at most 8 KiB (q8_conv_indirect gathers them all, then runs each column
 * tile over them with run_rows where q8_gemm_chunk_rows allows). */
size_t q8_conv_indirect_chunk_rows(const q8_gemm_ukernel *uk, size_t k);
/* The portable gather: one copy per segment (q8_copy_flip). */
void q8_conv_gather(const q8_conv_indirect_args *args, size_t m, size_t rows, uint8_t flip);
/* x86 with AVX-512 BW/VL only (kernels/x86/conv_gather_avx512.c): segments
 * in pieces of up to 32 bytes, each a byte-masked load (never past the
 * segment) and a plain 16/32-byte store; the rows of a tile that share a
 * pattern are copied segment by segment. For short segments (few channels). */
void q8_conv_gather_x8__avx512vnni(const q8_conv_indirect_args *args, size_t m, size_t rows,
                                   uint8_t flip);
/* x86 with AVX-512 VBMI as well: strided tiles (args->strided) by byte
 * permutes, every other tile as q8_conv_gather_x8__avx512vnni. */
void q8_conv_gather_x8__avx512vbmi(const q8_conv_indirect_args *args, size_t m, size_t rows,
                                   uint8_t flip);
void q8_conv_indirect(const q8_gemm_ukernel *uk, const q8_conv_indirect_args *args,
                      size_t m0, size_t m1, size_t n0, size_t n1);
/* ---- tap-skipping tiles (kernels with run_k_ranges) ------------------------
 * Near the image border a receptive field reads padding at some taps, and a
 * padded tap contributes exactly 0, so a tile whose rows are all padded at a
 * tap need not multiply it (on a 7x7 output with a 3x3 kernel, 18% of the
 * products are with padding). Tiles of consecutive pixels rarely share a
 * padded tap, so this tiling orders one image's pixels border first:
 *   1. each output row that reads padding above or below, along the row;
 *   2. each output column that reads padding left or right, down the column
 *      (rows of group 1 excluded);
 *   3. the interior, row by row;
 * each cut into tiles of at most MR pixels (balanced), so every tile's rows
 * lie on one output line, at a constant output stride. A tile runs the K
 * ranges of the taps that some row reads, and col_adjust puts back into
 * col_term what the skipped taps' padding would have added:
 *   col_adjust[n] = (a_zero_point + offset) * sum over skipped taps of W[n][k],
 * zero (no adjust) when padding reads as 0 (uint8 zero point 0 or int8 -128
 * on a u8 x s8 kernel: what ReLU outputs use). */
typedef struct q8_conv_tile {
  size_t first;      /* first row: index into the tiling's pixels */
  size_t rows;       /* 1..MR */
  size_t out_pixel;  /* output pixel (y * out_w + x) of the first row */
  size_t out_step;   /* output pixels from one row to the next: 1 or out_w */
  bool direct;       /* the kernel reads the input in place: its rows share their padded
                        taps and the ranges' a_offsets are input offsets from a_first */
  int64_t a_first;   /* direct: the first row's first read byte, from the image start */
  size_t a_stride;   /* direct: bytes between the rows' receptive fields */
  size_t range_first, range_count; /* the tile's K ranges in the tiling's ranges */
  size_t skip_set;   /* index into skipped; set 0 skips nothing */
} q8_conv_tile;
typedef struct q8_conv_tiling {
  size_t count;            /* tiles per image */
  q8_conv_tile *tiles;
  q8_conv_pixel *pixels;   /* the table's records in tile order */
  q8_k_range *ranges;
  size_t skip_sets;
  uint64_t *skipped;       /* per set: bit ky * kernel_w + kx for each skipped tap */
} q8_conv_tiling;
/* Builds the tiling of `shape` (valid, groups' Cg a multiple of kr, at most
 * 64 taps) over its indirection table `pixels`. direct: the kernel may read
 * the input in place (it has no A panel and reads the input type as is);
 * then tiles whose rows are padded alike are marked direct and need no
 * gather. Returns false when there is no memory; *out is then empty.
 * out->count == 0: no tile would skip a tap or read in place, nothing to
 * gain.
 * Free with q8_conv_tiling_free. */
bool q8_conv_tiling_build(const q8_conv_shape *shape, size_t out_h, size_t out_w, unsigned mr,
                          const q8_conv_pixel *pixels, bool direct, q8_conv_tiling *out);
void q8_conv_tiling_free(q8_conv_tiling *t);
/* As q8_conv_indirect, over tiles [t0, t1) (tile t: image t / count, tile
 * t % count of the tiling) with uk->run_k_ranges. args->pixels is ignored
 * (the tiling has its own order). col_adjust: NULL, or skip_sets rows of
 * adjust_stride entries, each from the group's first column. */
void q8_conv_indirect_tiled(const q8_gemm_ukernel *uk, const q8_conv_indirect_args *args,
                            const q8_conv_tiling *tiling, const int32_t *col_adjust,
                            size_t adjust_stride, size_t t0, size_t t1, size_t n0, size_t n1);

/* ---- kernel-row windows (kernels with run_k_ranges and no A panel) ---------
 * Without horizontal dilation, the taps of one kernel row are kernel_w * Cg
 * contiguous bytes of an input row (one group), and the receptive fields of
 * one output line start stride_w * Cg bytes apart along it. So one output
 * line is kernel_h GEMMs whose A is the input row itself, read at that
 * stride: no gather. Each kernel row becomes one K range of kernel_w * Cg
 * bytes rounded up to KR (the window; the packed weights hold zeros past
 * the taps, so the few bytes a window reads beyond them count for nothing).
 * Per output line the driver copies the kernel_h input rows into a buffer,
 * padded left and right (and rows above or below the image entirely) with
 * the zero point, flipped on the way where the kernel's offset asks. For
 * inputs of few channels, whose gather is long for little arithmetic (the
 * MobileNetV2 stem: 27 bytes per pixel from 3 pieces), at the price of the
 * zero padding of each window (there 36 bytes of K instead of 28). */
/* The window: kernel_w * Cg rounded up to uk->kr. */
size_t q8_conv_window_bytes(const q8_gemm_ukernel *uk, const q8_conv_shape *shape);
/* Whether the path applies (groups 1, dilation_w 1, a kernel with
 * run_k_ranges and no A panel) and pays: Cg not a multiple of KR (else the
 * tiled igemm reads the input in place already), the windows' K at most 4/3
 * of the gathered K. */
bool q8_conv_windows_suit(const q8_gemm_ukernel *uk, const q8_conv_shape *shape);
/* Weights OHWI [oc][kh][kw * Cg] to [oc][kh][window], zeros past the taps. */
void q8_conv_windows_weights(const q8_conv_shape *shape, size_t window, const int8_t *ohwi,
                             int8_t *out);
typedef struct q8_conv_windows_args {
  const q8_conv_shape *shape;     /* groups 1, dilation_w 1 */
  size_t out_h, out_w;
  const void *input;
  q8_dtype in_dtype;
  int32_t in_zero_point;
  const void *packed;             /* weights from q8_conv_windows_weights, packed by uk->pack */
  void *c;
  const q8_requant_params *rq;    /* NULL: int32 output */
  size_t nc;                      /* column block, multiple of uk->nr */
  unsigned char *buffer;          /* q8_conv_windows_buffer_bytes of scratch, 64-byte aligned */
} q8_conv_windows_args;
size_t q8_conv_windows_buffer_bytes(const q8_gemm_ukernel *uk, const q8_conv_shape *shape);
/* Output lines [l0, l1) (line l: image l / out_h, row l % out_h) x columns
 * [n0, n1) (n0 a multiple of uk->nr), single-threaded. */
void q8_conv_windows(const q8_gemm_ukernel *uk, const q8_conv_windows_args *args, size_t l0,
                     size_t l1, size_t n0, size_t n1);

/* dst[i] = src[i] ^ flip for len bytes (flip: 0, or 0x80 for the sign-bit flip
 * behind the activation offsets); dst may equal src. */
void q8_copy_flip(unsigned char *dst, const unsigned char *src, size_t len, uint8_t flip);

/* ---- NEON element-wise kernels (kernels/arm/quantize_neon.c, aarch64 only) --
 * Same contracts as the q8_ref_ functions of the same name. */
void q8_neon_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                      q8_rounding rounding, q8_scale_op scale_op, void *out);
void q8_neon_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                        float *out);
void q8_neon_requantize(const int32_t *acc, size_t count, size_t inner,
                        const q8_requant_params *p, void *out);

/* ---- Highway kernels (kernels/hwy/, C++ behind extern "C") ----------------
 * Same contracts as the q8_ref_ functions of the same name; Highway's dynamic
 * dispatch picks the best target the CPU supports on first call. */
void q8_hwy_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                     q8_rounding rounding, q8_scale_op scale_op, void *out);
void q8_hwy_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                       float *out);
void q8_hwy_requantize(const int32_t *acc, size_t count, size_t inner,
                       const q8_requant_params *p, void *out);
/* Name of the Highway target dynamic dispatch uses now (e.g. "AVX3", "AVX2"). */
const char *q8_hwy_target(void);
/* Targets compiled in and supported by this CPU, best first: writes up to
 * `max` names, returns how many there are. For tests and `qbench info`. */
size_t q8_hwy_supported_targets(const char **names, size_t max);
/* Restrict dispatch to the named target (one of the above), or NULL to undo.
 * Returns 0 on success, -1 for an unknown/unsupported name. Not thread-safe:
 * for tests and benchmarks. */
int q8_hwy_force_target(const char *name);

/* ---- depthwise convolution (kernels/dwconv.c, kernels/x86/dwconv_*.c) -----
 * A depthwise micro-kernel computes output rows of a depthwise convolution
 * with multiplier 1 (channel c reads channel c; a multiplier m > 1 is run on
 * input rows expanded by q8_dwconv_expand_row, channels = in_channels * m):
 *
 *   acc[x][c] = col_term[c] + sum_{ky,kx} X'[ky][x * stride + kx * dilation - pad_left][c] * W[c][ky][kx]
 *   out[x][c] = rq ? requantize(acc[x][c], channel c) : acc[x][c]
 *
 * X'[ky] is row rows[ky] (in_w pixels of `channels` bytes); a column outside
 * [0, in_w) reads zero_pixel instead. Rows in the vertical padding are given
 * by the caller as a row of zero-point bytes. Padding therefore reads the
 * input zero point, and col_term[c] = bias[c] - zero_point * sum W[c] (see
 * q8_dwconv_col_terms) cancels it exactly: every step wraps modulo 2^32 and the
 * caller has proven that the true accumulator fits int32.
 *
 * Each kernel has its own packed layout of W and col_term (pack); dedicated
 * kernels (kernel_h, kernel_w, stride != 0) run only their shape with dilation
 * 1, generic ones (0) any shape.
 *
 * One call may cover several output rows (out_rows): a kernel then sets up
 * each block of channels (weights, requantization constants) once for all of
 * them instead of once per row, which at 7 pixels per row was a quarter of
 * the row's time (AVX-512, 14x14x576 stride 2). */
typedef struct q8_dwconv_row {
  /* kernel_h input row pointers per output row: rows[i * kernel_h + ky] */
  const void *const *rows;
  const void *zero_pixel;   /* `channels` bytes of the input zero point */
  q8_dtype in_dtype;        /* Q8_INT8 or Q8_UINT8 */
  size_t channels, in_w, out_w;
  size_t kernel_h, kernel_w, stride_w, dilation_w, pad_left;
  const void *packed;       /* from the kernel's pack */
  /* out_w * channels elements per output row, dense, the rows back to back */
  void *out;
  const q8_requant_params *rq; /* NULL: int32 output; per-channel arrays index by channel */
  size_t out_rows;             /* output rows of the call; 0 reads as 1 */
} q8_dwconv_row;

/* The rows of a call, and output row i of a call as a call of its own. */
static inline size_t q8_dwconv_out_rows(const q8_dwconv_row *r) {
  return r->out_rows ? r->out_rows : 1;
}

static inline q8_dwconv_row q8_dwconv_row_at(const q8_dwconv_row *r, size_t i) {
  q8_dwconv_row one = *r;
  const size_t elem = r->rq ? 1 : sizeof(int32_t);
  one.rows = r->rows + i * r->kernel_h;
  one.out = (unsigned char *)r->out + i * r->out_w * r->channels * elem;
  one.out_rows = 1;
  return one;
}

typedef struct q8_dwconv_ukernel {
  const char *name;        /* q8_dwconv_x8s8_<KHxKWsS|generic_>c<CT>__<isa> */
  unsigned kernel_h, kernel_w, stride; /* 0: any (generic) */
  unsigned channel_tile;   /* channels per packed block */
  /* 128 when the kernel reads int8 activations as x + 128 (u8 x s8 dot
   * products), else 0; -128 in uint8_a_offset when it reads uint8 activations
   * as x - 128 (s8 x s8 multiplies), else 0. The column terms are computed
   * with the zero point zero_point + the offset of the input type, as for
   * GEMM. Either flip is a sign-bit flip (x ^ 0x80), so a driver may flip the
   * input rows and the zero pixel itself and pass the kernel the other type,
   * which the kernel reads as is (dispatch/conv_depthwise.c does for
   * uint8_a_offset). */
  int32_t int8_a_offset;
  int32_t uint8_a_offset;
  size_t (*packed_bytes)(size_t channels, size_t taps);
  /* w: [channels][taps] int8 (OHWI with one input channel per group);
   * col_term: channels entries. */
  void (*pack)(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
               void *packed);
  void (*run)(const q8_dwconv_row *row);
} q8_dwconv_ukernel;

/* col_term[c] = bias[c] - zero_point * sum_t w[c][t] (wrapping); bias may be NULL. */
void q8_dwconv_col_terms(size_t channels, size_t taps, const int8_t *w, const int32_t *bias,
                         int32_t zero_point, int32_t *col_term);
/* out[x][c * multiplier + j] = in[x][c]: a row of `width` pixels. */
void q8_dwconv_expand_row(const uint8_t *in, size_t width, size_t channels, size_t multiplier,
                          uint8_t *out);

/* Packed layout of the pmaddwd kernels (AVX2), channel tile ct (a multiple of 8): per block
 * of ct channels (the last padded with zero channels),
 *   int32_t col_term[ct];           in the order of the accumulators below
 *   int16_t w[ceil(taps / 2)][ct][2]; taps in pairs (an odd last tap paired with 0)
 * where, within each 8-channel group g of the block, the accumulator of the
 * unpack-low half holds channels 8g..8g+3 and the unpack-high half 8g+4..8g+7
 * (the in-lane order of punpck{l,h}wd). */
size_t q8_dwconv_pack_pairs_bytes(unsigned ct, size_t channels, size_t taps);
void q8_dwconv_pack_pairs(unsigned ct, size_t channels, size_t taps, const int8_t *w,
                          const int32_t *col_term, void *packed);
/* The same layout with the taps paired in another order: element e of pair p
 * holds tap order[2 p + e] (a value >= taps holds 0), ceil(positions / 2)
 * pairs (positions >= taps: a tap may appear in several pairs), sized by
 * q8_dwconv_pack_pairs_bytes(ct, channels, positions); order NULL with
 * positions = taps is q8_dwconv_pack_pairs. */
void q8_dwconv_pack_pairs_ordered(unsigned ct, size_t channels, size_t taps, const int8_t *w,
                                  const int32_t *col_term, const uint8_t *order,
                                  size_t positions, void *packed);

/* The kernel descriptors are listed in kernels/dwconv.def and kernels/x86/dwconv.def. */

#ifdef __cplusplus
}
#endif
#endif
