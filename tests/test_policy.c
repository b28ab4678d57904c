/* Quantization policy: each rule, globs, the fixed Sigmoid/Tanh outputs, bad
 * option lists and their messages, warnings for options that match nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/policy.h"
#include "quant/prepare.h"
#include "tests/support/q8test.h"

/* The policy reads only op types and names: graphs of bare nodes suffice. */
typedef struct bare {
  q8_node nodes[16];
  q8_graph graph;
} bare;

/* ops and names: n entries each. */
static void bare_init(bare *b, size_t n, char **ops, char **names) {
  *b = (bare){0};
  for (size_t i = 0; i < n; ++i) b->nodes[i] = (q8_node){.op_type = ops[i], .name = names[i], .domain = ""};
  b->graph = (q8_graph){.name = "bare", .producer_name = "", .opset = 13, .nodes = b->nodes, .n_nodes = n};
}

static q8_graph *load_model(void) {
  q8_graph *graph = NULL;
  cr_assert_eq(q8_graph_load_file(q8t_source_path("models/fashion_mnist_cnn.onnx"), &graph), Q8_OK, "%s",
               q8_error_detail());
  return graph;
}

/* The model as the quantizer sees it: BN folded, Relus fused. */
static q8_graph *prepared_model(void) {
  q8_graph *g = load_model();
  q8_fusion_table fusions;
  cr_assert_eq(q8_graph_fold_batchnorm(g, NULL), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(q8_graph_fuse_activations(g, &fusions), Q8_OK, "%s", q8_error_detail());
  q8_fusion_table_free(&fusions);
  return g;
}

static int64_t node_index(const q8_graph *g, const char *name) {
  for (size_t i = 0; i < g->n_nodes; ++i) {
    if (strcmp(g->nodes[i].name, name) == 0) return (int64_t)i;
  }
  cr_assert_fail("no node %s", name);
  return -1;
}

/* decisions for graph under policy (caller frees). */
static q8_node_decision *decide(const q8_policy *p, const q8_graph *g) {
  q8_node_decision *d = calloc(g->n_nodes + 1, sizeof *d);
  cr_assert_eq(q8_policy_decide(p, g, d), Q8_OK, "%s", q8_error_detail());
  return d;
}

static void expect_decision(const q8_graph *g, const q8_node_decision *d, const char *node, q8_precision precision,
                            const char *reason) {
  const int64_t i = node_index(g, node);
  cr_expect_eq(d[i].precision, precision, "%s: %s", node, d[i].reason);
  cr_expect_str_eq(d[i].reason, reason, "%s", node);
}

Test(policy, defaults_on_the_prepared_model_quantize_everything) {
  q8_graph *g = prepared_model();
  q8_policy p;
  q8_policy_init(&p);
  q8_node_decision *d = decide(&p, g);
  for (size_t i = 0; i < g->n_nodes; ++i) {
    cr_expect_eq(d[i].precision, Q8_PRECISION_INT8, "%s (%s): %s", g->nodes[i].name, g->nodes[i].op_type, d[i].reason);
    cr_log_info("%-28s %-8s %s", g->nodes[i].name, g->nodes[i].op_type, d[i].reason);
  }
  const int64_t sig = node_index(g, "/sigmoid/Sigmoid"), tanh_ = node_index(g, "/tanh/Tanh");
  cr_expect(d[sig].fixed_output && d[sig].fixed_dtype == Q8_INT8 && d[sig].fixed_scale == 1.0f / 256 &&
            d[sig].fixed_zero_point == -128);
  cr_expect(d[tanh_].fixed_output && d[tanh_].fixed_scale == 1.0f / 128 && d[tanh_].fixed_zero_point == 0);
  cr_expect_str_eq(d[sig].reason, "int8: fixed output range (Sigmoid, scale 1/256, zero point -128)");
  cr_expect_not(d[node_index(g, "/conv1/Conv")].fixed_output);
  free(d);

  p.activation_dtype = Q8_UINT8;
  d = decide(&p, g);
  cr_expect(d[sig].fixed_dtype == Q8_UINT8 && d[sig].fixed_zero_point == 0);
  cr_expect(d[tanh_].fixed_dtype == Q8_UINT8 && d[tanh_].fixed_zero_point == 128 && d[tanh_].fixed_scale == 1.0f / 128);
  free(d);
  p.activation_dtype = Q8_INT32;
  q8_node_decision one[32];
  cr_expect_eq(q8_policy_decide(&p, g, one), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "activation dtype"), "%s", q8_error_detail());
  q8_policy_free(&p);
  q8_graph_destroy(g);
}

Test(policy, unprepared_model_keeps_batchnorm_float) {
  q8_graph *g = load_model();
  q8_policy p;
  q8_policy_init(&p);
  q8_node_decision *d = decide(&p, g);
  expect_decision(g, d, "/bn2/BatchNormalization", Q8_PRECISION_FLOAT,
                  "float: the int8 path has no BatchNormalization");
  expect_decision(g, d, "/relu2/Relu", Q8_PRECISION_INT8, "int8");
  free(d);
  q8_policy_free(&p);
  q8_graph_destroy(g);
}

Test(policy, keep_float_ops) {
  q8_graph *g = prepared_model();
  q8_policy p;
  q8_policy_init(&p);
  cr_assert_eq(q8_policy_set_keep_float_ops(&p, " Sigmoid , Tanh"), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(p.n_keep_ops, 2);
  cr_expect_str_eq(p.keep_ops[0], "Sigmoid");
  q8_node_decision *d = decide(&p, g);
  expect_decision(g, d, "/sigmoid/Sigmoid", Q8_PRECISION_FLOAT, "kept float: --keep-float-ops Sigmoid");
  expect_decision(g, d, "/tanh/Tanh", Q8_PRECISION_FLOAT, "kept float: --keep-float-ops Tanh");
  cr_expect_not(d[node_index(g, "/tanh/Tanh")].fixed_output);
  expect_decision(g, d, "/fc1/Gemm", Q8_PRECISION_INT8, "int8");
  free(d);
  /* Setting again replaces the list. */
  cr_assert_eq(q8_policy_set_keep_float_ops(&p, "Conv"), Q8_OK);
  d = decide(&p, g);
  expect_decision(g, d, "/conv2/Conv", Q8_PRECISION_FLOAT, "kept float: --keep-float-ops Conv");
  expect_decision(g, d, "/sigmoid/Sigmoid", Q8_PRECISION_INT8,
                  "int8: fixed output range (Sigmoid, scale 1/256, zero point -128)");
  free(d);
  q8_policy_free(&p);
  q8_graph_destroy(g);
}

Test(policy, keep_float_node_globs) {
  q8_graph *g = prepared_model();
  q8_policy p;
  q8_policy_init(&p);
  cr_assert_eq(q8_policy_set_keep_float_nodes(&p, "/conv1*,/fc[23]/*"), Q8_OK, "%s", q8_error_detail());
  q8_node_decision *d = decide(&p, g);
  expect_decision(g, d, "/conv1/Conv", Q8_PRECISION_FLOAT, "kept float: --keep-float-nodes '/conv1*'");
  expect_decision(g, d, "/fc2/Gemm", Q8_PRECISION_FLOAT, "kept float: --keep-float-nodes '/fc[23]/*'");
  expect_decision(g, d, "/fc3/Gemm", Q8_PRECISION_FLOAT, "kept float: --keep-float-nodes '/fc[23]/*'");
  expect_decision(g, d, "/fc1/Gemm", Q8_PRECISION_INT8, "int8");
  expect_decision(g, d, "/conv2/Conv", Q8_PRECISION_INT8, "int8");
  free(d);
  q8_messages w = {0};
  cr_assert_eq(q8_policy_warnings(&p, g, &w), Q8_OK);
  cr_expect_eq(w.count, 0, "%s", w.count ? w.items[0] : "");
  q8_messages_free(&w);
  q8_policy_free(&p);
  q8_graph_destroy(g);
}

Test(policy, keep_first_and_last_compute_layer) {
  q8_graph *g = prepared_model();
  q8_policy p;
  q8_policy_init(&p);
  p.keep_first_float = true;
  q8_node_decision *d = decide(&p, g);
  expect_decision(g, d, "/conv1/Conv", Q8_PRECISION_FLOAT, "kept float: first compute layer (--keep-first-float)");
  expect_decision(g, d, "/fc3/Gemm", Q8_PRECISION_INT8, "int8");
  free(d);
  p.keep_first_float = false;
  p.keep_last_float = true;
  d = decide(&p, g);
  expect_decision(g, d, "/conv1/Conv", Q8_PRECISION_INT8, "int8");
  expect_decision(g, d, "/fc3/Gemm", Q8_PRECISION_FLOAT, "kept float: last compute layer (--keep-last-float)");
  free(d);
  q8_policy_free(&p);
  q8_graph_destroy(g);
}

Test(policy, softmax_and_ops_without_int8_stay_float) {
  bare b;
  bare_init(&b, 5, (char *[]){"MatMul", "Softmax", "LayerNormalization", "MaxPool", "Erf"},
            (char *[]){"mm", "sm", "ln", "pool", "erf"});
  q8_policy p;
  q8_policy_init(&p);
  q8_node_decision *d = decide(&p, &b.graph);
  expect_decision(&b.graph, d, "sm", Q8_PRECISION_FLOAT, "kept float: Softmax stays float by default");
  expect_decision(&b.graph, d, "ln", Q8_PRECISION_FLOAT, "float: the int8 path has no LayerNormalization");
  expect_decision(&b.graph, d, "erf", Q8_PRECISION_FLOAT, "float: the int8 path has no Erf");
  expect_decision(&b.graph, d, "pool", Q8_PRECISION_INT8, "int8");
  free(d);
  /* An explicit option names itself, not the default. */
  cr_assert_eq(q8_policy_set_keep_float_ops(&p, "Softmax"), Q8_OK);
  d = decide(&p, &b.graph);
  expect_decision(&b.graph, d, "sm", Q8_PRECISION_FLOAT, "kept float: --keep-float-ops Softmax");
  free(d);
  q8_policy_free(&p);
}

Test(policy, int8_list_and_known_onnx_ops) {
  static const char *const int8[] = {"Conv", "Gemm", "MatMul", "Add", "Concat", "Relu", "Clip", "MaxPool",
                                     "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                                     "Identity", "Dropout", "Sigmoid", "Tanh", "LeakyRelu"};
  for (size_t i = 0; i < sizeof int8 / sizeof *int8; ++i) {
    cr_expect(q8_policy_int8_capable(int8[i]), "%s", int8[i]);
    cr_expect(q8_policy_onnx_op_known(int8[i]), "%s", int8[i]);
  }
  cr_expect_not(q8_policy_int8_capable("Softmax"));
  cr_expect_not(q8_policy_int8_capable("Mul"));
  cr_expect_not(q8_policy_int8_capable("AveragePool"), "no int8 AveragePool yet: it stays float");
  cr_expect_not(q8_policy_int8_capable(NULL));
  cr_expect(q8_policy_onnx_op_known("LayerNormalization"));
  cr_expect(q8_policy_onnx_op_known("Resize"));
  cr_expect_not(q8_policy_onnx_op_known("sigmoid"));
  cr_expect_not(q8_policy_onnx_op_known("Foo"));
}

/* Expects Q8_ERR_ARG, a message holding fragment, and the policy unchanged. */
static void expect_bad(bool ops, const char *list, const char *fragment) {
  q8_policy p;
  q8_policy_init(&p);
  cr_assert_eq(q8_policy_set_keep_float_ops(&p, "Tanh"), Q8_OK);
  cr_assert_eq(q8_policy_set_keep_float_nodes(&p, "fc*"), Q8_OK);
  const q8_status st = ops ? q8_policy_set_keep_float_ops(&p, list) : q8_policy_set_keep_float_nodes(&p, list);
  cr_expect_eq(st, Q8_ERR_ARG, "'%s' accepted", list);
  cr_expect(strstr(q8_error_detail(), fragment), "'%s': '%s' not in: %s", list, fragment, q8_error_detail());
  cr_expect(p.n_keep_ops == 1 && strcmp(p.keep_ops[0], "Tanh") == 0);
  cr_expect(p.n_keep_nodes == 1 && strcmp(p.keep_nodes[0], "fc*") == 0);
  q8_policy_free(&p);
}

Test(policy, bad_lists_are_errors_naming_the_item) {
  expect_bad(true, "", "--keep-float-ops: empty item at position 1");
  expect_bad(true, "Sigmoid,,Tanh", "empty item at position 2 in 'Sigmoid,,Tanh'");
  expect_bad(true, "Sigmoid,", "empty item at position 2");
  expect_bad(true, " , ", "empty item at position 1");
  expect_bad(true, "Sigmoid,sigmoid", "'sigmoid' is not an ONNX operator (did you mean 'Sigmoid'?)");
  expect_bad(true, "softmax", "(did you mean 'Softmax'?)");
  expect_bad(true, "Foo", "--keep-float-ops: 'Foo' is not an ONNX operator");
  expect_bad(true, "Sig moid", "'Sig moid' is not an operator type");
  expect_bad(true, "Conv*", "'Conv*' is not an operator type");
  expect_bad(false, "conv1*,", "--keep-float-nodes: empty item at position 2");
  expect_bad(false, "conv[12", "--keep-float-nodes: the glob 'conv[12' has an unclosed '['");
  expect_bad(false, "a[", "unclosed '['");
  expect_bad(false, "x,[!]", "unclosed '['");
  cr_expect_eq(q8_policy_set_keep_float_ops(NULL, "Tanh"), Q8_ERR_NULL);
  q8_policy p;
  q8_policy_init(&p);
  cr_expect_eq(q8_policy_set_keep_float_nodes(&p, NULL), Q8_ERR_NULL);
  /* A ']' first in a set is literal, an escaped '[' is no set. */
  cr_expect_eq(q8_policy_set_keep_float_nodes(&p, "[]x],\\[a,[!]]"), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(p.n_keep_nodes, 3);
  q8_policy_free(&p);
}

Test(policy, options_matching_nothing_are_warnings) {
  q8_graph *g = prepared_model();
  q8_policy p;
  q8_policy_init(&p);
  cr_assert_eq(q8_policy_set_keep_float_ops(&p, "Softmax,Tanh"), Q8_OK);
  cr_assert_eq(q8_policy_set_keep_float_nodes(&p, "/conv9*,/fc1/*"), Q8_OK);
  q8_messages w = {0};
  cr_assert_eq(q8_policy_warnings(&p, g, &w), Q8_OK);
  cr_assert_eq(w.count, 2);
  cr_expect_str_eq(w.items[0], "--keep-float-ops Softmax: the model has no Softmax node");
  cr_expect_str_eq(w.items[1], "--keep-float-nodes '/conv9*' matches no node name");
  q8_messages_free(&w);
  q8_policy_free(&p);
  q8_graph_destroy(g);
}

Test(policy, a_model_without_compute_layers) {
  bare b;
  bare_init(&b, 3, (char *[]){"Relu", "Sigmoid", "Softmax"}, (char *[]){"r", "s", "sm"});
  q8_policy p;
  q8_policy_init(&p);
  p.keep_first_float = p.keep_last_float = true;
  q8_node_decision *d = decide(&p, &b.graph);
  expect_decision(&b.graph, d, "r", Q8_PRECISION_INT8, "int8");
  cr_expect(d[1].precision == Q8_PRECISION_INT8 && d[1].fixed_output);
  expect_decision(&b.graph, d, "sm", Q8_PRECISION_FLOAT, "kept float: Softmax stays float by default");
  free(d);
  q8_messages w = {0};
  cr_assert_eq(q8_policy_warnings(&p, &b.graph, &w), Q8_OK);
  cr_assert_eq(w.count, 1);
  cr_expect_str_eq(w.items[0], "--keep-first-float: the model has no Conv, Gemm or MatMul");
  q8_messages_free(&w);
  /* An empty graph: nothing to decide, decisions may be NULL. */
  bare_init(&b, 0, NULL, NULL);
  cr_expect_eq(q8_policy_decide(&p, &b.graph, NULL), Q8_OK);
  cr_expect_eq(q8_policy_decide(NULL, &b.graph, NULL), Q8_ERR_NULL);
  q8_policy_free(&p);
}
