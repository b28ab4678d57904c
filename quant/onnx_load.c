/* ONNX ModelProto -> q8_graph: decodes with protobuf-c, then checks what
 * every later pass relies on (see quant/graph.h) so they need not. Any byte
 * string gives a graph or an error naming the problem, never a crash: the
 * fuzz tests in tests/test_onnx_load.c hold it to that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "quant/onnx_internal.h"

/* protobuf-c leaves absent optional strings NULL. */
static const char *str_or_empty(const char *s) { return s ? s : ""; }

static bool is_default_domain(const char *domain) {
  return domain == NULL || domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0;
}

typedef struct loader {
  const char *source;        /* path or "ONNX model in memory", first in every message */
  q8_graph *graph;
  size_t tensor_capacity;    /* fixed up front: every tensor has a place to come from */
  int32_t *slots;            /* name -> tensor index, open addressing; -1 empty */
  size_t slot_mask;
} loader;

/* ---- name table --------------------------------------------------------------
 * Models have tens of thousands of tensors; a linear lookup per node input
 * would make loading quadratic. */

static uint64_t name_hash(const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (const unsigned char *c = (const unsigned char *)name; *c; ++c) {
    h = (h ^ *c) * 0x100000001b3ull;
  }
  return h;
}

static int32_t find_tensor(const loader *ld, const char *name) {
  for (size_t slot = name_hash(name) & ld->slot_mask;; slot = (slot + 1) & ld->slot_mask) {
    const int32_t index = ld->slots[slot];
    if (index < 0 || strcmp(ld->graph->tensors[index].name, name) == 0) return index;
  }
}

/* A new tensor called name (not yet in the table, capacity reserved). */
static q8_status add_tensor(loader *ld, const char *name, q8_tensor_kind kind, int32_t *index) {
  q8_graph *g = ld->graph;
  if (g->n_tensors >= ld->tensor_capacity) {
    return q8_fail(Q8_ERR_INTERNAL, "%s: tensor table full", ld->source);
  }
  q8_tensor *t = &g->tensors[g->n_tensors];
  *t = (q8_tensor){.kind = kind, .rank = -1, .producer = -1};
  t->name = q8_str_dup(name);
  if (t->name == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  *index = (int32_t)g->n_tensors++;
  size_t slot = name_hash(name) & ld->slot_mask;
  while (ld->slots[slot] >= 0) slot = (slot + 1) & ld->slot_mask;
  ld->slots[slot] = *index;
  return Q8_OK;
}

/* ---- declared types and shapes (graph inputs, outputs, value_info) ---------- */

static const char *type_case_name(Onnx__TypeProto__ValueCase value_case) {
  switch (value_case) {
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "sequence";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "map";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "optional";
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "sparse tensor";
    default: return "unknown";
  }
}

/* Type and shape of a ValueInfoProto onto t; `what` is "graph input", ... */
static q8_status apply_value_info(const loader *ld, const Onnx__ValueInfoProto *info,
                                  const char *what, q8_tensor *t) {
  const Onnx__TypeProto *type = info->type;
  if (type == NULL || type->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) return Q8_OK;
  if (type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: %s '%s' has type %s; q8 handles tensors only", ld->source,
                   what, t->name, type_case_name(type->value_case));
  }
  const Onnx__TypeProto__Tensor *tensor_type = type->tensor_type;
  if (tensor_type == NULL) return Q8_OK;
  if (tensor_type->has_elem_type && tensor_type->elem_type != Q8_ELEM_UNDEFINED) {
    if (tensor_type->elem_type < 0 || tensor_type->elem_type > Q8_ELEM_BFLOAT16) {
      return q8_fail(Q8_ERR_UNSUPPORTED, "%s: %s '%s' has element type %d, which q8 does not know",
                     ld->source, what, t->name, (int)tensor_type->elem_type);
    }
    t->type = (q8_elem_type)tensor_type->elem_type;
  }
  const Onnx__TensorShapeProto *shape = tensor_type->shape;
  if (shape == NULL) return Q8_OK;
  if (shape->n_dim > Q8_MAX_RANK) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: %s '%s' has rank %zu; q8 handles rank <= %d",
                   ld->source, what, t->name, shape->n_dim, Q8_MAX_RANK);
  }
  t->rank = (int)shape->n_dim;
  for (size_t d = 0; d < shape->n_dim; ++d) {
    const Onnx__TensorShapeProto__Dimension *dim = shape->dim[d];
    /* A symbolic ("batch") or negative size is simply not known until run time. */
    const bool known = dim != NULL && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                       dim->dim_value >= 0;
    t->dims[d] = known ? dim->dim_value : -1;
  }
  return Q8_OK;
}

/* ---- opset ------------------------------------------------------------------ */

static q8_status read_opset(const loader *ld, const Onnx__ModelProto *model) {
  for (size_t i = 0; i < model->n_opset_import; ++i) {
    const Onnx__OperatorSetIdProto *opset = model->opset_import[i];
    if (opset == NULL || !is_default_domain(opset->domain)) continue;
    const int64_t version = opset->has_version ? opset->version : 0;
    /* Below Q8_OPSET_MIN: judged per node (check_old_opset_node). */
    if (version < 1 || version > Q8_OPSET_MAX) {
      return q8_fail(Q8_ERR_UNSUPPORTED,
                     "%s: model uses opset %lld of the default domain (ai.onnx); q8 supports "
                     "opsets %d..%d", ld->source, (long long)version, Q8_OPSET_MIN, Q8_OPSET_MAX);
    }
    ld->graph->opset = version;
    return Q8_OK;
  }
  return q8_fail(Q8_ERR_UNSUPPORTED,
                 "%s: model imports no opset of the default domain (ai.onnx); q8 supports "
                 "opsets %d..%d", ld->source, Q8_OPSET_MIN, Q8_OPSET_MAX);
}

/* Models older than opset 11 load when every operator they use still has,
 * at opset 11, the definition it had at the model's opset: such a model is
 * an opset-11 model in all but its number (the quantized operator tests of
 * ONNX are opset 10, GlobalAveragePool's are opset 1). Each entry is the
 * opset of the operator's last change up to opset 11, from ONNX's frozen
 * history (onnx/defs/operator_sets.h); operators q8 executes only, since an
 * executor rejects the others anyway. Absent: changed in opset 11 (Conv,
 * Gemm, Concat, Clip, Softmax, pools, Flatten, ...) or unknown to q8. */
static const struct {
  const char *op_type;
  int64_t last_change;
} unchanged_since[] = {
    {"Add", 7},           {"BatchNormalization", 9}, {"Cast", 9},           {"ConvInteger", 10},
    {"DequantizeLinear", 10}, {"Div", 7},            {"Dropout", 10},       {"Erf", 9},
    {"Exp", 6},           {"GlobalAveragePool", 1},  {"GlobalMaxPool", 1},  {"Identity", 1},
    {"LeakyRelu", 6},     {"MatMul", 9},             {"MatMulInteger", 10}, {"Mul", 7},
    {"QLinearConv", 10},  {"QLinearMatMul", 10},     {"QuantizeLinear", 10}, {"Relu", 6},
    {"Reshape", 5},       {"Shape", 1},              {"Sigmoid", 6},        {"Sqrt", 6},
    {"Sub", 7},           {"Tanh", 6},               {"Transpose", 1},
};

static q8_status check_old_opset_node(const loader *ld, const q8_node *node) {
  const int64_t opset = ld->graph->opset;
  if (opset >= Q8_OPSET_MIN) return Q8_OK;
  for (size_t i = 0; i < sizeof unchanged_since / sizeof unchanged_since[0]; ++i) {
    if (strcmp(unchanged_since[i].op_type, node->op_type) == 0 &&
        unchanged_since[i].last_change <= opset) {
      return Q8_OK;
    }
  }
  return q8_fail(Q8_ERR_UNSUPPORTED,
                 "%s: model uses opset %lld of the default domain (ai.onnx); q8 supports opsets "
                 "%d..%d, and older ones only for operators defined there as in opset %d, which "
                 "node '%s' (%s) is not; convert the model to a newer opset "
                 "(onnx.version_converter)", ld->source, (long long)opset, Q8_OPSET_MIN,
                 Q8_OPSET_MAX, Q8_OPSET_MIN, node->name, node->op_type);
}

/* ---- initializers and graph inputs ------------------------------------------ */

static q8_status load_initializers(loader *ld, const Onnx__GraphProto *gp) {
  if (gp->n_sparse_initializer > 0) {
    const Onnx__SparseTensorProto *sparse = gp->sparse_initializer[0];
    const char *name = sparse && sparse->values ? str_or_empty(sparse->values->name) : "";
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: sparse initializer '%s' is not supported", ld->source,
                   name);
  }
  q8_graph *g = ld->graph;
  for (size_t i = 0; i < gp->n_initializer; ++i) {
    const Onnx__TensorProto *proto = gp->initializer[i];
    const char *name = proto ? str_or_empty(proto->name) : "";
    if (name[0] == '\0') {
      return q8_fail(Q8_ERR_FORMAT, "%s: initializer %zu has no name", ld->source, i);
    }
    if (find_tensor(ld, name) >= 0) {
      return q8_fail(Q8_ERR_FORMAT, "%s: two initializers are called '%s'", ld->source, name);
    }
    char where[400];
    snprintf(where, sizeof where, "%s: initializer '%s'", ld->source, name);
    q8_tensor decoded;
    const q8_status status = q8_tensor_from_proto(proto, where, &decoded);
    if (status != Q8_OK) return status;
    int32_t index;
    /* The table takes its own copy of the name; the decoded one goes. */
    const q8_status added = add_tensor(ld, name, Q8_TENSOR_INITIALIZER, &index);
    if (added != Q8_OK) {
      q8_tensor_free(&decoded);
      return added;
    }
    q8_tensor *t = &g->tensors[index];
    free(decoded.name);
    decoded.name = t->name;
    decoded.kind = Q8_TENSOR_INITIALIZER;
    *t = decoded;
  }
  return Q8_OK;
}

static q8_status load_inputs(loader *ld, const Onnx__GraphProto *gp) {
  q8_graph *g = ld->graph;
  g->inputs = calloc(gp->n_input ? gp->n_input : 1, sizeof *g->inputs);
  if (g->inputs == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  for (size_t i = 0; i < gp->n_input; ++i) {
    const Onnx__ValueInfoProto *info = gp->input[i];
    const char *name = info ? str_or_empty(info->name) : "";
    if (name[0] == '\0') return q8_fail(Q8_ERR_FORMAT, "%s: graph input %zu has no name", ld->source, i);
    const int32_t existing = find_tensor(ld, name);
    if (existing >= 0 && g->tensors[existing].kind == Q8_TENSOR_INITIALIZER) {
      continue; /* an initializer's default listed as an input: constant */
    }
    if (existing >= 0) {
      return q8_fail(Q8_ERR_FORMAT, "%s: graph input '%s' is listed twice", ld->source, name);
    }
    int32_t index;
    q8_status status = add_tensor(ld, name, Q8_TENSOR_INPUT, &index);
    if (status == Q8_OK) status = apply_value_info(ld, info, "graph input", &g->tensors[index]);
    if (status != Q8_OK) return status;
    g->inputs[g->n_inputs++] = index;
  }
  return Q8_OK;
}

/* ---- nodes ------------------------------------------------------------------ */

/* AttributeProto.type is required since IR version 2, but older writers
 * left it out: the field that is set says what it is. */
static int attribute_type(const Onnx__AttributeProto *a) {
  if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return a->type;
  if (a->has_f) return Q8_ATTR_FLOAT;
  if (a->has_i) return Q8_ATTR_INT;
  if (a->has_s) return Q8_ATTR_STRING;
  if (a->t != NULL) return Q8_ATTR_TENSOR;
  if (a->g != NULL) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
  if (a->n_floats > 0) return Q8_ATTR_FLOATS;
  if (a->n_ints > 0) return Q8_ATTR_INTS;
  if (a->n_strings > 0) return Q8_ATTR_STRINGS;
  if (a->n_graphs > 0) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS;
  return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

/* *copy = a malloc'd copy of count elements (NULL for none); false when out of memory. */
static bool copy_array(void **copy, const void *values, size_t count, size_t elem_size) {
  *copy = NULL;
  if (count == 0) return true;
  *copy = malloc(count * elem_size);
  if (*copy == NULL) return false;
  memcpy(*copy, values, count * elem_size);
  return true;
}

static q8_status decode_attribute(const loader *ld, const q8_node *node,
                                  const Onnx__AttributeProto *a, q8_attr *out) {
  const char *name = str_or_empty(a->name);
  out->name = q8_str_dup(name);
  if (out->name == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  if (name[0] == '\0') {
    return q8_fail(Q8_ERR_FORMAT, "%s: node '%s' (%s) has an attribute without a name",
                   ld->source, node->name, node->op_type);
  }
  const int type = attribute_type(a);
  switch (type) {
    case Q8_ATTR_FLOAT: out->f = a->f; break;
    case Q8_ATTR_INT: out->i = a->i; break;
    case Q8_ATTR_STRING:
      out->s = q8_str_dup_n((const char *)a->s.data, a->s.len);
      out->s_len = a->s.len;
      if (out->s == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
      break;
    case Q8_ATTR_FLOATS:
      out->count = a->n_floats;
      if (!copy_array((void **)&out->floats, a->floats, a->n_floats, sizeof *out->floats)) {
        return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
      }
      break;
    case Q8_ATTR_INTS:
      out->count = a->n_ints;
      if (!copy_array((void **)&out->ints, a->ints, a->n_ints, sizeof *out->ints)) {
        return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
      }
      break;
    case Q8_ATTR_STRINGS:
      if (a->n_strings == 0) break;
      out->strings = calloc(a->n_strings, sizeof *out->strings);
      if (out->strings == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
      for (; out->count < a->n_strings; ++out->count) {
        const ProtobufCBinaryData *s = &a->strings[out->count];
        out->strings[out->count] = q8_str_dup_n((const char *)s->data, s->len);
        if (out->strings[out->count] == NULL) {
          return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
        }
      }
      break;
    case Q8_ATTR_TENSOR: {
      if (a->t == NULL) {
        return q8_fail(Q8_ERR_FORMAT, "%s: node '%s' (%s): TENSOR attribute '%s' has no tensor",
                       ld->source, node->name, node->op_type, name);
      }
      out->tensor = malloc(sizeof *out->tensor);
      if (out->tensor == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
      char where[400];
      snprintf(where, sizeof where, "%s: node '%s' (%s): attribute '%s'", ld->source, node->name,
               node->op_type, name);
      q8_status status = q8_tensor_from_proto(a->t, where, out->tensor);
      if (status != Q8_OK) {
        free(out->tensor);
        out->tensor = NULL;
        return status;
      }
      if (out->tensor->name[0] == '\0') {
        /* Messages about it ("tensor X is float64") need a name. */
        char synthesized[300];
        snprintf(synthesized, sizeof synthesized, "%s.%s", node->name, name);
        char *copy = q8_str_dup(synthesized);
        if (copy == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
        free(out->tensor->name);
        out->tensor->name = copy;
      }
      break;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
      return q8_fail(Q8_ERR_UNSUPPORTED,
                     "%s: node '%s' (%s): attribute '%s' is a subgraph; control flow (If, Loop, "
                     "Scan) is not supported", ld->source, node->name, node->op_type, name);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED:
      return q8_fail(Q8_ERR_FORMAT, "%s: node '%s' (%s): attribute '%s' has no value", ld->source,
                     node->name, node->op_type, name);
    default:
      return q8_fail(Q8_ERR_UNSUPPORTED,
                     "%s: node '%s' (%s): attribute '%s' has type %d (sparse tensor, tensor list "
                     "or type), which q8 does not support", ld->source, node->name, node->op_type,
                     name, type);
  }
  out->type = (q8_attr_type)type;
  return Q8_OK;
}

/* Name, type, domain and attributes of node `index` (inputs and outputs
 * come later, when every producer is known). */
static q8_status decode_node(const loader *ld, const Onnx__NodeProto *np, size_t index,
                             q8_node *node) {
  const char *op_type = str_or_empty(np->op_type);
  const char *name = str_or_empty(np->name);
  char synthesized[160];
  if (name[0] == '\0') {
    snprintf(synthesized, sizeof synthesized, "%.120s_%zu", op_type, index);
    name = synthesized;
  }
  node->op_type = q8_str_dup(op_type);
  node->name = q8_str_dup(name);
  node->domain = q8_str_dup("");
  if (node->op_type == NULL || node->name == NULL || node->domain == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  }
  if (op_type[0] == '\0') {
    return q8_fail(Q8_ERR_FORMAT, "%s: node '%s' has no op_type", ld->source, name);
  }
  if (!is_default_domain(np->domain)) {
    return q8_fail(Q8_ERR_UNSUPPORTED,
                   "%s: node '%s' (%s) is in domain '%s'; q8 runs only the default ONNX domain "
                   "(ai.onnx)", ld->source, name, op_type, np->domain);
  }
  q8_status status = check_old_opset_node(ld, node);
  if (status != Q8_OK) return status;
  if (np->n_attribute > 0) {
    node->attrs = calloc(np->n_attribute, sizeof *node->attrs);
    if (node->attrs == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  }
  for (; node->n_attrs < np->n_attribute; ++node->n_attrs) {
    const Onnx__AttributeProto *a = np->attribute[node->n_attrs];
    if (a == NULL) return q8_fail(Q8_ERR_FORMAT, "%s: node '%s': empty attribute", ld->source, name);
    status = decode_attribute(ld, node, a, &node->attrs[node->n_attrs]);
    if (status != Q8_OK) {
      ++node->n_attrs; /* so that destroy frees the partial attribute */
      return status;
    }
  }
  return Q8_OK;
}

static int32_t *alloc_indices(size_t count) {
  return malloc((count ? count : 1) * sizeof(int32_t));
}

/* Node outputs become tensors; one name produced twice is an error. */
static q8_status add_node_outputs(loader *ld, const Onnx__NodeProto *np, size_t index) {
  q8_graph *g = ld->graph;
  q8_node *node = &g->nodes[index];
  node->outputs = alloc_indices(np->n_output);
  if (node->outputs == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  for (; node->n_outputs < np->n_output; ++node->n_outputs) {
    const char *name = str_or_empty(np->output[node->n_outputs]);
    int32_t tensor = -1;
    if (name[0] != '\0') {
      const int32_t existing = find_tensor(ld, name);
      if (existing >= 0) {
        const q8_tensor *other = &g->tensors[existing];
        char by[200];
        if (other->kind == Q8_TENSOR_VALUE) {
          snprintf(by, sizeof by, "node '%s'", g->nodes[other->producer].name);
        } else {
          snprintf(by, sizeof by, "%s", other->kind == Q8_TENSOR_INPUT ? "a graph input" : "an initializer");
        }
        return q8_fail(Q8_ERR_FORMAT,
                       "%s: duplicate output name '%s': node '%s' (%s) outputs it, and so does %s",
                       ld->source, name, node->name, node->op_type, by);
      }
      const q8_status status = add_tensor(ld, name, Q8_TENSOR_VALUE, &tensor);
      if (status != Q8_OK) return status;
      g->tensors[tensor].producer = (int32_t)index;
    }
    node->outputs[node->n_outputs] = tensor;
  }
  return Q8_OK;
}

static q8_status resolve_node_inputs(loader *ld, const Onnx__NodeProto *np, q8_node *node) {
  node->inputs = alloc_indices(np->n_input);
  if (node->inputs == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  for (; node->n_inputs < np->n_input; ++node->n_inputs) {
    const char *name = str_or_empty(np->input[node->n_inputs]);
    int32_t tensor = -1; /* "" is an omitted optional input */
    if (name[0] != '\0') {
      tensor = find_tensor(ld, name);
      if (tensor < 0) {
        return q8_fail(Q8_ERR_FORMAT,
                       "%s: node '%s' (%s) reads input '%s', which no node, initializer or graph "
                       "input produces", ld->source, node->name, node->op_type, name);
      }
    }
    node->inputs[node->n_inputs] = tensor;
  }
  return Q8_OK;
}

static q8_status load_nodes(loader *ld, const Onnx__GraphProto *gp) {
  q8_graph *g = ld->graph;
  if (gp->n_node > 0) {
    g->nodes = calloc(gp->n_node, sizeof *g->nodes);
    if (g->nodes == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  }
  for (size_t i = 0; i < gp->n_node; ++i) {
    if (gp->node[i] == NULL) return q8_fail(Q8_ERR_FORMAT, "%s: node %zu is empty", ld->source, i);
    g->n_nodes = i + 1; /* before decoding, so destroy frees a partial node */
    q8_status status = decode_node(ld, gp->node[i], i, &g->nodes[i]);
    if (status == Q8_OK) status = add_node_outputs(ld, gp->node[i], i);
    if (status != Q8_OK) return status;
  }
  /* Inputs after every output exists: a file's node order need not be topological. */
  for (size_t i = 0; i < gp->n_node; ++i) {
    const q8_status status = resolve_node_inputs(ld, gp->node[i], &g->nodes[i]);
    if (status != Q8_OK) return status;
  }
  return Q8_OK;
}

/* ---- graph outputs and value_info ------------------------------------------- */

static q8_status load_outputs(loader *ld, const Onnx__GraphProto *gp) {
  q8_graph *g = ld->graph;
  g->outputs = alloc_indices(gp->n_output);
  if (g->outputs == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  for (size_t i = 0; i < gp->n_output; ++i) {
    const Onnx__ValueInfoProto *info = gp->output[i];
    const char *name = info ? str_or_empty(info->name) : "";
    const int32_t index = name[0] ? find_tensor(ld, name) : -1;
    if (index < 0) {
      return q8_fail(Q8_ERR_FORMAT,
                     "%s: graph output '%s' is not produced by any node, initializer or graph input",
                     ld->source, name);
    }
    /* An initializer's shape is its data's; a declaration cannot change it. */
    if (g->tensors[index].kind == Q8_TENSOR_VALUE) {
      const q8_status status = apply_value_info(ld, info, "graph output", &g->tensors[index]);
      if (status != Q8_OK) return status;
    }
    g->outputs[g->n_outputs++] = index;
  }
  return Q8_OK;
}

/* value_info annotates intermediates; a name nothing produces is ignored
 * (it describes nothing q8 will compute). */
static q8_status load_value_info(loader *ld, const Onnx__GraphProto *gp) {
  for (size_t i = 0; i < gp->n_value_info; ++i) {
    const Onnx__ValueInfoProto *info = gp->value_info[i];
    const int32_t index = info && info->name ? find_tensor(ld, info->name) : -1;
    if (index < 0 || ld->graph->tensors[index].kind != Q8_TENSOR_VALUE) continue;
    const q8_status status = apply_value_info(ld, info, "value", &ld->graph->tensors[index]);
    if (status != Q8_OK) return status;
  }
  return Q8_OK;
}

/* ---- topological order ------------------------------------------------------
 * Depth-first from each node in file order, producers first: a file that is
 * already sorted keeps its order exactly. Iterative, because a fuzzed or
 * deep model must not overflow the C stack. */

static q8_status sort_nodes(loader *ld) {
  q8_graph *g = ld->graph;
  const size_t n = g->n_nodes;
  if (n == 0) return Q8_OK;
  enum { UNSEEN = 0, OPEN = 1, DONE = 2 };
  unsigned char *state = calloc(n, 1);
  size_t *stack_node = malloc(n * sizeof *stack_node);
  size_t *stack_input = malloc(n * sizeof *stack_input);
  size_t *order = malloc(n * sizeof *order);
  q8_node *sorted = malloc(n * sizeof *sorted);
  q8_status status = Q8_OK;
  if (!state || !stack_node || !stack_input || !order || !sorted) {
    status = q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  }
  size_t emitted = 0;
  for (size_t root = 0; status == Q8_OK && root < n; ++root) {
    if (state[root] != UNSEEN) continue;
    size_t depth = 0;
    stack_node[depth] = root;
    stack_input[depth++] = 0;
    state[root] = OPEN;
    while (depth > 0 && status == Q8_OK) {
      const size_t v = stack_node[depth - 1];
      const q8_node *node = &g->nodes[v];
      if (stack_input[depth - 1] == node->n_inputs) {
        state[v] = DONE;
        order[emitted++] = v;
        --depth;
        continue;
      }
      const int32_t input = node->inputs[stack_input[depth - 1]++];
      const int32_t producer = input >= 0 ? g->tensors[input].producer : -1;
      if (producer < 0 || state[producer] == DONE) continue;
      if (state[producer] == OPEN) {
        status = q8_fail(Q8_ERR_FORMAT,
                         "%s: the graph has a cycle: node '%s' (%s) reads '%s', which depends on "
                         "node '%s' itself", ld->source, node->name, node->op_type,
                         g->tensors[input].name, g->nodes[producer].name);
        break;
      }
      state[producer] = OPEN;
      stack_node[depth] = (size_t)producer;
      stack_input[depth++] = 0;
    }
  }
  if (status == Q8_OK) {
    /* order[] is old indices in new order; producers follow their node. */
    for (size_t i = 0; i < n; ++i) {
      sorted[i] = g->nodes[order[i]];
      for (size_t o = 0; o < sorted[i].n_outputs; ++o) {
        if (sorted[i].outputs[o] >= 0) g->tensors[sorted[i].outputs[o]].producer = (int32_t)i;
      }
    }
    memcpy(g->nodes, sorted, n * sizeof *sorted);
  }
  free(state);
  free(stack_node);
  free(stack_input);
  free(order);
  free(sorted);
  return status;
}

/* ---- entry points ----------------------------------------------------------- */

static q8_status load_model(loader *ld, const Onnx__ModelProto *model) {
  const Onnx__GraphProto *gp = model->graph;
  if (gp == NULL) {
    return q8_fail(Q8_ERR_FORMAT, "%s: truncated or corrupt ONNX file: the model has no graph",
                   ld->source);
  }
  q8_graph *g = ld->graph;
  g->ir_version = model->has_ir_version ? model->ir_version : 0;
  g->name = q8_str_dup(gp->name);
  g->producer_name = q8_str_dup(model->producer_name);
  if (g->name == NULL || g->producer_name == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", ld->source);
  }
  q8_status status = read_opset(ld, model);
  if (status != Q8_OK) return status;

  /* Every tensor is an initializer, a graph input or a node output. */
  size_t capacity = gp->n_initializer + gp->n_input;
  for (size_t i = 0; i < gp->n_node; ++i) capacity += gp->node[i] ? gp->node[i]->n_output : 0;
  if (capacity >= (size_t)INT32_MAX / 2) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: %zu tensors; q8 handles fewer than 2^30", ld->source,
                   capacity);
  }
  size_t slots = 16;
  while (slots < 2 * capacity) slots *= 2; /* at most half full: short probes */
  g->tensors = calloc(capacity ? capacity : 1, sizeof *g->tensors);
  ld->slots = malloc(slots * sizeof *ld->slots);
  if (g->tensors == NULL || ld->slots == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "%s: out of memory for %zu tensors", ld->source, capacity);
  }
  memset(ld->slots, 0xff, slots * sizeof *ld->slots); /* all -1 */
  ld->slot_mask = slots - 1;
  ld->tensor_capacity = capacity;

  status = load_initializers(ld, gp);
  if (status == Q8_OK) status = load_inputs(ld, gp);
  if (status == Q8_OK) status = load_nodes(ld, gp);
  if (status == Q8_OK) status = load_outputs(ld, gp);
  if (status == Q8_OK) status = load_value_info(ld, gp);
  if (status == Q8_OK) status = sort_nodes(ld);
  return status;
}

/* A q8_bytes_loader: `out` is the q8_graph ** to fill. */
static q8_status load_bytes(const void *bytes, size_t size, const char *source, void *out) {
  q8_graph **graph = out;
  if (size == 0) {
    return q8_fail(Q8_ERR_FORMAT, "%s: truncated or corrupt ONNX file: empty (0 bytes)", source);
  }
  Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, size, bytes);
  if (model == NULL) {
    return q8_fail(Q8_ERR_FORMAT, "%s: truncated or corrupt ONNX file (protobuf parsing failed)",
                   source);
  }
  loader ld = {.source = source, .graph = calloc(1, sizeof(q8_graph))};
  q8_status status = ld.graph ? load_model(&ld, model)
                              : q8_fail(Q8_ERR_NOMEM, "%s: out of memory", source);
  onnx__model_proto__free_unpacked(model, NULL);
  free(ld.slots);
  if (status != Q8_OK) {
    q8_graph_destroy(ld.graph);
    return status;
  }
  *graph = ld.graph;
  return Q8_OK;
}

q8_status q8_graph_load_memory(const void *bytes, size_t size, q8_graph **graph) {
  q8_clear_error();
  if (graph == NULL) return q8_fail(Q8_ERR_NULL, "graph output pointer is NULL");
  *graph = NULL;
  if (bytes == NULL && size > 0) return q8_fail(Q8_ERR_NULL, "bytes is NULL");
  return load_bytes(bytes, size, "ONNX model in memory", graph);
}

q8_status q8_graph_load_file(const char *path, q8_graph **graph) {
  q8_clear_error();
  if (graph == NULL) return q8_fail(Q8_ERR_NULL, "graph output pointer is NULL");
  *graph = NULL;
  return q8_load_file(path, "an ONNX model", load_bytes, graph);
}
