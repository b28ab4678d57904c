/* Graph preparation: BatchNormalization folding and Relu/Clip fusion keep
 * what the float executor computes, refuse what they cannot do with a reason,
 * and leave a valid graph. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/dataset.h"
#include "quant/float_exec.h"
#include "quant/policy.h"
#include "quant/prepare.h"
#include "tests/support/q8test.h"

/* ---- building small graphs on the heap (the passes realloc and free them) ---------- */

static q8_graph *gb_new(int64_t opset) {
  q8_graph *g = calloc(1, sizeof *g);
  cr_assert(g);
  g->name = q8_str_dup("test");
  g->producer_name = q8_str_dup("");
  g->opset = opset;
  return g;
}

static int32_t gb_tensor(q8_graph *g, const char *name, q8_tensor_kind kind, int rank, const int64_t *dims,
                         const float *data) {
  g->tensors = realloc(g->tensors, (g->n_tensors + 1) * sizeof *g->tensors);
  cr_assert(g->tensors);
  q8_tensor *t = &g->tensors[g->n_tensors];
  *t = (q8_tensor){.name = q8_str_dup(name), .kind = kind, .type = Q8_ELEM_FLOAT, .rank = rank, .producer = -1};
  for (int d = 0; d < rank; ++d) t->dims[d] = dims[d];
  if (data) {
    t->data_bytes = (size_t)q8_tensor_elements(t) * sizeof(float);
    t->data = malloc(t->data_bytes);
    memcpy(t->data, data, t->data_bytes);
  }
  if (kind == Q8_TENSOR_INPUT) {
    g->inputs = realloc(g->inputs, (g->n_inputs + 1) * sizeof *g->inputs);
    g->inputs[g->n_inputs++] = (int32_t)g->n_tensors;
  }
  return (int32_t)g->n_tensors++;
}

/* The tensor called name, created as a run-time value if new; "" is omitted (-1). */
static int32_t gb_ref(q8_graph *g, const char *name, size_t len) {
  char buf[128];
  snprintf(buf, sizeof buf, "%.*s", (int)len, name);
  if (!buf[0]) return -1;
  const int32_t i = q8_graph_tensor_index(g, buf);
  return i >= 0 ? i : gb_tensor(g, buf, Q8_TENSOR_VALUE, -1, NULL, NULL);
}

/* Tensor names of a comma list, "" items omitted: "x,w," has 3 entries. */
static size_t gb_refs(q8_graph *g, const char *list, int32_t **out) {
  size_t n = 0;
  *out = NULL;
  if (!list[0]) return 0;
  for (const char *at = list;; ++n) {
    const char *end = strchr(at, ',');
    *out = realloc(*out, (n + 1) * sizeof **out);
    (*out)[n] = gb_ref(g, at, end ? (size_t)(end - at) : strlen(at));
    if (!end) return n + 1;
    at = end + 1;
  }
}

/* Appends a node; its index. Node pointers die at the next gb_node. */
static size_t gb_node(q8_graph *g, const char *op, const char *name, const char *inputs, const char *outputs) {
  g->nodes = realloc(g->nodes, (g->n_nodes + 1) * sizeof *g->nodes);
  q8_node *n = &g->nodes[g->n_nodes];
  *n = (q8_node){.op_type = q8_str_dup(op), .name = q8_str_dup(name), .domain = q8_str_dup("")};
  n->n_inputs = gb_refs(g, inputs, &n->inputs);
  n->n_outputs = gb_refs(g, outputs, &n->outputs);
  for (size_t k = 0; k < n->n_outputs; ++k) {
    if (n->outputs[k] >= 0) g->tensors[n->outputs[k]].producer = (int32_t)g->n_nodes;
  }
  return g->n_nodes++;
}

static void gb_attr(q8_graph *g, size_t node, const char *name, q8_attr_type type, int64_t i, float f) {
  q8_node *n = &g->nodes[node];
  n->attrs = realloc(n->attrs, (n->n_attrs + 1) * sizeof *n->attrs);
  n->attrs[n->n_attrs++] = (q8_attr){.name = q8_str_dup(name), .type = type, .i = i, .f = f};
}

static void gb_output(q8_graph *g, const char *name) {
  g->outputs = realloc(g->outputs, (g->n_outputs + 1) * sizeof *g->outputs);
  g->outputs[g->n_outputs++] = q8_graph_tensor_index(g, name);
}

static void fill(q8t_rng *r, float *v, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; ++i) v[i] = q8t_uniform(r, lo, hi);
}

/* BatchNormalization 'name' on x -> y with random constant statistics of m channels. */
static size_t gb_batchnorm(q8_graph *g, q8t_rng *r, const char *name, const char *x, const char *y, int64_t m) {
  float gamma[64], beta[64], mean[64], var[64];
  fill(r, gamma, (size_t)m, -2.0f, 2.0f);
  fill(r, beta, (size_t)m, -1.0f, 1.0f);
  fill(r, mean, (size_t)m, -1.0f, 1.0f);
  fill(r, var, (size_t)m, 0.05f, 3.0f);
  const int64_t dims[1] = {m};
  char names[4][64], inputs[320];
  const char *what[4] = {"scale", "B", "mean", "var"};
  const float *data[4] = {gamma, beta, mean, var};
  for (int k = 0; k < 4; ++k) {
    snprintf(names[k], sizeof names[k], "%s_%s", name, what[k]);
    gb_tensor(g, names[k], Q8_TENSOR_INITIALIZER, 1, dims, data[k]);
  }
  snprintf(inputs, sizeof inputs, "%s,%s,%s,%s,%s", x, names[0], names[1], names[2], names[3]);
  const size_t n = gb_node(g, "BatchNormalization", name, inputs, y);
  gb_attr(g, n, "epsilon", Q8_ATTR_FLOAT, 0, 1e-3f);
  return n;
}

/* ---- checks ---------------------------------------------------------------------------- */

/* Producers match outputs and every input is computed before it is read. */
static void expect_valid(const q8_graph *g) {
  for (size_t n = 0; n < g->n_nodes; ++n) {
    const q8_node *node = &g->nodes[n];
    for (size_t k = 0; k < node->n_inputs; ++k) {
      const int32_t t = node->inputs[k];
      cr_expect(t >= -1 && t < (int32_t)g->n_tensors, "node %s input %zu out of range", node->name, k);
      if (t >= 0) cr_expect_lt(g->tensors[t].producer, (int32_t)n, "%s reads %s before it is made", node->name, g->tensors[t].name);
    }
    for (size_t k = 0; k < node->n_outputs; ++k) {
      if (node->outputs[k] >= 0) cr_expect_eq(g->tensors[node->outputs[k]].producer, (int32_t)n, "%s", node->name);
    }
  }
  for (size_t t = 0; t < g->n_tensors; ++t) {
    const int32_t p = g->tensors[t].producer;
    if (p < 0) continue;
    cr_assert_lt(p, (int32_t)g->n_nodes, "tensor %s: producer %d beyond the nodes", g->tensors[t].name, p);
    bool found = false;
    for (size_t k = 0; k < g->nodes[p].n_outputs; ++k) found |= g->nodes[p].outputs[k] == (int32_t)t;
    cr_expect(found, "tensor %s: node %s does not output it", g->tensors[t].name, g->nodes[p].name);
  }
}

/* Runs g on x (its one graph input) and copies the first output to y (count floats). */
static void run_float(const q8_graph *g, int rank, const int64_t *dims, const float *x, float *y, size_t count) {
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(g, &s), Q8_OK, "%s", q8_error_detail());
  q8_float_tensor in = {.name = g->tensors[g->inputs[0]].name, .type = Q8_ELEM_FLOAT, .rank = rank, .data = x};
  for (int d = 0; d < rank; ++d) in.dims[d] = dims[d];
  q8_float_tensor out;
  cr_assert_eq(q8_float_session_run(s, &in, 1, &out, 1), Q8_OK, "%s", q8_error_detail());
  size_t elements = 1;
  for (int d = 0; d < out.rank; ++d) elements *= (size_t)out.dims[d];
  cr_assert_eq(elements, count);
  memcpy(y, out.data, count * sizeof *y);
  q8_float_session_destroy(s);
}

/* The folded graph computes what BN after the layer did: 1e-4 relative, 1e-5 absolute. */
static void expect_close(const float *got, const float *want, size_t n, const char *what) {
  for (size_t i = 0; i < n; ++i) {
    const float tol = fmaxf(1e-5f, 1e-4f * fabsf(want[i]));
    cr_expect_leq(fabsf(got[i] - want[i]), tol, "%s[%zu]: %.8g, unfolded %.8g", what, i, got[i], want[i]);
  }
}

static size_t count_op(const q8_graph *g, const char *op) {
  size_t n = 0;
  for (size_t i = 0; i < g->n_nodes; ++i) n += strcmp(g->nodes[i].op_type, op) == 0;
  return n;
}

typedef q8_graph *(*builder)(q8t_rng *r);

/* Builds the graph twice from the same stream, folds one, checks the fold
 * report says folded, and compares both on random input of the given shape. */
static void expect_fold_keeps_output(builder build, int rank, const int64_t *dims, size_t out_count) {
  q8t_rng r1 = q8t_rng_new(11), r2 = q8t_rng_new(11), rx = q8t_rng_new(12);
  q8_graph *plain = build(&r1), *folded = build(&r2);
  const size_t nodes = folded->n_nodes;
  q8_fold_report report;
  cr_assert_eq(q8_graph_fold_batchnorm(folded, &report), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(report.count, 1);
  cr_expect_eq(report.folded, 1, "%s", report.folds[0].message);
  cr_expect(report.folds[0].into_node && strstr(report.folds[0].message, "folded into"), "%s", report.folds[0].message);
  cr_expect_eq(folded->n_nodes, nodes - 1);
  cr_expect_eq(count_op(folded, "BatchNormalization"), 0);
  expect_valid(folded);
  size_t in_count = 1;
  for (int d = 0; d < rank; ++d) in_count *= (size_t)dims[d];
  float *x = malloc(in_count * sizeof *x), *want = malloc(out_count * sizeof *want), *got = malloc(out_count * sizeof *got);
  fill(&rx, x, in_count, -1.0f, 1.0f);
  run_float(plain, rank, dims, x, want, out_count);
  run_float(folded, rank, dims, x, got, out_count);
  expect_close(got, want, out_count, "y");
  free(x);
  free(want);
  free(got);
  q8_fold_report_free(&report);
  q8_graph_destroy(plain);
  q8_graph_destroy(folded);
}

/* ---- BatchNormalization folding: hand-built graphs ----------------------------------------- */

enum { CN = 2, CC = 4, CH = 6, CW = 5, CM = 6 };
static const int64_t conv_x_dims[4] = {CN, CC, CH, CW};

/* x -> Conv(3x3, pad 1, group) -> BN -> y, with or without a bias. */
static q8_graph *conv_bn(q8t_rng *r, bool bias, int64_t group) {
  q8_graph *g = gb_new(13);
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 4, conv_x_dims, NULL);
  float w[CM * CC * 9], b[CM];
  fill(r, w, sizeof w / sizeof *w, -1.0f, 1.0f);
  fill(r, b, CM, -1.0f, 1.0f);
  const int64_t w_dims[4] = {CM, CC / group, 3, 3}, b_dims[1] = {CM};
  gb_tensor(g, "w", Q8_TENSOR_INITIALIZER, 4, w_dims, w);
  if (bias) gb_tensor(g, "b", Q8_TENSOR_INITIALIZER, 1, b_dims, b);
  const size_t conv = gb_node(g, "Conv", "conv", bias ? "x,w,b" : "x,w", "c");
  gb_attr(g, conv, "group", Q8_ATTR_INT, group, 0);
  int64_t *pads = malloc(4 * sizeof *pads);
  for (int k = 0; k < 4; ++k) pads[k] = 1;
  gb_attr(g, conv, "pads", Q8_ATTR_INTS, 0, 0);
  g->nodes[conv].attrs[g->nodes[conv].n_attrs - 1].ints = pads;
  g->nodes[conv].attrs[g->nodes[conv].n_attrs - 1].count = 4;
  gb_batchnorm(g, r, "bn", "c", "y", CM);
  gb_output(g, "y");
  return g;
}

static q8_graph *conv_bias_bn(q8t_rng *r) { return conv_bn(r, true, 1); }
static q8_graph *conv_nobias_bn(q8t_rng *r) { return conv_bn(r, false, 1); }
static q8_graph *grouped_conv_bn(q8t_rng *r) { return conv_bn(r, true, 2); }

Test(fold_batchnorm, conv_with_bias) { expect_fold_keeps_output(conv_bias_bn, 4, conv_x_dims, CN * CM * CH * CW); }

Test(fold_batchnorm, conv_without_bias_gets_one) {
  expect_fold_keeps_output(conv_nobias_bn, 4, conv_x_dims, CN * CM * CH * CW);
  q8t_rng r = q8t_rng_new(11);
  q8_graph *g = conv_nobias_bn(&r);
  cr_assert_eq(q8_graph_fold_batchnorm(g, NULL), Q8_OK);
  cr_assert_eq(g->nodes[0].n_inputs, 3);
  const q8_tensor *b = &g->tensors[g->nodes[0].inputs[2]];
  cr_expect_eq(b->kind, Q8_TENSOR_INITIALIZER);
  cr_expect(b->rank == 1 && b->dims[0] == CM && b->data_bytes == CM * sizeof(float));
  /* The Conv now produces BN's output tensor; the old one is orphaned. */
  cr_expect_eq(g->nodes[0].outputs[0], q8_graph_tensor_index(g, "y"));
  cr_expect_eq(g->tensors[q8_graph_tensor_index(g, "c")].producer, -1);
  q8_graph_destroy(g);
}

Test(fold_batchnorm, grouped_conv) { expect_fold_keeps_output(grouped_conv_bn, 4, conv_x_dims, CN * CM * CH * CW); }

enum { GM = 3, GK = 7, GN = 5 };
static const int64_t gemm_x_dims[2] = {GM, GK};

/* x[3,7] -> Gemm(alpha 0.5, beta 2, transB, C [N] or scalar) -> BN -> y. */
static q8_graph *gemm_bn(q8t_rng *r, bool trans_b, int64_t c_count) {
  q8_graph *g = gb_new(13);
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 2, gemm_x_dims, NULL);
  float w[GN * GK], c[GN];
  fill(r, w, GN * GK, -1.0f, 1.0f);
  fill(r, c, GN, -1.0f, 1.0f);
  const int64_t w_dims[2] = {trans_b ? GN : GK, trans_b ? GK : GN}, c_dims[2] = {1, c_count};
  gb_tensor(g, "w", Q8_TENSOR_INITIALIZER, 2, w_dims, w);
  gb_tensor(g, "c", Q8_TENSOR_INITIALIZER, 2, c_dims, c);
  const size_t gemm = gb_node(g, "Gemm", "fc", "x,w,c", "h");
  gb_attr(g, gemm, "transB", Q8_ATTR_INT, trans_b, 0);
  gb_attr(g, gemm, "alpha", Q8_ATTR_FLOAT, 0, 0.5f);
  gb_attr(g, gemm, "beta", Q8_ATTR_FLOAT, 0, 2.0f);
  gb_batchnorm(g, r, "bn", "h", "y", GN);
  gb_output(g, "y");
  return g;
}

static q8_graph *gemm_trans_bn(q8t_rng *r) { return gemm_bn(r, true, GN); }
static q8_graph *gemm_plain_scalar_c_bn(q8t_rng *r) { return gemm_bn(r, false, 1); }

Test(fold_batchnorm, gemm_trans_b_with_alpha_beta) { expect_fold_keeps_output(gemm_trans_bn, 2, gemm_x_dims, GM * GN); }
Test(fold_batchnorm, gemm_without_trans_b_scalar_c) {
  expect_fold_keeps_output(gemm_plain_scalar_c_bn, 2, gemm_x_dims, GM * GN);
}

/* Expects the graph's one BN not folded, with a reason holding every fragment. */
static void expect_not_folded(q8_graph *g, const char *const *fragments, size_t n_fragments) {
  const size_t nodes = g->n_nodes, tensors = g->n_tensors;
  q8_fold_report report;
  cr_assert_eq(q8_graph_fold_batchnorm(g, &report), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(report.count, 1);
  cr_expect_eq(report.folded, 0);
  cr_expect_null(report.folds[0].into_node);
  const char *msg = report.folds[0].message;
  cr_expect(strstr(msg, "not folded: ") && strstr(msg, report.folds[0].bn_node), "%s", msg);
  for (size_t k = 0; k < n_fragments; ++k) cr_expect(strstr(msg, fragments[k]), "'%s' not in: %s", fragments[k], msg);
  cr_expect_eq(g->n_nodes, nodes);
  cr_expect_eq(g->n_tensors, tensors);
  expect_valid(g);
  q8_fold_report_free(&report);
  q8_graph_destroy(g);
}

Test(fold_batchnorm, conv_output_consumed_elsewhere_is_not_folded) {
  q8t_rng r = q8t_rng_new(1);
  q8_graph *g = conv_bias_bn(&r);
  gb_node(g, "Relu", "side", "c", "side_out");
  gb_output(g, "side_out");
  expect_not_folded(g, (const char *[]){"'c'", "also feeds 'side' (Relu)"}, 2);
  q8_graph *h = conv_bias_bn(&r);
  gb_output(h, "c");
  expect_not_folded(h, (const char *[]){"'c'", "graph output"}, 2);
}

Test(fold_batchnorm, non_constant_statistics_are_not_folded) {
  q8t_rng r = q8t_rng_new(1);
  q8_graph *g = conv_bias_bn(&r);
  /* The mean becomes a graph input the caller may override. */
  const int32_t mean = q8_graph_tensor_index(g, "bn_mean");
  g->inputs = realloc(g->inputs, (g->n_inputs + 1) * sizeof *g->inputs);
  g->inputs[g->n_inputs++] = mean;
  expect_not_folded(g, (const char *[]){"'bn_mean'", "not a constant"}, 2);
  q8_graph *h = conv_bias_bn(&r);
  h->tensors[q8_graph_tensor_index(h, "w")].kind = Q8_TENSOR_INPUT;
  expect_not_folded(h, (const char *[]){"weights 'w'"}, 1);
}

Test(fold_batchnorm, training_mode_outputs_are_not_folded) {
  q8t_rng r = q8t_rng_new(1);
  q8_graph *g = gb_new(14);
  const int64_t dims[4] = {1, 2, 3, 3}, w_dims[4] = {2, 2, 1, 1};
  const float w[4] = {1, 2, 3, 4};
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 4, dims, NULL);
  gb_tensor(g, "w", Q8_TENSOR_INITIALIZER, 4, w_dims, w);
  gb_node(g, "Conv", "conv", "x,w", "c");
  const size_t bn = gb_batchnorm(g, &r, "bn", "c", "y", 2);
  gb_attr(g, bn, "training_mode", Q8_ATTR_INT, 1, 0);
  int32_t *outs = realloc(g->nodes[bn].outputs, 3 * sizeof *outs);
  outs[1] = gb_ref(g, "running_mean", 12);
  outs[2] = gb_ref(g, "running_var", 11);
  g->nodes[bn].outputs = outs;
  g->nodes[bn].n_outputs = 3;
  g->tensors[outs[1]].producer = g->tensors[outs[2]].producer = (int32_t)bn;
  gb_output(g, "y");
  expect_not_folded(g, (const char *[]){"training mode"}, 1);
}

Test(fold_batchnorm, input_from_another_op_or_graph_input_is_not_folded) {
  q8t_rng r = q8t_rng_new(1);
  q8_graph *g = gb_new(13);
  const int64_t dims[4] = {1, 2, 3, 3};
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 4, dims, NULL);
  gb_node(g, "Add", "Add_5", "x,x", "s");
  gb_batchnorm(g, &r, "bn3", "s", "y", 2);
  gb_output(g, "y");
  expect_not_folded(g, (const char *[]){"BatchNormalization 'bn3' not folded: its input comes from 'Add_5' (Add), "
                                        "not Conv/Gemm"}, 1);
  q8_graph *h = gb_new(13);
  gb_tensor(h, "x", Q8_TENSOR_INPUT, 4, dims, NULL);
  gb_batchnorm(h, &r, "bn", "x", "y", 2);
  gb_output(h, "y");
  expect_not_folded(h, (const char *[]){"'x'", "not computed by a node"}, 1);
}

/* Two Convs share one weight tensor: both fold into copies; the original data stays. */
Test(fold_batchnorm, shared_weights_are_copied_not_changed) {
  q8t_rng r = q8t_rng_new(3);
  q8_graph *g = gb_new(13);
  const int64_t dims[4] = {1, 2, 4, 4}, w_dims[4] = {2, 2, 1, 1};
  const float w[4] = {0.5f, -1.0f, 2.0f, 0.25f};
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 4, dims, NULL);
  gb_tensor(g, "w", Q8_TENSOR_INITIALIZER, 4, w_dims, w);
  gb_node(g, "Conv", "conv_a", "x,w", "a");
  gb_batchnorm(g, &r, "bn_a", "a", "ya", 2);
  gb_node(g, "Conv", "conv_b", "x,w,", "b"); /* an omitted bias ("") */
  gb_batchnorm(g, &r, "bn_b", "b", "yb", 2);
  gb_node(g, "Add", "sum", "ya,yb", "y");
  gb_output(g, "y");
  q8_fold_report report;
  cr_assert_eq(q8_graph_fold_batchnorm(g, &report), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(report.folded, 2);
  cr_expect_str_eq(report.folds[1].message, "BatchNormalization 'bn_b' folded into Conv 'conv_b'");
  const q8_tensor *orig = &g->tensors[q8_graph_tensor_index(g, "w")];
  cr_expect_arr_eq(orig->data, w, sizeof w);
  cr_expect_neq(g->nodes[0].inputs[1], g->nodes[1].inputs[1]);
  cr_expect_str_eq(g->tensors[g->nodes[0].inputs[1]].name, "w_bnfold");
  cr_expect_str_eq(g->tensors[g->nodes[1].inputs[1]].name, "w_bnfold_2");
  expect_valid(g);
  q8_fold_report_free(&report);
  q8_graph_destroy(g);
}

/* ---- our Fashion-MNIST model ---------------------------------------------------------------- */

static q8_graph *load_model(void) {
  q8_graph *graph = q8t_load_fashion_model();
  cr_assert_not_null(graph, "%s", q8_error_detail());
  return graph;
}

enum { IMAGES = 8, CLASSES = 10 };

static void model_logits(const q8_graph *g, const q8_dataset *ds, float *logits) {
  static float input[IMAGES * 28 * 28];
  cr_assert_eq(q8_dataset_batch(ds, 0, IMAGES, input), Q8_OK, "%s", q8_error_detail());
  const int64_t dims[4] = {IMAGES, 1, (int64_t)ds->rows, (int64_t)ds->cols};
  run_float(g, 4, dims, input, logits, IMAGES * CLASSES);
}

Test(prepare_model, fold_all_three_batchnorms_then_fuse_the_relus) {
  q8_dataset ds;
  cr_assert_eq(q8_dataset_load(NULL, "t10k", &ds), Q8_OK, "%s", q8_error_detail());
  q8_graph *plain = load_model(), *g = load_model();
  float want[IMAGES * CLASSES], folded[IMAGES * CLASSES], unfused[IMAGES * CLASSES];
  model_logits(plain, &ds, want);

  q8_fold_report report;
  cr_assert_eq(q8_graph_fold_batchnorm(g, &report), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(report.count, 3);
  cr_expect_eq(report.folded, 3);
  for (size_t k = 0; k < report.count; ++k) cr_log_info("%s", report.folds[k].message);
  cr_expect_str_eq(report.folds[0].message, "BatchNormalization '/bn1/BatchNormalization' folded into Conv '/conv1/Conv'");
  cr_expect_eq(g->n_nodes, plain->n_nodes - 3);
  cr_expect_eq(count_op(g, "BatchNormalization"), 0);
  expect_valid(g);
  model_logits(g, &ds, folded);
  expect_close(folded, want, IMAGES * CLASSES, "logits");
  float worst = 0.0f;
  for (size_t i = 0; i < IMAGES * CLASSES; ++i) worst = fmaxf(worst, fabsf(folded[i] - want[i]));
  cr_log_info("folded vs unfolded logits, %d images: max |difference| %.3g", IMAGES, (double)worst);

  q8_fusion_table fusions;
  cr_assert_eq(q8_graph_fuse_activations(g, &fusions), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(fusions.count, 3);
  cr_expect_eq(count_op(g, "Relu"), 0);
  cr_expect_eq(fusions.notes.count, 0, "%s", fusions.notes.count ? fusions.notes.items[0] : "");
  expect_valid(g);
  size_t convs = 0;
  for (size_t i = 0; i < g->n_nodes; ++i) {
    const q8_fusion *f = q8_fusion_find(&fusions, g, i);
    if (strcmp(g->nodes[i].op_type, "Conv") == 0) {
      ++convs;
      cr_assert(f, "conv %s has no fusion", g->nodes[i].name);
      cr_expect_str_eq(f->activation_op, "Relu");
      cr_expect(f->lo == 0.0f && isinf(f->hi) && f->hi > 0);
      /* The Conv now writes the Relu's tensor, which the next node reads. */
      cr_expect_str_eq(g->tensors[g->nodes[i].outputs[0]].name, g->tensors[g->nodes[i + 1].inputs[0]].name);
    } else {
      cr_expect_null(f, "%s (%s) has a fusion", g->nodes[i].name, g->nodes[i].op_type);
    }
  }
  cr_expect_eq(convs, 3);

  /* Unfusing gives back the folded graph: the float logits are bit-identical. */
  cr_assert_eq(q8_graph_unfuse_activations(g, &fusions), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(fusions.count, 0);
  cr_expect_eq(count_op(g, "Relu"), 3);
  expect_valid(g);
  model_logits(g, &ds, unfused);
  cr_expect_arr_eq(unfused, folded, sizeof folded);
  q8_fusion_table_free(&fusions);
  q8_fold_report_free(&report);
  q8_graph_destroy(plain);
  q8_graph_destroy(g);
  q8_dataset_free(&ds);
}

/* ---- activation fusion: hand-built graphs ---------------------------------------------- */

static const int64_t mm_x_dims[2] = {GM, GK};

/* x[3,7] -> op (MatMul or Gemm) -> act (op_type) -> y. */
static q8_graph *compute_act(const char *op, const char *act, const char *act_inputs, int64_t opset) {
  q8t_rng r = q8t_rng_new(5);
  q8_graph *g = gb_new(opset);
  float w[GK * GN];
  fill(&r, w, GK * GN, -1.0f, 1.0f);
  const int64_t w_dims[2] = {GK, GN};
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 2, mm_x_dims, NULL);
  gb_tensor(g, "w", Q8_TENSOR_INITIALIZER, 2, w_dims, w);
  const float lo = -0.25f, hi = 0.5f;
  gb_tensor(g, "lo", Q8_TENSOR_INITIALIZER, 0, NULL, &lo);
  gb_tensor(g, "hi", Q8_TENSOR_INITIALIZER, 0, NULL, &hi);
  gb_node(g, op, "mm", "x,w", "h");
  gb_node(g, act, "act", act_inputs, "y");
  gb_output(g, "y");
  return g;
}

/* Fuses, checks bounds and node layout, and that unfusing restores the outputs exactly. */
static void expect_fused(q8_graph *g, float lo, float hi) {
  q8t_rng rx = q8t_rng_new(9);
  float x[GM * GK], want[GM * GN], got[GM * GN];
  fill(&rx, x, GM * GK, -1.0f, 1.0f);
  run_float(g, 2, mm_x_dims, x, want, GM * GN);
  q8_fusion_table t;
  cr_assert_eq(q8_graph_fuse_activations(g, &t), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(t.count, 1, "%s", t.notes.count ? t.notes.items[0] : "");
  cr_expect_eq(g->n_nodes, 1);
  const q8_fusion *f = q8_fusion_find(&t, g, 0);
  cr_assert(f);
  cr_expect_str_eq(f->node_name, "mm");
  cr_expect_str_eq(f->activation_name, "act");
  cr_expect(f->lo == lo && f->hi == hi, "bounds [%g, %g], want [%g, %g]", f->lo, f->hi, lo, hi);
  cr_expect_eq(g->nodes[0].outputs[0], g->outputs[0]);
  cr_expect_null(q8_fusion_find(&t, g, 1));
  expect_valid(g);
  /* The fused graph computes the pre-activation value in float ... */
  run_float(g, 2, mm_x_dims, x, got, GM * GN);
  for (size_t i = 0; i < GM * GN; ++i) cr_expect_eq(fminf(fmaxf(got[i], lo), hi), want[i]);
  /* ... and unfusing restores the graph. */
  cr_assert_eq(q8_graph_unfuse_activations(g, &t), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(g->n_nodes, 2);
  expect_valid(g);
  run_float(g, 2, mm_x_dims, x, got, GM * GN);
  cr_expect_arr_eq(got, want, sizeof want);
  q8_fusion_table_free(&t);
  q8_graph_destroy(g);
}

Test(fuse_activations, matmul_relu) { expect_fused(compute_act("MatMul", "Relu", "h", 13), 0.0f, INFINITY); }
Test(fuse_activations, matmul_clip_constant_inputs) { expect_fused(compute_act("MatMul", "Clip", "h,lo,hi", 13), -0.25f, 0.5f); }
Test(fuse_activations, clip_with_omitted_min) { expect_fused(compute_act("MatMul", "Clip", "h,,hi", 13), -INFINITY, 0.5f); }

Test(fuse_activations, clip_bounds_from_attributes_before_opset_11) {
  q8_graph *g = compute_act("MatMul", "Clip", "h", 10);
  gb_attr(g, 1, "min", Q8_ATTR_FLOAT, 0, 0.0f);
  gb_attr(g, 1, "max", Q8_ATTR_FLOAT, 0, 6.0f);
  expect_fused(g, 0.0f, 6.0f);
}

/* Expects nothing fused; when note is not NULL, one note containing it. */
static void expect_not_fused(q8_graph *g, const char *note) {
  const size_t nodes = g->n_nodes;
  q8_fusion_table t;
  cr_assert_eq(q8_graph_fuse_activations(g, &t), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(t.count, 0);
  cr_expect_eq(g->n_nodes, nodes);
  cr_expect_eq(t.notes.count, note ? 1 : 0);
  if (note && t.notes.count) cr_expect(strstr(t.notes.items[0], note), "'%s' not in: %s", note, t.notes.items[0]);
  for (size_t i = 0; i < g->n_nodes; ++i) cr_expect_null(q8_fusion_find(&t, g, i));
  expect_valid(g);
  q8_fusion_table_free(&t);
  q8_graph_destroy(g);
}

Test(fuse_activations, non_constant_bounds_are_not_fused) {
  q8_graph *g = compute_act("Gemm", "Clip", "h,lo,hi", 13);
  g->inputs = realloc(g->inputs, (g->n_inputs + 1) * sizeof *g->inputs);
  g->inputs[g->n_inputs++] = q8_graph_tensor_index(g, "hi");
  expect_not_fused(g, "Clip 'act' not fused into 'mm': its max 'hi' is not a constant float scalar");
  q8_graph *h = compute_act("Gemm", "Clip", "h,hi,lo", 13);
  expect_not_fused(h, "not an interval");
}

Test(fuse_activations, shared_or_graph_output_producer_is_not_fused) {
  q8_graph *g = compute_act("MatMul", "Relu", "h", 13);
  gb_output(g, "h");
  expect_not_fused(g, "is also a graph output");
  q8_graph *h = compute_act("MatMul", "Relu", "h", 13);
  gb_node(h, "Sigmoid", "other", "h", "z");
  gb_output(h, "z");
  expect_not_fused(h, "also feeds 'other' (Sigmoid)");
}

Test(fuse_activations, relu_on_a_graph_input_or_after_add_is_left_alone) {
  q8_graph *g = gb_new(13);
  gb_tensor(g, "x", Q8_TENSOR_INPUT, 2, mm_x_dims, NULL);
  gb_node(g, "Relu", "r0", "x", "a");
  gb_node(g, "Add", "add", "a,a", "s");
  gb_node(g, "Relu", "r1", "s", "y");
  gb_node(g, "Clip", "c", "", "z"); /* malformed: no input at all */
  gb_output(g, "y");
  expect_not_fused(g, NULL);
}

Test(fuse_activations, a_table_does_not_apply_to_another_graph) {
  q8_graph *g = compute_act("MatMul", "Relu", "h", 13);
  q8_fusion_table t;
  cr_assert_eq(q8_graph_fuse_activations(g, &t), Q8_OK, "%s", q8_error_detail());
  q8_graph *other = compute_act("MatMul", "Relu", "h", 13);
  cr_expect_null(q8_fusion_find(&t, other, 0));
  cr_expect_eq(q8_graph_unfuse_activations(other, &t), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "fusion table"), "%s", q8_error_detail());
  cr_expect_eq(other->n_nodes, 2);
  q8_fusion_table_free(&t);
  cr_expect_eq(q8_graph_fuse_activations(NULL, &t), Q8_ERR_NULL);
  cr_expect_eq(q8_graph_fold_batchnorm(NULL, NULL), Q8_ERR_NULL);
  q8_graph_destroy(g);
  q8_graph_destroy(other);
}

/* A value from a Constant node counts as constant, for BN statistics and Clip bounds. */
static void to_constant_node(q8_graph *g, const char *tensor) {
  const int32_t t = q8_graph_tensor_index(g, tensor);
  q8_tensor *value = malloc(sizeof *value);
  *value = g->tensors[t]; /* the data moves into the attribute, the name stays with the graph */
  value->name = q8_str_dup("");
  value->kind = Q8_TENSOR_CONSTANT;
  g->tensors[t] = (q8_tensor){.name = g->tensors[t].name, .kind = Q8_TENSOR_VALUE, .type = Q8_ELEM_FLOAT,
                              .rank = -1, .producer = -1};
  /* Constant nodes go first so the order stays topological. */
  g->nodes = realloc(g->nodes, (g->n_nodes + 1) * sizeof *g->nodes);
  memmove(&g->nodes[1], &g->nodes[0], g->n_nodes++ * sizeof *g->nodes);
  g->nodes[0] = (q8_node){.op_type = q8_str_dup("Constant"), .name = q8_str_dup(tensor), .domain = q8_str_dup(""),
                          .n_outputs = 1, .outputs = malloc(sizeof(int32_t)), .n_attrs = 1,
                          .attrs = calloc(1, sizeof(q8_attr))};
  g->nodes[0].outputs[0] = t;
  g->nodes[0].attrs[0] = (q8_attr){.name = q8_str_dup("value"), .type = Q8_ATTR_TENSOR, .tensor = value};
  for (size_t n = 0; n < g->n_nodes; ++n) {
    for (size_t k = 0; k < g->nodes[n].n_outputs; ++k) {
      if (g->nodes[n].outputs[k] >= 0) g->tensors[g->nodes[n].outputs[k]].producer = (int32_t)n;
    }
  }
}

static q8_graph *conv_bn_constant_nodes(q8t_rng *r) {
  q8_graph *g = conv_bn(r, true, 1);
  to_constant_node(g, "bn_var");
  to_constant_node(g, "w");
  return g;
}

Test(fold_batchnorm, constant_node_values_count_as_constants) {
  expect_fold_keeps_output(conv_bn_constant_nodes, 4, conv_x_dims, CN * CM * CH * CW);
  q8_graph *g = compute_act("MatMul", "Clip", "h,lo,hi", 13);
  to_constant_node(g, "hi");
  const size_t nodes = g->n_nodes;
  q8_fusion_table t;
  cr_assert_eq(q8_graph_fuse_activations(g, &t), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(t.count, 1, "%s", t.notes.count ? t.notes.items[0] : "");
  cr_expect_eq(g->n_nodes, nodes - 1);
  cr_expect(t.count && t.fusions[0].hi == 0.5f);
  expect_valid(g);
  q8_fusion_table_free(&t);
  q8_graph_destroy(g);
}

Test(fold_batchnorm, missing_inputs_or_outputs_are_reasons_not_crashes) {
  q8t_rng r = q8t_rng_new(1);
  q8_graph *g = conv_bias_bn(&r);
  g->nodes[1].inputs[3] = -1; /* mean omitted */
  expect_not_folded(g, (const char *[]){"lacks one of its 5 inputs"}, 1);
  q8_graph *h = conv_bias_bn(&r);
  h->nodes[1].n_inputs = 2;
  expect_not_folded(h, (const char *[]){"lacks one of its 5 inputs"}, 1);
  q8_graph *k = conv_bias_bn(&r);
  k->nodes[0].n_inputs = 1; /* a Conv without weights */
  expect_not_folded(k, (const char *[]){"'conv' has no weights input"}, 1);
  q8_graph *o = conv_bias_bn(&r);
  o->tensors[o->nodes[1].outputs[0]].producer = -1;
  o->nodes[1].outputs[0] = -1;
  expect_not_folded(o, (const char *[]){"its output is omitted"}, 1);
}

/* ---- robustness: every model of libonnx-testdata ------------------------------------------ */

typedef struct sweep {
  size_t models, folded, fused;
} sweep;

/* Prepares one model and decides its policy: the graph stays valid, every
 * node gets a reason, unfusing gives back the node count of the folded graph. */
static void prepare_one(const char *path, sweep *s) {
  q8_graph *g = NULL;
  if (q8_graph_load_file(path, &g) != Q8_OK) return; /* the loader's business, tested elsewhere */
  ++s->models;
  q8_fold_report report;
  cr_assert_eq(q8_graph_fold_batchnorm(g, &report), Q8_OK, "%s: %s", path, q8_error_detail());
  s->folded += report.folded;
  expect_valid(g);
  const size_t nodes = g->n_nodes;
  q8_fusion_table t;
  cr_assert_eq(q8_graph_fuse_activations(g, &t), Q8_OK, "%s: %s", path, q8_error_detail());
  s->fused += t.count;
  expect_valid(g);
  q8_policy p;
  q8_policy_init(&p);
  p.keep_first_float = p.keep_last_float = true;
  q8_node_decision *d = calloc(g->n_nodes + 1, sizeof *d);
  cr_assert_eq(q8_policy_decide(&p, g, d), Q8_OK, "%s: %s", path, q8_error_detail());
  for (size_t i = 0; i < g->n_nodes; ++i) cr_expect(d[i].reason[0], "%s: node %zu has no reason", path, i);
  free(d);
  cr_assert_eq(q8_graph_unfuse_activations(g, &t), Q8_OK, "%s: %s", path, q8_error_detail());
  cr_expect_eq(g->n_nodes, nodes, "%s", path);
  expect_valid(g);
  q8_fusion_table_free(&t);
  q8_fold_report_free(&report);
  q8_graph_destroy(g);
}

Test(prepare_robustness, every_onnx_test_model) {
  static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
  sweep s = {0};
  for (size_t k = 0; k < sizeof suites / sizeof *suites; ++k) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", q8t_onnx_testdata_dir(), suites[k]);
    DIR *d = opendir(dir);
    if (!d) continue;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      char path[2048];
      snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
      if (e->d_name[0] != '.' && q8t_is_file(path)) prepare_one(path, &s);
    }
    closedir(d);
  }
  cr_log_info("%zu models prepared: %zu BatchNormalization folded, %zu activations fused", s.models, s.folded,
              s.fused);
  cr_expect_geq(s.models, 500, "only %zu test models loaded from %s", s.models, q8t_onnx_testdata_dir());
}
