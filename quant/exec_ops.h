/* Graph executor: the contract between the session (quant/float_exec.c) and
 * the operator implementations, so that operators live in their own .c files
 * (internal, not installed).
 *
 * An operator is a q8_exec_op {domain, op_type, check, run, state_free}.
 * A file contributes a table of them:
 *
 *   static const q8_exec_op ops[] = {{"q8", "QLinearAdd", NULL, run_qlinear_add, NULL}, ...};
 *   const q8_exec_op_table q8_exec_ops_q8_add = {ops, sizeof ops / sizeof ops[0]};
 *
 * and one line in quant/exec_ops.def: Q8_EXEC_OP_TABLE(q8_exec_ops_q8_add).
 * (An explicit list, not constructors or linker sections: q8 is also a static
 * library, and a linker drops archive members nothing refers to.) Nothing
 * else changes: session create looks nodes up in every listed table by
 * (domain, op_type); the default ONNX domain is "" (a NULL or "ai.onnx"
 * node domain counts as ""). A (domain, op_type) pair must appear once.
 *
 * Contract of the functions:
 *   check(node, graph)  optional; at session create, before any run: refuse
 *                       attribute values the implementation does not handle
 *                       (status + q8_fail message naming the node).
 *   run(ctx)            computes the node's outputs from its inputs. Read
 *                       inputs with q8_exec_input / q8_exec_input_typed,
 *                       allocate each output with q8_exec_output (it frees
 *                       the previous run's value), fail with q8_exec_fail.
 *                       Inputs are never modified. Runs on the caller's
 *                       thread; the kernels it calls may use their own threads.
 *   *ctx->state         the node's own slot, NULL before its first run: an
 *                       op may cache what it derives from constant inputs
 *                       (packed GEMM/conv plans) there, keyed on what it
 *                       depends on (shapes; non-constant weights are not
 *                       cacheable: see q8_exec_input_constant).
 *   state_free(state)   releases a non-NULL slot at session destroy; required
 *                       when run stores something.
 * Every failure returns a q8_status with q8_error_detail() naming the node,
 * its op type and the problem; never a crash on bad input. */
#ifndef Q8_QUANT_EXEC_OPS_H
#define Q8_QUANT_EXEC_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/float_exec.h"
#include "quant/graph.h"

/* The run-time value of one graph tensor: dense, row-major. */
typedef struct q8_exec_value {
  q8_elem_type type;
  int rank; /* -1: no value */
  int64_t dims[Q8_MAX_RANK];
  size_t count;
  void *data;
  bool owned; /* false: an initializer's data, borrowed from the graph */
} q8_exec_value;

typedef struct q8_exec_ctx {
  q8_float_session *s;
  const q8_node *node;
  void **state; /* this node's cache slot (see above) */
} q8_exec_ctx;

typedef struct q8_exec_op {
  const char *domain;  /* "" for ONNX's default domain, "q8" for q8's own operators */
  const char *op_type;
  q8_status (*check)(const q8_node *node, const q8_graph *graph); /* may be NULL */
  q8_status (*run)(q8_exec_ctx *c);
  void (*state_free)(void *state); /* may be NULL when run keeps no state */
} q8_exec_op;

typedef struct q8_exec_op_table {
  const q8_exec_op *ops;
  size_t count;
} q8_exec_op_table;

#define Q8_EXEC_OP_TABLE(name) extern const q8_exec_op_table name;
#include "quant/exec_ops.def"
#undef Q8_EXEC_OP_TABLE

/* The implementation of (domain, op_type) from every listed table, or NULL. */
const q8_exec_op *q8_exec_find_op(const char *domain, const char *op_type);

/* Bit of a type in the `types` masks below. */
#define Q8_EXEC_TYPE(t) (1u << (unsigned)(t))

/* ---- for run(): inputs, outputs, errors ------------------------------------ */
const q8_graph *q8_exec_graph(const q8_exec_ctx *c);
/* Input k, or NULL when omitted (absent, "" or holding no value). */
const q8_exec_value *q8_exec_input(const q8_exec_ctx *c, size_t k);
/* Required input k of one of `types` (a mask of Q8_EXEC_TYPE bits). A
 * missing input is Q8_ERR_ARG; another type is an edge whose producer and
 * consumer disagree: Q8_ERR_ARG naming the tensor, both nodes (or "graph
 * input") and both types. */
q8_status q8_exec_input_typed(const q8_exec_ctx *c, size_t k, unsigned types, const q8_exec_value **v);
/* Name of input k's tensor ("" when omitted). */
const char *q8_exec_input_name(const q8_exec_ctx *c, size_t k);
/* Whether input k holds the same data on every run: an initializer or
 * constant the caller did not override, or a Constant node's output. */
bool q8_exec_input_constant(const q8_exec_ctx *c, size_t k);
/* Allocates output k zero-filled (the previous value freed); *out is NULL
 * (and Q8_OK) when the node's output k is omitted. */
q8_status q8_exec_output(q8_exec_ctx *c, size_t k, q8_elem_type type, int rank, const int64_t *dims,
                         q8_exec_value **out);
/* q8_fail with "node 'NAME' (OP): " before the formatted message. */
q8_status q8_exec_fail(const q8_exec_ctx *c, q8_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "[1,3,224,224]" into buf; returns buf. */
char *q8_exec_shape_str(int rank, const int64_t *dims, char *buf, size_t size);

/* ---- MatMul geometry (numpy matmul: 1-D operands promoted, batch axes broadcast) ---- */
typedef struct q8_exec_matmul {
  int64_t m, k, n;
  int batch_rank;
  int64_t batch_dims[Q8_MAX_RANK];
  int64_t a_stride[Q8_MAX_RANK], b_stride[Q8_MAX_RANK]; /* elements per batch step, 0 where broadcast */
  size_t batches;                                       /* product of batch_dims */
  int rank;
  int64_t dims[Q8_MAX_RANK];                            /* the output's shape */
} q8_exec_matmul;
/* Shape mismatches are Q8_ERR_ARG naming both shapes. */
q8_status q8_exec_matmul_shape(const q8_exec_ctx *c, const q8_exec_value *a, const q8_exec_value *b,
                               q8_exec_matmul *g);

/* ---- convolution and pooling windows ----------------------------------------
 * 1-, 2- and 3-D windows as 3-D ones: missing leading spatial axes have size
 * 1, kernel 1, stride 1, no padding. From the node's strides, dilations,
 * pads and auto_pad (NOTSET, SAME_UPPER, SAME_LOWER, VALID). */
#define Q8_EXEC_SPATIAL 3
typedef struct q8_exec_window {
  int rank; /* spatial axes of the model: 1..3 */
  int64_t in[Q8_EXEC_SPATIAL], out[Q8_EXEC_SPATIAL], k[Q8_EXEC_SPATIAL], s[Q8_EXEC_SPATIAL];
  int64_t d[Q8_EXEC_SPATIAL], pb[Q8_EXEC_SPATIAL], pe[Q8_EXEC_SPATIAL]; /* dilation, pad begin/end */
} q8_exec_window;
/* x is [N, C, spatial...]; kernel has rank - 2 entries. */
q8_status q8_exec_window_init(const q8_exec_ctx *c, const q8_exec_value *x, const int64_t *kernel,
                              bool ceil_mode, q8_exec_window *w);

/* ---- convolution nodes on the NHWC conv plan (quant/qops.c) -------------------
 * The q8_conv_shape of a 1-D or 2-D ONNX convolution node: x [N, C, spatial...],
 * w [OC, C / group, kernel...], bias [OC] or NULL, with the node's group,
 * kernel_shape, strides, dilations, pads and auto_pad; win receives the
 * window (its out[] is the output's spatial extent). Q8_ERR_ARG naming both
 * shapes when they do not fit. */
q8_status q8_exec_conv_shape(const q8_exec_ctx *c, const q8_exec_value *x, const q8_exec_value *w,
                             const q8_exec_value *bias, q8_conv_shape *shape, q8_exec_window *win);
/* NCHW <-> NHWC of n images of ch channels of hw pixels, es-byte elements. */
void q8_exec_to_nhwc(const void *src, void *dst, size_t es, size_t n, size_t ch, size_t hw);
void q8_exec_to_nchw(const void *src, void *dst, size_t es, size_t n, size_t ch, size_t hw);

#endif
