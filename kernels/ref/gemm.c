/* Reference int8 GEMM: exact int32 accumulation, optional fused requantization. */
#include "q8/kernels.h"

static int32_t load_activation(const void *a, size_t index, q8_dtype dtype) {
  return dtype == Q8_UINT8 ? ((const uint8_t *)a)[index] : ((const int8_t *)a)[index];
}

q8_status q8_ref_gemm(size_t m, size_t n, size_t k,
                      const void *a, size_t lda, q8_dtype a_dtype, int32_t a_zero_point,
                      const int8_t *b, size_t ldb, const int32_t *b_zero_point,
                      const int32_t *bias, const q8_requant_params *rq,
                      void *c, size_t ldc) {
  if (k > Q8_GEMM_MAX_K) return Q8_ERR_OVERFLOW;
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      const int32_t zb = b_zero_point ? b_zero_point[j] : 0;
      /* Exact: k <= Q8_GEMM_MAX_K bounds |sum| by INT32_MAX. */
      int32_t sum = 0;
      for (size_t p = 0; p < k; ++p) {
        sum += (load_activation(a, i * lda + p, a_dtype) - a_zero_point) *
               ((int32_t)b[j * ldb + p] - zb);
      }
      const int64_t total = (int64_t)(bias ? bias[j] : 0) + sum;
      if (total < INT32_MIN || total > INT32_MAX) return Q8_ERR_OVERFLOW;
      const int32_t acc = (int32_t)total;
      const size_t at = i * ldc + j;
      if (rq == NULL) {
        ((int32_t *)c)[at] = acc;
      } else {
        const int32_t q = q8_ref_requantize_one(acc, rq, rq->channels == 1 ? 0 : j);
        if (rq->out_dtype == Q8_UINT8) {
          ((uint8_t *)c)[at] = (uint8_t)q;
        } else {
          ((int8_t *)c)[at] = (int8_t)q;
        }
      }
    }
  }
  return Q8_OK;
}
