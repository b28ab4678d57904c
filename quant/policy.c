/* Quantization policy: what stays float (see policy.h). */
#include "quant/policy.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatch/internal.h"
#include "quant/float_exec.h"
#include "quant/quantize.h"

/* ONNX operators neither path runs that a user may still name, so that
 * keeping them float is not mistaken for a typo. Deliberately short. */
static const char *const other_onnx_ops[] = {
    "ArgMax",   "ArgMin",      "Ceil",        "ConvTranspose", "DepthToSpace", "Einsum",  "Elu",
    "Floor",    "Gelu",        "GRU",         "HardSigmoid",   "HardSwish",    "InstanceNormalization",
    "LRN",      "LSTM",        "Max",         "Mean",          "Min",          "Pad",     "Pow",
    "PRelu",    "ReduceMin",   "ReduceProd",  "Resize",        "RNN",          "Selu",    "Softplus",
    "Softsign", "SpaceToDepth", "Split",      "Sum",           "Tile",         "TopK",    "Upsample",
    "Where",    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "DynamicQuantizeLinear",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; ++i) {
    if (strcmp(list[i], s) == 0) return true;
  }
  return false;
}

/* The quantizer's own table is the one list of int8 operators. */
bool q8_policy_int8_capable(const char *op_type) { return q8_quantize_op_supported(op_type); }

bool q8_policy_onnx_op_known(const char *op_type) {
  return op_type && (q8_float_op_supported(op_type) || q8_policy_int8_capable(op_type) ||
                     in_list(other_onnx_ops, COUNT(other_onnx_ops), op_type));
}

void q8_policy_init(q8_policy *policy) {
  if (policy) *policy = (q8_policy){.activation_dtype = Q8_INT8};
}

static void free_strings(char **items, size_t n) {
  for (size_t i = 0; i < n; ++i) free(items[i]);
  free(items);
}

void q8_policy_free(q8_policy *policy) {
  if (!policy) return;
  free_strings(policy->keep_ops, policy->n_keep_ops);
  free_strings(policy->keep_nodes, policy->n_keep_nodes);
  q8_policy_init(policy);
}

/* ---- parsing ---------------------------------------------------------------------- */

/* Why item is not a valid entry of the list flag names, written to why; false if it is. */
typedef bool (*item_invalid)(const char *item, const char *flag, char *why, size_t size);

static bool op_type_invalid(const char *item, const char *flag, char *why, size_t size) {
  for (const char *c = item; *c; ++c) {
    if (!isalnum((unsigned char)*c) && *c != '_') {
      snprintf(why, size, "%s: '%s' is not an operator type (letters, digits and '_' only)", flag, item);
      return true;
    }
  }
  if (q8_policy_onnx_op_known(item)) return false;
  /* Operators people mistype most (case is the usual slip). */
  static const char *const common[] = {"Conv", "Gemm", "MatMul", "Add", "Concat", "Relu", "Clip", "MaxPool",
                                       "Sigmoid", "Tanh", "LeakyRelu", "Softmax", "LayerNormalization",
                                       "BatchNormalization", "Mul", "Sub", "Div"};
  const char *hint = NULL;
  for (size_t i = 0; i < COUNT(common) && !hint; ++i) {
    if (strcasecmp(common[i], item) == 0) hint = common[i];
  }
  snprintf(why, size, "%s: '%s' is not an ONNX operator%s%s%s", flag, item, hint ? " (did you mean '" : "",
           hint ? hint : "", hint ? "'?)" : "");
  return true;
}

/* fnmatch accepts any pattern; an unclosed '[' silently matches only itself,
 * which is never what a user meant. */
static bool glob_invalid(const char *item, const char *flag, char *why, size_t size) {
  for (const char *c = item; *c; ++c) {
    if (*c == '\\' && c[1]) {
      ++c;
    } else if (*c == '[') {
      const char *set = c + 1;
      if (*set == '!' || *set == '^') ++set;
      if (*set == ']') ++set; /* a ']' first in the set is literal */
      const char *close = strchr(set, ']');
      if (!close) {
        snprintf(why, size, "%s: the glob '%s' has an unclosed '['", flag, item);
        return true;
      }
      c = close;
    }
  }
  return false;
}

static q8_status parse_list(const char *list, const char *flag, item_invalid invalid, char ***items_out,
                            size_t *n_out) {
  if (!list) return q8_fail(Q8_ERR_NULL, "%s: the list is NULL", flag);
  char **items = NULL;
  size_t n = 0;
  char why[512] = "";
  const char *at = list;
  for (;;) {
    const char *end = strchr(at, ',');
    if (!end) end = at + strlen(at);
    const char *first = at, *last = end;
    while (first < last && isspace((unsigned char)*first)) ++first;
    while (last > first && isspace((unsigned char)last[-1])) --last;
    if (first == last) {
      snprintf(why, sizeof why, "%s: empty item at position %zu in '%s' (write items separated by single commas)",
               flag, n + 1, list);
      break;
    }
    char **grown = realloc(items, (n + 1) * sizeof *items);
    char *item = grown ? q8_str_dup_n(first, (size_t)(last - first)) : NULL;
    if (grown) items = grown;
    if (!item) {
      free_strings(items, n);
      return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", flag);
    }
    items[n++] = item;
    if (invalid(item, flag, why, sizeof why)) break;
    if (*end == '\0') {
      *items_out = items;
      *n_out = n;
      return Q8_OK;
    }
    at = end + 1;
  }
  free_strings(items, n);
  return q8_fail(Q8_ERR_ARG, "%s", why);
}

/* Replaces *items / *n with the parsed list, leaving them as they were on error. */
static q8_status replace_list(const q8_policy *policy, const char *list, const char *flag, item_invalid invalid,
                              char ***items, size_t *n) {
  if (!policy) return q8_fail(Q8_ERR_NULL, "policy is NULL");
  char **parsed;
  size_t count;
  q8_status st = parse_list(list, flag, invalid, &parsed, &count);
  if (st) return st;
  free_strings(*items, *n);
  *items = parsed;
  *n = count;
  return Q8_OK;
}

q8_status q8_policy_set_keep_float_ops(q8_policy *policy, const char *list) {
  return replace_list(policy, list, "--keep-float-ops", op_type_invalid, policy ? &policy->keep_ops : NULL,
                      policy ? &policy->n_keep_ops : NULL);
}

q8_status q8_policy_set_keep_float_nodes(q8_policy *policy, const char *globs) {
  return replace_list(policy, globs, "--keep-float-nodes", glob_invalid, policy ? &policy->keep_nodes : NULL,
                      policy ? &policy->n_keep_nodes : NULL);
}

/* ---- deciding ---------------------------------------------------------------------- */

static bool compute_layer(const q8_node *n) {
  return strcmp(n->op_type, "Conv") == 0 || strcmp(n->op_type, "Gemm") == 0 || strcmp(n->op_type, "MatMul") == 0;
}

/* Index of the first (or last) compute layer, or -1. */
static int64_t find_compute_layer(const q8_graph *g, bool last) {
  int64_t found = -1;
  for (size_t i = 0; i < g->n_nodes; ++i) {
    if (compute_layer(&g->nodes[i])) {
      found = (int64_t)i;
      if (!last) break;
    }
  }
  return found;
}

/* The first glob of the policy that matches name, or NULL. */
static const char *matching_glob(const q8_policy *p, const char *name) {
  for (size_t k = 0; k < p->n_keep_nodes; ++k) {
    if (fnmatch(p->keep_nodes[k], name, 0) == 0) return p->keep_nodes[k];
  }
  return NULL;
}

static bool has_op(const q8_graph *g, const char *op_type) {
  for (size_t i = 0; i < g->n_nodes; ++i) {
    if (strcmp(g->nodes[i].op_type, op_type) == 0) return true;
  }
  return false;
}

static bool glob_matches_any(const q8_graph *g, const char *glob) {
  for (size_t i = 0; i < g->n_nodes; ++i) {
    if (fnmatch(glob, g->nodes[i].name, 0) == 0) return true;
  }
  return false;
}

q8_status q8_policy_warnings(const q8_policy *policy, const q8_graph *graph, q8_messages *warnings) {
  if (!policy || !graph || !warnings) return q8_fail(Q8_ERR_NULL, "policy, graph or warnings is NULL");
  q8_status st = Q8_OK;
  for (size_t k = 0; k < policy->n_keep_ops && !st; ++k) {
    if (!has_op(graph, policy->keep_ops[k])) {
      st = q8_messages_add(warnings, "--keep-float-ops %s: the model has no %s node", policy->keep_ops[k],
                           policy->keep_ops[k]);
    }
  }
  for (size_t k = 0; k < policy->n_keep_nodes && !st; ++k) {
    if (!glob_matches_any(graph, policy->keep_nodes[k])) {
      st = q8_messages_add(warnings, "--keep-float-nodes '%s' matches no node name", policy->keep_nodes[k]);
    }
  }
  if (!st && (policy->keep_first_float || policy->keep_last_float) && find_compute_layer(graph, false) < 0) {
    st = q8_messages_add(warnings, "%s: the model has no Conv, Gemm or MatMul",
                         policy->keep_first_float ? "--keep-first-float" : "--keep-last-float");
  }
  return st;
}

static void fixed_output(const q8_policy *p, const char *op_type, q8_node_decision *d) {
  const bool sigmoid = strcmp(op_type, "Sigmoid") == 0;
  if (!sigmoid && strcmp(op_type, "Tanh") != 0) return;
  const bool u8 = p->activation_dtype == Q8_UINT8;
  d->fixed_output = true;
  d->fixed_dtype = p->activation_dtype;
  d->fixed_scale = sigmoid ? 1.0f / 256.0f : 1.0f / 128.0f;
  d->fixed_zero_point = sigmoid ? (u8 ? 0 : -128) : (u8 ? 128 : 0);
  snprintf(d->reason, sizeof d->reason, "int8: fixed output range (%s, scale 1/%d, zero point %d)", op_type,
           sigmoid ? 256 : 128, (int)d->fixed_zero_point);
}

q8_status q8_policy_decide(const q8_policy *policy, const q8_graph *graph, q8_node_decision *decisions) {
  if (!policy || !graph || (!decisions && graph->n_nodes)) {
    return q8_fail(Q8_ERR_NULL, "policy, graph or decisions is NULL");
  }
  if (policy->activation_dtype != Q8_INT8 && policy->activation_dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "policy: activation dtype %d is neither int8 nor uint8",
                   (int)policy->activation_dtype);
  }
  const int64_t first = policy->keep_first_float ? find_compute_layer(graph, false) : -1;
  const int64_t last = policy->keep_last_float ? find_compute_layer(graph, true) : -1;
  for (size_t i = 0; i < graph->n_nodes; ++i) {
    const q8_node *n = &graph->nodes[i];
    q8_node_decision *d = &decisions[i];
    *d = (q8_node_decision){.precision = Q8_PRECISION_FLOAT};
    const char *glob = matching_glob(policy, n->name);
    if (in_list((const char *const *)policy->keep_ops, policy->n_keep_ops, n->op_type)) {
      snprintf(d->reason, sizeof d->reason, "kept float: --keep-float-ops %s", n->op_type);
    } else if (glob) {
      snprintf(d->reason, sizeof d->reason, "kept float: --keep-float-nodes '%s'", glob);
    } else if ((int64_t)i == first) {
      snprintf(d->reason, sizeof d->reason, "kept float: first compute layer (--keep-first-float)");
    } else if ((int64_t)i == last) {
      snprintf(d->reason, sizeof d->reason, "kept float: last compute layer (--keep-last-float)");
    } else if (strcmp(n->op_type, "Softmax") == 0) {
      snprintf(d->reason, sizeof d->reason, "kept float: Softmax stays float by default");
    } else if (!q8_policy_int8_capable(n->op_type)) {
      snprintf(d->reason, sizeof d->reason, "float: the int8 path has no %s", n->op_type);
    } else {
      d->precision = Q8_PRECISION_INT8;
      snprintf(d->reason, sizeof d->reason, "int8");
      fixed_output(policy, n->op_type, d);
    }
  }
  return Q8_OK;
}
