/* ONNX loader and graph IR: ONNX's own node-test models and their .pb
 * tensors load with consistent shapes; every malformed or unsupported model
 * gets a status and a message naming the problem; and no truncation or
 * byte corruption of a valid model crashes the loader (run under ASan). */
#define _POSIX_C_SOURCE 200809L /* opendir, mkstemp */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "q8/q8.h"
#include "quant/graph.h"
#include "tests/support/q8test.h"

/* ---- libonnx-testdata ------------------------------------------------------ */

static char *path_join(const char *a, const char *b) {
  const size_t size = strlen(a) + strlen(b) + 2;
  char *path = malloc(size);
  cr_assert_not_null(path);
  snprintf(path, size, "%s/%s", a, b);
  return path;
}

/* Sorted names in dir starting with prefix ("" for all); NULL-terminated. */
static char **list_dir(const char *dir, const char *prefix, size_t *count) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "%s: %s (install libonnx-testdata or set Q8_ONNX_TESTDATA)", dir,
                     strerror(errno));
  size_t n = 0, cap = 64;
  char **names = malloc(cap * sizeof *names);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    if (n + 1 == cap) names = realloc(names, (cap *= 2) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, q8t_compare_names);
  names[n] = NULL;
  *count = n;
  return names;
}

static void free_list(char **names) {
  for (char **p = names; *p; ++p) free(*p);
  free(names);
}

static unsigned char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *bytes = malloc(*size ? *size : 1);
  cr_assert_eq(fread(bytes, 1, *size, f), *size);
  fclose(f);
  return bytes;
}

/* ---- a protobuf writer ---------------------------------------------------------
 * The tests build models byte by byte: the generated protobuf-c header is not
 * on the tests' include path, and the wire format is small. Field numbers are
 * onnx.proto's. */

typedef struct pb {
  unsigned char *data;
  size_t len, cap;
} pb;

static void pb_raw(pb *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    b->cap = (b->len + len) * 2 + 64;
    b->data = realloc(b->data, b->cap);
    cr_assert_not_null(b->data);
  }
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
}

static void pb_varint(pb *b, uint64_t v) {
  do {
    const unsigned char byte = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    pb_raw(b, &byte, 1);
    v >>= 7;
  } while (v);
}

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

static void pb_int(pb *b, int field, int64_t v) {
  pb_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
  pb_varint(b, (uint64_t)v);
}

static void pb_bytes(pb *b, int field, const void *data, size_t len) {
  pb_varint(b, (uint64_t)field << 3 | WIRE_BYTES);
  pb_varint(b, len);
  pb_raw(b, data, len);
}

static void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

/* Appends sub as a nested message and frees it. */
static void pb_msg(pb *b, int field, pb *sub) {
  pb_bytes(b, field, sub->data, sub->len);
  free(sub->data);
  *sub = (pb){0};
}

enum { ONNX_FLOAT = 1, ONNX_INT8 = 3, ONNX_INT32 = 6, ONNX_DOUBLE = 11 };
enum { ATTR_GRAPH = 5, ATTR_INTS = 7 };

/* TensorProto: dims 1, data_type 2, float_data 4, int32_data 5, name 8,
 * raw_data 9, data_location 14. */
static pb tensor_pb(const char *name, int type, const int64_t *dims, int rank) {
  pb t = {0};
  for (int d = 0; d < rank; ++d) pb_int(&t, 1, dims[d]);
  pb_int(&t, 2, type);
  pb_str(&t, 8, name);
  return t;
}

/* ValueInfoProto name 1, type 2 -> TypeProto tensor_type 1 -> elem_type 1,
 * shape 2 -> dim 1 -> dim_value 1 / dim_param 2 (negative: "N"). */
static pb value_info_pb(const char *name, int elem_type, const int64_t *dims, int rank) {
  pb shape = {0}, tensor_type = {0}, type = {0}, info = {0};
  for (int d = 0; d < rank; ++d) {
    pb dim = {0};
    if (dims[d] >= 0) pb_int(&dim, 1, dims[d]);
    else pb_str(&dim, 2, "N");
    pb_msg(&shape, 1, &dim);
  }
  pb_int(&tensor_type, 1, elem_type);
  pb_msg(&tensor_type, 2, &shape);
  pb_msg(&type, 1, &tensor_type);
  pb_str(&info, 1, name);
  pb_msg(&info, 2, &type);
  return info;
}

/* AttributeProto: name 1, i 3, g 6, ints 8, type 20. */
static pb attr_ints_pb(const char *name, const int64_t *values, size_t count) {
  pb a = {0};
  pb_str(&a, 1, name);
  for (size_t i = 0; i < count; ++i) pb_int(&a, 8, values[i]);
  pb_int(&a, 20, ATTR_INTS);
  return a;
}

/* NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
 * Names are a space-separated list; "-" stands for "" (omitted). */
static void add_names(pb *node, int field, const char *list) {
  char copy[256];
  snprintf(copy, sizeof copy, "%s", list);
  for (char *save = NULL, *name = strtok_r(copy, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
    pb_str(node, field, strcmp(name, "-") == 0 ? "" : name);
  }
}

static pb node_pb(const char *op_type, const char *name, const char *inputs, const char *outputs) {
  pb n = {0};
  add_names(&n, 1, inputs);
  add_names(&n, 2, outputs);
  if (name) pb_str(&n, 3, name);
  pb_str(&n, 4, op_type);
  return n;
}

/* The model the error tests break one way each (and the fuzz tests mangle,
 * 2.8 KB): y = Relu(Conv(x, W, B)) with x [N,4,5,5], W [16,4,3,3] float
 * (raw_data), B [16] float (float_data), and an int8 initializer Q [4] in
 * int32_data that no node reads. */
#define W_ELEMENTS (16 * 4 * 3 * 3)

typedef struct spec {
  int64_t opset;
  const char *extra_domain; /* second opset import, e.g. "ai.onnx.ml" */
  const char *relu_domain;  /* NULL: default */
  const char *relu_input;   /* "c" */
  const char *relu_output;  /* "y" */
  const char *conv_inputs;  /* "x W B" */
  const char *conv_name;    /* "conv1"; NULL: left empty */
  size_t weight_bytes;      /* 16*4*3*3 floats: 2304 */
  int weight_type;          /* ONNX_FLOAT */
  bool relu_first;          /* nodes not in topological order */
  bool weight_external;
  bool if_node;             /* an If with a GRAPH attribute */
  bool duplicate_initializer;
} spec;

static spec good_spec(void) {
  return (spec){.opset = 13, .relu_input = "c", .relu_output = "y", .conv_inputs = "x W B",
                .conv_name = "conv1", .weight_bytes = W_ELEMENTS * 4, .weight_type = ONNX_FLOAT};
}

static const int64_t x_dims[4] = {-1, 4, 5, 5}, w_dims[4] = {16, 4, 3, 3}, y_dims[4] = {-1, 16, 3, 3};

static pb build_model(const spec *s) {
  pb graph = {0};
  /* nodes */
  pb conv = node_pb("Conv", s->conv_name, s->conv_inputs, "c");
  const int64_t strides[2] = {2, 2}, pads[4] = {1, 1, 1, 1}, kernel[2] = {3, 3};
  pb a = attr_ints_pb("strides", strides, 2);
  pb_msg(&conv, 5, &a);
  a = attr_ints_pb("pads", pads, 4);
  pb_msg(&conv, 5, &a);
  a = attr_ints_pb("kernel_shape", kernel, 2);
  pb_msg(&conv, 5, &a);
  a = (pb){0};
  pb_str(&a, 1, "group"); /* without its type, as old writers left it: i says INT */
  pb_int(&a, 3, 1);
  pb_msg(&conv, 5, &a);
  pb relu = node_pb("Relu", "relu1", s->relu_input, s->relu_output);
  if (s->relu_domain) pb_str(&relu, 7, s->relu_domain);
  if (s->relu_first) {
    pb_msg(&graph, 1, &relu);
    pb_msg(&graph, 1, &conv);
  } else {
    pb_msg(&graph, 1, &conv);
    pb_msg(&graph, 1, &relu);
  }
  if (s->if_node) {
    pb body = {0};
    pb_str(&body, 2, "then");
    pb n = node_pb("If", "branch", "x", "z");
    a = (pb){0};
    pb_str(&a, 1, "then_branch");
    pb_msg(&a, 6, &body);
    pb_int(&a, 20, ATTR_GRAPH);
    pb_msg(&n, 5, &a);
    pb_msg(&graph, 1, &n);
  }
  pb_str(&graph, 2, "test_graph");
  /* initializers */
  pb w = tensor_pb("W", s->weight_type, w_dims, 4);
  static unsigned char raw[W_ELEMENTS * 8];
  for (size_t i = 0; i < sizeof raw; ++i) raw[i] = (unsigned char)(i * 7);
  if (s->weight_external) {
    pb entry = {0};
    pb_str(&entry, 1, "location");
    pb_str(&entry, 2, "weights.bin");
    pb_msg(&w, 13, &entry);
    pb_int(&w, 14, 1);
  } else {
    pb_bytes(&w, 9, raw, s->weight_bytes);
  }
  pb_msg(&graph, 5, &w);
  const int64_t b_dims[1] = {16}, q_dims[1] = {4};
  pb b = tensor_pb("B", ONNX_FLOAT, b_dims, 1);
  pb packed = {0};
  for (int i = 0; i < 16; ++i) {
    const float f = 0.5f * (float)(i + 1);
    pb_raw(&packed, &f, 4); /* packed fixed32: little-endian hosts only, as the test runs */
  }
  pb_msg(&b, 4, &packed);
  pb_msg(&graph, 5, &b);
  pb q = tensor_pb(s->duplicate_initializer ? "B" : "Q", ONNX_INT8, q_dims, 1);
  pb ints = {0};
  const int32_t qv[4] = {-128, -1, 0, 127};
  for (int i = 0; i < 4; ++i) pb_varint(&ints, (uint64_t)(int64_t)qv[i]);
  pb_msg(&q, 5, &ints);
  pb_msg(&graph, 5, &q);
  /* inputs (W also listed, as older exporters do), outputs, value_info */
  pb vi = value_info_pb("x", ONNX_FLOAT, x_dims, 4);
  pb_msg(&graph, 11, &vi);
  vi = value_info_pb("W", ONNX_FLOAT, w_dims, 4);
  pb_msg(&graph, 11, &vi);
  vi = value_info_pb("y", ONNX_FLOAT, y_dims, 4);
  pb_msg(&graph, 12, &vi);
  vi = value_info_pb("c", ONNX_FLOAT, y_dims, 4);
  pb_msg(&graph, 13, &vi);

  pb model = {0};
  pb_int(&model, 1, 8); /* ir_version */
  pb_str(&model, 2, "q8-tests");
  pb_msg(&model, 7, &graph);
  pb opset = {0};
  pb_str(&opset, 1, "");
  pb_int(&opset, 2, s->opset);
  pb_msg(&model, 8, &opset);
  if (s->extra_domain) {
    pb_str(&opset, 1, s->extra_domain);
    pb_int(&opset, 2, 3);
    pb_msg(&model, 8, &opset);
  }
  return model;
}

/* Loads the spec's model: expects `status`, and on failure a message
 * containing every one of the NULL-terminated words. */
static q8_graph *load_spec(const spec *s, q8_status status, const char *const *words) {
  pb model = build_model(s);
  q8_graph *graph = (q8_graph *)0x1;
  const q8_status got = q8_graph_load_memory(model.data, model.len, &graph);
  free(model.data);
  cr_assert_eq(got, status, "status %s (%s), expected %s", q8_status_str(got), q8_error_detail(),
               q8_status_str(status));
  if (status != Q8_OK) cr_assert_null(graph, "no graph on failure");
  for (; words && *words; ++words) {
    cr_expect(strstr(q8_error_detail(), *words) != NULL, "message '%s' should name '%s'",
              q8_error_detail(), *words);
  }
  return graph;
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- the built model --------------------------------------------------------- */

Test(onnx_load, built_model_ir) {
  const spec s = good_spec();
  q8_graph *g = load_spec(&s, Q8_OK, NULL);
  cr_expect_str_eq(q8_error_detail(), "");
  cr_expect_eq(g->opset, 13);
  cr_expect_eq(g->ir_version, 8);
  cr_expect_str_eq(g->name, "test_graph");
  cr_expect_str_eq(g->producer_name, "q8-tests");
  cr_assert_eq(g->n_nodes, 2);
  cr_assert_eq(g->n_inputs, 1, "W is an initializer, not an input");
  cr_assert_eq(g->n_outputs, 1);

  const q8_tensor *x = &g->tensors[g->inputs[0]];
  cr_expect_str_eq(x->name, "x");
  cr_expect_eq(x->kind, Q8_TENSOR_INPUT);
  cr_expect_eq(x->type, Q8_ELEM_FLOAT);
  cr_expect_eq(x->rank, 4);
  cr_expect_eq(x->dims[0], -1, "symbolic batch is unknown");
  cr_expect_eq(x->dims[3], 5);
  cr_expect_not(q8_tensor_shape_static(x));
  char shape[64];
  cr_expect_str_eq(q8_tensor_shape_str(x, shape, sizeof shape), "[-1,4,5,5]");

  const q8_tensor *w = q8_graph_find_tensor(g, "W");
  cr_assert_not_null(w);
  cr_expect_eq(w->kind, Q8_TENSOR_INITIALIZER);
  cr_expect_eq(q8_tensor_elements(w), W_ELEMENTS);
  cr_assert_eq(w->data_bytes, W_ELEMENTS * 4);
  cr_expect_eq(((unsigned char *)w->data)[5], 35, "raw_data copied as is");

  const q8_tensor *b = q8_graph_find_tensor(g, "B");
  cr_assert_eq(b->data_bytes, 16 * 4);
  cr_expect_eq(((float *)b->data)[2], 1.5f, "float_data decoded");
  const q8_tensor *q = q8_graph_find_tensor(g, "Q");
  cr_assert_eq(q->type, Q8_ELEM_INT8);
  cr_assert_eq(q->data_bytes, 4);
  cr_expect_eq(((int8_t *)q->data)[0], -128, "int32_data narrowed to int8");
  cr_expect_eq(((int8_t *)q->data)[3], 127);

  const q8_node *conv = &g->nodes[0];
  cr_expect_str_eq(conv->op_type, "Conv");
  cr_expect_str_eq(conv->name, "conv1");
  cr_expect_str_eq(conv->domain, "");
  cr_assert_eq(conv->n_inputs, 3);
  cr_expect_eq(conv->inputs[1], q8_graph_tensor_index(g, "W"));
  const q8_tensor *c = &g->tensors[conv->outputs[0]];
  cr_expect_eq(c->producer, 0);
  cr_expect_eq(c->rank, 4, "shape from value_info");
  cr_expect_eq(g->tensors[g->outputs[0]].producer, 1);
  cr_expect_eq(q8_graph_tensor_index(g, "nothing"), -1);
  q8_graph_destroy(g);
  q8_graph_destroy(NULL);
}

Test(onnx_load, attribute_getters) {
  const spec s = good_spec();
  q8_graph *g = load_spec(&s, Q8_OK, NULL);
  const q8_node *conv = &g->nodes[0];
  int64_t v = 0;
  cr_expect_eq(q8_node_attr_int(conv, "group", 7, &v), Q8_OK);
  cr_expect_eq(v, 1);
  cr_expect_eq(q8_node_attr_int(conv, "absent", 7, &v), Q8_OK);
  cr_expect_eq(v, 7, "absent gives the default");
  float f = 0;
  cr_expect_eq(q8_node_attr_float(conv, "alpha", 0.25f, &f), Q8_OK);
  cr_expect_eq(f, 0.25f);
  const char *str = NULL;
  cr_expect_eq(q8_node_attr_string(conv, "auto_pad", "NOTSET", &str), Q8_OK);
  cr_expect_str_eq(str, "NOTSET");
  int64_t strides[2], dilations[2];
  cr_expect_eq(q8_node_attr_ints_n(conv, "strides", 2, 1, strides), Q8_OK);
  cr_expect(strides[0] == 2 && strides[1] == 2);
  cr_expect_eq(q8_node_attr_ints_n(conv, "dilations", 2, 1, dilations), Q8_OK);
  cr_expect(dilations[0] == 1 && dilations[1] == 1);

  /* wrong type: named, with both types */
  cr_expect_eq(q8_node_attr_int(conv, "strides", 1, &v), Q8_ERR_FORMAT);
  cr_expect(strstr(q8_error_detail(), "'strides' is INTS, expected INT") != NULL, "%s",
            q8_error_detail());
  cr_expect(strstr(q8_error_detail(), "conv1") != NULL);
  cr_expect_eq(q8_node_attr_float(conv, "group", 1, &f), Q8_ERR_FORMAT);
  const int64_t *ints;
  size_t count;
  cr_expect_eq(q8_node_attr_ints(conv, "group", &ints, &count), Q8_ERR_FORMAT);
  cr_expect_eq(q8_node_attr_string(conv, "pads", "", &str), Q8_ERR_FORMAT);
  const q8_tensor *t;
  cr_expect_eq(q8_node_attr_tensor(conv, "pads", &t), Q8_ERR_FORMAT);
  cr_expect_eq(q8_node_attr_tensor(conv, "value", &t), Q8_OK);
  cr_expect_null(t);
  int64_t pads3[3];
  cr_expect_eq(q8_node_attr_ints_n(conv, "pads", 3, 0, pads3), Q8_ERR_FORMAT);
  cr_expect(strstr(q8_error_detail(), "has 4 values, expected 3") != NULL, "%s", q8_error_detail());
  q8_graph_destroy(g);
}

Test(onnx_load, conv_with_strides_padding_attributes) {
  char *path = path_join(q8t_onnx_testdata_dir(), "node/test_conv_with_strides_padding/model.onnx");
  q8_graph *g = NULL;
  cr_assert_eq(q8_graph_load_file(path, &g), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(g->n_nodes, 1);
  const q8_node *conv = &g->nodes[0];
  cr_expect_str_eq(conv->op_type, "Conv");
  cr_expect_str_eq(conv->name, "Conv_0", "empty name synthesized as op_type_index");
  int64_t strides[2], pads[4], kernel[2];
  cr_assert_eq(q8_node_attr_ints_n(conv, "strides", 2, 1, strides), Q8_OK, "%s", q8_error_detail());
  cr_expect(strides[0] == 2 && strides[1] == 2);
  cr_assert_eq(q8_node_attr_ints_n(conv, "pads", 4, 0, pads), Q8_OK, "%s", q8_error_detail());
  for (int i = 0; i < 4; ++i) cr_expect_eq(pads[i], 1);
  cr_assert_eq(q8_node_attr_ints_n(conv, "kernel_shape", 2, 0, kernel), Q8_OK);
  cr_expect(kernel[0] == 3 && kernel[1] == 3);
  const q8_tensor *y = &g->tensors[g->outputs[0]];
  char shape[64];
  cr_expect_str_eq(q8_tensor_shape_str(y, shape, sizeof shape), "[1,1,4,3]");
  q8_graph_destroy(g);
  free(path);
}

/* A TENSOR attribute decodes to the same tensor as ONNX's expected output. */
Test(onnx_load, constant_tensor_attribute) {
  char *path = path_join(q8t_onnx_testdata_dir(), "node/test_constant/model.onnx");
  char *expected_path = path_join(q8t_onnx_testdata_dir(), "node/test_constant/test_data_set_0/output_0.pb");
  q8_graph *g = NULL;
  cr_assert_eq(q8_graph_load_file(path, &g), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(g->n_nodes, 1);
  const q8_tensor *value = NULL;
  cr_assert_eq(q8_node_attr_tensor(&g->nodes[0], "value", &value), Q8_OK);
  cr_assert_not_null(value);
  cr_expect_eq(value->kind, Q8_TENSOR_CONSTANT);
  q8_tensor expected;
  cr_assert_eq(q8_tensor_load_pb(expected_path, &expected), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(value->type, expected.type);
  cr_expect_eq(value->rank, expected.rank);
  cr_assert_eq(value->data_bytes, expected.data_bytes);
  cr_assert_gt(value->data_bytes, 0);
  cr_expect_eq(memcmp(value->data, expected.data, value->data_bytes), 0);
  int64_t ignored;
  cr_expect_eq(q8_node_attr_int(&g->nodes[0], "value", 0, &ignored), Q8_ERR_FORMAT);
  cr_expect(strstr(q8_error_detail(), "is TENSOR, expected INT") != NULL, "%s", q8_error_detail());
  q8_tensor_free(&expected);
  q8_graph_destroy(g);
  free(expected_path);
  free(path);
}

Test(onnx_load, optional_inputs_and_sorting) {
  spec s = good_spec();
  s.conv_inputs = "x W -"; /* bias omitted */
  s.relu_first = true;
  s.conv_name = NULL;
  q8_graph *g = load_spec(&s, Q8_OK, NULL);
  cr_assert_eq(g->n_nodes, 2);
  cr_expect_str_eq(g->nodes[0].op_type, "Conv", "sorted: producer first");
  cr_expect_str_eq(g->nodes[0].name, "Conv_1", "synthesized from its place in the file");
  cr_expect_eq(g->nodes[0].inputs[2], -1, "omitted optional input");
  cr_expect_eq(g->tensors[g->nodes[0].outputs[0]].producer, 0);
  cr_expect_eq(g->tensors[g->nodes[1].outputs[0]].producer, 1);
  q8_graph_destroy(g);
}

/* ---- errors ------------------------------------------------------------------- */

Test(onnx_load, missing_file_names_path) {
  q8_graph *g = (q8_graph *)0x1;
  cr_expect_eq(q8_graph_load_file("/nonexistent/q8/model.onnx", &g), Q8_ERR_IO);
  cr_expect_null(g);
  cr_expect(strstr(q8_error_detail(), "/nonexistent/q8/model.onnx") != NULL, "%s", q8_error_detail());
  cr_expect(strstr(q8_error_detail(), strerror(ENOENT)) != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_graph_load_file(q8t_onnx_testdata_dir(), &g), Q8_ERR_IO, "a directory: %s",
               q8_error_detail());
  cr_expect_eq(q8_graph_load_file(NULL, &g), Q8_ERR_NULL);
  cr_expect_eq(q8_graph_load_file("x", NULL), Q8_ERR_NULL);
  cr_expect_eq(q8_graph_load_memory(NULL, 10, &g), Q8_ERR_NULL);
  q8_tensor t;
  cr_expect_eq(q8_tensor_load_pb("/nonexistent/q8/input_0.pb", &t), Q8_ERR_IO);
  cr_expect(strstr(q8_error_detail(), "/nonexistent/q8/input_0.pb") != NULL);
  cr_expect_null(t.name);
  q8_tensor_free(&t);
}

Test(onnx_load, empty_file) {
  const char *tmp = getenv("TMPDIR");
  char path[512];
  snprintf(path, sizeof path, "%s/q8_empty_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  const int fd = mkstemp(path);
  cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
  close(fd);
  q8_graph *g = (q8_graph *)0x1;
  cr_expect_eq(q8_graph_load_file(path, &g), Q8_ERR_FORMAT);
  cr_expect_null(g);
  cr_expect(strstr(q8_error_detail(), path) && strstr(q8_error_detail(), "empty"), "%s",
            q8_error_detail());
  q8_tensor t;
  cr_expect_eq(q8_tensor_load_pb(path, &t), Q8_ERR_FORMAT);
  unlink(path);
  cr_expect_eq(q8_graph_load_memory("", 0, &g), Q8_ERR_FORMAT);
  cr_expect(strstr(q8_error_detail(), "truncated or corrupt ONNX file") != NULL, "%s",
            q8_error_detail());
}

Test(onnx_load, random_bytes) {
  q8t_rng rng = q8t_rng_new(501);
  unsigned char bytes[4096];
  size_t corrupt = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const size_t size = (size_t)q8t_range(&rng, 1, sizeof bytes);
    q8t_fill_bytes(&rng, bytes, size);
    q8_graph *g = NULL;
    const q8_status status = q8_graph_load_memory(bytes, size, &g);
    cr_assert_neq(status, Q8_OK, "random bytes are not a model");
    cr_assert(status == Q8_ERR_FORMAT || status == Q8_ERR_UNSUPPORTED, "%s", q8_error_detail());
    corrupt += strstr(q8_error_detail(), "truncated or corrupt ONNX file") != NULL;
  }
  cr_expect_gt(corrupt, 150, "almost all random byte strings fail to parse (%zu/200)", corrupt);
}

Test(onnx_load, initializer_shorter_than_shape) {
  spec s = good_spec();
  s.weight_bytes = W_ELEMENTS * 4 - 4;
  q8_graph *g = load_spec(&s, Q8_ERR_FORMAT,
                          WORDS("initializer 'W'", "2300 bytes", "[16,4,3,3]", "2304 bytes"));
  cr_expect_null(g);
}

Test(onnx_load, unknown_node_input) {
  spec s = good_spec();
  s.relu_input = "nowhere";
  load_spec(&s, Q8_ERR_FORMAT, WORDS("relu1", "Relu", "'nowhere'"));
}

Test(onnx_load, opsets_out_of_range) {
  spec s = good_spec();
  s.opset = 7; /* Conv changed in opset 11 */
  load_spec(&s, Q8_ERR_UNSUPPORTED, WORDS("opset 7", "11..17", "conv1"));
  s.opset = 18;
  load_spec(&s, Q8_ERR_UNSUPPORTED, WORDS("opset 18", "11..17"));
  s.opset = 0;
  load_spec(&s, Q8_ERR_UNSUPPORTED, WORDS("opset 0"));
  s.opset = 17;
  q8_graph_destroy(load_spec(&s, Q8_OK, NULL));
  s.opset = 11;
  q8_graph_destroy(load_spec(&s, Q8_OK, NULL));
}

Test(onnx_load, other_domain_node) {
  spec s = good_spec();
  s.extra_domain = "ai.onnx.ml";
  q8_graph_destroy(load_spec(&s, Q8_OK, NULL)); /* importing it is harmless */
  s.relu_domain = "ai.onnx.ml";
  load_spec(&s, Q8_ERR_UNSUPPORTED, WORDS("relu1", "'ai.onnx.ml'"));
  s.relu_domain = "ai.onnx"; /* the default domain's other spelling */
  q8_graph_destroy(load_spec(&s, Q8_OK, NULL));
}

Test(onnx_load, duplicate_names) {
  spec s = good_spec();
  s.relu_output = "c";
  load_spec(&s, Q8_ERR_FORMAT, WORDS("duplicate output name 'c'", "relu1", "conv1"));
  s = good_spec();
  s.relu_output = "x";
  load_spec(&s, Q8_ERR_FORMAT, WORDS("duplicate output name 'x'", "graph input"));
  s = good_spec();
  s.duplicate_initializer = true;
  load_spec(&s, Q8_ERR_FORMAT, WORDS("'B'"));
}

Test(onnx_load, cycle) {
  spec s = good_spec();
  s.conv_inputs = "y W B"; /* Conv reads Relu's output, Relu reads Conv's */
  s.relu_output = "y";
  load_spec(&s, Q8_ERR_FORMAT, WORDS("cycle", "conv1"));
}

Test(onnx_load, external_data_and_control_flow) {
  spec s = good_spec();
  s.weight_external = true;
  load_spec(&s, Q8_ERR_UNSUPPORTED, WORDS("initializer 'W'", "external"));
  s = good_spec();
  s.if_node = true;
  load_spec(&s, Q8_ERR_UNSUPPORTED, WORDS("'branch'", "then_branch", "control flow"));
}

Test(onnx_load, float64_check_and_cast) {
  spec s = good_spec();
  s.weight_type = ONNX_DOUBLE;
  s.weight_bytes = W_ELEMENTS * 8;
  q8_graph *g = load_spec(&s, Q8_OK, NULL);
  const q8_tensor *w = q8_graph_find_tensor(g, "W");
  cr_assert_eq(w->type, Q8_ELEM_FLOAT64);
  const double first = ((const double *)w->data)[0];
  cr_expect_eq(q8_graph_check_float64(g), Q8_ERR_UNSUPPORTED);
  cr_expect(strstr(q8_error_detail(), "tensor 'W' is float64; rerun with --cast-float64") != NULL,
            "%s", q8_error_detail());
  cr_assert_eq(q8_graph_cast_float64(g), Q8_OK);
  cr_expect_eq(q8_graph_check_float64(g), Q8_OK);
  cr_expect_eq(w->type, Q8_ELEM_FLOAT);
  cr_assert_eq(w->data_bytes, W_ELEMENTS * 4);
  cr_expect_eq(((const float *)w->data)[0], (float)first);
  q8_graph_destroy(g);
  /* a float64 initializer sized for float32 is caught like any other mismatch */
  s.weight_bytes = W_ELEMENTS * 4;
  load_spec(&s, Q8_ERR_FORMAT, WORDS("initializer 'W'", "double"));
}

Test(onnx_load, pb_tensor_errors) {
  q8_tensor t;
  cr_expect_eq(q8_tensor_load_pb_memory("\xff\xff\xff", 3, &t), Q8_ERR_FORMAT);
  cr_expect(strstr(q8_error_detail(), "truncated or corrupt TensorProto") != NULL, "%s",
            q8_error_detail());
  cr_expect_null(t.data);
  pb bad = tensor_pb("t", ONNX_INT32, w_dims, 4); /* no data for 576 elements */
  cr_expect_eq(q8_tensor_load_pb_memory(bad.data, bad.len, &t), Q8_ERR_FORMAT);
  cr_expect(strstr(q8_error_detail(), "tensor 't'") && strstr(q8_error_detail(), "576"), "%s",
            q8_error_detail());
  free(bad.data);
  pb good = tensor_pb("i32", ONNX_INT32, (const int64_t[]){2}, 1);
  pb ints = {0};
  pb_varint(&ints, (uint64_t)(int64_t)-5);
  pb_varint(&ints, 9);
  pb_msg(&good, 5, &ints);
  cr_assert_eq(q8_tensor_load_pb_memory(good.data, good.len, &t), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(t.kind, Q8_TENSOR_CONSTANT);
  cr_expect_eq(((int32_t *)t.data)[0], -5);
  cr_expect_eq(((int32_t *)t.data)[1], 9);
  q8_tensor_free(&t);
  q8_tensor_free(NULL);
  free(good.data);
}

/* ---- ONNX's node tests -------------------------------------------------------- */

/* The operators q8's float and int8 executors will run. */
static const char *const node_prefixes[] = {
    "test_qlinear", "test_quantizelinear", "test_dequantizelinear", "test_dynamicquantizelinear",
    "test_convinteger", "test_matmulinteger", "test_conv", "test_gemm", "test_matmul",
    "test_batchnorm", "test_relu", "test_maxpool", "test_averagepool", "test_globalaveragepool",
    "test_softmax", "test_flatten", "test_reshape", "test_transpose", "test_concat", "test_add",
    "test_mul", "test_sigmoid", "test_tanh", "test_clip", "test_leakyrelu",
};

static bool wanted(const char *name) {
  for (size_t i = 0; i < sizeof node_prefixes / sizeof node_prefixes[0]; ++i) {
    if (strncmp(name, node_prefixes[i], strlen(node_prefixes[i])) == 0) return true;
  }
  return false;
}

/* A .pb tensor against the graph's declaration: same type, and the same
 * size wherever the declaration knows it. Returns false with a message. */
static bool matches_declaration(const q8_tensor *pb_tensor, const q8_tensor *declared,
                                const char *path) {
  char have[128], want[128];
  q8_tensor_shape_str(pb_tensor, have, sizeof have);
  q8_tensor_shape_str(declared, want, sizeof want);
  if (declared->type != Q8_ELEM_UNDEFINED && pb_tensor->type != declared->type) {
    cr_log_error("%s: %s, graph declares %s", path, q8_elem_type_name(pb_tensor->type),
                 q8_elem_type_name(declared->type));
    return false;
  }
  bool ok = declared->rank < 0 || declared->rank == pb_tensor->rank;
  for (int d = 0; ok && d < declared->rank; ++d) {
    ok = declared->dims[d] < 0 || declared->dims[d] == pb_tensor->dims[d];
  }
  if (!ok) cr_log_error("%s: shape %s, graph declares %s", path, have, want);
  const int64_t elements = q8_tensor_elements(pb_tensor);
  if (ok && elements >= 0 && q8_elem_size(pb_tensor->type) * (size_t)elements != pb_tensor->data_bytes) {
    cr_log_error("%s: %zu data bytes for shape %s", path, pb_tensor->data_bytes, have);
    ok = false;
  }
  return ok;
}

/* Checks input_K.pb / output_K.pb of every test_data_set_N in dir against
 * the graph; returns how many tensors were checked. */
static size_t check_test_data(const q8_graph *g, const char *dir, size_t *mismatches) {
  size_t n_sets, checked = 0;
  char **sets = list_dir(dir, "test_data_set_", &n_sets);
  for (size_t s = 0; s < n_sets; ++s) {
    char *set = path_join(dir, sets[s]);
    for (int output = 0; output <= 1; ++output) {
      const size_t declared = output ? g->n_outputs : g->n_inputs;
      for (size_t k = 0;; ++k) {
        char file[64];
        snprintf(file, sizeof file, "%s_%zu.pb", output ? "output" : "input", k);
        char *path = path_join(set, file);
        const bool exists = q8t_is_file(path);
        if (!exists || k >= declared) {
          if (exists || k < declared) {
            cr_log_error("%s: %zu %s declared, %s.pb %s", set, declared,
                         output ? "outputs" : "inputs", file, exists ? "exists" : "missing");
            ++*mismatches;
          }
          free(path);
          break;
        }
        q8_tensor t;
        const q8_status status = q8_tensor_load_pb(path, &t);
        if (status != Q8_OK) {
          cr_log_error("%s", q8_error_detail());
          ++*mismatches;
        } else {
          const int32_t index = output ? g->outputs[k] : g->inputs[k];
          *mismatches += !matches_declaration(&t, &g->tensors[index], path);
          ++checked;
        }
        q8_tensor_free(&t);
        free(path);
      }
    }
    free(set);
  }
  free_list(sets);
  return checked;
}

Test(onnx_load, node_tests_load_with_their_data, .timeout = 120) {
  char *node_dir = path_join(q8t_onnx_testdata_dir(), "node");
  size_t n_dirs;
  char **dirs = list_dir(node_dir, "test_", &n_dirs);
  size_t models = 0, loaded = 0, old_opset = 0, unexplained = 0, tensors = 0, mismatches = 0;
  for (size_t i = 0; i < n_dirs; ++i) {
    if (!wanted(dirs[i])) continue;
    char *dir = path_join(node_dir, dirs[i]);
    char *model = path_join(dir, "model.onnx");
    if (!q8t_is_file(model)) {
      free(model);
      free(dir);
      continue;
    }
    ++models;
    q8_graph *g = NULL;
    const q8_status status = q8_graph_load_file(model, &g);
    if (status == Q8_OK) {
      ++loaded;
      cr_expect_geq(g->n_nodes, 1, "%s", model);
      tensors += check_test_data(g, dir, &mismatches);
    } else if (status == Q8_ERR_UNSUPPORTED && strstr(q8_error_detail(), "opset") != NULL) {
      /* Documented: an opset q8 does not implement (below 11 with an
       * operator that changed since, or above 17). */
      ++old_opset;
      cr_log_info("not loaded (opset): %s", q8_error_detail());
    } else {
      ++unexplained;
      cr_log_error("%s: %s", q8_status_str(status), q8_error_detail());
    }
    q8_graph_destroy(g);
    free(model);
    free(dir);
  }
  cr_log_info("node tests: %zu models, %zu loaded, %zu refused for their opset, %zu other "
              "failures; %zu .pb tensors matched their declarations, %zu mismatches",
              models, loaded, old_opset, unexplained, tensors, mismatches);
  cr_expect_geq(models, 150, "libonnx-testdata 1.12 has 156 such models");
  cr_expect_eq(unexplained, 0);
  cr_expect_leq(old_opset, 2, "only ConvTranspose's opset-8 test is expected");
  cr_expect_eq(mismatches, 0);
  cr_expect_gt(tensors, 300);
  free_list(dirs);
  free(node_dir);
}

/* Whatever ONNX ships (every node, simple, pytorch test model) loads or
 * fails with FORMAT/UNSUPPORTED and a message: none crashes or leaks. */
Test(onnx_load, every_testdata_model_loads_or_explains, .timeout = 120) {
  const char *groups[] = {"node", "simple", "pytorch-converted", "pytorch-operator", "real"};
  size_t total = 0, loaded = 0;
  for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; ++gi) {
    char *group = path_join(q8t_onnx_testdata_dir(), groups[gi]);
    if (!q8t_is_dir(group)) {
      free(group);
      continue;
    }
    size_t n;
    char **dirs = list_dir(group, "", &n);
    for (size_t i = 0; i < n; ++i) {
      char *dir = path_join(group, dirs[i]);
      char *model = path_join(dir, "model.onnx");
      struct stat st;
      if (stat(model, &st) == 0 && st.st_size < (16 << 20)) {
        ++total;
        q8_graph *g = NULL;
        const q8_status status = q8_graph_load_file(model, &g);
        loaded += status == Q8_OK;
        cr_expect(status == Q8_OK || status == Q8_ERR_UNSUPPORTED || status == Q8_ERR_FORMAT,
                  "%s: %s", q8_status_str(status), q8_error_detail());
        cr_expect(status == Q8_OK || q8_error_detail()[0] != '\0');
        q8_graph_destroy(g);
      }
      free(model);
      free(dir);
    }
    free_list(dirs);
    free(group);
  }
  cr_log_info("all libonnx-testdata models: %zu of %zu load", loaded, total);
  cr_expect_gt(total, 1000);
}

/* ---- fuzz ------------------------------------------------------------------------ */

typedef struct fuzz_counts {
  size_t ok, format, unsupported;
} fuzz_counts;

static void load_and_count(const unsigned char *bytes, size_t size, fuzz_counts *counts) {
  q8_graph *g = (q8_graph *)0x1;
  const q8_status status = q8_graph_load_memory(bytes, size, &g);
  if (status == Q8_OK) {
    ++counts->ok;
    /* Touch what a pass would: every tensor, node and attribute. */
    for (size_t n = 0; n < g->n_nodes; ++n) {
      for (size_t i = 0; i < g->nodes[n].n_inputs; ++i) {
        const int32_t t = g->nodes[n].inputs[i];
        cr_assert(t >= -1 && t < (int32_t)g->n_tensors);
        if (t >= 0) cr_assert(g->tensors[t].producer < (int32_t)n, "topological order");
      }
    }
    for (size_t i = 0; i < g->n_tensors; ++i) {
      char shape[160];
      q8_tensor_shape_str(&g->tensors[i], shape, sizeof shape);
      q8_tensor_elements(&g->tensors[i]);
    }
    q8_graph_check_float64(g);
    q8_graph_cast_float64(g);
    q8_graph_destroy(g);
    return;
  }
  cr_assert_null(g);
  cr_assert(status == Q8_ERR_FORMAT || status == Q8_ERR_UNSUPPORTED, "%s: %s",
            q8_status_str(status), q8_error_detail());
  cr_assert(q8_error_detail()[0] != '\0', "an error always says why");
  if (status == Q8_ERR_FORMAT) ++counts->format;
  else ++counts->unsupported;
}

/* Every prefix 0..size-1, then 2000 single-byte corruptions (fixed seed). */
static void fuzz_model(const unsigned char *bytes, size_t size, const char *what, uint64_t stream) {
  q8_graph *g = NULL;
  cr_assert_eq(q8_graph_load_memory(bytes, size, &g), Q8_OK, "%s: %s", what, q8_error_detail());
  q8_graph_destroy(g);
  fuzz_counts truncated = {0}, corrupted = {0};
  for (size_t len = 0; len < size; ++len) {
    /* A copy of exactly len bytes, so ASan sees any read past the end. */
    unsigned char *prefix = malloc(len ? len : 1);
    memcpy(prefix, bytes, len);
    load_and_count(prefix, len, &truncated);
    free(prefix);
  }
  q8t_rng rng = q8t_rng_new(stream);
  unsigned char *copy = malloc(size);
  for (int trial = 0; trial < 2000; ++trial) {
    memcpy(copy, bytes, size);
    const size_t at = (size_t)q8t_range(&rng, 0, (int32_t)size - 1);
    copy[at] = (unsigned char)q8t_range(&rng, 0, 255);
    load_and_count(copy, size, &corrupted);
  }
  free(copy);
  cr_log_info("%s (%zu bytes): truncations %zu ok / %zu corrupt / %zu unsupported; "
              "corruptions %zu / %zu / %zu", what, size, truncated.ok, truncated.format,
              truncated.unsupported, corrupted.ok, corrupted.format, corrupted.unsupported);
  cr_expect_gt(truncated.format, size / 2, "most prefixes are reported as corrupt");
}

static void fuzz_file(const char *relative, uint64_t stream) {
  char *path = path_join(q8t_onnx_testdata_dir(), relative);
  size_t size;
  unsigned char *bytes = read_all(path, &size);
  fuzz_model(bytes, size, relative, stream);
  free(bytes);
  free(path);
}

Test(onnx_fuzz, qlinearconv, .timeout = 120) { fuzz_file("node/test_qlinearconv/model.onnx", 1); }

/* 6.6 KB, 30 nodes, Constant nodes with TENSOR attributes, opset 17. */
Test(onnx_fuzz, layer_normalization_expanded, .timeout = 120) {
  fuzz_file("node/test_layer_normalization_3d_axis0_epsilon_expanded/model.onnx", 2);
}

/* The built conv model: initializers in raw_data, float_data and int32_data. */
Test(onnx_fuzz, built_conv_model, .timeout = 120) {
  const spec s = good_spec();
  pb model = build_model(&s);
  fuzz_model(model.data, model.len, "built conv model", 3);
  free(model.data);
}

Test(onnx_fuzz, pb_tensor_truncations) {
  char *path = path_join(q8t_onnx_testdata_dir(), "node/test_qlinearconv/test_data_set_0/input_0.pb");
  size_t size;
  unsigned char *bytes = read_all(path, &size);
  q8_tensor t;
  cr_assert_eq(q8_tensor_load_pb_memory(bytes, size, &t), Q8_OK, "%s", q8_error_detail());
  q8_tensor_free(&t);
  for (size_t len = 0; len < size; ++len) {
    unsigned char *prefix = malloc(len ? len : 1);
    memcpy(prefix, bytes, len);
    const q8_status status = q8_tensor_load_pb_memory(prefix, len, &t);
    cr_expect(status == Q8_OK || status == Q8_ERR_FORMAT || status == Q8_ERR_UNSUPPORTED,
              "%s", q8_error_detail());
    if (status != Q8_OK) cr_expect_null(t.data);
    q8_tensor_free(&t);
    free(prefix);
  }
  free(bytes);
  free(path);
}
