/* Range calibrators for activation tensors.
 *
 * The quantizer feeds a calibrator every batch of float activations the float
 * executor produces for one tensor, then asks for the range [min, max] to
 * quantize that tensor with, and turns the range into a scale and a zero
 * point with q8_quant_params_from_range.
 *
 * Methods:
 *   minmax      the exact min and max of every finite value.
 *   ema         per-batch min and max, averaged as onnxruntime's
 *               MinMaxCalibrater with moving_average: the first batch sets
 *               them, each later batch b gives
 *               m = momentum * b + (1 - momentum) * m (in double).
 *   percentile  from the histogram: symmetric, |x| at the percentile p;
 *               asymmetric, the (100 - p)th and p-th percentiles of x.
 *               Linear interpolation inside the bin the percentile falls in,
 *               so the result is within one bin width of the exact one.
 *   entropy     TensorRT's KL-divergence threshold search. Symmetric: over
 *               the histogram of |x|, for every threshold of i bins
 *               (i = 128 .. the last non-empty bin), the reference P is the
 *               first i bins with the clipped outliers added to bin i - 1,
 *               the candidate Q is those i bins merged into 128 levels (bin j
 *               into level j x 128 / i, TensorRT's linspace mapping) and
 *               spread back evenly over the non-empty bins of each level;
 *               both smoothed as MXNet / onnxruntime do (eps 1e-4), and the
 *               threshold with the smallest KL(P || Q) wins (the largest on a
 *               tie). The bin holding 0 counts as its neighbour, as NVIDIA's
 *               pytorch-quantization does: zeros (half of a ReLU output) are
 *               exact on every grid, yet their spike would drag every
 *               threshold down. Other spikes (a bin over 4 times the median
 *               of the 8 bins on each side: one repeated value, such as the
 *               ReLU of a channel's bias over a constant image background)
 *               count as that median, for the same reason: without it the
 *               search gives each spike a level of its own and clips a
 *               CNN's ReLU output at a tenth of its range. Asymmetric, every
 *               value on one side of 0: the same search on that side with
 *               256 levels, as pytorch-quantization does for unsigned
 *               tensors. Asymmetric, both signs: onnxruntime's variant: the
 *               same search over windows [-T, T] of the signed histogram with
 *               256 levels (the whole 8-bit type), each end then clipped to
 *               the observed min and max.
 *   mse         grid search over ranges whose ends are bin edges, minimising
 *               the quantization MSE the histogram predicts: rounding noise
 *               step^2 / 12 for every value inside the range plus the
 *               squared clipping distance of every value outside it (values
 *               taken as uniform inside their bin). Symmetric: [-T, T] with
 *               step T / 127; asymmetric: [lo, hi] with step (hi - lo) / 255.
 *
 * Histogram (percentile, entropy, mse): `bins` bins of |x| on each side of 0
 * (2 x bins counters), of a width that is a power of two, the smallest for
 * which the largest |x| seen fits. When a batch holds a larger |x| the width
 * doubles as often as needed and adjacent bins are summed, which is exact
 * because the old edges are edges of the new grid. The final histogram
 * therefore depends only on the values seen, not on how they were split into
 * batches or in which order: every method but ema gives bit-identical ranges
 * for any batching. The price is resolution: the values span between half
 * and all of the bins.
 *
 * Every chosen range contains 0 (min <= 0 <= max) so that 0, the padding and
 * ReLU value, is exactly representable. NaN and +-Inf are counted and
 * skipped. A tensor whose finite values are all equal is flagged `constant`
 * and its range is [min(c, 0), max(c, 0)] (symmetric: [-|c|, |c|]), or
 * [-1, 1] if c is 0, so that it never has zero width.
 *
 * Threads: a calibrator is not thread-safe. To calibrate one tensor on
 * several threads, give each its own calibrator and q8_calibrator_merge them:
 * the result is exactly that of one calibrator fed every batch.
 *
 * Errors: Q8_ERR_NULL for a required NULL pointer, Q8_ERR_ARG for a bad
 * option or method name and for a range asked of a calibrator that saw no
 * finite value, Q8_ERR_NOMEM; q8_error_detail() names the problem. */
#ifndef Q8_QUANT_CALIBRATE_H
#define Q8_QUANT_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"

typedef enum q8_calib_method {
  Q8_CALIB_MINMAX,
  Q8_CALIB_EMA,
  Q8_CALIB_PERCENTILE,
  Q8_CALIB_ENTROPY,
  Q8_CALIB_MSE
} q8_calib_method;

#define Q8_CALIB_DEFAULT_PERCENTILE 99.99
#define Q8_CALIB_DEFAULT_EMA_MOMENTUM 0.01
#define Q8_CALIB_DEFAULT_BINS 2048
/* The entropy and mse searches take time quadratic in the bins. */
#define Q8_CALIB_MAX_BINS ((size_t)1 << 14)

typedef struct q8_calib_options {
  q8_calib_method method;
  double percentile;   /* PERCENTILE: in (0, 100], default 99.99 */
  double ema_momentum; /* EMA: weight of each new batch's min/max, in (0, 1],
                          default 0.01 (onnxruntime / PyTorch averaging constant) */
  size_t bins;         /* histogram methods: bins per side of 0, default 2048;
                          entropy needs at least 256, the others at least 2 */
  q8_dtype dtype;      /* Q8_INT8 or Q8_UINT8: target type */
  bool symmetric;      /* range symmetric around 0, else asymmetric */
} q8_calib_options;

/* Defaults for `method`: the values above, Q8_INT8, asymmetric (DESIGN.md:
 * activations are asymmetric). */
void q8_calib_options_default(q8_calib_options *options, q8_calib_method method);

/* "minmax", "ema", "percentile", "entropy", "mse". An unknown name gives
 * Q8_ERR_ARG with a message naming it and listing the valid ones. */
q8_status q8_calib_method_parse(const char *name, q8_calib_method *method);
/* The name q8_calib_method_parse accepts; "unknown" for a value outside the enum. */
const char *q8_calib_method_name(q8_calib_method method);

typedef struct q8_calibrator q8_calibrator;

/* Checks the options (each bad field named) and allocates the calibrator;
 * the options are copied. */
q8_status q8_calibrator_create(const q8_calib_options *options, q8_calibrator **calibrator);
void q8_calibrator_destroy(q8_calibrator *calibrator);

/* One batch (the whole activation tensor of one batch). NaN/Inf are counted
 * and skipped. x may be NULL when count is 0. A batch without a finite value
 * leaves the ema averages unchanged. */
q8_status q8_calibrator_observe(q8_calibrator *calibrator, const float *x, size_t count);

/* Adds everything src observed to dst, which must have the same options.
 * Exact for every method but ema (histograms at different widths are merged
 * at the coarser one, as observe would have): the ranges are bit-identical
 * to those of one calibrator fed all the batches. ema averages depend on the
 * order of the batches: Q8_ERR_UNSUPPORTED. src is unchanged. */
q8_status q8_calibrator_merge(q8_calibrator *dst, const q8_calibrator *src);

typedef struct q8_calib_range {
  float min, max;                   /* chosen range; always min <= 0 <= max, min < max */
  float observed_min, observed_max; /* finite values seen */
  size_t values, nonfinite;         /* finite values counted; NaN/Inf skipped */
  bool constant;                    /* every finite value equal (range widened) */
} q8_calib_range;

/* The range of everything observed so far (observation may continue after).
 * Q8_ERR_ARG if nothing finite was observed. */
q8_status q8_calibrator_range(const q8_calibrator *calibrator, q8_calib_range *range);

/* Scale and zero point for a range at dtype Q8_INT8 or Q8_UINT8, computed in
 * float32 as onnxruntime's compute_scale_zp. The range is first widened to
 * contain 0.
 *   asymmetric: scale = (max - min) / (qmax - qmin),
 *               zero_point = round_half_even(qmin - min / scale), clamped.
 *   symmetric:  scale = max(|min|, |max|) / 127, zero point 0 for int8 and
 *               128 for uint8: the uint8 grid is the int8 one shifted by 128
 *               (q_uint8 = q_int8 + 128), so both types represent
 *               [-128, 127] x scale and neither clips +-max(|min|, |max|).
 * A zero-width range ([0, 0]) gives scale 1 and the zero point of 0 (0 for
 * int8 and uint8 asymmetric, 128 for uint8 symmetric), as onnxruntime: any
 * scale represents the tensor's only value exactly, 0 is not a valid scale,
 * and 1 keeps a later stray value near its own magnitude instead of blowing
 * it up to saturation. The same happens when the scale would underflow
 * below FLT_MIN.
 * Errors: Q8_ERR_NULL, Q8_ERR_ARG for a non-finite end, min > max, a range
 * whose width overflows float, or another dtype. */
q8_status q8_quant_params_from_range(float min, float max, q8_dtype dtype, bool symmetric,
                                     float *scale, int32_t *zero_point);

#endif
