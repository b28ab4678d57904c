/* Post-training quantization: the graph rewrite (quant/quantize.h), the q8
 * operators it emits (quant/qops_q8.c) and the whole pipeline on our
 * Fashion-MNIST model (quant/ptq.h). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/cpu.h"
#include "quant/float_exec.h"
#include "quant/ptq.h"
#include "support/q8test.h"

/* ---- tiny graphs built by hand ------------------------------------------------------ */

static q8_graph *graph_new(void) {
  q8_graph *g = calloc(1, sizeof *g);
  g->name = q8_str_dup("test");
  g->producer_name = q8_str_dup("test");
  g->opset = 13;
  g->tensors = calloc(32, sizeof *g->tensors);
  g->nodes = calloc(16, sizeof *g->nodes);
  g->inputs = calloc(8, sizeof(int32_t));
  g->outputs = calloc(8, sizeof(int32_t));
  return g;
}

/* A float tensor: an initializer when data is given, else a value (or a graph
 * input with as_input). */
static int32_t tensor(q8_graph *g, const char *name, int rank, const int64_t *dims, const float *data,
                      bool as_input) {
  q8_tensor *t = &g->tensors[g->n_tensors];
  *t = (q8_tensor){.name = q8_str_dup(name), .type = Q8_ELEM_FLOAT, .rank = rank, .producer = -1,
                   .kind = data ? Q8_TENSOR_INITIALIZER : as_input ? Q8_TENSOR_INPUT : Q8_TENSOR_VALUE};
  size_t count = 1;
  for (int d = 0; d < rank; ++d) count *= (size_t)(t->dims[d] = dims[d]);
  if (data) {
    t->data = malloc(count * sizeof(float));
    memcpy(t->data, data, count * sizeof(float));
    t->data_bytes = count * sizeof(float);
  }
  if (as_input) g->inputs[g->n_inputs++] = (int32_t)g->n_tensors;
  return (int32_t)g->n_tensors++;
}

static void node(q8_graph *g, const char *op, const char *name, const int32_t *in, size_t n_in, int32_t out) {
  q8_node *n = &g->nodes[g->n_nodes];
  *n = (q8_node){.op_type = q8_str_dup(op), .name = q8_str_dup(name), .domain = q8_str_dup(""),
                 .n_inputs = n_in, .inputs = malloc(n_in * sizeof(int32_t)), .n_outputs = 1,
                 .outputs = malloc(sizeof(int32_t))};
  memcpy(n->inputs, in, n_in * sizeof(int32_t));
  n->outputs[0] = out;
  g->tensors[out].producer = (int32_t)g->n_nodes++;
}

static void output(q8_graph *g, int32_t t) { g->outputs[g->n_outputs++] = t; }

/* Runs graph g (float inputs by name) and returns a copy of its first output. */
static float *run(const q8_graph *g, const q8_float_tensor *inputs, size_t n_inputs, size_t *count) {
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(g, &s), Q8_OK, "%s", q8_error_detail());
  q8_float_tensor out;
  cr_assert_eq(q8_float_session_run(s, inputs, n_inputs, &out, 1), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(out.type, Q8_ELEM_FLOAT);
  *count = 1;
  for (int d = 0; d < out.rank; ++d) *count *= (size_t)out.dims[d];
  float *copy = malloc(*count * sizeof(float));
  memcpy(copy, out.data, *count * sizeof(float));
  q8_float_session_destroy(s);
  return copy;
}

static size_t count_ops(const q8_graph *g, const char *domain, const char *op) {
  size_t n = 0;
  for (size_t i = 0; i < g->n_nodes; ++i) {
    n += strcmp(g->nodes[i].op_type, op) == 0 && strcmp(g->nodes[i].domain, domain) == 0;
  }
  return n;
}

/* Add / Concat of inputs quantized at very different scales: each input is
 * rescaled to the output's parameters, so the int8 result is the float one
 * within the quantization steps (adding raw codes would be off by far more). */
static void check_mixed(const char *op) {
  q8_graph *g = graph_new();
  const int64_t dims[2] = {2, 5};
  const int32_t a = tensor(g, "a", 2, dims, NULL, true), b = tensor(g, "b", 2, dims, NULL, true);
  const bool concat = strcmp(op, "Concat") == 0;
  const int64_t ydims[2] = {2, concat ? 10 : 5};
  const int32_t y = tensor(g, "y", 2, ydims, NULL, false);
  const int32_t in[2] = {a, b};
  node(g, op, "mix", in, 2, y);
  if (concat) {
    q8_node *n = &g->nodes[0];
    n->attrs = calloc(1, sizeof(q8_attr));
    n->attrs[0] = (q8_attr){.name = q8_str_dup("axis"), .type = Q8_ATTR_INT, .i = 1};
    n->n_attrs = 1;
  }
  output(g, y);
  q8_tensor_range ranges[3] = {{true, -1.0f, 1.0f}, {true, -40.0f, 8.0f}, {true, -41.0f, 9.0f}};
  const bool int8_nodes[1] = {true};
  q8_quant_result r;
  cr_assert_eq(q8_quantize_graph(g, int8_nodes, ranges, NULL, &r), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(count_ops(r.graph, "q8", concat ? "QConcat" : "QAdd"), 1);
  cr_assert_eq(count_ops(r.graph, "q8", "Quantize"), 2);
  cr_assert_eq(count_ops(r.graph, "q8", "Dequantize"), 1);
  float av[10], bv[10];
  for (int i = 0; i < 10; ++i) {
    av[i] = -1.0f + 0.2f * (float)i;
    bv[i] = -40.0f + 4.7f * (float)i;
  }
  const q8_float_tensor inputs[2] = {
      {.name = "a", .type = Q8_ELEM_FLOAT, .rank = 2, .dims = {2, 5}, .data = av},
      {.name = "b", .type = Q8_ELEM_FLOAT, .rank = 2, .dims = {2, 5}, .data = bv}};
  size_t nf, nq;
  float *f = run(g, inputs, 2, &nf), *q = run(r.graph, inputs, 2, &nq);
  cr_assert_eq(nf, nq);
  const float sa = r.qparams[a].scale, sb = r.qparams[b].scale, sy = r.qparams[y].scale;
  for (size_t i = 0; i < nf; ++i) {
    const float tol = concat ? sy / 2 + (i % 10 < 5 ? sa : sb) / 2 : sy / 2 + sa / 2 + sb / 2;
    cr_expect(fabsf(f[i] - q[i]) <= tol * 1.001f + 1e-6f, "%s[%zu]: float %g, int8 %g (tolerance %g)", op, i,
              (double)f[i], (double)q[i], (double)tol);
  }
  free(f);
  free(q);
  q8_quant_result_free(&r);
  q8_graph_destroy(g);
}

Test(ptq, mixed_scale_add) { check_mixed("Add"); }
Test(ptq, mixed_scale_concat) { check_mixed("Concat"); }

/* Gemm + Relu: the Relu is fused (the Gemm takes the Relu's range, zero point
 * at qmin) and the int8 result matches float within the quantization steps. */
Test(ptq, gemm_relu_fused) {
  q8_graph *g = graph_new();
  const int64_t xd[2] = {3, 4}, wd[2] = {2, 4}, cd[1] = {2}, yd[2] = {3, 2};
  const float w[8] = {0.5f, -0.25f, 1.0f, 0.125f, -1.0f, 0.75f, 0.5f, -0.5f}, c[2] = {0.1f, -0.2f};
  const int32_t x = tensor(g, "x", 2, xd, NULL, true), wt = tensor(g, "w", 2, wd, w, false);
  const int32_t ct = tensor(g, "c", 1, cd, c, false), h = tensor(g, "h", 2, yd, NULL, false);
  const int32_t y = tensor(g, "y", 2, yd, NULL, false);
  const int32_t gin[3] = {x, wt, ct};
  node(g, "Gemm", "fc", gin, 3, h);
  g->nodes[0].attrs = calloc(1, sizeof(q8_attr));
  g->nodes[0].attrs[0] = (q8_attr){.name = q8_str_dup("transB"), .type = Q8_ATTR_INT, .i = 1};
  g->nodes[0].n_attrs = 1;
  node(g, "Relu", "relu", &h, 1, y);
  output(g, y);
  q8_tensor_range ranges[5] = {{true, -2.0f, 2.0f}, {0}, {0}, {true, -4.0f, 4.0f}, {true, 0.0f, 4.0f}};
  const bool int8_nodes[2] = {true, true};
  q8_quant_result r;
  cr_assert_eq(q8_quantize_graph(g, int8_nodes, ranges, NULL, &r), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(r.layers[0].precision, Q8_LAYER_INT8);
  cr_expect_eq(r.layers[1].precision, Q8_LAYER_FUSED, "%s", r.layers[1].reason);
  cr_expect_eq(r.qparams[y].zero_point, -128, "a range from 0 puts the zero point at qmin");
  cr_expect_eq(count_ops(r.graph, "q8", "QGemm"), 1);
  cr_expect_eq(count_ops(r.graph, "q8", "QClamp"), 0);
  cr_expect(r.layers[0].weight_sqnr_db > 30, "weight SQNR %g dB", r.layers[0].weight_sqnr_db);
  float xv[12];
  for (int i = 0; i < 12; ++i) xv[i] = -1.9f + 0.33f * (float)i;
  const q8_float_tensor in = {.name = "x", .type = Q8_ELEM_FLOAT, .rank = 2, .dims = {3, 4}, .data = xv};
  size_t nf, nq;
  float *f = run(g, &in, 1, &nf), *q = run(r.graph, &in, 1, &nq);
  const float tol = r.qparams[y].scale / 2 + 4 * r.qparams[x].scale / 2 * 1.0f + 0.02f;
  for (size_t i = 0; i < nf; ++i) {
    cr_expect(q[i] >= 0, "relu output %g < 0", (double)q[i]);
    cr_expect(fabsf(f[i] - q[i]) <= tol, "y[%zu]: float %g, int8 %g", i, (double)f[i], (double)q[i]);
  }
  free(f);
  free(q);
  q8_quant_result_free(&r);
  q8_graph_destroy(g);
}

/* A bias that cannot be int32 at input scale x weight scale is an error
 * naming the node, not a silently wrapped value. */
Test(ptq, bias_overflow_named) {
  q8_graph *g = graph_new();
  const int64_t xd[2] = {1, 2}, wd[2] = {2, 2}, cd[1] = {2}, yd[2] = {1, 2};
  const float w[4] = {1e-3f, 1e-3f, 1e-3f, 1e-3f}, c[2] = {1e9f, 0};
  const int32_t x = tensor(g, "x", 2, xd, NULL, true), wt = tensor(g, "w", 2, wd, w, false);
  const int32_t ct = tensor(g, "c", 1, cd, c, false), y = tensor(g, "y", 2, yd, NULL, false);
  const int32_t gin[3] = {x, wt, ct};
  node(g, "Gemm", "big_bias_fc", gin, 3, y);
  output(g, y);
  q8_tensor_range ranges[4] = {{true, -1e-3f, 1e-3f}, {0}, {0}, {true, -1.0f, 1e9f}};
  const bool int8_nodes[1] = {true};
  q8_quant_result r;
  cr_assert_eq(q8_quantize_graph(g, int8_nodes, ranges, NULL, &r), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "big_bias_fc") && strstr(q8_error_detail(), "bias"), "%s",
            q8_error_detail());
  cr_expect_null(r.graph);
  q8_graph_destroy(g);
}

/* ---- the Fashion-MNIST model end to end --------------------------------------------- */

static q8_graph *load_model(void) {
  q8_graph *graph = q8t_load_fashion_model();
  cr_assert_not_null(graph, "%s", q8_error_detail());
  return graph;
}

typedef struct scores {
  size_t images, float_correct, int8_correct, agree;
} scores;

/* Under qemu-user the float reference runs ~50x slower: the end-to-end tests
 * score about half the images there (whole batches of 100), at the same
 * thresholds in proportion. */
static size_t images_to_score(size_t images) {
  return q8_cpu()->emulated[0] ? images / 200 * 100 : images;
}

static scores score(const q8_ptq_model *m, const q8_dataset *test, size_t images) {
  enum { BATCH = 100 };
  q8_float_session *fs, *qs;
  cr_assert_eq(q8_float_session_create(m->graph, &fs), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(q8_float_session_create(m->quant.graph, &qs), Q8_OK, "%s", q8_error_detail());
  float *x = malloc(BATCH * test->rows * test->cols * sizeof(float));
  scores s = {0};
  for (size_t first = 0; first < images; first += BATCH) {
    q8_float_tensor in = {.name = "input", .type = Q8_ELEM_FLOAT, .data = x}, fo, qo;
    cr_assert_eq(q8_ptq_input(m->graph, test, first, BATCH, x, in.dims, &in.rank), Q8_OK);
    cr_assert_eq(q8_float_session_run(fs, &in, 1, &fo, 1), Q8_OK, "%s", q8_error_detail());
    cr_assert_eq(q8_float_session_run(qs, &in, 1, &qo, 1), Q8_OK, "%s", q8_error_detail());
    for (size_t i = 0; i < BATCH; ++i) {
      const float *fv = (const float *)fo.data + 10 * i, *qv = (const float *)qo.data + 10 * i;
      size_t fa = 0, qa = 0;
      for (size_t j = 1; j < 10; ++j) {
        fa = fv[j] > fv[fa] ? j : fa;
        qa = qv[j] > qv[qa] ? j : qa;
      }
      s.float_correct += fa == test->labels[first + i];
      s.int8_correct += qa == test->labels[first + i];
      s.agree += fa == qa;
    }
    s.images += BATCH;
  }
  free(x);
  q8_float_session_destroy(fs);
  q8_float_session_destroy(qs);
  return s;
}

static void check_model(q8_quantize_options quant, q8_calib_method method) {
  q8_dataset train, test;
  cr_assert_eq(q8_dataset_load(NULL, "train", &train), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(q8_dataset_load(NULL, "t10k", &test), Q8_OK, "%s", q8_error_detail());
  q8_ptq_options o;
  q8_ptq_options_default(&o);
  o.quant = quant;
  q8_calib_options_default(&o.calib, method);
  o.calib.dtype = quant.activations;
  o.calib_images = 300;
  q8_ptq_model m;
  cr_assert_eq(q8_ptq_quantize(load_model(), &train, &o, &m), Q8_OK, "%s", q8_error_detail());
  /* Everything the model has runs in int8: 3 conv (BN folded, Relu fused),
   * 3 max pools, Flatten, 3 Gemm, Tanh and Sigmoid as tables. */
  cr_expect_eq(m.folds.folded, 3);
  cr_expect_eq(count_ops(m.quant.graph, "q8", "QConv"), 3);
  cr_expect_eq(count_ops(m.quant.graph, "q8", "MaxPool"), 3);
  cr_expect_eq(count_ops(m.quant.graph, "q8", "QGemm"), 3);
  cr_expect_eq(count_ops(m.quant.graph, "q8", "QLookup"), 2);
  cr_expect_eq(count_ops(m.quant.graph, "q8", "Quantize"), 1, "one boundary in");
  cr_expect_eq(count_ops(m.quant.graph, "q8", "Dequantize"), 1, "one boundary out");
  for (size_t i = 0; i < m.quant.n_layers; ++i) {
    cr_expect_neq(m.quant.layers[i].precision, Q8_LAYER_FLOAT, "%s: %s", m.graph->nodes[i].name,
                  m.quant.layers[i].reason);
  }
  const scores s = score(&m, &test, images_to_score(1000));
  const size_t n = s.images;
  cr_log_info("%s %s %s: float %.1f%%, int8 %.1f%%, agreement %.1f%% (%zu t10k images)",
              quant.activations == Q8_UINT8 ? "uint8" : "int8", quant.per_channel ? "per-channel" : "per-tensor",
              q8_calib_method_name(method), 100.0 * (double)s.float_correct / (double)n,
              100.0 * (double)s.int8_correct / (double)n, 100.0 * (double)s.agree / (double)n, n);
  /* The targets (0.5 points, 98%) are for all 10,000 images with 500
   * calibration images (qbench accuracy); 1000 images allow a little more:
   * 1 point and 97%. */
  cr_expect_geq(s.int8_correct + n / 100, s.float_correct, "int8 %zu vs float %zu of %zu", s.int8_correct,
                s.float_correct, n);
  cr_expect_geq(s.agree, n * 97 / 100, "agreement %zu of %zu", s.agree, n);
  q8_ptq_model_free(&m);
  q8_dataset_free(&train);
  q8_dataset_free(&test);
}

Test(ptq, fashion_mnist_int8_per_channel, .timeout = 300) {
  q8_quantize_options q;
  q8_quantize_options_default(&q);
  check_model(q, Q8_CALIB_MINMAX);
}

Test(ptq, fashion_mnist_uint8_per_tensor_tflite, .timeout = 300) {
  q8_quantize_options q = {.activations = Q8_UINT8, .per_channel = false, .profile = Q8_PROFILE_TFLITE};
  check_model(q, Q8_CALIB_PERCENTILE);
}

/* --keep-float-nodes: the Gemms stay float, a Dequantize appears before the
 * first of them, and the model still runs. */
Test(ptq, keep_float_nodes, .timeout = 300) {
  q8_dataset train;
  cr_assert_eq(q8_dataset_load(NULL, "train", &train), Q8_OK, "%s", q8_error_detail());
  q8_policy policy;
  q8_policy_init(&policy);
  cr_assert_eq(q8_policy_set_keep_float_nodes(&policy, "/fc*"), Q8_OK, "%s", q8_error_detail());
  q8_ptq_options o;
  q8_ptq_options_default(&o);
  o.policy = &policy;
  o.calib_images = 100;
  q8_ptq_model m;
  cr_assert_eq(q8_ptq_quantize(load_model(), &train, &o, &m), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(count_ops(m.quant.graph, "q8", "QGemm"), 0);
  cr_expect_eq(count_ops(m.quant.graph, "", "Gemm"), 3);
  cr_expect_eq(count_ops(m.quant.graph, "q8", "QConv"), 3);
  cr_expect_geq(count_ops(m.quant.graph, "q8", "Dequantize"), 1);
  const scores s = score(&m, &train, 200);
  cr_expect_geq(s.agree, 190, "agreement %zu of 200", s.agree);
  q8_ptq_model_free(&m);
  q8_policy_free(&policy);
  q8_dataset_free(&train);
}

/* ---- qbench accuracy ------------------------------------------------------------------ */

#include "bench/qbench.h"

static char *accuracy(const char *extra, int *exit_code) {
  char args[4096];
  snprintf(args, sizeof args, "accuracy --model %s %s", q8t_source_path("models/fashion_mnist_cnn.onnx"), extra);
  return q8t_run_qbench(args, false, exit_code);
}

static double number(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  cr_assert(v && v->type == QB_JNUMBER, "%s is a number", key);
  return v->number;
}

Test(ptq, qbench_accuracy_json, .timeout = 300) {
  int code;
  char *out = accuracy("--limit 200 --calib 50 --calibrator mse --json -", &code);
  cr_assert_not_null(out, "Q8_QBENCH is set by ctest");
  cr_assert_eq(code, 0, "%s", out);
  char err[256];
  qb_jvalue *doc = qb_json_parse(out, err, sizeof err);
  cr_assert_not_null(doc, "%s", err);
  cr_expect_eq(number(doc, "images"), 200);
  cr_expect_eq(number(doc, "calib_images"), 50);
  for (const char *const *k = (const char *const[]){"float_top1", "int8_top1", "agreement", NULL}; *k; ++k) {
    const double v = number(doc, *k);
    cr_expect(v >= 0 && v <= 100, "%s = %g is a percentage", *k, v);
  }
  cr_expect_geq(number(doc, "agreement"), 90);
  const qb_jvalue *layers = qb_json_get(doc, "layers");
  cr_assert(layers && layers->type == QB_JARRAY && layers->count == 15, "one entry per node of the prepared graph");
  size_t with_weights = 0;
  for (size_t i = 0; i < layers->count; ++i) {
    const qb_jvalue *l = layers->items[i];
    for (const char *const *k = (const char *const[]){"name", "op", "precision", NULL}; *k; ++k) {
      const qb_jvalue *v = qb_json_get(l, *k);
      cr_expect(v && v->type == QB_JSTRING, "layers[%zu].%s is a string", i, *k);
    }
    const qb_jvalue *s = qb_json_get(l, "sqnr_db"), *w = qb_json_get(l, "weight_sqnr_db");
    cr_expect(s && s->type == QB_JNUMBER && s->number > 10, "layers[%zu].sqnr_db", i);
    cr_expect(w && (w->type == QB_JNUMBER || w->type == QB_JNULL), "layers[%zu].weight_sqnr_db", i);
    with_weights += w && w->type == QB_JNUMBER;
  }
  cr_expect_eq(with_weights, 6, "3 Conv + 3 Gemm have weights");
  /* 50 calibration images is below the 100 the warning asks for. */
  const qb_jvalue *warnings = qb_json_get(doc, "warnings");
  cr_assert(warnings && warnings->type == QB_JARRAY && warnings->count >= 1);
  cr_expect(strstr(warnings->items[0]->string, "50 images"), "%s", warnings->items[0]->string);
  qb_json_free(doc);
  free(out);
}

Test(ptq, qbench_accuracy_errors) {
  /* args, exit code, what the message must name */
  static const char *const cases[][3] = {
      {"accuracy --model m.onnx --calibrator kl", "2", "kl"},
      {"accuracy --model no/such/model.onnx", "1", "no/such/model.onnx"},
      {"accuracy --model m.onnx --keep-float-ops Sigmoid,,Tanh", "2", "empty"},
      {"accuracy --limit 0 --model m.onnx", "2", "--limit"},
      {"accuracy --limit 5", "2", "--model"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    int code;
    char *out = q8t_run_qbench(cases[i][0], true, &code);
    cr_assert_not_null(out);
    cr_expect_eq(code, atoi(cases[i][1]), "%s: exit %d", cases[i][0], code);
    cr_expect(strstr(out, cases[i][2]), "%s: the message names '%s': %s", cases[i][0], cases[i][2], out);
    free(out);
  }
}

/* Every calibrator end to end: int8 keeps the float model's answers. */
Test(ptq, every_calibrator, .timeout = 300) {
  q8_dataset train;
  cr_assert_eq(q8_dataset_load(NULL, "train", &train), Q8_OK, "%s", q8_error_detail());
  for (int m = Q8_CALIB_MINMAX; m <= Q8_CALIB_MSE; ++m) {
    q8_ptq_options o;
    q8_ptq_options_default(&o);
    q8_calib_options_default(&o.calib, (q8_calib_method)m);
    o.calib_images = 200;
    q8_ptq_model model;
    cr_assert_eq(q8_ptq_quantize(load_model(), &train, &o, &model), Q8_OK, "%s", q8_error_detail());
    /* Scored on train images past the calibration ones. */
    q8_dataset rest = train;
    rest.images += 1000 * train.rows * train.cols;
    rest.labels += 1000;
    rest.count -= 1000;
    const scores s = score(&model, &rest, images_to_score(500));
    const size_t n = s.images;
    cr_log_info("%s: agreement %zu of %zu", q8_calib_method_name((q8_calib_method)m), s.agree, n);
    cr_expect_geq(s.agree, n * 97 / 100, "%s: agreement %zu of %zu", q8_calib_method_name((q8_calib_method)m),
                  s.agree, n);
    q8_ptq_model_free(&model);
  }
  q8_dataset_free(&train);
}
