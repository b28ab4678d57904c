/* Post-training static quantization: float graph + calibrated ranges -> int8 graph.
 *
 * q8_quantize_graph rewrites a prepared float graph (BatchNormalization
 * folded, see quant/prepare.h) into a graph the executor runs on q8's own
 * kernels. Every tensor of the float graph keeps its index in the new graph
 * and holds the float value there; a tensor computed in int8 gets a second
 * tensor "<name>:q8" for its int8 value, with the quantization parameters in
 * q8_quant_result.qparams. Nodes the policy keeps in float are copied as they
 * are; int8 nodes become operators of the "q8" domain (below), which take
 * their quantization parameters as attributes, so the graph says everything
 * the executor needs. q8.Quantize / q8.Dequantize are inserted where a float
 * value meets an int8 consumer or the other way round, and graph outputs are
 * always float.
 *
 * Operators of the "q8" domain (inputs; attributes):
 *   Quantize(x; scale, zero_point, dtype, rounding, scale_op)    float -> int8/uint8
 *   Dequantize(x; scale, zero_point)                             int8/uint8 -> float
 *   QConv(x, w, bias?; Conv's own attributes, x_scale, x_zero_point, w_scales,
 *         y_scale, y_zero_point, y_dtype, requant)   w int8 OIHW symmetric, bias int32
 *   QGemm(a, w, bias?; a_scale, a_zero_point, w_scales, y_scale, y_zero_point,
 *         y_dtype, requant)   y[..., n] = requant(sum_k a[..., k] w[n][k] + bias[n]);
 *         a of rank >= 2 (MatMul's leading axes are rows), w int8 [N][K]
 *   QClamp(x; lo, hi)                          integer clamp (an unfused Relu / Clip)
 *   QLookup(x, table)                          y = table[x - dtype min]: Sigmoid, Tanh,
 *                                              LeakyRelu as exact 256-entry tables
 *   QAdd(a, b; a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point,
 *        y_dtype)   each input rescaled to the output's parameters in integers
 *   QConcat(x...; axis, scales, zero_points, y_scale, y_zero_point, y_dtype)
 *   MaxPool(x; MaxPool's attributes)           the maximum of quantized values
 * Data-movement operators (Flatten, Reshape, Transpose, Squeeze, Unsqueeze,
 * Identity) run in the default domain on the int8 tensors themselves.
 *
 * Relu and Clip whose input is an int8 Conv/Gemm/MatMul used by nothing
 * else are fused: the producer takes the activation's calibrated output
 * range, so requantization's saturation to [qmin, qmax] is the clamp (a
 * range starting at 0 puts the zero point at qmin: negative results
 * saturate to exactly 0). */
#ifndef Q8_QUANT_QUANTIZE_H
#define Q8_QUANT_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"
#include "quant/graph.h"

/* Quantization parameters of one int8/uint8 tensor (per tensor). */
typedef struct q8_qparams {
  float scale;
  int32_t zero_point;
  q8_dtype dtype;
} q8_qparams;

/* A calibrated range of one float tensor (known == false: none). */
typedef struct q8_tensor_range {
  bool known;
  float min, max; /* min <= 0 <= max */
} q8_tensor_range;

typedef struct q8_quantize_options {
  q8_dtype activations;  /* Q8_INT8 (default) or Q8_UINT8 */
  bool per_channel;      /* weights per output channel (default), else per tensor */
  q8_profile_id profile; /* rounding and requantization (default Q8_PROFILE_ONNX) */
} q8_quantize_options;

void q8_quantize_options_default(q8_quantize_options *options);

/* Whether the int8 path has a form of this default-domain operator (the
 * policy's list of int8 operators). */
bool q8_quantize_op_supported(const char *op_type);

/* What became of one node of the float graph. */
typedef enum q8_layer_precision {
  Q8_LAYER_FLOAT = 0, /* copied as is */
  Q8_LAYER_INT8 = 1,  /* an int8 operator */
  Q8_LAYER_FUSED = 2  /* folded into its producer's requantization */
} q8_layer_precision;

typedef struct q8_layer_result {
  q8_layer_precision precision;
  char reason[200];       /* why float (or what it fused into) */
  int32_t output;         /* float-graph tensor of its (first) output */
  double weight_sqnr_db;  /* quantized weights vs float, dB; NAN without weights */
} q8_layer_result;

typedef struct q8_quant_result {
  q8_graph *graph;        /* the int8 graph (the caller destroys it) */
  size_t n_layers;        /* = float graph's n_nodes */
  q8_layer_result *layers;
  size_t n_tensors;       /* = float graph's n_tensors */
  int32_t *qtensor;       /* per float tensor: index of its int8 version in graph, or -1 */
  q8_qparams *qparams;    /* per float tensor, valid where qtensor >= 0 */
} q8_quant_result;

void q8_quant_result_free(q8_quant_result *result);

/* Which float tensors need a calibrated range if nodes marked in int8_nodes
 * are quantized: needs[t] set for the activations read or written by them. */
void q8_quantize_needed_ranges(const q8_graph *graph, const bool *int8_nodes, bool *needs);

/* Asymmetric quantization parameters of activations for a calibrated range:
 * q8_quant_params_from_range (quant/calibrate.h), which widens the range to
 * contain 0 and gives a zero-width range scale 1. */
q8_qparams q8_qparams_for_range(float min, float max, q8_dtype dtype);

/* Rewrites graph (not modified; it must outlive nothing: the result owns
 * copies) with nodes i where int8_nodes[i] in int8, ranges indexed like
 * graph->tensors. A node asked for int8 that the int8 path cannot run as
 * given (non-constant weights, transA, a tensor without a range, ...) stays
 * float and says why in its layer reason. Errors (Q8_ERR_ARG naming the node
 * and tensor): a bias that does not fit int32 at input scale x weight scale,
 * a weight tensor that is not finite. */
q8_status q8_quantize_graph(const q8_graph *graph, const bool *int8_nodes,
                            const q8_tensor_range *ranges, const q8_quantize_options *options,
                            q8_quant_result *result);

#endif
