/* A partial block of activations for the AVX2 and AVX-VNNI GEMM kernels,
 * loaded without reading past it. */
#ifndef Q8_KERNELS_X86_LOAD_AVX2_H
#define Q8_KERNELS_X86_LOAD_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* The first n (0..32) bytes at a, zeros after them; never reads a[n] or
 * beyond (masked-out lanes of vpmaskmovd do not fault). Through a stack copy
 * with a memcpy call this cost more than the whole tile at k = 24 (every
 * block partial): 3136x144x24 on AVX-VNNI took 2.2x as long as k = 32. */
static inline __attribute__((always_inline, target("avx2"))) __m256i q8_avx2_load_first(
    const unsigned char *a, size_t n) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const size_t whole = n / 4; /* dwords entirely within the n bytes */
  const __m256i inside = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)whole), lane);
  __m256i x = _mm256_maskload_epi32((const int *)(const void *)a, inside);
  if (n % 4) {
    uint32_t last = 0;
    for (size_t i = 0; i < n % 4; ++i) last |= (uint32_t)a[4 * whole + i] << (8 * i);
    const __m256i at = _mm256_cmpeq_epi32(_mm256_set1_epi32((int)whole), lane);
    x = _mm256_or_si256(x, _mm256_and_si256(_mm256_set1_epi32((int)last), at));
  }
  return x;
}

#endif
