/* Graph executor (see float_exec.h): the session, the operator contract of
 * exec_ops.h, and the float operators. Those are in the order of their table
 * at the bottom; each reads its inputs' run-time shapes, checks them,
 * allocates its outputs and computes them with plain loops. Summation orders
 * are fixed, so results are the same on every run. */
#include "quant/float_exec.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "quant/exec_ops.h"

typedef q8_exec_value value;
typedef q8_exec_ctx ctx;

struct q8_float_session {
  const q8_graph *graph;
  value *values;          /* one per graph tensor */
  const q8_exec_op **ops; /* one per node, resolved at create */
  void **states;          /* one cache slot per node (exec_ops.h) */
};



/* ---- helpers ---------------------------------------------------------------- */

static char *shape_str(int rank, const int64_t *dims, char *buf, size_t size) {
  size_t at = 0;
  at += (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < rank && at < size; ++d) {
    at += (size_t)snprintf(buf + at, size - at, d ? ",%lld" : "%lld", (long long)dims[d]);
  }
  if (at < size) snprintf(buf + at, size - at, "]");
  return buf;
}

static size_t product(const int64_t *dims, int from, int to) {
  size_t n = 1;
  for (int d = from; d < to; ++d) n *= (size_t)dims[d];
  return n;
}

static q8_status node_fail(const ctx *c, q8_status status, const char *what) {
  return q8_fail(status, "node '%s' (%s): %s", c->node->name, c->node->op_type, what);
}

static void value_clear(value *v) {
  if (v->owned) free(v->data);
  *v = (value){.rank = -1};
}

static size_t n_in(const ctx *c) { return c->node->n_inputs; }

/* Input k, or NULL when omitted (an optional input left "" or absent). */
static const value *in_opt(const ctx *c, size_t k) {
  if (k >= c->node->n_inputs || c->node->inputs[k] < 0) return NULL;
  const value *v = &c->s->values[c->node->inputs[k]];
  return v->rank >= 0 ? v : NULL;
}

static bool wants_output(const ctx *c, size_t k) {
  return k < c->node->n_outputs && c->node->outputs[k] >= 0;
}

/* Allocates output k (its old value freed); NULL when not requested. */
static q8_status out_alloc(ctx *c, size_t k, q8_elem_type type, int rank, const int64_t *dims,
                           value **out) {
  *out = NULL;
  if (!wants_output(c, k)) return Q8_OK;
  value *v = &c->s->values[c->node->outputs[k]];
  value_clear(v);
  v->type = type;
  v->rank = rank;
  for (int d = 0; d < rank; ++d) v->dims[d] = dims[d];
  v->count = product(dims, 0, rank);
  v->data = calloc(v->count ? v->count : 1, q8_elem_size(type));
  v->owned = true;
  if (!v->data) {
    v->rank = -1;
    return q8_fail(Q8_ERR_NOMEM, "node '%s' (%s): out of memory for output '%s'", c->node->name,
                   c->node->op_type, c->s->graph->tensors[c->node->outputs[k]].name);
  }
  *out = v;
  return Q8_OK;
}

static const char *in_name(const ctx *c, size_t k) {
  return c->s->graph->tensors[c->node->inputs[k]].name;
}

static const char *type_list(unsigned types, char *buf, size_t size) {
  size_t at = 0;
  buf[0] = '\0';
  for (unsigned t = 0; t < 32 && at < size; ++t) {
    if (types & Q8_EXEC_TYPE(t)) {
      at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? " or " : "", q8_elem_type_name((q8_elem_type)t));
    }
  }
  return buf;
}

/* Required input k of one of `types`; another type is an edge whose two
 * ends disagree, named from both sides. */
static q8_status in_typed(const ctx *c, size_t k, unsigned types, const value **v) {
  *v = in_opt(c, k);
  if (!*v) {
    return q8_fail(Q8_ERR_ARG, "node '%s' (%s): input %zu is missing", c->node->name,
                   c->node->op_type, k);
  }
  if (types & Q8_EXEC_TYPE((*v)->type)) return Q8_OK;
  const q8_tensor *t = &c->s->graph->tensors[c->node->inputs[k]];
  char want[160], from[300];
  if (t->producer >= 0) {
    const q8_node *p = &c->s->graph->nodes[t->producer];
    snprintf(from, sizeof from, "node '%s' (%s) produces", p->name, p->op_type);
  } else {
    snprintf(from, sizeof from, "%s is", t->kind == Q8_TENSOR_INPUT ? "graph input" : "initializer");
  }
  return q8_fail(Q8_ERR_ARG, "dtype mismatch on edge '%s': %s %s but node '%s' (%s) takes %s there (input %zu)",
                 t->name, from, q8_elem_type_name((*v)->type), c->node->name, c->node->op_type,
                 type_list(types, want, sizeof want), k);
}

/* Required float input k. */
static q8_status in_float(const ctx *c, size_t k, const value **v) {
  return in_typed(c, k, Q8_EXEC_TYPE(Q8_ELEM_FLOAT), v);
}

/* Required input k of any type (data movement). */
static q8_status in_any(const ctx *c, size_t k, const value **v) { return in_typed(c, k, ~0u, v); }

/* An integer list held by a tensor input (Reshape's shape, Unsqueeze's axes). */
static q8_status in_ints(const ctx *c, size_t k, int64_t *out, size_t cap, size_t *count) {
  const value *v;
  q8_status st = in_any(c, k, &v);
  if (st) return st;
  if (v->type != Q8_ELEM_INT64 && v->type != Q8_ELEM_INT32) {
    return q8_fail(Q8_ERR_ARG, "node '%s' (%s): input '%s' is %s, expected int64",
                   c->node->name, c->node->op_type, in_name(c, k), q8_elem_type_name(v->type));
  }
  if (v->count > cap) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "node '%s' (%s): input '%s' has %zu entries, more than rank %d",
                   c->node->name, c->node->op_type, in_name(c, k), v->count, Q8_MAX_RANK);
  }
  for (size_t i = 0; i < v->count; ++i) {
    out[i] = v->type == Q8_ELEM_INT64 ? ((const int64_t *)v->data)[i] : ((const int32_t *)v->data)[i];
  }
  *count = v->count;
  return Q8_OK;
}

/* Normalizes a possibly negative axis into [0, rank). */
static q8_status axis_norm(const ctx *c, int64_t axis, int rank, int *out) {
  if (axis < -rank || axis >= rank) {
    char msg[96];
    snprintf(msg, sizeof msg, "axis %lld is outside rank %d", (long long)axis, rank);
    return node_fail(c, Q8_ERR_ARG, msg);
  }
  *out = (int)(axis < 0 ? axis + rank : axis);
  return Q8_OK;
}

static q8_status attr_int(const ctx *c, const char *name, int64_t def, int64_t *v) {
  return q8_node_attr_int(c->node, name, def, v);
}

static q8_status attr_float(const ctx *c, const char *name, float def, float *v) {
  return q8_node_attr_float(c->node, name, def, v);
}

/* Output = input k's value with another shape (Flatten, Reshape, Squeeze, ...). */
static q8_status reshaped_copy(ctx *c, const value *x, int rank, const int64_t *dims) {
  if (product(dims, 0, rank) != x->count) {
    char a[160], b[160], msg[400];
    snprintf(msg, sizeof msg, "cannot reshape %s to %s", shape_str(x->rank, x->dims, a, sizeof a),
             shape_str(rank, dims, b, sizeof b));
    return node_fail(c, Q8_ERR_ARG, msg);
  }
  value *y;
  q8_status st = out_alloc(c, 0, x->type, rank, dims, &y);
  if (st || !y) return st;
  if (x->count) memcpy(y->data, x->data, x->count * q8_elem_size(x->type));
  return Q8_OK;
}

/* Walks the elements of a shape in row-major order while moving up to two
 * offsets by their own strides (0 along axes they broadcast or reduce). */
typedef struct odometer {
  int rank;
  const int64_t *dims;
  const int64_t *stride[2]; /* NULL: offset unused */
  int64_t idx[Q8_MAX_RANK];
  int64_t at[2];
} odometer;

static odometer odometer_new(int rank, const int64_t *dims, const int64_t *s0, const int64_t *s1) {
  return (odometer){.rank = rank, .dims = dims, .stride = {s0, s1}};
}

static void odometer_next(odometer *o) {
  for (int d = o->rank - 1; d >= 0; --d) {
    for (int j = 0; j < 2; ++j) {
      if (o->stride[j]) o->at[j] += o->stride[j][d];
    }
    if (++o->idx[d] < o->dims[d]) return;
    for (int j = 0; j < 2; ++j) {
      if (o->stride[j]) o->at[j] -= o->stride[j][d] * o->dims[d];
    }
    o->idx[d] = 0;
  }
}

/* Elements as double and back: Cast between the types the float path holds. */
static double load_elem(q8_elem_type type, const void *data, size_t i) {
  switch (type) {
  case Q8_ELEM_FLOAT: return ((const float *)data)[i];
  case Q8_ELEM_INT64: return (double)((const int64_t *)data)[i];
  case Q8_ELEM_INT32: return ((const int32_t *)data)[i];
  case Q8_ELEM_INT8: return ((const int8_t *)data)[i];
  default: return ((const uint8_t *)data)[i];
  }
}

static void store_elem(q8_elem_type type, void *data, size_t i, double v) {
  switch (type) {
  case Q8_ELEM_FLOAT: ((float *)data)[i] = (float)v; break;
  case Q8_ELEM_INT64: ((int64_t *)data)[i] = (int64_t)v; break;
  case Q8_ELEM_INT32: ((int32_t *)data)[i] = (int32_t)v; break;
  /* 8-bit targets saturate (NaN gives 0): out-of-range conversion is undefined in C. */
  case Q8_ELEM_INT8: ((int8_t *)data)[i] = (int8_t)(isnan(v) ? 0 : v < -128 ? -128 : v > 127 ? 127 : v); break;
  case Q8_ELEM_UINT8: ((uint8_t *)data)[i] = (uint8_t)(isnan(v) ? 0 : v < 0 ? 0 : v > 255 ? 255 : v); break;
  default: ((uint8_t *)data)[i] = v != 0.0; break;
  }
}

/* Integer elements of the types Add, Sub, Mul, Div, Clip take (held as
 * int8, uint8, int32, int64): loaded exactly, stored modulo 2^bits, so that
 * arithmetic wraps as numpy's does on these types. */
#define INT_TYPES \
  (Q8_EXEC_TYPE(Q8_ELEM_INT8) | Q8_EXEC_TYPE(Q8_ELEM_UINT8) | Q8_EXEC_TYPE(Q8_ELEM_INT32) | Q8_EXEC_TYPE(Q8_ELEM_INT64))

static int64_t load_int(q8_elem_type type, const void *data, size_t i) {
  switch (type) {
  case Q8_ELEM_INT8: return ((const int8_t *)data)[i];
  case Q8_ELEM_UINT8: return ((const uint8_t *)data)[i];
  case Q8_ELEM_INT32: return ((const int32_t *)data)[i];
  default: return ((const int64_t *)data)[i];
  }
}

/* The low bits of v: the unsigned store is the modulo, its bytes the
 * two's complement value of the signed types. */
static void store_int_wrapped(q8_elem_type type, void *data, size_t i, uint64_t v) {
  switch (type) {
  case Q8_ELEM_INT8:
  case Q8_ELEM_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
  case Q8_ELEM_INT32: ((uint32_t *)data)[i] = (uint32_t)v; break;
  default: ((uint64_t *)data)[i] = v; break;
  }
}

/* ---- numpy broadcasting ------------------------------------------------------- */

/* Output shape of broadcasting a and b, and each operand's strides aligned
 * to it (0 along broadcast axes). */
static q8_status broadcast(const ctx *c, const value *a, const value *b, int *rank, int64_t *dims,
                           int64_t *sa, int64_t *sb) {
  const int r = a->rank > b->rank ? a->rank : b->rank;
  int64_t da[Q8_MAX_RANK], db[Q8_MAX_RANK];
  for (int d = 0; d < r; ++d) {
    const int ia = d - (r - a->rank), ib = d - (r - b->rank);
    da[d] = ia >= 0 ? a->dims[ia] : 1;
    db[d] = ib >= 0 ? b->dims[ib] : 1;
    if (da[d] != db[d] && da[d] != 1 && db[d] != 1) {
      char x[160], y[160], msg[400];
      snprintf(msg, sizeof msg, "shapes %s ('%s') and %s ('%s') do not broadcast",
               shape_str(a->rank, a->dims, x, sizeof x), in_name(c, 0),
               shape_str(b->rank, b->dims, y, sizeof y), in_name(c, 1));
      return node_fail(c, Q8_ERR_ARG, msg);
    }
    dims[d] = da[d] == 1 ? db[d] : da[d];
  }
  int64_t ta = 1, tb = 1;
  for (int d = r - 1; d >= 0; --d) {
    sa[d] = da[d] == 1 ? 0 : ta;
    sb[d] = db[d] == 1 ? 0 : tb;
    ta *= da[d];
    tb *= db[d];
  }
  *rank = r;
  return Q8_OK;
}

typedef enum binop { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MIN, OP_MAX } binop;

static inline float apply_binop(binop op, float x, float y) {
  switch (op) {
  case OP_ADD: return x + y;
  case OP_SUB: return x - y;
  case OP_MUL: return x * y;
  /* NaN wins either way, as numpy's minimum and maximum. */
  case OP_MIN: return x < y || isnan(x) ? x : y;
  case OP_MAX: return x > y || isnan(x) ? x : y;
  default: return x / y;
  }
}

/* Integer Add, Sub, Mul, Div on equal types: int64 shape values (exported
 * models compute Reshape targets and axes with Shape, Gather, Sub, ...) and
 * int8/uint8/int32 data as ONNX's tests define them (numpy): Add, Sub and
 * Mul wrap modulo 2^bits, Div truncates toward zero as C's. */
static q8_status binary_int(ctx *c, binop op, const value *a, const value *b) {
  int rank = 0;
  int64_t dims[Q8_MAX_RANK], sa[Q8_MAX_RANK], sb[Q8_MAX_RANK];
  q8_status st;
  if ((st = broadcast(c, a, b, &rank, dims, sa, sb))) return st;
  value *y;
  if ((st = out_alloc(c, 0, a->type, rank, dims, &y)) || !y) return st;
  odometer o = odometer_new(rank, dims, sa, sb);
  for (size_t i = 0; i < y->count; ++i, odometer_next(&o)) {
    const int64_t x = load_int(a->type, a->data, (size_t)o.at[0]), v = load_int(b->type, b->data, (size_t)o.at[1]);
    /* Unsigned arithmetic: wrapping is defined, and its low bits are the
     * narrower type's wrapped result. */
    const uint64_t ux = (uint64_t)x, uv = (uint64_t)v;
    uint64_t r;
    switch (op) {
    case OP_ADD: r = ux + uv; break;
    case OP_SUB: r = ux - uv; break;
    case OP_MUL: r = ux * uv; break;
    default:
      if (v == 0) return node_fail(c, Q8_ERR_ARG, "integer division by zero");
      r = v == -1 ? 0 - ux : (uint64_t)(x / v); /* INT64_MIN / -1 overflows in C; negation wraps */
      break;
    }
    store_int_wrapped(y->type, y->data, i, r);
  }
  return Q8_OK;
}

static q8_status op_binary(ctx *c, binop op) {
  const value *a = in_opt(c, 0), *b;
  q8_status st;
  if (a && a->type != Q8_ELEM_FLOAT && (INT_TYPES & Q8_EXEC_TYPE(a->type))) {
    if ((st = in_typed(c, 1, Q8_EXEC_TYPE(a->type), &b))) return st;
    return binary_int(c, op, a, b);
  }
  if ((st = in_float(c, 0, &a)) || (st = in_float(c, 1, &b))) return st;
  int rank = 0;
  int64_t dims[Q8_MAX_RANK], sa[Q8_MAX_RANK], sb[Q8_MAX_RANK];
  if ((st = broadcast(c, a, b, &rank, dims, sa, sb))) return st;
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, rank, dims, &y)) || !y) return st;
  const float *pa = a->data, *pb = b->data;
  float *py = y->data;
  if (a->count == y->count && b->count == y->count) {
    for (size_t i = 0; i < y->count; ++i) py[i] = apply_binop(op, pa[i], pb[i]);
    return Q8_OK;
  }
  odometer o = odometer_new(rank, dims, sa, sb);
  for (size_t i = 0; i < y->count; ++i, odometer_next(&o)) py[i] = apply_binop(op, pa[o.at[0]], pb[o.at[1]]);
  return Q8_OK;
}

static q8_status op_add(ctx *c) { return op_binary(c, OP_ADD); }
static q8_status op_sub(ctx *c) { return op_binary(c, OP_SUB); }
static q8_status op_mul(ctx *c) { return op_binary(c, OP_MUL); }
static q8_status op_div(ctx *c) { return op_binary(c, OP_DIV); }

/* Min and Max take 1 to N inputs, all broadcast together. */
static q8_status op_variadic(ctx *c, binop op) {
  const value *x;
  q8_status st;
  if ((st = in_float(c, 0, &x))) return st;
  value shape = *x;
  int64_t sa[Q8_MAX_RANK], sb[Q8_MAX_RANK];
  for (size_t k = 1; k < n_in(c); ++k) {
    const value *v;
    value wider = shape;
    if ((st = in_float(c, k, &v)) || (st = broadcast(c, &shape, v, &wider.rank, wider.dims, sa, sb))) return st;
    shape = wider;
  }
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, shape.rank, shape.dims, &y)) || !y) return st;
  float *py = y->data;
  for (size_t k = 0; k < n_in(c); ++k) {
    const value *v = in_opt(c, k);
    int rank = 0;
    int64_t dims[Q8_MAX_RANK];
    if ((st = broadcast(c, y, v, &rank, dims, sa, sb))) return st;
    const float *pv = v->data;
    odometer o = odometer_new(rank, dims, sb, NULL);
    for (size_t i = 0; i < y->count; ++i, odometer_next(&o)) {
      py[i] = k == 0 ? pv[o.at[0]] : apply_binop(op, py[i], pv[o.at[0]]);
    }
  }
  return Q8_OK;
}

static q8_status op_min(ctx *c) { return op_variadic(c, OP_MIN); }
static q8_status op_max(ctx *c) { return op_variadic(c, OP_MAX); }

/* ---- elementwise unary ---------------------------------------------------------- */

typedef enum unop { UN_ROUND, UN_RELU, UN_SIGMOID, UN_TANH, UN_ERF, UN_EXP, UN_SQRT, UN_RECIPROCAL, UN_NEG, UN_LEAKY, UN_CLIP } unop;

static q8_status op_unary(ctx *c, unop op, float p0, float p1) {
  const value *x;
  q8_status st;
  if ((st = in_float(c, 0, &x))) return st;
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, x->rank, x->dims, &y)) || !y) return st;
  const float *px = x->data;
  float *py = y->data;
  for (size_t i = 0; i < x->count; ++i) {
    const float v = px[i];
    float r;
    switch (op) {
    case UN_ROUND: r = nearbyintf(v); break; /* half to even in the default rounding mode */
    case UN_RELU: r = v > 0.0f ? v : 0.0f; break;
    case UN_SIGMOID: r = 1.0f / (1.0f + expf(-v)); break;
    case UN_TANH: r = tanhf(v); break;
    case UN_ERF: r = erff(v); break;
    case UN_EXP: r = expf(v); break;
    case UN_SQRT: r = sqrtf(v); break;
    case UN_RECIPROCAL: r = 1.0f / v; break;
    case UN_NEG: r = -v; break;
    case UN_LEAKY: r = v < 0.0f ? v * p0 : v; break;
    default: /* Clip, min before max as ONNX says (all max when min > max); NaN passes through */
      r = v < p0 ? p0 : v;
      r = r > p1 ? p1 : r;
      break;
    }
    py[i] = r;
  }
  return Q8_OK;
}

static q8_status op_relu(ctx *c) { return op_unary(c, UN_RELU, 0, 0); }
static q8_status op_round(ctx *c) { return op_unary(c, UN_ROUND, 0, 0); }
static q8_status op_sigmoid(ctx *c) { return op_unary(c, UN_SIGMOID, 0, 0); }
static q8_status op_tanh(ctx *c) { return op_unary(c, UN_TANH, 0, 0); }
static q8_status op_erf(ctx *c) { return op_unary(c, UN_ERF, 0, 0); }
static q8_status op_exp(ctx *c) { return op_unary(c, UN_EXP, 0, 0); }
static q8_status op_sqrt(ctx *c) { return op_unary(c, UN_SQRT, 0, 0); }
static q8_status op_reciprocal(ctx *c) { return op_unary(c, UN_RECIPROCAL, 0, 0); }

static q8_status op_neg(ctx *c) {
  const value *x = in_opt(c, 0);
  if (!x || x->type != Q8_ELEM_INT64) return op_unary(c, UN_NEG, 0, 0);
  value *y;
  q8_status st = out_alloc(c, 0, Q8_ELEM_INT64, x->rank, x->dims, &y);
  if (st || !y) return st;
  for (size_t i = 0; i < x->count; ++i) ((int64_t *)y->data)[i] = -((const int64_t *)x->data)[i];
  return Q8_OK;
}

static q8_status op_leakyrelu(ctx *c) {
  float alpha;
  q8_status st = attr_float(c, "alpha", 0.01f, &alpha);
  return st ? st : op_unary(c, UN_LEAKY, alpha, 0);
}

/* Clip of integer data (opset 12+): bounds of the input's own type, the
 * type's limits when omitted (what ONNX's numeric_limits defaults give). */
static q8_status clip_int(ctx *c, const value *x) {
  int64_t bound[2];
  switch (x->type) {
  case Q8_ELEM_INT8: bound[0] = INT8_MIN, bound[1] = INT8_MAX; break;
  case Q8_ELEM_UINT8: bound[0] = 0, bound[1] = UINT8_MAX; break;
  case Q8_ELEM_INT32: bound[0] = INT32_MIN, bound[1] = INT32_MAX; break;
  default: bound[0] = INT64_MIN, bound[1] = INT64_MAX; break;
  }
  q8_status st;
  for (size_t k = 1; k <= 2; ++k) {
    const value *b = in_opt(c, k);
    if (!b) continue;
    if ((st = in_typed(c, k, Q8_EXEC_TYPE(x->type), &b))) return st;
    if (b->count != 1) return node_fail(c, Q8_ERR_ARG, "min and max must be scalars");
    bound[k - 1] = load_int(b->type, b->data, 0);
  }
  value *y;
  if ((st = out_alloc(c, 0, x->type, x->rank, x->dims, &y)) || !y) return st;
  for (size_t i = 0; i < x->count; ++i) {
    const int64_t v = load_int(x->type, x->data, i);
    /* min before max: with min > max every element becomes max, as numpy's clip. */
    const int64_t r = v < bound[0] ? bound[0] : v;
    store_int_wrapped(y->type, y->data, i, (uint64_t)(r > bound[1] ? bound[1] : r));
  }
  return Q8_OK;
}

/* Clip: bounds are optional scalar inputs from opset 11, attributes before. */
static q8_status op_clip(ctx *c) {
  float lo = -INFINITY, hi = INFINITY;
  q8_status st;
  const value *x = in_opt(c, 0);
  if (x && c->s->graph->opset >= 12 && x->type != Q8_ELEM_FLOAT && (INT_TYPES & Q8_EXEC_TYPE(x->type))) {
    return clip_int(c, x);
  }
  if (c->s->graph->opset < 11) {
    if ((st = attr_float(c, "min", -INFINITY, &lo)) || (st = attr_float(c, "max", INFINITY, &hi))) return st;
  } else {
    for (size_t k = 1; k <= 2; ++k) {
      const value *b = in_opt(c, k);
      if (!b) continue;
      if (b->type != Q8_ELEM_FLOAT || b->count != 1) {
        return node_fail(c, Q8_ERR_ARG, "min and max must be float32 scalars");
      }
      *(k == 1 ? &lo : &hi) = *(const float *)b->data;
    }
  }
  return op_unary(c, UN_CLIP, lo, hi);
}

/* ---- Gemm, MatMul --------------------------------------------------------------- */

static q8_status op_gemm(ctx *c) {
  const value *a, *b, *cc = in_opt(c, 2);
  q8_status st;
  if ((st = in_float(c, 0, &a)) || (st = in_float(c, 1, &b))) return st;
  if (cc && cc->type != Q8_ELEM_FLOAT) return in_float(c, 2, &cc);
  float alpha, beta;
  int64_t trans_a, trans_b;
  if ((st = attr_float(c, "alpha", 1.0f, &alpha)) || (st = attr_float(c, "beta", 1.0f, &beta)) ||
      (st = attr_int(c, "transA", 0, &trans_a)) || (st = attr_int(c, "transB", 0, &trans_b))) {
    return st;
  }
  char sa[160], sb[160], msg[400];
  if (a->rank != 2 || b->rank != 2) {
    snprintf(msg, sizeof msg, "A %s and B %s must be 2-D", shape_str(a->rank, a->dims, sa, sizeof sa),
             shape_str(b->rank, b->dims, sb, sizeof sb));
    return node_fail(c, Q8_ERR_ARG, msg);
  }
  const int64_t m = trans_a ? a->dims[1] : a->dims[0], k = trans_a ? a->dims[0] : a->dims[1];
  const int64_t kb = trans_b ? b->dims[1] : b->dims[0], n = trans_b ? b->dims[0] : b->dims[1];
  if (k != kb) {
    snprintf(msg, sizeof msg, "A %s and B %s (transA %lld, transB %lld) disagree on K",
             shape_str(a->rank, a->dims, sa, sizeof sa), shape_str(b->rank, b->dims, sb, sizeof sb),
             (long long)trans_a, (long long)trans_b);
    return node_fail(c, Q8_ERR_ARG, msg);
  }
  /* C broadcasts one way to [M, N]. */
  int64_t cs0 = 0, cs1 = 0;
  if (cc) {
    const int64_t c0 = cc->rank >= 2 ? cc->dims[cc->rank - 2] : 1, c1 = cc->rank >= 1 ? cc->dims[cc->rank - 1] : 1;
    if (cc->rank > 2 || (c0 != 1 && c0 != m) || (c1 != 1 && c1 != n)) {
      const int64_t mn[2] = {m, n};
      snprintf(msg, sizeof msg, "C %s does not broadcast to %s", shape_str(cc->rank, cc->dims, sa, sizeof sa),
               shape_str(2, mn, sb, sizeof sb));
      return node_fail(c, Q8_ERR_ARG, msg);
    }
    cs0 = c0 == 1 ? 0 : c1;
    cs1 = c1 == 1 ? 0 : 1;
  }
  const int64_t dims[2] = {m, n};
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, 2, dims, &y)) || !y) return st;
  const float *pa = a->data, *pb = b->data, *pc = cc ? cc->data : NULL;
  float *py = y->data;
  const int64_t a_m = trans_a ? 1 : k, a_k = trans_a ? m : 1;
  const int64_t b_k = trans_b ? 1 : n, b_n = trans_b ? k : 1;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) acc += pa[i * a_m + p * a_k] * pb[p * b_k + j * b_n];
      py[i * n + j] = alpha * acc + (pc ? beta * pc[i * cs0 + j * cs1] : 0.0f);
    }
  }
  return Q8_OK;
}

q8_status q8_exec_matmul_shape(const ctx *c, const value *a, const value *b, q8_exec_matmul *g) {
  char sa[160], sb[160];
  *g = (q8_exec_matmul){0};
  if (a->rank < 1 || b->rank < 1) return node_fail(c, Q8_ERR_ARG, "operands must have rank >= 1");
  /* 1-D operands are promoted (A to a row, B to a column) and the added axis dropped after. */
  g->m = a->rank == 1 ? 1 : a->dims[a->rank - 2];
  g->k = a->dims[a->rank - 1];
  const int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
  g->n = b->rank == 1 ? 1 : b->dims[b->rank - 1];
  if (g->k != kb) {
    return q8_exec_fail(c, Q8_ERR_ARG, "shapes %s and %s disagree on K", shape_str(a->rank, a->dims, sa, sizeof sa),
                        shape_str(b->rank, b->dims, sb, sizeof sb));
  }
  const int ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
  g->batch_rank = ba > bb ? ba : bb;
  int64_t ta = g->m * g->k, tb = g->k * g->n;
  for (int d = g->batch_rank - 1; d >= 0; --d) {
    const int ia = d - (g->batch_rank - ba), ib = d - (g->batch_rank - bb);
    const int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      return q8_exec_fail(c, Q8_ERR_ARG, "batch dimensions of %s and %s do not broadcast",
                          shape_str(a->rank, a->dims, sa, sizeof sa), shape_str(b->rank, b->dims, sb, sizeof sb));
    }
    g->batch_dims[d] = da == 1 ? db : da;
    g->a_stride[d] = da == 1 ? 0 : ta;
    g->b_stride[d] = db == 1 ? 0 : tb;
    ta *= da;
    tb *= db;
  }
  for (int d = 0; d < g->batch_rank; ++d) g->dims[g->rank++] = g->batch_dims[d];
  if (a->rank > 1) g->dims[g->rank++] = g->m;
  if (b->rank > 1) g->dims[g->rank++] = g->n;
  g->batches = product(g->batch_dims, 0, g->batch_rank);
  return Q8_OK;
}

static q8_status op_matmul(ctx *c) {
  const value *a, *b;
  q8_exec_matmul g;
  q8_status st;
  if ((st = in_float(c, 0, &a)) || (st = in_float(c, 1, &b)) || (st = q8_exec_matmul_shape(c, a, b, &g))) return st;
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, g.rank, g.dims, &y)) || !y) return st;
  const int64_t m = g.m, k = g.k, n = g.n;
  odometer o = odometer_new(g.batch_rank, g.batch_dims, g.a_stride, g.b_stride);
  float *py = y->data;
  for (size_t bi = 0; bi < g.batches; ++bi, odometer_next(&o)) {
    const float *pa = (const float *)a->data + o.at[0], *pb = (const float *)b->data + o.at[1];
    float *out = py + bi * (size_t)(m * n);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t p = 0; p < k; ++p) {
        const float av = pa[i * k + p];
        for (int64_t j = 0; j < n; ++j) out[i * n + j] += av * pb[p * n + j];
      }
    }
  }
  return Q8_OK;
}

/* ---- Conv and pooling: window geometry ------------------------------------------
 * 1-, 2- and 3-D windows all run as 3-D ones: missing leading spatial axes
 * have size 1, kernel 1, stride 1, no padding. */

#define SP Q8_EXEC_SPATIAL

typedef q8_exec_window window;

q8_status q8_exec_window_init(const ctx *c, const value *x, const int64_t *kernel, bool ceil_mode, window *w) {
  const int r = x->rank - 2;
  char msg[200];
  if (r < 1 || r > SP) {
    snprintf(msg, sizeof msg, "input rank %d: only 1 to %d spatial axes are supported", x->rank, SP);
    return node_fail(c, Q8_ERR_UNSUPPORTED, msg);
  }
  int64_t s[SP], d[SP], pads[2 * SP];
  q8_status st;
  if ((st = q8_node_attr_ints_n(c->node, "strides", (size_t)r, 1, s)) ||
      (st = q8_node_attr_ints_n(c->node, "dilations", (size_t)r, 1, d)) ||
      (st = q8_node_attr_ints_n(c->node, "pads", 2 * (size_t)r, 0, pads))) {
    return st;
  }
  const char *auto_pad;
  if ((st = q8_node_attr_string(c->node, "auto_pad", "NOTSET", &auto_pad))) return st;
  const int off = SP - r;
  *w = (window){.rank = r};
  for (int i = 0; i < SP; ++i) {
    w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
    w->pb[i] = w->pe[i] = 0;
  }
  for (int i = 0; i < r; ++i) {
    const int a = off + i;
    w->in[a] = x->dims[2 + i];
    w->k[a] = kernel[i];
    w->s[a] = s[i];
    w->d[a] = d[i];
    if (s[i] < 1 || d[i] < 1 || kernel[i] < 1) return node_fail(c, Q8_ERR_ARG, "kernel, strides and dilations must be >= 1");
    const int64_t span = (kernel[i] - 1) * d[i] + 1;
    if (strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "SAME_LOWER") == 0) {
      w->out[a] = (w->in[a] + s[i] - 1) / s[i];
      int64_t total = (w->out[a] - 1) * s[i] + span - w->in[a];
      if (total < 0) total = 0;
      /* The odd pixel goes at the end for SAME_UPPER, at the start for SAME_LOWER. */
      w->pb[a] = auto_pad[5] == 'U' ? total / 2 : total - total / 2;
      w->pe[a] = total - w->pb[a];
    } else if (strcmp(auto_pad, "VALID") == 0) {
      w->out[a] = w->in[a] >= span ? (w->in[a] - span) / s[i] + 1 : 0;
    } else if (strcmp(auto_pad, "NOTSET") == 0) {
      w->pb[a] = pads[i];
      w->pe[a] = pads[r + i];
      const int64_t room = w->in[a] + w->pb[a] + w->pe[a] - span;
      if (room < 0) {
        w->out[a] = 0;
      } else {
        w->out[a] = (ceil_mode ? (room + s[i] - 1) / s[i] : room / s[i]) + 1;
        /* As PyTorch and ONNX Runtime: the last window must start inside the input or its begin padding. */
        if (ceil_mode && (w->out[a] - 1) * s[i] >= w->in[a] + w->pb[a]) --w->out[a];
      }
    } else {
      snprintf(msg, sizeof msg, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", auto_pad);
      return node_fail(c, Q8_ERR_ARG, msg);
    }
    if (w->out[a] < 1) {
      char sx[160];
      snprintf(msg, sizeof msg, "input %s is smaller than the window", shape_str(x->rank, x->dims, sx, sizeof sx));
      return node_fail(c, Q8_ERR_ARG, msg);
    }
  }
  return Q8_OK;
}

/* Output shape [N, C, spatial...] of a window op. */
static void window_dims(const window *w, int64_t n, int64_t ch, int64_t *dims) {
  dims[0] = n;
  dims[1] = ch;
  for (int i = 0; i < w->rank; ++i) dims[2 + i] = w->out[SP - w->rank + i];
}

static q8_status op_conv(ctx *c) {
  const value *x, *wt, *bias = in_opt(c, 2);
  q8_status st;
  if ((st = in_float(c, 0, &x)) || (st = in_float(c, 1, &wt))) return st;
  if (bias && (st = in_float(c, 2, &bias))) return st;
  int64_t group;
  if ((st = attr_int(c, "group", 1, &group))) return st;
  char sx[160], sw[160], msg[400];
  if (x->rank < 3 || wt->rank != x->rank || group < 1 || x->dims[1] != wt->dims[1] * group ||
      wt->dims[0] % group != 0 || (bias && (bias->rank != 1 || bias->dims[0] != wt->dims[0]))) {
    snprintf(msg, sizeof msg, "input %s, weights %s, group %lld%s do not fit", shape_str(x->rank, x->dims, sx, sizeof sx),
             shape_str(wt->rank, wt->dims, sw, sizeof sw), (long long)group, bias ? " and bias" : "");
    return node_fail(c, Q8_ERR_ARG, msg);
  }
  int64_t kernel[SP];
  if ((st = q8_node_attr_ints_n(c->node, "kernel_shape", (size_t)(x->rank - 2), -1, kernel))) return st;
  for (int i = 0; i < x->rank - 2; ++i) {
    if (kernel[i] < 0) kernel[i] = wt->dims[2 + i];
    if (kernel[i] != wt->dims[2 + i]) return node_fail(c, Q8_ERR_ARG, "kernel_shape differs from the weights' shape");
  }
  window w;
  if ((st = q8_exec_window_init(c, x, kernel, false, &w))) return st;
  const int64_t n = x->dims[0], cin = x->dims[1], cout = wt->dims[0];
  const int64_t cin_g = cin / group, cout_g = cout / group;
  int64_t dims[Q8_MAX_RANK];
  window_dims(&w, n, cout, dims);
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, x->rank, dims, &y)) || !y) return st;
  const int64_t in_plane = w.in[0] * w.in[1] * w.in[2], out_plane = w.out[0] * w.out[1] * w.out[2];
  const int64_t k_size = w.k[0] * w.k[1] * w.k[2];
  const float *px = x->data, *pw = wt->data, *pbias = bias ? bias->data : NULL;
  float *py = y->data;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oc = 0; oc < cout; ++oc) {
      const int64_t g = oc / cout_g;
      float *out = py + (b * cout + oc) * out_plane;
      for (int64_t i = 0; i < out_plane; ++i) out[i] = pbias ? pbias[oc] : 0.0f;
      for (int64_t ic = 0; ic < cin_g; ++ic) {
        const float *in = px + (b * cin + g * cin_g + ic) * in_plane;
        const float *wk = pw + (oc * cin_g + ic) * k_size;
        for (int64_t k0 = 0; k0 < w.k[0]; ++k0)
        for (int64_t k1 = 0; k1 < w.k[1]; ++k1)
        for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
          const float wv = wk[(k0 * w.k[1] + k1) * w.k[2] + k2];
          /* Output columns whose input column is inside the input: o2 in [lo, hi). */
          const int64_t off2 = k2 * w.d[2] - w.pb[2];
          int64_t lo = off2 >= 0 ? 0 : (-off2 + w.s[2] - 1) / w.s[2];
          int64_t hi = w.in[2] - off2 <= 0 ? 0 : (w.in[2] - off2 + w.s[2] - 1) / w.s[2];
          if (hi > w.out[2]) hi = w.out[2];
          for (int64_t o0 = 0; o0 < w.out[0]; ++o0) {
            const int64_t i0 = o0 * w.s[0] + k0 * w.d[0] - w.pb[0];
            if (i0 < 0 || i0 >= w.in[0]) continue;
            for (int64_t o1 = 0; o1 < w.out[1]; ++o1) {
              const int64_t i1 = o1 * w.s[1] + k1 * w.d[1] - w.pb[1];
              if (i1 < 0 || i1 >= w.in[1]) continue;
              const float *row = in + (i0 * w.in[1] + i1) * w.in[2];
              float *orow = out + (o0 * w.out[1] + o1) * w.out[2];
              for (int64_t o2 = lo; o2 < hi; ++o2) orow[o2] += wv * row[o2 * w.s[2] + off2];
            }
          }
        }
      }
    }
  }
  return Q8_OK;
}

/* MaxPool also takes int8 and uint8 (opset 12): their values and the
 * maximum of some are exact in float, so the float loop serves them. */
static q8_status op_pool(ctx *c, bool is_max) {
  const value *x;
  q8_status st;
  const unsigned types = Q8_EXEC_TYPE(Q8_ELEM_FLOAT) |
                         (is_max ? Q8_EXEC_TYPE(Q8_ELEM_INT8) | Q8_EXEC_TYPE(Q8_ELEM_UINT8) : 0u);
  if ((st = in_typed(c, 0, types, &x))) return st;
  int64_t kernel[SP], ceil_mode, include_pad, storage_order;
  const int r = x->rank - 2;
  if (r < 1 || r > SP) return node_fail(c, Q8_ERR_UNSUPPORTED, "only 1 to 3 spatial axes are supported");
  if ((st = q8_node_attr_ints_n(c->node, "kernel_shape", (size_t)r, -1, kernel)) ||
      (st = attr_int(c, "ceil_mode", 0, &ceil_mode)) ||
      (st = attr_int(c, "count_include_pad", 0, &include_pad)) ||
      (st = attr_int(c, "storage_order", 0, &storage_order))) {
    return st;
  }
  if (kernel[0] < 0) return node_fail(c, Q8_ERR_FORMAT, "attribute kernel_shape is required");
  window w;
  if ((st = q8_exec_window_init(c, x, kernel, ceil_mode != 0, &w))) return st;
  int64_t dims[Q8_MAX_RANK];
  window_dims(&w, x->dims[0], x->dims[1], dims);
  value *y, *indices = NULL;
  if ((st = out_alloc(c, 0, x->type, x->rank, dims, &y)) || !y) return st;
  if (is_max && (st = out_alloc(c, 1, Q8_ELEM_INT64, x->rank, dims, &indices))) return st;
  const int64_t planes = x->dims[0] * x->dims[1];
  const int64_t in_plane = w.in[0] * w.in[1] * w.in[2], out_plane = w.out[0] * w.out[1] * w.out[2];
  const float *px = x->data;
  float *py = y->data, *x_float = NULL, *y_float = NULL;
  if (x->type != Q8_ELEM_FLOAT) {
    x_float = malloc((x->count ? x->count : 1) * sizeof *x_float);
    y_float = malloc((y->count ? y->count : 1) * sizeof *y_float);
    if (!x_float || !y_float) {
      free(x_float);
      free(y_float);
      return node_fail(c, Q8_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < x->count; ++i) x_float[i] = (float)load_elem(x->type, x->data, i);
    px = x_float;
    py = y_float;
  }
  for (int64_t p = 0; p < planes; ++p) {
    const float *in = px + p * in_plane;
    float *out = py + p * out_plane;
    for (int64_t o0 = 0; o0 < w.out[0]; ++o0)
    for (int64_t o1 = 0; o1 < w.out[1]; ++o1)
    for (int64_t o2 = 0; o2 < w.out[2]; ++o2) {
      const int64_t o[SP] = {o0, o1, o2};
      float acc = is_max ? -INFINITY : 0.0f;
      int64_t inside = 0, padded = 1, argmax = 0;
      for (int a = 0; a < SP; ++a) {
        /* count_include_pad counts the explicit padding, not ceil_mode's overhang. */
        const int64_t start = o[a] * w.s[a] - w.pb[a];
        int64_t cnt = 0;
        for (int64_t kk = 0; kk < w.k[a]; ++kk) {
          const int64_t i = start + kk * w.d[a];
          if (i >= -w.pb[a] && i < w.in[a] + w.pe[a]) ++cnt;
        }
        padded *= cnt;
      }
      for (int64_t k0 = 0; k0 < w.k[0]; ++k0) {
        const int64_t i0 = o0 * w.s[0] + k0 * w.d[0] - w.pb[0];
        if (i0 < 0 || i0 >= w.in[0]) continue;
        for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
          const int64_t i1 = o1 * w.s[1] + k1 * w.d[1] - w.pb[1];
          if (i1 < 0 || i1 >= w.in[1]) continue;
          for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
            const int64_t i2 = o2 * w.s[2] + k2 * w.d[2] - w.pb[2];
            if (i2 < 0 || i2 >= w.in[2]) continue;
            const float v = in[(i0 * w.in[1] + i1) * w.in[2] + i2];
            if (is_max && (v > acc || inside == 0)) {
              acc = v;
              /* Indices into the flattened input; storage_order 1 numbers the spatial axes column-major. */
              argmax = storage_order ? (i2 * w.in[1] + i1) * w.in[0] + i0 : (i0 * w.in[1] + i1) * w.in[2] + i2;
            } else if (!is_max) {
              acc += v;
            }
            ++inside;
          }
        }
      }
      if (!is_max) acc = acc / (float)(include_pad ? padded : inside);
      out[(o0 * w.out[1] + o1) * w.out[2] + o2] = acc;
      if (indices) ((int64_t *)indices->data)[p * out_plane + (o0 * w.out[1] + o1) * w.out[2] + o2] = p * in_plane + argmax;
    }
  }
  if (y_float) {
    for (size_t i = 0; i < y->count; ++i) store_elem(y->type, y->data, i, y_float[i]);
  }
  free(x_float);
  free(y_float);
  return Q8_OK;
}

static q8_status op_maxpool(ctx *c) { return op_pool(c, true); }
static q8_status op_averagepool(ctx *c) { return op_pool(c, false); }

static q8_status op_globalaveragepool(ctx *c) {
  const value *x;
  q8_status st;
  if ((st = in_float(c, 0, &x))) return st;
  if (x->rank < 2) return node_fail(c, Q8_ERR_ARG, "input must have rank >= 2");
  int64_t dims[Q8_MAX_RANK];
  for (int d = 0; d < x->rank; ++d) dims[d] = d < 2 ? x->dims[d] : 1;
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, x->rank, dims, &y)) || !y) return st;
  const size_t planes = product(x->dims, 0, 2), plane = product(x->dims, 2, x->rank);
  const float *px = x->data;
  float *py = y->data;
  for (size_t p = 0; p < planes; ++p) {
    float acc = 0.0f;
    for (size_t i = 0; i < plane; ++i) acc += px[p * plane + i];
    py[p] = acc / (float)plane;
  }
  return Q8_OK;
}

/* ---- normalization ----------------------------------------------------------------- */

static q8_status op_batchnorm(ctx *c) {
  const value *x, *p[4];
  q8_status st;
  if ((st = in_float(c, 0, &x))) return st;
  for (size_t k = 0; k < 4; ++k) {
    if ((st = in_float(c, k + 1, &p[k]))) return st;
  }
  float eps;
  if ((st = attr_float(c, "epsilon", 1e-5f, &eps))) return st;
  const int64_t ch = x->rank >= 2 ? x->dims[1] : 1;
  for (size_t k = 0; k < 4; ++k) {
    if (p[k]->count != (size_t)ch) {
      char sx[160], sp[160], msg[400];
      snprintf(msg, sizeof msg, "input %s has %lld channels but '%s' is %s", shape_str(x->rank, x->dims, sx, sizeof sx),
               (long long)ch, in_name(c, k + 1), shape_str(p[k]->rank, p[k]->dims, sp, sizeof sp));
      return node_fail(c, Q8_ERR_ARG, msg);
    }
  }
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, x->rank, x->dims, &y)) || !y) return st;
  const float *scale = p[0]->data, *shift = p[1]->data, *mean = p[2]->data, *var = p[3]->data;
  const size_t n = x->rank >= 1 ? (size_t)x->dims[0] : 1, plane = x->rank >= 2 ? product(x->dims, 2, x->rank) : 1;
  const float *px = x->data;
  float *py = y->data;
  for (size_t b = 0; b < n; ++b) {
    for (int64_t ci = 0; ci < ch; ++ci) {
      /* Same expression order as ONNX's reference: (x - mean) / sqrt(var + eps) * scale + B. */
      const float den = sqrtf(var[ci] + eps);
      const size_t base = (b * (size_t)ch + (size_t)ci) * plane;
      for (size_t i = 0; i < plane; ++i) py[base + i] = (px[base + i] - mean[ci]) / den * scale[ci] + shift[ci];
    }
  }
  return Q8_OK;
}

static q8_status op_layernorm(ctx *c) {
  const value *x, *scale, *bias = in_opt(c, 2);
  q8_status st;
  if ((st = in_float(c, 0, &x)) || (st = in_float(c, 1, &scale))) return st;
  if (bias && (st = in_float(c, 2, &bias))) return st;
  int64_t axis_attr, stash;
  float eps;
  if ((st = attr_int(c, "axis", -1, &axis_attr)) || (st = attr_float(c, "epsilon", 1e-5f, &eps)) ||
      (st = attr_int(c, "stash_type", 1, &stash))) {
    return st;
  }
  int axis = 0;
  if ((st = axis_norm(c, axis_attr, x->rank, &axis))) return st;
  const size_t outer = product(x->dims, 0, axis), inner = product(x->dims, axis, x->rank);
  if ((scale->count != inner && scale->count != 1) || (bias && bias->count != inner && bias->count != 1)) {
    char sx[160], ss[160], msg[400];
    snprintf(msg, sizeof msg, "Scale %s (or B) does not match input %s from axis %d",
             shape_str(scale->rank, scale->dims, ss, sizeof ss), shape_str(x->rank, x->dims, sx, sizeof sx), axis);
    return node_fail(c, Q8_ERR_ARG, msg);
  }
  int64_t sdims[Q8_MAX_RANK];
  for (int d = 0; d < x->rank; ++d) sdims[d] = d < axis ? x->dims[d] : 1;
  value *y, *mean_out, *inv_out;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, x->rank, x->dims, &y)) ||
      (st = out_alloc(c, 1, Q8_ELEM_FLOAT, x->rank, sdims, &mean_out)) ||
      (st = out_alloc(c, 2, Q8_ELEM_FLOAT, x->rank, sdims, &inv_out))) {
    return st;
  }
  const float *px = x->data, *ps = scale->data, *pb = bias ? bias->data : NULL;
  for (size_t o = 0; o < outer; ++o) {
    const float *row = px + o * inner;
    /* stash_type 1 computes statistics in float32, as here. */
    float mean = 0.0f, var = 0.0f;
    for (size_t i = 0; i < inner; ++i) mean += row[i];
    mean /= (float)inner;
    for (size_t i = 0; i < inner; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= (float)inner;
    const float inv = 1.0f / sqrtf(var + eps);
    if (y) {
      float *out = (float *)y->data + o * inner;
      for (size_t i = 0; i < inner; ++i) {
        out[i] = (row[i] - mean) * inv * ps[scale->count == 1 ? 0 : i] + (pb ? pb[bias->count == 1 ? 0 : i] : 0.0f);
      }
    }
    if (mean_out) ((float *)mean_out->data)[o] = mean;
    if (inv_out) ((float *)inv_out->data)[o] = inv;
  }
  return Q8_OK;
}

/* Softmax: before opset 13 the input is coerced to 2-D at axis (default 1)
 * and normalized over the second; from 13 over the single axis (default -1). */
static q8_status op_softmax(ctx *c) {
  const value *x;
  q8_status st;
  if ((st = in_float(c, 0, &x))) return st;
  const bool old = c->s->graph->opset < 13;
  int64_t axis_attr;
  if ((st = attr_int(c, "axis", old ? 1 : -1, &axis_attr))) return st;
  int axis = 0;
  if (x->rank == 0) {
    axis = 0;
  } else if ((st = axis_norm(c, axis_attr, x->rank, &axis))) {
    return st;
  }
  size_t outer, len, inner;
  if (old) {
    outer = product(x->dims, 0, axis);
    len = product(x->dims, axis, x->rank);
    inner = 1;
  } else {
    outer = product(x->dims, 0, axis);
    len = x->rank ? (size_t)x->dims[axis] : 1;
    inner = product(x->dims, axis + 1, x->rank);
  }
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, x->rank, x->dims, &y)) || !y) return st;
  const float *px = x->data;
  float *py = y->data;
  for (size_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < inner; ++i) {
      const float *in = px + o * len * inner + i;
      float *out = py + o * len * inner + i;
      float mx = -INFINITY, sum = 0.0f;
      for (size_t j = 0; j < len; ++j) mx = in[j * inner] > mx ? in[j * inner] : mx;
      for (size_t j = 0; j < len; ++j) sum += (out[j * inner] = expf(in[j * inner] - mx));
      for (size_t j = 0; j < len; ++j) out[j * inner] /= sum;
    }
  }
  return Q8_OK;
}

typedef enum reduce_kind { RED_MEAN, RED_SUM, RED_MAX, RED_MIN } reduce_kind;

/* Axes come from the attribute, except ReduceSum from opset 13 (an input).
 * No axes reduce everything unless noop_with_empty_axes says otherwise. */
static q8_status op_reduce(ctx *c, reduce_kind kind) {
  const value *x;
  q8_status st;
  if ((st = in_float(c, 0, &x))) return st;
  int64_t axes[Q8_MAX_RANK], keepdims, noop;
  size_t n_axes = 0;
  if (kind == RED_SUM && c->s->graph->opset >= 13) {
    if (in_opt(c, 1) && (st = in_ints(c, 1, axes, Q8_MAX_RANK, &n_axes))) return st;
  } else {
    const int64_t *a;
    if ((st = q8_node_attr_ints(c->node, "axes", &a, &n_axes))) return st;
    if (n_axes > Q8_MAX_RANK) return node_fail(c, Q8_ERR_ARG, "more axes than the rank");
    for (size_t i = 0; i < n_axes; ++i) axes[i] = a[i];
  }
  if ((st = attr_int(c, "keepdims", 1, &keepdims)) || (st = attr_int(c, "noop_with_empty_axes", 0, &noop))) return st;
  if (n_axes == 0 && noop) return reshaped_copy(c, x, x->rank, x->dims);
  bool reduce[Q8_MAX_RANK] = {false};
  for (int d = 0; d < x->rank; ++d) reduce[d] = n_axes == 0;
  for (size_t i = 0; i < n_axes; ++i) {
    int a = 0;
    if ((st = axis_norm(c, axes[i], x->rank, &a))) return st;
    reduce[a] = true;
  }
  int64_t kdims[Q8_MAX_RANK], dims[Q8_MAX_RANK], strides[Q8_MAX_RANK];
  int rank = 0;
  for (int d = 0; d < x->rank; ++d) {
    kdims[d] = reduce[d] ? 1 : x->dims[d];
    if (!reduce[d] || keepdims) dims[rank++] = kdims[d];
  }
  int64_t t = 1;
  for (int d = x->rank - 1; d >= 0; --d) {
    strides[d] = reduce[d] ? 0 : t;
    t *= kdims[d];
  }
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, rank, dims, &y)) || !y) return st;
  /* Sums in double, then one rounding, so the result barely depends on the order. */
  double *acc = malloc((y->count ? y->count : 1) * sizeof *acc);
  if (!acc) return node_fail(c, Q8_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < y->count; ++i) acc[i] = kind == RED_MAX ? -INFINITY : kind == RED_MIN ? INFINITY : 0.0;
  const float *px = x->data;
  odometer o = odometer_new(x->rank, x->dims, strides, NULL);
  for (size_t i = 0; i < x->count; ++i, odometer_next(&o)) {
    double *a = &acc[o.at[0]];
    if (kind == RED_MAX) {
      if (px[i] > *a || isnan(px[i])) *a = px[i];
    } else if (kind == RED_MIN) {
      if (px[i] < *a || isnan(px[i])) *a = px[i];
    } else {
      *a += px[i];
    }
  }
  const double per = kind == RED_MEAN && y->count ? (double)x->count / (double)y->count : 1.0;
  for (size_t i = 0; i < y->count; ++i) ((float *)y->data)[i] = (float)(acc[i] / per);
  free(acc);
  return Q8_OK;
}

static q8_status op_reducemean(ctx *c) { return op_reduce(c, RED_MEAN); }
static q8_status op_reducesum(ctx *c) { return op_reduce(c, RED_SUM); }
static q8_status op_reducemax(ctx *c) { return op_reduce(c, RED_MAX); }
static q8_status op_reducemin(ctx *c) { return op_reduce(c, RED_MIN); }

/* ---- shape and data movement ------------------------------------------------------- */

static q8_status op_identity(ctx *c) {
  const value *x;
  q8_status st = in_any(c, 0, &x);
  return st ? st : reshaped_copy(c, x, x->rank, x->dims);
}

/* Inference Dropout is the identity; the optional mask is all true. */
static q8_status op_dropout(ctx *c) {
  const value *training = in_opt(c, 2);
  if (training && training->type == Q8_ELEM_BOOL && *(const uint8_t *)training->data) {
    return node_fail(c, Q8_ERR_UNSUPPORTED, "training_mode is true; the float path runs inference only");
  }
  q8_status st = op_identity(c);
  if (st) return st;
  const value *x = in_opt(c, 0);
  value *mask;
  if ((st = out_alloc(c, 1, Q8_ELEM_BOOL, x->rank, x->dims, &mask)) || !mask) return st;
  memset(mask->data, 1, mask->count);
  return Q8_OK;
}

static q8_status op_flatten(ctx *c) {
  const value *x;
  q8_status st;
  int64_t axis_attr;
  if ((st = in_any(c, 0, &x)) || (st = attr_int(c, "axis", 1, &axis_attr))) return st;
  /* Flatten's axis may equal rank (everything in the first dimension). */
  if (axis_attr < -x->rank || axis_attr > x->rank) return node_fail(c, Q8_ERR_ARG, "axis is outside the input's rank");
  const int axis = (int)(axis_attr < 0 ? axis_attr + x->rank : axis_attr);
  const int64_t dims[2] = {(int64_t)product(x->dims, 0, axis), (int64_t)product(x->dims, axis, x->rank)};
  return reshaped_copy(c, x, 2, dims);
}

static q8_status op_reshape(ctx *c) {
  const value *x;
  int64_t shape[Q8_MAX_RANK], allowzero;
  size_t rank;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = in_ints(c, 1, shape, Q8_MAX_RANK, &rank)) ||
      (st = attr_int(c, "allowzero", 0, &allowzero))) {
    return st;
  }
  int infer = -1;
  int64_t known = 1;
  for (size_t d = 0; d < rank; ++d) {
    if (shape[d] == 0 && !allowzero) {
      if ((int)d >= x->rank) return node_fail(c, Q8_ERR_ARG, "a 0 in shape copies a dimension the input does not have");
      shape[d] = x->dims[d];
    }
    if (shape[d] == -1) {
      if (infer >= 0) return node_fail(c, Q8_ERR_ARG, "shape has more than one -1");
      infer = (int)d;
    } else if (shape[d] < 0) {
      return node_fail(c, Q8_ERR_ARG, "shape has a negative dimension other than -1");
    } else {
      known *= shape[d];
    }
  }
  if (infer >= 0) shape[infer] = known ? (int64_t)x->count / known : 0;
  return reshaped_copy(c, x, (int)rank, shape);
}

static q8_status op_transpose(ctx *c) {
  const value *x;
  q8_status st;
  if ((st = in_any(c, 0, &x))) return st;
  int64_t perm[Q8_MAX_RANK];
  for (int d = 0; d < x->rank; ++d) perm[d] = x->rank - 1 - d;
  if (x->rank && (st = q8_node_attr_ints_n(c->node, "perm", (size_t)x->rank, 0, perm))) return st;
  if (q8_node_attr(c->node, "perm") == NULL) {
    for (int d = 0; d < x->rank; ++d) perm[d] = x->rank - 1 - d;
  }
  bool seen[Q8_MAX_RANK] = {false};
  int64_t dims[Q8_MAX_RANK], in_strides[Q8_MAX_RANK], strides[Q8_MAX_RANK];
  int64_t t = 1;
  for (int d = x->rank - 1; d >= 0; --d) {
    in_strides[d] = t;
    t *= x->dims[d];
  }
  for (int d = 0; d < x->rank; ++d) {
    if (perm[d] < 0 || perm[d] >= x->rank || seen[perm[d]]) return node_fail(c, Q8_ERR_ARG, "perm is not a permutation of the axes");
    seen[perm[d]] = true;
    dims[d] = x->dims[perm[d]];
    strides[d] = in_strides[perm[d]];
  }
  value *y;
  if ((st = out_alloc(c, 0, x->type, x->rank, dims, &y)) || !y) return st;
  const size_t es = q8_elem_size(x->type);
  const char *px = x->data;
  char *py = y->data;
  odometer o = odometer_new(x->rank, dims, strides, NULL);
  for (size_t i = 0; i < y->count; ++i, odometer_next(&o)) memcpy(py + i * es, px + (size_t)o.at[0] * es, es);
  return Q8_OK;
}

static q8_status op_concat(ctx *c) {
  const value *first;
  q8_status st;
  int64_t axis_attr;
  if ((st = in_any(c, 0, &first)) || (st = attr_int(c, "axis", 0, &axis_attr))) return st;
  int axis = 0;
  if ((st = axis_norm(c, axis_attr, first->rank, &axis))) return st;
  int64_t dims[Q8_MAX_RANK];
  for (int d = 0; d < first->rank; ++d) dims[d] = first->dims[d];
  dims[axis] = 0;
  for (size_t k = 0; k < n_in(c); ++k) {
    const value *v;
    if ((st = in_any(c, k, &v))) return st;
    bool fits = v->rank == first->rank && v->type == first->type;
    for (int d = 0; fits && d < v->rank; ++d) fits = d == axis || v->dims[d] == first->dims[d];
    if (!fits) {
      char a[160], b[160], msg[400];
      snprintf(msg, sizeof msg, "inputs '%s' %s and '%s' %s differ off axis %d (or in type)", in_name(c, 0),
               shape_str(first->rank, first->dims, a, sizeof a), in_name(c, k), shape_str(v->rank, v->dims, b, sizeof b), axis);
      return node_fail(c, Q8_ERR_ARG, msg);
    }
    dims[axis] += v->dims[axis];
  }
  value *y;
  if ((st = out_alloc(c, 0, first->type, first->rank, dims, &y)) || !y) return st;
  const size_t es = q8_elem_size(first->type), outer = product(dims, 0, axis);
  const size_t out_row = product(dims, axis, first->rank) * es;
  size_t at = 0;
  for (size_t k = 0; k < n_in(c); ++k) {
    const value *v = in_opt(c, k);
    const size_t row = product(v->dims, axis, v->rank) * es;
    for (size_t o = 0; o < outer; ++o) memcpy((char *)y->data + o * out_row + at, (const char *)v->data + o * row, row);
    at += row;
  }
  return Q8_OK;
}

static q8_status op_shape(ctx *c) {
  const value *x;
  int64_t start, end;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = attr_int(c, "start", 0, &start)) || (st = attr_int(c, "end", x->rank, &end))) return st;
  /* Out-of-range start and end are clamped, as ONNX says. */
  if (start < 0) start += x->rank;
  if (end < 0) end += x->rank;
  start = start < 0 ? 0 : start > x->rank ? x->rank : start;
  end = end < 0 ? 0 : end > x->rank ? x->rank : end;
  const int64_t len = end > start ? end - start : 0;
  value *y;
  if ((st = out_alloc(c, 0, Q8_ELEM_INT64, 1, &len, &y)) || !y) return st;
  for (int64_t i = 0; i < len; ++i) ((int64_t *)y->data)[i] = x->dims[start + i];
  return Q8_OK;
}

static q8_status op_gather(ctx *c) {
  const value *x, *ind;
  int64_t axis_attr;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = in_any(c, 1, &ind)) || (st = attr_int(c, "axis", 0, &axis_attr))) return st;
  if (ind->type != Q8_ELEM_INT64 && ind->type != Q8_ELEM_INT32) return node_fail(c, Q8_ERR_ARG, "indices must be int64 or int32");
  int axis = 0;
  if ((st = axis_norm(c, axis_attr, x->rank, &axis))) return st;
  if (x->rank - 1 + ind->rank > Q8_MAX_RANK) return node_fail(c, Q8_ERR_UNSUPPORTED, "output rank too large");
  int64_t dims[Q8_MAX_RANK];
  int rank = 0;
  for (int d = 0; d < axis; ++d) dims[rank++] = x->dims[d];
  for (int d = 0; d < ind->rank; ++d) dims[rank++] = ind->dims[d];
  for (int d = axis + 1; d < x->rank; ++d) dims[rank++] = x->dims[d];
  value *y;
  if ((st = out_alloc(c, 0, x->type, rank, dims, &y)) || !y) return st;
  const size_t es = q8_elem_size(x->type), outer = product(x->dims, 0, axis);
  const size_t inner = product(x->dims, axis + 1, x->rank) * es;
  const int64_t len = x->dims[axis];
  for (size_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < ind->count; ++i) {
      int64_t j = ind->type == Q8_ELEM_INT64 ? ((const int64_t *)ind->data)[i] : ((const int32_t *)ind->data)[i];
      if (j < 0) j += len;
      if (j < 0 || j >= len) return node_fail(c, Q8_ERR_ARG, "an index is out of range");
      memcpy((char *)y->data + (o * ind->count + i) * inner, (const char *)x->data + (o * (size_t)len + (size_t)j) * inner, inner);
    }
  }
  return Q8_OK;
}

/* Axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13. */
static q8_status squeeze_axes(ctx *c, int64_t *axes, size_t *count, bool *given) {
  q8_status st;
  if (c->s->graph->opset < 13) {
    const int64_t *a;
    if ((st = q8_node_attr_ints(c->node, "axes", &a, count))) return st;
    if (*count > Q8_MAX_RANK) return node_fail(c, Q8_ERR_UNSUPPORTED, "too many axes");
    for (size_t i = 0; i < *count; ++i) axes[i] = a[i];
    *given = a != NULL;
    return Q8_OK;
  }
  *count = 0;
  *given = in_opt(c, 1) != NULL;
  return *given ? in_ints(c, 1, axes, Q8_MAX_RANK, count) : Q8_OK;
}

static q8_status op_squeeze(ctx *c) {
  const value *x;
  int64_t axes[Q8_MAX_RANK];
  size_t n_axes;
  bool given;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = squeeze_axes(c, axes, &n_axes, &given))) return st;
  bool drop[Q8_MAX_RANK] = {false};
  for (int d = 0; d < x->rank; ++d) drop[d] = !given && x->dims[d] == 1;
  for (size_t i = 0; i < n_axes; ++i) {
    int a = 0;
    if ((st = axis_norm(c, axes[i], x->rank, &a))) return st;
    if (x->dims[a] != 1) return node_fail(c, Q8_ERR_ARG, "a squeezed axis is not of size 1");
    drop[a] = true;
  }
  int64_t dims[Q8_MAX_RANK];
  int rank = 0;
  for (int d = 0; d < x->rank; ++d) {
    if (!drop[d]) dims[rank++] = x->dims[d];
  }
  return reshaped_copy(c, x, rank, dims);
}

static q8_status op_unsqueeze(ctx *c) {
  const value *x;
  int64_t axes[Q8_MAX_RANK];
  size_t n_axes;
  bool given;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = squeeze_axes(c, axes, &n_axes, &given))) return st;
  const int rank = x->rank + (int)n_axes;
  if (rank > Q8_MAX_RANK) return node_fail(c, Q8_ERR_UNSUPPORTED, "output rank too large");
  bool added[Q8_MAX_RANK] = {false};
  for (size_t i = 0; i < n_axes; ++i) {
    int a = 0;
    if ((st = axis_norm(c, axes[i], rank, &a))) return st;
    if (added[a]) return node_fail(c, Q8_ERR_ARG, "an axis is repeated");
    added[a] = true;
  }
  int64_t dims[Q8_MAX_RANK];
  for (int d = 0, from = 0; d < rank; ++d) dims[d] = added[d] ? 1 : x->dims[from++];
  return reshaped_copy(c, x, rank, dims);
}

static q8_status op_constant(ctx *c) {
  const q8_tensor *t;
  q8_status st;
  if ((st = q8_node_attr_tensor(c->node, "value", &t))) return st;
  value *y;
  if (t) {
    if ((st = out_alloc(c, 0, t->type, t->rank, t->dims, &y)) || !y) return st;
    if (t->data_bytes) memcpy(y->data, t->data, t->data_bytes);
    return Q8_OK;
  }
  const q8_attr *a;
  const int64_t one = 1;
  if ((a = q8_node_attr(c->node, "value_float")) != NULL) {
    if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, 0, NULL, &y)) || !y) return st;
    *(float *)y->data = a->f;
  } else if ((a = q8_node_attr(c->node, "value_int")) != NULL) {
    if ((st = out_alloc(c, 0, Q8_ELEM_INT64, 0, NULL, &y)) || !y) return st;
    *(int64_t *)y->data = a->i;
  } else if ((a = q8_node_attr(c->node, "value_floats")) != NULL) {
    const int64_t n = (int64_t)a->count;
    if ((st = out_alloc(c, 0, Q8_ELEM_FLOAT, 1, &n, &y)) || !y) return st;
    if (n) memcpy(y->data, a->floats, a->count * sizeof(float));
  } else if ((a = q8_node_attr(c->node, "value_ints")) != NULL) {
    const int64_t n = (int64_t)a->count;
    if ((st = out_alloc(c, 0, Q8_ELEM_INT64, 1, &n, &y)) || !y) return st;
    if (n) memcpy(y->data, a->ints, a->count * sizeof(int64_t));
  } else {
    (void)one;
    return node_fail(c, Q8_ERR_UNSUPPORTED, "only value, value_float(s) and value_int(s) are supported");
  }
  return Q8_OK;
}

static bool held_type(q8_elem_type t) {
  return t == Q8_ELEM_FLOAT || t == Q8_ELEM_INT64 || t == Q8_ELEM_INT32 || t == Q8_ELEM_INT8 || t == Q8_ELEM_UINT8 ||
         t == Q8_ELEM_BOOL;
}

static q8_status op_cast(ctx *c) {
  const value *x;
  int64_t to;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = attr_int(c, "to", 0, &to))) return st;
  if (!held_type((q8_elem_type)to)) {
    char msg[120];
    snprintf(msg, sizeof msg, "cast to %s: the executor holds float32, int64, int32, int8, uint8 and bool only",
             q8_elem_type_name((q8_elem_type)to));
    return node_fail(c, Q8_ERR_UNSUPPORTED, msg);
  }
  value *y;
  if ((st = out_alloc(c, 0, (q8_elem_type)to, x->rank, x->dims, &y)) || !y) return st;
  for (size_t i = 0; i < x->count; ++i) store_elem(y->type, y->data, i, load_elem(x->type, x->data, i));
  return Q8_OK;
}

static q8_status op_constantofshape(ctx *c) {
  int64_t dims[Q8_MAX_RANK];
  size_t rank;
  const q8_tensor *fill;
  q8_status st;
  if ((st = in_ints(c, 0, dims, Q8_MAX_RANK, &rank)) || (st = q8_node_attr_tensor(c->node, "value", &fill))) return st;
  const q8_elem_type type = fill ? fill->type : Q8_ELEM_FLOAT;
  if (!held_type(type) || (fill && fill->data_bytes != q8_elem_size(type))) {
    return node_fail(c, Q8_ERR_UNSUPPORTED, "value must be one float32, int64, int32, int8, uint8 or bool element");
  }
  for (size_t d = 0; d < rank; ++d) {
    if (dims[d] < 0) return node_fail(c, Q8_ERR_ARG, "shape has a negative dimension");
  }
  value *y;
  if ((st = out_alloc(c, 0, type, (int)rank, dims, &y)) || !y) return st;
  const double v = fill ? load_elem(type, fill->data, 0) : 0.0;
  for (size_t i = 0; i < y->count; ++i) store_elem(type, y->data, i, v);
  return Q8_OK;
}

static q8_status op_size(ctx *c) {
  const value *x;
  q8_status st;
  value *y;
  if ((st = in_any(c, 0, &x)) || (st = out_alloc(c, 0, Q8_ELEM_INT64, 0, NULL, &y)) || !y) return st;
  *(int64_t *)y->data = (int64_t)x->count;
  return Q8_OK;
}

/* Slice (opset 10+): starts, ends, axes, steps are inputs; out-of-range
 * bounds clamp as numpy's do. */
static q8_status op_slice(ctx *c) {
  const value *x;
  int64_t starts[Q8_MAX_RANK], ends[Q8_MAX_RANK], axes[Q8_MAX_RANK], steps[Q8_MAX_RANK];
  size_t n, n_ends, n_axes, n_steps;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = in_ints(c, 1, starts, Q8_MAX_RANK, &n)) ||
      (st = in_ints(c, 2, ends, Q8_MAX_RANK, &n_ends))) {
    return st;
  }
  n_axes = n_steps = n;
  for (size_t i = 0; i < n; ++i) axes[i] = (int64_t)i, steps[i] = 1;
  if (in_opt(c, 3) && (st = in_ints(c, 3, axes, Q8_MAX_RANK, &n_axes))) return st;
  if (in_opt(c, 4) && (st = in_ints(c, 4, steps, Q8_MAX_RANK, &n_steps))) return st;
  if (n_ends != n || n_axes != n || n_steps != n) return node_fail(c, Q8_ERR_ARG, "starts, ends, axes and steps differ in length");
  int64_t first[Q8_MAX_RANK] = {0}, step[Q8_MAX_RANK], dims[Q8_MAX_RANK];
  for (int d = 0; d < x->rank; ++d) step[d] = 1, dims[d] = x->dims[d];
  for (size_t i = 0; i < n; ++i) {
    int a = 0;
    if ((st = axis_norm(c, axes[i], x->rank, &a))) return st;
    const int64_t len = x->dims[a], s = steps[i];
    if (s == 0) return node_fail(c, Q8_ERR_ARG, "a step is 0");
    int64_t b = starts[i] < 0 ? starts[i] + len : starts[i], e = ends[i] < 0 ? ends[i] + len : ends[i];
    if (s > 0) {
      b = b < 0 ? 0 : b > len ? len : b;
      e = e < 0 ? 0 : e > len ? len : e;
      dims[a] = e > b ? (e - b + s - 1) / s : 0;
    } else {
      b = b < 0 ? 0 : b > len - 1 ? len - 1 : b;
      e = e < -1 ? -1 : e > len - 1 ? len - 1 : e;
      dims[a] = b > e ? (b - e - s - 1) / -s : 0;
    }
    first[a] = b;
    step[a] = s;
  }
  int64_t in_strides[Q8_MAX_RANK], strides[Q8_MAX_RANK], base = 0, t = 1;
  for (int d = x->rank - 1; d >= 0; --d) {
    in_strides[d] = t;
    t *= x->dims[d];
    strides[d] = in_strides[d] * step[d];
    base += first[d] * in_strides[d];
  }
  value *y;
  if ((st = out_alloc(c, 0, x->type, x->rank, dims, &y)) || !y) return st;
  const size_t es = q8_elem_size(x->type);
  odometer o = odometer_new(x->rank, dims, strides, NULL);
  for (size_t i = 0; i < y->count; ++i, odometer_next(&o)) {
    memcpy((char *)y->data + i * es, (const char *)x->data + (size_t)(base + o.at[0]) * es, es);
  }
  return Q8_OK;
}

/* Expand: broadcast the input to a shape (numpy rules, both ways). */
static q8_status op_expand(ctx *c) {
  const value *x;
  value shape = {.type = Q8_ELEM_FLOAT};
  size_t rank;
  q8_status st;
  if ((st = in_any(c, 0, &x)) || (st = in_ints(c, 1, shape.dims, Q8_MAX_RANK, &rank))) return st;
  shape.rank = (int)rank;
  int out_rank = 0;
  int64_t dims[Q8_MAX_RANK], sx[Q8_MAX_RANK], unused[Q8_MAX_RANK];
  if ((st = broadcast(c, x, &shape, &out_rank, dims, sx, unused))) return st;
  value *y;
  if ((st = out_alloc(c, 0, x->type, out_rank, dims, &y)) || !y) return st;
  const size_t es = q8_elem_size(x->type);
  odometer o = odometer_new(out_rank, dims, sx, NULL);
  for (size_t i = 0; i < y->count; ++i, odometer_next(&o)) {
    memcpy((char *)y->data + i * es, (const char *)x->data + (size_t)o.at[0] * es, es);
  }
  return Q8_OK;
}

/* ---- operator table, session --------------------------------------------------------- */

/* Attribute values the float path refuses, found before any run. */
static q8_status check_batchnorm(const q8_node *node, const q8_graph *graph) {
  (void)graph;
  int64_t v = 0;
  q8_status st;
  if ((st = q8_node_attr_int(node, "training_mode", 0, &v))) return st;
  size_t outs = 0;
  for (size_t k = 0; k < node->n_outputs; ++k) outs += node->outputs[k] >= 0;
  if (v || outs > 1) {
    return q8_fail(Q8_ERR_UNSUPPORTED,
                   "node '%s' (BatchNormalization): training mode (running statistics outputs) is not "
                   "supported; export the model in inference mode", node->name);
  }
  return Q8_OK;
}

static const q8_exec_op float_ops[] = {
    {"", "Add", NULL, op_add, NULL},
    {"", "Sub", NULL, op_sub, NULL},
    {"", "Mul", NULL, op_mul, NULL},
    {"", "Div", NULL, op_div, NULL},
    {"", "Relu", NULL, op_relu, NULL},
    {"", "Sigmoid", NULL, op_sigmoid, NULL},
    {"", "Tanh", NULL, op_tanh, NULL},
    {"", "Erf", NULL, op_erf, NULL},
    {"", "Exp", NULL, op_exp, NULL},
    {"", "Sqrt", NULL, op_sqrt, NULL},
    {"", "LeakyRelu", NULL, op_leakyrelu, NULL},
    {"", "Clip", NULL, op_clip, NULL},
    {"", "Gemm", NULL, op_gemm, NULL},
    {"", "MatMul", NULL, op_matmul, NULL},
    {"", "Conv", NULL, op_conv, NULL},
    {"", "MaxPool", NULL, op_maxpool, NULL},
    {"", "AveragePool", NULL, op_averagepool, NULL},
    {"", "GlobalAveragePool", NULL, op_globalaveragepool, NULL},
    {"", "BatchNormalization", check_batchnorm, op_batchnorm, NULL},
    {"", "LayerNormalization", NULL, op_layernorm, NULL},
    {"", "Softmax", NULL, op_softmax, NULL},
    {"", "ReduceMean", NULL, op_reducemean, NULL},
    {"", "Identity", NULL, op_identity, NULL},
    {"", "Dropout", NULL, op_dropout, NULL},
    {"", "Flatten", NULL, op_flatten, NULL},
    {"", "Reshape", NULL, op_reshape, NULL},
    {"", "Transpose", NULL, op_transpose, NULL},
    {"", "Concat", NULL, op_concat, NULL},
    {"", "Shape", NULL, op_shape, NULL},
    {"", "Gather", NULL, op_gather, NULL},
    {"", "Squeeze", NULL, op_squeeze, NULL},
    {"", "Unsqueeze", NULL, op_unsqueeze, NULL},
    {"", "Constant", NULL, op_constant, NULL},
    {"", "ReduceSum", NULL, op_reducesum, NULL},
    {"", "ReduceMax", NULL, op_reducemax, NULL},
    {"", "Reciprocal", NULL, op_reciprocal, NULL},
    {"", "Neg", NULL, op_neg, NULL},
    {"", "Cast", NULL, op_cast, NULL},
    {"", "ConstantOfShape", NULL, op_constantofshape, NULL},
    {"", "Size", NULL, op_size, NULL},
    {"", "Slice", NULL, op_slice, NULL},
    {"", "Expand", NULL, op_expand, NULL},
    {"", "ReduceMin", NULL, op_reducemin, NULL},
    {"", "Min", NULL, op_min, NULL},
    {"", "Max", NULL, op_max, NULL},
    {"", "Round", NULL, op_round, NULL},
};

const q8_exec_op_table q8_exec_ops_float = {float_ops, sizeof float_ops / sizeof float_ops[0]};

static const q8_exec_op_table *const op_tables[] = {
#define Q8_EXEC_OP_TABLE(name) &name,
#include "quant/exec_ops.def"
#undef Q8_EXEC_OP_TABLE
};

/* ONNX's default domain has two spellings. */
static const char *domain_key(const char *domain) {
  return !domain || strcmp(domain, "ai.onnx") == 0 ? "" : domain;
}

const q8_exec_op *q8_exec_find_op(const char *domain, const char *op_type) {
  if (!op_type) return NULL;
  domain = domain_key(domain);
  for (size_t t = 0; t < sizeof op_tables / sizeof op_tables[0]; ++t) {
    for (size_t i = 0; i < op_tables[t]->count; ++i) {
      const q8_exec_op *op = &op_tables[t]->ops[i];
      if (strcmp(op->op_type, op_type) == 0 && strcmp(domain_key(op->domain), domain) == 0) return op;
    }
  }
  return NULL;
}

/* Only the float operators: the quantized ones are not what a policy keeps float. */
bool q8_float_op_supported(const char *op_type) {
  for (size_t i = 0; op_type && i < q8_exec_ops_float.count; ++i) {
    if (strcmp(float_ops[i].op_type, op_type) == 0) return true;
  }
  return false;
}

static bool type_supported(q8_elem_type t) {
  return t == Q8_ELEM_UNDEFINED || held_type(t);
}

q8_status q8_float_session_create(const q8_graph *graph, q8_float_session **session) {
  if (session) *session = NULL;
  if (!graph || !session) return q8_fail(Q8_ERR_NULL, "graph or session is NULL");
  q8_status st = q8_graph_check_float64(graph);
  if (st) return st;
  for (size_t i = 0; i < graph->n_nodes; ++i) {
    const q8_node *node = &graph->nodes[i];
    const q8_exec_op *op = q8_exec_find_op(node->domain, node->op_type);
    if (!op) {
      const char *domain = domain_key(node->domain);
      return q8_fail(Q8_ERR_UNSUPPORTED,
                     "node '%s' (%s%s%s): operator not supported by the executor; keep it out of the model "
                     "or replace it with supported operators before quantizing",
                     node->name, domain, domain[0] ? "." : "", node->op_type);
    }
    if (op->check && (st = op->check(node, graph))) return st;
  }
  for (size_t i = 0; i < graph->n_tensors; ++i) {
    const q8_tensor *t = &graph->tensors[i];
    if (!type_supported(t->type)) {
      return q8_fail(Q8_ERR_UNSUPPORTED,
                     "tensor '%s' is %s; the executor handles float32, int8, uint8, int32 (and int64/bool "
                     "shapes and indices) only", t->name, q8_elem_type_name(t->type));
    }
  }
  q8_float_session *s = calloc(1, sizeof *s);
  if (!s) return q8_fail(Q8_ERR_NOMEM, "out of memory creating a float session");
  s->graph = graph;
  s->values = calloc(graph->n_tensors ? graph->n_tensors : 1, sizeof *s->values);
  s->ops = calloc(graph->n_nodes ? graph->n_nodes : 1, sizeof *s->ops);
  s->states = calloc(graph->n_nodes ? graph->n_nodes : 1, sizeof *s->states);
  if (!s->values || !s->ops || !s->states) {
    free(s->values);
    free(s->ops);
    free(s->states);
    free(s);
    return q8_fail(Q8_ERR_NOMEM, "out of memory creating a float session");
  }
  for (size_t i = 0; i < graph->n_tensors; ++i) s->values[i] = (value){.rank = -1};
  for (size_t i = 0; i < graph->n_nodes; ++i) s->ops[i] = q8_exec_find_op(graph->nodes[i].domain, graph->nodes[i].op_type);
  *session = s;
  return Q8_OK;
}

void q8_float_session_destroy(q8_float_session *s) {
  if (!s) return;
  for (size_t i = 0; i < s->graph->n_tensors; ++i) value_clear(&s->values[i]);
  for (size_t i = 0; i < s->graph->n_nodes; ++i) {
    if (s->states[i] && s->ops[i]->state_free) s->ops[i]->state_free(s->states[i]);
  }
  free(s->values);
  free(s->ops);
  free(s->states);
  free(s);
}

/* Initializers and constants: borrowed views of the graph's data. */
static void bind_constants(q8_float_session *s) {
  for (size_t i = 0; i < s->graph->n_tensors; ++i) {
    const q8_tensor *t = &s->graph->tensors[i];
    value *v = &s->values[i];
    value_clear(v);
    if ((t->kind == Q8_TENSOR_INITIALIZER || t->kind == Q8_TENSOR_CONSTANT) && t->rank >= 0) {
      *v = (value){.type = t->type, .rank = t->rank, .data = t->data, .owned = false};
      for (int d = 0; d < t->rank; ++d) v->dims[d] = t->dims[d];
      v->count = product(t->dims, 0, t->rank);
    }
  }
}

static q8_status bind_input(q8_float_session *s, const q8_float_tensor *in) {
  const int32_t idx = in->name ? q8_graph_tensor_index(s->graph, in->name) : -1;
  if (idx < 0) return q8_fail(Q8_ERR_ARG, "input '%s' is not a tensor of the graph", in->name ? in->name : "(null)");
  const q8_tensor *t = &s->graph->tensors[idx];
  if (t->kind != Q8_TENSOR_INPUT && t->kind != Q8_TENSOR_INITIALIZER) {
    return q8_fail(Q8_ERR_ARG, "tensor '%s' is not a graph input", in->name);
  }
  if (!held_type(in->type)) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "input '%s' is %s; the executor takes float32, int8, uint8, int32, int64 or bool", in->name,
                   q8_elem_type_name(in->type));
  }
  if (t->type != Q8_ELEM_UNDEFINED && t->type != in->type) {
    return q8_fail(Q8_ERR_ARG, "input '%s' is %s but the model declares %s", in->name, q8_elem_type_name(in->type),
                   q8_elem_type_name(t->type));
  }
  if (in->rank < 0 || in->rank > Q8_MAX_RANK) return q8_fail(Q8_ERR_ARG, "input '%s': rank %d", in->name, in->rank);
  bool fits = t->rank < 0 || t->rank == in->rank;
  for (int d = 0; fits && d < in->rank; ++d) fits = in->dims[d] >= 0 && (t->rank < 0 || t->dims[d] < 0 || t->dims[d] == in->dims[d]);
  if (!fits) {
    char a[160], b[160];
    return q8_fail(Q8_ERR_ARG, "input '%s' has shape %s but the model declares %s", in->name,
                   shape_str(in->rank, in->dims, a, sizeof a), q8_tensor_shape_str(t, b, sizeof b));
  }
  value *v = &s->values[idx];
  value_clear(v);
  *v = (value){.type = in->type, .rank = in->rank, .owned = true};
  for (int d = 0; d < in->rank; ++d) v->dims[d] = in->dims[d];
  v->count = product(in->dims, 0, in->rank);
  const size_t bytes = v->count * q8_elem_size(in->type);
  v->data = malloc(bytes ? bytes : 1);
  if (!v->data) {
    v->rank = -1;
    return q8_fail(Q8_ERR_NOMEM, "out of memory copying input '%s'", in->name);
  }
  if (bytes) {
    if (!in->data) return q8_fail(Q8_ERR_NULL, "input '%s' has no data", in->name);
    memcpy(v->data, in->data, bytes);
  }
  return Q8_OK;
}

static void view_of(const q8_float_session *s, int32_t idx, q8_float_tensor *out) {
  const value *v = &s->values[idx];
  *out = (q8_float_tensor){.name = s->graph->tensors[idx].name, .type = v->type, .rank = v->rank, .data = v->data};
  for (int d = 0; d < v->rank; ++d) out->dims[d] = v->dims[d];
}

q8_status q8_float_session_run(q8_float_session *s, const q8_float_tensor *inputs, size_t n_inputs,
                               q8_float_tensor *outputs, size_t n_outputs) {
  if (!s || (n_inputs && !inputs)) return q8_fail(Q8_ERR_NULL, "session or inputs is NULL");
  const q8_graph *g = s->graph;
  if (n_outputs > g->n_outputs) {
    return q8_fail(Q8_ERR_ARG, "%zu outputs requested, the graph has %zu", n_outputs, g->n_outputs);
  }
  bind_constants(s);
  q8_status st;
  for (size_t i = 0; i < n_inputs; ++i) {
    if ((st = bind_input(s, &inputs[i]))) return st;
  }
  for (size_t i = 0; i < g->n_inputs; ++i) {
    if (s->values[g->inputs[i]].rank < 0) {
      return q8_fail(Q8_ERR_ARG, "graph input '%s' was not given", g->tensors[g->inputs[i]].name);
    }
  }
  for (size_t i = 0; i < g->n_nodes; ++i) {
    ctx c = {.s = s, .node = &g->nodes[i], .state = &s->states[i]};
    if ((st = s->ops[i]->run(&c))) return st;
  }
  for (size_t i = 0; i < n_outputs; ++i) {
    if (s->values[g->outputs[i]].rank < 0) {
      return q8_fail(Q8_ERR_INTERNAL, "graph output '%s' was not computed", g->tensors[g->outputs[i]].name);
    }
    view_of(s, g->outputs[i], &outputs[i]);
  }
  return Q8_OK;
}

q8_status q8_float_session_tensor_at(const q8_float_session *s, int32_t index, q8_float_tensor *tensor) {
  if (!s || !tensor) return q8_fail(Q8_ERR_NULL, "session or tensor is NULL");
  if (index < 0 || (size_t)index >= s->graph->n_tensors) return q8_fail(Q8_ERR_ARG, "tensor index %d is out of range", index);
  if (s->values[index].rank < 0) {
    return q8_fail(Q8_ERR_ARG, "tensor '%s' holds no value (not computed by the last run)", s->graph->tensors[index].name);
  }
  view_of(s, index, tensor);
  return Q8_OK;
}

q8_status q8_float_session_tensor(const q8_float_session *s, const char *name, q8_float_tensor *tensor) {
  if (!s || !name || !tensor) return q8_fail(Q8_ERR_NULL, "session, name or tensor is NULL");
  const int32_t idx = q8_graph_tensor_index(s->graph, name);
  if (idx < 0) return q8_fail(Q8_ERR_ARG, "no tensor '%s' in the graph", name);
  return q8_float_session_tensor_at(s, idx, tensor);
}

/* ---- the operator contract (exec_ops.h) ------------------------------------------------ */

const q8_graph *q8_exec_graph(const q8_exec_ctx *c) { return c->s->graph; }

const q8_exec_value *q8_exec_input(const q8_exec_ctx *c, size_t k) { return in_opt(c, k); }

q8_status q8_exec_input_typed(const q8_exec_ctx *c, size_t k, unsigned types, const q8_exec_value **v) {
  return in_typed(c, k, types, v);
}

const char *q8_exec_input_name(const q8_exec_ctx *c, size_t k) {
  return k < c->node->n_inputs && c->node->inputs[k] >= 0 ? in_name(c, k) : "";
}

bool q8_exec_input_constant(const q8_exec_ctx *c, size_t k) {
  const value *v = in_opt(c, k);
  if (!v) return true; /* an omitted input is the same every run */
  const q8_tensor *t = &c->s->graph->tensors[c->node->inputs[k]];
  if (!v->owned) return true; /* borrowed: the graph's own data, not overridden by the caller */
  return t->producer >= 0 && strcmp(c->s->graph->nodes[t->producer].op_type, "Constant") == 0;
}

q8_status q8_exec_output(q8_exec_ctx *c, size_t k, q8_elem_type type, int rank, const int64_t *dims,
                         q8_exec_value **out) {
  return out_alloc(c, k, type, rank, dims, out);
}

q8_status q8_exec_fail(const q8_exec_ctx *c, q8_status status, const char *fmt, ...) {
  char msg[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  return node_fail(c, status, msg);
}

char *q8_exec_shape_str(int rank, const int64_t *dims, char *buf, size_t size) {
  return shape_str(rank, dims, buf, size);
}
