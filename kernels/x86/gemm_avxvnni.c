/* AVX-VNNI GEMM micro-kernel q8_gemm_x8s8_6x16c4__avxvnni: VEX-encoded 256-bit
 * vpdpbusd (u8 x s8 -> s32, 4 products per lane, wrapping, no saturation).
 *
 * Activations are the unsigned operand: uint8 as is, int8 as A + 128 (a flip of
 * the sign bit), so int8_a_offset = 128 and the driver folds 128 * sum(W) into
 * col_term. Layout: the common q8_gemm_pack_nrkr layout with NR = 16, KR = 4:
 * per group of 4 k, 64 bytes = 16 columns x 4 weights, i.e. exactly two ymm
 * operands of vpdpbusd; each row's 4 activations are one vpbroadcastd.
 * 12 accumulators + 2 weight registers + 1 activation register = 15 ymm.
 *
 * Activations go through a 2-slot buffer of 32 k (8 groups) per row, filled one
 * block ahead while the previous block is computed (the sign flip costs one
 * vpxor per 32 bytes instead of one per broadcast, and the last partial block
 * is loaded masked: A is never read past k bytes per row).
 *
 * run_rows (uint8 A, which the drivers' flip makes of int8) runs a chunk of
 * full 6-row tiles in one call and broadcasts A straight from its rows, with
 * the requantization prepared once. Zen 5, Q8_ISA=avxvnni, alternating
 * processes, 6 pairs, median time ratio, u8 in, s8 out: 1x1 conv
 * 112x112x16:96 1.87x, 56x56x24:144 1.87x, 28x28x32:192 1.45x, 56x56x64:256
 * 1.29x, 14x14x64:384 1.22x, 14x14x256:1024 1.09x, 28x28x512:128 1.06x
 * faster; 3x3 layers, 1024^3, 64x768x768 and the GEMVs level.
 *
 * One body, two instantiations:
 *   - q8_gemm_x8s8_6x16c4__avxvnni: target avxvnni, _mm256_dpbusd_avx_epi32
 *     (the registered kernel);
 *   - q8_gemm_x8s8_6x16c4__avxvnni_emu512: the same body with the EVEX form
 *     _mm256_dpbusd_epi32 (AVX512-VNNI + AVX512-VL, same semantics), a test-only
 *     descriptor NOT listed in gemm.def. It exists so that machines without
 *     AVX-VNNI but with AVX512-VNNI (AMD Zen 4, Intel Ice Lake+) can execute and
 *     check the kernel's logic; its name and ISA requirement are its own.
 *
 * Compiled with target attributes only (plain `cc -std=c17 -O2` builds it). */
#include <string.h>

#include "kernels/x86/load_avx2.h"
#include "kernels/x86/requant_avx2.h"
#include "q8/kernels.h"

#define Q8_AVXVNNI_MR 6
#define Q8_AVXVNNI_NR 16
#define Q8_AVXVNNI_KR 4
#define Q8_AVXVNNI_BLOCK 32 /* k per activation block: 8 groups of 4 */

#define Q8_AVXVNNI_HELPER static inline __attribute__((always_inline)) Q8_AVX2_TARGET

/* 32 activations -> unsigned bytes for vpdpbusd. */
Q8_AVXVNNI_HELPER void avxvnni_copy_block(__m256i x, const int U8, int32_t *dst) {
  if (!U8) x = _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80));
  _mm256_store_si256((__m256i *)dst, x);
}

/* The last n (1..31) activations of a row, zero-padded to a block (the padding
 * meets zero weights). */
Q8_AVXVNNI_HELPER void avxvnni_copy_partial(const unsigned char *a, size_t n, const int U8,
                                      int32_t *dst) {
  avxvnni_copy_block(q8_avx2_load_first(a, n), U8, dst);
}

#define Q8_AVXVNNI_FILL(r, dst, blk)                                                           \
  if (ROWS > r) {                                                                           \
    avxvnni_copy_block(_mm256_loadu_si256((const __m256i *)(a##r + (blk) * Q8_AVXVNNI_BLOCK)), U8, \
                    ab[dst][r]);                                                            \
  }

/* Few rows have few dependency chains (2 per row): K groups then alternate
 * between SETS independent accumulator sets (set = group % SETS), summed
 * before the store. 1 row: 4 sets, 2-3 rows: 2, so that a tile has 8-12
 * chains, what vpdpbusd's latency x throughput asks (5 x 2 on Golden Cove,
 * 4 x 2 on Zen 5). Zen 5, alternating processes, median time ratio:
 * 1x768x768 1.52x, 2x768x768 1.16x, 3x1024x1024 1.21x faster. */
#define Q8_AVXVNNI_SETS(rows) ((rows) == 1 ? 4 : (rows) <= 3 ? 2 : 1)

#define Q8_AVXVNNI_ROW_SET(DPBUSD, r, set, va)                   \
  acc##r##a##set = DPBUSD(acc##r##a##set, va, w0);              \
  acc##r##b##set = DPBUSD(acc##r##b##set, va, w1);

/* q is a compile-time constant wherever this expands (unrolled loops), so
 * the set choice folds away. */
#define Q8_AVXVNNI_ROW(DPBUSD, r, s, q)                           \
  if (ROWS > r) {                                              \
    const __m256i va = _mm256_set1_epi32(ab[s][r][q]);         \
    switch ((q) % Q8_AVXVNNI_SETS(ROWS)) {                      \
    case 0: Q8_AVXVNNI_ROW_SET(DPBUSD, r, 0, va) break;         \
    case 1: Q8_AVXVNNI_ROW_SET(DPBUSD, r, 1, va) break;         \
    case 2: Q8_AVXVNNI_ROW_SET(DPBUSD, r, 2, va) break;         \
    default: Q8_AVXVNNI_ROW_SET(DPBUSD, r, 3, va) break;        \
    }                                                          \
  }

#define Q8_AVXVNNI_GROUP(DPBUSD, s, q)                                          \
  {                                                                          \
    const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);              \
    const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));       \
    w += Q8_AVXVNNI_NR * Q8_AVXVNNI_KR;                                            \
    Q8_AVXVNNI_ROW(DPBUSD, 0, s, q)                                             \
    Q8_AVXVNNI_ROW(DPBUSD, 1, s, q)                                             \
    Q8_AVXVNNI_ROW(DPBUSD, 2, s, q)                                             \
    Q8_AVXVNNI_ROW(DPBUSD, 3, s, q)                                             \
    Q8_AVXVNNI_ROW(DPBUSD, 4, s, q)                                             \
    Q8_AVXVNNI_ROW(DPBUSD, 5, s, q)                                             \
  }

#define Q8_AVXVNNI_STORE_AT(c_base, r)                                             \
  if (ROWS > r) {                                                                  \
    q8_rq_avx2_store_row16((unsigned char *)(c_base) + (size_t)(r) * c_stride,      \
                           acc##r##a, acc##r##b, nr, rq, &rp0, &rp1);               \
  }
#define Q8_AVXVNNI_STORE(r) Q8_AVXVNNI_STORE_AT(c, r)

/* Rows a0..a5 of the tile (rows past ROWS alias row 0, never read). */
#define Q8_AVXVNNI_ROW_POINTERS                                                          \
  const unsigned char *a0 = (const unsigned char *)a;                                    \
  const unsigned char *a1 = ROWS > 1 ? a0 + a_stride : a0;                               \
  const unsigned char *a2 = ROWS > 2 ? a1 + a_stride : a0;                               \
  const unsigned char *a3 = ROWS > 3 ? a2 + a_stride : a0;                               \
  const unsigned char *a4 = ROWS > 4 ? a3 + a_stride : a0;                               \
  const unsigned char *a5 = ROWS > 5 ? a4 + a_stride : a0;

/* Accumulators started from the col_term of the packed block. */
#define Q8_AVXVNNI_INIT_ACC                                                              \
  const __m256i ct0 = _mm256_loadu_si256((const __m256i *)packed);                       \
  const __m256i ct1 = _mm256_loadu_si256((const __m256i *)packed + 1);                   \
  __m256i acc0a = ct0, acc0b = ct1, acc1a = ct0, acc1b = ct1, acc2a = ct0, acc2b = ct1;  \
  __m256i acc3a = ct0, acc3b = ct1, acc4a = ct0, acc4b = ct1, acc5a = ct0, acc5b = ct1;

/* The K-split sets of the first rows (set 0 is acc<r><a|b> itself). */
#define Q8_AVXVNNI_SET_ACC(r)                                                            \
  __m256i acc##r##a0 = acc##r##a, acc##r##b0 = acc##r##b;                                \
  __m256i acc##r##a1 = _mm256_setzero_si256(), acc##r##b1 = _mm256_setzero_si256();      \
  __m256i acc##r##a2 = _mm256_setzero_si256(), acc##r##b2 = _mm256_setzero_si256();      \
  __m256i acc##r##a3 = _mm256_setzero_si256(), acc##r##b3 = _mm256_setzero_si256();
#define Q8_AVXVNNI_SUM_SETS(r)                                                           \
  acc##r##a = _mm256_add_epi32(_mm256_add_epi32(acc##r##a0, acc##r##a1),                 \
                               _mm256_add_epi32(acc##r##a2, acc##r##a3));                \
  acc##r##b = _mm256_add_epi32(_mm256_add_epi32(acc##r##b0, acc##r##b1),                 \
                               _mm256_add_epi32(acc##r##b2, acc##r##b3));

/* The body of a tile with compile-time ROWS (1..6) and U8 (activation type),
 * with DPBUSD(acc, unsigned a, signed w) the dot product instruction. */
#define Q8_AVXVNNI_TILE_BODY(DPBUSD)                                                        \
  _Alignas(32) int32_t ab[2][Q8_AVXVNNI_MR][Q8_AVXVNNI_BLOCK / 4]; /* [slot][row][group] */   \
  Q8_AVXVNNI_ROW_POINTERS                                                                \
  const unsigned char *rows[Q8_AVXVNNI_MR] = {a0, a1, a2, a3, a4, a5};                      \
  const int8_t *w = (const int8_t *)packed + Q8_AVXVNNI_NR * sizeof(int32_t);               \
  Q8_AVXVNNI_INIT_ACC                                                                    \
  Q8_AVXVNNI_SET_ACC(0) Q8_AVXVNNI_SET_ACC(1) Q8_AVXVNNI_SET_ACC(2) Q8_AVXVNNI_SET_ACC(3)  \
  Q8_AVXVNNI_SET_ACC(4) Q8_AVXVNNI_SET_ACC(5)                                            \
  const size_t full = k / Q8_AVXVNNI_BLOCK, rem = k % Q8_AVXVNNI_BLOCK;                        \
  size_t s = 0; /* slot of the block being computed */                                   \
  if (full > 0) {                                                                        \
    Q8_AVXVNNI_FILL(0, 0, 0)                                                                \
    Q8_AVXVNNI_FILL(1, 0, 0)                                                                \
    Q8_AVXVNNI_FILL(2, 0, 0)                                                                \
    Q8_AVXVNNI_FILL(3, 0, 0)                                                                \
    Q8_AVXVNNI_FILL(4, 0, 0)                                                                \
    Q8_AVXVNNI_FILL(5, 0, 0)                                                                \
    for (size_t j = 0; j + 1 < full; ++j, s ^= 1) {                                      \
      Q8_AVXVNNI_FILL(0, s ^ 1, j + 1)                                                      \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 0)                                                        \
      Q8_AVXVNNI_FILL(1, s ^ 1, j + 1)                                                      \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 1)                                                        \
      Q8_AVXVNNI_FILL(2, s ^ 1, j + 1)                                                      \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 2)                                                        \
      Q8_AVXVNNI_FILL(3, s ^ 1, j + 1)                                                      \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 3)                                                        \
      Q8_AVXVNNI_FILL(4, s ^ 1, j + 1)                                                      \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 4)                                                        \
      Q8_AVXVNNI_FILL(5, s ^ 1, j + 1)                                                      \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 5)                                                        \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 6)                                                        \
      Q8_AVXVNNI_GROUP(DPBUSD, s, 7)                                                        \
    }                                                                                    \
  }                                                                                      \
  /* The last full block is in slot s; the partial block goes to the other. */          \
  const size_t ps = s ^ 1;                                                               \
  if (rem > 0) {                                                                         \
    for (int r = 0; r < ROWS; ++r) {                                                     \
      avxvnni_copy_partial(rows[r] + full * Q8_AVXVNNI_BLOCK, rem, U8, ab[ps][r]);             \
    }                                                                                    \
  }                                                                                      \
  if (full > 0) {                                                                        \
    _Pragma("GCC unroll 8") for (size_t q = 0; q < Q8_AVXVNNI_BLOCK / 4; ++q)             \
        Q8_AVXVNNI_GROUP(DPBUSD, s, q)                                                   \
  }                                                                                      \
  /* Unrolled to 8 with a guard, so that each q (and its set) is a constant. */        \
  _Pragma("GCC unroll 8") for (size_t q = 0; q < Q8_AVXVNNI_BLOCK / 4; ++q) {            \
    if (q < (rem + 3) / 4) Q8_AVXVNNI_GROUP(DPBUSD, ps, q)                              \
  }                                                                                      \
  Q8_AVXVNNI_SUM_SETS(0) Q8_AVXVNNI_SUM_SETS(1) Q8_AVXVNNI_SUM_SETS(2)                   \
  Q8_AVXVNNI_SUM_SETS(3) Q8_AVXVNNI_SUM_SETS(4) Q8_AVXVNNI_SUM_SETS(5)                   \
  q8_rq8_avx2 rp0, rp1;                                                                  \
  q8_rq8_avx2_prepare_row16(rq, nr, &rp0, &rp1);                                        \
  Q8_AVXVNNI_STORE(0)                                                                       \
  Q8_AVXVNNI_STORE(1)                                                                       \
  Q8_AVXVNNI_STORE(2)                                                                       \
  Q8_AVXVNNI_STORE(3)                                                                       \
  Q8_AVXVNNI_STORE(4)                                                                       \
  Q8_AVXVNNI_STORE(5)

/* One K group of row r for run_k_ranges: 4 bytes broadcast straight from A
 * (uint8: the driver flipped int8 already). */
#define Q8_AVXVNNI_RANGE_ROW(DPBUSD, r)                                         \
  if (ROWS > r) {                                                            \
    int32_t x;                                                               \
    memcpy(&x, a##r + a_offset + 4 * (g - g0), sizeof x);                    \
    const __m256i va = _mm256_set1_epi32(x);                                 \
    acc##r##a = DPBUSD(acc##r##a, va, w0);                                   \
    acc##r##b = DPBUSD(acc##r##b, va, w1);                                   \
  }

#define Q8_AVXVNNI_ADJUST_ROW(r)                                                \
  if (ROWS > r) {                                                            \
    acc##r##a = _mm256_add_epi32(acc##r##a, adj0);                           \
    acc##r##b = _mm256_add_epi32(acc##r##b, adj1);                           \
  }

/* The body of run_k_ranges with compile-time ROWS (1..6). */
#define Q8_AVXVNNI_RANGES_BODY(DPBUSD)                                                      \
  Q8_AVXVNNI_ROW_POINTERS                                                                \
  const int8_t *weights = (const int8_t *)packed + Q8_AVXVNNI_NR * sizeof(int32_t);      \
  Q8_AVXVNNI_INIT_ACC                                                                    \
  if (col_adjust) { /* masked: col_adjust has only nr entries */                        \
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                      \
    const __m256i n = _mm256_set1_epi32((int)nr);                                        \
    const __m256i adj0 = _mm256_maskload_epi32(col_adjust, _mm256_cmpgt_epi32(n, lane)); \
    const __m256i adj1 = _mm256_maskload_epi32(                                         \
        col_adjust + 8, _mm256_cmpgt_epi32(n, _mm256_add_epi32(lane, _mm256_set1_epi32(8)))); \
    Q8_AVXVNNI_ADJUST_ROW(0)                                                             \
    Q8_AVXVNNI_ADJUST_ROW(1)                                                             \
    Q8_AVXVNNI_ADJUST_ROW(2)                                                             \
    Q8_AVXVNNI_ADJUST_ROW(3)                                                             \
    Q8_AVXVNNI_ADJUST_ROW(4)                                                             \
    Q8_AVXVNNI_ADJUST_ROW(5)                                                             \
  }                                                                                      \
  for (size_t i = 0; i < nranges; ++i) {                                                 \
    const size_t g0 = ranges[i].begin / Q8_AVXVNNI_KR, a_offset = ranges[i].a_offset;   \
    const size_t end = g0 + ranges[i].len / Q8_AVXVNNI_KR;                               \
    for (size_t g = g0; g < end; ++g) {                                                  \
      const int8_t *w = weights + g * (Q8_AVXVNNI_NR * Q8_AVXVNNI_KR);                   \
      const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);                         \
      const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));                  \
      Q8_AVXVNNI_RANGE_ROW(DPBUSD, 0)                                                    \
      Q8_AVXVNNI_RANGE_ROW(DPBUSD, 1)                                                    \
      Q8_AVXVNNI_RANGE_ROW(DPBUSD, 2)                                                    \
      Q8_AVXVNNI_RANGE_ROW(DPBUSD, 3)                                                    \
      Q8_AVXVNNI_RANGE_ROW(DPBUSD, 4)                                                    \
      Q8_AVXVNNI_RANGE_ROW(DPBUSD, 5)                                                    \
    }                                                                                    \
  }                                                                                      \
  q8_rq8_avx2 rp0, rp1;                                                                  \
  q8_rq8_avx2_prepare_row16(rq, nr, &rp0, &rp1);                                        \
  Q8_AVXVNNI_STORE(0)                                                                    \
  Q8_AVXVNNI_STORE(1)                                                                    \
  Q8_AVXVNNI_STORE(2)                                                                    \
  Q8_AVXVNNI_STORE(3)                                                                    \
  Q8_AVXVNNI_STORE(4)                                                                    \
  Q8_AVXVNNI_STORE(5)

/* run_rows: one K group of full-tile row r, 4 bytes broadcast straight from
 * uint8 A (no copy: there is no sign to flip). */
#define Q8_AVXVNNI_ROWS_GROUP(DPBUSD, r)                                      \
  {                                                                        \
    int32_t x;                                                             \
    memcpy(&x, a##r + Q8_AVXVNNI_KR * g, sizeof x);                        \
    const __m256i va = _mm256_set1_epi32(x);                               \
    acc##r##a = DPBUSD(acc##r##a, va, w0);                                 \
    acc##r##b = DPBUSD(acc##r##b, va, w1);                                 \
  }

/* The last k % 4 bytes of row r, zero-padded (never reads past k). */
#define Q8_AVXVNNI_ROWS_REST(DPBUSD, r)                                       \
  {                                                                        \
    uint32_t x = 0;                                                        \
    for (size_t i = 0; i < rest; ++i) x |= (uint32_t)a##r[Q8_AVXVNNI_KR * groups + i] << (8 * i); \
    const __m256i va = _mm256_set1_epi32((int32_t)x);                      \
    acc##r##a = DPBUSD(acc##r##a, va, w0);                                 \
    acc##r##b = DPBUSD(acc##r##b, va, w1);                                 \
  }

#define Q8_AVXVNNI_ROWS_EACH(M, DPBUSD) \
  M(DPBUSD, 0) M(DPBUSD, 1) M(DPBUSD, 2) M(DPBUSD, 3) M(DPBUSD, 4) M(DPBUSD, 5)

/* The body of run_rows for uint8 A: the full 6-row tiles in one loop, the
 * requantization prepared once for all of them, the row tail through run.
 * Per tile, run copies each row's A into a block buffer (for int8, the sign
 * flip), prepares two 600-byte parameter structs and is a call of its own:
 * at k = 16 that cost about as much as the tile's 48 vpdpbusd. */
#define Q8_AVXVNNI_ROWS_BODY(NAME, DPBUSD)                                                  \
  q8_rq8_avx2 rp0, rp1;                                                                  \
  q8_rq8_avx2_prepare_row16(rq, nr, &rp0, &rp1);                                        \
  const size_t groups = k / Q8_AVXVNNI_KR, rest = k % Q8_AVXVNNI_KR;                     \
  const int8_t *weights = (const int8_t *)packed + Q8_AVXVNNI_NR * sizeof(int32_t);      \
  const unsigned char *a_tile = (const unsigned char *)a;                                \
  unsigned char *c_tile = (unsigned char *)c;                                            \
  for (; m >= Q8_AVXVNNI_MR; m -= Q8_AVXVNNI_MR) {                                       \
    const int ROWS = Q8_AVXVNNI_MR;                                                      \
    const unsigned char *a0 = a_tile, *a1 = a0 + a_stride, *a2 = a1 + a_stride;          \
    const unsigned char *a3 = a2 + a_stride, *a4 = a3 + a_stride, *a5 = a4 + a_stride;   \
    Q8_AVXVNNI_INIT_ACC                                                                  \
    const int8_t *w = weights;                                                           \
    for (size_t g = 0; g < groups; ++g, w += Q8_AVXVNNI_NR * Q8_AVXVNNI_KR) {            \
      const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);                         \
      const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));                  \
      Q8_AVXVNNI_ROWS_EACH(Q8_AVXVNNI_ROWS_GROUP, DPBUSD)                                \
    }                                                                                    \
    if (rest) {                                                                          \
      const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);                         \
      const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));                  \
      Q8_AVXVNNI_ROWS_EACH(Q8_AVXVNNI_ROWS_REST, DPBUSD)                                 \
    }                                                                                    \
    /* Reloaded per tile: held in registers across the K loop, the constants    \
     * would push accumulators onto the stack. */                                       \
    __asm__ volatile("" : "+m"(rp0), "+m"(rp1));                                         \
    Q8_AVXVNNI_STORE_AT(c_tile, 0)                                                       \
    Q8_AVXVNNI_STORE_AT(c_tile, 1)                                                       \
    Q8_AVXVNNI_STORE_AT(c_tile, 2)                                                       \
    Q8_AVXVNNI_STORE_AT(c_tile, 3)                                                       \
    Q8_AVXVNNI_STORE_AT(c_tile, 4)                                                       \
    Q8_AVXVNNI_STORE_AT(c_tile, 5)                                                       \
    a_tile += Q8_AVXVNNI_MR * a_stride;                                                  \
    c_tile += Q8_AVXVNNI_MR * c_stride;                                                  \
  }                                                                                      \
  if (m > 0) NAME##_run(m, nr, k, a_tile, a_stride, Q8_UINT8, packed, c_tile, c_stride, rq);

#define Q8_AVXVNNI_RANGES_CASE(TILE, R)                                                  \
  case R:                                                                            \
    TILE(R, nr, ranges, nranges, a, a_stride, packed, col_adjust, c, c_stride, rq);   \
    break;

#define Q8_AVXVNNI_CASE(TILE, R)                                                        \
  case R:                                                                            \
    if (u8) {                                                                        \
      TILE(R, 1, nr, k, a, a_stride, packed, c, c_stride, rq);                       \
    } else {                                                                         \
      TILE(R, 0, nr, k, a, a_stride, packed, c, c_stride, rq);                       \
    }                                                                                \
    break;

/* One case per tile height (mr > 6 cannot happen: the driver passes at most MR). */
#define Q8_AVXVNNI_MR_SWITCH(CASE, TILE)                                                 \
  switch (mr) {                                                                          \
    CASE(TILE, 1)                                                                        \
    CASE(TILE, 2)                                                                        \
    CASE(TILE, 3)                                                                        \
    CASE(TILE, 4)                                                                        \
    CASE(TILE, 5)                                                                        \
    default:                                                                             \
    CASE(TILE, 6)                                                                        \
  }

/* Defines the tile template and the run function of one instantiation. */
#define Q8_AVXVNNI_DEFINE(NAME, TARGET, DPBUSD)                                                 \
  static inline __attribute__((always_inline, target(TARGET))) void NAME##_tile(             \
      const int ROWS, const int U8, size_t nr, size_t k, const void *a, size_t a_stride,     \
      const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {           \
    Q8_AVXVNNI_TILE_BODY(DPBUSD)                                                                \
  }                                                                                          \
  static __attribute__((target(TARGET))) void NAME##_run(                                    \
      size_t mr, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,      \
      const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {           \
    const int u8 = a_dtype == Q8_UINT8;                                                      \
    Q8_AVXVNNI_MR_SWITCH(Q8_AVXVNNI_CASE, NAME##_tile)                                       \
  }                                                                                          \
  static inline __attribute__((always_inline, target(TARGET))) void NAME##_ranges_tile(      \
      const int ROWS, size_t nr, const q8_k_range *ranges, size_t nranges, const void *a,    \
      size_t a_stride, const void *packed, const int32_t *col_adjust, void *c,               \
      size_t c_stride, const q8_requant_params *rq) {                                        \
    Q8_AVXVNNI_RANGES_BODY(DPBUSD)                                                           \
  }                                                                                          \
  static __attribute__((target(TARGET))) void NAME##_run_k_ranges(                           \
      size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges, const void *a,         \
      size_t a_stride, q8_dtype a_dtype, const void *packed, const int32_t *col_adjust,      \
      void *c, size_t c_stride, const q8_requant_params *rq) {                               \
    (void)a_dtype; /* uint8, the only type read as is */                                     \
    Q8_AVXVNNI_MR_SWITCH(Q8_AVXVNNI_RANGES_CASE, NAME##_ranges_tile)                         \
  }                                                                                          \
  static __attribute__((target(TARGET))) void NAME##_run_rows(                               \
      size_t m, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,       \
      const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {           \
    if (a_dtype == Q8_INT8) { /* through the flipping tiles (drivers flip A first) */       \
      for (size_t i = 0; i < m; i += Q8_AVXVNNI_MR) {                                        \
        NAME##_run(m - i < Q8_AVXVNNI_MR ? m - i : Q8_AVXVNNI_MR, nr, k,                     \
                   (const unsigned char *)a + i * a_stride, a_stride, a_dtype, packed,       \
                   (unsigned char *)c + i * c_stride, c_stride, rq);                         \
      }                                                                                      \
      return;                                                                                \
    }                                                                                        \
    Q8_AVXVNNI_ROWS_BODY(NAME, DPBUSD)                                                       \
  }                                                                                          \
  const q8_gemm_ukernel NAME = {                                                             \
      .name = #NAME,                                                                         \
      .mr = Q8_AVXVNNI_MR,                                                                      \
      .nr = Q8_AVXVNNI_NR,                                                                      \
      .kr = Q8_AVXVNNI_KR,                                                                      \
      .int8_a_offset = 128,                                                                  \
      .pack = q8_gemm_pack_nrkr,                                                             \
      .run = NAME##_run,                                                                     \
      .run_k_ranges = NAME##_run_k_ranges,                                                   \
      .run_rows = NAME##_run_rows,                                                           \
  };

/* The registered kernel (needs AVX-VNNI: Alder Lake and later, Zen 5). */
Q8_AVXVNNI_DEFINE(q8_gemm_x8s8_6x16c4__avxvnni, "avx2,fma,avxvnni", _mm256_dpbusd_avx_epi32)

/* Test-only twin (needs AVX512-VNNI + AVX512-VL); not in gemm.def. */
Q8_AVXVNNI_DEFINE(q8_gemm_x8s8_6x16c4__avxvnni_emu512, "avx2,fma,avx512f,avx512vl,avx512vnni",
               _mm256_dpbusd_epi32)
