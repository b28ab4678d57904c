/* AVX2 GEMM micro-kernel q8_gemm_x8s8_5x16c4__avx2 (no VNNI).
 *
 * Exact for every input: activations and weights are widened to int16 (sign-
 * or zero-extension) and multiplied with vpmaddwd, whose pair sums cannot
 * overflow here (|a*b + c*d| <= 2 * 255 * 128 < 2^31); accumulation is wrapping
 * int32 as the contract requires. vpmaddubsw, which saturates int16 pair sums,
 * is not used. A is read as is (int8_a_offset = 0).
 *
 * Layout: the common q8_gemm_pack_nrkr layout with NR = 16, KR = 4: per group
 * of 4 k, 64 bytes = 16 columns x (w0 w1 w2 w3). Widening uses shifts only
 * (on Zen 4 they do not compete with vpmaddwd for execution pipes; vpmovsx
 * does, and a 6x16c2 vpmovsx variant measured ~5% slower): seen as int16
 * lanes, 32 weight bytes at w give srai(x, 8) = the pairs (w1, w3) of 8
 * columns, and the 32 bytes at w - 1 give srai(x, 8) = their (w0, w2): one
 * more load instead of a shift per vector (the byte before the first group is
 * the block's col_term), measured 2-3% faster at 1024^3 than slli + srai.
 * The activations are split the same way into (a0, a2) and (a1, a3) int16
 * pairs, each broadcast with vpbroadcastd, so per group of 4 k and row:
 *   acc[0..7]  += madd(a02, w02[0..7])  + madd(a13, w13[0..7])
 *   acc[8..15] += madd(a02, w02[8..15]) + madd(a13, w13[8..15]).
 * 10 accumulators + 4 weight registers + 1 activation + 1 product = 16 ymm.
 *
 * The blocked driver widens each row tile of A once into the kernel's A panel
 * (pack_a, blocks of 32 k) and runs every column tile on it (run_panel):
 * 1024^3 took ~6% less time than with the widening done per tile. run, for
 * callers with one tile (the indirect conv), widens as it goes through a
 * 2-block buffer: while it computes block j it widens block j + 1, so the
 * widening (stores included) overlaps the multiplies instead of running as a
 * separate pass. The last partial block is loaded masked: A is never
 * read past k bytes per row.
 *
 * Compiled with target attributes only: the file builds with plain
 * `cc -std=c17 -O2` and the rest of the library keeps the x86-64 baseline. */
#include <string.h>

#include "kernels/x86/load_avx2.h"
#include "kernels/x86/requant_avx2.h"
#include "q8/kernels.h"

#define Q8_AVX2_MR 5
#define Q8_AVX2_NR 16
#define Q8_AVX2_KR 4
#define Q8_AVX2_BLOCK 32 /* k per activation block: 8 groups of 4 */

#define Q8_AVX2_KERNEL_INLINE static inline __attribute__((always_inline)) Q8_AVX2_TARGET

/* An empty asm that "modifies" v: keeps GCC from reassociating the two
 * products of a group into a temporary (which costs registers and spills). */
#define Q8_AVX2_PIN(v) __asm__("" : "+x"(v))

/* A widened block (32 k) of MR rows, as the streaming buffer and the A panel
 * hold it: per row 16 int32, [0, 8) the (a0, a2) int16 pairs of groups 0..7,
 * [8, 16) their (a1, a3) pairs. */
#define Q8_AVX2_ROW_WORDS 16
#define Q8_AVX2_BLOCK_WORDS (Q8_AVX2_MR * Q8_AVX2_ROW_WORDS)

/* Splits 32 activations into the row's 8 (a0, a2) and 8 (a1, a3) int16 pairs. */
Q8_AVX2_KERNEL_INLINE void split_block(__m256i x, const int U8, int32_t *row) {
  __m256i e, o;
  if (U8) {
    e = _mm256_and_si256(x, _mm256_set1_epi16(0xFF));
    o = _mm256_srli_epi16(x, 8);
  } else {
    e = _mm256_srai_epi16(_mm256_slli_epi16(x, 8), 8);
    o = _mm256_srai_epi16(x, 8);
  }
  _mm256_store_si256((__m256i *)row, e);
  _mm256_store_si256((__m256i *)(row + 8), o);
}

/* The last n (1..31) activations of a row, zero-padded to a block. */
Q8_AVX2_KERNEL_INLINE void split_partial(const unsigned char *a, size_t n, const int U8,
                                         int32_t *row) {
  split_block(q8_avx2_load_first(a, n), U8, row);
}

/* Widens block `blk` (full) of row r into buffer `dst`. */
#define Q8_AVX2_FILL(r, dst, blk)                                                        \
  if (ROWS > r) {                                                                        \
    split_block(_mm256_loadu_si256((const __m256i *)(a##r + (blk) * Q8_AVX2_BLOCK)), U8, \
                (dst) + (r) * Q8_AVX2_ROW_WORDS);                                        \
  }

/* One group of row r into accumulator set `set` (acc<r><a|b><set>). */
#define Q8_AVX2_ROW_SET(r, blk, q, set)                                                \
  {                                                                                    \
    __m256i va = _mm256_set1_epi32((blk)[(r) * Q8_AVX2_ROW_WORDS + (q)]);              \
    acc##r##a##set = _mm256_add_epi32(acc##r##a##set, _mm256_madd_epi16(va, w0e));     \
    Q8_AVX2_PIN(acc##r##a##set);                                                       \
    acc##r##b##set = _mm256_add_epi32(acc##r##b##set, _mm256_madd_epi16(va, w1e));     \
    Q8_AVX2_PIN(acc##r##b##set);                                                       \
    va = _mm256_set1_epi32((blk)[(r) * Q8_AVX2_ROW_WORDS + 8 + (q)]);                  \
    acc##r##a##set = _mm256_add_epi32(acc##r##a##set, _mm256_madd_epi16(va, w0o));     \
    Q8_AVX2_PIN(acc##r##a##set);                                                       \
    acc##r##b##set = _mm256_add_epi32(acc##r##b##set, _mm256_madd_epi16(va, w1o));     \
    Q8_AVX2_PIN(acc##r##b##set);                                                       \
  }

/* The panel tile's sets per row count: 1 row 4, 2 rows 2 (8 accumulators,
 * with 4 weights, the activation and a product 14 of the 16 ymm). Zen 5,
 * alternating processes, 12 pairs, median time ratio: 1x768x768 1.14x,
 * 1x3072x768 1.13x, 2x768x768 1.02x faster, 5x768x768 level. */
#define Q8_AVX2_SETS(rows) ((rows) == 1 ? 4 : (rows) == 2 ? 2 : 1)

/* Few rows have few dependency chains (2 per row, each 2 vpaddd per group):
 * K groups then alternate between SETS accumulator sets (set = q % SETS, SETS
 * a compile-time constant in each tile function and q one wherever SETS > 1),
 * summed before the store. */
#define Q8_AVX2_ROW(r, blk, q)                                                         \
  if (ROWS > r) {                                                                      \
    switch ((q) % SETS) {                                                              \
    case 0: Q8_AVX2_ROW_SET(r, blk, q, 0) break;                                       \
    case 1: Q8_AVX2_ROW_SET(r, blk, q, 1) break;                                       \
    case 2: Q8_AVX2_ROW_SET(r, blk, q, 2) break;                                       \
    default: Q8_AVX2_ROW_SET(r, blk, q, 3) break;                                      \
    }                                                                                  \
  }

/* One group of 4 k: group q of the widened block blk, weights at w. */
#define Q8_AVX2_GROUP(blk, q)                                                            \
  {                                                                                      \
    const __m256i w0o = _mm256_srai_epi16(_mm256_loadu_si256((const __m256i *)w), 8);   \
    const __m256i w0e = _mm256_srai_epi16(_mm256_loadu_si256((const __m256i *)(w - 1)), 8); \
    const __m256i w1o = _mm256_srai_epi16(_mm256_loadu_si256((const __m256i *)(w + 32)), 8); \
    const __m256i w1e = _mm256_srai_epi16(_mm256_loadu_si256((const __m256i *)(w + 31)), 8); \
    w += Q8_AVX2_NR * Q8_AVX2_KR;                                                        \
    Q8_AVX2_ROW(0, blk, q)                                                               \
    Q8_AVX2_ROW(1, blk, q)                                                               \
    Q8_AVX2_ROW(2, blk, q)                                                               \
    Q8_AVX2_ROW(3, blk, q)                                                               \
    Q8_AVX2_ROW(4, blk, q)                                                               \
  }

/* All 8 groups of a full block. */
#define Q8_AVX2_BLOCK_GROUPS(blk)                                                        \
  Q8_AVX2_GROUP(blk, 0)                                                                  \
  Q8_AVX2_GROUP(blk, 1)                                                                  \
  Q8_AVX2_GROUP(blk, 2)                                                                  \
  Q8_AVX2_GROUP(blk, 3)                                                                  \
  Q8_AVX2_GROUP(blk, 4)                                                                  \
  Q8_AVX2_GROUP(blk, 5)                                                                  \
  Q8_AVX2_GROUP(blk, 6)                                                                  \
  Q8_AVX2_GROUP(blk, 7)

/* Accumulators of the tile: set 0 started from the col_term of the packed
 * block, the others from zero; INIT_ACC sets w to the block's first weights. */
#define Q8_AVX2_SET_ACC(r)                                                               \
  __m256i acc##r##a0 = ct0, acc##r##b0 = ct1;                                            \
  __m256i acc##r##a1 = _mm256_setzero_si256(), acc##r##b1 = _mm256_setzero_si256();      \
  __m256i acc##r##a2 = _mm256_setzero_si256(), acc##r##b2 = _mm256_setzero_si256();      \
  __m256i acc##r##a3 = _mm256_setzero_si256(), acc##r##b3 = _mm256_setzero_si256();
#define Q8_AVX2_INIT_ACC                                                                 \
  const int8_t *w = (const int8_t *)packed + Q8_AVX2_NR * sizeof(int32_t);              \
  const __m256i ct0 = _mm256_loadu_si256((const __m256i *)packed);                      \
  const __m256i ct1 = _mm256_loadu_si256((const __m256i *)packed + 1);                  \
  Q8_AVX2_SET_ACC(0) Q8_AVX2_SET_ACC(1) Q8_AVX2_SET_ACC(2) Q8_AVX2_SET_ACC(3)            \
  Q8_AVX2_SET_ACC(4)

/* Row r's sets summed into acc<r><a|b> (the sets past SETS are zero and fold
 * away). */
#define Q8_AVX2_SUM_SETS(r)                                                              \
  const __m256i acc##r##a = _mm256_add_epi32(_mm256_add_epi32(acc##r##a0, acc##r##a1),   \
                                             _mm256_add_epi32(acc##r##a2, acc##r##a3));  \
  const __m256i acc##r##b = _mm256_add_epi32(_mm256_add_epi32(acc##r##b0, acc##r##b1),   \
                                             _mm256_add_epi32(acc##r##b2, acc##r##b3));

/* Requantizes or stores row r of the tile with the parameters at rp. */
#define Q8_AVX2_STORE(r)                                                                 \
  if (ROWS > r) {                                                                        \
    q8_rq_avx2_store_row16((unsigned char *)c + (size_t)(r) * c_stride, acc##r##a,      \
                           acc##r##b, nr, rq, &rp[0], &rp[1]);                          \
  }

/* Writes the tile (int32 or requantized), with the requantization prepared
 * here or, where PREPARED is not NULL, by the caller (run_rows). */
#define Q8_AVX2_FINISH(PREPARED)                                                         \
  Q8_AVX2_SUM_SETS(0) Q8_AVX2_SUM_SETS(1) Q8_AVX2_SUM_SETS(2) Q8_AVX2_SUM_SETS(3)        \
  Q8_AVX2_SUM_SETS(4)                                                                    \
  q8_rq8_avx2 own[2];                                                                    \
  const q8_rq8_avx2 *rp = (PREPARED);                                                    \
  if (rp == NULL) {                                                                      \
    q8_rq8_avx2_prepare_row16(rq, nr, &own[0], &own[1]);                                \
    rp = own;                                                                            \
  }                                                                                      \
  Q8_AVX2_STORE(0)                                                                       \
  Q8_AVX2_STORE(1)                                                                       \
  Q8_AVX2_STORE(2)                                                                       \
  Q8_AVX2_STORE(3)                                                                       \
  Q8_AVX2_STORE(4)

/* The tile straight from A, with compile-time row count (1..5) and
 * activation type: widens A through a 2-block buffer as it goes. */
Q8_AVX2_KERNEL_INLINE void tile_avx2(const int ROWS, const int U8, size_t nr, size_t k,
                                     const void *a, size_t a_stride, const void *packed, void *c,
                                     size_t c_stride, const q8_requant_params *rq,
                                     const q8_rq8_avx2 *prepared) {
  _Alignas(32) int32_t buf[2][Q8_AVX2_BLOCK_WORDS];
  const unsigned char *a0 = (const unsigned char *)a;
  const unsigned char *a1 = ROWS > 1 ? a0 + a_stride : a0;
  const unsigned char *a2 = ROWS > 2 ? a1 + a_stride : a0;
  const unsigned char *a3 = ROWS > 3 ? a2 + a_stride : a0;
  const unsigned char *a4 = ROWS > 4 ? a3 + a_stride : a0;
  const unsigned char *rows[Q8_AVX2_MR] = {a0, a1, a2, a3, a4};
  const int SETS = 1; /* q runs at run time in the partial block */
  Q8_AVX2_INIT_ACC

  const size_t full = k / Q8_AVX2_BLOCK, rem = k % Q8_AVX2_BLOCK;
  size_t s = 0; /* buffer of the block being computed */
  if (full > 0) {
    Q8_AVX2_FILL(0, buf[0], 0)
    Q8_AVX2_FILL(1, buf[0], 0)
    Q8_AVX2_FILL(2, buf[0], 0)
    Q8_AVX2_FILL(3, buf[0], 0)
    Q8_AVX2_FILL(4, buf[0], 0)
    /* Blocks 0 .. full - 2, each widening the next one meanwhile. */
    for (size_t j = 0; j + 1 < full; ++j, s ^= 1) {
      const int32_t *cur = buf[s];
      int32_t *next = buf[s ^ 1];
      Q8_AVX2_FILL(0, next, j + 1)
      Q8_AVX2_GROUP(cur, 0)
      Q8_AVX2_FILL(1, next, j + 1)
      Q8_AVX2_GROUP(cur, 1)
      Q8_AVX2_FILL(2, next, j + 1)
      Q8_AVX2_GROUP(cur, 2)
      Q8_AVX2_FILL(3, next, j + 1)
      Q8_AVX2_GROUP(cur, 3)
      Q8_AVX2_FILL(4, next, j + 1)
      Q8_AVX2_GROUP(cur, 4)
      Q8_AVX2_GROUP(cur, 5)
      Q8_AVX2_GROUP(cur, 6)
      Q8_AVX2_GROUP(cur, 7)
    }
  }
  /* The last full block is in buffer s; the partial block goes to the other. */
  int32_t *partial = buf[s ^ 1];
  if (rem > 0) {
    for (int r = 0; r < ROWS; ++r) {
      split_partial(rows[r] + full * Q8_AVX2_BLOCK, rem, U8, partial + r * Q8_AVX2_ROW_WORDS);
    }
  }
  if (full > 0) {
    const int32_t *last = buf[s];
    Q8_AVX2_BLOCK_GROUPS(last)
  }
  if (rem > 0) {
    for (size_t q = 0; q < (rem + 3) / 4; ++q) Q8_AVX2_GROUP(partial, q)
  }
  Q8_AVX2_FINISH(prepared)
}

/* The tile from an A panel that pack_a widened: blocks of Q8_AVX2_BLOCK_WORDS. */
Q8_AVX2_KERNEL_INLINE void tile_avx2_panel(const int ROWS, size_t nr, size_t k,
                                           const int32_t *panel, const void *packed, void *c,
                                           size_t c_stride, const q8_requant_params *rq) {
  const int SETS = Q8_AVX2_SETS(ROWS);
  Q8_AVX2_INIT_ACC
  const size_t full = k / Q8_AVX2_BLOCK, rem = k % Q8_AVX2_BLOCK;
  for (size_t j = 0; j < full; ++j, panel += Q8_AVX2_BLOCK_WORDS) {
    Q8_AVX2_BLOCK_GROUPS(panel)
  }
  /* Unrolled to 8 with a guard, so that each q (and its set) is a constant. */
#pragma GCC unroll 8
  for (size_t q = 0; q < Q8_AVX2_BLOCK / 4; ++q) {
    if (q < (rem + 3) / 4) Q8_AVX2_GROUP(panel, q)
  }
  Q8_AVX2_FINISH(NULL)
}

#define Q8_AVX2_CASE(R)                                                              \
  case R:                                                                            \
    if (u8) {                                                                        \
      tile_avx2(R, 1, nr, k, a, a_stride, packed, c, c_stride, rq, NULL);            \
    } else {                                                                         \
      tile_avx2(R, 0, nr, k, a, a_stride, packed, c, c_stride, rq, NULL);            \
    }                                                                                \
    break;

static Q8_AVX2_TARGET void q8_gemm_x8s8_5x16c4__avx2_run(size_t mr, size_t nr, size_t k,
                                                         const void *a, size_t a_stride,
                                                         q8_dtype a_dtype, const void *packed,
                                                         void *c, size_t c_stride,
                                                         const q8_requant_params *rq) {
  const int u8 = a_dtype == Q8_UINT8;
  switch (mr) {
    Q8_AVX2_CASE(1)
    Q8_AVX2_CASE(2)
    Q8_AVX2_CASE(3)
    Q8_AVX2_CASE(4)
    default:
    Q8_AVX2_CASE(5)
  }
}

/* run_rows: the full 5-row tiles of a chunk in one call, the requantization
 * prepared once (per tile, run prepares two parameter structs and is a call
 * of its own, a large share of a tile at small k), the row tail through run.
 * Each tile widens its A as run does: the drivers keep no A panel for
 * chunks. */
#define Q8_AVX2_ROWS_LOOP(U8)                                                           \
  for (; m >= Q8_AVX2_MR; m -= Q8_AVX2_MR) {                                            \
    /* Reloaded per tile, as in the other kernels' run_rows: GCC is kept   \
     * from holding the constants in registers across the K loop. */                  \
    __asm__ volatile("" : "+m"(rp));                                                    \
    tile_avx2(Q8_AVX2_MR, U8, nr, k, a_tile, a_stride, packed, c_tile, c_stride, rq, rp); \
    a_tile += Q8_AVX2_MR * a_stride;                                                    \
    c_tile += Q8_AVX2_MR * c_stride;                                                    \
  }

static Q8_AVX2_TARGET void q8_gemm_x8s8_5x16c4__avx2_run_rows(size_t m, size_t nr, size_t k,
                                                              const void *a, size_t a_stride,
                                                              q8_dtype a_dtype,
                                                              const void *packed, void *c,
                                                              size_t c_stride,
                                                              const q8_requant_params *rq) {
  q8_rq8_avx2 rp[2];
  q8_rq8_avx2_prepare_row16(rq, nr, &rp[0], &rp[1]);
  const unsigned char *a_tile = a;
  unsigned char *c_tile = c;
  if (a_dtype == Q8_UINT8) {
    Q8_AVX2_ROWS_LOOP(1)
  } else {
    Q8_AVX2_ROWS_LOOP(0)
  }
  if (m > 0) {
    q8_gemm_x8s8_5x16c4__avx2_run(m, nr, k, a_tile, a_stride, a_dtype, packed, c_tile, c_stride,
                                  rq);
  }
}

static size_t q8_gemm_x8s8_5x16c4__avx2_a_panel_bytes(size_t k) {
  return (k + Q8_AVX2_BLOCK - 1) / Q8_AVX2_BLOCK * Q8_AVX2_BLOCK_WORDS * sizeof(int32_t);
}

/* Widens mr rows once per row tile (the driver reuses the panel for every
 * column tile): at 1024^3 the per-tile widening of run cost ~7%. */
static Q8_AVX2_TARGET void q8_gemm_x8s8_5x16c4__avx2_pack_a(size_t mr, size_t k, const void *a,
                                                            size_t a_stride, q8_dtype a_dtype,
                                                            void *panel) {
  const int u8 = a_dtype == Q8_UINT8;
  const size_t rows = mr < Q8_AVX2_MR ? mr : Q8_AVX2_MR;
  const size_t full = k / Q8_AVX2_BLOCK, rem = k % Q8_AVX2_BLOCK;
  int32_t *blk = panel;
  for (size_t j = 0; j < full; ++j, blk += Q8_AVX2_BLOCK_WORDS) {
    for (size_t r = 0; r < rows; ++r) {
      const unsigned char *src = (const unsigned char *)a + r * a_stride + j * Q8_AVX2_BLOCK;
      split_block(_mm256_loadu_si256((const __m256i *)src), u8, blk + r * Q8_AVX2_ROW_WORDS);
    }
  }
  for (size_t r = 0; r < rows && rem > 0; ++r) {
    const unsigned char *src = (const unsigned char *)a + r * a_stride + full * Q8_AVX2_BLOCK;
    split_partial(src, rem, u8, blk + r * Q8_AVX2_ROW_WORDS);
  }
}

/* The tile over K ranges (run_k_ranges) from an A panel that pack_a widened
 * with the full depth: group g is group g % 8 of panel block g / 8. */
Q8_AVX2_KERNEL_INLINE void tile_avx2_ranges(const int ROWS, size_t nr, const q8_k_range *ranges,
                                            size_t nranges, const int32_t *panel,
                                            const void *packed, const int32_t *col_adjust,
                                            void *c, size_t c_stride,
                                            const q8_requant_params *rq) {
  const int SETS = 1; /* groups by run-time index */
  Q8_AVX2_INIT_ACC
  if (col_adjust) {
    /* Masked: col_adjust has only nr entries. */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i n = _mm256_set1_epi32((int)nr);
    const __m256i adj0 = _mm256_maskload_epi32(col_adjust, _mm256_cmpgt_epi32(n, lane));
    const __m256i adj1 = _mm256_maskload_epi32(
        col_adjust + 8, _mm256_cmpgt_epi32(n, _mm256_add_epi32(lane, _mm256_set1_epi32(8))));
#define Q8_AVX2_ADJUST(r)                      \
  if (ROWS > r) {                              \
    acc##r##a0 = _mm256_add_epi32(acc##r##a0, adj0); \
    acc##r##b0 = _mm256_add_epi32(acc##r##b0, adj1); \
  }
    Q8_AVX2_ADJUST(0)
    Q8_AVX2_ADJUST(1)
    Q8_AVX2_ADJUST(2)
    Q8_AVX2_ADJUST(3)
    Q8_AVX2_ADJUST(4)
#undef Q8_AVX2_ADJUST
  }
  const int8_t *weights = w;
  for (size_t i = 0; i < nranges; ++i) {
    size_t g = ranges[i].begin / Q8_AVX2_KR;
    const size_t end = g + ranges[i].len / Q8_AVX2_KR;
    w = weights + g * (Q8_AVX2_NR * Q8_AVX2_KR);
    /* Groups one by one up to a block boundary, then whole blocks as
     * tile_avx2_panel runs them, then the rest one by one. */
    for (; g < end && g % 8 != 0; ++g) {
      const int32_t *blk = panel + g / 8 * Q8_AVX2_BLOCK_WORDS;
      Q8_AVX2_GROUP(blk, g % 8)
    }
    for (; g + 8 <= end; g += 8) {
      const int32_t *blk = panel + g / 8 * Q8_AVX2_BLOCK_WORDS;
      Q8_AVX2_BLOCK_GROUPS(blk)
    }
    for (; g < end; ++g) {
      const int32_t *blk = panel + g / 8 * Q8_AVX2_BLOCK_WORDS;
      Q8_AVX2_GROUP(blk, g % 8)
    }
  }
  Q8_AVX2_FINISH(NULL)
}

#define Q8_AVX2_RANGES_CASE(R)                                                       \
  case R:                                                                            \
    tile_avx2_ranges(R, nr, ranges, nranges, panel, packed, col_adjust, c, c_stride, rq); \
    break;

static Q8_AVX2_TARGET void q8_gemm_x8s8_5x16c4__avx2_run_k_ranges(
    size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges, const void *panel,
    size_t a_stride, q8_dtype a_dtype, const void *packed, const int32_t *col_adjust, void *c,
    size_t c_stride, const q8_requant_params *rq) {
  (void)a_stride; /* the panel's layout is fixed, its type set by pack_a */
  (void)a_dtype;
  switch (mr) {
    Q8_AVX2_RANGES_CASE(1)
    Q8_AVX2_RANGES_CASE(2)
    Q8_AVX2_RANGES_CASE(3)
    Q8_AVX2_RANGES_CASE(4)
    default:
    Q8_AVX2_RANGES_CASE(5)
  }
}

#define Q8_AVX2_PANEL_CASE(R)                                                        \
  case R:                                                                            \
    tile_avx2_panel(R, nr, k, panel, packed, c, c_stride, rq);                       \
    break;

static Q8_AVX2_TARGET void q8_gemm_x8s8_5x16c4__avx2_run_panel(size_t mr, size_t nr, size_t k,
                                                               const void *panel,
                                                               const void *packed, void *c,
                                                               size_t c_stride,
                                                               const q8_requant_params *rq) {
  switch (mr) {
    Q8_AVX2_PANEL_CASE(1)
    Q8_AVX2_PANEL_CASE(2)
    Q8_AVX2_PANEL_CASE(3)
    Q8_AVX2_PANEL_CASE(4)
    default:
    Q8_AVX2_PANEL_CASE(5)
  }
}

const q8_gemm_ukernel q8_gemm_x8s8_5x16c4__avx2 = {
    .name = "q8_gemm_x8s8_5x16c4__avx2",
    .mr = Q8_AVX2_MR,
    .nr = Q8_AVX2_NR,
    .kr = Q8_AVX2_KR,
    .int8_a_offset = 0,
    .pack = q8_gemm_pack_nrkr,
    .run = q8_gemm_x8s8_5x16c4__avx2_run,
    .run_rows = q8_gemm_x8s8_5x16c4__avx2_run_rows,
    .a_panel_bytes = q8_gemm_x8s8_5x16c4__avx2_a_panel_bytes,
    .pack_a = q8_gemm_x8s8_5x16c4__avx2_pack_a,
    .run_panel = q8_gemm_x8s8_5x16c4__avx2_run_panel,
    .run_k_ranges = q8_gemm_x8s8_5x16c4__avx2_run_k_ranges,
};
