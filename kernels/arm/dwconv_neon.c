/* NEON depthwise kernels (Armv8.0, no dotprod): 16 channels per block (one
 * q register of bytes, four int32x4 accumulators). Per tap, smull/smull2
 * multiply the int8 inputs by the int8 weights into int16, and saddw/saddw2
 * widen into int32.
 *
 * Two taps per widening: a product lies in [-16256, 16384] and reaches 16384
 * only for x = w = -128 (else |x * w| <= 128 * 127), so the sum of two
 * products fits int16 unless both weights are -128. When no channel of a
 * block has -128 at both taps of a pair (2j, 2j + 1), smlal/smlal2 add the
 * second product before the widening: a pair of taps costs 8 vector
 * instructions for 32 MACs instead of 12, 4 MACs per instruction, the rate of
 * the smull + sadalp peak bench/arm-mca measures against (the 16 channels are
 * adjacent lanes, so sadalp's pairwise add does not apply here). Weights
 * quantized symmetrically lie in [-127, 127], so their blocks always pair; a
 * block with -128 at both taps of a pair (the contract takes any int8) widens
 * each product on its own. pack records which, per block.
 *
 * uint8 input is read as x ^ 0x80 = x - 128 (uint8_a_offset = -128, folded
 * into the column terms), so both types share the signed multiply. The driver
 * (dispatch/conv_depthwise.c) flips uint8 rows itself, once per input row,
 * and runs the int8 kernel; given uint8 rows directly, the kernel flips each
 * tap's input. Padding reads zero-point bytes, cancelled by the column terms
 * (see the depthwise section of q8/kernels.h). Requantization is fused
 * (kernels/arm/requant_neon.h, parameters loaded once per block and row).
 * Channel blocks are the outer loop of a row, so a block's weights stay in
 * registers (3x3) or L1 (5x5, generic) across the row; tails go through a
 * 16-byte stack copy since the input may end at a page boundary.
 *
 * Packed block (16 channels, the last padded with zero channels):
 *   int32_t col_term[16]; int32_t pairs[4] (pairs[0] = 1: taps summed in pairs);
 *   int8_t w[taps][16]. */
#include <arm_neon.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/arm/requant_neon.h"
#include "kernels/dwconv_entry.h"
#include "q8/kernels.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_FN static __attribute__((noinline))
#define DW_CT 16
#define DW_INT8_A_OFFSET 0
#define DW_UINT8_A_OFFSET (-128)
#define DW_MAX_TAPS 9 /* dedicated kernels up to 3x3 keep their weights in registers */

typedef struct dw_acc {
  int32x4_t v[4]; /* channels 0-3, 4-7, 8-11, 12-15 of the block */
} dw_acc;

/* Region markers for llvm-mca (bench/arm-mca): one region per dedicated
 * kernel around the taps of an interior pixel of int8 input (what the driver
 * runs for both types), for each way of summing: pairs, and one tap at a
 * time (a block with -128 at both taps of a pair: "_w128"). The names are
 * literals in the asm, so each kernel has its own id. */
enum { DW_MCA_NONE, DW_MCA_3X3S1, DW_MCA_3X3S2, DW_MCA_5X5S1, DW_MCA_5X5S2 };
#define DW_MCA_CASE(id, single, name)                       \
  case 2 * (id) + (single):                                 \
    __asm__ volatile("// LLVM-MCA-BEGIN " name);            \
    break;
DW_INLINE void dw_mca_begin(int id, bool pairs) {
  switch (2 * id + (int)!pairs) {
    DW_MCA_CASE(DW_MCA_3X3S1, 0, "q8_dwconv_x8s8_3x3s1c16__neon")
    DW_MCA_CASE(DW_MCA_3X3S1, 1, "q8_dwconv_x8s8_3x3s1c16__neon_w128")
    DW_MCA_CASE(DW_MCA_3X3S2, 0, "q8_dwconv_x8s8_3x3s2c16__neon")
    DW_MCA_CASE(DW_MCA_3X3S2, 1, "q8_dwconv_x8s8_3x3s2c16__neon_w128")
    DW_MCA_CASE(DW_MCA_5X5S1, 0, "q8_dwconv_x8s8_5x5s1c16__neon")
    DW_MCA_CASE(DW_MCA_5X5S1, 1, "q8_dwconv_x8s8_5x5s1c16__neon_w128")
    DW_MCA_CASE(DW_MCA_5X5S2, 0, "q8_dwconv_x8s8_5x5s2c16__neon")
    DW_MCA_CASE(DW_MCA_5X5S2, 1, "q8_dwconv_x8s8_5x5s2c16__neon_w128")
    default: break;
  }
}
DW_INLINE void dw_mca_end(int id) {
  if (id != DW_MCA_NONE) __asm__ volatile("// LLVM-MCA-END");
}

DW_INLINE int8x16_t dw_load_x(const uint8_t *p, size_t cn, bool full, bool u8) {
  uint8x16_t v;
  if (full) {
    v = vld1q_u8(p);
  } else {
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, cn);
    v = vld1q_u8(tmp);
  }
  if (u8) v = veorq_u8(v, vdupq_n_u8(0x80));
  return vreinterpretq_s8_u8(v);
}

DW_INLINE void dw_mac(dw_acc *a, int8x16_t x, int8x16_t w) {
  const int16x8_t lo = vmull_s8(vget_low_s8(x), vget_low_s8(w));
  const int16x8_t hi = vmull_high_s8(x, w);
  a->v[0] = vaddw_s16(a->v[0], vget_low_s16(lo));
  a->v[1] = vaddw_high_s16(a->v[1], lo);
  a->v[2] = vaddw_s16(a->v[2], vget_low_s16(hi));
  a->v[3] = vaddw_high_s16(a->v[3], hi);
}

/* Two taps, summed in int16 before widening: only for blocks where no
 * channel has -128 at both taps (see the top of the file). */
DW_INLINE void dw_mac2(dw_acc *a, int8x16_t x0, int8x16_t w0, int8x16_t x1, int8x16_t w1) {
  int16x8_t lo = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));
  int16x8_t hi = vmull_high_s8(x0, w0);
  lo = vmlal_s8(lo, vget_low_s8(x1), vget_low_s8(w1));
  hi = vmlal_high_s8(hi, x1, w1);
  a->v[0] = vaddw_s16(a->v[0], vget_low_s16(lo));
  a->v[1] = vaddw_high_s16(a->v[1], lo);
  a->v[2] = vaddw_s16(a->v[2], vget_low_s16(hi));
  a->v[3] = vaddw_high_s16(a->v[3], hi);
}

DW_INLINE void dw_pixel(const q8_dwconv_row *r, size_t kh, size_t kw, size_t dilation,
                        ptrdiff_t ix0, size_t c0, size_t cn, bool full, bool u8, bool interior,
                        bool pairs, const int8x16_t *w, dw_acc *a) {
  /* Unrolled for the dedicated shapes even at -O2, so each tap's weights
   * stay in their own register and the pairing is resolved at compile time.
   * The generic kernel carries a pending tap across rows instead. */
  bool pending = false;
  int8x16_t px = vdupq_n_s8(0), pw = vdupq_n_s8(0);
#pragma GCC unroll 5
  for (size_t ky = 0; ky < kh; ++ky) {
#pragma GCC unroll 5
    for (size_t kx = 0; kx < kw; ++kx) {
      const int8x16_t x = dw_load_x(dw_tap(r, ky, kx, ix0, dilation, c0, interior), cn, full, u8);
      const int8x16_t wt = w[ky * kw + kx];
      if (!pairs) {
        dw_mac(a, x, wt);
      } else if (pending) {
        dw_mac2(a, px, pw, x, wt);
        pending = false;
      } else {
        px = x;
        pw = wt;
        pending = true;
      }
    }
  }
  if (pending) dw_mac(a, px, pw);
}

/* Requantization parameters of the block's four groups of 4 channels. */
typedef struct dw_rq {
  q8_rqn group[4];
} dw_rq;

DW_INLINE void dw_rq_init(dw_rq *s, const q8_requant_params *rq, size_t c0, size_t cn) {
  for (size_t i = 0; 4 * i < cn; ++i) {
    q8_rqn_init(&s->group[i], rq, c0 + 4 * i, cn - 4 * i < 4 ? cn - 4 * i : 4);
  }
}

/* The 16 accumulators -> the output of channels [c0, c0 + cn) (stored
 * bytewise: the output need not be 4-byte aligned). */
DW_INLINE void dw_store(unsigned char *out, size_t cn, bool full, const dw_acc *a,
                        const q8_requant_params *rq, const dw_rq *s) {
  if (rq == NULL) {
    if (full) {
      for (size_t i = 0; i < 4; ++i) vst1q_u8(out + 16 * i, vreinterpretq_u8_s32(a->v[i]));
    } else {
      int32_t acc[16];
      for (size_t i = 0; i < 4; ++i) vst1q_s32(acc + 4 * i, a->v[i]);
      memcpy(out, acc, cn * sizeof(int32_t));
    }
    return;
  }
  int32x4_t q[4];
  for (size_t i = 0; i < 4; ++i) q[i] = q8_rqn_apply(&s->group[i], rq->mode, a->v[i]);
  q8_rqn_store(out, cn, q8_rqn_narrow16(q[0], q[1], q[2], q[3]));
}

#define DW_HEADER_BYTES (DW_CT * sizeof(int32_t) + 4 * sizeof(int32_t))
static size_t dw_block_bytes(size_t taps) { return DW_HEADER_BYTES + taps * DW_CT; }

/* One channel block over the whole output row. */
DW_INLINE void dw_block(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                        size_t dilation, bool u8, bool dedicated, int mca, bool full, bool pairs,
                        size_t c0, size_t cn, const unsigned char *block) {
  const size_t taps = kh * kw, out_elem = r->rq ? 1 : sizeof(int32_t);
  const int32_t *col_term = (const int32_t *)(const void *)block;
  dw_acc start;
  for (size_t i = 0; i < 4; ++i) start.v[i] = vld1q_s32(col_term + 4 * i);
  const int8_t *packed_w = (const int8_t *)(block + DW_HEADER_BYTES);
  /* 3x3: the weights stay in registers across the row. 5x5's 25 do not fit
   * beside the accumulators, and the compiler's spills and reloads cost more
   * issue slots than reading each tap's weights from the packed block. */
  int8x16_t wv[DW_MAX_TAPS];
  const int8x16_t *w = wv;
  if (dedicated && taps <= DW_MAX_TAPS) {
#pragma GCC unroll 25
    for (size_t t = 0; t < taps; ++t) wv[t] = vld1q_s8(packed_w + t * DW_CT);
  } else {
    w = (const int8x16_t *)(const void *)packed_w;
  }
  dw_rq rs;
  memset(&rs, 0, sizeof rs); /* groups past the tail stay unused */
  if (r->rq) dw_rq_init(&rs, r->rq, c0, cn);
  const size_t span = (kw - 1) * dilation;
  for (size_t x = 0; x < r->out_w; ++x) {
    const ptrdiff_t ix0 = (ptrdiff_t)(x * stride) - (ptrdiff_t)r->pad_left;
    dw_acc a = start;
    if (ix0 >= 0 && (size_t)ix0 + span < r->in_w) {
      /* Only full int8 blocks are marked: a region name appears once. */
      const bool marked = full && !u8;
      if (marked) dw_mca_begin(mca, pairs);
      dw_pixel(r, kh, kw, dilation, ix0, c0, cn, full, u8, true, pairs, w, &a);
      if (marked) dw_mca_end(mca);
    } else {
      dw_pixel(r, kh, kw, dilation, ix0, c0, cn, full, u8, false, pairs, w, &a);
    }
    dw_store((unsigned char *)r->out + (x * r->channels + c0) * out_elem, cn, full, &a, r->rq,
             &rs);
  }
}

DW_INLINE void dw_row_marked(const q8_dwconv_row *r, size_t kh, size_t kw, size_t stride,
                             size_t dilation, bool u8, bool dedicated, int mca) {
  const unsigned char *packed = r->packed;
  const size_t block_bytes = dw_block_bytes(kh * kw);
  for (size_t c0 = 0; c0 < r->channels; c0 += DW_CT) {
    const size_t cn = r->channels - c0 < DW_CT ? r->channels - c0 : DW_CT;
    const unsigned char *block = packed + c0 / DW_CT * block_bytes;
    const bool pairs = ((const int32_t *)(const void *)block)[DW_CT] != 0;
    if (cn == DW_CT) {
      if (pairs) {
        dw_block(r, kh, kw, stride, dilation, u8, dedicated, mca, true, true, c0, cn, block);
      } else {
        dw_block(r, kh, kw, stride, dilation, u8, dedicated, mca, true, false, c0, cn, block);
      }
    } else {
      if (pairs) {
        dw_block(r, kh, kw, stride, dilation, u8, dedicated, mca, false, true, c0, cn, block);
      } else {
        dw_block(r, kh, kw, stride, dilation, u8, dedicated, mca, false, false, c0, cn, block);
      }
    }
  }
}

#define dw_row(r, kh, kw, s, d, u8, ded) dw_row_marked(r, kh, kw, s, d, u8, ded, DW_MCA_NONE)
#define dw_row_3x3s1(r, kh, kw, s, d, u8, ded) dw_row_marked(r, kh, kw, s, d, u8, ded, DW_MCA_3X3S1)
#define dw_row_3x3s2(r, kh, kw, s, d, u8, ded) dw_row_marked(r, kh, kw, s, d, u8, ded, DW_MCA_3X3S2)
#define dw_row_5x5s1(r, kh, kw, s, d, u8, ded) dw_row_marked(r, kh, kw, s, d, u8, ded, DW_MCA_5X5S1)
#define dw_row_5x5s2(r, kh, kw, s, d, u8, ded) dw_row_marked(r, kh, kw, s, d, u8, ded, DW_MCA_5X5S2)

static size_t dw_packed_bytes(size_t channels, size_t taps) {
  return (channels + DW_CT - 1) / DW_CT * dw_block_bytes(taps);
}

static void dw_pack(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                    void *packed) {
  for (size_t c0 = 0; c0 < channels; c0 += DW_CT) {
    unsigned char *block = (unsigned char *)packed + c0 / DW_CT * dw_block_bytes(taps);
    int32_t *header = (int32_t *)(void *)block;
    int8_t *bw = (int8_t *)(block + DW_HEADER_BYTES);
    bool pairs = true;
    for (size_t i = 0; i < DW_CT; ++i) {
      const size_t c = c0 + i;
      for (size_t t = 0; t < taps; ++t) {
        const int8_t v = c < channels ? w[c * taps + t] : 0;
        bw[t * DW_CT + i] = v;
        /* Taps (2j, 2j + 1) are summed together (dw_pixel). */
        if (t % 2 == 1) pairs &= !(v == INT8_MIN && bw[(t - 1) * DW_CT + i] == INT8_MIN);
      }
      header[i] = c < channels ? col_term[c] : 0;
    }
    header[DW_CT] = pairs;
    for (size_t i = 1; i < 4; ++i) header[DW_CT + i] = 0;
  }
}

DW_DEFINE_WITH(q8_dwconv_x8s8_3x3s1c16__neon, dw_row_3x3s1, dw_pack, 3, 3, 1)
DW_DEFINE_WITH(q8_dwconv_x8s8_3x3s2c16__neon, dw_row_3x3s2, dw_pack, 3, 3, 2)
DW_DEFINE_WITH(q8_dwconv_x8s8_5x5s1c16__neon, dw_row_5x5s1, dw_pack, 5, 5, 1)
DW_DEFINE_WITH(q8_dwconv_x8s8_5x5s2c16__neon, dw_row_5x5s2, dw_pack, 5, 5, 2)
DW_DEFINE_GENERIC(q8_dwconv_x8s8_generic_c16__neon)
