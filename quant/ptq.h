/* Post-training static quantization of a float model, end to end:
 * BatchNormalization folding, the float/int8 policy, calibration over a
 * dataset with the float reference executor, and the int8 graph rewrite.
 * What `qbench accuracy` runs (internal, not installed). */
#ifndef Q8_QUANT_PTQ_H
#define Q8_QUANT_PTQ_H

#include <stdbool.h>
#include <stddef.h>

#include "q8/q8.h"
#include "quant/calibrate.h"
#include "quant/dataset.h"
#include "quant/graph.h"
#include "quant/policy.h"
#include "quant/prepare.h"
#include "quant/quantize.h"

typedef struct q8_ptq_options {
  q8_calib_options calib;    /* calibrator (default: minmax, asymmetric) */
  size_t calib_images;       /* images to calibrate on (default 500) */
  size_t batch;              /* images per executor run (default 100) */
  q8_quantize_options quant; /* activation type, per-channel weights, profile */
  const q8_policy *policy;   /* NULL: the default policy */
} q8_ptq_options;

void q8_ptq_options_default(q8_ptq_options *options);

typedef struct q8_ptq_model {
  q8_graph *graph;             /* the prepared float graph (BN folded): the
                                  float reference the int8 graph is measured against */
  q8_fold_report folds;
  q8_node_decision *decisions; /* per node of graph: what the policy asked */
  q8_tensor_range *ranges;     /* per tensor of graph: calibrated ranges */
  q8_quant_result quant;       /* the int8 graph and what became of each node */
  q8_messages notes;           /* folds and what the quantizer kept float */
  q8_messages warnings;        /* small calibration set, constant or non-finite tensors */
  size_t calib_images;         /* images calibrated on */
} q8_ptq_model;

void q8_ptq_model_free(q8_ptq_model *model);

/* The model input for images [first, first + n) of ds: NCHW [n, 1, rows,
 * cols] when the graph's input has rank 4, [n, rows * cols] for rank 2
 * (Q8_ERR_ARG naming the input and its shape otherwise). out holds
 * n * rows * cols floats; dims receives the shape, *rank its rank. */
q8_status q8_ptq_input(const q8_graph *graph, const q8_dataset *ds, size_t first, size_t n,
                       float *out, int64_t *dims, int *rank);

/* Takes over graph (also on failure: it is then destroyed) and quantizes it,
 * calibrating on the first calib_images images of calib_set. */
q8_status q8_ptq_quantize(q8_graph *graph, const q8_dataset *calib_set, const q8_ptq_options *options,
                          q8_ptq_model *model);

#endif
