/* The quantizer's graph rewrite (see quant/quantize.h). */
#include "quant/quantize.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "quant/calibrate.h"

void q8_quantize_options_default(q8_quantize_options *o) {
  *o = (q8_quantize_options){.activations = Q8_INT8, .per_channel = true,
                             .profile = Q8_PROFILE_ONNX};
}

static int32_t dtype_min(q8_dtype t) { return t == Q8_UINT8 ? 0 : -128; }
static int32_t dtype_max(q8_dtype t) { return t == Q8_UINT8 ? 255 : 127; }
static q8_elem_type elem_of(q8_dtype t) { return t == Q8_UINT8 ? Q8_ELEM_UINT8 : Q8_ELEM_INT8; }

q8_qparams q8_qparams_for_range(float min, float max, q8_dtype dtype) {
  q8_qparams p = {.scale = 1.0f, .zero_point = 0, .dtype = dtype};
  /* Calibrated ranges are finite with min <= max, the only failures. */
  if (q8_quant_params_from_range(min, max, dtype, false, &p.scale, &p.zero_point) != Q8_OK) {
    p = (q8_qparams){.scale = 1.0f, .zero_point = 0, .dtype = dtype};
  }
  return p;
}

void q8_quant_result_free(q8_quant_result *r) {
  if (r == NULL) return;
  q8_graph_destroy(r->graph);
  free(r->layers);
  free(r->qtensor);
  free(r->qparams);
  *r = (q8_quant_result){0};
}

/* ---- which nodes the int8 path can take -------------------------------------- */

typedef enum qkind {
  QK_NONE = 0,   /* no int8 form */
  QK_CONV,
  QK_GEMM,
  QK_MATMUL,
  QK_CLAMP,      /* Relu, Clip */
  QK_LOOKUP,     /* Sigmoid, Tanh, LeakyRelu */
  QK_ADD,
  QK_CONCAT,
  QK_MAXPOOL,
  QK_MOVE        /* data movement: same parameters in and out */
} qkind;

static const struct { const char *op; qkind kind; } kinds[] = {
      {"Conv", QK_CONV},       {"Gemm", QK_GEMM},         {"MatMul", QK_MATMUL},
      {"Relu", QK_CLAMP},      {"Clip", QK_CLAMP},        {"Sigmoid", QK_LOOKUP},
      {"Tanh", QK_LOOKUP},     {"LeakyRelu", QK_LOOKUP},  {"Add", QK_ADD},
      {"Concat", QK_CONCAT},   {"MaxPool", QK_MAXPOOL},   {"Flatten", QK_MOVE},
      {"Reshape", QK_MOVE},    {"Transpose", QK_MOVE},    {"Squeeze", QK_MOVE},
      {"Unsqueeze", QK_MOVE},  {"Identity", QK_MOVE},     {"Dropout", QK_MOVE}};

static qkind kind_of_op(const char *op_type) {
  for (size_t i = 0; op_type && i < sizeof kinds / sizeof kinds[0]; ++i) {
    if (strcmp(op_type, kinds[i].op) == 0) return kinds[i].kind;
  }
  return QK_NONE;
}

bool q8_quantize_op_supported(const char *op_type) { return kind_of_op(op_type) != QK_NONE; }

static qkind kind_of(const q8_node *n) {
  return n->domain[0] == '\0' ? kind_of_op(n->op_type) : QK_NONE;
}

static bool is_constant(const q8_graph *g, int32_t t) {
  return t >= 0 && g->tensors[t].data != NULL &&
         (g->tensors[t].kind == Q8_TENSOR_INITIALIZER || g->tensors[t].kind == Q8_TENSOR_CONSTANT);
}

/* Inputs of node n that carry activations (not weights, shapes or bounds). */
static size_t activation_inputs(const q8_graph *g, const q8_node *n, qkind kind, int32_t *out) {
  size_t count = 0;
  switch (kind) {
    case QK_ADD:
    case QK_CONCAT:
      for (size_t i = 0; i < n->n_inputs; ++i) {
        if (n->inputs[i] >= 0 && !is_constant(g, n->inputs[i])) out[count++] = n->inputs[i];
      }
      return count;
    case QK_NONE:
      return 0;
    default:
      if (n->n_inputs > 0 && n->inputs[0] >= 0) out[count++] = n->inputs[0];
      return count;
  }
}

void q8_quantize_needed_ranges(const q8_graph *g, const bool *int8_nodes, bool *needs) {
  memset(needs, 0, g->n_tensors * sizeof *needs);
  int32_t acts[64];
  for (size_t i = 0; i < g->n_nodes; ++i) {
    const q8_node *n = &g->nodes[i];
    const qkind kind = kind_of(n);
    if (!int8_nodes[i] || kind == QK_NONE) continue;
    const size_t count = activation_inputs(g, n, kind, acts);
    for (size_t a = 0; a < count && a < 64; ++a) needs[acts[a]] = true;
    if (n->n_outputs > 0 && n->outputs[0] >= 0) needs[n->outputs[0]] = true;
  }
}

/* ---- the rewriter -------------------------------------------------------------- */

typedef struct rewriter {
  const q8_graph *src;
  q8_graph *dst;
  const q8_tensor_range *ranges;
  const q8_quantize_options *opt;
  q8_profile profile;
  q8_quant_result *res;
  bool *float_ready;   /* per source tensor: its float value exists in dst */
  bool *absorbed;      /* per source node: fused into its producer */
  size_t cap_tensors, cap_nodes;
} rewriter;

static q8_status nomem(void) { return q8_fail(Q8_ERR_NOMEM, "quantize: out of memory"); }

/* Appends a tensor to dst (name copied, data taken over); returns its index or -1. */
static int32_t add_tensor(rewriter *w, const char *name, q8_elem_type type, int rank,
                          const int64_t *dims, void *data, size_t data_bytes, q8_tensor_kind kind) {
  q8_graph *g = w->dst;
  if (g->n_tensors == w->cap_tensors) {
    const size_t cap = w->cap_tensors * 2 + 16;
    q8_tensor *t = realloc(g->tensors, cap * sizeof *t);
    if (t == NULL) return -1;
    g->tensors = t;
    w->cap_tensors = cap;
  }
  q8_tensor *t = &g->tensors[g->n_tensors];
  *t = (q8_tensor){.name = q8_str_dup(name), .kind = kind, .type = type, .rank = rank,
                   .data = data, .data_bytes = data_bytes, .producer = -1};
  if (t->name == NULL) return -1;
  for (int d = 0; d < rank && d < Q8_MAX_RANK; ++d) t->dims[d] = dims[d];
  return (int32_t)g->n_tensors++;
}

static int32_t add_initializer(rewriter *w, const char *name, q8_elem_type type, int rank,
                               const int64_t *dims, void *data, size_t bytes) {
  const int32_t t = add_tensor(w, name, type, rank, dims, data, bytes, Q8_TENSOR_INITIALIZER);
  if (t < 0) free(data);
  return t;
}

/* Attribute builders: each returns false when out of memory. */
static bool attr_int(q8_attr *a, const char *name, int64_t v) {
  *a = (q8_attr){.name = q8_str_dup(name), .type = Q8_ATTR_INT, .i = v};
  return a->name != NULL;
}
static bool attr_float(q8_attr *a, const char *name, float v) {
  *a = (q8_attr){.name = q8_str_dup(name), .type = Q8_ATTR_FLOAT, .f = v};
  return a->name != NULL;
}
static bool attr_floats(q8_attr *a, const char *name, const float *v, size_t count) {
  *a = (q8_attr){.name = q8_str_dup(name), .type = Q8_ATTR_FLOATS, .count = count,
                 .floats = malloc((count ? count : 1) * sizeof(float))};
  if (a->name == NULL || a->floats == NULL) return false;
  memcpy(a->floats, v, count * sizeof(float));
  return true;
}
static bool attr_ints(q8_attr *a, const char *name, const int64_t *v, size_t count) {
  *a = (q8_attr){.name = q8_str_dup(name), .type = Q8_ATTR_INTS, .count = count,
                 .ints = malloc((count ? count : 1) * sizeof(int64_t))};
  if (a->name == NULL || a->ints == NULL) return false;
  memcpy(a->ints, v, count * sizeof(int64_t));
  return true;
}
static bool attr_copy(q8_attr *dst, const q8_attr *src) {
  *dst = (q8_attr){.name = q8_str_dup(src->name), .type = src->type, .i = src->i, .f = src->f,
                   .count = src->count};
  if (dst->name == NULL) return false;
  switch (src->type) {
    case Q8_ATTR_STRING:
      dst->s = q8_str_dup_n(src->s, src->s_len);
      dst->s_len = src->s_len;
      return dst->s != NULL;
    case Q8_ATTR_INTS:
      dst->ints = malloc((src->count ? src->count : 1) * sizeof(int64_t));
      if (dst->ints) memcpy(dst->ints, src->ints, src->count * sizeof(int64_t));
      return dst->ints != NULL;
    case Q8_ATTR_FLOATS:
      dst->floats = malloc((src->count ? src->count : 1) * sizeof(float));
      if (dst->floats) memcpy(dst->floats, src->floats, src->count * sizeof(float));
      return dst->floats != NULL;
    case Q8_ATTR_INT:
    case Q8_ATTR_FLOAT:
      return true;
    default: /* STRINGS and TENSOR attributes are not on the operators the int8 path emits */
      dst->type = Q8_ATTR_INT;
      return true;
  }
}

/* Quantization attributes: <prefix>scale, <prefix>zero_point. */
static bool attr_qparams(q8_attr *a, const char *prefix, q8_qparams p) {
  char name[64];
  snprintf(name, sizeof name, "%sscale", prefix);
  if (!attr_float(&a[0], name, p.scale)) return false;
  snprintf(name, sizeof name, "%szero_point", prefix);
  return attr_int(&a[1], name, p.zero_point);
}

/* Appends a node (attrs taken over: n_attrs entries); returns its index or -1. */
static int32_t add_node(rewriter *w, const char *op, const char *domain, const char *name,
                        const int32_t *in, size_t n_in, const int32_t *out, size_t n_out,
                        q8_attr *attrs, size_t n_attrs) {
  q8_graph *g = w->dst;
  q8_node node = {.op_type = q8_str_dup(op), .name = q8_str_dup(name), .domain = q8_str_dup(domain),
                  .n_inputs = n_in, .inputs = malloc((n_in ? n_in : 1) * sizeof(int32_t)),
                  .n_outputs = n_out, .outputs = malloc((n_out ? n_out : 1) * sizeof(int32_t)),
                  .n_attrs = n_attrs, .attrs = attrs};
  if (g->n_nodes == w->cap_nodes) {
    const size_t cap = w->cap_nodes * 2 + 16;
    q8_node *nodes = realloc(g->nodes, cap * sizeof *nodes);
    if (nodes == NULL) {
      q8_node_free(&node);
      return -1;
    }
    g->nodes = nodes;
    w->cap_nodes = cap;
  }
  if (!node.op_type || !node.name || !node.domain || !node.inputs || !node.outputs) {
    q8_node_free(&node);
    return -1;
  }
  if (n_in) memcpy(node.inputs, in, n_in * sizeof(int32_t));
  if (n_out) memcpy(node.outputs, out, n_out * sizeof(int32_t));
  const int32_t index = (int32_t)g->n_nodes;
  g->nodes[g->n_nodes++] = node;
  for (size_t o = 0; o < n_out; ++o) {
    if (out[o] >= 0) g->tensors[out[o]].producer = index;
  }
  return index;
}

static q8_attr *attrs_new(size_t count) { return calloc(count ? count : 1, sizeof(q8_attr)); }
static void attrs_free(q8_attr *a, size_t count) {
  for (size_t i = 0; a && i < count; ++i) q8_attr_free(&a[i]);
  free(a);
}

/* Deep copy of a source tensor into dst at the same index. */
static bool copy_tensor(const q8_tensor *src, q8_tensor *dst) {
  *dst = *src;
  dst->name = q8_str_dup(src->name);
  dst->producer = -1;
  dst->data = NULL;
  if (src->data != NULL && src->data_bytes > 0) {
    dst->data = malloc(src->data_bytes);
    if (dst->data) memcpy(dst->data, src->data, src->data_bytes);
  }
  return dst->name != NULL && (src->data == NULL || src->data_bytes == 0 || dst->data != NULL);
}

static void layer_reason(rewriter *w, size_t node, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->res->layers[node].reason, sizeof w->res->layers[node].reason, fmt, ap);
  va_end(ap);
}

/* The float value of source tensor t exists in dst, dequantizing its int8 one if needed. */
static q8_status ensure_float(rewriter *w, int32_t t) {
  if (t < 0 || w->float_ready[t]) return Q8_OK;
  const int32_t q = w->res->qtensor[t];
  if (q < 0) {
    return q8_fail(Q8_ERR_INTERNAL, "quantize: tensor '%s' is used before it is computed",
                   w->src->tensors[t].name);
  }
  q8_attr *a = attrs_new(2);
  if (a == NULL || !attr_qparams(a, "", w->res->qparams[t])) {
    attrs_free(a, 2);
    return nomem();
  }
  char name[256];
  snprintf(name, sizeof name, "%s:dequantize", w->src->tensors[t].name);
  if (add_node(w, "Dequantize", "q8", name, &q, 1, &t, 1, a, 2) < 0) return nomem();
  w->float_ready[t] = true;
  return Q8_OK;
}

/* A new int8 tensor for source tensor t with parameters p. */
static int32_t new_qtensor(rewriter *w, int32_t t, q8_qparams p) {
  const q8_tensor *s = &w->src->tensors[t];
  char name[256];
  snprintf(name, sizeof name, "%s:q8", s->name);
  const int32_t q = add_tensor(w, name, elem_of(p.dtype), s->rank, s->dims, NULL, 0,
                               Q8_TENSOR_VALUE);
  if (q >= 0) {
    w->res->qtensor[t] = q;
    w->res->qparams[t] = p;
  }
  return q;
}

/* The int8 value of source tensor t, quantizing its float value with its
 * calibrated range if it has none yet. */
static q8_status ensure_q(rewriter *w, int32_t t, int32_t *q) {
  if (w->res->qtensor[t] >= 0) {
    *q = w->res->qtensor[t];
    return Q8_OK;
  }
  const q8_qparams p = q8_qparams_for_range(w->ranges[t].min, w->ranges[t].max,
                                            w->opt->activations);
  q8_status st = ensure_float(w, t);
  if (st != Q8_OK) return st;
  if ((*q = new_qtensor(w, t, p)) < 0) return nomem();
  q8_attr *a = attrs_new(5);
  if (a == NULL || !attr_qparams(a, "", p) || !attr_int(&a[2], "dtype", p.dtype) ||
      !attr_int(&a[3], "rounding", w->profile.rounding) ||
      !attr_int(&a[4], "scale_op", w->profile.scale_op)) {
    attrs_free(a, 5);
    return nomem();
  }
  char name[256];
  snprintf(name, sizeof name, "%s:quantize", w->src->tensors[t].name);
  if (add_node(w, "Quantize", "q8", name, &t, 1, q, 1, a, 5) < 0) return nomem();
  return Q8_OK;
}

/* ---- weights ------------------------------------------------------------------ */

/* Symmetric int8 quantization of `channels` rows of `per` floats each (one
 * scale per row, or one for all): q = round(w / s) in [-127, 127]. */
typedef struct qweights {
  int8_t *q;
  float *scales;       /* channels entries (all equal per tensor) */
  double sqnr_db;
} qweights;

static q8_status quantize_weights(rewriter *w, const q8_node *n, const float *v, size_t channels,
                                  size_t per, qweights *out) {
  out->q = malloc(channels * per + 1);
  out->scales = malloc(channels * sizeof(float));
  if (out->q == NULL || out->scales == NULL) return nomem();
  float tensor_max = 0;
  for (size_t i = 0; i < channels * per; ++i) {
    if (!isfinite(v[i])) {
      return q8_fail(Q8_ERR_ARG, "quantize: node '%s' (%s): weight %zu is not finite", n->name,
                     n->op_type, i);
    }
    tensor_max = fmaxf(tensor_max, fabsf(v[i]));
  }
  double signal = 0, noise = 0;
  for (size_t c = 0; c < channels; ++c) {
    float m = tensor_max;
    if (w->opt->per_channel) {
      m = 0;
      for (size_t k = 0; k < per; ++k) m = fmaxf(m, fabsf(v[c * per + k]));
    }
    /* An all-zero channel quantizes to zeros with any scale; 1 keeps the
     * requantization multiplier finite. */
    const float scale = m > 0 ? m / 127.0f : 1.0f;
    out->scales[c] = scale;
    for (size_t k = 0; k < per; ++k) {
      const float x = v[c * per + k];
      int32_t q = q8_ref_quantize_one(x, scale, 0, Q8_INT8, w->profile.rounding, w->profile.scale_op);
      if (q < -127) q = -127;
      out->q[c * per + k] = (int8_t)q;
      const double e = (double)x - (double)q * (double)scale;
      signal += (double)x * x;
      noise += e * e;
    }
  }
  out->sqnr_db = noise > 0 ? 10.0 * log10(signal / noise) : INFINITY;
  return Q8_OK;
}

/* bias[c] (float, or 0 without one) at scale x_scale * w_scale[c], int32. */
static q8_status quantize_bias(const q8_node *n, const float *bias, size_t channels, float x_scale,
                               const float *w_scales, int32_t **out) {
  *out = malloc(channels * sizeof(int32_t));
  if (*out == NULL) return nomem();
  for (size_t c = 0; c < channels; ++c) {
    const double b = bias ? (double)bias[c] : 0.0;
    const double q = nearbyint(b / ((double)x_scale * (double)w_scales[c]));
    if (!(fabs(q) <= 2147483647.0)) {
      return q8_fail(Q8_ERR_ARG,
                     "quantize: node '%s' (%s): bias[%zu] = %g does not fit int32 at scale %g "
                     "(input scale x weight scale); keep this node float (--keep-float-nodes '%s')",
                     n->name, n->op_type, c, b, (double)x_scale * w_scales[c], n->name);
    }
    (*out)[c] = (int32_t)q;
  }
  return Q8_OK;
}

/* ---- output parameters and fusion ---------------------------------------------- */

static int consumers(const q8_graph *g, int32_t t, int32_t *only) {
  int count = 0;
  for (size_t i = 0; i < g->n_nodes; ++i) {
    for (size_t k = 0; k < g->nodes[i].n_inputs; ++k) {
      if (g->nodes[i].inputs[k] == t) {
        ++count;
        *only = (int32_t)i;
      }
    }
  }
  return count;
}

static bool is_graph_output(const q8_graph *g, int32_t t) {
  for (size_t i = 0; i < g->n_outputs; ++i) {
    if (g->outputs[i] == t) return true;
  }
  return false;
}

/* Output of a compute node: the activation that follows it is fused when it
 * is the only consumer and is itself asked for int8 (see the header). Sets
 * *out_tensor to the source tensor whose int8 value the node computes. */
static bool fuse_activation(rewriter *w, const bool *int8_nodes, size_t node, int32_t *out_tensor) {
  const int32_t t = w->src->nodes[node].outputs[0];
  *out_tensor = t;
  int32_t next = -1;
  if (is_graph_output(w->src, t) || consumers(w->src, t, &next) != 1) return false;
  const q8_node *act = &w->src->nodes[next];
  if (!int8_nodes[next] || kind_of(act) != QK_CLAMP || act->inputs[0] != t) return false;
  const int32_t y = act->outputs[0];
  if (y < 0 || !w->ranges[y].known) return false;
  w->absorbed[next] = true;
  w->res->layers[next].precision = Q8_LAYER_FUSED;
  w->res->layers[next].output = y;
  layer_reason(w, (size_t)next, "fused into %s '%s' (requantization clamp)",
               w->src->nodes[node].op_type, w->src->nodes[node].name);
  *out_tensor = y;
  return true;
}

/* ---- per-kind rewrites ---------------------------------------------------------- */

static const float *float_data(const q8_graph *g, int32_t t) {
  return is_constant(g, t) && g->tensors[t].type == Q8_ELEM_FLOAT ? g->tensors[t].data : NULL;
}

/* Common tail of QConv / QGemm: x quantized, weights and bias as initializers,
 * output parameters from the (possibly fused) output range. */
typedef struct compute_parts {
  int32_t xq;
  q8_qparams xp;
  qweights wq;
  int32_t *bias;
  int32_t out_tensor; /* source tensor computed */
} compute_parts;

static q8_status emit_compute(rewriter *w, size_t node, const char *op, const char *x_prefix,
                              compute_parts *p,
                              const int64_t *w_dims, int w_rank, size_t channels, size_t per,
                              q8_attr *extra, size_t n_extra) {
  const q8_node *n = &w->src->nodes[node];
  char name[256];
  snprintf(name, sizeof name, "%s:w:q8", n->name);
  const int32_t wt = add_initializer(w, name, Q8_ELEM_INT8, w_rank, w_dims, p->wq.q, channels * per);
  p->wq.q = NULL;
  snprintf(name, sizeof name, "%s:b:q8", n->name);
  const int64_t b_dims[1] = {(int64_t)channels};
  const int32_t bt = add_initializer(w, name, Q8_ELEM_INT32, 1, b_dims, p->bias,
                                     channels * sizeof(int32_t));
  p->bias = NULL;
  if (wt < 0 || bt < 0) return nomem();
  const int32_t y = p->out_tensor;
  const q8_qparams yp = q8_qparams_for_range(w->ranges[y].min, w->ranges[y].max, w->opt->activations);
  const int32_t yq = new_qtensor(w, y, yp);
  if (yq < 0) return nomem();
  const size_t n_attrs = n_extra + 7;
  q8_attr *a = realloc(extra, n_attrs * sizeof *a);
  if (a == NULL) {
    attrs_free(extra, n_extra);
    return nomem();
  }
  memset(a + n_extra, 0, 7 * sizeof *a);
  if (!attr_qparams(&a[n_extra], x_prefix, p->xp) ||
      !attr_floats(&a[n_extra + 2], "w_scales", p->wq.scales, channels) ||
      !attr_qparams(&a[n_extra + 3], "y_", yp) || !attr_int(&a[n_extra + 5], "y_dtype", yp.dtype) ||
      !attr_int(&a[n_extra + 6], "requant", w->profile.requant)) {
    attrs_free(a, n_attrs);
    return nomem();
  }
  const int32_t in[3] = {p->xq, wt, bt};
  if (add_node(w, op, "q8", n->name, in, 3, &yq, 1, a, n_attrs) < 0) return nomem();
  return Q8_OK;
}

static void parts_free(compute_parts *p) {
  free(p->wq.q);
  free(p->wq.scales);
  free(p->bias);
}

/* Conv with constant 4-D weights (2-D convolution) and optional constant bias. */
static q8_status rewrite_conv(rewriter *w, const bool *int8_nodes, size_t node, bool *done) {
  const q8_graph *g = w->src;
  const q8_node *n = &g->nodes[node];
  const int32_t wt = n->n_inputs > 1 ? n->inputs[1] : -1;
  const int32_t bt = n->n_inputs > 2 ? n->inputs[2] : -1;
  const float *wv = float_data(g, wt);
  if (wv == NULL || g->tensors[wt].rank != 4) {
    layer_reason(w, node, "float: the int8 Conv needs constant float 4-D weights");
    return Q8_OK;
  }
  const float *bv = bt >= 0 ? float_data(g, bt) : NULL;
  const size_t channels = (size_t)g->tensors[wt].dims[0];
  if (bt >= 0 && (bv == NULL || q8_tensor_elements(&g->tensors[bt]) != (int64_t)channels)) {
    layer_reason(w, node, "float: the int8 Conv needs a constant bias of %zu values", channels);
    return Q8_OK;
  }
  const size_t per = (size_t)(g->tensors[wt].dims[1] * g->tensors[wt].dims[2] * g->tensors[wt].dims[3]);
  compute_parts p = {0};
  q8_status st = ensure_q(w, n->inputs[0], &p.xq);
  if (st == Q8_OK) {
    p.xp = w->res->qparams[n->inputs[0]];
    st = quantize_weights(w, n, wv, channels, per, &p.wq);
  }
  if (st == Q8_OK) st = quantize_bias(n, bv, channels, p.xp.scale, p.wq.scales, &p.bias);
  q8_attr *a = NULL;
  size_t n_a = 0;
  if (st == Q8_OK) {
    a = attrs_new(n->n_attrs);
    if (a == NULL) st = nomem();
    for (; st == Q8_OK && n_a < n->n_attrs; ++n_a) {
      if (!attr_copy(&a[n_a], &n->attrs[n_a])) st = nomem();
    }
  }
  if (st == Q8_OK) {
    w->res->layers[node].weight_sqnr_db = p.wq.sqnr_db;
    fuse_activation(w, int8_nodes, node, &p.out_tensor);
    w->res->layers[node].output = p.out_tensor; /* measured after the fused clamp */
    st = emit_compute(w, node, "QConv", "x_", &p, g->tensors[wt].dims, 4, channels, per, a, n_a);
    a = NULL;
    *done = st == Q8_OK;
  }
  attrs_free(a, n_a);
  parts_free(&p);
  return st;
}

/* Gemm (transA 0, constant B and C) and MatMul (constant 2-D B) as QGemm. */
static q8_status rewrite_gemm(rewriter *w, const bool *int8_nodes, size_t node, bool matmul,
                              bool *done) {
  const q8_graph *g = w->src;
  const q8_node *n = &g->nodes[node];
  int64_t trans_a = 0, trans_b = 0;
  float alpha = 1, beta = 1;
  q8_status st;
  if (!matmul && ((st = q8_node_attr_int(n, "transA", 0, &trans_a)) ||
                  (st = q8_node_attr_int(n, "transB", 0, &trans_b)) ||
                  (st = q8_node_attr_float(n, "alpha", 1, &alpha)) ||
                  (st = q8_node_attr_float(n, "beta", 1, &beta)))) {
    return st;
  }
  const int32_t bt = n->n_inputs > 1 ? n->inputs[1] : -1;
  const int32_t ct = !matmul && n->n_inputs > 2 ? n->inputs[2] : -1;
  const float *bv = float_data(g, bt);
  if (trans_a) {
    layer_reason(w, node, "float: the int8 Gemm has no transA");
    return Q8_OK;
  }
  if (bv == NULL || g->tensors[bt].rank != 2) {
    layer_reason(w, node, "float: the int8 %s needs constant float 2-D weights", n->op_type);
    return Q8_OK;
  }
  const size_t rows = (size_t)g->tensors[bt].dims[0], cols = (size_t)g->tensors[bt].dims[1];
  const size_t channels = trans_b ? rows : cols, depth = trans_b ? cols : rows;
  const float *cv = ct >= 0 ? float_data(g, ct) : NULL;
  if (ct >= 0 && (cv == NULL || q8_tensor_elements(&g->tensors[ct]) != (int64_t)channels)) {
    layer_reason(w, node, "float: the int8 Gemm needs C constant with one value per output (%zu)",
                 channels);
    return Q8_OK;
  }
  /* Weights as [N][K] rows, alpha folded in; beta folded into the bias. */
  float *wf = malloc(channels * depth * sizeof(float));
  float *bias = malloc(channels * sizeof(float));
  if (wf == NULL || bias == NULL) {
    free(wf);
    free(bias);
    return nomem();
  }
  for (size_t c = 0; c < channels; ++c) {
    for (size_t k = 0; k < depth; ++k) wf[c * depth + k] = alpha * (trans_b ? bv[c * depth + k] : bv[k * channels + c]);
    bias[c] = cv ? beta * cv[c] : 0.0f;
  }
  compute_parts p = {0};
  st = ensure_q(w, n->inputs[0], &p.xq);
  if (st == Q8_OK) {
    p.xp = w->res->qparams[n->inputs[0]];
    st = quantize_weights(w, n, wf, channels, depth, &p.wq);
  }
  if (st == Q8_OK) st = quantize_bias(n, bias, channels, p.xp.scale, p.wq.scales, &p.bias);
  free(wf);
  free(bias);
  if (st == Q8_OK) {
    w->res->layers[node].weight_sqnr_db = p.wq.sqnr_db;
    fuse_activation(w, int8_nodes, node, &p.out_tensor);
    w->res->layers[node].output = p.out_tensor; /* measured after the fused clamp */
    const int64_t dims[2] = {(int64_t)channels, (int64_t)depth};
    st = emit_compute(w, node, "QGemm", "a_", &p, dims, 2, channels, depth, NULL, 0);
    *done = st == Q8_OK;
  }
  parts_free(&p);
  return st;
}

/* Clip's bounds: attributes before opset 11, constant inputs from 11 on. */
static bool clip_bounds(const q8_graph *g, const q8_node *n, float *lo, float *hi) {
  *lo = -INFINITY;
  *hi = INFINITY;
  if (strcmp(n->op_type, "Relu") == 0) {
    *lo = 0;
    return true;
  }
  if (g->opset < 11) {
    return q8_node_attr_float(n, "min", -INFINITY, lo) == Q8_OK &&
           q8_node_attr_float(n, "max", INFINITY, hi) == Q8_OK;
  }
  for (size_t i = 1; i < 3 && i < n->n_inputs; ++i) {
    if (n->inputs[i] < 0) continue;
    const float *v = float_data(g, n->inputs[i]);
    if (v == NULL || q8_tensor_elements(&g->tensors[n->inputs[i]]) != 1) return false;
    *(i == 1 ? lo : hi) = v[0];
  }
  return true;
}

static int32_t quantize_bound(float v, q8_qparams p, q8_profile profile) {
  if (v == -INFINITY) return dtype_min(p.dtype);
  if (v == INFINITY) return dtype_max(p.dtype);
  return q8_ref_quantize_one(v, p.scale, p.zero_point, p.dtype, profile.rounding, profile.scale_op);
}

static q8_status rewrite_clamp(rewriter *w, size_t node, bool *done) {
  const q8_node *n = &w->src->nodes[node];
  float lo, hi;
  if (!clip_bounds(w->src, n, &lo, &hi)) {
    layer_reason(w, node, "float: Clip bounds are not constant");
    return Q8_OK;
  }
  int32_t xq;
  q8_status st = ensure_q(w, n->inputs[0], &xq);
  if (st != Q8_OK) return st;
  const q8_qparams p = w->res->qparams[n->inputs[0]];
  const int32_t yq = new_qtensor(w, n->outputs[0], p);
  q8_attr *a = attrs_new(2);
  if (yq < 0 || a == NULL || !attr_int(&a[0], "lo", quantize_bound(lo, p, w->profile)) ||
      !attr_int(&a[1], "hi", quantize_bound(hi, p, w->profile))) {
    attrs_free(a, 2);
    return nomem();
  }
  if (add_node(w, "QClamp", "q8", n->name, &xq, 1, &yq, 1, a, 2) < 0) return nomem();
  *done = true;
  return Q8_OK;
}

/* Sigmoid and Tanh have fixed output ranges (TFLite's); LeakyRelu's comes
 * from calibration. The table maps every input code to its output code. */
static q8_status rewrite_lookup(rewriter *w, size_t node, bool *done) {
  const q8_node *n = &w->src->nodes[node];
  const bool sigmoid = strcmp(n->op_type, "Sigmoid") == 0, tanh_op = strcmp(n->op_type, "Tanh") == 0;
  const q8_dtype dt = w->opt->activations;
  const int32_t y = n->outputs[0];
  q8_qparams yp;
  if (sigmoid) {
    yp = (q8_qparams){.scale = 1.0f / 256, .zero_point = dt == Q8_UINT8 ? 0 : -128, .dtype = dt};
  } else if (tanh_op) {
    yp = (q8_qparams){.scale = 1.0f / 128, .zero_point = dt == Q8_UINT8 ? 128 : 0, .dtype = dt};
  } else if (w->ranges[y].known) {
    yp = q8_qparams_for_range(w->ranges[y].min, w->ranges[y].max, dt);
  } else {
    layer_reason(w, node, "float: no calibrated range for '%s'", w->src->tensors[y].name);
    return Q8_OK;
  }
  float alpha = 0.01f;
  q8_status st = q8_node_attr_float(n, "alpha", 0.01f, &alpha);
  int32_t xq;
  if (st != Q8_OK || (st = ensure_q(w, n->inputs[0], &xq)) != Q8_OK) return st;
  const q8_qparams xp = w->res->qparams[n->inputs[0]];
  void *table = malloc(256);
  if (table == NULL) return nomem();
  for (int32_t code = 0; code < 256; ++code) {
    const int32_t qx = dtype_min(xp.dtype) + code;
    const float x = (float)(qx - xp.zero_point) * xp.scale;
    const float v = sigmoid ? 1.0f / (1.0f + expf(-x)) : tanh_op ? tanhf(x) : (x < 0 ? alpha * x : x);
    const int32_t q = q8_ref_quantize_one(v, yp.scale, yp.zero_point, dt, w->profile.rounding,
                                          w->profile.scale_op);
    if (dt == Q8_UINT8) ((uint8_t *)table)[code] = (uint8_t)q;
    else ((int8_t *)table)[code] = (int8_t)q;
  }
  char name[256];
  snprintf(name, sizeof name, "%s:table", n->name);
  const int64_t dims[1] = {256};
  const int32_t tt = add_initializer(w, name, elem_of(dt), 1, dims, table, 256);
  const int32_t yq = tt >= 0 ? new_qtensor(w, y, yp) : -1;
  if (yq < 0) return nomem();
  const int32_t in[2] = {xq, tt};
  if (add_node(w, "QLookup", "q8", n->name, in, 2, &yq, 1, NULL, 0) < 0) return nomem();
  *done = true;
  return Q8_OK;
}

/* Add and Concat: inputs at their own parameters, output at its calibrated
 * range; the operator rescales in integers. */
static q8_status rewrite_mixed(rewriter *w, size_t node, bool concat, bool *done) {
  const q8_graph *g = w->src;
  const q8_node *n = &g->nodes[node];
  const int32_t y = n->outputs[0];
  for (size_t i = 0; i < n->n_inputs; ++i) {
    if (n->inputs[i] < 0 || is_constant(g, n->inputs[i])) {
      layer_reason(w, node, "float: the int8 %s takes activations only ('%s' is constant)",
                   n->op_type, n->inputs[i] >= 0 ? g->tensors[n->inputs[i]].name : "");
      return Q8_OK;
    }
  }
  if (!concat && n->n_inputs != 2) return Q8_OK;
  int32_t *in = malloc(n->n_inputs * sizeof(int32_t));
  float *scales = malloc(n->n_inputs * sizeof(float));
  int64_t *zps = malloc(n->n_inputs * sizeof(int64_t));
  q8_status st = in && scales && zps ? Q8_OK : nomem();
  for (size_t i = 0; st == Q8_OK && i < n->n_inputs; ++i) {
    st = ensure_q(w, n->inputs[i], &in[i]);
    scales[i] = w->res->qparams[n->inputs[i]].scale;
    zps[i] = w->res->qparams[n->inputs[i]].zero_point;
  }
  if (st == Q8_OK) {
    const q8_qparams yp = q8_qparams_for_range(w->ranges[y].min, w->ranges[y].max, w->opt->activations);
    const int32_t yq = new_qtensor(w, y, yp);
    int64_t axis = 0;
    if (concat) st = q8_node_attr_int(n, "axis", 0, &axis);
    const size_t n_attrs = concat ? 6 : 7;
    q8_attr *a = attrs_new(n_attrs);
    bool ok = yq >= 0 && a != NULL && st == Q8_OK;
    if (ok && concat) {
      ok = attr_int(&a[0], "axis", axis) && attr_floats(&a[1], "scales", scales, n->n_inputs) &&
           attr_ints(&a[2], "zero_points", zps, n->n_inputs) && attr_qparams(&a[3], "y_", yp) &&
           attr_int(&a[5], "y_dtype", yp.dtype);
    } else if (ok) {
      ok = attr_qparams(&a[0], "a_", w->res->qparams[n->inputs[0]]) &&
           attr_qparams(&a[2], "b_", w->res->qparams[n->inputs[1]]) && attr_qparams(&a[4], "y_", yp) &&
           attr_int(&a[6], "y_dtype", yp.dtype);
    }
    if (!ok) {
      attrs_free(a, n_attrs);
      if (st == Q8_OK) st = nomem();
    } else if (add_node(w, concat ? "QConcat" : "QAdd", "q8", n->name, in, n->n_inputs, &yq, 1, a,
                        n_attrs) < 0) {
      st = nomem();
    } else {
      *done = true;
    }
  }
  free(in);
  free(scales);
  free(zps);
  return st;
}

/* MaxPool and data movement: the output keeps the input's parameters. Only
 * worth it when the input is already int8 (else the node stays float). */
static q8_status rewrite_same_params(rewriter *w, size_t node, bool maxpool, bool *done) {
  const q8_graph *g = w->src;
  const q8_node *n = &g->nodes[node];
  const int32_t x = n->inputs[0];
  if (x < 0 || w->res->qtensor[x] < 0) {
    layer_reason(w, node, "float: its input is float");
    return Q8_OK;
  }
  for (size_t o = 1; o < n->n_outputs; ++o) {
    if (n->outputs[o] >= 0) {
      layer_reason(w, node, "float: its second output ('%s') is float-only", g->tensors[n->outputs[o]].name);
      return Q8_OK;
    }
  }
  if (strcmp(n->op_type, "Identity") == 0 || strcmp(n->op_type, "Dropout") == 0) {
    w->res->qtensor[n->outputs[0]] = w->res->qtensor[x];
    w->res->qparams[n->outputs[0]] = w->res->qparams[x];
    w->res->layers[node].precision = Q8_LAYER_INT8;
    layer_reason(w, node, "int8: passes its input through");
    *done = true;
    return Q8_OK;
  }
  int32_t *in = malloc(n->n_inputs * sizeof(int32_t));
  q8_attr *a = attrs_new(n->n_attrs);
  q8_status st = in && a ? Q8_OK : nomem();
  size_t n_a = 0;
  for (; st == Q8_OK && n_a < n->n_attrs; ++n_a) {
    if (!attr_copy(&a[n_a], &n->attrs[n_a])) st = nomem();
  }
  for (size_t i = 0; st == Q8_OK && i < n->n_inputs; ++i) {
    in[i] = i == 0 ? w->res->qtensor[x] : n->inputs[i];
    if (i > 0 && (st = ensure_float(w, n->inputs[i])) != Q8_OK) break;
  }
  const int32_t yq = st == Q8_OK ? new_qtensor(w, n->outputs[0], w->res->qparams[x]) : -1;
  if (st == Q8_OK && yq < 0) st = nomem();
  if (st == Q8_OK) {
    if (add_node(w, n->op_type, maxpool ? "q8" : "", n->name, in, n->n_inputs, &yq, 1, a, n_a) < 0) {
      st = nomem();
    } else {
      a = NULL;
      *done = true;
    }
  }
  attrs_free(a, n_a);
  free(in);
  return st;
}

static q8_status copy_float_node(rewriter *w, size_t node) {
  const q8_node *n = &w->src->nodes[node];
  for (size_t i = 0; i < n->n_inputs; ++i) {
    const q8_status st = ensure_float(w, n->inputs[i]);
    if (st != Q8_OK) return st;
  }
  q8_attr *a = attrs_new(n->n_attrs);
  if (a == NULL) return nomem();
  for (size_t i = 0; i < n->n_attrs; ++i) {
    if (!attr_copy(&a[i], &n->attrs[i])) {
      attrs_free(a, n->n_attrs);
      return nomem();
    }
  }
  if (add_node(w, n->op_type, n->domain, n->name, n->inputs, n->n_inputs, n->outputs, n->n_outputs,
               a, n->n_attrs) < 0) {
    return nomem();
  }
  for (size_t o = 0; o < n->n_outputs; ++o) {
    if (n->outputs[o] >= 0) w->float_ready[n->outputs[o]] = true;
  }
  return Q8_OK;
}

static q8_status rewrite_node(rewriter *w, const bool *int8_nodes, size_t node) {
  const q8_node *n = &w->src->nodes[node];
  q8_layer_result *layer = &w->res->layers[node];
  layer->output = n->n_outputs > 0 ? n->outputs[0] : -1;
  layer->weight_sqnr_db = NAN;
  if (w->absorbed[node]) return Q8_OK;
  const qkind kind = kind_of(n);
  bool done = false;
  q8_status st = Q8_OK;
  if (!int8_nodes[node]) {
    if (layer->reason[0] == '\0') layer_reason(w, node, "float: kept by the policy");
  } else if (kind == QK_NONE) {
    layer_reason(w, node, "float: the int8 path has no %s", n->op_type);
  } else {
    int32_t acts[64];
    const size_t count = activation_inputs(w->src, n, kind, acts);
    bool ranged = true;
    for (size_t a = 0; a < count && a < 64; ++a) {
      if (w->res->qtensor[acts[a]] < 0 && !w->ranges[acts[a]].known) {
        layer_reason(w, node, "float: no calibrated range for its input '%s'",
                     w->src->tensors[acts[a]].name);
        ranged = false;
      }
    }
    const int32_t y = layer->output;
    const bool output_ranged = kind == QK_MOVE || kind == QK_MAXPOOL || kind == QK_CLAMP ||
                               kind == QK_LOOKUP || (y >= 0 && w->ranges[y].known);
    if (ranged && !output_ranged) {
      layer_reason(w, node, "float: no calibrated range for its output '%s'",
                   y >= 0 ? w->src->tensors[y].name : "");
    } else if (ranged) {
      switch (kind) {
        case QK_CONV: st = rewrite_conv(w, int8_nodes, node, &done); break;
        case QK_GEMM: st = rewrite_gemm(w, int8_nodes, node, false, &done); break;
        case QK_MATMUL: st = rewrite_gemm(w, int8_nodes, node, true, &done); break;
        case QK_CLAMP: st = rewrite_clamp(w, node, &done); break;
        case QK_LOOKUP: st = rewrite_lookup(w, node, &done); break;
        case QK_ADD: st = rewrite_mixed(w, node, false, &done); break;
        case QK_CONCAT: st = rewrite_mixed(w, node, true, &done); break;
        case QK_MAXPOOL: st = rewrite_same_params(w, node, true, &done); break;
        case QK_MOVE: st = rewrite_same_params(w, node, false, &done); break;
        case QK_NONE: break;
      }
    }
  }
  if (st != Q8_OK) return st;
  if (done) {
    layer->precision = Q8_LAYER_INT8;
    if (layer->reason[0] == '\0') layer_reason(w, node, "int8");
    return Q8_OK;
  }
  layer->precision = Q8_LAYER_FLOAT;
  return copy_float_node(w, node);
}

static q8_status rewriter_init(rewriter *w, const q8_graph *src, q8_quant_result *res) {
  const size_t nt = src->n_tensors, nn = src->n_nodes;
  res->n_layers = nn;
  res->n_tensors = nt;
  res->layers = calloc(nn ? nn : 1, sizeof *res->layers);
  res->qtensor = malloc((nt ? nt : 1) * sizeof *res->qtensor);
  res->qparams = calloc(nt ? nt : 1, sizeof *res->qparams);
  res->graph = calloc(1, sizeof *res->graph);
  w->float_ready = calloc(nt ? nt : 1, sizeof *w->float_ready);
  w->absorbed = calloc(nn ? nn : 1, sizeof *w->absorbed);
  if (!res->layers || !res->qtensor || !res->qparams || !res->graph || !w->float_ready || !w->absorbed) {
    return nomem();
  }
  for (size_t t = 0; t < nt; ++t) res->qtensor[t] = -1;
  q8_graph *g = res->graph;
  w->dst = g;
  g->name = q8_str_dup(src->name);
  g->producer_name = q8_str_dup("q8 quantizer");
  g->ir_version = src->ir_version;
  g->opset = src->opset;
  g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
  g->inputs = malloc((src->n_inputs ? src->n_inputs : 1) * sizeof(int32_t));
  g->outputs = malloc((src->n_outputs ? src->n_outputs : 1) * sizeof(int32_t));
  if (!g->name || !g->producer_name || !g->tensors || !g->inputs || !g->outputs) return nomem();
  w->cap_tensors = nt ? nt : 1;
  for (size_t t = 0; t < nt; ++t) {
    ++g->n_tensors;
    if (!copy_tensor(&src->tensors[t], &g->tensors[t])) return nomem();
    w->float_ready[t] = src->tensors[t].kind != Q8_TENSOR_VALUE;
  }
  g->n_inputs = src->n_inputs;
  memcpy(g->inputs, src->inputs, src->n_inputs * sizeof(int32_t));
  g->n_outputs = src->n_outputs;
  memcpy(g->outputs, src->outputs, src->n_outputs * sizeof(int32_t));
  return Q8_OK;
}

q8_status q8_quantize_graph(const q8_graph *graph, const bool *int8_nodes,
                            const q8_tensor_range *ranges, const q8_quantize_options *options,
                            q8_quant_result *result) {
  q8_clear_error();
  if (result == NULL) return q8_fail(Q8_ERR_NULL, "quantize: result is NULL");
  *result = (q8_quant_result){0};
  if (graph == NULL || int8_nodes == NULL || ranges == NULL) {
    return q8_fail(Q8_ERR_NULL, "quantize: graph, node choices or ranges are NULL");
  }
  q8_quantize_options defaults;
  q8_quantize_options_default(&defaults);
  if (options == NULL) options = &defaults;
  if (options->activations != Q8_INT8 && options->activations != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "quantize: activations must be int8 or uint8");
  }
  if ((int)options->profile < Q8_PROFILE_TFLITE || options->profile > Q8_PROFILE_PYTORCH) {
    return q8_fail(Q8_ERR_ARG, "quantize: unknown numeric profile %d", (int)options->profile);
  }
  rewriter w = {.src = graph, .ranges = ranges, .opt = options,
                .profile = q8_profile_get(options->profile), .res = result};
  q8_status st = rewriter_init(&w, graph, result);
  for (size_t i = 0; st == Q8_OK && i < graph->n_nodes; ++i) st = rewrite_node(&w, int8_nodes, i);
  for (size_t o = 0; st == Q8_OK && o < graph->n_outputs; ++o) st = ensure_float(&w, graph->outputs[o]);
  free(w.float_ready);
  free(w.absorbed);
  if (st != Q8_OK) q8_quant_result_free(result);
  return st;
}
