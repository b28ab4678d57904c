/* Graph preparation: BatchNormalization folding and Relu/Clip fusion (see prepare.h). */
#include "quant/prepare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"

/* ---- messages ------------------------------------------------------------------- */

q8_status q8_messages_add(q8_messages *messages, const char *fmt, ...) {
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  const int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
  char **items = text ? realloc(messages->items, (messages->count + 1) * sizeof *items) : NULL;
  if (!items) {
    va_end(again);
    free(text);
    return q8_fail(Q8_ERR_NOMEM, "out of memory for a message");
  }
  vsnprintf(text, (size_t)len + 1, fmt, again);
  va_end(again);
  messages->items = items;
  messages->items[messages->count++] = text;
  return Q8_OK;
}

void q8_messages_free(q8_messages *messages) {
  if (!messages) return;
  for (size_t i = 0; i < messages->count; ++i) free(messages->items[i]);
  free(messages->items);
  *messages = (q8_messages){0};
}

/* ---- graph helpers ------------------------------------------------------------------ */

static bool listed(const int32_t *list, size_t n, int32_t tensor) {
  for (size_t i = 0; i < n; ++i) {
    if (list[i] == tensor) return true;
  }
  return false;
}

/* The first node other than except that reads tensor, or -1. */
static int64_t other_consumer(const q8_graph *g, int32_t tensor, size_t except) {
  for (size_t n = 0; n < g->n_nodes; ++n) {
    if (n != except && listed(g->nodes[n].inputs, g->nodes[n].n_inputs, tensor)) return (int64_t)n;
  }
  return -1;
}

/* Producers are derived from the nodes' outputs, so one rule keeps them right
 * after any removal or insertion. */
static void recompute_producers(q8_graph *g) {
  for (size_t t = 0; t < g->n_tensors; ++t) g->tensors[t].producer = -1;
  for (size_t n = 0; n < g->n_nodes; ++n) {
    for (size_t k = 0; k < g->nodes[n].n_outputs; ++k) {
      if (g->nodes[n].outputs[k] >= 0) g->tensors[g->nodes[n].outputs[k]].producer = (int32_t)n;
    }
  }
}

/* Moves node index out of the graph into *out (freed when out is NULL). */
static void remove_node(q8_graph *g, size_t index, q8_node *out) {
  if (out) {
    *out = g->nodes[index];
  } else {
    q8_node_free(&g->nodes[index]);
  }
  memmove(&g->nodes[index], &g->nodes[index + 1], (g->n_nodes - index - 1) * sizeof *g->nodes);
  g->n_nodes--;
  recompute_producers(g);
}

static q8_status insert_node(q8_graph *g, size_t index, const q8_node *node) {
  q8_node *nodes = realloc(g->nodes, (g->n_nodes + 1) * sizeof *nodes);
  if (!nodes) return q8_fail(Q8_ERR_NOMEM, "out of memory inserting node '%s'", node->name);
  g->nodes = nodes;
  memmove(&nodes[index + 1], &nodes[index], (g->n_nodes - index) * sizeof *nodes);
  nodes[index] = *node;
  g->n_nodes++;
  recompute_producers(g);
  return Q8_OK;
}

/* The value of a tensor fixed before any run: an initializer or constant
 * (unless it is also a graph input the caller may override), or the output
 * of a Constant node. NULL otherwise. */
static const q8_tensor *constant_value(const q8_graph *g, int32_t index) {
  if (index < 0 || (size_t)index >= g->n_tensors || listed(g->inputs, g->n_inputs, index)) return NULL;
  const q8_tensor *t = &g->tensors[index];
  if (t->producer >= 0) {
    const q8_tensor *value = NULL;
    const q8_node *n = &g->nodes[t->producer];
    if (strcmp(n->op_type, "Constant") != 0 || q8_node_attr_tensor(n, "value", &value) != Q8_OK) return NULL;
    return value;
  }
  return t->kind == Q8_TENSOR_INITIALIZER || t->kind == Q8_TENSOR_CONSTANT ? t : NULL;
}

/* A constant float tensor's data when it has exactly count elements (count 0:
 * any), else NULL. */
static const float *constant_floats(const q8_graph *g, int32_t index, int64_t count) {
  const q8_tensor *t = constant_value(g, index);
  if (!t || t->type != Q8_ELEM_FLOAT || !t->data) return NULL;
  const int64_t n = q8_tensor_elements(t);
  if (n <= 0 || (count > 0 && n != count) || t->data_bytes != (size_t)n * sizeof(float)) return NULL;
  return t->data;
}

static const char *tensor_name(const q8_graph *g, int32_t index) {
  return index >= 0 && (size_t)index < g->n_tensors ? g->tensors[index].name : "";
}

/* Appends a float initializer called <base>_<suffix> (made unique) that takes
 * ownership of data; its index, or -1 (data freed) when out of memory. */
static int32_t append_initializer(q8_graph *g, const char *base, const char *suffix, int rank,
                                  const int64_t *dims, float *data, size_t count) {
  char name[512];
  snprintf(name, sizeof name, "%s_%s", base, suffix);
  for (unsigned k = 2; q8_graph_tensor_index(g, name) >= 0; ++k) {
    snprintf(name, sizeof name, "%s_%s_%u", base, suffix, k);
  }
  q8_tensor *tensors = realloc(g->tensors, (g->n_tensors + 1) * sizeof *tensors);
  char *owned_name = q8_str_dup(name);
  if (!tensors || !owned_name) {
    if (tensors) g->tensors = tensors;
    free(owned_name);
    free(data);
    return -1;
  }
  g->tensors = tensors;
  q8_tensor *t = &tensors[g->n_tensors];
  *t = (q8_tensor){.name = owned_name, .kind = Q8_TENSOR_INITIALIZER, .type = Q8_ELEM_FLOAT,
                   .rank = rank, .data = data, .data_bytes = count * sizeof(float), .producer = -1};
  for (int d = 0; d < rank; ++d) t->dims[d] = dims[d];
  return (int32_t)g->n_tensors++;
}

static bool is_op(const q8_node *n, const char *op_type) { return strcmp(n->op_type, op_type) == 0; }

/* Why the output of node p cannot be rewritten to skip its one consumer c
 * (in why), or false when it can. */
static bool output_shared(const q8_graph *g, size_t p, size_t c, char *why, size_t size) {
  const q8_node *prod = &g->nodes[p];
  if (prod->n_outputs != 1) {
    snprintf(why, size, "'%s' (%s) has %zu outputs", prod->name, prod->op_type, prod->n_outputs);
    return true;
  }
  const int32_t out = prod->outputs[0];
  const int64_t other = other_consumer(g, out, c);
  if (listed(g->outputs, g->n_outputs, out)) {
    snprintf(why, size, "the output '%s' of '%s' (%s) is also a graph output", tensor_name(g, out),
             prod->name, prod->op_type);
  } else if (other >= 0) {
    snprintf(why, size, "the output '%s' of '%s' (%s) also feeds '%s' (%s)", tensor_name(g, out), prod->name,
             prod->op_type, g->nodes[other].name, g->nodes[other].op_type);
  } else {
    return false;
  }
  return true;
}

/* ---- BatchNormalization folding ---------------------------------------------------- */

/* What a Conv or Gemm looks like to folding: M output channels, the weight
 * element i belongs to channel (i / inner) % M. */
typedef struct fold_target {
  const q8_tensor *weight;
  const float *w, *bias;
  int64_t channels, inner, bias_count;
  float bias_factor; /* Gemm's beta */
} fold_target;

static bool describe_target(const q8_graph *g, const q8_node *prod, fold_target *t, char *why, size_t size) {
  const int32_t wi = prod->n_inputs > 1 ? prod->inputs[1] : -1;
  const int32_t bi = prod->n_inputs > 2 ? prod->inputs[2] : -1;
  *t = (fold_target){.weight = constant_value(g, wi), .w = constant_floats(g, wi, 0), .bias_factor = 1.0f};
  if (wi < 0) {
    snprintf(why, size, "'%s' has no weights input", prod->name);
    return false;
  }
  if (!t->w) {
    snprintf(why, size, "the weights '%s' of '%s' are not a constant float tensor", tensor_name(g, wi), prod->name);
    return false;
  }
  const q8_tensor *w = t->weight;
  const int64_t elements = q8_tensor_elements(w);
  if (is_op(prod, "Conv")) {
    if (w->rank < 3 || w->dims[0] <= 0) {
      snprintf(why, size, "the weights '%s' of '%s' are not [M, C/group, kernel...]", w->name, prod->name);
      return false;
    }
    t->channels = w->dims[0];
    t->inner = elements / w->dims[0];
  } else {
    int64_t trans_b = 0;
    float beta = 1.0f;
    if (q8_node_attr_int(prod, "transB", 0, &trans_b) || q8_node_attr_float(prod, "beta", 1.0f, &beta) ||
        w->rank != 2) {
      snprintf(why, size, "'%s' (Gemm) has malformed attributes or weights", prod->name);
      return false;
    }
    t->channels = trans_b ? w->dims[0] : w->dims[1];
    t->inner = trans_b ? w->dims[1] : 1;
    t->bias_factor = beta;
  }
  if (bi >= 0) {
    t->bias = constant_floats(g, bi, 0);
    const q8_tensor *b = constant_value(g, bi);
    t->bias_count = t->bias ? q8_tensor_elements(b) : 0;
    const bool per_channel = t->bias_count == t->channels && b->rank >= 1 && b->dims[b->rank - 1] == t->channels;
    const bool broadcast = t->bias_count == 1 && !is_op(prod, "Conv"); /* Gemm's C broadcasts, Conv's B does not */
    if (!t->bias || (!broadcast && !per_channel)) {
      snprintf(why, size, "the bias '%s' of '%s' is not a constant float tensor of %lld elements (or 1 for Gemm)",
               tensor_name(g, bi), prod->name, (long long)t->channels);
      return false;
    }
  }
  return true;
}

/* Whether BN node bn can be folded into node *producer; why says why not. */
static bool foldable(const q8_graph *g, size_t bn, size_t *producer, char *why, size_t size) {
  const q8_node *node = &g->nodes[bn];
  int64_t training = 0;
  size_t outputs = 0;
  for (size_t k = 0; k < node->n_outputs; ++k) outputs += node->outputs[k] >= 0;
  if (q8_node_attr_int(node, "training_mode", 0, &training) != Q8_OK || training || outputs > 1) {
    snprintf(why, size, "it is in training mode (running statistics outputs)");
    return false;
  }
  if (node->n_outputs < 1 || node->outputs[0] < 0) {
    snprintf(why, size, "its output is omitted");
    return false;
  }
  if (node->n_inputs != 5 || listed(node->inputs, 5, -1)) {
    snprintf(why, size, "it lacks one of its 5 inputs");
    return false;
  }
  const int32_t x = node->inputs[0];
  const int32_t p = g->tensors[x].producer;
  if (p < 0) {
    snprintf(why, size, "its input '%s' is not computed by a node, not a Conv/Gemm output", tensor_name(g, x));
    return false;
  }
  const q8_node *prod = &g->nodes[p];
  if (!is_op(prod, "Conv") && !is_op(prod, "Gemm")) {
    snprintf(why, size, "its input comes from '%s' (%s), not Conv/Gemm", prod->name, prod->op_type);
    return false;
  }
  if (output_shared(g, (size_t)p, bn, why, size)) return false;
  fold_target t;
  if (!describe_target(g, prod, &t, why, size)) return false;
  for (size_t k = 1; k < 5; ++k) {
    if (!constant_floats(g, node->inputs[k], t.channels)) {
      snprintf(why, size, "its input '%s' is not a constant float tensor of %lld elements",
               tensor_name(g, node->inputs[k]), (long long)t.channels);
      return false;
    }
  }
  *producer = (size_t)p;
  return true;
}

/* Folds BN node bn into node p (foldable() said yes). */
static q8_status fold(q8_graph *g, size_t bn, size_t p) {
  q8_node *node = &g->nodes[bn], *prod = &g->nodes[p];
  fold_target t;
  char unused[8];
  describe_target(g, prod, &t, unused, sizeof unused);
  float epsilon = 1e-5f;
  q8_node_attr_float(node, "epsilon", 1e-5f, &epsilon);
  const float *gamma = constant_floats(g, node->inputs[1], 0), *beta = constant_floats(g, node->inputs[2], 0);
  const float *mean = constant_floats(g, node->inputs[3], 0), *var = constant_floats(g, node->inputs[4], 0);
  const size_t w_count = (size_t)q8_tensor_elements(t.weight), m = (size_t)t.channels;
  float *w = malloc(w_count * sizeof *w), *b = malloc(m * sizeof *b);
  double *s = malloc(m * sizeof *s);
  if (!w || !b || !s) {
    free(w);
    free(b);
    free(s);
    return q8_fail(Q8_ERR_NOMEM, "out of memory folding '%s'", node->name);
  }
  for (size_t c = 0; c < m; ++c) {
    s[c] = (double)gamma[c] / sqrt((double)var[c] + (double)epsilon);
    const double bias = t.bias ? (double)t.bias_factor * t.bias[t.bias_count == 1 ? 0 : c] : 0.0;
    b[c] = (float)((bias - mean[c]) * s[c] + beta[c]);
  }
  for (size_t i = 0; i < w_count; ++i) w[i] = (float)(t.w[i] * s[(i / (size_t)t.inner) % m]);
  free(s);
  const q8_tensor *weight = t.weight;
  int64_t w_dims[Q8_MAX_RANK];
  const int64_t b_dims[1] = {t.channels};
  memcpy(w_dims, weight->dims, sizeof w_dims);
  const int w_rank = weight->rank;
  char w_name[256]; /* the name the node uses: a Constant node's value tensor may have none */
  snprintf(w_name, sizeof w_name, "%s", tensor_name(g, prod->inputs[1]));
  const int32_t wi = append_initializer(g, w_name, "bnfold", w_rank, w_dims, w, w_count);
  const int32_t bi = wi < 0 ? -1 : append_initializer(g, w_name, "bnfold_bias", 1, b_dims, b, m);
  if (wi < 0) free(b);
  int32_t *inputs = bi < 0 ? NULL : realloc(prod->inputs, 3 * sizeof *inputs);
  if (!inputs) return q8_fail(Q8_ERR_NOMEM, "out of memory folding '%s'", node->name);
  prod->inputs = inputs;
  prod->n_inputs = 3;
  inputs[1] = wi;
  inputs[2] = bi;
  for (size_t a = 0; a < prod->n_attrs; ++a) {
    if (strcmp(prod->attrs[a].name, "beta") == 0) prod->attrs[a].f = 1.0f; /* beta * C is in b' */
  }
  prod->outputs[0] = node->outputs[0];
  remove_node(g, bn, NULL);
  return Q8_OK;
}

static q8_status report_fold(q8_fold_report *report, const char *bn, const char *into, const char *into_op,
                             const char *why) {
  if (!report) return Q8_OK;
  q8_fold *folds = realloc(report->folds, (report->count + 1) * sizeof *folds);
  if (!folds) return q8_fail(Q8_ERR_NOMEM, "out of memory for the fold report");
  report->folds = folds;
  q8_messages text = {0};
  q8_status st = into ? q8_messages_add(&text, "BatchNormalization '%s' folded into %s '%s'", bn, into_op, into)
                      : q8_messages_add(&text, "BatchNormalization '%s' not folded: %s", bn, why);
  q8_fold *f = &folds[report->count];
  *f = (q8_fold){.bn_node = q8_str_dup(bn), .into_node = into ? q8_str_dup(into) : NULL,
                 .message = st ? NULL : text.items[0]};
  free(text.items);
  report->count++;
  report->folded += into != NULL;
  if (!f->bn_node || !f->message || (into && !f->into_node)) return q8_fail(Q8_ERR_NOMEM, "out of memory for the fold report");
  return Q8_OK;
}

q8_status q8_graph_fold_batchnorm(q8_graph *graph, q8_fold_report *report) {
  if (report) *report = (q8_fold_report){0};
  if (!graph) return q8_fail(Q8_ERR_NULL, "graph is NULL");
  for (size_t i = 0; i < graph->n_nodes;) {
    if (!is_op(&graph->nodes[i], "BatchNormalization")) {
      ++i;
      continue;
    }
    char why[768], bn[256], into[256], into_op[32];
    size_t p = 0;
    const bool ok = foldable(graph, i, &p, why, sizeof why);
    snprintf(bn, sizeof bn, "%s", graph->nodes[i].name);
    snprintf(into, sizeof into, "%s", ok ? graph->nodes[p].name : "");
    snprintf(into_op, sizeof into_op, "%s", ok ? graph->nodes[p].op_type : "");
    q8_status st = ok ? fold(graph, i, p) : Q8_OK;
    if (st == Q8_OK) st = report_fold(report, bn, ok ? into : NULL, into_op, why);
    if (st) return st;
    i += !ok; /* a folded BN is gone: the next node is now at i */
  }
  return Q8_OK;
}

void q8_fold_report_free(q8_fold_report *report) {
  if (!report) return;
  for (size_t i = 0; i < report->count; ++i) {
    free(report->folds[i].bn_node);
    free(report->folds[i].into_node);
    free(report->folds[i].message);
  }
  free(report->folds);
  *report = (q8_fold_report){0};
}

/* ---- activation fusion ------------------------------------------------------------- */

static bool fusable_producer(const q8_node *n) {
  return is_op(n, "Conv") || is_op(n, "Gemm") || is_op(n, "MatMul");
}

/* The clamp of Relu/Clip node act in [*lo, *hi]; false with why when it is
 * not a constant, ordered pair. */
static bool clamp_bounds(const q8_graph *g, const q8_node *act, float *lo, float *hi, char *why, size_t size) {
  *lo = -INFINITY;
  *hi = INFINITY;
  if (is_op(act, "Relu")) {
    *lo = 0.0f;
    return true;
  }
  if (g->opset < 11) {
    if (q8_node_attr_float(act, "min", -INFINITY, lo) || q8_node_attr_float(act, "max", INFINITY, hi)) {
      snprintf(why, size, "its min/max attributes are malformed");
      return false;
    }
  } else {
    for (size_t k = 1; k < act->n_inputs && k <= 2; ++k) {
      if (act->inputs[k] < 0) continue;
      const float *v = constant_floats(g, act->inputs[k], 1);
      if (!v) {
        snprintf(why, size, "its %s '%s' is not a constant float scalar", k == 1 ? "min" : "max",
                 tensor_name(g, act->inputs[k]));
        return false;
      }
      *(k == 1 ? lo : hi) = *v;
    }
  }
  if (isnan(*lo) || isnan(*hi) || *lo > *hi) {
    snprintf(why, size, "its bounds [%g, %g] are not an interval", (double)*lo, (double)*hi);
    return false;
  }
  return true;
}

/* Fuses activation node i into its producer p (the caller checked it). */
static q8_status fuse(q8_graph *g, size_t i, size_t p, float lo, float hi, q8_fusion_table *table) {
  q8_fusion *fusions = realloc(table->fusions, (table->count + 1) * sizeof *fusions);
  if (!fusions) return q8_fail(Q8_ERR_NOMEM, "out of memory fusing '%s'", g->nodes[i].name);
  table->fusions = fusions;
  q8_fusion *f = &fusions[table->count];
  *f = (q8_fusion){.node = p, .node_name = q8_str_dup(g->nodes[p].name),
                   .activation_op = q8_str_dup(g->nodes[i].op_type),
                   .activation_name = q8_str_dup(g->nodes[i].name), .lo = lo, .hi = hi,
                   .pre_activation = g->nodes[p].outputs[0], .removed_at = i};
  if (!f->node_name || !f->activation_op || !f->activation_name) {
    free(f->node_name);
    free(f->activation_op);
    free(f->activation_name);
    return q8_fail(Q8_ERR_NOMEM, "out of memory fusing '%s'", g->nodes[i].name);
  }
  table->count++;
  g->nodes[p].outputs[0] = g->nodes[i].outputs[0];
  /* p < i, and later fusions remove nodes after i: p stays this node's index. */
  remove_node(g, i, &f->removed);
  return Q8_OK;
}

q8_status q8_graph_fuse_activations(q8_graph *graph, q8_fusion_table *fusions) {
  if (fusions) *fusions = (q8_fusion_table){0};
  if (!graph || !fusions) return q8_fail(Q8_ERR_NULL, "graph or fusions is NULL");
  q8_status st = Q8_OK;
  for (size_t i = 0; i < graph->n_nodes && st == Q8_OK; ++i) {
    const q8_node *act = &graph->nodes[i];
    if (!(is_op(act, "Relu") || is_op(act, "Clip")) || act->n_inputs < 1 || act->inputs[0] < 0 ||
        act->n_outputs != 1 || act->outputs[0] < 0) {
      continue;
    }
    const int32_t p = graph->tensors[act->inputs[0]].producer;
    if (p < 0 || !fusable_producer(&graph->nodes[p])) continue;
    char why[768];
    float lo, hi;
    if (output_shared(graph, (size_t)p, i, why, sizeof why) || !clamp_bounds(graph, act, &lo, &hi, why, sizeof why)) {
      st = q8_messages_add(&fusions->notes, "%s '%s' not fused into '%s': %s", act->op_type, act->name,
                           graph->nodes[p].name, why);
      continue;
    }
    st = fuse(graph, i--, (size_t)p, lo, hi, fusions); /* the next node is now at i */
  }
  fusions->n_nodes = graph->n_nodes;
  return st;
}

const q8_fusion *q8_fusion_find(const q8_fusion_table *fusions, const q8_graph *graph, size_t node_index) {
  if (!fusions || !graph || fusions->n_nodes != graph->n_nodes || node_index >= graph->n_nodes) return NULL;
  for (size_t k = 0; k < fusions->count; ++k) {
    const q8_fusion *f = &fusions->fusions[k];
    if (f->node == node_index && strcmp(f->node_name, graph->nodes[node_index].name) == 0) return f;
  }
  return NULL;
}

q8_status q8_graph_unfuse_activations(q8_graph *graph, q8_fusion_table *fusions) {
  if (!graph || !fusions) return q8_fail(Q8_ERR_NULL, "graph or fusions is NULL");
  for (size_t k = 0; k < fusions->count; ++k) {
    if (q8_fusion_find(fusions, graph, fusions->fusions[k].node) != &fusions->fusions[k]) {
      return q8_fail(Q8_ERR_ARG, "the graph's nodes are not those the fusion table was made for (node '%s')",
                     fusions->fusions[k].node_name);
    }
  }
  /* Reverse order: each insertion undoes one removal at the index it had then. */
  for (size_t k = fusions->count; k-- > 0;) {
    q8_fusion *f = &fusions->fusions[k];
    q8_status st = insert_node(graph, f->removed_at, &f->removed);
    if (st) return st;
    f->removed = (q8_node){0}; /* the graph owns it again */
    graph->nodes[f->node].outputs[0] = f->pre_activation;
    recompute_producers(graph);
  }
  q8_fusion_table_free(fusions);
  return Q8_OK;
}

void q8_fusion_table_free(q8_fusion_table *fusions) {
  if (!fusions) return;
  for (size_t k = 0; k < fusions->count; ++k) {
    q8_fusion *f = &fusions->fusions[k];
    free(f->node_name);
    free(f->activation_op);
    free(f->activation_name);
    q8_node_free(&f->removed);
  }
  free(fusions->fusions);
  q8_messages_free(&fusions->notes);
  *fusions = (q8_fusion_table){0};
}
