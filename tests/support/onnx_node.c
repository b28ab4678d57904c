#define _POSIX_C_SOURCE 200809L /* opendir, strdup */
#include "tests/support/onnx_node.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "quant/exec_ops.h"
#include "tests/support/q8test.h"

static const char *node_dir(void) {
  static char dir[1024];
  snprintf(dir, sizeof dir, "%s/node", q8t_onnx_testdata_dir());
  return dir;
}

const char *const q8t_quant_op_prefixes[] = {
    "test_quantizelinear", "test_dequantizelinear", "test_dynamicquantizelinear", "test_qlinearconv",
    "test_qlinearmatmul",  "test_convinteger",      "test_matmulinteger",
};
const size_t q8t_n_quant_op_prefixes = sizeof q8t_quant_op_prefixes / sizeof q8t_quant_op_prefixes[0];

bool q8t_has_prefix(const char *name, const char *const *prefixes, size_t n_prefixes) {
  for (size_t i = 0; i < n_prefixes; ++i) {
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
  }
  return false;
}

char **q8t_node_tests(const char *const *prefixes, size_t n_prefixes, size_t *count, const char **error) {
  *count = 0;
  DIR *d = opendir(node_dir());
  if (!d) {
    static char why[1200];
    snprintf(why, sizeof why, "%s: %s (install libonnx-testdata or set Q8_ONNX_TESTDATA)", node_dir(), strerror(errno));
    if (error) *error = why;
    return NULL;
  }
  size_t cap = 64;
  char **names = malloc(cap * sizeof *names);
  for (struct dirent *e; names && (e = readdir(d)) != NULL;) {
    if (!q8t_has_prefix(e->d_name, prefixes, n_prefixes)) continue;
    if (*count == cap) names = realloc(names, (cap *= 2) * sizeof *names);
    if (names) names[(*count)++] = strdup(e->d_name);
  }
  closedir(d);
  if (names) qsort(names, *count, sizeof *names, q8t_compare_names);
  return names;
}

void q8t_names_free(char **names, size_t count) {
  for (size_t i = 0; names && i < count; ++i) free(names[i]);
  free(names);
}

bool q8t_same_type_and_shape(const q8_float_tensor *got, const q8_tensor *want, char *why, size_t size) {
  bool same = got->rank == want->rank && got->type == want->type;
  for (int d = 0; same && d < got->rank; ++d) same = got->dims[d] == want->dims[d];
  if (!same) {
    char a[160], b[160];
    q8_tensor g = {.rank = got->rank};
    for (int d = 0; d < got->rank; ++d) g.dims[d] = got->dims[d];
    snprintf(why, size, "output '%s' is %s %s, expected %s %s", got->name, q8_elem_type_name(got->type),
             q8_tensor_shape_str(&g, a, sizeof a), q8_elem_type_name(want->type), q8_tensor_shape_str(want, b, sizeof b));
  }
  return same;
}

/* One test_data_set: 1 match, 0 skipped input type, -1 failure. */
static int run_set(q8_float_session *session, const q8_graph *graph, const char *set_dir, unsigned input_types,
                   q8t_output_match match, char *why, size_t size) {
  q8_tensor pb[2][Q8_MAX_RANK];
  memset(pb, 0, sizeof pb);
  q8_float_tensor inputs[Q8_MAX_RANK], outputs[Q8_MAX_RANK];
  const size_t n[2] = {graph->n_inputs, graph->n_outputs};
  int result = n[0] <= Q8_MAX_RANK && n[1] <= Q8_MAX_RANK ? 1 : -1;
  if (result < 0) snprintf(why, size, "more than %d inputs or outputs", Q8_MAX_RANK);
  for (size_t io = 0; io < 2 && result == 1; ++io) {
    for (size_t k = 0; k < n[io] && result == 1; ++k) {
      char path[2304]; /* set_dir (< 2048) and the file name */
      snprintf(path, sizeof path, "%s/%s_%zu.pb", set_dir, io ? "output" : "input", k);
      if (q8_tensor_load_pb(path, &pb[io][k])) {
        snprintf(why, size, "%s", q8_error_detail());
        result = -1;
      } else if (!io && !(input_types & Q8_EXEC_TYPE(pb[io][k].type))) {
        snprintf(why, size, "input %zu is %s", k, q8_elem_type_name(pb[io][k].type));
        result = 0;
      } else if (!io) {
        /* input_K.pb is the K-th graph input, whatever name the file holds. */
        const q8_tensor *t = &pb[io][k];
        inputs[k] = (q8_float_tensor){.name = graph->tensors[graph->inputs[k]].name, .type = t->type,
                                      .rank = t->rank, .data = t->data};
        for (int d = 0; d < t->rank; ++d) inputs[k].dims[d] = t->dims[d];
      }
    }
  }
  if (result == 1 && q8_float_session_run(session, inputs, n[0], outputs, n[1])) {
    snprintf(why, size, "%s", q8_error_detail());
    result = -1;
  }
  for (size_t k = 0; result == 1 && k < n[1]; ++k) {
    if (!q8t_same_type_and_shape(&outputs[k], &pb[1][k], why, size) || !match(&outputs[k], &pb[1][k], why, size)) {
      result = -1;
    }
  }
  for (size_t k = 0; k < Q8_MAX_RANK; ++k) q8_tensor_free(&pb[0][k]), q8_tensor_free(&pb[1][k]);
  return result;
}

int q8t_node_test_run(const char *name, unsigned input_types, q8t_output_match match, char *why, size_t size) {
  char dir[1536], path[2048];
  snprintf(dir, sizeof dir, "%s/%s", node_dir(), name);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  q8_graph *graph = NULL;
  if (q8_graph_load_file(path, &graph)) {
    snprintf(why, size, "loader: %s", q8_error_detail());
    return 0;
  }
  q8_float_session *session = NULL;
  const q8_status st = q8_float_session_create(graph, &session);
  if (st) {
    snprintf(why, size, "%s", q8_error_detail());
    q8_graph_destroy(graph);
    return st == Q8_ERR_UNSUPPORTED ? 0 : -1;
  }
  int result = 1, sets = 0;
  for (; result == 1; ++sets) {
    snprintf(path, sizeof path, "%s/test_data_set_%d", dir, sets);
    if (!q8t_is_dir(path)) break;
    result = run_set(session, graph, path, input_types, match, why, size);
  }
  if (result == 1 && sets == 0) {
    snprintf(why, size, "no test_data_set_N");
    result = -1;
  }
  q8_float_session_destroy(session);
  q8_graph_destroy(graph);
  return result;
}
