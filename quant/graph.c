/* The graph IR's helpers: type names, lookups, attribute getters, the
 * float64 check and cast, and freeing. Independent of ONNX's protobuf. */
#include "quant/graph.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"

const char *q8_elem_type_name(q8_elem_type type) {
  switch (type) {
    case Q8_ELEM_UNDEFINED: return "undefined";
    case Q8_ELEM_FLOAT: return "float";
    case Q8_ELEM_UINT8: return "uint8";
    case Q8_ELEM_INT8: return "int8";
    case Q8_ELEM_UINT16: return "uint16";
    case Q8_ELEM_INT16: return "int16";
    case Q8_ELEM_INT32: return "int32";
    case Q8_ELEM_INT64: return "int64";
    case Q8_ELEM_STRING: return "string";
    case Q8_ELEM_BOOL: return "bool";
    case Q8_ELEM_FLOAT16: return "float16";
    case Q8_ELEM_FLOAT64: return "double";
    case Q8_ELEM_UINT32: return "uint32";
    case Q8_ELEM_UINT64: return "uint64";
    case Q8_ELEM_COMPLEX64: return "complex64";
    case Q8_ELEM_COMPLEX128: return "complex128";
    case Q8_ELEM_BFLOAT16: return "bfloat16";
  }
  return "unknown";
}

size_t q8_elem_size(q8_elem_type type) {
  switch (type) {
    case Q8_ELEM_UINT8: case Q8_ELEM_INT8: case Q8_ELEM_BOOL: return 1;
    case Q8_ELEM_UINT16: case Q8_ELEM_INT16: case Q8_ELEM_FLOAT16: case Q8_ELEM_BFLOAT16: return 2;
    case Q8_ELEM_FLOAT: case Q8_ELEM_INT32: case Q8_ELEM_UINT32: return 4;
    case Q8_ELEM_INT64: case Q8_ELEM_UINT64: case Q8_ELEM_FLOAT64: case Q8_ELEM_COMPLEX64: return 8;
    case Q8_ELEM_COMPLEX128: return 16;
    case Q8_ELEM_UNDEFINED: case Q8_ELEM_STRING: return 0;
  }
  return 0;
}

const char *q8_attr_type_name(q8_attr_type type) {
  switch (type) {
    case Q8_ATTR_FLOAT: return "FLOAT";
    case Q8_ATTR_INT: return "INT";
    case Q8_ATTR_STRING: return "STRING";
    case Q8_ATTR_TENSOR: return "TENSOR";
    case Q8_ATTR_FLOATS: return "FLOATS";
    case Q8_ATTR_INTS: return "INTS";
    case Q8_ATTR_STRINGS: return "STRINGS";
  }
  return "unknown";
}

/* ---- building and freeing --------------------------------------------------- */

char *q8_str_dup_n(const char *s, size_t len) {
  char *copy = malloc(len + 1);
  if (copy == NULL) return NULL;
  if (len > 0) memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *q8_str_dup(const char *s) { return s ? q8_str_dup_n(s, strlen(s)) : q8_str_dup_n("", 0); }

void q8_tensor_free(q8_tensor *tensor) {
  if (tensor == NULL) return;
  free(tensor->name);
  free(tensor->data);
  *tensor = (q8_tensor){.rank = -1, .producer = -1};
}

void q8_attr_free(q8_attr *attr) {
  if (attr == NULL) return;
  free(attr->name);
  free(attr->s);
  free(attr->ints);
  free(attr->floats);
  if (attr->strings != NULL) {
    for (size_t i = 0; i < attr->count; ++i) free(attr->strings[i]);
    free(attr->strings);
  }
  if (attr->tensor != NULL) {
    q8_tensor_free(attr->tensor);
    free(attr->tensor);
  }
  *attr = (q8_attr){0};
}

void q8_node_free(q8_node *node) {
  if (node == NULL) return;
  free(node->op_type);
  free(node->name);
  free(node->domain);
  free(node->inputs);
  free(node->outputs);
  if (node->attrs != NULL) {
    for (size_t i = 0; i < node->n_attrs; ++i) q8_attr_free(&node->attrs[i]);
    free(node->attrs);
  }
  *node = (q8_node){0};
}

/* Tolerates a graph the loader abandoned half-built: counts only cover what
 * was filled in. */
void q8_graph_destroy(q8_graph *graph) {
  if (graph == NULL) return;
  if (graph->tensors != NULL) {
    for (size_t i = 0; i < graph->n_tensors; ++i) q8_tensor_free(&graph->tensors[i]);
    free(graph->tensors);
  }
  if (graph->nodes != NULL) {
    for (size_t i = 0; i < graph->n_nodes; ++i) q8_node_free(&graph->nodes[i]);
    free(graph->nodes);
  }
  free(graph->inputs);
  free(graph->outputs);
  free(graph->name);
  free(graph->producer_name);
  free(graph);
}

/* ---- lookups ---------------------------------------------------------------- */

int32_t q8_graph_tensor_index(const q8_graph *graph, const char *name) {
  if (graph == NULL || name == NULL) return -1;
  for (size_t i = 0; i < graph->n_tensors; ++i) {
    if (strcmp(graph->tensors[i].name, name) == 0) return (int32_t)i;
  }
  return -1;
}

const q8_tensor *q8_graph_find_tensor(const q8_graph *graph, const char *name) {
  const int32_t index = q8_graph_tensor_index(graph, name);
  return index < 0 ? NULL : &graph->tensors[index];
}

bool q8_tensor_shape_static(const q8_tensor *tensor) {
  if (tensor->rank < 0) return false;
  for (int d = 0; d < tensor->rank; ++d) {
    if (tensor->dims[d] < 0) return false;
  }
  return true;
}

int64_t q8_tensor_elements(const q8_tensor *tensor) {
  if (!q8_tensor_shape_static(tensor)) return -1;
  int64_t count = 1;
  for (int d = 0; d < tensor->rank; ++d) {
    if (tensor->dims[d] != 0 && count > INT64_MAX / tensor->dims[d]) return -1;
    count *= tensor->dims[d];
  }
  return count;
}

char *q8_tensor_shape_str(const q8_tensor *tensor, char *buf, size_t size) {
  if (size == 0) return buf;
  if (tensor->rank < 0) {
    snprintf(buf, size, "[?]");
    return buf;
  }
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < tensor->rank && used < size; ++d) {
    used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld",
                             (long long)tensor->dims[d]);
  }
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

/* ---- attributes ------------------------------------------------------------- */

const q8_attr *q8_node_attr(const q8_node *node, const char *name) {
  if (node == NULL || name == NULL) return NULL;
  for (size_t i = 0; i < node->n_attrs; ++i) {
    if (strcmp(node->attrs[i].name, name) == 0) return &node->attrs[i];
  }
  return NULL;
}

/* The attribute if present with the expected type; *status says whether a
 * present one had another type. */
static const q8_attr *typed_attr(const q8_node *node, const char *name, q8_attr_type expected,
                                 q8_status *status) {
  *status = Q8_OK;
  const q8_attr *attr = q8_node_attr(node, name);
  if (attr == NULL || attr->type == expected) return attr;
  *status = q8_fail(Q8_ERR_FORMAT, "node '%s' (%s): attribute '%s' is %s, expected %s", node->name,
                    node->op_type, name, q8_attr_type_name(attr->type),
                    q8_attr_type_name(expected));
  return NULL;
}

q8_status q8_node_attr_int(const q8_node *node, const char *name, int64_t default_value,
                           int64_t *value) {
  q8_status status;
  const q8_attr *attr = typed_attr(node, name, Q8_ATTR_INT, &status);
  *value = attr ? attr->i : default_value;
  return status;
}

q8_status q8_node_attr_float(const q8_node *node, const char *name, float default_value,
                             float *value) {
  q8_status status;
  const q8_attr *attr = typed_attr(node, name, Q8_ATTR_FLOAT, &status);
  *value = attr ? attr->f : default_value;
  return status;
}

q8_status q8_node_attr_string(const q8_node *node, const char *name,
                              const char *default_value, const char **value) {
  q8_status status;
  const q8_attr *attr = typed_attr(node, name, Q8_ATTR_STRING, &status);
  *value = attr ? attr->s : default_value;
  return status;
}

q8_status q8_node_attr_ints(const q8_node *node, const char *name, const int64_t **values,
                            size_t *count) {
  q8_status status;
  const q8_attr *attr = typed_attr(node, name, Q8_ATTR_INTS, &status);
  *values = attr ? attr->ints : NULL;
  *count = attr ? attr->count : 0;
  return status;
}

q8_status q8_node_attr_floats(const q8_node *node, const char *name, const float **values,
                              size_t *count) {
  q8_status status;
  const q8_attr *attr = typed_attr(node, name, Q8_ATTR_FLOATS, &status);
  *values = attr ? attr->floats : NULL;
  *count = attr ? attr->count : 0;
  return status;
}

q8_status q8_node_attr_ints_n(const q8_node *node, const char *name, size_t count,
                              int64_t default_each, int64_t *out) {
  const int64_t *values;
  size_t present;
  const q8_status status = q8_node_attr_ints(node, name, &values, &present);
  if (status != Q8_OK) return status;
  if (values == NULL) {
    for (size_t i = 0; i < count; ++i) out[i] = default_each;
    return Q8_OK;
  }
  if (present != count) {
    return q8_fail(Q8_ERR_FORMAT, "node '%s' (%s): attribute '%s' has %zu values, expected %zu",
                   node->name, node->op_type, name, present, count);
  }
  memcpy(out, values, count * sizeof *out);
  return Q8_OK;
}

q8_status q8_node_attr_tensor(const q8_node *node, const char *name, const q8_tensor **tensor) {
  q8_status status;
  const q8_attr *attr = typed_attr(node, name, Q8_ATTR_TENSOR, &status);
  *tensor = attr ? attr->tensor : NULL;
  return status;
}

/* ---- float64 ---------------------------------------------------------------- */

/* Calls visit on every tensor of the graph, TENSOR attributes included;
 * stops at the first non-OK status. */
static q8_status for_each_tensor(q8_graph *graph, q8_status (*visit)(q8_tensor *)) {
  for (size_t i = 0; i < graph->n_tensors; ++i) {
    const q8_status status = visit(&graph->tensors[i]);
    if (status != Q8_OK) return status;
  }
  for (size_t n = 0; n < graph->n_nodes; ++n) {
    const q8_node *node = &graph->nodes[n];
    for (size_t a = 0; a < node->n_attrs; ++a) {
      if (node->attrs[a].tensor == NULL) continue;
      const q8_status status = visit(node->attrs[a].tensor);
      if (status != Q8_OK) return status;
    }
  }
  return Q8_OK;
}

static q8_status refuse_float64(q8_tensor *tensor) {
  if (tensor->type != Q8_ELEM_FLOAT64) return Q8_OK;
  return q8_fail(Q8_ERR_UNSUPPORTED,
                 "tensor '%s' is float64; rerun with --cast-float64 (q8 computes in float32)",
                 tensor->name);
}

q8_status q8_graph_check_float64(const q8_graph *graph) {
  if (graph == NULL) return q8_fail(Q8_ERR_NULL, "graph is NULL");
  /* The visitor does not write here; the cast is what needs it mutable. */
  return for_each_tensor((q8_graph *)graph, refuse_float64);
}

/* Round to nearest like an IEEE conversion, but without the undefined
 * behaviour C gives a double beyond float's range: those become +-inf, or
 * +-FLT_MAX below the rounding midpoint. */
static float narrow_double(double v) {
  const double midpoint = 0x1.ffffffp+127; /* FLT_MAX + half an ulp: ties go to inf (even) */
  if (v >= midpoint) return INFINITY;
  if (v <= -midpoint) return -INFINITY;
  if (v > FLT_MAX) return FLT_MAX;
  if (v < -FLT_MAX) return -FLT_MAX;
  return (float)v;
}

static q8_status cast_tensor_float64(q8_tensor *tensor) {
  if (tensor->type != Q8_ELEM_FLOAT64) return Q8_OK;
  if (tensor->data != NULL) {
    const size_t count = tensor->data_bytes / sizeof(double);
    float *narrow = malloc(count * sizeof *narrow);
    if (narrow == NULL) {
      return q8_fail(Q8_ERR_NOMEM, "casting tensor '%s' to float32: out of memory", tensor->name);
    }
    const double *wide = tensor->data;
    for (size_t i = 0; i < count; ++i) narrow[i] = narrow_double(wide[i]);
    free(tensor->data);
    tensor->data = narrow;
    tensor->data_bytes = count * sizeof *narrow;
  }
  tensor->type = Q8_ELEM_FLOAT;
  return Q8_OK;
}

/* Operators whose attribute names the element type they create. */
static const struct {
  const char *op_type;
  const char *attr;
} type_creating_ops[] = {
    {"Cast", "to"},          {"EyeLike", "dtype"},           {"RandomNormal", "dtype"},
    {"RandomUniform", "dtype"}, {"RandomNormalLike", "dtype"}, {"RandomUniformLike", "dtype"},
    {"Multinomial", "dtype"},
};

q8_status q8_graph_cast_float64(q8_graph *graph) {
  if (graph == NULL) return q8_fail(Q8_ERR_NULL, "graph is NULL");
  const q8_status status = for_each_tensor(graph, cast_tensor_float64);
  if (status != Q8_OK) return status;
  for (size_t n = 0; n < graph->n_nodes; ++n) {
    q8_node *node = &graph->nodes[n];
    for (size_t k = 0; k < sizeof type_creating_ops / sizeof type_creating_ops[0]; ++k) {
      if (strcmp(node->op_type, type_creating_ops[k].op_type) != 0) continue;
      q8_attr *attr = (q8_attr *)q8_node_attr(node, type_creating_ops[k].attr);
      if (attr != NULL && attr->type == Q8_ATTR_INT && attr->i == Q8_ELEM_FLOAT64) {
        attr->i = Q8_ELEM_FLOAT;
      }
    }
  }
  return Q8_OK;
}
