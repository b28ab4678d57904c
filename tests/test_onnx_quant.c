/* Quantized ONNX operators (quant/qops.c): every quantized-operator node test
 * of libonnx-testdata, bit for bit, under every usable ISA; then the cases
 * those tests miss (uint8 weights needing the window-sum correction,
 * per-channel scales, groups, dilation, batched MatMul broadcasting, plan
 * caching across shapes) against definitions written out here in int64; and
 * errors that name nodes, tensors, types and shapes. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "quant/exec_ops.h"
#include "quant/float_exec.h"
#include "quant/graph.h"
#include "tests/support/onnx_node.h"
#include "tests/support/q8test.h"

static const char *const isas[] = {"ref", "hwy", "avx2", "avxvnni", "avx512vnni"};

/* Bitwise equal values (floats too: DequantizeLinear is exact). */
static bool same_bytes(const q8_float_tensor *got, const q8_tensor *want, char *why, size_t size) {
  const size_t es = q8_elem_size(want->type);
  for (size_t i = 0; es && i < want->data_bytes / es; ++i) {
    if (memcmp((const char *)got->data + i * es, (const char *)want->data + i * es, es) != 0) {
      snprintf(why, size, "output '%s' differs first at element %zu", got->name, i);
      return false;
    }
  }
  return true;
}

Test(onnx_quant, every_quantized_node_test_bit_exact_on_every_isa) {
  size_t found = 0;
  const char *error = "";
  char **names = q8t_node_tests(q8t_quant_op_prefixes, q8t_n_quant_op_prefixes, &found, &error);
  cr_assert_not_null(names, "%s", error);
  /* libonnx-testdata 1.12 as Debian packages it has 16 of them. */
  cr_expect_geq(found, 16, "only %zu quantized-operator node tests found", found);
  int isas_run = 0;
  for (size_t i = 0; i < sizeof isas / sizeof isas[0]; ++i) {
    const char *reason = NULL;
    if (!q8_isa_usable(isas[i], &reason)) {
      cr_log_info("%s: skipped (%s)", isas[i], reason ? reason : "not usable");
      continue;
    }
    cr_assert_eq(q8_set_isa(isas[i]), Q8_OK, "%s", q8_error_detail());
    ++isas_run;
    size_t passed = 0;
    for (size_t t = 0; t < found; ++t) {
      char why[2048] = "";
      /* Any input type: a skip is a failure here. */
      const int r = q8t_node_test_run(names[t], ~0u, same_bytes, why, sizeof why);
      passed += r > 0;
      cr_expect(r > 0, "%s, %s: %s", isas[i], names[t], why);
    }
    cr_log_info("%s: %zu of %zu quantized node tests passed", isas[i], passed, found);
    cr_expect_eq(passed, found, "%s: %zu of %zu passed", isas[i], passed, found);
  }
  cr_expect_geq(isas_run, 1);
  q8_set_isa(NULL);
  q8t_names_free(names, found);
}

/* ---- graphs built in memory --------------------------------------------------------- */

/* Up to 16 tensors and 2 nodes; tensors with data are initializers. */
typedef struct net {
  q8_tensor tensors[16];
  q8_node nodes[2];
  int32_t node_in[2][9], node_out[2][3];
  q8_attr attrs[2][8];
  int32_t graph_in[16], graph_out[4];
  q8_graph graph;
} net;

static void net_init(net *m) {
  memset(m, 0, sizeof *m);
  m->graph = (q8_graph){.name = "net", .producer_name = "", .opset = 13, .tensors = m->tensors, .nodes = m->nodes,
                        .inputs = m->graph_in, .outputs = m->graph_out};
}

/* A tensor: a graph input (data NULL) or an initializer; returns its index. */
static int32_t net_tensor(net *m, char *name, q8_elem_type type, int rank, const int64_t *dims, void *data) {
  const int32_t i = (int32_t)m->graph.n_tensors++;
  q8_tensor *t = &m->tensors[i];
  *t = (q8_tensor){.name = name, .kind = data ? Q8_TENSOR_INITIALIZER : Q8_TENSOR_INPUT, .type = type, .rank = rank,
                   .data = data, .producer = -1};
  for (int d = 0; d < rank; ++d) t->dims[d] = dims[d];
  if (data) t->data_bytes = (size_t)q8_tensor_elements(t) * q8_elem_size(type);
  else m->graph_in[m->graph.n_inputs++] = i;
  return i;
}

static int32_t net_scalar(net *m, char *name, q8_elem_type type, void *data) {
  return net_tensor(m, name, type, 0, NULL, data);
}

/* A node over existing tensors (-1: omitted input) with one new output of
 * type out_type, which becomes a graph output; returns the node. */
static q8_node *net_node(net *m, char *op_type, char *name, const int32_t *ins, size_t n_ins, char *out,
                         q8_elem_type out_type) {
  const size_t k = m->graph.n_nodes++;
  for (size_t i = 0; i < n_ins; ++i) m->node_in[k][i] = ins[i];
  const int32_t o = (int32_t)m->graph.n_tensors++;
  m->tensors[o] = (q8_tensor){.name = out, .kind = Q8_TENSOR_VALUE, .type = out_type, .rank = -1,
                              .producer = (int32_t)k};
  m->node_out[k][0] = o;
  m->graph_out[m->graph.n_outputs++] = o;
  m->nodes[k] = (q8_node){.op_type = op_type, .name = name, .domain = "", .n_inputs = n_ins, .inputs = m->node_in[k],
                          .n_outputs = 1, .outputs = m->node_out[k], .attrs = m->attrs[k]};
  return &m->nodes[k];
}

static void node_ints(q8_node *n, char *name, int64_t *ints, size_t count) {
  n->attrs[n->n_attrs++] = (q8_attr){.name = name, .type = Q8_ATTR_INTS, .ints = ints, .count = count};
}

static void node_int(q8_node *n, char *name, int64_t v) {
  n->attrs[n->n_attrs++] = (q8_attr){.name = name, .type = Q8_ATTR_INT, .i = v};
}

static q8_float_tensor feed(const char *name, q8_elem_type type, int rank, const int64_t *dims, const void *data) {
  q8_float_tensor t = {.name = name, .type = type, .rank = rank, .data = data};
  for (int d = 0; d < rank; ++d) t.dims[d] = dims[d];
  return t;
}

/* ONNX's requantization: round_half_even(float(acc) * scale) + zero point, saturated. */
static int32_t requant(int64_t acc, float scale, int32_t zp, bool u8) {
  float v = (float)(int32_t)acc * scale;
  const float lo = (float)((u8 ? 0 : -128) - zp), hi = (float)((u8 ? 255 : 127) - zp);
  v = v < lo ? lo : v > hi ? hi : v;
  return (int32_t)nearbyintf(v) + zp;
}

static int32_t elem8(const void *p, size_t i, bool u8) {
  return u8 ? ((const uint8_t *)p)[i] : ((const int8_t *)p)[i];
}

static void fill8(q8t_rng *r, void *p, size_t n, bool u8) {
  for (size_t i = 0; i < n; ++i) {
    /* Extremes often: they are where mappings break. */
    const int32_t pick = q8t_range(r, 0, 7);
    const int32_t v = pick == 0 ? (u8 ? 255 : 127) : pick == 1 ? (u8 ? 0 : -128) : q8t_range(r, u8 ? 0 : -128, u8 ? 255 : 127);
    if (u8) ((uint8_t *)p)[i] = (uint8_t)v;
    else ((int8_t *)p)[i] = (int8_t)v;
  }
}

/* QLinearConv (requantized, per-channel scales) or ConvInteger (int32) with
 * groups, strides, dilations, asymmetric pads and uint8 or int8 weights
 * with zero points that do not fold into int8, on two batches of different
 * sizes: the second run's shape recreates the cached plans. */
static void check_conv(bool qlinear, bool x_u8, bool w_u8, const char *isa) {
  enum { C = 4, M = 6, G = 2, KH = 3, KW = 2 };
  const int64_t strides[2] = {2, 1}, dil[2] = {2, 1}, pads[4] = {1, 0, 2, 1};
  q8t_rng r = q8t_rng_new(qlinear * 4 + x_u8 * 2 + w_u8);
  static uint8_t w[M * (C / G) * KH * KW], wzp[M];
  static float w_scale[M];
  static int32_t bias[M];
  fill8(&r, w, sizeof w, w_u8);
  for (int i = 0; i < M; ++i) {
    /* Zero points at the far end of the weights' type force the window-sum correction. */
    const int32_t z = i % 2 ? (w_u8 ? 0 : -128) : q8t_range(&r, w_u8 ? 0 : -128, w_u8 ? 255 : 127);
    wzp[i] = (uint8_t)z;
    w_scale[i] = q8t_uniform(&r, 0.001f, 0.02f);
    bias[i] = q8t_range(&r, -5000, 5000);
  }
  float x_scale = 0.05f, y_scale = 0.7f;
  uint8_t xzp = x_u8 ? 131 : (uint8_t)(int8_t)-3, yzp = 7;
  const q8_elem_type xt = x_u8 ? Q8_ELEM_UINT8 : Q8_ELEM_INT8, wt = w_u8 ? Q8_ELEM_UINT8 : Q8_ELEM_INT8;
  net m;
  net_init(&m);
  const int64_t xd[4] = {-1, C, -1, -1}, wd[4] = {M, C / G, KH, KW}, md[1] = {M};
  int32_t ins[9];
  size_t n = 0;
  ins[n++] = net_tensor(&m, "x", xt, 4, xd, NULL);
  if (qlinear) {
    ins[n++] = net_scalar(&m, "x_scale", Q8_ELEM_FLOAT, &x_scale);
    ins[n++] = net_scalar(&m, "x_zero_point", xt, &xzp);
    ins[n++] = net_tensor(&m, "w", wt, 4, wd, w);
    ins[n++] = net_tensor(&m, "w_scale", Q8_ELEM_FLOAT, 1, md, w_scale);
    ins[n++] = net_tensor(&m, "w_zero_point", wt, 1, md, wzp);
    ins[n++] = net_scalar(&m, "y_scale", Q8_ELEM_FLOAT, &y_scale);
    ins[n++] = net_scalar(&m, "y_zero_point", Q8_ELEM_UINT8, &yzp);
    ins[n++] = net_tensor(&m, "B", Q8_ELEM_INT32, 1, md, bias);
  } else {
    ins[n++] = net_tensor(&m, "w", wt, 4, wd, w);
    ins[n++] = net_scalar(&m, "x_zero_point", xt, &xzp);
    ins[n++] = net_tensor(&m, "w_zero_point", wt, 1, md, wzp);
  }
  q8_node *node = net_node(&m, qlinear ? "QLinearConv" : "ConvInteger", "conv_under_test", ins, n, "y",
                           qlinear ? Q8_ELEM_UINT8 : Q8_ELEM_INT32);
  node_int(node, "group", G);
  node_ints(node, "strides", (int64_t *)strides, 2);
  node_ints(node, "dilations", (int64_t *)dil, 2);
  node_ints(node, "pads", (int64_t *)pads, 4);
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
  static const int64_t shapes[2][3] = {{2, 7, 6}, {1, 5, 9}};
  for (int run = 0; run < 2; ++run) {
    const int64_t N = shapes[run][0], H = shapes[run][1], W = shapes[run][2];
    const int64_t dims[4] = {N, C, H, W};
    uint8_t *x = malloc((size_t)(N * C * H * W));
    fill8(&r, x, (size_t)(N * C * H * W), x_u8);
    const q8_float_tensor in = feed("x", xt, 4, dims, x);
    q8_float_tensor y;
    cr_assert_eq(q8_float_session_run(s, &in, 1, &y, 1), Q8_OK, "%s", q8_error_detail());
    const int64_t oh = (H + pads[0] + pads[2] - ((KH - 1) * dil[0] + 1)) / strides[0] + 1;
    const int64_t ow = (W + pads[1] + pads[3] - ((KW - 1) * dil[1] + 1)) / strides[1] + 1;
    cr_assert(y.rank == 4 && y.dims[0] == N && y.dims[1] == M && y.dims[2] == oh && y.dims[3] == ow);
    const int32_t zx = elem8(&xzp, 0, x_u8);
    size_t bad = 0;
    for (int64_t b = 0; b < N; ++b)
      for (int64_t oc = 0; oc < M; ++oc)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j) {
            const int64_t g = oc / (M / G);
            int64_t acc = qlinear ? bias[oc] : 0;
            for (int64_t ic = 0; ic < C / G; ++ic)
              for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                  const int64_t ih = i * strides[0] - pads[0] + kh * dil[0], iw = j * strides[1] - pads[1] + kw * dil[1];
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  const int64_t xv = elem8(x, (size_t)(((b * C + g * (C / G) + ic) * H + ih) * W + iw), x_u8) - zx;
                  const int64_t wv = elem8(w, (size_t)(((oc * (C / G) + ic) * KH + kh) * KW + kw), w_u8) -
                                     elem8(wzp, (size_t)oc, w_u8);
                  acc += xv * wv;
                }
            const size_t at = (size_t)(((b * M + oc) * oh + i) * ow + j);
            const float scale = (float)((double)x_scale * w_scale[oc] / y_scale);
            const int64_t want = qlinear ? requant(acc, scale, yzp, true) : acc;
            const int64_t got = qlinear ? ((const uint8_t *)y.data)[at] : ((const int32_t *)y.data)[at];
            if (got != want && bad++ < 5) {
              cr_log_info("%s %s x %s w %s run %d: y[%zu] = %lld, want %lld", isa, node->op_type, x_u8 ? "u8" : "s8",
                          w_u8 ? "u8" : "s8", run, at, (long long)got, (long long)want);
            }
          }
    cr_expect_eq(bad, 0, "%s %s: %zu outputs differ", isa, node->op_type, bad);
    free(x);
  }
  q8_float_session_destroy(s);
}

/* Runs fn under every usable ISA, then restores automatic selection. */
static void on_every_isa(void (*fn)(const char *isa, int variant), int variants) {
  for (size_t i = 0; i < sizeof isas / sizeof isas[0]; ++i) {
    if (!q8_isa_usable(isas[i], NULL)) continue;
    cr_assert_eq(q8_set_isa(isas[i]), Q8_OK);
    for (int v = 0; v < variants; ++v) fn(isas[i], v);
  }
  q8_set_isa(NULL);
}

static void conv_variant(const char *isa, int v) { check_conv(v & 4, v & 2, v & 1, isa); }

Test(onnx_quant, conv_integer_and_qlinear_conv_uint8_int8_weights_with_zero_points) { on_every_isa(conv_variant, 8); }

/* QLinearMatMul with per-column B scales and zero points, N-D broadcasting
 * (A [2,1,M,K] x B [3,K,N]), or MatMulInteger the same shapes. */
static void check_matmul(bool qlinear, bool a_u8, bool b_u8, const char *isa) {
  enum { M = 5, K = 19, N = 7, BA = 2, BB = 3 };
  q8t_rng r = q8t_rng_new(100 + qlinear * 4 + a_u8 * 2 + b_u8);
  static uint8_t a[BA * M * K], b[BB * K * N], bzp[N];
  static float b_scale[N];
  fill8(&r, a, sizeof a, a_u8);
  fill8(&r, b, sizeof b, b_u8);
  fill8(&r, bzp, sizeof bzp, b_u8);
  for (int j = 0; j < N; ++j) b_scale[j] = q8t_uniform(&r, 0.001f, 0.05f);
  float a_scale = 0.03f, y_scale = 0.2f;
  uint8_t azp = a_u8 ? 255 : 0x80 /* -128 */, yzp = (uint8_t)(int8_t)-5;
  const q8_elem_type at = a_u8 ? Q8_ELEM_UINT8 : Q8_ELEM_INT8, bt = b_u8 ? Q8_ELEM_UINT8 : Q8_ELEM_INT8;
  net m;
  net_init(&m);
  const int64_t ad[4] = {BA, 1, M, K}, bd[3] = {BB, K, N}, nd[1] = {N};
  int32_t ins[8];
  size_t n = 0;
  const int32_t ia = net_tensor(&m, "a", at, 4, ad, NULL);
  const int32_t ib = net_tensor(&m, "b", bt, 3, bd, b);
  if (qlinear) {
    ins[n++] = ia;
    ins[n++] = net_scalar(&m, "a_scale", Q8_ELEM_FLOAT, &a_scale);
    ins[n++] = net_scalar(&m, "a_zero_point", at, &azp);
    ins[n++] = ib;
    ins[n++] = net_tensor(&m, "b_scale", Q8_ELEM_FLOAT, 1, nd, b_scale);
    ins[n++] = net_tensor(&m, "b_zero_point", bt, 1, nd, bzp);
    ins[n++] = net_scalar(&m, "y_scale", Q8_ELEM_FLOAT, &y_scale);
    ins[n++] = net_scalar(&m, "y_zero_point", Q8_ELEM_INT8, &yzp);
  } else {
    ins[n++] = ia;
    ins[n++] = ib;
    ins[n++] = net_scalar(&m, "a_zero_point", at, &azp);
    ins[n++] = net_tensor(&m, "b_zero_point", bt, 1, nd, bzp);
  }
  q8_node *node = net_node(&m, qlinear ? "QLinearMatMul" : "MatMulInteger", "mm_under_test", ins, n, "y",
                           qlinear ? Q8_ELEM_INT8 : Q8_ELEM_INT32);
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
  const q8_float_tensor in = feed("a", at, 4, ad, a);
  q8_float_tensor y;
  for (int run = 0; run < 2; ++run) { /* the second run reuses the cached plans */
    cr_assert_eq(q8_float_session_run(s, &in, 1, &y, 1), Q8_OK, "%s", q8_error_detail());
    cr_assert(y.rank == 4 && y.dims[0] == BA && y.dims[1] == BB && y.dims[2] == M && y.dims[3] == N);
    const int32_t za = elem8(&azp, 0, a_u8);
    size_t bad = 0;
    for (int64_t i0 = 0; i0 < BA; ++i0)
      for (int64_t i1 = 0; i1 < BB; ++i1)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            int64_t acc = 0;
            for (int64_t p = 0; p < K; ++p) {
              acc += (int64_t)(elem8(a, (size_t)((i0 * M + i) * K + p), a_u8) - za) *
                     (elem8(b, (size_t)((i1 * K + p) * N + j), b_u8) - elem8(bzp, (size_t)j, b_u8));
            }
            const size_t o = (size_t)(((i0 * BB + i1) * M + i) * N + j);
            const float scale = (float)((double)a_scale * b_scale[j] / y_scale);
            const int64_t want = qlinear ? requant(acc, scale, (int8_t)yzp, false) : acc;
            const int64_t got = qlinear ? ((const int8_t *)y.data)[o] : ((const int32_t *)y.data)[o];
            if (got != want && bad++ < 5) {
              cr_log_info("%s %s: y[%zu] = %lld, want %lld", isa, node->op_type, o, (long long)got, (long long)want);
            }
          }
    cr_expect_eq(bad, 0, "%s %s a %s b %s run %d: %zu outputs differ", isa, node->op_type, a_u8 ? "u8" : "s8",
                 b_u8 ? "u8" : "s8", run, bad);
  }
  q8_float_session_destroy(s);
}

static void matmul_variant(const char *isa, int v) { check_matmul(v & 4, v & 2, v & 1, isa); }

Test(onnx_quant, qlinear_matmul_and_matmul_integer_per_column_broadcast) { on_every_isa(matmul_variant, 8); }

/* QuantizeLinear per axis with extreme values and ties, then DequantizeLinear
 * back: ties go to even, out-of-range saturates, NaN gives the zero point. */
Test(onnx_quant, quantize_dequantize_per_axis_round_trip) {
  static float scale[3] = {0.5f, 1.0f, 2.0f};
  static int8_t zp[3] = {-128, 0, 127};
  net m;
  net_init(&m);
  const int64_t xd[3] = {2, 3, 2}, cd[1] = {3};
  const int32_t ix = net_tensor(&m, "x", Q8_ELEM_FLOAT, 3, xd, NULL);
  const int32_t is = net_tensor(&m, "scale", Q8_ELEM_FLOAT, 1, cd, scale);
  const int32_t iz = net_tensor(&m, "zp", Q8_ELEM_INT8, 1, cd, zp);
  const int32_t q_ins[3] = {ix, is, iz};
  net_node(&m, "QuantizeLinear", "q", q_ins, 3, "q8", Q8_ELEM_INT8);
  const int32_t d_ins[3] = {m.node_out[0][0], is, iz};
  net_node(&m, "DequantizeLinear", "dq", d_ins, 3, "back", Q8_ELEM_FLOAT);
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
  const float x[12] = {0.25f, 1e9f, 2.5f, -3.5f, 5.0f, -1e9f, 0.75f, NAN, -300.0f, 1.5f, 3.0f, -5.0f};
  const int8_t want_q[12] = {-128, 127, 2, -4, 127, -128, -126, -128, -128, 2, 127, 125};
  const q8_float_tensor in = feed("x", Q8_ELEM_FLOAT, 3, xd, x);
  q8_float_tensor out[2];
  cr_assert_eq(q8_float_session_run(s, &in, 1, out, 2), Q8_OK, "%s", q8_error_detail());
  for (int i = 0; i < 12; ++i) {
    const int c = (i / 2) % 3;
    const int8_t q = ((const int8_t *)out[0].data)[i];
    cr_expect_eq(q, want_q[i], "q[%d] = %d, want %d", i, q, want_q[i]);
    cr_expect_eq(((const float *)out[1].data)[i], (float)(q - zp[c]) * scale[c], "dequantized [%d]", i);
  }
  q8_float_session_destroy(s);
}

/* ---- errors --------------------------------------------------------------------------- */

Test(onnx_quant, dtype_mismatch_names_both_nodes_and_types) {
  static float scale = 0.1f, w[4] = {1, 2, 3, 4};
  static int8_t zp = 0;
  net m;
  net_init(&m);
  const int64_t xd[4] = {1, 1, 2, 2}, wd[4] = {1, 1, 1, 1};
  const int32_t ins[3] = {net_tensor(&m, "x", Q8_ELEM_FLOAT, 4, xd, NULL), net_scalar(&m, "s", Q8_ELEM_FLOAT, &scale),
                          net_scalar(&m, "z", Q8_ELEM_INT8, &zp)};
  net_node(&m, "QuantizeLinear", "quant_in", ins, 3, "xq", Q8_ELEM_INT8);
  const int32_t conv_ins[2] = {m.node_out[0][0], net_tensor(&m, "w", Q8_ELEM_FLOAT, 4, wd, w)};
  net_node(&m, "Conv", "float_conv", conv_ins, 2, "y", Q8_ELEM_FLOAT);
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
  const float x[4] = {0};
  const q8_float_tensor in = feed("x", Q8_ELEM_FLOAT, 4, xd, x);
  cr_expect_eq(q8_float_session_run(s, &in, 1, NULL, 0), Q8_ERR_ARG);
  const char *msg = q8_error_detail();
  cr_expect(strstr(msg, "quant_in") && strstr(msg, "QuantizeLinear") && strstr(msg, "float_conv") &&
                strstr(msg, "int8") && strstr(msg, "float") && strstr(msg, "xq"),
            "%s", msg);
  q8_float_session_destroy(s);
}

Test(onnx_quant, bad_scales_name_node_and_tensor) {
  const float bad[3] = {0.0f, -1.0f, NAN};
  for (int i = 0; i < 3; ++i) {
    float scale = bad[i];
    net m;
    net_init(&m);
    const int64_t xd[1] = {4};
    const int32_t ins[2] = {net_tensor(&m, "x", Q8_ELEM_FLOAT, 1, xd, NULL), net_scalar(&m, "act_scale", Q8_ELEM_FLOAT, &scale)};
    net_node(&m, "QuantizeLinear", "quant_node", ins, 2, "y", Q8_ELEM_UINT8);
    q8_float_session *s;
    cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
    const float x[4] = {1, 2, 3, 4};
    const q8_float_tensor in = feed("x", Q8_ELEM_FLOAT, 1, xd, x);
    cr_expect_eq(q8_float_session_run(s, &in, 1, NULL, 0), Q8_ERR_SCALE, "scale %g", (double)bad[i]);
    const char *msg = q8_error_detail();
    cr_expect(strstr(msg, "quant_node") && strstr(msg, "act_scale"), "%s", msg);
    q8_float_session_destroy(s);
  }
}

Test(onnx_quant, matmul_shape_mismatch_names_both_shapes) {
  net m;
  net_init(&m);
  const int64_t ad[2] = {3, 5}, bd[2] = {4, 2};
  const int32_t ins[2] = {net_tensor(&m, "A", Q8_ELEM_UINT8, 2, ad, NULL), net_tensor(&m, "B", Q8_ELEM_INT8, 2, bd, NULL)};
  net_node(&m, "MatMulInteger", "mmi", ins, 2, "Y", Q8_ELEM_INT32);
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
  const uint8_t a[15] = {0};
  const int8_t b[8] = {0};
  const q8_float_tensor in[2] = {feed("A", Q8_ELEM_UINT8, 2, ad, a), feed("B", Q8_ELEM_INT8, 2, bd, b)};
  cr_expect_eq(q8_float_session_run(s, in, 2, NULL, 0), Q8_ERR_ARG);
  const char *msg = q8_error_detail();
  cr_expect(strstr(msg, "mmi") && strstr(msg, "[3,5]") && strstr(msg, "[4,2]"), "%s", msg);
  q8_float_session_destroy(s);
}

/* The operator table is open: a node in the "q8" domain is looked up there
 * (none is defined yet), and the quantized ops are found by domain. */
Test(onnx_quant, operator_table_lookup_by_domain) {
  cr_expect_not_null(q8_exec_find_op("", "QLinearConv"));
  cr_expect_not_null(q8_exec_find_op("ai.onnx", "QuantizeLinear"));
  cr_expect_null(q8_exec_find_op("q8", "QLinearConv"), "domains are distinct");
  cr_expect(!q8_float_op_supported("QLinearConv"), "quantized ops are not float ops for policies");
  net m;
  net_init(&m);
  const int64_t xd[1] = {4};
  const int32_t in = net_tensor(&m, "x", Q8_ELEM_INT8, 1, xd, NULL);
  q8_node *node = net_node(&m, "QLinearSoftsign", "custom", &in, 1, "y", Q8_ELEM_INT8);
  node->domain = "q8";
  q8_float_session *s = NULL;
  cr_expect_eq(q8_float_session_create(&m.graph, &s), Q8_ERR_UNSUPPORTED);
  const char *msg = q8_error_detail();
  cr_expect(strstr(msg, "custom") && strstr(msg, "q8.QLinearSoftsign"), "%s", msg);
}

/* Plans cached from an initializer are not reused when the caller overrides
 * it, nor after the shapes change. */
Test(onnx_quant, cached_plans_follow_overridden_initializers_and_shapes) {
  static int8_t b[6] = {1, 2, 3, 4, 5, 6};
  const int8_t b2[6] = {-7, 0, 7, 1, -1, 2};
  net m;
  net_init(&m);
  const int64_t ad[2] = {-1, 3}, bd[2] = {3, 2};
  const int32_t ins[2] = {net_tensor(&m, "A", Q8_ELEM_INT8, 2, ad, NULL), net_tensor(&m, "B", Q8_ELEM_INT8, 2, bd, b)};
  net_node(&m, "MatMulInteger", "mmi", ins, 2, "Y", Q8_ELEM_INT32);
  q8_float_session *s;
  cr_assert_eq(q8_float_session_create(&m.graph, &s), Q8_OK, "%s", q8_error_detail());
  const int8_t a[6] = {1, -1, 2, 0, 3, -128};
  for (int run = 0; run < 4; ++run) {
    const bool override = run == 2, two_rows = run == 3;
    const int64_t a_dims[2] = {two_rows ? 2 : 1, 3};
    const q8_float_tensor in[2] = {feed("A", Q8_ELEM_INT8, 2, a_dims, a), feed("B", Q8_ELEM_INT8, 2, bd, b2)};
    q8_float_tensor y;
    cr_assert_eq(q8_float_session_run(s, in, override ? 2 : 1, &y, 1), Q8_OK, "%s", q8_error_detail());
    const int8_t *pb = override ? b2 : b;
    cr_assert_eq(y.dims[0], a_dims[0]);
    for (int64_t i = 0; i < a_dims[0]; ++i) {
      for (int j = 0; j < 2; ++j) {
        int32_t want = 0;
        for (int k = 0; k < 3; ++k) want += a[i * 3 + k] * pb[k * 2 + j];
        cr_expect_eq(((const int32_t *)y.data)[i * 2 + j], want, "run %d: Y[%lld][%d]", run, (long long)i, j);
      }
    }
  }
  q8_float_session_destroy(s);
}
