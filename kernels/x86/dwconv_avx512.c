/* AVX-512 depthwise kernels: 32 channels per block (two zmm accumulators of
 * 16 int32), pairs of taps through vpdpwssd (AVX-512 VNNI: the pmaddwd and
 * the add in one instruction, exact as pmaddwd). Masked byte loads and stores
 * cover channel tails without reading or writing past them. Compiled through
 * function attributes only, like kernels/x86/gemm_avx512vnni.c. */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/x86/requant_avx512.h"
#include "q8/kernels.h"

#define DW_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"
#define DW_INLINE static inline __attribute__((always_inline, target(DW_TARGET)))
#define DW_FN static __attribute__((noinline, target(DW_TARGET)))
#define DW_VEC __m512i
#define DW_CT 32
#define DW_UNPACKLO _mm512_unpacklo_epi16
#define DW_UNPACKHI _mm512_unpackhi_epi16
#define DW_DOT _mm512_dpwssd_epi32

typedef struct dw_rq {
  q8_rq512 half[2];
} DW_RQ;

DW_INLINE __mmask16 dw_lanes(size_t n) {
  return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

DW_INLINE __m512i dw_load_x(const uint8_t *p, size_t cn, bool full, bool u8) {
  const __m256i v = full ? _mm256_loadu_si256((const __m256i_u *)p)
                         : _mm256_maskz_loadu_epi8((__mmask32)((1ull << cn) - 1), p);
  return u8 ? _mm512_cvtepu8_epi16(v) : _mm512_cvtepi8_epi16(v);
}

DW_INLINE void dw_rq_init(DW_RQ *s, const q8_requant_params *rq, size_t c0, size_t cn) {
  q8_rq512_init(&s->half[0], rq, c0, dw_lanes(cn));
  if (cn > 16) q8_rq512_init(&s->half[1], rq, c0 + 16, dw_lanes(cn - 16));
}

/* lo holds channels 8g..8g+3 and hi 8g+4..8g+7 in 128-bit lane g: interleave
 * the 128-bit lanes back into channel order, then store. */
DW_INLINE void dw_store(unsigned char *out, size_t cn, __m512i lo, __m512i hi,
                        const q8_requant_params *rq, const DW_RQ *s) {
  const __m512i first = _mm512_permutex2var_epi64(lo, _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0), hi);
  const __m512i second =
      _mm512_permutex2var_epi64(lo, _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4), hi);
  const __mmask16 m0 = dw_lanes(cn);
  if (rq == NULL) {
    _mm512_mask_storeu_epi32(out, m0, first);
    if (cn > 16) _mm512_mask_storeu_epi32(out + 64, dw_lanes(cn - 16), second);
    return;
  }
  q8_rq512_store(out, m0, q8_rq512_apply(&s->half[0], rq->mode, first));
  if (cn > 16) {
    q8_rq512_store(out + 16, dw_lanes(cn - 16), q8_rq512_apply(&s->half[1], rq->mode, second));
  }
}

#include "kernels/x86/dwconv_body.h"

DW_DEFINE(q8_dwconv_x8s8_3x3s1c32__avx512vnni, 3, 3, 1)
DW_DEFINE(q8_dwconv_x8s8_3x3s2c32__avx512vnni, 3, 3, 2)
DW_DEFINE(q8_dwconv_x8s8_5x5s1c32__avx512vnni, 5, 5, 1)
DW_DEFINE(q8_dwconv_x8s8_5x5s2c32__avx512vnni, 5, 5, 2)
DW_DEFINE_GENERIC(q8_dwconv_x8s8_generic_c32__avx512vnni)
