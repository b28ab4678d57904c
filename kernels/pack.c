/* The common packed-weight layout of the GEMM micro-kernels (see kernels.h). */
#include <string.h>

#include "q8/kernels.h"

size_t q8_gemm_block_bytes(unsigned nr, unsigned kr, size_t k) {
  const size_t k_padded = (k + kr - 1) / kr * kr;
  return (size_t)nr * sizeof(int32_t) + (size_t)nr * k_padded;
}

size_t q8_gemm_packed_bytes(unsigned nr, unsigned kr, size_t n, size_t k) {
  return (n + nr - 1) / nr * q8_gemm_block_bytes(nr, kr, k);
}

void q8_gemm_pack_nrkr(unsigned nr, unsigned kr, size_t n, size_t k, const int8_t *w,
                       const int32_t *col_term, void *packed) {
  const size_t block = q8_gemm_block_bytes(nr, kr, k);
  const size_t groups = (k + kr - 1) / kr;
  unsigned char *out = packed;
  for (size_t n0 = 0; n0 < n; n0 += nr, out += block) {
    /* Padding channels and padding k are zero: they add nothing. */
    memset(out, 0, block);
    for (unsigned j = 0; j < nr && n0 + j < n; ++j) {
      memcpy(out + j * sizeof(int32_t), &col_term[n0 + j], sizeof(int32_t));
    }
    int8_t *wp = (int8_t *)(out + nr * sizeof(int32_t));
    for (size_t g = 0; g < groups; ++g) {
      for (unsigned j = 0; j < nr && n0 + j < n; ++j) {
        for (unsigned q = 0; q < kr && g * kr + q < k; ++q) {
          wp[(g * nr + j) * kr + q] = w[(n0 + j) * k + g * kr + q];
        }
      }
    }
  }
}

void q8_gemm_col_terms(size_t n, size_t k, const int8_t *w, const int32_t *bias,
                       int32_t a_zero_point, int32_t offset, int32_t *col_term) {
  for (size_t j = 0; j < n; ++j) {
    int32_t sum = 0; /* |sum| <= 128 * Q8_GEMM_MAX_K: no overflow */
    for (size_t q = 0; q < k; ++q) sum += w[j * k + q];
    /* In uint32: the product may leave int32; the final value is exact mod 2^32. */
    const uint32_t term = (uint32_t)(bias ? bias[j] : 0) -
                          (uint32_t)(a_zero_point + offset) * (uint32_t)sum;
    col_term[j] = (int32_t)term;
  }
}
