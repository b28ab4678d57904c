/* NEON quantize, dequantize and requantize (Armv8.0), bit-identical to
 * kernels/ref/quantize.c and kernels/ref/requantize.c. Chosen over Highway's
 * NEON target because the instructions map one to one onto the reference's
 * steps, where Highway's portable formulations cost 2.5-4x the instructions
 * per element (fcvtns / fcvtas round exactly as nearbyintf / roundf and turn
 * NaN into 0, sqrdmulh + srshl are gemmlowp's two roundings, smull + srshl the
 * single rounding; Highway emulates these with masks and magic constants, and
 * narrows 4 lanes per store). Requantization is kernels/arm/requant_neon.h.
 *
 * Layout: element i has channel (i / inner) % channels. Work is split into
 * spans: per tensor, the whole array with broadcast parameters; inner == 1,
 * one row of consecutive channels per span (parameters loaded per lane);
 * inner >= 16, one run of `inner` elements of one channel per span. Other
 * per-channel layouts (1 < inner < 16, rare) run the scalar reference.
 * Spans go 16 elements at a time; a span's tail runs the same code on a
 * zero-padded stack copy, so no load or store leaves the caller's arrays. */
#include <arm_neon.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/arm/requant_neon.h"
#include "q8/kernels.h"

#define QN_INLINE static inline __attribute__((always_inline))
#define QN_BLOCK 16

/* Walks the spans of a layout: span(ctx, start, n, channel, per_lane) where
 * per_lane means element start + j has channel channel + j, else all have
 * `channel`. Returns false for the layouts left to the reference. */
typedef void (*qn_span_fn)(const void *ctx, size_t start, size_t n, size_t channel, bool per_lane);

static bool qn_walk(size_t count, size_t inner, size_t channels, qn_span_fn span,
                    const void *ctx) {
  if (channels == 1) {
    span(ctx, 0, count, 0, false);
  } else if (inner == 1) {
    for (size_t i = 0; i < count; i += channels) {
      span(ctx, i, count - i < channels ? count - i : channels, 0, true);
    }
  } else if (inner >= QN_BLOCK) {
    for (size_t i = 0; i < count; i += inner) {
      span(ctx, i, count - i < inner ? count - i : inner, i / inner % channels, false);
    }
  } else {
    return false;
  }
  return true;
}

/* Channels of the 4 lanes of group g of a block: broadcast or consecutive. */
QN_INLINE size_t qn_lanes(size_t n, size_t b, size_t g) {
  const size_t first = b + 4 * g;
  return first >= n ? 0 : n - first < 4 ? n - first : 4;
}

/* Scale and zero point of channels [c, c + lanes) (lanes 1..4; lanes past
 * them get scale 1 and zero point 0, never read from the arrays), or of
 * channel c broadcast. A NULL zero_point array is all zeros. */
QN_INLINE void qn_load_params(const q8_quant_params *p, size_t c, size_t lanes, bool per_lane,
                              float32x4_t *scale, int32x4_t *zp) {
  if (!per_lane) {
    *scale = vdupq_n_f32(p->scale[c]);
    *zp = vdupq_n_s32(p->zero_point ? p->zero_point[c] : 0);
  } else if (lanes == 4) {
    *scale = vld1q_f32(p->scale + c);
    *zp = p->zero_point ? vld1q_s32(p->zero_point + c) : vdupq_n_s32(0);
  } else {
    float s[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    int32_t z[4] = {0, 0, 0, 0};
    memcpy(s, p->scale + c, lanes * sizeof(float));
    if (p->zero_point) memcpy(z, p->zero_point + c, lanes * sizeof(int32_t));
    *scale = vld1q_f32(s);
    *zp = vld1q_s32(z);
  }
}

/* ---- quantize ------------------------------------------------------------ */
typedef struct qn_quant_ctx {
  const float *x;
  const q8_quant_params *p;
  q8_rounding rounding;
  q8_scale_op scale_op;
  unsigned char *out;
} qn_quant_ctx;

typedef struct qn_qgroup {
  float32x4_t scale; /* the divisor, or its float reciprocal */
  float32x4_t lo, hi; /* dtype min - zp, max - zp */
  int32x4_t zp;
} qn_qgroup;

/* Parameters of channels [c, c + lanes) (lanes 1..4), or channel c broadcast. */
QN_INLINE qn_qgroup qn_qgroup_init(const qn_quant_ctx *q, size_t c, size_t lanes, bool per_lane) {
  const q8_quant_params *p = q->p;
  qn_qgroup g;
  qn_load_params(p, c, lanes, per_lane, &g.scale, &g.zp);
  /* The reciprocal rounded to float first, as the reference's 1.0f / scale. */
  if (q->scale_op == Q8_SCALE_RECIPROCAL) g.scale = vdivq_f32(vdupq_n_f32(1.0f), g.scale);
  const int32_t min = p->dtype == Q8_UINT8 ? 0 : -128, max = p->dtype == Q8_UINT8 ? 255 : 127;
  g.lo = vcvtq_f32_s32(vsubq_s32(vdupq_n_s32(min), g.zp)); /* small integers: exact */
  g.hi = vcvtq_f32_s32(vsubq_s32(vdupq_n_s32(max), g.zp));
  return g;
}

/* One float operation, a clamp that keeps NaN (fmax/fmin, not the *nm
 * forms), then fcvtns (ties to even) or fcvtas (ties away), which map NaN to
 * 0: NaN input (or 0 * inf) becomes the zero point, as in the reference. */
QN_INLINE int32x4_t qn_quantize4(float32x4_t x, const qn_qgroup *g, bool divide, bool even) {
  float32x4_t v = divide ? vdivq_f32(x, g->scale) : vmulq_f32(x, g->scale);
  v = vminq_f32(vmaxq_f32(v, g->lo), g->hi);
  return vaddq_s32(even ? vcvtnq_s32_f32(v) : vcvtaq_s32_f32(v), g->zp);
}

/* 16 elements (left of them real) at x -> out; b is their offset in the span. */
QN_INLINE void qn_quantize_block(const qn_quant_ctx *q, const float *x, unsigned char *out,
                                 size_t left, size_t n, size_t b, size_t channel, bool per_lane,
                                 bool divide, bool even, qn_qgroup *g) {
  int32x4_t r[4];
#pragma GCC unroll 4 /* parameters and results stay in registers */
  for (size_t k = 0; k < 4; ++k) {
    if (per_lane) {
      const size_t lanes = qn_lanes(n, b, k);
      if (lanes == 0) {
        r[k] = vdupq_n_s32(0);
        continue;
      }
      g[k] = qn_qgroup_init(q, channel + b + 4 * k, lanes, true);
    }
    r[k] = qn_quantize4(vld1q_f32(x + 4 * k), &g[k], divide, even);
  }
  q8_rqn_store(out, left, q8_rqn_narrow16(r[0], r[1], r[2], r[3]));
}

QN_INLINE void qn_quantize_span_as(const qn_quant_ctx *q, size_t start, size_t n, size_t channel,
                                   bool per_lane, bool divide, bool even) {
  qn_qgroup g[4];
  if (!per_lane) g[0] = g[1] = g[2] = g[3] = qn_qgroup_init(q, channel, 4, false);
  /* Locals: stores through the byte output could alias the context. */
  const float *x = q->x + start;
  unsigned char *out = q->out + start;
  size_t b = 0;
  for (; n - b >= QN_BLOCK; b += QN_BLOCK) {
    qn_quantize_block(q, x + b, out + b, QN_BLOCK, n, b, channel, per_lane, divide, even, g);
  }
  if (b < n) {
    float tail[QN_BLOCK] = {0};
    memcpy(tail, x + b, (n - b) * sizeof(float));
    qn_quantize_block(q, tail, out + b, n - b, n, b, channel, per_lane, divide, even, g);
  }
}

QN_INLINE void qn_quantize_span_by(const qn_quant_ctx *q, size_t start, size_t n, size_t channel,
                                   bool per_lane, bool divide, bool even) {
  if (divide) {
    if (even) {
      qn_quantize_span_as(q, start, n, channel, per_lane, true, true);
    } else {
      qn_quantize_span_as(q, start, n, channel, per_lane, true, false);
    }
  } else {
    if (even) {
      qn_quantize_span_as(q, start, n, channel, per_lane, false, true);
    } else {
      qn_quantize_span_as(q, start, n, channel, per_lane, false, false);
    }
  }
}

static void qn_quantize_span(const void *ctx, size_t start, size_t n, size_t channel,
                             bool per_lane) {
  const qn_quant_ctx *q = ctx;
  const bool divide = q->scale_op != Q8_SCALE_RECIPROCAL;
  const bool even = q->rounding != Q8_ROUND_HALF_AWAY;
  /* The choices as constants inside each copy of the loop. */
  if (per_lane) {
    qn_quantize_span_by(q, start, n, channel, true, divide, even);
  } else {
    qn_quantize_span_by(q, start, n, channel, false, divide, even);
  }
}

void q8_neon_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                      q8_rounding rounding, q8_scale_op scale_op, void *out) {
  const qn_quant_ctx q = {x, p, rounding, scale_op, out};
  if (!qn_walk(count, inner, p->channels, qn_quantize_span, &q)) {
    q8_ref_quantize(x, count, inner, p, rounding, scale_op, out);
  }
}

/* ---- dequantize ---------------------------------------------------------- */
typedef struct qn_dequant_ctx {
  const unsigned char *q;
  const q8_quant_params *p;
  float *out;
} qn_dequant_ctx;

QN_INLINE void qn_dequantize_block(const q8_quant_params *p, const unsigned char *q, float *out,
                                   size_t left, size_t n, size_t b, size_t channel,
                                   bool per_lane, bool u8, float32x4_t *scale, int32x4_t *zp) {
  const uint8x16_t bytes = vld1q_u8(q);
  /* Widened to int32 (any zero point), then (float)(v - zp) * scale. */
  int16x8_t half[2];
  if (u8) {
    half[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(bytes)));
    half[1] = vreinterpretq_s16_u16(vmovl_high_u8(bytes));
  } else {
    half[0] = vmovl_s8(vget_low_s8(vreinterpretq_s8_u8(bytes)));
    half[1] = vmovl_high_s8(vreinterpretq_s8_u8(bytes));
  }
  float32x4_t y[4];
#pragma GCC unroll 4 /* parameters and results stay in registers */
  for (size_t k = 0; k < 4; ++k) {
    if (per_lane) {
      const size_t lanes = qn_lanes(n, b, k);
      if (lanes == 0) {
        y[k] = vdupq_n_f32(0.0f);
        continue;
      }
      qn_load_params(p, channel + b + 4 * k, lanes, true, &scale[k], &zp[k]);
    }
    const int32x4_t v = k % 2 ? vmovl_high_s16(half[k / 2]) : vmovl_s16(vget_low_s16(half[k / 2]));
    y[k] = vmulq_f32(vcvtq_f32_s32(vsubq_s32(v, zp[k])), scale[k]);
  }
  if (left == QN_BLOCK) {
#pragma GCC unroll 4
    for (size_t k = 0; k < 4; ++k) vst1q_f32(out + 4 * k, y[k]);
  } else {
    float tail_out[QN_BLOCK];
    for (size_t k = 0; k < 4; ++k) vst1q_f32(tail_out + 4 * k, y[k]);
    memcpy(out, tail_out, left * sizeof(float));
  }
}

QN_INLINE void qn_dequantize_span_as(const qn_dequant_ctx *d, size_t start, size_t n,
                                     size_t channel, bool per_lane, bool u8) {
  float32x4_t scale[4];
  int32x4_t zp[4];
  if (!per_lane) {
    qn_load_params(d->p, channel, 1, false, &scale[0], &zp[0]);
    for (size_t k = 1; k < 4; ++k) scale[k] = scale[0], zp[k] = zp[0];
  }
  const q8_quant_params *p = d->p;
  const unsigned char *q = d->q + start;
  float *out = d->out + start;
  size_t b = 0;
  for (; n - b >= QN_BLOCK; b += QN_BLOCK) {
    qn_dequantize_block(p, q + b, out + b, QN_BLOCK, n, b, channel, per_lane, u8, scale, zp);
  }
  if (b < n) {
    unsigned char tail[QN_BLOCK] = {0};
    memcpy(tail, q + b, n - b);
    qn_dequantize_block(p, tail, out + b, n - b, n, b, channel, per_lane, u8, scale, zp);
  }
}

static void qn_dequantize_span(const void *ctx, size_t start, size_t n, size_t channel,
                               bool per_lane) {
  const qn_dequant_ctx *d = ctx;
  const bool u8 = d->p->dtype == Q8_UINT8;
  if (per_lane) {
    qn_dequantize_span_as(d, start, n, channel, true, u8);
  } else {
    qn_dequantize_span_as(d, start, n, channel, false, u8);
  }
}

void q8_neon_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                        float *out) {
  const qn_dequant_ctx d = {q, p, out};
  if (!qn_walk(count, inner, p->channels, qn_dequantize_span, &d)) {
    q8_ref_dequantize(q, count, inner, p, out);
  }
}

/* ---- requantize ---------------------------------------------------------- */
typedef struct qn_requant_ctx {
  const int32_t *acc;
  const q8_requant_params *p;
  unsigned char *out;
} qn_requant_ctx;

/* rq with channel c's parameters as per-tensor ones (null arrays stay null). */
static q8_requant_params qn_requant_channel(const q8_requant_params *p, size_t c) {
  q8_requant_params one = *p;
  one.channels = 1;
  if (p->multiplier) one.multiplier = p->multiplier + c;
  if (p->shift) one.shift = p->shift + c;
  if (p->scale) one.scale = p->scale + c;
  return one;
}

QN_INLINE void qn_requantize_block(const q8_requant_params *p, const int32_t *acc,
                                   unsigned char *out, size_t left, size_t n, size_t b,
                                   size_t channel, bool per_lane, q8_requant_mode mode,
                                   q8_rqn *g) {
  int32x4_t q[4];
#pragma GCC unroll 4 /* parameters and results stay in registers */
  for (size_t k = 0; k < 4; ++k) {
    if (per_lane) {
      const size_t lanes = qn_lanes(n, b, k);
      if (lanes == 0) {
        q[k] = vdupq_n_s32(0);
        continue;
      }
      q8_rqn_init(&g[k], p, channel + b + 4 * k, lanes);
    }
    q[k] = q8_rqn_apply(&g[k], mode, vld1q_s32(acc + 4 * k));
  }
  q8_rqn_store(out, left, q8_rqn_narrow16(q[0], q[1], q[2], q[3]));
}

QN_INLINE void qn_requantize_span_as(const qn_requant_ctx *r, size_t start, size_t n,
                                     size_t channel, bool per_lane, q8_requant_mode mode) {
  q8_rqn g[4];
  if (!per_lane) {
    const q8_requant_params one = qn_requant_channel(r->p, channel);
    q8_rqn_init(&g[0], &one, 0, 4);
    g[1] = g[2] = g[3] = g[0];
  }
  const q8_requant_params *p = r->p;
  const int32_t *acc = r->acc + start;
  unsigned char *out = r->out + start;
  size_t b = 0;
  for (; n - b >= QN_BLOCK; b += QN_BLOCK) {
    qn_requantize_block(p, acc + b, out + b, QN_BLOCK, n, b, channel, per_lane, mode, g);
  }
  if (b < n) {
    int32_t tail[QN_BLOCK] = {0};
    memcpy(tail, acc + b, (n - b) * sizeof(int32_t));
    qn_requantize_block(p, tail, out + b, n - b, n, b, channel, per_lane, mode, g);
  }
}

/* The mode and per_lane as constants inside each copy of the loop. */
QN_INLINE void qn_requantize_span_by(const qn_requant_ctx *r, size_t start, size_t n,
                                     size_t channel, bool per_lane) {
  switch (r->p->mode) {
    case Q8_REQUANT_GEMMLOWP:
      qn_requantize_span_as(r, start, n, channel, per_lane, Q8_REQUANT_GEMMLOWP);
      break;
    case Q8_REQUANT_SINGLE:
      qn_requantize_span_as(r, start, n, channel, per_lane, Q8_REQUANT_SINGLE);
      break;
    case Q8_REQUANT_FP32:
    default:
      qn_requantize_span_as(r, start, n, channel, per_lane, Q8_REQUANT_FP32);
      break;
  }
}

static void qn_requantize_span(const void *ctx, size_t start, size_t n, size_t channel,
                               bool per_lane) {
  const qn_requant_ctx *r = ctx;
  if (per_lane) {
    qn_requantize_span_by(r, start, n, channel, true);
  } else {
    qn_requantize_span_by(r, start, n, channel, false);
  }
}

void q8_neon_requantize(const int32_t *acc, size_t count, size_t inner,
                        const q8_requant_params *p, void *out) {
  const qn_requant_ctx r = {acc, p, out};
  if (!qn_walk(count, inner, p->channels, qn_requantize_span, &r)) {
    q8_ref_requantize(acc, count, inner, p, out);
  }
}
