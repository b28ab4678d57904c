/* Operators of the "q8" domain: what the quantizer (quant/quantize.h) emits.
 * They take their quantization parameters as attributes and run on q8's
 * kernels: conv and GEMM plans (cached per node, keyed on the input shape),
 * q8_quantize / q8_dequantize, and TFLite's integer rescaling for Add and
 * Concat. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "quant/exec_ops.h"

static int32_t dtype_min(q8_dtype t) { return t == Q8_UINT8 ? 0 : -128; }
static int32_t dtype_max(q8_dtype t) { return t == Q8_UINT8 ? 255 : 127; }
static q8_elem_type elem_of(q8_dtype t) { return t == Q8_UINT8 ? Q8_ELEM_UINT8 : Q8_ELEM_INT8; }
static q8_dtype dtype_of(q8_elem_type t) { return t == Q8_ELEM_UINT8 ? Q8_UINT8 : Q8_INT8; }

#define QTYPES (Q8_EXEC_TYPE(Q8_ELEM_INT8) | Q8_EXEC_TYPE(Q8_ELEM_UINT8))

static int32_t load_q(const void *data, q8_elem_type type, size_t i) {
  return type == Q8_ELEM_UINT8 ? ((const uint8_t *)data)[i] : ((const int8_t *)data)[i];
}
static void store_q(void *data, q8_elem_type type, size_t i, int32_t v) {
  if (type == Q8_ELEM_UINT8) ((uint8_t *)data)[i] = (uint8_t)v;
  else ((int8_t *)data)[i] = (int8_t)v;
}

/* Quantization attributes <prefix>scale / <prefix>zero_point, checked. */
typedef struct qattr {
  float scale;
  int32_t zero_point;
} qattr;

static q8_status get_qattr(const q8_exec_ctx *c, const char *prefix, q8_dtype dtype, qattr *q) {
  char name[64];
  float scale;
  int64_t zp;
  snprintf(name, sizeof name, "%sscale", prefix);
  q8_status st = q8_node_attr_float(c->node, name, NAN, &scale);
  if (st != Q8_OK) return st;
  if (!(scale > 0) || !isfinite(scale)) {
    return q8_exec_fail(c, Q8_ERR_SCALE, "attribute %s = %g: must be finite and > 0", name, (double)scale);
  }
  snprintf(name, sizeof name, "%szero_point", prefix);
  if ((st = q8_node_attr_int(c->node, name, 0, &zp)) != Q8_OK) return st;
  if (zp < dtype_min(dtype) || zp > dtype_max(dtype)) {
    return q8_exec_fail(c, Q8_ERR_ZERO_POINT, "attribute %s = %lld is outside %s", name,
                        (long long)zp, dtype == Q8_UINT8 ? "uint8" : "int8");
  }
  *q = (qattr){.scale = scale, .zero_point = (int32_t)zp};
  return Q8_OK;
}

static q8_status get_dtype(const q8_exec_ctx *c, const char *name, q8_dtype *dtype) {
  int64_t v;
  const q8_status st = q8_node_attr_int(c->node, name, Q8_INT8, &v);
  if (st != Q8_OK) return st;
  if (v != Q8_INT8 && v != Q8_UINT8) {
    return q8_exec_fail(c, Q8_ERR_ARG, "attribute %s = %lld: must be int8 (%d) or uint8 (%d)", name,
                        (long long)v, Q8_INT8, Q8_UINT8);
  }
  *dtype = (q8_dtype)v;
  return Q8_OK;
}

/* ---- Quantize / Dequantize --------------------------------------------------- */

static q8_status run_quantize(q8_exec_ctx *c) {
  const q8_exec_value *x;
  q8_status st = q8_exec_input_typed(c, 0, Q8_EXEC_TYPE(Q8_ELEM_FLOAT), &x);
  q8_dtype dtype = Q8_INT8;
  qattr q;
  int64_t rounding, scale_op;
  if (st || (st = get_dtype(c, "dtype", &dtype)) || (st = get_qattr(c, "", dtype, &q)) ||
      (st = q8_node_attr_int(c->node, "rounding", Q8_ROUND_HALF_EVEN, &rounding)) ||
      (st = q8_node_attr_int(c->node, "scale_op", Q8_SCALE_DIVIDE, &scale_op))) {
    return st;
  }
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, elem_of(dtype), x->rank, x->dims, &y)) || y == NULL) return st;
  const q8_quant_params p = {.dtype = dtype, .channels = 1, .scale = &q.scale, .zero_point = &q.zero_point};
  const q8_profile profile = {.rounding = (q8_rounding)rounding, .scale_op = (q8_scale_op)scale_op};
  if (x->count > 0 && (st = q8_quantize(x->data, x->count, 1, &p, profile, y->data)) != Q8_OK) {
    return q8_exec_fail(c, st, "%s", q8_error_detail());
  }
  return Q8_OK;
}

static q8_status run_dequantize(q8_exec_ctx *c) {
  const q8_exec_value *x;
  q8_status st = q8_exec_input_typed(c, 0, QTYPES, &x);
  qattr q;
  if (st || (st = get_qattr(c, "", dtype_of(x->type), &q))) return st;
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, Q8_ELEM_FLOAT, x->rank, x->dims, &y)) || y == NULL) return st;
  const q8_quant_params p = {.dtype = dtype_of(x->type), .channels = 1, .scale = &q.scale,
                             .zero_point = &q.zero_point};
  if (x->count > 0 && (st = q8_dequantize(x->data, x->count, 1, &p, y->data)) != Q8_OK) {
    return q8_exec_fail(c, st, "%s", q8_error_detail());
  }
  return Q8_OK;
}

/* ---- QConv: NCHW around the NHWC conv plan ------------------------------------ */

typedef struct conv_state {
  q8_conv_plan *plan;
  int rank;
  int64_t in_dims[Q8_MAX_RANK];
  q8_dtype in_dtype;
  void *nhwc_in, *nhwc_out; /* scratch for the layout changes */
} conv_state;

static void conv_state_free(void *p) {
  conv_state *s = p;
  if (s == NULL) return;
  q8_conv_plan_destroy(s->plan);
  free(s->nhwc_in);
  free(s->nhwc_out);
  free(s);
}

/* Requantization attributes shared by QConv and QGemm. */
typedef struct requant_attrs {
  qattr x, y;
  q8_dtype y_dtype;
  int64_t mode;
  const float *w_scales;
  size_t w_count;
} requant_attrs;

static q8_status get_requant(const q8_exec_ctx *c, const char *x_prefix, q8_dtype x_dtype,
                             size_t channels, requant_attrs *r) {
  q8_status st;
  if ((st = get_qattr(c, x_prefix, x_dtype, &r->x)) || (st = get_dtype(c, "y_dtype", &r->y_dtype)) ||
      (st = get_qattr(c, "y_", r->y_dtype, &r->y)) ||
      (st = q8_node_attr_int(c->node, "requant", Q8_REQUANT_FP32, &r->mode)) ||
      (st = q8_node_attr_floats(c->node, "w_scales", &r->w_scales, &r->w_count))) {
    return st;
  }
  if (r->w_count != 1 && r->w_count != channels) {
    return q8_exec_fail(c, Q8_ERR_ARG, "w_scales has %zu entries for %zu output channels", r->w_count,
                        channels);
  }
  if (r->mode < Q8_REQUANT_GEMMLOWP || r->mode > Q8_REQUANT_FP32) {
    return q8_exec_fail(c, Q8_ERR_ARG, "requant = %lld is not a requantization mode", (long long)r->mode);
  }
  return Q8_OK;
}

static q8_status input_bias(const q8_exec_ctx *c, size_t k, size_t channels, const int32_t **bias) {
  *bias = NULL;
  const q8_exec_value *b = q8_exec_input(c, k);
  if (b == NULL) return Q8_OK;
  q8_status st = q8_exec_input_typed(c, k, Q8_EXEC_TYPE(Q8_ELEM_INT32), &b);
  if (st != Q8_OK) return st;
  if (b->count != channels) {
    return q8_exec_fail(c, Q8_ERR_ARG, "bias '%s' has %zu values for %zu output channels",
                        q8_exec_input_name(c, k), b->count, channels);
  }
  *bias = b->data;
  return Q8_OK;
}

static q8_status conv_plan(q8_exec_ctx *c, const q8_exec_value *x, const q8_exec_value *w,
                           const q8_conv_shape *shape, size_t out_pixels, conv_state *s) {
  requant_attrs r;
  const int32_t *bias;
  q8_status st;
  if ((st = get_requant(c, "x_", dtype_of(x->type), shape->out_channels, &r)) ||
      (st = input_bias(c, 2, shape->out_channels, &bias))) {
    return st;
  }
  const q8_conv_desc d = {
      .shape = *shape, .in_dtype = dtype_of(x->type), .in_zero_point = r.x.zero_point,
      .in_scale = r.x.scale, .weights = w->data, .w_layout = Q8_WEIGHTS_OIHW,
      .w_channels = r.w_count, .w_scales = r.w_scales, .bias = bias, .out_dtype = r.y_dtype,
      .requant = (q8_requant_mode)r.mode, .out_scale = r.y.scale, .out_zero_point = r.y.zero_point};
  if ((st = q8_conv_plan_create(&d, &s->plan)) != Q8_OK) {
    return q8_exec_fail(c, st, "%s", q8_error_detail());
  }
  s->nhwc_in = malloc(x->count ? x->count : 1);
  s->nhwc_out = malloc(shape->batch * out_pixels * shape->out_channels + 1);
  if (s->nhwc_in == NULL || s->nhwc_out == NULL) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
  s->rank = x->rank;
  memcpy(s->in_dims, x->dims, (size_t)x->rank * sizeof(int64_t));
  s->in_dtype = dtype_of(x->type);
  return Q8_OK;
}

static q8_status run_qconv(q8_exec_ctx *c) {
  const q8_exec_value *x, *w;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, QTYPES, &x)) ||
      (st = q8_exec_input_typed(c, 1, Q8_EXEC_TYPE(Q8_ELEM_INT8), &w))) {
    return st;
  }
  q8_conv_shape shape;
  q8_exec_window win;
  if ((st = q8_exec_conv_shape(c, x, w, q8_exec_input(c, 2), &shape, &win)) != Q8_OK) return st;
  const size_t in_pixels = shape.in_h * shape.in_w;
  const size_t out_pixels = (size_t)(win.out[1] * win.out[2]);
  conv_state *s = *c->state;
  if (s != NULL && (s->rank != x->rank ||
                    memcmp(s->in_dims, x->dims, (size_t)x->rank * sizeof(int64_t)) != 0 ||
                    s->in_dtype != dtype_of(x->type) || !q8_exec_input_constant(c, 1))) {
    conv_state_free(s);
    *c->state = s = NULL;
  }
  if (s == NULL) {
    if ((s = calloc(1, sizeof *s)) == NULL) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
    *c->state = s;
    if ((st = conv_plan(c, x, w, &shape, out_pixels, s)) != Q8_OK) {
      conv_state_free(s);
      *c->state = NULL;
      return st;
    }
  }
  q8_dtype y_dtype = Q8_INT8;
  if ((st = get_dtype(c, "y_dtype", &y_dtype)) != Q8_OK) return st;
  int64_t dims[Q8_MAX_RANK] = {x->dims[0], w->dims[0]};
  for (int i = 2; i < x->rank; ++i) dims[i] = win.out[Q8_EXEC_SPATIAL - x->rank + i];
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, elem_of(y_dtype), x->rank, dims, &y)) || y == NULL) return st;
  q8_exec_to_nhwc(x->data, s->nhwc_in, 1, shape.batch, shape.in_channels, in_pixels);
  if ((st = q8_conv_run(s->plan, s->nhwc_in, s->nhwc_out)) != Q8_OK) {
    return q8_exec_fail(c, st, "%s", q8_error_detail());
  }
  q8_exec_to_nchw(s->nhwc_out, y->data, 1, shape.batch, shape.out_channels, out_pixels);
  return Q8_OK;
}

/* ---- QGemm: rows of a (all leading axes) times w[N][K] ------------------------- */

typedef struct gemm_state {
  q8_gemm_plan *plan;
  size_t m;
  q8_dtype a_dtype;
} gemm_state;

static void gemm_state_free(void *p) {
  gemm_state *s = p;
  if (s == NULL) return;
  q8_gemm_plan_destroy(s->plan);
  free(s);
}

static q8_status run_qgemm(q8_exec_ctx *c) {
  const q8_exec_value *a, *w;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, QTYPES, &a)) ||
      (st = q8_exec_input_typed(c, 1, Q8_EXEC_TYPE(Q8_ELEM_INT8), &w))) {
    return st;
  }
  if (a->rank < 2 || w->rank != 2 || a->dims[a->rank - 1] != w->dims[1]) {
    char sa[96], sw[96];
    return q8_exec_fail(c, Q8_ERR_ARG, "input %s does not fit weights %s ([N][K]: K must match)",
                        q8_exec_shape_str(a->rank, a->dims, sa, sizeof sa),
                        q8_exec_shape_str(w->rank, w->dims, sw, sizeof sw));
  }
  const size_t k = (size_t)w->dims[1], n = (size_t)w->dims[0], m = a->count / k;
  gemm_state *s = *c->state;
  if (s != NULL && (s->m != m || s->a_dtype != dtype_of(a->type) || !q8_exec_input_constant(c, 1))) {
    gemm_state_free(s);
    *c->state = s = NULL;
  }
  requant_attrs r;
  if ((st = get_requant(c, "a_", dtype_of(a->type), n, &r)) != Q8_OK) return st;
  if (s == NULL && m > 0) {
    const int32_t *bias;
    if ((st = input_bias(c, 2, n, &bias)) != Q8_OK) return st;
    if ((s = calloc(1, sizeof *s)) == NULL) return q8_exec_fail(c, Q8_ERR_NOMEM, "out of memory");
    *c->state = s;
    s->m = m;
    s->a_dtype = dtype_of(a->type);
    const q8_gemm_desc d = {
        .m = m, .n = n, .k = k, .a_dtype = s->a_dtype, .a_zero_point = r.x.zero_point,
        .a_scale = r.x.scale, .weights = w->data, .w_channels = r.w_count, .w_scales = r.w_scales,
        .bias = bias, .out_dtype = r.y_dtype, .requant = (q8_requant_mode)r.mode,
        .out_scale = r.y.scale, .out_zero_point = r.y.zero_point};
    if ((st = q8_gemm_plan_create(&d, &s->plan)) != Q8_OK) {
      return q8_exec_fail(c, st, "%s", q8_error_detail());
    }
  }
  int64_t dims[Q8_MAX_RANK];
  memcpy(dims, a->dims, (size_t)a->rank * sizeof(int64_t));
  dims[a->rank - 1] = (int64_t)n;
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, elem_of(r.y_dtype), a->rank, dims, &y)) || y == NULL || m == 0) {
    return st;
  }
  if ((st = q8_gemm_run(s->plan, a->data, k, y->data, n)) != Q8_OK) {
    return q8_exec_fail(c, st, "%s", q8_error_detail());
  }
  return Q8_OK;
}

/* ---- element-wise --------------------------------------------------------------- */

static q8_status run_qclamp(q8_exec_ctx *c) {
  const q8_exec_value *x;
  int64_t lo, hi;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, QTYPES, &x)) ||
      (st = q8_node_attr_int(c->node, "lo", INT64_MIN, &lo)) ||
      (st = q8_node_attr_int(c->node, "hi", INT64_MAX, &hi))) {
    return st;
  }
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, x->type, x->rank, x->dims, &y)) || y == NULL) return st;
  for (size_t i = 0; i < x->count; ++i) {
    int64_t v = load_q(x->data, x->type, i);
    v = v < lo ? lo : v > hi ? hi : v;
    store_q(y->data, x->type, i, (int32_t)v);
  }
  return Q8_OK;
}

static q8_status run_qlookup(q8_exec_ctx *c) {
  const q8_exec_value *x, *t;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, QTYPES, &x)) || (st = q8_exec_input_typed(c, 1, QTYPES, &t))) {
    return st;
  }
  if (t->count != 256) {
    return q8_exec_fail(c, Q8_ERR_ARG, "table '%s' has %zu entries, not 256", q8_exec_input_name(c, 1),
                        t->count);
  }
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, t->type, x->rank, x->dims, &y)) || y == NULL) return st;
  const int32_t base = dtype_min(dtype_of(x->type));
  const uint8_t *table = t->data;
  for (size_t i = 0; i < x->count; ++i) {
    ((uint8_t *)y->data)[i] = table[load_q(x->data, x->type, i) - base];
  }
  return Q8_OK;
}

/* TFLite's MultiplyByQuantizedMultiplier: x * m * 2^shift, gemmlowp rounding. */
static int32_t scale_int(int32_t x, int32_t multiplier, int32_t shift) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  const int64_t shifted = (int64_t)x * ((int64_t)1 << left);
  const int32_t clamped = shifted > INT32_MAX ? INT32_MAX : shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted;
  return q8_ref_rounding_divide_by_pot(q8_ref_saturating_rounding_doubling_high_mul(clamped, multiplier),
                                       right);
}

/* Add with both inputs rescaled to a common scale in integers, as TFLite's
 * reference: (x - zp) << 20 times input_scale / (2 max scale), summed, then
 * times 2 max scale / (2^20 output_scale). Shapes equal, or b a scalar. */
static q8_status run_qadd(q8_exec_ctx *c) {
  const q8_exec_value *a, *b;
  q8_status st;
  if ((st = q8_exec_input_typed(c, 0, QTYPES, &a)) || (st = q8_exec_input_typed(c, 1, QTYPES, &b))) {
    return st;
  }
  q8_dtype y_dtype = Q8_INT8;
  qattr qa, qb, qy;
  if ((st = get_qattr(c, "a_", dtype_of(a->type), &qa)) || (st = get_qattr(c, "b_", dtype_of(b->type), &qb)) ||
      (st = get_dtype(c, "y_dtype", &y_dtype)) || (st = get_qattr(c, "y_", y_dtype, &qy))) {
    return st;
  }
  const bool same = a->rank == b->rank && memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(int64_t)) == 0;
  if (!same && b->count != 1) {
    char sa[96], sb[96];
    return q8_exec_fail(c, Q8_ERR_UNSUPPORTED,
                        "int8 Add of %s and %s: shapes must be equal or the second a scalar",
                        q8_exec_shape_str(a->rank, a->dims, sa, sizeof sa),
                        q8_exec_shape_str(b->rank, b->dims, sb, sizeof sb));
  }
  const int left_shift = 20;
  const double twice_max = 2.0 * fmax(qa.scale, qb.scale);
  int32_t ma, sa, mb, sb, my, sy;
  q8_quantize_multiplier(qa.scale / twice_max, &ma, &sa);
  q8_quantize_multiplier(qb.scale / twice_max, &mb, &sb);
  q8_quantize_multiplier(twice_max / ((double)(1 << left_shift) * qy.scale), &my, &sy);
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, elem_of(y_dtype), a->rank, a->dims, &y)) || y == NULL) return st;
  for (size_t i = 0; i < a->count; ++i) {
    const int32_t xa = (load_q(a->data, a->type, i) - qa.zero_point) * (1 << left_shift);
    const int32_t xb = (load_q(b->data, b->type, same ? i : 0) - qb.zero_point) * (1 << left_shift);
    const int32_t sum = scale_int(xa, ma, sa) + scale_int(xb, mb, sb);
    int32_t v = scale_int(sum, my, sy) + qy.zero_point;
    v = v < dtype_min(y_dtype) ? dtype_min(y_dtype) : v > dtype_max(y_dtype) ? dtype_max(y_dtype) : v;
    store_q(y->data, y->type, i, v);
  }
  return Q8_OK;
}

/* Concat: each input rescaled to the output's parameters in integers
 * (copied as is when they already match). */
static q8_status run_qconcat(q8_exec_ctx *c) {
  const size_t n_in = c->node->n_inputs;
  int64_t axis;
  const float *scales;
  const int64_t *zps;
  size_t n_scales, n_zps;
  q8_dtype y_dtype = Q8_INT8;
  qattr qy;
  q8_status st;
  if ((st = q8_node_attr_int(c->node, "axis", 0, &axis)) ||
      (st = q8_node_attr_floats(c->node, "scales", &scales, &n_scales)) ||
      (st = q8_node_attr_ints(c->node, "zero_points", &zps, &n_zps)) ||
      (st = get_dtype(c, "y_dtype", &y_dtype)) || (st = get_qattr(c, "y_", y_dtype, &qy))) {
    return st;
  }
  if (n_in == 0 || n_scales != n_in || n_zps != n_in) {
    return q8_exec_fail(c, Q8_ERR_ARG, "%zu inputs but %zu scales and %zu zero points", n_in,
                        n_scales, n_zps);
  }
  const q8_exec_value *first;
  if ((st = q8_exec_input_typed(c, 0, QTYPES, &first)) != Q8_OK) return st;
  const int rank = first->rank;
  if (axis < -rank || axis >= rank) {
    return q8_exec_fail(c, Q8_ERR_ARG, "axis %lld outside rank %d", (long long)axis, rank);
  }
  const int ax = (int)(axis < 0 ? axis + rank : axis);
  int64_t dims[Q8_MAX_RANK];
  memcpy(dims, first->dims, (size_t)rank * sizeof(int64_t));
  dims[ax] = 0;
  size_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= (size_t)first->dims[d];
  for (int d = ax + 1; d < rank; ++d) inner *= (size_t)first->dims[d];
  for (size_t i = 0; i < n_in; ++i) {
    const q8_exec_value *x;
    if ((st = q8_exec_input_typed(c, i, QTYPES, &x)) != Q8_OK) return st;
    bool fits = x->rank == rank;
    for (int d = 0; fits && d < rank; ++d) fits = d == ax || x->dims[d] == first->dims[d];
    if (!fits) {
      char s0[96], si[96];
      return q8_exec_fail(c, Q8_ERR_ARG, "input %zu %s does not fit input 0 %s along axis %d", i,
                          q8_exec_shape_str(x->rank, x->dims, si, sizeof si),
                          q8_exec_shape_str(rank, first->dims, s0, sizeof s0), ax);
    }
    dims[ax] += x->dims[ax];
  }
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, elem_of(y_dtype), rank, dims, &y)) || y == NULL) return st;
  size_t offset = 0;
  for (size_t i = 0; i < n_in; ++i) {
    const q8_exec_value *x = q8_exec_input(c, i);
    const size_t run = (size_t)x->dims[ax] * inner;
    const bool copy = scales[i] == qy.scale && zps[i] == qy.zero_point && x->type == y->type;
    int32_t m = 0, sh = 0;
    q8_quantize_multiplier((double)scales[i] / qy.scale, &m, &sh);
    for (size_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < run; ++j) {
        const int32_t q = load_q(x->data, x->type, o * run + j);
        int32_t v = copy ? q : scale_int(q - (int32_t)zps[i], m, sh) + qy.zero_point;
        v = v < dtype_min(y_dtype) ? dtype_min(y_dtype) : v > dtype_max(y_dtype) ? dtype_max(y_dtype) : v;
        store_q(y->data, y->type, o * (size_t)dims[ax] * inner + offset + j, v);
      }
    }
    offset += run;
  }
  return Q8_OK;
}

/* ---- MaxPool: the maximum of quantized values (scale and zero point unchanged) -- */

static q8_status run_qmaxpool(q8_exec_ctx *c) {
  const q8_exec_value *x;
  q8_status st = q8_exec_input_typed(c, 0, QTYPES, &x);
  if (st != Q8_OK) return st;
  const int64_t *kernel;
  size_t nk;
  int64_t ceil_mode;
  if ((st = q8_node_attr_ints(c->node, "kernel_shape", &kernel, &nk)) ||
      (st = q8_node_attr_int(c->node, "ceil_mode", 0, &ceil_mode))) {
    return st;
  }
  if (x->rank < 3 || nk != (size_t)(x->rank - 2)) {
    return q8_exec_fail(c, Q8_ERR_ARG, "kernel_shape has %zu axes for an input of rank %d", nk, x->rank);
  }
  q8_exec_window w;
  if ((st = q8_exec_window_init(c, x, kernel, ceil_mode != 0, &w)) != Q8_OK) return st;
  int64_t dims[Q8_MAX_RANK] = {x->dims[0], x->dims[1]};
  for (int i = 0; i < w.rank; ++i) dims[2 + i] = w.out[Q8_EXEC_SPATIAL - w.rank + i];
  q8_exec_value *y;
  if ((st = q8_exec_output(c, 0, x->type, x->rank, dims, &y)) || y == NULL) return st;
  const size_t planes = (size_t)(x->dims[0] * x->dims[1]);
  const size_t in_plane = (size_t)(w.in[0] * w.in[1] * w.in[2]);
  const size_t out_plane = (size_t)(w.out[0] * w.out[1] * w.out[2]);
  for (size_t p = 0; p < planes; ++p) {
    size_t o = p * out_plane;
    for (int64_t z = 0; z < w.out[0]; ++z) {
      for (int64_t r = 0; r < w.out[1]; ++r) {
        for (int64_t q = 0; q < w.out[2]; ++q, ++o) {
          int32_t best = INT32_MIN;
          for (int64_t kz = 0; kz < w.k[0]; ++kz) {
            const int64_t iz = z * w.s[0] + kz * w.d[0] - w.pb[0];
            if (iz < 0 || iz >= w.in[0]) continue;
            for (int64_t kr = 0; kr < w.k[1]; ++kr) {
              const int64_t ir = r * w.s[1] + kr * w.d[1] - w.pb[1];
              if (ir < 0 || ir >= w.in[1]) continue;
              for (int64_t kq = 0; kq < w.k[2]; ++kq) {
                const int64_t iq = q * w.s[2] + kq * w.d[2] - w.pb[2];
                if (iq < 0 || iq >= w.in[2]) continue;
                const int32_t v = load_q(x->data, x->type,
                                         p * in_plane + (size_t)((iz * w.in[1] + ir) * w.in[2] + iq));
                if (v > best) best = v;
              }
            }
          }
          /* A window entirely in the padding (only with ceil_mode) has no
           * element: the smallest code, as -inf would quantize. */
          store_q(y->data, y->type, o, best == INT32_MIN ? dtype_min(dtype_of(x->type)) : best);
        }
      }
    }
  }
  return Q8_OK;
}

static const q8_exec_op ops[] = {
    {"q8", "Quantize", NULL, run_quantize, NULL},
    {"q8", "Dequantize", NULL, run_dequantize, NULL},
    {"q8", "QConv", NULL, run_qconv, conv_state_free},
    {"q8", "QGemm", NULL, run_qgemm, gemm_state_free},
    {"q8", "QClamp", NULL, run_qclamp, NULL},
    {"q8", "QLookup", NULL, run_qlookup, NULL},
    {"q8", "QAdd", NULL, run_qadd, NULL},
    {"q8", "QConcat", NULL, run_qconcat, NULL},
    {"q8", "MaxPool", NULL, run_qmaxpool, NULL},
};

const q8_exec_op_table q8_exec_ops_q8 = {ops, sizeof ops / sizeof ops[0]};
