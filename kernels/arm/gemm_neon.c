/* Armv8.0 NEON GEMM micro-kernel q8_gemm_x8s8_4x4c16__neon (no dot products).
 *
 * Exact for every input: smull multiplies 8 int8 pairs into int16 lanes, and a
 * single product always fits (|a * w| <= 128 * 128 = 16384); sadalp then adds
 * adjacent int16 products into int32 lanes. Accumulating two products in an
 * int16 lane first (smull + smlal, as the fast XNNPACK kernels do when weights
 * exclude -128) is not exact: two -128 x -128 products make 32768.
 *
 * Why smull + sadalp rather than widening to int16 and smlal by lane: on
 * Cortex-A76 every NEON multiply issues on one pipe (V0) at one per cycle,
 * so smlal by lane gives 4 MACs/cycle, while smull gives 8 products per
 * V0 cycle and sadalp runs on the other pipe (V1): 8 MACs/cycle, the peak of
 * exact int8 without dot products (the `neon` probe of qbench peak).
 *
 * Layout: the common q8_gemm_pack_nrkr layout with NR = 4, KR = 16: per group
 * of 16 k, 4 columns x 16 weight bytes, one q register per column, multiplied
 * with the row's 16 activations by smull (low halves) and smull2 (high
 * halves). Accumulator acc[m][n] is an int32x4 of partial sums over k; the
 * tile keeps 16 of them (of 32 vector registers), plus 4 activation and 4
 * weight registers, and reduces each to one int32 with two pairwise adds at
 * the end. Per group: 8 loads, 32 smull (V0), 32 sadalp (V1).
 *
 * Output: int32, or requantized in all three modes by kernels/arm/requant_neon.h.
 *
 * Activations: smull is signed only, so int8 is read as is and uint8 as
 * A - 128 (a sign-bit flip, exact in int8; uint8_a_offset = -128: col_term
 * holds + 128 * sum W). The drivers flip uint8 rows once per row tile into a
 * panel and pass them as int8, so uint8 runs the int8 loop; called directly
 * with uint8, the kernel flips each 16-byte load itself (one eor per row and
 * group, a path the drivers never take, hence no llvm-mca marker of its own).
 *
 * Baseline Armv8-A: Advanced SIMD is part of it, so no target attribute. */
#include <arm_neon.h>
#include <string.h>

#include "kernels/arm/gemm_tile_neon.h"
#include "kernels/arm/requant_neon.h"
#include "q8/kernels.h"

#define Q8_NEON_MR 4
#define Q8_NEON_NR 4
#define Q8_NEON_KR 16

#define Q8_NEON_INLINE static inline __attribute__((always_inline))

/* acc += the 16 exact products of a and w, pairwise summed into int32. */
#define Q8_NEON_MAC(acc, a, w)                                      \
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(w))); \
  acc = vpadalq_s16(acc, vmull_high_s8(a, w))

/* One group of 16 k: activations a0..a3, weights at w. */
#define Q8_NEON_GROUP(a0, a1, a2, a3)                                               \
  {                                                                                 \
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32), \
                    w3 = vld1q_s8(w + 48);                                          \
    w += Q8_NEON_NR * Q8_NEON_KR;                                                   \
    Q8_NEON_MAC(acc00, a0, w0);                                                     \
    Q8_NEON_MAC(acc01, a0, w1);                                                     \
    Q8_NEON_MAC(acc02, a0, w2);                                                     \
    Q8_NEON_MAC(acc03, a0, w3);                                                     \
    Q8_NEON_MAC(acc10, a1, w0);                                                     \
    Q8_NEON_MAC(acc11, a1, w1);                                                     \
    Q8_NEON_MAC(acc12, a1, w2);                                                     \
    Q8_NEON_MAC(acc13, a1, w3);                                                     \
    Q8_NEON_MAC(acc20, a2, w0);                                                     \
    Q8_NEON_MAC(acc21, a2, w1);                                                     \
    Q8_NEON_MAC(acc22, a2, w2);                                                     \
    Q8_NEON_MAC(acc23, a2, w3);                                                     \
    Q8_NEON_MAC(acc30, a3, w0);                                                     \
    Q8_NEON_MAC(acc31, a3, w1);                                                     \
    Q8_NEON_MAC(acc32, a3, w2);                                                     \
    Q8_NEON_MAC(acc33, a3, w3);                                                     \
  }

/* The 16 accumulators of a tile: row r, column j in accrj (pairwise sums). */
#define Q8_NEON_ZERO_ACC                                                 \
  const int32x4_t zero = vdupq_n_s32(0);                                 \
  int32x4_t acc00 = zero, acc01 = zero, acc02 = zero, acc03 = zero;      \
  int32x4_t acc10 = zero, acc11 = zero, acc12 = zero, acc13 = zero;      \
  int32x4_t acc20 = zero, acc21 = zero, acc22 = zero, acc23 = zero;      \
  int32x4_t acc30 = zero, acc31 = zero, acc32 = zero, acc33 = zero;

/* rows[r] = row r's 4 column totals + col_term. */
#define Q8_NEON_TOTALS(rows, col_term)                                                     \
  const int32x4_t rows[Q8_NEON_MR] = {vaddq_s32(reduce4(acc00, acc01, acc02, acc03), col_term), \
                                      vaddq_s32(reduce4(acc10, acc11, acc12, acc13), col_term), \
                                      vaddq_s32(reduce4(acc20, acc21, acc22, acc23), col_term), \
                                      vaddq_s32(reduce4(acc30, acc31, acc32, acc33), col_term)};

/* Activations of one group as int8: uint8 bytes flipped to A - 128. */
Q8_NEON_INLINE int8x16_t load_a(const int8_t *p, const int U8) {
  const int8x16_t v = vld1q_s8(p);
  return U8 ? veorq_s8(v, vdupq_n_s8(INT8_MIN)) : v;
}

/* Four int32x4 of partial sums (one per column) -> the 4 column totals. */
Q8_NEON_INLINE int32x4_t reduce4(int32x4_t c0, int32x4_t c1, int32x4_t c2, int32x4_t c3) {
  return vpaddq_s32(vpaddq_s32(c0, c1), vpaddq_s32(c2, c3));
}

/* Writes rows 0..mr-1 (nr columns each) of the tile, given as one int32x4 of
 * column sums per row: int32, or requantized through requant_neon.h (the 4
 * rows narrowed together, row r in bytes 4r..4r+3). */
Q8_NEON_INLINE void store_tile(unsigned char *c, size_t c_stride, size_t mr, size_t nr,
                               const int32x4_t rows[Q8_NEON_MR], const q8_requant_params *rq) {
  if (rq == NULL) {
    for (size_t r = 0; r < mr; ++r, c += c_stride) {
      int32_t acc[Q8_NEON_NR];
      vst1q_s32(acc, rows[r]);
      memcpy(c, acc, nr * sizeof(int32_t));
    }
    return;
  }
  q8_rqn p;
  q8_rqn_init(&p, rq, 0, nr);
  uint8_t bytes[Q8_NEON_MR * Q8_NEON_NR];
  vst1q_u8(bytes, q8_rqn_narrow16(q8_rqn_apply(&p, rq->mode, rows[0]),
                                  q8_rqn_apply(&p, rq->mode, rows[1]),
                                  q8_rqn_apply(&p, rq->mode, rows[2]),
                                  q8_rqn_apply(&p, rq->mode, rows[3])));
  for (size_t r = 0; r < mr; ++r, c += c_stride) memcpy(c, bytes + r * Q8_NEON_NR, nr);
}

/* The tile with compile-time activation type; rows past mr alias row 0 (their
 * results are computed and dropped). */
Q8_NEON_INLINE void tile_neon(const int U8, size_t mr, size_t nr, size_t k, const void *a,
                              size_t a_stride, const void *packed, void *c, size_t c_stride,
                              const q8_requant_params *rq) {
  const int8_t *a0 = (const int8_t *)a;
  const int8_t *a1 = mr > 1 ? a0 + a_stride : a0;
  const int8_t *a2 = mr > 2 ? a1 + a_stride : a0;
  const int8_t *a3 = mr > 3 ? a2 + a_stride : a0;
  const int8_t *w = (const int8_t *)packed + Q8_NEON_NR * sizeof(int32_t);
  const size_t full = k / Q8_NEON_KR, rem = k % Q8_NEON_KR;

  Q8_NEON_ZERO_ACC
  for (size_t g = 0; g < full; ++g) {
    if (!U8) __asm__ volatile("// LLVM-MCA-BEGIN q8_gemm_x8s8_4x4c16__neon");
    const size_t off = g * Q8_NEON_KR;
    int8x16_t va0 = load_a(a0 + off, U8), va1 = load_a(a1 + off, U8);
    int8x16_t va2 = load_a(a2 + off, U8), va3 = load_a(a3 + off, U8);
    Q8_NEON_GROUP(va0, va1, va2, va3)
    if (!U8) __asm__ volatile("// LLVM-MCA-END");
  }
  if (rem != 0) {
    /* A is never read past k bytes per row: the last partial group goes
     * through a zero-padded copy (the packed weights are zero there). */
    int8_t tail[Q8_NEON_MR][Q8_NEON_KR];
    memset(tail, 0, sizeof tail);
    const size_t off = full * Q8_NEON_KR;
    memcpy(tail[0], a0 + off, rem);
    memcpy(tail[1], a1 + off, rem);
    memcpy(tail[2], a2 + off, rem);
    memcpy(tail[3], a3 + off, rem);
    int8x16_t va0 = load_a(tail[0], U8), va1 = load_a(tail[1], U8);
    int8x16_t va2 = load_a(tail[2], U8), va3 = load_a(tail[3], U8);
    /* Flipped padding (-128) meets zero weights. */
    Q8_NEON_GROUP(va0, va1, va2, va3)
  }

  const int32x4_t col_term = vld1q_s32((const int32_t *)packed);
  Q8_NEON_TOTALS(rows, col_term)
  store_tile((unsigned char *)c, c_stride, mr, nr, rows, rq);
}

/* GCC's scheduling pass before register allocation hoists all 32 smull of a
 * group above the sadalp, and the products plus 16 accumulators then spill or
 * get copied (an empty-asm dependency per column still left 12 register
 * copies in the loop, 85% of the model's peak). Without that pass
 * (Q8_TILE_NEON_NO_PRE_RA_SCHED, gemm_tile_neon.h) the loop is its 71 loads,
 * smull and sadalp. */
Q8_TILE_NEON_NO_PRE_RA_SCHED static void q8_gemm_x8s8_4x4c16__neon_run(
    size_t mr, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,
    const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {
  if (a_dtype == Q8_UINT8) {
    tile_neon(1, mr, nr, k, a, a_stride, packed, c, c_stride, rq);
  } else {
    tile_neon(0, mr, nr, k, a, a_stride, packed, c, c_stride, rq);
  }
}

/* run_k_ranges: int8 rows as they are (the driver flips uint8); ranges are
 * whole groups of 16 k, each from its own A offset. */
Q8_TILE_NEON_NO_PRE_RA_SCHED static void q8_gemm_x8s8_4x4c16__neon_run_k_ranges(
    size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges, const void *a,
    size_t a_stride, q8_dtype a_dtype, const void *packed, const int32_t *col_adjust, void *c,
    size_t c_stride, const q8_requant_params *rq) {
  (void)a_dtype; /* int8, the only type read as is */
  const int8_t *a0 = (const int8_t *)a;
  const int8_t *a1 = mr > 1 ? a0 + a_stride : a0;
  const int8_t *a2 = mr > 2 ? a1 + a_stride : a0;
  const int8_t *a3 = mr > 3 ? a2 + a_stride : a0;
  const int8_t *weights = (const int8_t *)packed + Q8_NEON_NR * sizeof(int32_t);
  Q8_NEON_ZERO_ACC
  for (size_t r = 0; r < nranges; ++r) {
    const int8_t *w = weights + ranges[r].begin / Q8_NEON_KR * (Q8_NEON_NR * Q8_NEON_KR);
    for (size_t off = ranges[r].a_offset; off < ranges[r].a_offset + ranges[r].len;
         off += Q8_NEON_KR) {
      int8x16_t va0 = vld1q_s8(a0 + off), va1 = vld1q_s8(a1 + off);
      int8x16_t va2 = vld1q_s8(a2 + off), va3 = vld1q_s8(a3 + off);
      Q8_NEON_GROUP(va0, va1, va2, va3)
    }
  }
  int32_t adjust[Q8_NEON_NR] = {0}; /* col_adjust has only nr entries */
  if (col_adjust) memcpy(adjust, col_adjust, nr * sizeof(int32_t));
  const int32x4_t col_term = vaddq_s32(vld1q_s32((const int32_t *)packed), vld1q_s32(adjust));
  Q8_NEON_TOTALS(rows, col_term)
  store_tile((unsigned char *)c, c_stride, mr, nr, rows, rq);
}

const q8_gemm_ukernel q8_gemm_x8s8_4x4c16__neon = {
    .name = "q8_gemm_x8s8_4x4c16__neon",
    .mr = Q8_NEON_MR,
    .nr = Q8_NEON_NR,
    .kr = Q8_NEON_KR,
    .int8_a_offset = 0,
    .uint8_a_offset = -128,
    .pack = q8_gemm_pack_nrkr,
    .run = q8_gemm_x8s8_4x4c16__neon_run,
    .run_k_ranges = q8_gemm_x8s8_4x4c16__neon_run_k_ranges,
};
