/* Depthwise convolution: the helpers every depthwise kernel shares (column
 * terms, the multiplier expansion, the paired-tap packing of the vector
 * kernels) and the portable scalar kernel, the fallback of every ISA. */
#include <string.h>

#include "q8/kernels.h"

void q8_dwconv_col_terms(size_t channels, size_t taps, const int8_t *w, const int32_t *bias,
                         int32_t zero_point, int32_t *col_term) {
  for (size_t c = 0; c < channels; ++c) {
    int64_t sum = 0;
    for (size_t t = 0; t < taps; ++t) sum += w[c * taps + t];
    /* Modulo 2^32 on purpose: only the final accumulator has to fit int32. */
    const uint32_t term = (uint32_t)(bias ? bias[c] : 0) - (uint32_t)((int64_t)zero_point * sum);
    col_term[c] = (int32_t)term;
  }
}

void q8_dwconv_expand_row(const uint8_t *in, size_t width, size_t channels, size_t multiplier,
                          uint8_t *out) {
  for (size_t i = 0; i < width * channels; ++i) {
    memset(out + i * multiplier, in[i], multiplier);
  }
}

/* Channel of accumulator slot `slot` (0..ct-1) of a block: slots [0, ct/2)
 * are the unpack-low vector, [ct/2, ct) the unpack-high one. */
static size_t slot_channel(unsigned ct, size_t slot) {
  const size_t half = ct / 2, high = slot >= half, lane = slot % half;
  return 8 * (lane / 4) + 4 * high + lane % 4;
}

static size_t pairs_block_bytes(unsigned ct, size_t taps) {
  return ct * sizeof(int32_t) + (taps + 1) / 2 * ct * 2 * sizeof(int16_t);
}

size_t q8_dwconv_pack_pairs_bytes(unsigned ct, size_t channels, size_t taps) {
  return (channels + ct - 1) / ct * pairs_block_bytes(ct, taps);
}

void q8_dwconv_pack_pairs(unsigned ct, size_t channels, size_t taps, const int8_t *w,
                          const int32_t *col_term, void *packed) {
  q8_dwconv_pack_pairs_ordered(ct, channels, taps, w, col_term, NULL, taps, packed);
}

void q8_dwconv_pack_pairs_ordered(unsigned ct, size_t channels, size_t taps, const int8_t *w,
                                  const int32_t *col_term, const uint8_t *order,
                                  size_t positions, void *packed) {
  const size_t pairs = (positions + 1) / 2;
  for (size_t c0 = 0; c0 < channels; c0 += ct) {
    unsigned char *block = (unsigned char *)packed + c0 / ct * pairs_block_bytes(ct, positions);
    int32_t *terms = (int32_t *)(void *)block;
    int16_t *words = (int16_t *)(void *)(block + ct * sizeof(int32_t));
    for (size_t slot = 0; slot < ct; ++slot) {
      const size_t c = c0 + slot_channel(ct, slot);
      terms[slot] = c < channels ? col_term[c] : 0;
      for (size_t p = 0; p < pairs; ++p) {
        for (size_t e = 0; e < 2; ++e) {
          const size_t at = 2 * p + e, t = order == NULL ? at : at < positions ? order[at] : taps;
          words[(p * ct + slot) * 2 + e] = c < channels && t < taps ? w[c * taps + t] : 0;
        }
      }
    }
  }
}

/* ---- the scalar kernel: col_term[channels] then w[channels][taps] -------- */
static size_t ref_packed_bytes(size_t channels, size_t taps) {
  return channels * (sizeof(int32_t) + taps);
}

static void ref_pack(size_t channels, size_t taps, const int8_t *w, const int32_t *col_term,
                     void *packed) {
  memcpy(packed, col_term, channels * sizeof(int32_t));
  memcpy((unsigned char *)packed + channels * sizeof(int32_t), w, channels * taps);
}

static int32_t load_x(const void *p, size_t i, q8_dtype dtype) {
  return dtype == Q8_UINT8 ? ((const uint8_t *)p)[i] : ((const int8_t *)p)[i];
}

static void ref_run_one(const q8_dwconv_row *r) {
  const size_t channels = r->channels, taps = r->kernel_h * r->kernel_w;
  const int32_t *col_term = r->packed;
  const int8_t *w = (const int8_t *)((const int32_t *)r->packed + channels);
  for (size_t x = 0; x < r->out_w; ++x) {
    for (size_t c = 0; c < channels; ++c) {
      uint32_t acc = (uint32_t)col_term[c];
      for (size_t ky = 0; ky < r->kernel_h; ++ky) {
        for (size_t kx = 0; kx < r->kernel_w; ++kx) {
          /* Unsigned: a column left of the input wraps to a huge value, which
           * is then >= in_w like one right of it. */
          const size_t ix = x * r->stride_w + kx * r->dilation_w - r->pad_left;
          const int32_t v = ix < r->in_w ? load_x(r->rows[ky], ix * channels + c, r->in_dtype)
                                         : load_x(r->zero_pixel, c, r->in_dtype);
          acc += (uint32_t)(v * w[c * taps + ky * r->kernel_w + kx]);
        }
      }
      const size_t at = x * channels + c;
      if (r->rq == NULL) {
        /* memcpy: the output need not be 4-byte aligned (the vector kernels
         * store unaligned too). */
        const int32_t value = (int32_t)acc;
        memcpy((unsigned char *)r->out + at * sizeof value, &value, sizeof value);
        continue;
      }
      const int32_t q = q8_ref_requantize_one((int32_t)acc, r->rq, r->rq->channels == 1 ? 0 : c);
      if (r->rq->out_dtype == Q8_UINT8) {
        ((uint8_t *)r->out)[at] = (uint8_t)q;
      } else {
        ((int8_t *)r->out)[at] = (int8_t)q;
      }
    }
  }
}

static void ref_run(const q8_dwconv_row *r) {
  for (size_t i = 0; i < q8_dwconv_out_rows(r); ++i) {
    const q8_dwconv_row one = q8_dwconv_row_at(r, i);
    ref_run_one(&one);
  }
}

const q8_dwconv_ukernel q8_dwconv_x8s8_generic_c1__ref = {
    .name = "q8_dwconv_x8s8_generic_c1__ref", .channel_tile = 1,
    .packed_bytes = ref_packed_bytes, .pack = ref_pack, .run = ref_run};
