/* Quantization policy: which nodes of a prepared graph run in int8 and which
 * stay float (internal, not installed).
 *
 * Rules, first match wins, for each node in graph order:
 *   1. its op type is in --keep-float-ops              -> FLOAT
 *   2. its name matches a --keep-float-nodes glob       -> FLOAT (fnmatch)
 *   3. --keep-first-float / --keep-last-float and it is the first / last
 *      Conv, Gemm or MatMul in topological order         -> FLOAT
 *   4. Softmax                                           -> FLOAT (default)
 *   5. an op type the int8 path cannot run               -> FLOAT
 *   6. otherwise                                         -> INT8; Sigmoid and
 *      Tanh then get the fixed output quantization TFLite uses.
 * Everything is deterministic: the same policy and graph give the same
 * decisions and messages. */
#ifndef Q8_QUANT_POLICY_H
#define Q8_QUANT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"
#include "quant/graph.h"
#include "quant/prepare.h"

typedef struct q8_policy {
  size_t n_keep_ops;
  char **keep_ops;          /* op types, exactly as ONNX spells them */
  size_t n_keep_nodes;
  char **keep_nodes;        /* fnmatch globs on node names */
  bool keep_first_float;
  bool keep_last_float;
  q8_dtype activation_dtype; /* Q8_INT8 (default) or Q8_UINT8: picks the Sigmoid/Tanh zero point */
} q8_policy;

/* Defaults: nothing kept float beyond the default rules, int8 activations. */
void q8_policy_init(q8_policy *policy);
void q8_policy_free(q8_policy *policy);

/* Parse a comma-separated list ("Sigmoid,Tanh"; spaces around items are
 * ignored) and replace the policy's list with it. Q8_ERR_ARG with a message
 * naming the item for: an empty list or item ("Sigmoid,,Tanh", a trailing
 * comma); an op type with characters other than letters, digits and '_', or
 * one ONNX does not define (with a hint when only the case differs); a glob
 * with an unclosed '['. On error the policy is unchanged. */
q8_status q8_policy_set_keep_float_ops(q8_policy *policy, const char *list);
q8_status q8_policy_set_keep_float_nodes(q8_policy *policy, const char *globs);

/* Warnings for options that match nothing in this graph: an op type no node
 * has, a glob no node name matches, --keep-first/last-float without any
 * Conv, Gemm or MatMul. Appended to *warnings (q8_messages_free). */
q8_status q8_policy_warnings(const q8_policy *policy, const q8_graph *graph, q8_messages *warnings);

/* Whether the int8 path runs op_type: the one list of int8-capable operators. */
bool q8_policy_int8_capable(const char *op_type);
/* Whether ONNX defines op_type (default domain): what the float path runs,
 * the int8-capable list, and a short list of other common operators. */
bool q8_policy_onnx_op_known(const char *op_type);

typedef enum q8_precision { Q8_PRECISION_INT8 = 0, Q8_PRECISION_FLOAT = 1 } q8_precision;

typedef struct q8_node_decision {
  q8_precision precision;
  /* "int8", "kept float: --keep-float-ops Sigmoid", "kept float: Softmax
   * stays float by default", "kept float: first compute layer
   * (--keep-first-float)", "float: the int8 path has no LayerNormalization". */
  char reason[160];
  /* Sigmoid and Tanh in int8: their output quantization is fixed, not
   * calibrated (TFLite): Sigmoid scale 1/256, zero point -128 (int8) or 0
   * (uint8); Tanh scale 1/128, zero point 0 (int8) or 128 (uint8). */
  bool fixed_output;
  q8_dtype fixed_dtype;
  float fixed_scale;
  int32_t fixed_zero_point;
} q8_node_decision;

/* decisions has graph->n_nodes entries, filled in node order. Errors:
 * Q8_ERR_NULL, Q8_ERR_ARG for an activation dtype other than int8/uint8. */
q8_status q8_policy_decide(const q8_policy *policy, const q8_graph *graph, q8_node_decision *decisions);

#endif
