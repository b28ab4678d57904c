/* Graph preparation before quantization: BatchNormalization folding and
 * Relu/Clip fusion (internal, not installed).
 *
 * Order: fold BatchNormalization first (a Relu behind a BN only becomes
 * fusable once the BN is gone), then fuse activations, then decide the
 * policy (quant/policy.h) on the prepared graph.
 *
 * Both passes keep the graph valid: nodes stay in topological order, every
 * tensor's producer is right, graph inputs and outputs and the tensors other
 * nodes consume keep their names and values. Tensors are only appended,
 * never removed or renumbered, so tensor indices held elsewhere stay valid;
 * node indices change (a removed node shifts the ones after it). */
#ifndef Q8_QUANT_PREPARE_H
#define Q8_QUANT_PREPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"
#include "quant/graph.h"

/* A list of messages (notes, warnings) a pass hands back to its caller. */
typedef struct q8_messages {
  size_t count;
  char **items;
} q8_messages;

/* Appends a formatted message; Q8_ERR_NOMEM if it cannot. */
q8_status q8_messages_add(q8_messages *messages, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void q8_messages_free(q8_messages *messages);

/* ---- BatchNormalization folding ------------------------------------------------
 * A BatchNormalization in inference mode is folded into the Conv or Gemm that
 * produces its input when that output feeds nothing else and is not a graph
 * output, and the weights, bias and BN's scale, B, mean and var are constants
 * (initializers, or outputs of Constant nodes, not overridable graph inputs).
 * Per output channel c, with s = scale[c] / sqrt(var[c] + epsilon) in double:
 *   W'[c, ...] = W[c, ...] * s        b'[c] = (b[c] - mean[c]) * s + B[c]
 * each rounded to float once (for Gemm, channel c is row c of B with
 * transB = 1 or column c without, and b = beta * C; beta becomes 1).
 * W' and b' are new initializers (<name>_bnfold): data other nodes may share
 * is never changed. A Conv without bias gets one. The BN node is removed and
 * the Conv/Gemm produces BN's output tensor; its old output tensor stays in
 * the graph, produced and consumed by nothing. */
typedef struct q8_fold {
  char *bn_node;       /* the BatchNormalization node's name */
  char *into_node;     /* the Conv/Gemm it was folded into; NULL if not folded */
  char *message;       /* "BatchNormalization 'bn1' folded into Conv 'conv1'" or
                          "BatchNormalization 'bn3' not folded: <reason>" */
} q8_fold;

typedef struct q8_fold_report {
  size_t count;        /* one entry per BatchNormalization, in graph order */
  q8_fold *folds;
  size_t folded;       /* entries with into_node set */
} q8_fold_report;

/* report may be NULL; otherwise it is filled anew (free it with
 * q8_fold_report_free). A BN that cannot be folded is not an error (it is
 * reported and stays in the graph); errors are Q8_ERR_NULL and Q8_ERR_NOMEM
 * (the graph may then be partly folded but stays valid). */
q8_status q8_graph_fold_batchnorm(q8_graph *graph, q8_fold_report *report);
void q8_fold_report_free(q8_fold_report *report);

/* ---- activation fusion ---------------------------------------------------------
 * A Relu or Clip whose input is the only use of a Conv, Gemm or MatMul output
 * (not a graph output) is removed; the producer then outputs the
 * activation's tensor, and the fusion table records the float bounds the
 * quantizer turns into the requantization clamp. Relu is [0, +inf); Clip
 * takes its bounds from the min/max attributes before opset 11 and from
 * constant min/max inputs from opset 11 (an absent bound is -inf / +inf).
 * Not fused: non-constant or NaN bounds, min > max, an activation whose
 * producer output has other consumers or is a graph output, and MatMul + Add
 * (bias) + Relu (the Relu's producer is the Add: fold the bias first).
 *
 * The fused graph is for the quantizer only: without its activations the
 * float executor would compute something else. The float reference runs on
 * the graph before fusion, or on the fused graph after
 * q8_graph_unfuse_activations, which puts the removed nodes back exactly
 * (same nodes, order, attributes and tensors). Both graphs name the fused
 * output the same, so a calibrator reads its range from the float run under
 * the tensor name the quantizer sees.
 *
 * Node indices: entries record the producer's index in the graph as the
 * fusion pass left it (and its name). q8_fusion_find checks both, so a table
 * used on a graph whose nodes changed since returns NULL, never a wrong
 * node's bounds. Run the pass after BatchNormalization folding. */
typedef struct q8_fusion {
  size_t node;             /* producer's index in the fused graph */
  char *node_name;         /* producer (Conv, Gemm or MatMul) */
  char *activation_op;     /* "Relu" or "Clip" */
  char *activation_name;   /* the removed node's name */
  float lo, hi;            /* clamp in float; -INFINITY / INFINITY: no bound */
  int32_t pre_activation;  /* tensor the producer wrote before fusion */
  q8_node removed;         /* the activation node as it was, for unfusing */
  size_t removed_at;       /* its index in the graph before fusion */
} q8_fusion;

typedef struct q8_fusion_table {
  size_t count;
  q8_fusion *fusions;      /* in graph order */
  size_t n_nodes;          /* graph->n_nodes after fusion */
  q8_messages notes;       /* activations after a Conv/Gemm/MatMul not fused, and why */
} q8_fusion_table;

/* fusions is filled anew (free it with q8_fusion_table_free). Errors:
 * Q8_ERR_NULL, Q8_ERR_NOMEM (the graph then stays valid, the table lists
 * what was fused so far). */
q8_status q8_graph_fuse_activations(q8_graph *graph, q8_fusion_table *fusions);
/* The fusion of the node at index node_index of graph, or NULL if it has none
 * (or the graph's nodes are not the ones the table was made for). */
const q8_fusion *q8_fusion_find(const q8_fusion_table *fusions, const q8_graph *graph,
                                size_t node_index);
/* Puts every removed activation back, restoring the graph as it was before
 * q8_graph_fuse_activations, and empties the table. Q8_ERR_ARG if the graph
 * is not the one the table was made for (nothing is changed then). */
q8_status q8_graph_unfuse_activations(q8_graph *graph, q8_fusion_table *fusions);
void q8_fusion_table_free(q8_fusion_table *fusions);

#endif
