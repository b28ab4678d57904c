/* Float reference executor: ONNX's node tests for every operator in scope
 * (float data, and the integer data those operators take: uint8 Add, int8
 * Clip, uint8 MaxPool, ...; quantized operators are test_onnx_quant's),
 * our Fashion-MNIST CNN against its reference logits and accuracy, and
 * errors that name the node, the operator and the shapes. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "quant/dataset.h"
#include "quant/exec_ops.h"
#include "quant/float_exec.h"
#include "quant/graph.h"
#include "tests/support/onnx_node.h"
#include "tests/support/q8test.h"

/* Float outputs match when |got - want| <= REL_TOL * |want| + ABS_TOL: 1e-4
 * relative as the issue asks, plus 1e-5 absolute so that values that cancel
 * to near 0 (a sum of terms of size ~1 whose float32 rounding differs by
 * summation order) do not fail on a relative error of a tiny number. */
#define REL_TOL 1e-4
#define ABS_TOL 1e-5

/* Operators in scope, as the node-test folder prefixes that exercise them. */
static const char *const prefixes[] = {
    "test_conv", "test_gemm", "test_matmul", "test_add", "test_mul", "test_sub", "test_div",
    "test_relu", "test_clip", "test_leakyrelu", "test_sigmoid", "test_tanh", "test_softmax",
    "test_batchnorm", "test_maxpool", "test_averagepool", "test_globalaveragepool", "test_flatten",
    "test_reshape", "test_transpose", "test_concat", "test_identity", "test_dropout", "test_erf",
    "test_exp", "test_sqrt", "test_reducemean", "test_reduce_mean", "test_layer_normalization",
};

typedef struct tally {
  int pass, skip, fail, delegated;
  char *skipped, *failed; /* "name (why)\n" lines */
  size_t skipped_len, failed_len;
} tally;

static void note(char **list, size_t *len, const char *test, const char *why) {
  const size_t add = strlen(test) + strlen(why) + 5;
  *list = realloc(*list, *len + add + 1);
  *len += (size_t)snprintf(*list + *len, add + 1, "  %s: %s\n", test, why);
}

static bool float_close(float got, float want) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs((double)got - (double)want) <= REL_TOL * fabs((double)want) + ABS_TOL;
}

/* Values of one output (type and shape already equal): integers exactly,
 * floats within the tolerance. */
static bool output_matches(const q8_float_tensor *got, const q8_tensor *want, char *why, size_t size) {
  const size_t es = q8_elem_size(want->type), n = want->data_bytes / (es ? es : 1);
  if (want->type != Q8_ELEM_FLOAT) {
    if (n && memcmp(got->data, want->data, want->data_bytes) != 0) {
      snprintf(why, size, "output '%s' differs", got->name);
      return false;
    }
    return true;
  }
  const float *g = got->data, *w = want->data;
  for (size_t i = 0; i < n; ++i) {
    if (!float_close(g[i], w[i])) {
      snprintf(why, size, "output '%s'[%zu] = %.9g, expected %.9g", got->name, i, (double)g[i], (double)w[i]);
      return false;
    }
  }
  return true;
}

Test(float_exec, onnx_node_tests) {
  size_t n = 0;
  const char *error = "";
  char **names = q8t_node_tests(prefixes, sizeof prefixes / sizeof prefixes[0], &n, &error);
  cr_assert_not_null(names, "%s", error);
  tally t = {0};
  /* Float data, int64 shapes and indices, and the integer tensors the
   * float-path operators take (uint8 Add, int8 Clip, uint8 MaxPool, ...). */
  const unsigned input_types = Q8_EXEC_TYPE(Q8_ELEM_FLOAT) | Q8_EXEC_TYPE(Q8_ELEM_INT64) |
                               Q8_EXEC_TYPE(Q8_ELEM_INT32) | Q8_EXEC_TYPE(Q8_ELEM_INT8) | Q8_EXEC_TYPE(Q8_ELEM_UINT8);
  for (size_t i = 0; i < n; ++i) {
    char why[4096] = "";
    /* test_conv and test_matmul also match ConvInteger and MatMulInteger:
     * test_onnx_quant runs those on every ISA. */
    if (q8t_has_prefix(names[i], q8t_quant_op_prefixes, q8t_n_quant_op_prefixes)) {
      ++t.delegated;
      continue;
    }
    const int r = q8t_node_test_run(names[i], input_types, output_matches, why, sizeof why);
    if (r > 0) ++t.pass;
    else if (r == 0) ++t.skip, note(&t.skipped, &t.skipped_len, names[i], why);
    else ++t.fail, note(&t.failed, &t.failed_len, names[i], why);
  }
  q8t_names_free(names, n);
  cr_log_info("float node tests: %d passed, %d skipped, %d failed (of %zu; %d quantized-operator tests "
              "delegated to test_onnx_quant)",
              t.pass, t.skip, t.fail, n - (size_t)t.delegated, t.delegated);
  if (t.skip) cr_log_info("skipped (operators or modes out of scope):\n%s", t.skipped);
  if (t.fail) cr_log_info("failed:\n%s", t.failed);
  cr_expect_eq(t.fail, 0, "%d node tests failed:\n%s", t.fail, t.failed ? t.failed : "");
  cr_expect_geq(t.pass, 150, "only %d node tests passed", t.pass);
  free(t.skipped);
  free(t.failed);
}

/* ---- our Fashion-MNIST model -------------------------------------------------------- */

static q8_graph *load_model(void) {
  q8_graph *graph = q8t_load_fashion_model();
  cr_assert_not_null(graph, "%s", q8_error_detail());
  return graph;
}

static q8_status run_batch(q8_float_session *s, const q8_dataset *ds, size_t first, size_t n, float *input,
                           q8_float_tensor *logits) {
  cr_assert_eq(q8_dataset_batch(ds, first, n, input), Q8_OK, "%s", q8_error_detail());
  const q8_float_tensor in = {.name = "input", .type = Q8_ELEM_FLOAT, .rank = 4,
                              .dims = {(int64_t)n, 1, (int64_t)ds->rows, (int64_t)ds->cols}, .data = input};
  return q8_float_session_run(s, &in, 1, logits, 1);
}

Test(float_exec, fashion_mnist_reference_logits) {
  /* models/README.md, from the ONNX graph in numpy, printed to 4 decimals
   * (5 significant digits): half a unit of the last printed digit is added. */
  static const float want[3][10] = {
      {-2.516f, -2.5461f, -3.5475f, -3.1142f, -2.752f, -1.1525f, -1.9161f, 0.7607f, -4.3742f, 6.9154f},
      {0.3673f, -6.3285f, 6.3642f, -1.456f, 0.7809f, -6.5716f, 1.5475f, -2.4428f, -2.3511f, -2.7545f},
      {-0.6948f, 7.704f, -6.0497f, -0.0339f, -1.4645f, -0.0963f, -1.9683f, -4.4568f, -4.691f, -1.3826f},
  };
  q8_graph *graph = load_model();
  q8_dataset ds;
  cr_assert_eq(q8_dataset_load(NULL, "t10k", &ds), Q8_OK, "%s", q8_error_detail());
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(graph, &s), Q8_OK, "%s", q8_error_detail());
  float *input = malloc(3 * ds.rows * ds.cols * sizeof *input);
  q8_float_tensor logits;
  cr_assert_eq(run_batch(s, &ds, 0, 3, input, &logits), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(logits.rank, 2);
  cr_assert_eq(logits.dims[0], 3);
  cr_assert_eq(logits.dims[1], 10);
  const float *y = logits.data;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 10; ++j) {
      cr_expect(fabsf(y[i * 10 + j] - want[i][j]) <= 1e-4f + 5e-5f, "image %d logit %d: %.6f, reference %.4f", i, j,
                (double)y[i * 10 + j], (double)want[i][j]);
    }
  }
  /* Every activation stays readable after the run (calibration reads them). */
  for (size_t i = 0; i < graph->n_nodes; ++i) {
    q8_float_tensor t;
    cr_expect_eq(q8_float_session_tensor_at(s, graph->nodes[i].outputs[0], &t), Q8_OK, "%s", q8_error_detail());
    cr_expect_eq(t.dims[0], 3, "%s keeps the batch dimension", t.name);
  }
  /* And holds what its node computed: each Relu output is max(0, its input). */
  for (size_t i = 0; i < graph->n_nodes; ++i) {
    const q8_node *node = &graph->nodes[i];
    if (strcmp(node->op_type, "Relu") != 0) continue;
    q8_float_tensor in, out;
    cr_assert_eq(q8_float_session_tensor_at(s, node->inputs[0], &in), Q8_OK);
    cr_assert_eq(q8_float_session_tensor_at(s, node->outputs[0], &out), Q8_OK);
    int64_t n = 1;
    for (int d = 0; d < in.rank; ++d) n *= in.dims[d];
    for (int64_t k = 0; k < n; ++k) {
      const float v = ((const float *)in.data)[k];
      cr_assert_eq(((const float *)out.data)[k], v > 0 ? v : 0.0f, "%s[%lld]", out.name, (long long)k);
    }
  }
  cr_expect(q8_float_op_supported("Conv") && !q8_float_op_supported("ConvTranspose"));
  q8_float_tensor by_name;
  cr_expect_eq(q8_float_session_tensor(s, "logits", &by_name), Q8_OK);
  cr_expect_eq(by_name.data, logits.data);
  free(input);
  q8_float_session_destroy(s);
  q8_dataset_free(&ds);
  q8_graph_destroy(graph);
}

Test(float_exec, fashion_mnist_top1) {
  enum { IMAGES = 1000, BATCH = 100 };
  q8_graph *graph = load_model();
  q8_dataset ds;
  cr_assert_eq(q8_dataset_load(NULL, "t10k", &ds), Q8_OK, "%s", q8_error_detail());
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(graph, &s), Q8_OK, "%s", q8_error_detail());
  float *input = malloc(BATCH * ds.rows * ds.cols * sizeof *input);
  int correct = 0;
  for (size_t first = 0; first < IMAGES; first += BATCH) {
    q8_float_tensor logits;
    cr_assert_eq(run_batch(s, &ds, first, BATCH, input, &logits), Q8_OK, "%s", q8_error_detail());
    const float *y = logits.data;
    for (size_t i = 0; i < BATCH; ++i) {
      int best = 0;
      for (int j = 1; j < 10; ++j) best = y[i * 10 + j] > y[i * 10 + best] ? j : best;
      correct += best == ds.labels[first + i];
    }
  }
  cr_log_info("float top-1 on the first %d t10k images: %.2f%%", IMAGES, 100.0 * correct / IMAGES);
  cr_expect_geq(correct, IMAGES * 88 / 100, "top-1 %d/%d below 88%%", correct, IMAGES);
  free(input);
  q8_float_session_destroy(s);
  q8_dataset_free(&ds);
  q8_graph_destroy(graph);
}

/* ---- errors: graphs built in memory ---------------------------------------------------- */

static q8_tensor input_tensor(char *name, int rank, const int64_t *dims) {
  q8_tensor t = {.name = name, .kind = Q8_TENSOR_INPUT, .type = Q8_ELEM_FLOAT, .rank = rank, .producer = -1};
  for (int d = 0; d < rank; ++d) t.dims[d] = dims[d];
  return t;
}

/* A graph of one node `op` whose inputs are tensors 0..n_in-1 (set by the
 * caller in tensors[], graph inputs all) and whose output is tensor n_in.
 * Holds pointers into itself: not to be copied. */
typedef struct one_node {
  q8_tensor tensors[4];
  int32_t ins[3], graph_ins[3], out;
  q8_node node;
  q8_graph g;
} one_node;

static void one_node_init(one_node *m, const char *op, const char *name, int n_in) {
  m->tensors[n_in] = input_tensor("y", -1, NULL);
  m->tensors[n_in].kind = Q8_TENSOR_VALUE;
  m->tensors[n_in].producer = 0;
  for (int k = 0; k < n_in; ++k) m->ins[k] = m->graph_ins[k] = k;
  m->out = n_in;
  m->node = (q8_node){.op_type = (char *)op, .name = (char *)name, .domain = "", .n_inputs = (size_t)n_in,
                      .inputs = m->ins, .n_outputs = 1, .outputs = &m->out};
  m->g = (q8_graph){.name = "g", .producer_name = "", .opset = 13, .n_tensors = (size_t)n_in + 1,
                    .tensors = m->tensors, .n_nodes = 1, .nodes = &m->node, .n_inputs = (size_t)n_in,
                    .inputs = m->graph_ins, .n_outputs = 1, .outputs = &m->out};
}

Test(float_exec, unsupported_operator_names_node_and_op) {
  static const int64_t dims[2] = {2, 3};
  q8_tensor tensors[2] = {input_tensor("x", 2, dims), input_tensor("y", 2, dims)};
  tensors[1].kind = Q8_TENSOR_VALUE;
  tensors[1].producer = 0;
  int32_t in = 0, out = 1;
  q8_node node = {.op_type = "Hardmax", .name = "odd_one", .domain = "", .n_inputs = 1, .inputs = &in,
                  .n_outputs = 1, .outputs = &out};
  q8_graph g = {.name = "g", .producer_name = "", .opset = 13, .n_tensors = 2, .tensors = tensors,
                .n_nodes = 1, .nodes = &node, .n_inputs = 1, .inputs = &in, .n_outputs = 1, .outputs = &out};
  q8_float_session *s = NULL;
  cr_assert_eq(q8_float_session_create(&g, &s), Q8_ERR_UNSUPPORTED);
  cr_assert_null(s);
  const char *msg = q8_error_detail();
  cr_expect(strstr(msg, "odd_one") && strstr(msg, "Hardmax") && strstr(msg, "not supported"), "%s", msg);
}

Test(float_exec, shape_mismatch_names_both_shapes_and_node) {
  static const int64_t da[2] = {2, 3}, db[1] = {4};
  one_node m = {.tensors = {input_tensor("a", 2, da), input_tensor("b", 1, db)}};
  one_node_init(&m, "Add", "add_bad", 2);
  m.tensors[2].name = "sum";
  q8_float_session *s = NULL;
  cr_assert_eq(q8_float_session_create(&m.g, &s), Q8_OK, "%s", q8_error_detail());
  const float a[6] = {0}, b[4] = {0};
  const q8_float_tensor inputs[2] = {
      {.name = "a", .type = Q8_ELEM_FLOAT, .rank = 2, .dims = {2, 3}, .data = a},
      {.name = "b", .type = Q8_ELEM_FLOAT, .rank = 1, .dims = {4}, .data = b},
  };
  q8_float_tensor y;
  cr_expect_eq(q8_float_session_run(s, inputs, 2, &y, 1), Q8_ERR_ARG);
  const char *msg = q8_error_detail();
  cr_expect(strstr(msg, "add_bad") && strstr(msg, "Add") && strstr(msg, "[2,3]") && strstr(msg, "[4]"), "%s", msg);
  /* The tensor the failed node would have produced holds nothing. */
  cr_expect_eq(q8_float_session_tensor(s, "sum", &y), Q8_ERR_ARG);
  q8_float_session_destroy(s);
}

/* ---- single-node graphs against definitions written out here ------------------------ */

/* One node, its inputs (graph inputs, or initializers when given data) and one output. */
typedef struct mini {
  q8_tensor tensors[8];
  q8_attr attrs[8];
  int32_t node_inputs[8], graph_inputs[8], output;
  q8_node node;
  q8_graph graph;
} mini;

static void mini_init(mini *m, char *op_type, int64_t opset) {
  *m = (mini){0};
  m->node = (q8_node){.op_type = op_type, .name = "under_test", .domain = "", .inputs = m->node_inputs,
                      .outputs = &m->output, .attrs = m->attrs};
  m->graph = (q8_graph){.name = "mini", .producer_name = "", .opset = opset, .tensors = m->tensors,
                        .nodes = &m->node, .n_nodes = 1, .inputs = m->graph_inputs, .outputs = &m->output};
}

static void mini_input(mini *m, char *name, int rank, const int64_t *dims, void *initializer) {
  const int32_t i = (int32_t)m->graph.n_tensors++;
  m->tensors[i] = input_tensor(name, rank, dims);
  if (initializer) {
    m->tensors[i].kind = Q8_TENSOR_INITIALIZER;
    m->tensors[i].data = initializer;
    m->tensors[i].data_bytes = (size_t)q8_tensor_elements(&m->tensors[i]) * sizeof(float);
  } else {
    m->graph_inputs[m->graph.n_inputs++] = i;
  }
  m->node_inputs[m->node.n_inputs++] = i;
}

static void mini_attr(mini *m, char *name, q8_attr_type type, int64_t i, int64_t *ints, size_t count) {
  m->attrs[m->node.n_attrs++] = (q8_attr){.name = name, .type = type, .i = i, .ints = ints, .count = count};
}

/* Adds the output and runs with x as the graph's only input. */
static q8_float_session *mini_run(mini *m, const int64_t *dims, int rank, const float *x, q8_float_tensor *y) {
  m->output = (int32_t)m->graph.n_tensors++;
  m->tensors[m->output] = input_tensor("y", -1, NULL);
  m->tensors[m->output].kind = Q8_TENSOR_VALUE;
  m->tensors[m->output].producer = 0;
  m->node.n_outputs = m->graph.n_outputs = 1;
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m->graph, &s), Q8_OK, "%s", q8_error_detail());
  q8_float_tensor in = {.name = m->tensors[m->graph_inputs[0]].name, .type = Q8_ELEM_FLOAT, .rank = rank, .data = x};
  for (int d = 0; d < rank; ++d) in.dims[d] = dims[d];
  cr_assert_eq(q8_float_session_run(s, &in, 1, y, 1), Q8_OK, "%s", q8_error_detail());
  return s;
}

/* ONNX's node tests have no grouped or dilated convolution: check both
 * (with strides, asymmetric pads and a batch of 2) against the definition. */
Test(float_exec, conv_groups_dilation_strides_pads) {
  enum { N = 2, C = 4, H = 7, W = 6, M = 6, G = 2, KH = 3, KW = 2 };
  int64_t strides[2] = {2, 1}, dilations[2] = {2, 2}, pads[4] = {1, 0, 2, 1};
  static float x[N * C * H * W], w[M * (C / G) * KH * KW], b[M];
  uint32_t state = 12345;
  for (size_t i = 0; i < sizeof x / sizeof x[0]; ++i) x[i] = (float)((state = state * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
  for (size_t i = 0; i < sizeof w / sizeof w[0]; ++i) w[i] = (float)((state = state * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
  for (int i = 0; i < M; ++i) b[i] = 0.1f * (float)i;
  mini m;
  mini_init(&m, "Conv", 13);
  const int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C / G, KH, KW}, bd[1] = {M};
  mini_input(&m, "x", 4, xd, NULL);
  mini_input(&m, "w", 4, wd, w);
  mini_input(&m, "b", 1, bd, b);
  mini_attr(&m, "group", Q8_ATTR_INT, G, NULL, 0);
  mini_attr(&m, "strides", Q8_ATTR_INTS, 0, strides, 2);
  mini_attr(&m, "dilations", Q8_ATTR_INTS, 0, dilations, 2);
  mini_attr(&m, "pads", Q8_ATTR_INTS, 0, pads, 4);
  q8_float_tensor y;
  q8_float_session *s = mini_run(&m, xd, 4, x, &y);
  const int64_t oh = (H + pads[0] + pads[2] - ((KH - 1) * dilations[0] + 1)) / strides[0] + 1;
  const int64_t ow = (W + pads[1] + pads[3] - ((KW - 1) * dilations[1] + 1)) / strides[1] + 1;
  cr_assert_eq(y.rank, 4);
  cr_assert(y.dims[0] == N && y.dims[1] == M && y.dims[2] == oh && y.dims[3] == ow, "shape [%lld,%lld,%lld,%lld]",
            (long long)y.dims[0], (long long)y.dims[1], (long long)y.dims[2], (long long)y.dims[3]);
  const float *got = y.data;
  for (int n = 0; n < N; ++n)
    for (int oc = 0; oc < M; ++oc)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double want = b[oc];
          const int g = oc / (M / G);
          for (int ic = 0; ic < C / G; ++ic)
            for (int kh = 0; kh < KH; ++kh)
              for (int kw = 0; kw < KW; ++kw) {
                const int64_t ih = i * strides[0] - pads[0] + kh * dilations[0];
                const int64_t iw = j * strides[1] - pads[1] + kw * dilations[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                want += (double)x[((n * C + g * (C / G) + ic) * H + ih) * W + iw] *
                        w[((oc * (C / G) + ic) * KH + kh) * KW + kw];
              }
          const float v = got[((n * M + oc) * oh + i) * ow + j];
          cr_expect(float_close(v, (float)want), "y[%d,%d,%lld,%lld] = %.7g, want %.7g", n, oc, (long long)i,
                    (long long)j, (double)v, want);
        }
  q8_float_session_destroy(s);
}

/* Softmax before opset 13 normalizes everything from axis on (default 1) as
 * one row; from 13 only the given axis (default -1). */
Test(float_exec, softmax_axis_semantics_per_opset) {
  static const int64_t dims[3] = {2, 2, 3};
  float x[12];
  for (int i = 0; i < 12; ++i) x[i] = (float)i;
  for (int opset = 12; opset <= 13; ++opset) {
    mini m;
    mini_init(&m, "Softmax", opset);
    mini_input(&m, "x", 3, dims, NULL);
    q8_float_tensor y;
    q8_float_session *s = mini_run(&m, dims, 3, x, &y);
    const int row = opset < 13 ? 6 : 3;
    double sum = 0;
    for (int k = 0; k < row; ++k) sum += exp((double)(k - (row - 1)));
    const float *p = y.data;
    for (int i = 0; i < 12; ++i) {
      const double want = exp((double)(i % row - (row - 1))) / sum;
      cr_expect(float_close(p[i], (float)want), "opset %d: y[%d] = %.7g, want %.7g", opset, i, (double)p[i], want);
    }
    q8_float_session_destroy(s);
  }
}

Test(float_exec, float64_tensor_is_refused_with_the_cast_advice) {
  static const int64_t dims[1] = {3};
  mini m;
  mini_init(&m, "Relu", 13);
  mini_input(&m, "wide", 1, dims, NULL);
  m.tensors[0].type = Q8_ELEM_FLOAT64;
  m.output = 1;
  m.tensors[1] = input_tensor("y", -1, NULL);
  m.tensors[1].kind = Q8_TENSOR_VALUE;
  m.graph.n_tensors = 2;
  m.node.n_outputs = m.graph.n_outputs = 1;
  q8_float_session *s = NULL;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_ERR_UNSUPPORTED);
  const char *msg = q8_error_detail();
  cr_expect(strstr(msg, "wide") && strstr(msg, "float64") && strstr(msg, "--cast-float64"), "%s", msg);
}

/* ---- integer data on float-path operators: graphs built in memory ------------------- */

/* Runs one node `op` on inputs a (shape [2,3]) and b (shape [3], broadcast
 * along the rows), both of `type`; `want` is the [2,3] output, or NULL when
 * the run must fail with an error message containing `error`. */
static void run_int_binary(const char *op, q8_elem_type type, q8_elem_type b_type, const void *a, const void *b,
                           const void *want, const char *error) {
  static const int64_t da[2] = {2, 3}, db[1] = {3};
  one_node m = {.tensors = {input_tensor("a", 2, da), input_tensor("b", 1, db)}};
  m.tensors[0].type = type;
  m.tensors[1].type = b_type;
  one_node_init(&m, op, "int_op", 2);
  q8_float_session *s = NULL;
  cr_assert_eq(q8_float_session_create(&m.g, &s), Q8_OK, "%s", q8_error_detail());
  const q8_float_tensor inputs[2] = {
      {.name = "a", .type = type, .rank = 2, .dims = {2, 3}, .data = a},
      {.name = "b", .type = b_type, .rank = 1, .dims = {3}, .data = b},
  };
  q8_float_tensor y;
  const q8_status st = q8_float_session_run(s, inputs, 2, &y, 1);
  if (want) {
    cr_assert_eq(st, Q8_OK, "%s %s: %s", op, q8_elem_type_name(type), q8_error_detail());
    cr_assert_eq(y.type, type);
    cr_assert(y.rank == 2 && y.dims[0] == 2 && y.dims[1] == 3);
    cr_expect_arr_eq(y.data, want, 6 * q8_elem_size(type), "%s %s", op, q8_elem_type_name(type));
  } else {
    cr_expect_eq(st, Q8_ERR_ARG, "%s %s must fail", op, q8_elem_type_name(type));
    cr_expect(strstr(q8_error_detail(), error), "%s", q8_error_detail());
  }
  q8_float_session_destroy(s);
}

Test(float_exec, integer_add_sub_mul_wrap_and_div_truncates_with_broadcasting) {
  const uint8_t ua[6] = {250, 255, 0, 128, 1, 7}, ub[3] = {10, 255, 3};
  run_int_binary("Add", Q8_ELEM_UINT8, Q8_ELEM_UINT8, ua, ub, (const uint8_t[6]){4, 254, 3, 138, 0, 10}, NULL);
  run_int_binary("Sub", Q8_ELEM_UINT8, Q8_ELEM_UINT8, ua, ub, (const uint8_t[6]){240, 0, 253, 118, 2, 4}, NULL);
  run_int_binary("Mul", Q8_ELEM_UINT8, Q8_ELEM_UINT8, ua, ub, (const uint8_t[6]){196, 1, 0, 0, 255, 21}, NULL);
  run_int_binary("Div", Q8_ELEM_UINT8, Q8_ELEM_UINT8, ua, ub, (const uint8_t[6]){25, 1, 0, 12, 0, 2}, NULL);

  const int8_t sa[6] = {-128, 127, -7, 7, -7, 100}, sb[3] = {-1, 1, 2};
  run_int_binary("Add", Q8_ELEM_INT8, Q8_ELEM_INT8, sa, sb, (const int8_t[6]){127, -128, -5, 6, -6, 102}, NULL);
  run_int_binary("Sub", Q8_ELEM_INT8, Q8_ELEM_INT8, sa, sb, (const int8_t[6]){-127, 126, -9, 8, -8, 98}, NULL);
  run_int_binary("Mul", Q8_ELEM_INT8, Q8_ELEM_INT8, sa, sb, (const int8_t[6]){-128, 127, -14, -7, -7, -56}, NULL);
  /* Toward zero (-7 / 2 is -3, not numpy's floor -4); -128 / -1 wraps to -128. */
  run_int_binary("Div", Q8_ELEM_INT8, Q8_ELEM_INT8, sa, sb, (const int8_t[6]){-128, 127, -3, -7, -7, 50}, NULL);

  const int32_t ia[6] = {INT32_MIN, 65536, -7, INT32_MAX, 3, 9}, ib[3] = {-1, 65536, -2};
  run_int_binary("Mul", Q8_ELEM_INT32, Q8_ELEM_INT32, ia, ib, (const int32_t[6]){INT32_MIN, 0, 14, -INT32_MAX, 196608, -18}, NULL);
  run_int_binary("Div", Q8_ELEM_INT32, Q8_ELEM_INT32, ia, ib, (const int32_t[6]){INT32_MIN, 1, 3, -INT32_MAX, 0, -4}, NULL);
  run_int_binary("Add", Q8_ELEM_INT32, Q8_ELEM_INT32, ia, ib, (const int32_t[6]){INT32_MAX, 131072, -9, INT32_MAX - 1, 65539, 7}, NULL);

  const uint8_t zero[3] = {1, 0, 1};
  run_int_binary("Div", Q8_ELEM_UINT8, Q8_ELEM_UINT8, ua, zero, NULL, "division by zero");
  /* Integer operands of different types are an edge of the wrong type. */
  run_int_binary("Add", Q8_ELEM_INT8, Q8_ELEM_UINT8, sa, ub, NULL, "takes int8");
}

/* Clip of int8 with the bounds given: min only, max only, both, min > max. */
static void run_int_clip(const int8_t *lo, const int8_t *hi, const int8_t *want) {
  static const int64_t dx[1] = {6};
  one_node m = {.tensors = {input_tensor("x", 1, dx), input_tensor("lo", 0, NULL), input_tensor("hi", 0, NULL)}};
  for (int k = 0; k < 3; ++k) m.tensors[k].type = Q8_ELEM_INT8;
  one_node_init(&m, "Clip", "clip_i8", 3);
  /* An omitted bound is the empty name (-1). */
  m.ins[1] = lo ? 1 : -1;
  m.ins[2] = hi ? 2 : -1;
  q8_float_session *s = NULL;
  cr_assert_eq(q8_float_session_create(&m.g, &s), Q8_OK, "%s", q8_error_detail());
  const int8_t x[6] = {-128, -5, 0, 5, 127, -1}, unused = 0;
  const q8_float_tensor inputs[3] = {
      {.name = "x", .type = Q8_ELEM_INT8, .rank = 1, .dims = {6}, .data = x},
      {.name = "lo", .type = Q8_ELEM_INT8, .rank = 0, .data = lo ? lo : &unused},
      {.name = "hi", .type = Q8_ELEM_INT8, .rank = 0, .data = hi ? hi : &unused},
  };
  q8_float_tensor y;
  cr_assert_eq(q8_float_session_run(s, inputs, 3, &y, 1), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(y.type, Q8_ELEM_INT8);
  cr_expect_arr_eq(y.data, want, 6);
  q8_float_session_destroy(s);
}

Test(float_exec, integer_clip_defaults_to_the_type_limits) {
  const int8_t m5 = -5, p5 = 5, p3 = 3;
  run_int_clip(NULL, NULL, (const int8_t[6]){-128, -5, 0, 5, 127, -1});
  run_int_clip(&m5, NULL, (const int8_t[6]){-5, -5, 0, 5, 127, -1});
  run_int_clip(NULL, &p5, (const int8_t[6]){-128, -5, 0, 5, 5, -1});
  run_int_clip(&m5, &p3, (const int8_t[6]){-5, -5, 0, 3, 3, -1});
  run_int_clip(&p5, &m5, (const int8_t[6]){-5, -5, -5, -5, -5, -5}); /* min > max: all max */
}
