/* ONNX's quantized operators (default domain) on q8's own kernels, through
 * the public API: QuantizeLinear and DequantizeLinear (q8_quantize and
 * q8_dequantize with the ONNX profile), DynamicQuantizeLinear, QLinearMatMul
 * and MatMulInteger (q8_gemm_plan), QLinearConv and ConvInteger
 * (q8_conv_plan). The integer arithmetic is never emulated in float.
 *
 * Mapping onto the plans, exactly:
 * - The plans take int8 weights. uint8 weights become w - 128 with zero
 *   point zp - 128: (w - 128) - (zp - 128) = w - zp, and both stay in int8.
 * - The GEMM plan takes per-channel weight zero points. The conv plan does
 *   not: when w - zp fits int8 for every weight, the weights passed are
 *   w - zp; otherwise (e.g. uint8 weights near 255 with zero point 0)
 *   acc = conv(w') - zp'[oc] * S, where S is the window sum of x - x_zp per
 *   group, computed by a second conv plan with all-one weights, all in int32
 *   (wrapping, as the true result fits int32 whenever ONNX's does).
 * - ONNX is NCHW; the conv plan NHWC: inputs and outputs are transposed
 *   around it (weights stay OIHW: the plan accepts that layout).
 * Plans are created on a node's first run and kept in its state slot while
 * shapes stay the same and every input they depend on is constant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "q8/q8.h"
#include "quant/exec_ops.h"

#define TYPE(t) Q8_EXEC_TYPE(Q8_ELEM_##t)
#define INT8_TYPES (TYPE(INT8) | TYPE(UINT8))

static q8_dtype dtype_of(q8_elem_type t) {
  switch (t) {
  case Q8_ELEM_INT8: return Q8_INT8;
  case Q8_ELEM_UINT8: return Q8_UINT8;
  case Q8_ELEM_INT32: return Q8_INT32;
  default: return Q8_FLOAT32;
  }
}

static size_t span(const int64_t *dims, int from, int to) {
  size_t n = 1;
  for (int d = from; d < to; ++d) n *= (size_t)dims[d];
  return n;
}

static int32_t load_int(const q8_exec_value *v, size_t i) {
  switch (v->type) {
  case Q8_ELEM_INT8: return ((const int8_t *)v->data)[i];
  case Q8_ELEM_UINT8: return ((const uint8_t *)v->data)[i];
  default: return ((const int32_t *)v->data)[i];
  }
}

/* ---- scales and zero points --------------------------------------------------------- */

/* Scale and zero point of one tensor: per tensor, or per channel along an
 * axis of `len` entries (len 0: per tensor only). */
typedef struct qparams {
  size_t channels;
  float *scale;          /* NULL when no scale input was read */
  int32_t *zero_point;   /* channels entries, 0 when absent */
  q8_elem_type zp_type;  /* UNDEFINED when absent */
} qparams;

static void qparams_free(qparams *q) {
  free(q->scale);
  free(q->zero_point);
  *q = (qparams){0};
}

/* Reads scale input ks (-1: none) and zero-point input kz (-1: none, or
 * omitted) of `zp_types`. Their element counts must be 1 or len and agree. */
static q8_status qparams_read(const q8_exec_ctx *c, int ks, int kz, unsigned zp_types, size_t len, qparams *q) {
  *q = (qparams){.channels = 1};
  const q8_exec_value *s = NULL, *z = kz >= 0 ? q8_exec_input(c, (size_t)kz) : NULL;
  q8_status st;
  if (ks >= 0 && (st = q8_exec_input_typed(c, (size_t)ks, TYPE(FLOAT), &s))) return st;
  if (z && (st = q8_exec_input_typed(c, (size_t)kz, zp_types, &z))) return st;
  const size_t n = s ? s->count : z ? z->count : 1;
  if ((n != 1 && n != len) || (s && z && z->count != n) || (s && s->rank > 1) || (z && z->rank > 1)) {
    char a[160], b[160];
    const q8_exec_value *v = s ? s : z;
    return q8_exec_fail(c, Q8_ERR_ARG, "'%s' %s%s%s must be a scalar or 1-D of %zu entries (the quantized axis)%s",
                        q8_exec_input_name(c, (size_t)(s ? ks : kz)), q8_exec_shape_str(v->rank, v->dims, a, sizeof a),
                        s && z ? " and its zero point " : "", s && z ? q8_exec_shape_str(z->rank, z->dims, b, sizeof b) : "",
                        len, s && z ? ", of the same shape" : "");
  }
  q->channels = n;
  q->scale = malloc(n * sizeof *q->scale);
  q->zero_point = calloc(n, sizeof *q->zero_point);
  if (!q->scale || !q->zero_point) {
    qparams_free(q);
    return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; ++i) {
    q->scale[i] = s ? ((const float *)s->data)[i] : 1.0f;
    if (s && !(isfinite(q->scale[i]) && q->scale[i] > 0.0f)) {
      const double bad = q->scale[i];
      qparams_free(q);
      return q8_exec_fail(c, Q8_ERR_SCALE, "scale '%s'[%zu] = %g: a scale must be finite and > 0",
                          q8_exec_input_name(c, (size_t)ks), i, bad);
    }
    if (z) q->zero_point[i] = load_int(z, i);
  }
  if (!s) {
    free(q->scale);
    q->scale = NULL;
  }
  q->zp_type = z ? z->type : Q8_ELEM_UNDEFINED;
  return Q8_OK;
}

/* A per-tensor parameter that ONNX allows per row: accepted when every row
 * has the same value (then it is per tensor), else beyond the plans. */
static q8_status per_tensor(const q8_exec_ctx *c, const qparams *q, const char *what) {
  for (size_t i = 1; i < q->channels; ++i) {
    if (q->zero_point[i] != q->zero_point[0] || (q->scale && q->scale[i] != q->scale[0])) {
      return q8_exec_fail(c, Q8_ERR_UNSUPPORTED, "per-row %s of input A is not supported (only per tensor)", what);
    }
  }
  return Q8_OK;
}

/* The axis attribute (default 1) of QuantizeLinear / DequantizeLinear, and
 * the element layout it implies. */
static q8_status quant_axis(const q8_exec_ctx *c, const q8_exec_value *x, size_t *len, size_t *inner) {
  int64_t axis;
  q8_status st = q8_node_attr_int(c->node, "axis", 1, &axis);
  if (st) return st;
  *len = 0;
  *inner = 1;
  if (x->rank == 0) return Q8_OK;
  if (axis < -x->rank || axis >= x->rank) {
    /* Only a per-axis scale needs the axis; per tensor ignores it. */
    const q8_exec_value *scale = q8_exec_input(c, 1);
    if (scale && scale->count > 1) {
      return q8_exec_fail(c, Q8_ERR_ARG, "axis %lld is outside the input's rank %d", (long long)axis, x->rank);
    }
    return Q8_OK;
  }
  const int a = (int)(axis < 0 ? axis + x->rank : axis);
  *len = (size_t)x->dims[a];
  *inner = span(x->dims, a + 1, x->rank);
  return Q8_OK;
}

/* ---- QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear ------------------------------ */

static q8_status op_quantize_linear(q8_exec_ctx *c) {
  const q8_exec_value *x;
  size_t len, inner;
  qparams q;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, TYPE(FLOAT), &x)) || (st = quant_axis(c, x, &len, &inner)) ||
      (st = qparams_read(c, 1, 2, INT8_TYPES, len, &q))) {
    return st;
  }
  /* No zero point: uint8 with zero point 0. */
  const q8_elem_type out_type = q.zp_type == Q8_ELEM_UNDEFINED ? Q8_ELEM_UINT8 : q.zp_type;
  q8_exec_value *y;
  if (!(st = q8_exec_output(c, 0, out_type, x->rank, x->dims, &y)) && y && x->count) {
    const q8_quant_params p = {.dtype = dtype_of(out_type), .channels = q.channels, .scale = q.scale,
                               .zero_point = q.zero_point};
    if ((st = q8_quantize(x->data, x->count, inner, &p, q8_profile_get(Q8_PROFILE_ONNX), y->data))) {
      st = q8_exec_fail(c, st, "%s", q8_error_detail());
    }
  }
  qparams_free(&q);
  return st;
}

static q8_status op_dequantize_linear(q8_exec_ctx *c) {
  const q8_exec_value *x;
  size_t len, inner;
  qparams q;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, INT8_TYPES | TYPE(INT32), &x)) || (st = quant_axis(c, x, &len, &inner)) ||
      (st = qparams_read(c, 1, 2, Q8_EXEC_TYPE(x->type), len, &q))) {
    return st;
  }
  q8_exec_value *y;
  if (!(st = q8_exec_output(c, 0, Q8_ELEM_FLOAT, x->rank, x->dims, &y)) && y) {
    float *py = y->data;
    if (x->type == Q8_ELEM_INT32) {
      /* As ONNX defines it: (x - zero_point) * scale, the difference exact before its one rounding to float. */
      for (size_t i = 0; i < x->count; ++i) {
        const size_t ch = q.channels == 1 ? 0 : (i / inner) % q.channels;
        py[i] = (float)((int64_t)((const int32_t *)x->data)[i] - q.zero_point[ch]) * q.scale[ch];
      }
    } else if (x->count) {
      const q8_quant_params p = {.dtype = dtype_of(x->type), .channels = q.channels, .scale = q.scale,
                                 .zero_point = q.zero_point};
      if ((st = q8_dequantize(x->data, x->count, inner, &p, py))) st = q8_exec_fail(c, st, "%s", q8_error_detail());
    }
  }
  qparams_free(&q);
  return st;
}

/* ONNX's reference, in float32 throughout:
 *   scale = (max(0, max x) - min(0, min x)) / 255
 *   zero_point = saturate(round_half_even(0 - min / scale)), uint8
 *   y = saturate(round_half_even(x / scale) + zero_point)
 * An input of zeros only (or empty) has range 0: scale 0, zero point 0, y 0
 * (the formulas would divide by 0). */
static q8_status op_dynamic_quantize_linear(q8_exec_ctx *c) {
  const q8_exec_value *x;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, TYPE(FLOAT), &x))) return st;
  const float *px = x->data;
  float hi = 0.0f, lo = 0.0f;
  for (size_t i = 0; i < x->count; ++i) {
    if (!isfinite(px[i])) return q8_exec_fail(c, Q8_ERR_ARG, "input '%s'[%zu] is %g: the range must be finite",
                                              q8_exec_input_name(c, 0), i, (double)px[i]);
    hi = px[i] > hi ? px[i] : hi;
    lo = px[i] < lo ? px[i] : lo;
  }
  const float scale = (hi - lo) / 255.0f;
  int32_t zp = 0;
  if (scale > 0.0f) {
    float z = 0.0f - lo / scale;
    z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
    zp = (int32_t)nearbyintf(z);
  }
  q8_exec_value *y, *ys, *yz;
  if ((st = q8_exec_output(c, 0, Q8_ELEM_UINT8, x->rank, x->dims, &y)) ||
      (st = q8_exec_output(c, 1, Q8_ELEM_FLOAT, 0, NULL, &ys)) ||
      (st = q8_exec_output(c, 2, Q8_ELEM_UINT8, 0, NULL, &yz))) {
    return st;
  }
  if (ys) *(float *)ys->data = scale;
  if (yz) *(uint8_t *)yz->data = (uint8_t)zp;
  if (y && x->count && scale > 0.0f) {
    const q8_quant_params p = {.dtype = Q8_UINT8, .channels = 1, .scale = &scale, .zero_point = &zp};
    if ((st = q8_quantize(px, x->count, 1, &p, q8_profile_get(Q8_PROFILE_ONNX), y->data))) {
      return q8_exec_fail(c, st, "%s", q8_error_detail());
    }
  }
  return Q8_OK;
}

/* ---- plan caches ---------------------------------------------------------------------- */

/* What a node's plans were made for: the shapes and types of its inputs.
 * Plans are reused only while this stays equal and `reusable` (every input
 * the plans bake in is constant). */
typedef struct plan_key {
  int rank[9];
  int64_t dims[9][Q8_MAX_RANK];
  q8_elem_type type[9];
} plan_key;

typedef struct plan_cache {
  plan_key key;
  bool reusable;
  size_t n_gemm;
  q8_gemm_plan **gemm;
  q8_conv_plan *conv, *window_sum;
  int32_t *w_zero_point; /* conv correction: zp'[oc], NULL when none is needed */
  q8_requant_params rq;  /* conv correction: requantization after it */
  int32_t *rq_multiplier, *rq_shift;
  float *rq_scale;
} plan_cache;

static void plan_cache_free(void *state) {
  plan_cache *p = state;
  if (!p) return;
  for (size_t i = 0; i < p->n_gemm; ++i) q8_gemm_plan_destroy(p->gemm[i]);
  free(p->gemm);
  q8_conv_plan_destroy(p->conv);
  q8_conv_plan_destroy(p->window_sum);
  free(p->w_zero_point);
  free(p->rq_multiplier);
  free(p->rq_shift);
  free(p->rq_scale);
  free(p);
}

static plan_key key_of(const q8_exec_ctx *c) {
  plan_key k;
  memset(&k, 0, sizeof k);
  for (size_t i = 0; i < 9; ++i) {
    const q8_exec_value *v = q8_exec_input(c, i);
    k.rank[i] = v ? v->rank : -1;
    k.type[i] = v ? v->type : Q8_ELEM_UNDEFINED;
    for (int d = 0; v && d < v->rank; ++d) k.dims[i][d] = v->dims[d];
  }
  return k;
}

/* Whether every input except the activation (input 0) is constant. */
static bool params_constant(const q8_exec_ctx *c) {
  for (size_t k = 1; k < c->node->n_inputs; ++k) {
    if (!q8_exec_input_constant(c, k)) return false;
  }
  return true;
}

static void cache_drop(q8_exec_ctx *c) {
  plan_cache_free(*c->state);
  *c->state = NULL;
}

/* The node's cached plans when still valid, else NULL (old ones dropped).
 * Constancy is checked again: a caller may override an initializer. */
static plan_cache *cached(q8_exec_ctx *c, const plan_key *key) {
  plan_cache *p = *c->state;
  if (p && p->reusable && memcmp(&p->key, key, sizeof *key) == 0 && params_constant(c)) return p;
  cache_drop(c);
  return NULL;
}

static plan_cache *cache_new(q8_exec_ctx *c, const plan_key *key) {
  plan_cache *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->key = *key;
  p->reusable = params_constant(c);
  *c->state = p;
  return p;
}

static q8_status plan_fail(const q8_exec_ctx *c, q8_status st) {
  return q8_exec_fail(c, st, "%s", q8_error_detail());
}

/* ---- QLinearMatMul, MatMulInteger ------------------------------------------------------ */

/* The operands of a quantized MatMul or Conv node: A (or x), B (or w),
 * the optional int32 bias, and their quantization parameters. */
typedef struct qargs {
  const q8_exec_value *a, *b, *bias;
  qparams qa, qb, qy;   /* qy.scale NULL: int32 output */
  q8_elem_type out_type;
} qargs;

/* Input positions; -1 where the operator has no such input. */
typedef struct qlayout {
  int a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, bias;
} qlayout;

static const qlayout qlinear_layout = {0, 1, 2, 3, 4, 5, 6, 7, 8};
static const qlayout integer_layout = {0, -1, 2, 1, -1, 3, -1, -1, -1};

static void qargs_free(qargs *q) {
  qparams_free(&q->qa);
  qparams_free(&q->qb);
  qparams_free(&q->qy);
}

/* Length of A's row axis and of B's column axis (matmul), or of w's output
 * channels (conv): the axes per-row / per-column parameters run along. */
static size_t a_rows(const q8_exec_value *a, bool conv) {
  return conv ? 0 : a->rank >= 2 ? (size_t)a->dims[a->rank - 2] : 1;
}
static size_t b_channels(const q8_exec_value *b, bool conv) {
  if (conv) return b->rank ? (size_t)b->dims[0] : 0;
  return b->rank >= 2 ? (size_t)b->dims[b->rank - 1] : 1;
}

/* Reads the node's inputs. Output type: y's zero point's (uint8 when
 * absent), int32 without y_scale. */
static q8_status qargs_read(const q8_exec_ctx *c, const qlayout *l, bool conv, qargs *q) {
  q8_status st;
  *q = (qargs){0};
  if ((st = q8_exec_input_typed(c, (size_t)l->a, INT8_TYPES, &q->a)) ||
      (st = q8_exec_input_typed(c, (size_t)l->b, INT8_TYPES, &q->b)) ||
      (st = qparams_read(c, l->a_scale, l->a_zp, Q8_EXEC_TYPE(q->a->type), a_rows(q->a, conv), &q->qa)) ||
      (st = qparams_read(c, l->b_scale, l->b_zp, Q8_EXEC_TYPE(q->b->type), b_channels(q->b, conv), &q->qb)) ||
      (st = qparams_read(c, l->y_scale, l->y_zp, INT8_TYPES, 0, &q->qy))) {
    return st;
  }
  if (l->bias >= 0 && q8_exec_input(c, (size_t)l->bias) &&
      (st = q8_exec_input_typed(c, (size_t)l->bias, TYPE(INT32), &q->bias))) {
    return st;
  }
  q->out_type = l->y_scale < 0 ? Q8_ELEM_INT32 : q->qy.zp_type == Q8_ELEM_UNDEFINED ? Q8_ELEM_UINT8 : q->qy.zp_type;
  return Q8_OK;
}

/* One plan per matrix of B (B's batch axes), each for m rows of A. */
static q8_status matmul_plans(const q8_exec_ctx *c, const qargs *m, const q8_exec_matmul *g, size_t rows,
                              plan_cache *p) {
  const size_t n = (size_t)g->n, k = (size_t)g->k, nk = n * k, mats = m->b->count / (nk > 0 ? nk : 1);
  const bool b_u8 = m->b->type == Q8_ELEM_UINT8;
  int8_t *w = malloc(nk > 0 ? nk : 1);
  int32_t *zp = malloc(n * sizeof *zp);
  p->gemm = calloc(mats ? mats : 1, sizeof *p->gemm);
  if (!w || !zp || !p->gemm) {
    free(w);
    free(zp);
    return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
  }
  for (size_t j = 0; j < n; ++j) zp[j] = m->qb.zero_point[m->qb.channels == 1 ? 0 : j] - (b_u8 ? 128 : 0);
  q8_status st = Q8_OK;
  for (size_t mat = 0; mat < mats && !st; ++mat) {
    /* B is K x N; the plan wants N rows of K, as int8. */
    for (size_t kk = 0; kk < k; ++kk) {
      for (size_t j = 0; j < n; ++j) {
        const int32_t v = load_int(m->b, mat * n * k + kk * n + j);
        w[j * k + kk] = (int8_t)(v - (b_u8 ? 128 : 0));
      }
    }
    const bool requant = m->qy.scale != NULL;
    const q8_gemm_desc d = {
        .m = rows, .n = n, .k = k, .a_dtype = dtype_of(m->a->type), .a_zero_point = m->qa.zero_point[0],
        .a_scale = requant ? m->qa.scale[0] : 0.0f, .weights = w, .w_channels = requant ? m->qb.channels : 1,
        .w_scales = requant ? m->qb.scale : NULL, .w_zero_points = zp, .out_dtype = dtype_of(m->out_type),
        .requant = Q8_REQUANT_FP32, .out_scale = requant ? m->qy.scale[0] : 0.0f,
        .out_zero_point = m->qy.zero_point[0]};
    if ((st = q8_gemm_plan_create(&d, &p->gemm[mat]))) st = plan_fail(c, st);
    else ++p->n_gemm;
  }
  free(w);
  free(zp);
  return st;
}

static q8_status matmul_run(q8_exec_ctx *c, qargs *m) {
  q8_exec_matmul g;
  q8_status st;
  if ((st = q8_exec_matmul_shape(c, m->a, m->b, &g))) return st;
  if ((st = per_tensor(c, &m->qa, "zero point or scale"))) return st;
  if (m->qb.channels != 1 && m->qb.channels != (size_t)g.n) {
    return q8_exec_fail(c, Q8_ERR_ARG, "B's scale / zero point has %zu entries; B has %lld columns", m->qb.channels,
                        (long long)g.n);
  }
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, m->out_type, g.rank, g.dims, &y)) || !y || !y->count) return st;
  if (g.k == 0) return q8_exec_fail(c, Q8_ERR_UNSUPPORTED, "K = 0");
  /* With one B matrix the rows of every A batch are one GEMM (A and Y are dense). */
  const bool one_b = m->b->count == (size_t)(g.k * g.n);
  const bool dense_a = m->a->count == g.batches * (size_t)(g.m * g.k);
  const size_t rows = one_b && dense_a ? g.batches * (size_t)g.m : (size_t)g.m;
  const plan_key key = key_of(c);
  plan_cache *p = cached(c, &key);
  if (!p) {
    if (!(p = cache_new(c, &key))) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
    if ((st = matmul_plans(c, m, &g, rows, p))) {
      cache_drop(c);
      return st;
    }
  }
  const size_t es_a = q8_elem_size(m->a->type), es_y = q8_elem_size(m->out_type);
  if (rows != (size_t)g.m) {
    if ((st = q8_gemm_run(p->gemm[0], m->a->data, (size_t)g.k, y->data, (size_t)g.n))) return plan_fail(c, st);
    return Q8_OK;
  }
  /* Batch by batch, walking A's and B's broadcast batch offsets. */
  int64_t idx[Q8_MAX_RANK] = {0};
  for (size_t bi = 0; bi < g.batches; ++bi) {
    int64_t at_a = 0, at_b = 0;
    for (int d = 0; d < g.batch_rank; ++d) at_a += idx[d] * g.a_stride[d], at_b += idx[d] * g.b_stride[d];
    const size_t mat = (size_t)at_b / (size_t)(g.k * g.n);
    if ((st = q8_gemm_run(p->gemm[mat], (const char *)m->a->data + (size_t)at_a * es_a, (size_t)g.k,
                          (char *)y->data + bi * (size_t)(g.m * g.n) * es_y, (size_t)g.n))) {
      return plan_fail(c, st);
    }
    for (int d = g.batch_rank - 1; d >= 0 && ++idx[d] == g.batch_dims[d]; --d) idx[d] = 0;
  }
  return Q8_OK;
}

/* ---- QLinearConv, ConvInteger ----------------------------------------------------------- */

void q8_exec_to_nhwc(const void *src, void *dst, size_t es, size_t n, size_t ch, size_t hw) {
  for (size_t b = 0; b < n; ++b)
    for (size_t c = 0; c < ch; ++c)
      for (size_t i = 0; i < hw; ++i)
        memcpy((char *)dst + ((b * hw + i) * ch + c) * es, (const char *)src + ((b * ch + c) * hw + i) * es, es);
}

void q8_exec_to_nchw(const void *src, void *dst, size_t es, size_t n, size_t ch, size_t hw) {
  for (size_t b = 0; b < n; ++b)
    for (size_t c = 0; c < ch; ++c)
      for (size_t i = 0; i < hw; ++i)
        memcpy((char *)dst + ((b * ch + c) * hw + i) * es, (const char *)src + ((b * hw + i) * ch + c) * es, es);
}

/* The plans of one conv node: the main one, and with a weight zero point
 * that cannot be folded into int8 weights, the window-sum one. */
static q8_status conv_plans(const q8_exec_ctx *c, const qargs *a, const q8_conv_shape *shape, plan_cache *p) {
  const size_t oc_n = shape->out_channels, per_oc = a->b->count / oc_n;
  const bool w_u8 = a->b->type == Q8_ELEM_UINT8;
  int8_t *w = malloc(a->b->count * sizeof *w);
  int32_t *zp = malloc(oc_n * sizeof *zp);
  if (!w || !zp) {
    free(w);
    free(zp);
    return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
  }
  bool fold = true, any_zp = false;
  for (size_t oc = 0; oc < oc_n; ++oc) {
    zp[oc] = a->qb.zero_point[a->qb.channels == 1 ? 0 : oc] - (w_u8 ? 128 : 0);
    any_zp |= zp[oc] != 0;
    for (size_t i = 0; i < per_oc; ++i) {
      const int32_t v = load_int(a->b, oc * per_oc + i) - (w_u8 ? 128 : 0) - zp[oc];
      fold &= v >= -128 && v <= 127;
    }
  }
  for (size_t oc = 0; oc < oc_n; ++oc) {
    for (size_t i = 0; i < per_oc; ++i) {
      const int32_t v = load_int(a->b, oc * per_oc + i) - (w_u8 ? 128 : 0);
      w[oc * per_oc + i] = (int8_t)(fold ? v - zp[oc] : v);
    }
  }
  const bool requant = a->qy.scale != NULL, fused = requant && (fold || !any_zp);
  q8_conv_desc d = {
      .shape = *shape, .in_dtype = dtype_of(a->a->type), .in_zero_point = a->qa.zero_point[0],
      .in_scale = requant ? a->qa.scale[0] : 0.0f, .weights = w, .w_layout = Q8_WEIGHTS_OIHW,
      .w_channels = requant ? a->qb.channels : 1, .w_scales = requant ? a->qb.scale : NULL,
      .bias = a->bias ? a->bias->data : NULL, .out_dtype = fused ? dtype_of(a->out_type) : Q8_INT32,
      .requant = Q8_REQUANT_FP32, .out_scale = requant ? a->qy.scale[0] : 0.0f,
      .out_zero_point = a->qy.zero_point[0]};
  q8_status st = q8_conv_plan_create(&d, &p->conv);
  free(w);
  if (st) {
    free(zp);
    return plan_fail(c, st);
  }
  if (fold || !any_zp) {
    free(zp);
    return Q8_OK;
  }
  p->w_zero_point = zp;
  /* Window sums of x - x_zp per group: all-one weights, one output channel per group. */
  const size_t k_per_group = shape->kernel_h * shape->kernel_w * (shape->in_channels / shape->groups);
  int8_t *ones = malloc(shape->groups * k_per_group);
  if (!ones) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
  memset(ones, 1, shape->groups * k_per_group);
  q8_conv_desc sd = {.shape = *shape, .in_dtype = d.in_dtype, .in_zero_point = d.in_zero_point, .weights = ones,
                     .w_layout = Q8_WEIGHTS_OHWI, .w_channels = 1, .out_dtype = Q8_INT32};
  sd.shape.out_channels = shape->groups;
  st = q8_conv_plan_create(&sd, &p->window_sum);
  free(ones);
  if (st) return plan_fail(c, st);
  if (!requant) return Q8_OK;
  p->rq_multiplier = malloc(a->qb.channels * sizeof(int32_t));
  p->rq_shift = malloc(a->qb.channels * sizeof(int32_t));
  p->rq_scale = malloc(a->qb.channels * sizeof(float));
  if (!p->rq_multiplier || !p->rq_shift || !p->rq_scale) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
  const q8_dtype out = dtype_of(a->out_type);
  st = q8_requant_params_init(&p->rq, Q8_REQUANT_FP32, a->qb.channels, a->qa.scale[0], a->qb.scale, a->qy.scale[0],
                              out, a->qy.zero_point[0], q8_dtype_min(out), q8_dtype_max(out), p->rq_multiplier,
                              p->rq_shift, p->rq_scale);
  return st ? plan_fail(c, st) : Q8_OK;
}

/* The geometry of the node as a 2-D q8_conv_shape (1-D convs have height 1). */
q8_status q8_exec_conv_shape(const q8_exec_ctx *c, const q8_exec_value *x, const q8_exec_value *w,
                             const q8_exec_value *bias, q8_conv_shape *shape, q8_exec_window *win) {
  int64_t group;
  q8_status st;
  if ((st = q8_node_attr_int(c->node, "group", 1, &group))) return st;
  char sx[160], sw[160];
  if (x->rank < 3 || x->rank > 4 || w->rank != x->rank || group < 1 || x->dims[1] != w->dims[1] * group ||
      w->dims[0] % group != 0 || w->dims[0] == 0 ||
      (bias && (bias->rank != 1 || bias->dims[0] != w->dims[0]))) {
    return q8_exec_fail(c, Q8_ERR_ARG, "input %s, weights %s, group %lld%s do not fit (1-D or 2-D convolution)",
                        q8_exec_shape_str(x->rank, x->dims, sx, sizeof sx),
                        q8_exec_shape_str(w->rank, w->dims, sw, sizeof sw), (long long)group, bias ? " and bias" : "");
  }
  int64_t kernel[2];
  if ((st = q8_node_attr_ints_n(c->node, "kernel_shape", (size_t)(x->rank - 2), -1, kernel))) return st;
  for (int i = 0; i < x->rank - 2; ++i) {
    if (kernel[i] < 0) kernel[i] = w->dims[2 + i];
    if (kernel[i] != w->dims[2 + i]) return q8_exec_fail(c, Q8_ERR_ARG, "kernel_shape differs from the weights' shape");
  }
  if ((st = q8_exec_window_init(c, x, kernel, false, win))) return st;
  for (int i = 1; i < Q8_EXEC_SPATIAL; ++i) {
    if (win->pb[i] < 0 || win->pe[i] < 0) return q8_exec_fail(c, Q8_ERR_ARG, "pads must be >= 0");
  }
  *shape = (q8_conv_shape){
      .batch = (size_t)x->dims[0], .in_h = (size_t)win->in[1], .in_w = (size_t)win->in[2],
      .in_channels = (size_t)x->dims[1], .out_channels = (size_t)w->dims[0], .kernel_h = (size_t)win->k[1],
      .kernel_w = (size_t)win->k[2], .stride_h = (size_t)win->s[1], .stride_w = (size_t)win->s[2],
      .dilation_h = (size_t)win->d[1], .dilation_w = (size_t)win->d[2], .pad_top = (size_t)win->pb[1],
      .pad_bottom = (size_t)win->pe[1], .pad_left = (size_t)win->pb[2], .pad_right = (size_t)win->pe[2],
      .groups = (size_t)group};
  size_t oh, ow;
  if ((st = q8_conv_output_shape(shape, &oh, &ow))) return plan_fail(c, st);
  if ((int64_t)oh != win->out[1] || (int64_t)ow != win->out[2]) {
    return q8_exec_fail(c, Q8_ERR_INTERNAL, "output %zux%zu differs from ONNX's %lldx%lld", oh, ow,
                        (long long)win->out[1], (long long)win->out[2]);
  }
  return Q8_OK;
}

/* acc -= zp'[oc] * S[pixel][group], in wrapping int32 (uint32) arithmetic. */
static void subtract_window_sums(int32_t *acc, const int32_t *sums, const int32_t *zp, size_t pixels, size_t oc_n,
                                 size_t groups) {
  const size_t per_group = oc_n / groups;
  for (size_t p = 0; p < pixels; ++p) {
    for (size_t oc = 0; oc < oc_n; ++oc) {
      const uint32_t v = (uint32_t)acc[p * oc_n + oc] - (uint32_t)zp[oc] * (uint32_t)sums[p * groups + oc / per_group];
      acc[p * oc_n + oc] = (int32_t)v;
    }
  }
}

static q8_status conv_run(q8_exec_ctx *c, qargs *a) {
  q8_conv_shape shape;
  q8_exec_window win;
  q8_status st;
  if ((st = q8_exec_conv_shape(c, a->a, a->b, a->bias, &shape, &win))) return st;
  if (a->qb.channels != 1 && a->qb.channels != shape.out_channels) {
    return q8_exec_fail(c, Q8_ERR_ARG, "the weights' scale / zero point has %zu entries for %zu output channels",
                        a->qb.channels, shape.out_channels);
  }
  if (a->qa.channels != 1 || a->qy.channels != 1) {
    return q8_exec_fail(c, Q8_ERR_ARG, "x and y scales and zero points must be per tensor (one entry)");
  }
  int64_t dims[Q8_MAX_RANK] = {a->a->dims[0], (int64_t)shape.out_channels, win.out[1], win.out[2]};
  if (a->a->rank == 3) dims[2] = win.out[2];
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, a->out_type, a->a->rank, dims, &y)) || !y || !y->count) return st;
  const plan_key key = key_of(c);
  plan_cache *p = cached(c, &key);
  if (!p) {
    if (!(p = cache_new(c, &key))) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
    if ((st = conv_plans(c, a, &shape, p))) {
      cache_drop(c);
      return st;
    }
  }
  const size_t n = shape.batch, in_hw = shape.in_h * shape.in_w, out_hw = (size_t)(win.out[1] * win.out[2]);
  const size_t oc_n = shape.out_channels, pixels = n * out_hw;
  const bool corrected = p->w_zero_point != NULL, requant = a->qy.scale != NULL;
  const size_t out_es = corrected ? sizeof(int32_t) : q8_elem_size(a->out_type);
  void *x_nhwc = malloc(a->a->count ? a->a->count : 1);
  void *acc = malloc(pixels * oc_n * out_es);
  int32_t *sums = corrected ? malloc(pixels * shape.groups * sizeof *sums) : NULL;
  void *y8 = corrected && requant ? malloc(pixels * oc_n) : NULL;
  if (!x_nhwc || !acc || (corrected && !sums) || (corrected && requant && !y8)) {
    st = q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
    goto done;
  }
  q8_exec_to_nhwc(a->a->data, x_nhwc, 1, n, shape.in_channels, in_hw);
  if ((st = q8_conv_run(p->conv, x_nhwc, acc))) {
    st = plan_fail(c, st);
    goto done;
  }
  const void *result = acc;
  if (corrected) {
    if ((st = q8_conv_run(p->window_sum, x_nhwc, sums))) {
      st = plan_fail(c, st);
      goto done;
    }
    subtract_window_sums(acc, sums, p->w_zero_point, pixels, oc_n, shape.groups);
    if (requant) {
      if ((st = q8_requantize(acc, pixels * oc_n, 1, &p->rq, y8))) {
        st = plan_fail(c, st);
        goto done;
      }
      result = y8;
    }
  }
  q8_exec_to_nchw(result, y->data, q8_elem_size(a->out_type), n, oc_n, out_hw);
done:
  free(x_nhwc);
  free(acc);
  free(sums);
  free(y8);
  return st;
}

/* Reads the node's operands in layout l and runs it as a MatMul or a Conv. */
static q8_status run_quantized(q8_exec_ctx *c, const qlayout *l, bool conv) {
  qargs q;
  q8_status st = qargs_read(c, l, conv, &q);
  if (!st) st = conv ? conv_run(c, &q) : matmul_run(c, &q);
  qargs_free(&q);
  return st;
}

/* Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. */
static q8_status op_qlinear_matmul(q8_exec_ctx *c) { return run_quantized(c, &qlinear_layout, false); }
/* Inputs: A, B, a_zero_point, b_zero_point; int32 output. */
static q8_status op_matmul_integer(q8_exec_ctx *c) { return run_quantized(c, &integer_layout, false); }
/* Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B. */
static q8_status op_qlinear_conv(q8_exec_ctx *c) { return run_quantized(c, &qlinear_layout, true); }
/* Inputs: x, w, x_zero_point, w_zero_point; int32 output. */
static q8_status op_conv_integer(q8_exec_ctx *c) { return run_quantized(c, &integer_layout, true); }

static const q8_exec_op qlinear_ops[] = {
    {"", "QuantizeLinear", NULL, op_quantize_linear, NULL},
    {"", "DequantizeLinear", NULL, op_dequantize_linear, NULL},
    {"", "DynamicQuantizeLinear", NULL, op_dynamic_quantize_linear, NULL},
    {"", "QLinearMatMul", NULL, op_qlinear_matmul, plan_cache_free},
    {"", "MatMulInteger", NULL, op_matmul_integer, plan_cache_free},
    {"", "QLinearConv", NULL, op_qlinear_conv, plan_cache_free},
    {"", "ConvInteger", NULL, op_conv_integer, plan_cache_free},
};

const q8_exec_op_table q8_exec_ops_qlinear = {qlinear_ops, sizeof qlinear_ops / sizeof qlinear_ops[0]};
