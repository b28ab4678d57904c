/* Armv8.2 dotprod int8 GEMM micro-kernel (sdot: s8 x s8 -> s32, 4 products
 * per lane).
 *
 * Tile: MR = 4 rows x NR = 16 columns (4 vectors of 4), KR = 4, the common
 * packed layout (q8_gemm_pack_nrkr): one 16-byte load is 4 columns x 4 k.
 * Each row loads 16 bytes of A (4 K groups) at once and every K group is one
 * lane of it (sdot by element), so per 16 k a tile issues 64 sdot for 4 A and
 * 16 W loads. 16 accumulators are 16 independent chains: Cortex-A76 and
 * Neoverse-N1 issue 2 sdot per cycle with latency 2, so 4 chains already hide
 * it; registers stay well inside the 32 (16 acc + 4 A + 4-8 W).
 *
 * Activations: sdot is signed, so int8 is read as is and uint8 as A - 128 (a
 * sign-bit flip, uint8_a_offset = -128: col_term holds + 128 * sum W). The
 * drivers flip uint8 rows once per row tile into a panel and pass them as
 * int8; called directly with uint8, the kernel flips each 16-byte load itself.
 * A is never read past k bytes per row: the last k % 16 bytes go through a
 * zeroed 16-byte copy, and only the K groups that exist in the packed weights
 * (k padded to a multiple of 4 with zeros) are multiplied.
 *
 * Every mr in 1..MR has its own fully unrolled function. Compiled for dotprod
 * through function attributes only: the file builds with a plain
 * `cc -std=c17 -O2` for Armv8.0, and dispatch calls it only where dotprod is
 * usable. */
#include <arm_neon.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/arm/gemm_tile_neon.h"
#include "q8/kernels.h"

#define Q8_DOT_MR 8
#define Q8_DOT_NV 2
#define Q8_DOT_NR (4 * Q8_DOT_NV)
#if Q8_DOT_MR > Q8_TILE_NEON_MAX_ROWS || Q8_DOT_NV > 4
#error "tile larger than q8_tile_neon"
#endif

#define Q8_DOT_TARGET "arch=armv8.2-a+dotprod"
#define Q8_DOT_INLINE static inline __attribute__((always_inline, target(Q8_DOT_TARGET)))
#define Q8_DOT_FN static __attribute__((noinline, target(Q8_DOT_TARGET)))

/* The accumulators: rows x NV vectors of the shared tile. */
typedef q8_tile_neon dot_acc;

/* acc[m][*] += K group `lane` of row m's 16 A bytes times its 4 W vectors. */
#define Q8_DOT_GROUP(lane)                                                        \
  do {                                                                            \
    int8x16_t wv[Q8_DOT_NV];                                                      \
    _Pragma("GCC unroll 4") for (int v = 0; v < Q8_DOT_NV; ++v) wv[v] =           \
        vld1q_s8(w + 16 * v);                                                     \
    w += 16 * Q8_DOT_NV;                                                          \
    _Pragma("GCC unroll 8") for (int m = 0; m < MR; ++m) {                        \
      _Pragma("GCC unroll 4") for (int v = 0; v < Q8_DOT_NV; ++v) {               \
        acc->v[m][v] = vdotq_laneq_s32(acc->v[m][v], wv[v], av[m], lane);         \
      }                                                                           \
    }                                                                             \
  } while (0)

/* acc += A (rows a, stride as) x packed W over k bytes. mca marks the main
 * loop for llvm-mca (bench/arm-mca) in the one instantiation it analyses. */
Q8_DOT_INLINE void dot_k(const int MR, const bool flip, const bool mca, dot_acc *acc,
                         const int8_t *a, size_t as, const int8_t *w, size_t k) {
  const int8x16_t sign = vdupq_n_s8(INT8_MIN);
  const int8_t *row[Q8_DOT_MR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) row[m] = a + (size_t)m * as;
  size_t q = 0;
  for (; q + 16 <= k; q += 16) {
    if (mca) __asm__ volatile("// LLVM-MCA-BEGIN q8_gemm_x8s8_8x8c4__neondot");
    int8x16_t av[Q8_DOT_MR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      av[m] = vld1q_s8(row[m] + q);
      if (flip) av[m] = veorq_s8(av[m], sign);
    }
    Q8_DOT_GROUP(0);
    Q8_DOT_GROUP(1);
    Q8_DOT_GROUP(2);
    Q8_DOT_GROUP(3);
    if (mca) __asm__ volatile("// LLVM-MCA-END");
  }
  const size_t rest = k - q;
  if (rest == 0) return;
  int8x16_t av[Q8_DOT_MR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    int8_t tail[16] = {0};
    memcpy(tail, row[m] + q, rest);
    av[m] = vld1q_s8(tail);
    /* Flipped padding (-128) meets zero weights or is never multiplied. */
    if (flip) av[m] = veorq_s8(av[m], sign);
  }
  Q8_DOT_GROUP(0);
  if (rest > 4) Q8_DOT_GROUP(1);
  if (rest > 8) Q8_DOT_GROUP(2);
  if (rest > 12) Q8_DOT_GROUP(3);
}

Q8_DOT_INLINE void dot_tile(const int MR, const bool flip, const bool mca, size_t nr, size_t k,
                            const int8_t *a, size_t as, const int8_t *packed, unsigned char *c,
                            size_t cs, const q8_requant_params *rq) {
  dot_acc acc;
#pragma GCC unroll 4
  for (int v = 0; v < Q8_DOT_NV; ++v) {
    const int32x4_t ct = vld1q_s32((const int32_t *)(const void *)packed + 4 * v);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) acc.v[m][v] = ct;
  }
  dot_k(MR, flip, mca, &acc, a, as, packed + Q8_DOT_NR * sizeof(int32_t), k);
  q8_tile_neon_store(MR, Q8_DOT_NV, &acc, nr, c, cs, rq);
}

/* run_k_ranges: int8 rows as they are (the driver flips uint8), each range
 * through dot_k from its own offset in A and its own K group of W. */
Q8_DOT_INLINE void dot_ranges_tile(const int MR, size_t nr, const q8_k_range *ranges,
                                   size_t nranges, const int8_t *a, size_t as,
                                   const int8_t *packed, const int32_t *col_adjust,
                                   unsigned char *c, size_t cs, const q8_requant_params *rq) {
  int32_t adjust[Q8_DOT_NR] = {0}; /* col_adjust has only nr entries */
  if (col_adjust) memcpy(adjust, col_adjust, nr * sizeof(int32_t));
  dot_acc acc;
#pragma GCC unroll 4
  for (int v = 0; v < Q8_DOT_NV; ++v) {
    const int32x4_t ct = vaddq_s32(vld1q_s32((const int32_t *)(const void *)packed + 4 * v),
                                   vld1q_s32(adjust + 4 * v));
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) acc.v[m][v] = ct;
  }
  const int8_t *w = packed + Q8_DOT_NR * sizeof(int32_t);
  for (size_t r = 0; r < nranges; ++r) {
    dot_k(MR, false, false, &acc, a + ranges[r].a_offset, as,
          w + ranges[r].begin / 4 * (Q8_DOT_NR * 4), ranges[r].len);
  }
  q8_tile_neon_store(MR, Q8_DOT_NV, &acc, nr, c, cs, rq);
}

typedef void (*dot_ranges_fn)(size_t nr, const q8_k_range *ranges, size_t nranges,
                              const int8_t *a, size_t as, const int8_t *packed,
                              const int32_t *col_adjust, unsigned char *c, size_t cs,
                              const q8_requant_params *rq);
#define Q8_DOT_RANGES_FN(R)                                                                 \
  Q8_DOT_FN void ranges_##R(size_t nr, const q8_k_range *ranges, size_t nranges,            \
                            const int8_t *a, size_t as, const int8_t *packed,               \
                            const int32_t *col_adjust, unsigned char *c, size_t cs,         \
                            const q8_requant_params *rq) {                                  \
    dot_ranges_tile(R, nr, ranges, nranges, a, as, packed, col_adjust, c, cs, rq);          \
  }
Q8_DOT_RANGES_FN(1)
Q8_DOT_RANGES_FN(2)
Q8_DOT_RANGES_FN(3)
Q8_DOT_RANGES_FN(4)
Q8_DOT_RANGES_FN(5)
Q8_DOT_RANGES_FN(6)
Q8_DOT_RANGES_FN(7)
Q8_DOT_RANGES_FN(8)
static const dot_ranges_fn range_tiles[Q8_DOT_MR] = {ranges_1, ranges_2, ranges_3, ranges_4,
                                                     ranges_5, ranges_6, ranges_7, ranges_8};

static void run_k_ranges(size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges,
                         const void *a, size_t a_stride, q8_dtype a_dtype, const void *packed,
                         const int32_t *col_adjust, void *c, size_t c_stride,
                         const q8_requant_params *rq) {
  (void)a_dtype; /* int8, the only type read as is */
  range_tiles[mr - 1](nr, ranges, nranges, a, a_stride, packed, col_adjust, c, c_stride, rq);
}

#define Q8_DOT_TILE_FNS(R) Q8_TILE_NEON_FNS(Q8_DOT_FN, dot_tile, R, Q8_DOT_MR)

#if Q8_DOT_MR != 8
#error "the tile table below lists MR = 8"
#endif
Q8_DOT_TILE_FNS(1)
Q8_DOT_TILE_FNS(2)
Q8_DOT_TILE_FNS(3)
Q8_DOT_TILE_FNS(4)
Q8_DOT_TILE_FNS(5)
Q8_DOT_TILE_FNS(6)
Q8_DOT_TILE_FNS(7)
Q8_DOT_TILE_FNS(8)

/* [mr - 1][0: int8, 1: uint8] */
static const q8_tile_neon_fn tiles[Q8_DOT_MR][2] = {{s8_1, u8_1}, {s8_2, u8_2}, {s8_3, u8_3}, {s8_4, u8_4},
                                            {s8_5, u8_5}, {s8_6, u8_6}, {s8_7, u8_7}, {s8_8, u8_8}};

static void run(size_t mr, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,
                const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {
  tiles[mr - 1][a_dtype == Q8_UINT8](nr, k, a, a_stride, packed, c, c_stride, rq);
}

const q8_gemm_ukernel q8_gemm_x8s8_8x8c4__neondot = {
    .name = "q8_gemm_x8s8_8x8c4__neondot",
    .mr = Q8_DOT_MR,
    .nr = Q8_DOT_NR,
    .kr = 4,
    .int8_a_offset = 0,
    .uint8_a_offset = -128,
    .pack = q8_gemm_pack_nrkr,
    .run = run,
    .run_k_ranges = run_k_ranges,
};
