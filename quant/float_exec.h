/* Graph executor: runs a q8_graph in plain, deterministic C — the float
 * reference path, and ONNX's quantized operators on q8's kernels.
 *
 * The float path is the accuracy baseline the int8 path is measured against,
 * so it favours obvious loops over speed (still batched: the leading
 * dimension of every input is whatever the caller feeds). Shapes are inferred
 * at run time from the input shapes, node by node; every tensor of the last
 * run stays in the session so calibrators and per-layer SQNR can read any
 * activation.
 *
 * Element types: float32 arithmetic; int8, uint8 and int32 tensors flow into
 * and out of the quantized operators; int64 (and int32, bool) where ONNX uses
 * them for shapes and indices (Reshape's shape, Gather's indices, Shape's
 * output, Dropout's mask). Data-movement operators (Reshape, Transpose,
 * Concat, Flatten, Gather, Squeeze, ...) copy any of them.
 *
 * Operators, float: Conv, Gemm, MatMul, Add, Sub, Mul, Div, Min, Max, Relu,
 * Clip, LeakyRelu, Sigmoid, Tanh, Erf, Exp, Sqrt, Neg, Reciprocal, Round,
 * Softmax, BatchNormalization (inference), LayerNormalization, MaxPool (with
 * Indices), AveragePool, GlobalAveragePool, ReduceMean, ReduceSum, ReduceMax,
 * ReduceMin, Flatten, Reshape, Transpose, Concat, Identity, Dropout
 * (inference), Constant, Shape, Size, Gather, Squeeze, Unsqueeze, Slice,
 * Expand, Cast, ConstantOfShape.
 * Quantized (quant/qops.c, on q8_quantize / q8_dequantize / q8_gemm_plan /
 * q8_conv_plan, bit-exact to ONNX): QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, QLinearMatMul, MatMulInteger, QLinearConv,
 * ConvInteger. More operators (also in the "q8" domain) plug in through
 * quant/exec_ops.h without changes here.
 *
 * Errors (q8_error_detail() names the node, its op type and the problem):
 *   Q8_ERR_UNSUPPORTED  an operator or attribute value beyond the executor,
 *                       a float64 or other unhandled tensor type (create)
 *   Q8_ERR_ARG          inputs missing, an edge whose producer and consumer
 *                       disagree on dtype (both nodes and both types named),
 *                       shapes that do not fit a node (both shapes named)
 *   Q8_ERR_SCALE        a zero, negative, NaN or infinite scale (node and
 *                       tensor named)
 *   Q8_ERR_FORMAT       an attribute of the wrong kind or length
 *   Q8_ERR_NOMEM        allocation failed */
#ifndef Q8_QUANT_FLOAT_EXEC_H
#define Q8_QUANT_FLOAT_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"
#include "quant/graph.h"

/* A named, dense, row-major tensor passed in or handed out. */
typedef struct q8_float_tensor {
  const char *name;
  q8_elem_type type;           /* FLOAT, INT8, UINT8, INT32 for data; INT64/INT32/BOOL for shapes and indices */
  int rank;
  int64_t dims[Q8_MAX_RANK];
  const void *data;            /* elements of q8_elem_size(type) bytes */
} q8_float_tensor;

typedef struct q8_float_session q8_float_session;

/* Whether the float path runs op_type (default domain, float operators
 * only), for policies that decide what may stay float. */
bool q8_float_op_supported(const char *op_type);

/* Checks the graph once: every operator is supported, every tensor's
 * declared type is one the float path handles (float64: the message of
 * q8_graph_check_float64), attribute values are in range. The graph must
 * outlive the session and must not change while it exists. */
q8_status q8_float_session_create(const q8_graph *graph, q8_float_session **session);
void q8_float_session_destroy(q8_float_session *session);

/* Runs the graph on inputs (every graph input by name, any order; an input
 * that is also an initializer may be omitted, its data is the default).
 * Input data is copied. outputs, when not NULL, receives n_outputs views of
 * the graph outputs in graph order (n_outputs <= graph->n_outputs), valid
 * until the next run or destroy. */
q8_status q8_float_session_run(q8_float_session *session, const q8_float_tensor *inputs,
                               size_t n_inputs, q8_float_tensor *outputs, size_t n_outputs);

/* Any tensor of the last run (inputs, initializers, every intermediate) by
 * name or by index into graph->tensors, as a view valid until the next run
 * or destroy. Q8_ERR_ARG if no such tensor or it holds no value (not
 * computed, or an omitted optional output). */
q8_status q8_float_session_tensor(const q8_float_session *session, const char *name,
                                  q8_float_tensor *tensor);
q8_status q8_float_session_tensor_at(const q8_float_session *session, int32_t index,
                                     q8_float_tensor *tensor);

#endif
