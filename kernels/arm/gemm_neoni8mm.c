/* Armv8.6 i8mm int8 GEMM micro-kernel: smmla (s8 x s8) for int8 and usmmla
 * (u8 x s8) for uint8 activations, so both are read as is (offsets 0).
 *
 * smmla multiplies a 2x8 block of A (two rows, 8 k) by an 8x2 block of W
 * (two columns, 8 k) into a 2x2 int32 block [r0c0, r0c1, r1c0, r1c1]: 32
 * MACs per instruction. Tile: MR = 4 rows (2 row pairs) x NR = 24 columns
 * (12 column pairs), KR = 8: 24 accumulators. The common packed layout with
 * KR = 8 (q8_gemm_pack_nrkr) is already what smmla wants: per K group, column
 * pair j is 16 consecutive bytes (column 2j's 8 k, then column 2j + 1's).
 *
 * A rows are interleaved in registers: each row loads 16 bytes (2 K groups)
 * and trn1/trn2 of the 64-bit halves of two rows give the row pair's 2x8
 * block of either group. Per 16 k a tile thus issues MR * NR / 2 = 48 smmla,
 * MR = 4 permutes and MR + NR = 28 loads of 16 bytes. The shape is set by
 * those ratios: smmla and permutes share the two vector pipes, loads have two
 * pipes of their own (llvm-mca's Neoverse N2 model, used for Cortex-A710), so
 * the permutes cost 2 / NR of the smmla time whatever MR is: 6x12 ran at
 * 84.7% of peak, 4x16 at 88.3%, 4x24 at 91.9% (ideal 48 / 52). 24
 * accumulators, 4 A blocks and 2 W vectors take 30 of the 32 registers,
 * which GCC holds only without its pre-RA scheduling (Q8_MM_FN).
 * trn rather than zip: the same result for 64-bit elements (see mm_trn1).
 *
 * A is never read past k bytes per row: the last k % 16 bytes go through a
 * zeroed copy, and only K groups present in the packed weights (k padded to a
 * multiple of 8) are multiplied. An odd last row reads row 0 again for its
 * pair and its results are not stored.
 *
 * Compiled for i8mm through function attributes only: the file builds with a
 * plain `cc -std=c17 -O2` for Armv8.0; dispatch calls it only where i8mm is
 * usable. */
#include <arm_neon.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/arm/gemm_tile_neon.h"
#include "q8/kernels.h"

#define Q8_MM_MR 4
#define Q8_MM_NR 24
#define Q8_MM_PAIRS (Q8_MM_MR / 2)
#define Q8_MM_CPAIRS (Q8_MM_NR / 2)
/* q8_tile_neon parts of 16 columns in the epilogue. */
#define Q8_MM_PARTS ((Q8_MM_NR + 15) / 16)
/* 16-byte K steps per iteration of the main loop (see mm_tile). */
#define Q8_MM_UNROLL 8

#define Q8_MM_TARGET "arch=armv8.2-a+dotprod+i8mm"
#define Q8_MM_INLINE static inline __attribute__((always_inline, target(Q8_MM_TARGET)))
#define Q8_MM_FN static __attribute__((noinline, target(Q8_MM_TARGET))) Q8_TILE_NEON_NO_PRE_RA_SCHED

typedef struct mm_acc {
  int32x4_t v[Q8_MM_PAIRS][Q8_MM_CPAIRS]; /* [row pair][column pair] 2x2 blocks */
} mm_acc;

Q8_MM_INLINE int32x4_t mm_mla(const bool u8, int32x4_t acc, int8x16_t a, int8x16_t w) {
  return u8 ? vusmmlaq_s32(acc, vreinterpretq_u8_s8(a), w) : vmmlaq_s32(acc, a, w);
}

/* acc += one K group: ap[p] = row pair p's 2x8 block, 8 W column pairs at w. */
Q8_MM_INLINE void mm_group(const int P, const bool u8, mm_acc *acc, const int8x16_t *ap,
                           const int8_t *w) {
#pragma GCC unroll 16
  for (int j = 0; j < Q8_MM_CPAIRS; ++j) {
    const int8x16_t wv = vld1q_s8(w + 16 * j);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc->v[p][j] = mm_mla(u8, acc->v[p][j], ap[p], wv);
  }
}

/* acc += two K groups (lo, hi), column pair by column pair: two W vectors
 * live at a time, so 24 accumulators, 4 A blocks and W fit the registers. */
Q8_MM_INLINE void mm_groups2(const int P, const bool u8, mm_acc *acc, const int8x16_t *lo,
                             const int8x16_t *hi, const int8_t *w) {
#pragma GCC unroll 16
  for (int j = 0; j < Q8_MM_CPAIRS; ++j) {
    const int8x16_t w0 = vld1q_s8(w + 16 * j);
    const int8x16_t w1 = vld1q_s8(w + 16 * (Q8_MM_CPAIRS + j));
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      acc->v[p][j] = mm_mla(u8, acc->v[p][j], lo[p], w0);
      acc->v[p][j] = mm_mla(u8, acc->v[p][j], hi[p], w1);
    }
    /* Keeps GCC's scheduler from hoisting every W load to the top of the
     * loop, which runs out of registers; the core reorders the loads. */
    __asm__ volatile("" ::: "memory");
  }
}

/* trn1/trn2 on 64-bit lanes: [a.lo, b.lo] and [a.hi, b.hi]. Written as asm
 * because GCC emits vtrn1q_s64 as zip1 .2d (the same result), which
 * llvm-mca's model of Cortex-A76/A710 charges three vector-pipe slots
 * instead of one; the cores themselves run both in one. */
Q8_MM_INLINE int8x16_t mm_trn1(int8x16_t a, int8x16_t b) {
  int8x16_t r;
  __asm__("trn1 %0.2d, %1.2d, %2.2d" : "=w"(r) : "w"(a), "w"(b));
  return r;
}
Q8_MM_INLINE int8x16_t mm_trn2(int8x16_t a, int8x16_t b) {
  int8x16_t r;
  __asm__("trn2 %0.2d, %1.2d, %2.2d" : "=w"(r) : "w"(a), "w"(b));
  return r;
}

/* Row pair blocks of K groups 2i, 2i + 1 from 16 bytes of each row. */
Q8_MM_INLINE void mm_pairs(const int P, const int8x16_t *rows, int8x16_t *lo, int8x16_t *hi) {
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
    lo[p] = mm_trn1(rows[2 * p], rows[2 * p + 1]);
    hi[p] = mm_trn2(rows[2 * p], rows[2 * p + 1]);
  }
}

/* acc += 16 k (2 K groups) of the rows at row[m] + off. */
Q8_MM_INLINE void mm_k16(const int P, const bool u8, mm_acc *acc, const int8_t *const *row,
                         size_t off, const int8_t *w) {
  int8x16_t lo[Q8_MM_PAIRS], hi[Q8_MM_PAIRS];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
    const int8x16_t r0 = vld1q_s8(row[2 * p] + off), r1 = vld1q_s8(row[2 * p + 1] + off);
    lo[p] = mm_trn1(r0, r1);
    hi[p] = mm_trn2(r0, r1);
    /* One pair's rows live at a time (see mm_groups2). */
    __asm__ volatile("" ::: "memory");
  }
  mm_groups2(P, u8, acc, lo, hi, w);
}

/* acc += the rows (a, as apart) times the packed W at w over k bytes. */
Q8_MM_INLINE void mm_dot_k(const int MR, const bool u8, const bool mca, mm_acc *acc,
                           const int8_t *a, size_t as, const int8_t *w, size_t k) {
  const int P = (MR + 1) / 2;
  const int8_t *row[Q8_MM_MR];
#pragma GCC unroll 16
  for (int m = 0; m < 2 * P; ++m) row[m] = m < MR ? a + (size_t)m * as : a;
  size_t q = 0;
  /* 128 k per iteration, row pointers advanced once: loads with immediate
   * offsets are one uop where register offsets are two, and with 3 uops
   * dispatched per cycle that decides whether 2 smmla issue per cycle. */
  for (; q + 16 * Q8_MM_UNROLL <= k; q += 16 * Q8_MM_UNROLL) {
    if (mca) __asm__ volatile("// LLVM-MCA-BEGIN q8_gemm_x8s8_4x24c8__neoni8mm");
#pragma GCC unroll 16
    for (int u = 0; u < Q8_MM_UNROLL; ++u) {
      mm_k16(P, u8, acc, row, 16 * (size_t)u, w);
      w += 32 * Q8_MM_CPAIRS;
    }
#pragma GCC unroll 16
    for (int m = 0; m < 2 * P; ++m) row[m] += 16 * Q8_MM_UNROLL;
    if (mca) __asm__ volatile("// LLVM-MCA-END");
  }
  for (; q + 16 <= k; q += 16) {
    mm_k16(P, u8, acc, row, 0, w);
    w += 32 * Q8_MM_CPAIRS;
#pragma GCC unroll 16
    for (int m = 0; m < 2 * P; ++m) row[m] += 16;
  }
  const size_t rest = k - q;
  if (rest) {
    int8x16_t rows[Q8_MM_MR], lo[Q8_MM_PAIRS], hi[Q8_MM_PAIRS];
#pragma GCC unroll 16
    for (int m = 0; m < 2 * P; ++m) {
      int8_t tail[16] = {0};
      memcpy(tail, row[m], rest);
      rows[m] = vld1q_s8(tail);
    }
    mm_pairs(P, rows, lo, hi);
    mm_group(P, u8, acc, lo, w);
    if (rest > 8) mm_group(P, u8, acc, hi, w + 16 * Q8_MM_CPAIRS);
  }
}

/* Accumulators start at 0 and col_term is added at the end: started from
 * one shared col_term register, GCC copies accumulators inside the loop. */
Q8_MM_INLINE void mm_zero(const int MR, mm_acc *acc) {
  const int P = (MR + 1) / 2;
#pragma GCC unroll 16
  for (int j = 0; j < Q8_MM_CPAIRS; ++j) {
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc->v[p][j] = vdupq_n_s32(0);
  }
}

/* 2x2 blocks -> rows of columns, 16 per q8_tile_neon, plus col_term (and
 * col_adjust: NULL or nr entries), then stored: row 2p takes the low halves
 * of its pair's blocks, row 2p + 1 the high halves. */
Q8_MM_INLINE void mm_store(const int MR, const mm_acc *acc, const int8_t *packed,
                           const int32_t *col_adjust, size_t nr, unsigned char *c, size_t cs,
                           const q8_requant_params *rq) {
  const int P = (MR + 1) / 2;
  int32_t adjust[Q8_MM_NR] = {0};
  if (col_adjust) memcpy(adjust, col_adjust, nr * sizeof(int32_t));
  q8_tile_neon t[Q8_MM_PARTS];
#pragma GCC unroll 16
  for (int v = 0; v < Q8_MM_NR / 4; ++v) {
    int32x4_t ct = vld1q_s32((const int32_t *)(const void *)packed + 4 * v);
    if (col_adjust) ct = vaddq_s32(ct, vld1q_s32(adjust + 4 * v));
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      const int64x2_t b0 = vreinterpretq_s64_s32(acc->v[p][2 * v]);
      const int64x2_t b1 = vreinterpretq_s64_s32(acc->v[p][2 * v + 1]);
      t[v / 4].v[2 * p][v % 4] = vaddq_s32(vreinterpretq_s32_s64(vzip1q_s64(b0, b1)), ct);
      t[v / 4].v[2 * p + 1][v % 4] = vaddq_s32(vreinterpretq_s32_s64(vzip2q_s64(b0, b1)), ct);
    }
  }
#pragma GCC unroll 4
  for (int h = 0; h < Q8_MM_PARTS; ++h) {
    const int nv = Q8_MM_NR / 4 - 4 * h < 4 ? Q8_MM_NR / 4 - 4 * h : 4;
    q8_tile_neon_store_at(MR, nv, &t[h], 16 * (size_t)h, nr, c, cs, rq);
  }
}

Q8_MM_INLINE void mm_tile(const int MR, const bool u8, const bool mca, size_t nr, size_t k,
                          const int8_t *a, size_t as, const int8_t *packed, unsigned char *c,
                          size_t cs, const q8_requant_params *rq) {
  mm_acc acc;
  mm_zero(MR, &acc);
  mm_dot_k(MR, u8, mca, &acc, a, as, packed + Q8_MM_NR * sizeof(int32_t), k);
  mm_store(MR, &acc, packed, NULL, nr, c, cs, rq);
}

/* run_k_ranges: each range through mm_dot_k from its own A offset and K
 * group of W (begin and len multiples of 8). */
Q8_MM_INLINE void mm_ranges_tile(const int MR, const bool u8, size_t nr, const q8_k_range *ranges,
                                 size_t nranges, const int8_t *a, size_t as,
                                 const int8_t *packed, const int32_t *col_adjust,
                                 unsigned char *c, size_t cs, const q8_requant_params *rq) {
  mm_acc acc;
  mm_zero(MR, &acc);
  const int8_t *w = packed + Q8_MM_NR * sizeof(int32_t);
  for (size_t r = 0; r < nranges; ++r) {
    mm_dot_k(MR, u8, false, &acc, a + ranges[r].a_offset, as,
             w + ranges[r].begin / 8 * (8 * Q8_MM_NR), ranges[r].len);
  }
  mm_store(MR, &acc, packed, col_adjust, nr, c, cs, rq);
}

typedef void (*mm_ranges_fn)(size_t nr, const q8_k_range *ranges, size_t nranges,
                             const int8_t *a, size_t as, const int8_t *packed,
                             const int32_t *col_adjust, unsigned char *c, size_t cs,
                             const q8_requant_params *rq);
#define Q8_MM_RANGES_FNS(R)                                                                  \
  Q8_MM_FN void ranges_s8_##R(size_t nr, const q8_k_range *ranges, size_t nranges,           \
                              const int8_t *a, size_t as, const int8_t *packed,              \
                              const int32_t *col_adjust, unsigned char *c, size_t cs,        \
                              const q8_requant_params *rq) {                                 \
    mm_ranges_tile(R, false, nr, ranges, nranges, a, as, packed, col_adjust, c, cs, rq);     \
  }                                                                                          \
  Q8_MM_FN void ranges_u8_##R(size_t nr, const q8_k_range *ranges, size_t nranges,           \
                              const int8_t *a, size_t as, const int8_t *packed,              \
                              const int32_t *col_adjust, unsigned char *c, size_t cs,        \
                              const q8_requant_params *rq) {                                 \
    mm_ranges_tile(R, true, nr, ranges, nranges, a, as, packed, col_adjust, c, cs, rq);      \
  }
Q8_MM_RANGES_FNS(1)
Q8_MM_RANGES_FNS(2)
Q8_MM_RANGES_FNS(3)
Q8_MM_RANGES_FNS(4)

/* [mr - 1][0: int8, 1: uint8] */
static const mm_ranges_fn range_tiles[Q8_MM_MR][2] = {{ranges_s8_1, ranges_u8_1},
                                                      {ranges_s8_2, ranges_u8_2},
                                                      {ranges_s8_3, ranges_u8_3},
                                                      {ranges_s8_4, ranges_u8_4}};

static void run_k_ranges(size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges,
                         const void *a, size_t a_stride, q8_dtype a_dtype, const void *packed,
                         const int32_t *col_adjust, void *c, size_t c_stride,
                         const q8_requant_params *rq) {
  range_tiles[mr - 1][a_dtype == Q8_UINT8](nr, ranges, nranges, a, a_stride, packed, col_adjust,
                                           c, c_stride, rq);
}

#define Q8_MM_TILE_FNS(R) Q8_TILE_NEON_FNS(Q8_MM_FN, mm_tile, R, Q8_MM_MR)

#if Q8_MM_MR != 4 || Q8_MM_NR % 4 != 0
#error "the tile table below lists MR = 4; the epilogue takes whole vectors of 4 columns"
#endif
Q8_MM_TILE_FNS(1)
Q8_MM_TILE_FNS(2)
Q8_MM_TILE_FNS(3)
Q8_MM_TILE_FNS(4)

/* [mr - 1][0: int8, 1: uint8] */
static const q8_tile_neon_fn tiles[Q8_MM_MR][2] = {{s8_1, u8_1}, {s8_2, u8_2}, {s8_3, u8_3},
                                                   {s8_4, u8_4}};

static void run(size_t mr, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,
                const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {
  tiles[mr - 1][a_dtype == Q8_UINT8](nr, k, a, a_stride, packed, c, c_stride, rq);
}

const q8_gemm_ukernel q8_gemm_x8s8_4x24c8__neoni8mm = {
    .name = "q8_gemm_x8s8_4x24c8__neoni8mm",
    .mr = Q8_MM_MR,
    .nr = Q8_MM_NR,
    .kr = 8,
    .int8_a_offset = 0,
    .uint8_a_offset = 0,
    .pack = q8_gemm_pack_nrkr,
    .run = run,
    .run_k_ranges = run_k_ranges,
};
