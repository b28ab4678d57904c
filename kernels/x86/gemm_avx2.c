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
 * lanes, 32 weight bytes give srai(x, 8) = the pairs (w1, w3) and
 * srai(slli(x, 8), 8) = the pairs (w0, w2) of 8 columns. The activations are
 * split the same way into (a0, a2) and (a1, a3) int16 pairs, each broadcast
 * with vpbroadcastd, so per group of 4 k and row:
 *   acc[0..7]  += madd(a02, w02[0..7])  + madd(a13, w13[0..7])
 *   acc[8..15] += madd(a02, w02[8..15]) + madd(a13, w13[8..15]).
 * 10 accumulators + 4 weight registers + 1 activation + 1 product = 16 ymm.
 *
 * The split activations go through a 2-slot buffer of 32 k (8 groups) per row:
 * while the kernel computes block j it widens block j + 1, so the widening
 * (stores included) overlaps the multiplies instead of running as a separate
 * pass (a separate pass cost ~13% at k = 1024; interleaved it still costs ~7%,
 * paid again for every tile since the interface gives one tile per call).
 * The last partial block is copied with memcpy: A is never read past k bytes
 * per row.
 *
 * Compiled with target attributes only: the file builds with plain
 * `cc -std=c17 -O2` and the rest of the library keeps the x86-64 baseline. */
#include <string.h>

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

/* Splits 32 activations into 8 (a0, a2) and 8 (a1, a3) int16 pairs. */
Q8_AVX2_KERNEL_INLINE void split_block(__m256i x, const int U8, int32_t *even, int32_t *odd) {
  __m256i e, o;
  if (U8) {
    e = _mm256_and_si256(x, _mm256_set1_epi16(0xFF));
    o = _mm256_srli_epi16(x, 8);
  } else {
    e = _mm256_srai_epi16(_mm256_slli_epi16(x, 8), 8);
    o = _mm256_srai_epi16(x, 8);
  }
  _mm256_store_si256((__m256i *)even, e);
  _mm256_store_si256((__m256i *)odd, o);
}

/* The last n (1..31) activations of a row, zero-padded to a block. */
Q8_AVX2_KERNEL_INLINE void split_partial(const unsigned char *a, size_t n, const int U8,
                                         int32_t *even, int32_t *odd) {
  unsigned char tmp[Q8_AVX2_BLOCK] = {0};
  memcpy(tmp, a, n);
  split_block(_mm256_loadu_si256((const __m256i *)tmp), U8, even, odd);
}

/* Widens block `blk` (full) of row r into slot `dst`. */
#define Q8_AVX2_FILL(r, dst, blk)                                                        \
  if (ROWS > r) {                                                                        \
    split_block(_mm256_loadu_si256((const __m256i *)(a##r + (blk) * Q8_AVX2_BLOCK)), U8, \
                ae[dst][r], ao[dst][r]);                                                 \
  }

#define Q8_AVX2_ROW(r, s, q)                                                 \
  if (ROWS > r) {                                                            \
    __m256i va = _mm256_set1_epi32(ae[s][r][q]);                             \
    acc##r##a = _mm256_add_epi32(acc##r##a, _mm256_madd_epi16(va, w0e));     \
    Q8_AVX2_PIN(acc##r##a);                                                  \
    acc##r##b = _mm256_add_epi32(acc##r##b, _mm256_madd_epi16(va, w1e));     \
    Q8_AVX2_PIN(acc##r##b);                                                  \
    va = _mm256_set1_epi32(ao[s][r][q]);                                     \
    acc##r##a = _mm256_add_epi32(acc##r##a, _mm256_madd_epi16(va, w0o));     \
    Q8_AVX2_PIN(acc##r##a);                                                  \
    acc##r##b = _mm256_add_epi32(acc##r##b, _mm256_madd_epi16(va, w1o));     \
    Q8_AVX2_PIN(acc##r##b);                                                  \
  }

/* One group of 4 k: group q of activation slot s, weights at w. */
#define Q8_AVX2_GROUP(s, q)                                                              \
  {                                                                                      \
    const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);                          \
    const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));                   \
    w += Q8_AVX2_NR * Q8_AVX2_KR;                                                        \
    const __m256i w0o = _mm256_srai_epi16(w0, 8);                                        \
    const __m256i w0e = _mm256_srai_epi16(_mm256_slli_epi16(w0, 8), 8);                  \
    const __m256i w1o = _mm256_srai_epi16(w1, 8);                                        \
    const __m256i w1e = _mm256_srai_epi16(_mm256_slli_epi16(w1, 8), 8);                  \
    Q8_AVX2_ROW(0, s, q)                                                                 \
    Q8_AVX2_ROW(1, s, q)                                                                 \
    Q8_AVX2_ROW(2, s, q)                                                                 \
    Q8_AVX2_ROW(3, s, q)                                                                 \
    Q8_AVX2_ROW(4, s, q)                                                                 \
  }

/* Requantizes or stores row r of the tile. */
#define Q8_AVX2_STORE(r)                                                                     \
  if (ROWS > r) {                                                                  \
    q8_rq_avx2_store_row16((unsigned char *)c + (size_t)(r) * c_stride, acc##r##a,  \
                           acc##r##b, nr, rq, &rp0, &rp1);                          \
  }

/* The tile with compile-time row count (1..5) and activation type. */
Q8_AVX2_KERNEL_INLINE void tile_avx2(const int ROWS, const int U8, size_t nr, size_t k,
                                     const void *a, size_t a_stride, const void *packed, void *c,
                                     size_t c_stride, const q8_requant_params *rq) {
  /* [slot][row][group]: the (a0, a2) and (a1, a3) pairs of one block. */
  _Alignas(32) int32_t ae[2][Q8_AVX2_MR][Q8_AVX2_BLOCK / 4];
  _Alignas(32) int32_t ao[2][Q8_AVX2_MR][Q8_AVX2_BLOCK / 4];
  const unsigned char *a0 = (const unsigned char *)a;
  const unsigned char *a1 = ROWS > 1 ? a0 + a_stride : a0;
  const unsigned char *a2 = ROWS > 2 ? a1 + a_stride : a0;
  const unsigned char *a3 = ROWS > 3 ? a2 + a_stride : a0;
  const unsigned char *a4 = ROWS > 4 ? a3 + a_stride : a0;
  const unsigned char *rows[Q8_AVX2_MR] = {a0, a1, a2, a3, a4};
  const int8_t *w = (const int8_t *)packed + Q8_AVX2_NR * sizeof(int32_t);
  const __m256i ct0 = _mm256_loadu_si256((const __m256i *)packed);
  const __m256i ct1 = _mm256_loadu_si256((const __m256i *)packed + 1);
  __m256i acc0a = ct0, acc0b = ct1, acc1a = ct0, acc1b = ct1, acc2a = ct0, acc2b = ct1;
  __m256i acc3a = ct0, acc3b = ct1, acc4a = ct0, acc4b = ct1;

  const size_t full = k / Q8_AVX2_BLOCK, rem = k % Q8_AVX2_BLOCK;
  size_t s = 0; /* slot of the block being computed */
  if (full > 0) {
    Q8_AVX2_FILL(0, 0, 0)
    Q8_AVX2_FILL(1, 0, 0)
    Q8_AVX2_FILL(2, 0, 0)
    Q8_AVX2_FILL(3, 0, 0)
    Q8_AVX2_FILL(4, 0, 0)
    /* Blocks 0 .. full - 2, each widening the next one meanwhile. */
    for (size_t j = 0; j + 1 < full; ++j, s ^= 1) {
      Q8_AVX2_FILL(0, s ^ 1, j + 1)
      Q8_AVX2_GROUP(s, 0)
      Q8_AVX2_FILL(1, s ^ 1, j + 1)
      Q8_AVX2_GROUP(s, 1)
      Q8_AVX2_FILL(2, s ^ 1, j + 1)
      Q8_AVX2_GROUP(s, 2)
      Q8_AVX2_FILL(3, s ^ 1, j + 1)
      Q8_AVX2_GROUP(s, 3)
      Q8_AVX2_FILL(4, s ^ 1, j + 1)
      Q8_AVX2_GROUP(s, 4)
      Q8_AVX2_GROUP(s, 5)
      Q8_AVX2_GROUP(s, 6)
      Q8_AVX2_GROUP(s, 7)
    }
  }
  /* The last full block is in slot s; the partial block goes to the other. */
  const size_t ps = s ^ 1;
  if (rem > 0) {
    for (int r = 0; r < ROWS; ++r) {
      split_partial(rows[r] + full * Q8_AVX2_BLOCK, rem, U8, ae[ps][r], ao[ps][r]);
    }
  }
  if (full > 0) {
    for (size_t q = 0; q < Q8_AVX2_BLOCK / 4; ++q) Q8_AVX2_GROUP(s, q)
  }
  if (rem > 0) {
    for (size_t q = 0; q < (rem + 3) / 4; ++q) Q8_AVX2_GROUP(ps, q)
  }

  q8_rq8_avx2 rp0, rp1;
  if (rq != NULL) {
    q8_rq8_avx2_prepare(rq, 0, nr < 8 ? nr : 8, &rp0);
    if (nr > 8) {
      q8_rq8_avx2_prepare(rq, 8, nr - 8, &rp1);
    } else {
      rp1 = rp0;
    }
  } else {
    memset(&rp0, 0, sizeof rp0);
    rp1 = rp0;
  }
  Q8_AVX2_STORE(0)
  Q8_AVX2_STORE(1)
  Q8_AVX2_STORE(2)
  Q8_AVX2_STORE(3)
  Q8_AVX2_STORE(4)
}

#define Q8_AVX2_CASE(R)                                                              \
  case R:                                                                            \
    if (u8) {                                                                        \
      tile_avx2(R, 1, nr, k, a, a_stride, packed, c, c_stride, rq);                  \
    } else {                                                                         \
      tile_avx2(R, 0, nr, k, a, a_stride, packed, c, c_stride, rq);                  \
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

const q8_gemm_ukernel q8_gemm_x8s8_5x16c4__avx2 = {
    .name = "q8_gemm_x8s8_5x16c4__avx2",
    .mr = Q8_AVX2_MR,
    .nr = Q8_AVX2_NR,
    .kr = Q8_AVX2_KR,
    .int8_a_offset = 0,
    .pack = q8_gemm_pack_nrkr,
    .run = q8_gemm_x8s8_5x16c4__avx2_run,
};
