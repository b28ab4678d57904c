/* AVX2 depthwise kernels: 16 channels per block (two ymm accumulators of 8
 * int32), pairs of taps through pmaddwd (exact, unlike pmaddubsw). Channel
 * tails go through a small stack copy: AVX2 has no byte-masked loads and the
 * input may end at a page boundary. Compiled through function attributes. */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/x86/requant_avx2.h"
#include "q8/kernels.h"

#define DW_INLINE static inline __attribute__((always_inline)) Q8_AVX2_TARGET
#define DW_FN static __attribute__((noinline)) Q8_AVX2_TARGET
#define DW_VEC __m256i
#define DW_CT 16
#define DW_UNPACKLO _mm256_unpacklo_epi16
#define DW_UNPACKHI _mm256_unpackhi_epi16
#define DW_DOT(acc, x, w) _mm256_add_epi32((acc), _mm256_madd_epi16((x), (w)))

typedef struct dw_rq {
  q8_rq8_avx2 half[2];
} DW_RQ;

DW_INLINE __m256i dw_load_x(const uint8_t *p, size_t cn, bool full, bool u8) {
  __m128i v;
  if (full) {
    v = _mm_loadu_si128((const __m128i_u *)p);
  } else {
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, cn);
    v = _mm_loadu_si128((const __m128i_u *)tmp);
  }
  return u8 ? _mm256_cvtepu8_epi16(v) : _mm256_cvtepi8_epi16(v);
}

DW_INLINE void dw_rq_init(DW_RQ *s, const q8_requant_params *rq, size_t c0, size_t cn) {
  q8_rq8_avx2_prepare(rq, c0, cn < 8 ? cn : 8, &s->half[0]);
  if (cn > 8) q8_rq8_avx2_prepare(rq, c0 + 8, cn - 8, &s->half[1]);
}

/* lo holds channels 0-3 and 8-11, hi 4-7 and 12-15: swap the middle halves. */
DW_INLINE void dw_store(unsigned char *out, size_t cn, __m256i lo, __m256i hi,
                        const q8_requant_params *rq, const DW_RQ *s) {
  const __m256i first = _mm256_permute2x128_si256(lo, hi, 0x20);
  const __m256i second = _mm256_permute2x128_si256(lo, hi, 0x31);
  if (rq == NULL) {
    q8_rq_avx2_store8_i32(out, first, cn < 8 ? cn : 8);
    if (cn > 8) q8_rq_avx2_store8_i32(out + 32, second, cn - 8);
    return;
  }
  const __m256i q0 = q8_rq8_avx2_apply(first, &s->half[0]);
  if (cn > 8) {
    q8_rq_avx2_store16(out, q0, q8_rq8_avx2_apply(second, &s->half[1]), rq->out_dtype, cn);
  } else {
    q8_rq_avx2_store8(out, q0, rq->out_dtype, cn);
  }
}

#include "kernels/x86/dwconv_body.h"

DW_DEFINE(q8_dwconv_x8s8_3x3s1c16__avx2, 3, 3, 1)
DW_DEFINE(q8_dwconv_x8s8_3x3s2c16__avx2, 3, 3, 2)
DW_DEFINE(q8_dwconv_x8s8_5x5s1c16__avx2, 5, 5, 1)
DW_DEFINE(q8_dwconv_x8s8_5x5s2c16__avx2, 5, 5, 2)
DW_DEFINE_GENERIC(q8_dwconv_x8s8_generic_c16__avx2)
