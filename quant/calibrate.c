/* Range calibrators: minmax, ema, and three histogram methods (percentile,
 * entropy, mse) over one exact, batch-independent histogram (calibrate.h). */
#include "quant/calibrate.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"

/* Levels of the 8-bit grid on one side of 0 (symmetric) and in all. */
#define HALF_LEVELS 128
#define ALL_LEVELS 256
/* MXNet / onnxruntime smooth_distribution: what a zero bin gets, in counts. */
#define KL_SMOOTH_EPS 1e-4

struct q8_calibrator {
  q8_calib_options options;
  size_t values, nonfinite;
  float observed_min, observed_max;
  double ema_min, ema_max;
  /* Histogram methods: 2 x bins counters. hist[bins + k] counts x >= 0 with
   * floor(x / width) == k, hist[bins - 1 - k] counts x < 0 with
   * floor(-x / width) == k: in order, a signed histogram from the most
   * negative bin up, bin s covering (s - bins .. s - bins + 1) x width. */
  uint64_t *hist;
  bool has_width; /* false until a nonzero finite value arrives */
  int exponent;   /* width = 2^exponent */
};

static const char *const method_names[] = {"minmax", "ema", "percentile", "entropy", "mse"};
#define METHOD_COUNT (sizeof method_names / sizeof method_names[0])

const char *q8_calib_method_name(q8_calib_method method) {
  return (size_t)method < METHOD_COUNT ? method_names[method] : "unknown";
}

q8_status q8_calib_method_parse(const char *name, q8_calib_method *method) {
  if (name == NULL) return q8_fail(Q8_ERR_NULL, "calibration method name is NULL");
  if (method == NULL) return q8_fail(Q8_ERR_NULL, "calibration method output is NULL");
  for (size_t i = 0; i < METHOD_COUNT; ++i) {
    if (strcmp(name, method_names[i]) == 0) {
      *method = (q8_calib_method)i;
      return Q8_OK;
    }
  }
  return q8_fail(Q8_ERR_ARG,
                 "unknown calibration method '%s' (valid: minmax, ema, percentile, entropy, mse)",
                 name);
}

void q8_calib_options_default(q8_calib_options *options, q8_calib_method method) {
  if (options == NULL) return;
  *options = (q8_calib_options){
      .method = method,
      .percentile = Q8_CALIB_DEFAULT_PERCENTILE,
      .ema_momentum = Q8_CALIB_DEFAULT_EMA_MOMENTUM,
      .bins = Q8_CALIB_DEFAULT_BINS,
      .dtype = Q8_INT8,
      .symmetric = false,
  };
}

static bool uses_histogram(q8_calib_method method) {
  return method == Q8_CALIB_PERCENTILE || method == Q8_CALIB_ENTROPY || method == Q8_CALIB_MSE;
}

static q8_status check_options(const q8_calib_options *o) {
  if ((size_t)o->method >= METHOD_COUNT) {
    return q8_fail(Q8_ERR_ARG, "calibration method %d is not a q8_calib_method", (int)o->method);
  }
  const char *name = q8_calib_method_name(o->method);
  if (o->dtype != Q8_INT8 && o->dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "%s calibration: dtype %d must be Q8_INT8 or Q8_UINT8", name,
                   (int)o->dtype);
  }
  if (o->method == Q8_CALIB_PERCENTILE && !(o->percentile > 0.0 && o->percentile <= 100.0)) {
    return q8_fail(Q8_ERR_ARG, "percentile calibration: percentile %g must be in (0, 100]",
                   o->percentile);
  }
  if (o->method == Q8_CALIB_EMA && !(o->ema_momentum > 0.0 && o->ema_momentum <= 1.0)) {
    return q8_fail(Q8_ERR_ARG, "ema calibration: ema_momentum %g must be in (0, 1]",
                   o->ema_momentum);
  }
  if (uses_histogram(o->method)) {
    /* The KL search compares candidates of at least HALF_LEVELS bins, and the
     * values span more than half of the bins. */
    const size_t min_bins = o->method == Q8_CALIB_ENTROPY ? 2 * HALF_LEVELS : 2;
    if (o->bins < min_bins || o->bins > Q8_CALIB_MAX_BINS) {
      return q8_fail(Q8_ERR_ARG, "%s calibration: bins %zu must be in [%zu, %zu]", name, o->bins,
                     min_bins, Q8_CALIB_MAX_BINS);
    }
  }
  return Q8_OK;
}

q8_status q8_calibrator_create(const q8_calib_options *options, q8_calibrator **calibrator) {
  if (calibrator == NULL) return q8_fail(Q8_ERR_NULL, "calibrator output pointer is NULL");
  *calibrator = NULL;
  if (options == NULL) return q8_fail(Q8_ERR_NULL, "calibration options are NULL");
  q8_status st = check_options(options);
  if (st != Q8_OK) return st;
  q8_calibrator *c = calloc(1, sizeof *c);
  if (c == NULL) return q8_fail(Q8_ERR_NOMEM, "calibrator: out of memory");
  c->options = *options;
  if (uses_histogram(options->method)) {
    c->hist = calloc(2 * options->bins, sizeof *c->hist);
    if (c->hist == NULL) {
      free(c);
      return q8_fail(Q8_ERR_NOMEM, "calibrator: out of memory for %zu histogram bins",
                     2 * options->bins);
    }
  }
  *calibrator = c;
  return Q8_OK;
}

void q8_calibrator_destroy(q8_calibrator *calibrator) {
  if (calibrator == NULL) return;
  free(calibrator->hist);
  free(calibrator);
}

/* ---- histogram ------------------------------------------------------------ */

/* The smallest e with amax < bins * 2^e: every |x| <= amax then falls in one
 * of the bins. Exact: bins * 2^e and a float are both exact doubles. */
static int width_exponent(float amax, size_t bins) {
  int e;
  frexp((double)amax, &e); /* amax < 2^e, so bins * 2^e is enough */
  while (e > -1100 && ldexp((double)bins, e - 1) > (double)amax) --e;
  while (ldexp((double)bins, e) <= (double)amax) ++e;
  return e;
}

/* Where bin k of a side goes when the width doubles `shift` times. */
static size_t coarser_bin(size_t k, int shift) { return shift >= 63 ? 0 : k >> shift; }

/* Doubles the width `shift` times, summing bins. In place in ascending k, as
 * a bin only moves down. */
static void hist_coarsen(uint64_t *hist, size_t bins, int shift) {
  for (size_t k = 1; k < bins; ++k) {
    const size_t to = coarser_bin(k, shift);
    hist[bins + to] += hist[bins + k];
    hist[bins + k] = 0;
    hist[bins - 1 - to] += hist[bins - 1 - k];
    hist[bins - 1 - k] = 0;
  }
}

/* Bin of finite v relative to 0: exact, as the width is a power of two. The
 * sign picks the side without a branch: k ^ -1 == -1 - k; -0 counts as 0, as
 * it does before the width is known. */
static inline int64_t bin_of(float v, double inv_width) {
  const int64_t k = (int64_t)((double)fabsf(v) * inv_width);
  return k ^ -(int64_t)(v < 0.0f);
}

/* Bins every finite value of x at the current width, which holds them all. */
static void hist_add(q8_calibrator *c, const float *x, size_t count, bool skip_nonfinite) {
  const size_t bins = c->options.bins;
  uint64_t *center = c->hist + bins;
  if (!c->has_width) { /* every finite value is 0 */
    for (size_t i = 0; i < count; ++i) center[0] += !skip_nonfinite || isfinite(x[i]);
    return;
  }
  const double inv_width = ldexp(1.0, -c->exponent);
  if (skip_nonfinite) {
    for (size_t i = 0; i < count; ++i) {
      if (isfinite(x[i])) center[bin_of(x[i], inv_width)]++;
    }
  } else {
    for (size_t i = 0; i < count; ++i) center[bin_of(x[i], inv_width)]++;
  }
}

static void hist_observe(q8_calibrator *c, const float *x, size_t count, float amax,
                         bool has_nonfinite) {
  if (amax > 0.0f) {
    const int e = width_exponent(amax, c->options.bins);
    if (!c->has_width) {
      c->has_width = true;
      c->exponent = e;
    } else if (e > c->exponent) {
      hist_coarsen(c->hist, c->options.bins, e - c->exponent);
      c->exponent = e;
    }
  }
  hist_add(c, x, count, has_nonfinite);
}

/* Min and max of a batch, and whether it holds NaN/Inf. Eight independent
 * lanes let the compiler use SIMD min/max (a < b ? a : b is exactly minps,
 * whose NaN rule needs no -ffast-math); v * 0 is NaN exactly for NaN and Inf,
 * so `poison` turns NaN if any value is not finite. */
#define LANES 8
static bool batch_extremes(const float *x, size_t count, float *min, float *max) {
  float lo[LANES], hi[LANES], poison[LANES];
  for (size_t l = 0; l < LANES; ++l) {
    lo[l] = FLT_MAX;
    hi[l] = -FLT_MAX;
    poison[l] = 0.0f;
  }
  size_t i = 0;
  for (; i + LANES <= count; i += LANES) {
    for (size_t l = 0; l < LANES; ++l) {
      const float v = x[i + l];
      lo[l] = v < lo[l] ? v : lo[l];
      hi[l] = v > hi[l] ? v : hi[l];
      poison[l] = poison[l] + v * 0.0f;
    }
  }
  for (; i < count; ++i) {
    const float v = x[i];
    lo[0] = v < lo[0] ? v : lo[0];
    hi[0] = v > hi[0] ? v : hi[0];
    poison[0] = poison[0] + v * 0.0f;
  }
  bool finite = true;
  for (size_t l = 0; l < LANES; ++l) {
    lo[0] = fminf(lo[0], lo[l]);
    hi[0] = fmaxf(hi[0], hi[l]);
    finite = finite && poison[l] == 0.0f;
  }
  *min = lo[0];
  *max = hi[0];
  return finite;
}

/* The slow path of a batch with NaN/Inf: its finite extremes and how many
 * values are not finite. */
static size_t batch_extremes_finite(const float *x, size_t count, float *min, float *max) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  size_t nonfinite = 0;
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    if (!isfinite(v)) {
      ++nonfinite;
      continue;
    }
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  *min = lo;
  *max = hi;
  return nonfinite;
}

q8_status q8_calibrator_observe(q8_calibrator *calibrator, const float *x, size_t count) {
  if (calibrator == NULL) return q8_fail(Q8_ERR_NULL, "calibrator is NULL");
  if (count == 0) return Q8_OK;
  if (x == NULL) return q8_fail(Q8_ERR_NULL, "calibration batch of %zu values is NULL", count);
  q8_calibrator *c = calibrator;
  float lo, hi;
  size_t nonfinite = 0;
  if (!batch_extremes(x, count, &lo, &hi)) nonfinite = batch_extremes_finite(x, count, &lo, &hi);
  c->nonfinite += nonfinite;
  if (nonfinite == count) return Q8_OK;
  /* Which zero a SIMD min picks depends on the lanes: make it +0. */
  lo += 0.0f;
  hi += 0.0f;
  if (c->values == 0) {
    c->observed_min = lo;
    c->observed_max = hi;
  } else {
    c->observed_min = fminf(c->observed_min, lo);
    c->observed_max = fmaxf(c->observed_max, hi);
  }
  if (c->options.method == Q8_CALIB_EMA) {
    /* onnxruntime's moving average; the first batch initializes. */
    const double m = c->options.ema_momentum;
    c->ema_min = c->values == 0 ? lo : m * lo + (1.0 - m) * c->ema_min;
    c->ema_max = c->values == 0 ? hi : m * hi + (1.0 - m) * c->ema_max;
  }
  c->values += count - nonfinite;
  if (c->hist != NULL) hist_observe(c, x, count, fmaxf(-lo, hi), nonfinite > 0);
  return Q8_OK;
}

static bool same_options(const q8_calib_options *a, const q8_calib_options *b) {
  return a->method == b->method && a->dtype == b->dtype && a->symmetric == b->symmetric &&
         (a->method != Q8_CALIB_PERCENTILE || a->percentile == b->percentile) &&
         (!uses_histogram(a->method) || a->bins == b->bins);
}

q8_status q8_calibrator_merge(q8_calibrator *dst, const q8_calibrator *src) {
  if (dst == NULL || src == NULL) return q8_fail(Q8_ERR_NULL, "calibrator to merge is NULL");
  if (dst == src) return q8_fail(Q8_ERR_ARG, "a calibrator cannot be merged into itself");
  if (!same_options(&dst->options, &src->options)) {
    return q8_fail(Q8_ERR_ARG, "calibrators to merge differ in their options (%s and %s)",
                   q8_calib_method_name(dst->options.method),
                   q8_calib_method_name(src->options.method));
  }
  if (dst->options.method == Q8_CALIB_EMA) {
    return q8_fail(Q8_ERR_UNSUPPORTED,
                   "ema calibrators cannot be merged: the average depends on batch order");
  }
  dst->nonfinite += src->nonfinite;
  if (src->values == 0) return Q8_OK;
  if (dst->values == 0) {
    dst->observed_min = src->observed_min;
    dst->observed_max = src->observed_max;
  } else {
    dst->observed_min = fminf(dst->observed_min, src->observed_min);
    dst->observed_max = fmaxf(dst->observed_max, src->observed_max);
  }
  dst->values += src->values;
  if (dst->hist == NULL) return Q8_OK;
  const size_t bins = dst->options.bins;
  int shift = 0; /* src bin k goes to dst bin k >> shift */
  if (src->has_width) {
    if (!dst->has_width) {
      dst->has_width = true;
      dst->exponent = src->exponent;
    } else if (src->exponent > dst->exponent) {
      hist_coarsen(dst->hist, bins, src->exponent - dst->exponent);
      dst->exponent = src->exponent;
    }
    shift = dst->exponent - src->exponent;
  }
  for (size_t k = 0; k < bins; ++k) {
    const size_t to = coarser_bin(k, shift);
    dst->hist[bins + to] += src->hist[bins + k];
    dst->hist[bins - 1 - to] += src->hist[bins - 1 - k];
  }
  return Q8_OK;
}

/* ---- range from the histogram --------------------------------------------- */

/* Position, in bins from h[0], of the value with `target` values below it,
 * by linear interpolation inside the first bin that reaches the target. */
static double hist_quantile(const uint64_t *h, size_t n, double target) {
  double below = 0.0;
  for (size_t s = 0; s < n; ++s) {
    if (h[s] == 0) continue;
    if (below + (double)h[s] >= target) {
      const double inside = target > below ? (target - below) / (double)h[s] : 0.0;
      return (double)s + inside;
    }
    below += (double)h[s];
  }
  return (double)n;
}

/* MXNet / onnxruntime smooth_distribution: zero bins get eps, the others
 * give it back evenly. Returns the sum, or 0 if every bin is zero. */
static double smooth(double *d, size_t n) {
  size_t zeros = 0;
  for (size_t j = 0; j < n; ++j) zeros += d[j] == 0.0;
  if (zeros == n) return 0.0;
  const double eps_nonzero = KL_SMOOTH_EPS * (double)zeros / (double)(n - zeros);
  double sum = 0.0;
  for (size_t j = 0; j < n; ++j) {
    /* A nonzero bin smaller than its share of eps (a Q spread thin) stays a
     * tiny positive value rather than turning negative. */
    d[j] = d[j] == 0.0 ? KL_SMOOTH_EPS : fmax(d[j] - eps_nonzero, KL_SMOOTH_EPS * 1e-3);
    sum += d[j];
  }
  return sum;
}

typedef struct kl_work {
  double *p, *q, *level_sum;
  size_t *level_nonzero;
} kl_work;

/* KL(P || Q) of the window h[lo, hi) of a histogram of n bins (prefix: its
 * prefix sums, n + 1 entries), quantized to `levels` levels. */
static double window_divergence(const uint64_t *h, const uint64_t *prefix, size_t n, size_t lo,
                                size_t hi, size_t levels, kl_work *w) {
  const size_t len = hi - lo;
  for (size_t j = 0; j < len; ++j) w->p[j] = (double)h[lo + j];
  w->p[0] += (double)prefix[lo];
  w->p[len - 1] += (double)(prefix[n] - prefix[hi]);
  memset(w->level_sum, 0, levels * sizeof *w->level_sum);
  memset(w->level_nonzero, 0, levels * sizeof *w->level_nonzero);
  for (size_t j = 0; j < len; ++j) {
    const size_t level = j * levels / len;
    w->level_sum[level] += (double)h[lo + j];
    w->level_nonzero[level] += w->p[j] != 0.0;
  }
  for (size_t j = 0; j < len; ++j) {
    const size_t level = j * levels / len;
    w->q[j] = w->p[j] != 0.0 ? w->level_sum[level] / (double)w->level_nonzero[level] : 0.0;
  }
  const double p_sum = smooth(w->p, len), q_sum = smooth(w->q, len);
  if (p_sum == 0.0 || q_sum == 0.0) return INFINITY;
  double kl = 0.0;
  for (size_t j = 0; j < len; ++j) {
    const double pj = w->p[j] / p_sum;
    kl += pj * log(pj / (w->q[j] / q_sum));
  }
  return kl;
}

/* A bin holding more than SPIKE_RATIO times the median of the SPIKE_RADIUS
 * bins on each side of it is taken for one repeated value. */
#define SPIKE_RADIUS 8
#define SPIKE_RATIO 4

/* Lowers every spike of h (n bins) to the median of its neighbourhood, into
 * out. A repeated value (ReLU of a constant background, a bias seen through
 * padding) maps to one level with an error of at most half a step, but the
 * KL model of a level spreads its mass evenly over its bins and charges for
 * it: on a spiky histogram the search picks the threshold that gives each
 * spike a level of its own, far too narrow. A lone bin among empty ones
 * (median 0, e.g. pixels k / 255 on a fine grid) is left as it is. */
static void flatten_spikes(const uint64_t *h, size_t n, uint64_t *out) {
  for (size_t s = 0; s < n; ++s) {
    uint64_t near[2 * SPIKE_RADIUS];
    size_t count = 0;
    const size_t from = s > SPIKE_RADIUS ? s - SPIKE_RADIUS : 0;
    const size_t to = n - s > SPIKE_RADIUS ? s + SPIKE_RADIUS : n - 1;
    for (size_t t = from; t <= to; ++t) {
      if (t == s) continue;
      size_t k = count++; /* insertion sort: at most 16 values */
      for (; k > 0 && near[k - 1] > h[t]; --k) near[k] = near[k - 1];
      near[k] = h[t];
    }
    const uint64_t median = count > 0 ? near[count / 2] : 0;
    out[s] = median > 0 && h[s] / SPIKE_RATIO > median ? median : h[s];
  }
}

/* TensorRT's threshold search. One-sided (center 0): windows [0, i) of a
 * histogram of |x| (or of x when no value is negative); two-sided: windows
 * [center - i, center + i) of a signed one. i runs from levels (one-sided)
 * or levels / 2 up to `extent`, the half width holding every value. Returns
 * the best i, or 0 on allocation failure. */
static size_t kl_search(const uint64_t *h, size_t n, size_t center, size_t extent, size_t levels) {
  const bool two_sided = center > 0;
  const size_t first = two_sided ? levels / 2 : levels;
  if (extent <= first) return extent;
  const size_t max_len = two_sided ? 2 * extent : extent;
  uint64_t *prefix = malloc((n + 1) * sizeof *prefix), *flat = malloc(n * sizeof *flat);
  kl_work w = {malloc(max_len * sizeof(double)), malloc(max_len * sizeof(double)),
               malloc(levels * sizeof(double)), malloc(levels * sizeof(size_t))};
  size_t best = 0;
  if (prefix != NULL && flat != NULL && w.p != NULL && w.q != NULL && w.level_sum != NULL &&
      w.level_nonzero != NULL) {
    /* The bins next to 0 count as their outer neighbours, as NVIDIA's
     * pytorch-quantization (TensorRT's toolkit) does: zeros, most of a ReLU
     * output, are exact on every grid. Then the other spikes. */
    memcpy(prefix, h, n * sizeof *prefix);
    prefix[center] = prefix[center + 1];
    if (two_sided) prefix[center - 1] = prefix[center - 2];
    flatten_spikes(prefix, n, flat);
    prefix[0] = 0;
    for (size_t s = 0; s < n; ++s) prefix[s + 1] = prefix[s] + flat[s];
    double best_kl = INFINITY;
    best = extent;
    for (size_t i = first; i <= extent; ++i) {
      const size_t lo = two_sided ? center - i : 0, hi = center + i;
      const double kl = window_divergence(flat, prefix, n, lo, hi, levels, &w);
      if (kl <= best_kl) { /* ties: the wider range clips less */
        best_kl = kl;
        best = i;
      }
    }
  }
  free(prefix);
  free(flat);
  free(w.p);
  free(w.q);
  free(w.level_sum);
  free(w.level_nonzero);
  return best;
}

/* Expected squared error, in bin widths squared, of clipping to an edge the
 * values of bins 0, 1, ... beyond it (each uniform inside its bin: a value
 * d + u bins past the edge, u in [0, 1), costs (d + u)^2, mean d^2 + d + 1/3).
 * clip[i] is the cost of the edge at bin i, out[i] the values beyond it;
 * side[k] counts the values k bins from 0. */
static void clip_costs(const uint64_t *side, size_t extent, double *clip, double *out) {
  for (size_t i = 0; i <= extent; ++i) {
    double cost = 0.0, beyond = 0.0;
    for (size_t k = i; k < extent; ++k) {
      const double d = (double)(k - i);
      cost += (double)side[k] * (d * d + d + 1.0 / 3.0);
      beyond += (double)side[k];
    }
    clip[i] = cost;
    out[i] = beyond;
  }
}

/* Grid search over edges [-l, h] (in bins) minimising clipping cost plus
 * rounding noise step^2 / 12 of the values inside, step = (l + h) / steps.
 * neg[k] / pos[k] count the values k bins below / above 0. Symmetric: pos
 * holds |x|, neg is unused and l = h. Returns false on allocation failure. */
static bool mse_search(const uint64_t *neg, size_t neg_extent, const uint64_t *pos,
                       size_t pos_extent, double total, bool symmetric, double steps,
                       size_t *best_l, size_t *best_h) {
  if (symmetric) neg_extent = 0;
  double *neg_clip = malloc((neg_extent + 1) * sizeof(double));
  double *neg_out = malloc((neg_extent + 1) * sizeof(double));
  double *pos_clip = malloc((pos_extent + 1) * sizeof(double));
  double *pos_out = malloc((pos_extent + 1) * sizeof(double));
  const bool ok = neg_clip != NULL && neg_out != NULL && pos_clip != NULL && pos_out != NULL;
  if (ok) {
    clip_costs(neg, neg_extent, neg_clip, neg_out);
    clip_costs(pos, pos_extent, pos_clip, pos_out);
    double best = INFINITY;
    *best_l = symmetric ? pos_extent : neg_extent;
    *best_h = pos_extent;
    for (size_t l = 0; l <= neg_extent; ++l) {
      for (size_t h = 0; h <= pos_extent; ++h) {
        const size_t span = symmetric ? 2 * h : l + h;
        if (span == 0) continue;
        const double step = (double)span / steps;
        const double inside = total - neg_out[l] - pos_out[h];
        const double cost = neg_clip[l] + pos_clip[h] + inside * step * step / 12.0;
        if (cost < best) {
          best = cost;
          *best_l = symmetric ? h : l;
          *best_h = h;
        }
      }
    }
  }
  free(neg_clip);
  free(neg_out);
  free(pos_clip);
  free(pos_out);
  return ok;
}

/* Bins from 0 to just past the last nonzero bin of a side. */
static size_t side_extent(const uint64_t *side, size_t bins) {
  size_t extent = bins;
  while (extent > 0 && side[extent - 1] == 0) --extent;
  return extent;
}

/* [*lo, *hi] of a histogram method for a tensor that is not constant. */
static q8_status hist_range(const q8_calibrator *c, float *lo, float *hi) {
  const q8_calib_options *o = &c->options;
  const size_t bins = o->bins;
  const uint64_t *hist = c->hist;
  const double width = ldexp(1.0, c->exponent);
  const float amax = fmaxf(-c->observed_min, c->observed_max);
  /* neg[k] = hist[bins - 1 - k]: reversed copy so both sides read outwards. */
  uint64_t *neg = malloc(bins * sizeof *neg), *fold = malloc(bins * sizeof *fold);
  if (neg == NULL || fold == NULL) {
    free(neg);
    free(fold);
    return q8_fail(Q8_ERR_NOMEM, "calibrator: out of memory for the %s search",
                   q8_calib_method_name(o->method));
  }
  const uint64_t *pos = hist + bins;
  for (size_t k = 0; k < bins; ++k) {
    neg[k] = hist[bins - 1 - k];
    fold[k] = neg[k] + pos[k];
  }
  const size_t neg_extent = side_extent(neg, bins), pos_extent = side_extent(pos, bins);
  const size_t fold_extent = neg_extent > pos_extent ? neg_extent : pos_extent;
  const double total = (double)c->values;
  q8_status st = Q8_OK;
  double l = 0.0, h = 0.0; /* the range in bins: [-l, h] */
  switch (o->method) {
    case Q8_CALIB_PERCENTILE: {
      const double q = o->percentile / 100.0;
      if (o->symmetric) {
        l = h = hist_quantile(fold, bins, q * total);
      } else {
        l = (double)bins - hist_quantile(hist, 2 * bins, (1.0 - q) * total);
        h = hist_quantile(hist, 2 * bins, q * total) - (double)bins;
      }
      break;
    }
    case Q8_CALIB_ENTROPY: {
      /* Asymmetric with every value on one side of 0: that side gets all
       * 256 levels, as pytorch-quantization does for unsigned tensors; a
       * window [-T, T] would leave half of them empty. */
      const bool one_sided = !o->symmetric && (neg_extent == 0 || pos_extent == 0);
      const size_t i =
          o->symmetric ? kl_search(fold, bins, 0, fold_extent, HALF_LEVELS)
          : one_sided  ? kl_search(fold, bins, 0, fold_extent, ALL_LEVELS)
                       : kl_search(hist, 2 * bins, bins, fold_extent, ALL_LEVELS);
      if (i == 0) st = q8_fail(Q8_ERR_NOMEM, "calibrator: out of memory for the entropy search");
      l = one_sided && neg_extent == 0 ? 0.0 : (double)i;
      h = one_sided && pos_extent == 0 ? 0.0 : (double)i;
      break;
    }
    case Q8_CALIB_MSE: {
      size_t best_l = 0, best_h = 0;
      const bool ok =
          o->symmetric
              ? mse_search(NULL, 0, fold, fold_extent, total, true, 2.0 * 127.0, &best_l, &best_h)
              : mse_search(neg, neg_extent, pos, pos_extent, total, false,
                           (double)(q8_dtype_max(o->dtype) - q8_dtype_min(o->dtype)), &best_l,
                           &best_h);
      if (!ok) st = q8_fail(Q8_ERR_NOMEM, "calibrator: out of memory for the mse search");
      l = (double)best_l;
      h = (double)best_h;
      break;
    }
    default: st = q8_fail(Q8_ERR_INTERNAL, "calibrator: %s has no histogram", q8_calib_method_name(o->method));
  }
  free(neg);
  free(fold);
  if (st != Q8_OK) return st;
  /* Bin edges may lie beyond what was seen: never beyond the observed values. */
  if (o->symmetric) {
    *hi = fminf((float)(h * width), amax);
    *lo = -*hi;
  } else {
    *lo = fmaxf((float)(-l * width), c->observed_min);
    *hi = fminf((float)(h * width), c->observed_max);
  }
  return Q8_OK;
}

q8_status q8_calibrator_range(const q8_calibrator *calibrator, q8_calib_range *range) {
  if (calibrator == NULL) return q8_fail(Q8_ERR_NULL, "calibrator is NULL");
  if (range == NULL) return q8_fail(Q8_ERR_NULL, "calibration range output is NULL");
  const q8_calibrator *c = calibrator;
  const q8_calib_options *o = &c->options;
  if (c->values == 0) {
    return q8_fail(Q8_ERR_ARG, "%s calibration: no finite value observed (%zu NaN/Inf skipped)",
                   q8_calib_method_name(o->method), c->nonfinite);
  }
  *range = (q8_calib_range){.observed_min = c->observed_min,
                            .observed_max = c->observed_max,
                            .values = c->values,
                            .nonfinite = c->nonfinite,
                            .constant = c->observed_min == c->observed_max};
  float lo = c->observed_min, hi = c->observed_max;
  if (!range->constant) {
    if (o->method == Q8_CALIB_EMA) {
      lo = (float)c->ema_min;
      hi = (float)c->ema_max;
    } else if (c->hist != NULL) {
      q8_status st = hist_range(c, &lo, &hi);
      if (st != Q8_OK) return st;
    }
  }
  lo = fminf(lo, 0.0f);
  hi = fmaxf(hi, 0.0f);
  if (o->symmetric) {
    hi = fmaxf(-lo, hi);
    lo = -hi;
  }
  if (lo == hi) { /* all zero: any nonzero width represents 0 exactly */
    lo = -1.0f;
    hi = 1.0f;
  }
  range->min = lo;
  range->max = hi;
  return Q8_OK;
}

/* ---- scale and zero point ------------------------------------------------- */

q8_status q8_quant_params_from_range(float min, float max, q8_dtype dtype, bool symmetric,
                                     float *scale, int32_t *zero_point) {
  if (scale == NULL || zero_point == NULL) {
    return q8_fail(Q8_ERR_NULL, "quant params from range: scale or zero_point output is NULL");
  }
  if (dtype != Q8_INT8 && dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "quant params from range: dtype %d must be Q8_INT8 or Q8_UINT8",
                   (int)dtype);
  }
  if (!isfinite(min) || !isfinite(max) || min > max) {
    return q8_fail(Q8_ERR_ARG, "quant params from range: [%g, %g] is not a finite range",
                   (double)min, (double)max);
  }
  min = fminf(min, 0.0f);
  max = fmaxf(max, 0.0f);
  const int32_t qmin = q8_dtype_min(dtype), qmax = q8_dtype_max(dtype);
  /* float32 arithmetic throughout, as onnxruntime (numpy float32). */
  float s;
  if (symmetric) {
    s = fmaxf(-min, max) / 127.0f;
  } else {
    s = (max - min) / (float)(qmax - qmin);
  }
  if (!isfinite(s)) {
    return q8_fail(Q8_ERR_ARG, "quant params from range: [%g, %g] is wider than float can scale",
                   (double)min, (double)max);
  }
  if (s < FLT_MIN) {
    *scale = 1.0f;
    *zero_point = symmetric && dtype == Q8_UINT8 ? 128 : 0;
    return Q8_OK;
  }
  int32_t zp;
  if (symmetric) {
    zp = dtype == Q8_UINT8 ? 128 : 0;
  } else {
    const float z = nearbyintf((float)qmin - min / s);
    zp = z < (float)qmin ? qmin : z > (float)qmax ? qmax : (int32_t)z;
  }
  *scale = s;
  *zero_point = zp;
  return Q8_OK;
}
