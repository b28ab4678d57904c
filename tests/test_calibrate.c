/* Range calibrators: every method on distributions whose answer is known,
 * batching independence, NaN/Inf, constant tensors, option errors, and the
 * scale / zero point of a range against hand-computed values. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "quant/calibrate.h"
#include "tests/support/q8test.h"

static const q8_calib_method all_methods[] = {Q8_CALIB_MINMAX, Q8_CALIB_EMA, Q8_CALIB_PERCENTILE,
                                              Q8_CALIB_ENTROPY, Q8_CALIB_MSE};
#define METHODS (sizeof all_methods / sizeof all_methods[0])

/* ---- data ------------------------------------------------------------------ */

static float *gaussian(size_t n, uint64_t stream) {
  q8t_rng r = q8t_rng_new(stream);
  float *x = malloc(n * sizeof *x);
  cr_assert_not_null(x);
  for (size_t i = 0; i < n; i += 2) { /* Box-Muller */
    const double u1 = ((double)(q8t_next(&r) >> 11) + 1.0) / 9007199254740993.0;
    const double u2 = (double)(q8t_next(&r) >> 11) / 9007199254740992.0;
    const double radius = sqrt(-2.0 * log(u1));
    x[i] = (float)(radius * cos(6.283185307179586 * u2));
    if (i + 1 < n) x[i + 1] = (float)(radius * sin(6.283185307179586 * u2));
  }
  return x;
}

static float *uniform(size_t n, float lo, float hi, uint64_t stream) {
  q8t_rng r = q8t_rng_new(stream);
  float *x = malloc(n * sizeof *x);
  cr_assert_not_null(x);
  for (size_t i = 0; i < n; ++i) x[i] = q8t_uniform(&r, lo, hi);
  return x;
}

/* ---- calibrator helpers ------------------------------------------------------ */

static q8_calib_options options_for(q8_calib_method method, bool symmetric, q8_dtype dtype) {
  q8_calib_options o;
  q8_calib_options_default(&o, method);
  o.symmetric = symmetric;
  o.dtype = dtype;
  return o;
}

/* Feeds x in batches of `batch` values (the last one shorter) and returns the range. */
static q8_calib_range calibrate(const q8_calib_options *o, const float *x, size_t n,
                                size_t batch) {
  q8_calibrator *c = NULL;
  cr_assert_eq(q8_calibrator_create(o, &c), Q8_OK, "%s", q8_error_detail());
  for (size_t i = 0; i < n; i += batch) {
    const size_t len = n - i < batch ? n - i : batch;
    cr_assert_eq(q8_calibrator_observe(c, x + i, len), Q8_OK, "%s", q8_error_detail());
  }
  q8_calib_range range;
  cr_assert_eq(q8_calibrator_range(c, &range), Q8_OK, "%s", q8_error_detail());
  q8_calibrator_destroy(c);
  cr_assert_leq(range.min, 0.0f);
  cr_assert_geq(range.max, 0.0f);
  cr_assert_lt(range.min, range.max);
  return range;
}

static q8_calib_range calibrate_with(q8_calib_method method, bool symmetric, const float *x,
                                     size_t n) {
  const q8_calib_options o = options_for(method, symmetric, Q8_INT8);
  return calibrate(&o, x, n, 4096);
}

/* The histogram's bin width for these values: the smallest power of two w
 * with bins x w > max |x| (calibrate.h). */
static double bin_width(const float *x, size_t n, size_t bins) {
  float amax = 0.0f;
  for (size_t i = 0; i < n; ++i) amax = fmaxf(amax, fabsf(x[i]));
  double w = ldexp(1.0, -160);
  while ((double)bins * w <= (double)amax) w *= 2.0;
  return w;
}

static int compare_floats(const void *a, const void *b) {
  const float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The value with a fraction q of the n sorted values below it. */
static float exact_quantile(const float *sorted, size_t n, double q) {
  double pos = q * (double)n;
  size_t i = pos <= 0.0 ? 0 : (size_t)ceil(pos) - 1;
  return sorted[i < n ? i : n - 1];
}

/* MSE of quantizing x to the range's int8/uint8 grid (ONNX rounding) and back. */
static double measured_mse(const float *x, size_t n, float min, float max, q8_dtype dtype,
                           bool symmetric) {
  float scale;
  int32_t zp;
  cr_assert_eq(q8_quant_params_from_range(min, max, dtype, symmetric, &scale, &zp), Q8_OK);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t q =
        q8_ref_quantize_one(x[i], scale, zp, dtype, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE);
    const double e = (double)(q - zp) * scale - x[i];
    sum += e * e;
  }
  return sum / (double)n;
}

/* ---- names and options --------------------------------------------------------- */

Test(calibrate, method_names_round_trip) {
  const char *names[] = {"minmax", "ema", "percentile", "entropy", "mse"};
  for (size_t i = 0; i < METHODS; ++i) {
    q8_calib_method m = (q8_calib_method)99;
    cr_assert_eq(q8_calib_method_parse(names[i], &m), Q8_OK);
    cr_assert_eq(m, all_methods[i]);
    cr_assert_str_eq(q8_calib_method_name(m), names[i]);
  }
  cr_assert_str_eq(q8_calib_method_name((q8_calib_method)42), "unknown");
}

Test(calibrate, unknown_method_name_lists_the_valid_ones) {
  q8_calib_method m;
  cr_assert_eq(q8_calib_method_parse("kl", &m), Q8_ERR_ARG);
  cr_assert_not_null(strstr(q8_error_detail(), "'kl'"), "%s", q8_error_detail());
  cr_assert_not_null(strstr(q8_error_detail(), "minmax, ema, percentile, entropy, mse"));
  cr_assert_eq(q8_calib_method_parse("MinMax", &m), Q8_ERR_ARG, "names are exact");
  cr_assert_eq(q8_calib_method_parse("", &m), Q8_ERR_ARG);
  cr_assert_eq(q8_calib_method_parse(NULL, &m), Q8_ERR_NULL);
  cr_assert_eq(q8_calib_method_parse("mse", NULL), Q8_ERR_NULL);
}

Test(calibrate, defaults) {
  q8_calib_options o;
  q8_calib_options_default(&o, Q8_CALIB_PERCENTILE);
  cr_assert_eq(o.method, Q8_CALIB_PERCENTILE);
  cr_assert_eq(o.percentile, 99.99);
  cr_assert_eq(o.ema_momentum, 0.01);
  cr_assert_eq(o.bins, 2048);
  cr_assert_eq(o.dtype, Q8_INT8);
  cr_assert_not(o.symmetric);
}

/* The status for options changed by `edit`, and the message must name `word`. */
static void expect_bad_options(q8_calib_method method, void (*edit)(q8_calib_options *),
                               const char *word) {
  q8_calib_options o;
  q8_calib_options_default(&o, method);
  edit(&o);
  q8_calibrator *c = (q8_calibrator *)&o; /* must be reset to NULL on failure */
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_ERR_ARG, "%s: %s", word, q8_error_detail());
  cr_assert_null(c);
  cr_assert_not_null(strstr(q8_error_detail(), word), "'%s' not in: %s", word,
                     q8_error_detail());
}

static void percentile_zero(q8_calib_options *o) { o->percentile = 0.0; }
static void percentile_above(q8_calib_options *o) { o->percentile = 100.5; }
static void percentile_nan(q8_calib_options *o) { o->percentile = NAN; }
static void bins_zero(q8_calib_options *o) { o->bins = 0; }
static void bins_huge(q8_calib_options *o) { o->bins = (size_t)1 << 40; }
static void bins_few_for_entropy(q8_calib_options *o) { o->bins = 255; }
static void momentum_zero(q8_calib_options *o) { o->ema_momentum = 0.0; }
static void momentum_above(q8_calib_options *o) { o->ema_momentum = 1.5; }
static void dtype_int32(q8_calib_options *o) { o->dtype = Q8_INT32; }
static void method_out_of_enum(q8_calib_options *o) { o->method = (q8_calib_method)7; }

Test(calibrate, bad_options) {
  expect_bad_options(Q8_CALIB_PERCENTILE, percentile_zero, "percentile 0");
  expect_bad_options(Q8_CALIB_PERCENTILE, percentile_above, "percentile 100.5");
  expect_bad_options(Q8_CALIB_PERCENTILE, percentile_nan, "percentile nan");
  expect_bad_options(Q8_CALIB_PERCENTILE, bins_zero, "bins 0");
  expect_bad_options(Q8_CALIB_MSE, bins_zero, "bins 0");
  expect_bad_options(Q8_CALIB_MSE, bins_huge, "bins");
  expect_bad_options(Q8_CALIB_ENTROPY, bins_few_for_entropy, "bins 255");
  expect_bad_options(Q8_CALIB_EMA, momentum_zero, "ema_momentum 0");
  expect_bad_options(Q8_CALIB_EMA, momentum_above, "ema_momentum 1.5");
  expect_bad_options(Q8_CALIB_MINMAX, dtype_int32, "dtype");
  expect_bad_options(Q8_CALIB_MINMAX, method_out_of_enum, "method 7");

  /* Fields a method does not use are not checked. */
  q8_calib_options o;
  q8_calib_options_default(&o, Q8_CALIB_MINMAX);
  o.percentile = 0.0;
  o.bins = 0;
  q8_calibrator *c = NULL;
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_OK);
  q8_calibrator_destroy(c);
  o.percentile = 100.0; /* the upper end is allowed */
  o.method = Q8_CALIB_PERCENTILE;
  o.bins = 2;
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_OK, "%s", q8_error_detail());
  q8_calibrator_destroy(c);
}

Test(calibrate, null_arguments) {
  q8_calib_options o;
  q8_calib_options_default(&o, Q8_CALIB_MINMAX);
  q8_calibrator *c = NULL;
  cr_assert_eq(q8_calibrator_create(NULL, &c), Q8_ERR_NULL);
  cr_assert_neq(q8_error_detail()[0], '\0');
  cr_assert_eq(q8_calibrator_create(&o, NULL), Q8_ERR_NULL);
  cr_assert_eq(q8_calibrator_observe(NULL, (const float[]){1.0f}, 1), Q8_ERR_NULL);
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_OK);
  cr_assert_eq(q8_calibrator_observe(c, NULL, 3), Q8_ERR_NULL);
  cr_assert_not_null(strstr(q8_error_detail(), "3 values"), "%s", q8_error_detail());
  cr_assert_eq(q8_calibrator_observe(c, NULL, 0), Q8_OK, "an empty batch is no batch");
  q8_calib_range range;
  cr_assert_eq(q8_calibrator_range(c, NULL), Q8_ERR_NULL);
  cr_assert_eq(q8_calibrator_range(NULL, &range), Q8_ERR_NULL);
  cr_assert_eq(q8_calibrator_range(c, &range), Q8_ERR_ARG, "nothing observed yet");
  cr_assert_not_null(strstr(q8_error_detail(), "no finite value"), "%s", q8_error_detail());
  q8_calibrator_destroy(c);
  q8_calibrator_destroy(NULL);
  q8_calib_options_default(NULL, Q8_CALIB_MSE); /* no crash */
}

/* ---- methods ---------------------------------------------------------------- */

Test(calibrate, minmax_is_exact) {
  const size_t n = 10007;
  float *x = uniform(n, -2.0f, 5.0f, 1);
  x[1234] = -7.25f;
  x[9999] = 11.5f;
  for (int sym = 0; sym <= 1; ++sym) {
    for (size_t batch = 1; batch <= n; batch *= 37) {
      const q8_calib_options o = options_for(Q8_CALIB_MINMAX, sym, Q8_UINT8);
      const q8_calib_range r = calibrate(&o, x, n, batch);
      cr_assert_eq(r.observed_min, -7.25f);
      cr_assert_eq(r.observed_max, 11.5f);
      cr_assert_eq(r.min, sym ? -11.5f : -7.25f);
      cr_assert_eq(r.max, 11.5f);
      cr_assert_eq(r.values, n);
      cr_assert_eq(r.nonfinite, 0);
      cr_assert_not(r.constant);
    }
  }
  /* Positive data: the range is widened to contain 0. */
  const float positive[] = {2.0f, 3.0f, 2.5f};
  const q8_calib_range r = calibrate_with(Q8_CALIB_MINMAX, false, positive, 3);
  cr_assert_eq(r.min, 0.0f);
  cr_assert_eq(r.max, 3.0f);
  cr_assert_eq(r.observed_min, 2.0f);
  free(x);
}

Test(calibrate, ema_over_three_batches) {
  /* Batch min/max: (-1, 2), (-3, 1), (0.5, 4). With momentum 0.1:
   * min: -1 -> 0.1 * -3 + 0.9 * -1 = -1.2 -> 0.1 * 0.5 + 0.9 * -1.2 = -1.03
   * max:  2 -> 0.1 *  1 + 0.9 *  2 =  1.9 -> 0.1 * 4   + 0.9 *  1.9 =  2.11 */
  const float b1[] = {0.0f, -1.0f, 2.0f, 1.5f}, b2[] = {-3.0f, 1.0f, 0.0f}, b3[] = {4.0f, 0.5f};
  const float nans[] = {NAN, INFINITY};
  q8_calib_options o = options_for(Q8_CALIB_EMA, false, Q8_INT8);
  o.ema_momentum = 0.1;
  q8_calibrator *c = NULL;
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_OK);
  cr_assert_eq(q8_calibrator_observe(c, b1, 4), Q8_OK);
  cr_assert_eq(q8_calibrator_observe(c, nans, 2), Q8_OK, "no finite value: averages unchanged");
  cr_assert_eq(q8_calibrator_observe(c, b2, 3), Q8_OK);
  q8_calib_range r;
  cr_assert_eq(q8_calibrator_range(c, &r), Q8_OK);
  cr_assert_float_eq(r.min, -1.2f, 1e-6f);
  cr_assert_float_eq(r.max, 1.9f, 1e-6f);
  cr_assert_eq(q8_calibrator_observe(c, b3, 2), Q8_OK);
  cr_assert_eq(q8_calibrator_range(c, &r), Q8_OK);
  cr_assert_float_eq(r.min, -1.03f, 1e-6f);
  cr_assert_float_eq(r.max, 2.11f, 1e-6f);
  cr_assert_eq(r.observed_min, -3.0f);
  cr_assert_eq(r.observed_max, 4.0f);
  cr_assert_eq(r.values, 9);
  cr_assert_eq(r.nonfinite, 2);
  q8_calibrator_destroy(c);

  /* Symmetric: max(|-1.03|, |2.11|). */
  o.symmetric = true;
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_OK);
  q8_calibrator_observe(c, b1, 4);
  q8_calibrator_observe(c, b2, 3);
  q8_calibrator_observe(c, b3, 2);
  cr_assert_eq(q8_calibrator_range(c, &r), Q8_OK);
  cr_assert_float_eq(r.max, 2.11f, 1e-6f);
  cr_assert_eq(r.min, -r.max);
  q8_calibrator_destroy(c);
}

/* Percentiles of a Gaussian and a skewed uniform against the sorted data. */
Test(calibrate, percentile_within_one_bin) {
  const size_t n = 100003;
  float *x = gaussian(n, 2);
  for (size_t i = 0; i < n; i += 3) x[i] = 0.5f * fabsf(x[i]) + 1.0f; /* skewed */
  float *sorted = malloc(n * sizeof *sorted), *abs_sorted = malloc(n * sizeof *abs_sorted);
  cr_assert(sorted && abs_sorted);
  memcpy(sorted, x, n * sizeof *x);
  for (size_t i = 0; i < n; ++i) abs_sorted[i] = fabsf(x[i]);
  qsort(sorted, n, sizeof *sorted, compare_floats);
  qsort(abs_sorted, n, sizeof *abs_sorted, compare_floats);
  const double width = bin_width(x, n, 2048);
  const double percentiles[] = {99.99, 99.9, 99.0, 90.0, 60.0, 100.0};
  for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; ++i) {
    q8_calib_options o = options_for(Q8_CALIB_PERCENTILE, false, Q8_INT8);
    o.percentile = percentiles[i];
    const double q = o.percentile / 100.0;
    const q8_calib_range a = calibrate(&o, x, n, 1000);
    const float lo = fminf(exact_quantile(sorted, n, 1.0 - q), 0.0f);
    const float hi = exact_quantile(sorted, n, q);
    cr_assert_leq(fabs(a.min - lo), width, "p %g: min %g, exact %g, bin %g", o.percentile,
                  (double)a.min, (double)lo, width);
    cr_assert_leq(fabs(a.max - hi), width, "p %g: max %g, exact %g", o.percentile,
                  (double)a.max, (double)hi);
    o.symmetric = true;
    const q8_calib_range s = calibrate(&o, x, n, 1000);
    const float amax = exact_quantile(abs_sorted, n, q);
    cr_assert_leq(fabs(s.max - amax), width, "p %g: |x| %g, exact %g", o.percentile,
                  (double)s.max, (double)amax);
    cr_assert_eq(s.min, -s.max);
    if (o.percentile == 100.0) {
      cr_assert_eq(a.min, sorted[0], "p 100 is the observed minimum");
      cr_assert_eq(a.max, sorted[n - 1]);
      cr_assert_eq(s.max, abs_sorted[n - 1]);
    }
  }
  free(x);
  free(sorted);
  free(abs_sorted);
}

static q8_calib_range entropy_range(const char *what, bool symmetric, const float *x, size_t n) {
  const q8_calib_range r = calibrate_with(Q8_CALIB_ENTROPY, symmetric, x, n);
  cr_log_info("entropy %s: %s -> [%g, %g]", symmetric ? "sym" : "asym", what, (double)r.min,
              (double)r.max);
  return r;
}

/* A Gaussian with a few huge outliers: the KL threshold clips them far below
 * the outliers; a uniform distribution keeps nearly all its range. */
Test(calibrate, entropy_clips_outliers_keeps_uniform) {
  enum { N = 200000 };
  float *g = gaussian(N, 3), *u = uniform(N, -1.0f, 1.0f, 4), *relu = uniform(N, 0.0f, 3.0f, 5);
  for (size_t i = 0; i < 6; ++i) g[i * 30011] = i % 2 ? -50.0f : 50.0f;
  for (size_t i = 0; i < N; i += 2) relu[i] = 0.0f;
  float *relu_g = gaussian(N, 10);
  for (size_t i = 0; i < N; ++i) relu_g[i] = fmaxf(relu_g[i], 0.0f);
  for (int sym = 0; sym <= 1; ++sym) {
    const q8_calib_range rg = entropy_range("gaussian + outliers at 50", sym, g, N);
    cr_assert_lt(rg.max, 10.0f, "clipped far below the outliers");
    cr_assert_gt(rg.max, 2.5f, "but not into the body of the Gaussian");
    cr_assert(rg.min > -10.0f && rg.min < -2.5f);
    const q8_calib_range ru = entropy_range("uniform [-1, 1]", sym, u, N);
    cr_assert(ru.max >= 0.95f && ru.min <= -0.95f, "nearly all of a uniform is kept");
    const q8_calib_range rr = entropy_range("relu of uniform [0, 3]", sym, relu, N);
    cr_assert_geq(rr.max, 2.85f);
    cr_assert_eq(rr.min, sym ? -rr.max : 0.0f);
    /* The spike of zeros must not drag the threshold into the body (the
     * search without the zero-bin rule picks 1.99 here). */
    const q8_calib_range rz = entropy_range("relu of gaussian", sym, relu_g, N);
    cr_assert_gt(rz.max, 3.0f);
  }
  free(relu_g);
  free(g);
  free(u);
  free(relu);
}

/* A ReLU output as a CNN on images gives it: over half exact zeros, spikes of
 * repeated values (ReLU(bias) of the channels over a constant background)
 * inside an exponential bulk, and a long tail. The KL search on the raw
 * histogram gave each spike its own level and clipped just past the last
 * one (0.64 here; on a real CNN 0.65 of 7.4, 5 dB of SQNR); the range must
 * keep the bulk and quantize about as well as minmax. */
Test(calibrate, entropy_relu_with_spikes_keeps_the_bulk) {
  enum { N = 300000, SPIKES = 5 };
  static const float spikes[SPIKES] = {0.28f, 0.42f, 0.54f, 0.60f, 0.64f};
  q8t_rng r = q8t_rng_new(11);
  float *x = malloc(N * sizeof *x), *sorted = malloc(N * sizeof *sorted);
  cr_assert(x != NULL && sorted != NULL);
  for (size_t i = 0; i < N; ++i) {
    const float u = q8t_uniform(&r, 0.0f, 1.0f);
    if (u < 0.55f) {
      x[i] = 0.0f;
    } else if (u < 0.55f + 0.025f * SPIKES) {
      x[i] = spikes[(size_t)((u - 0.55f) / 0.025f) % SPIKES];
    } else { /* exponential, mean 0.6 */
      x[i] = -0.6f * logf(q8t_uniform(&r, FLT_MIN, 1.0f));
    }
  }
  memcpy(sorted, x, N * sizeof *x);
  qsort(sorted, N, sizeof *sorted, compare_floats);
  const float p999 = exact_quantile(sorted, N, 0.999);
  for (int sym = 0; sym <= 1; ++sym) {
    const q8_calib_range re = entropy_range("relu with spikes and a tail", sym, x, N);
    const q8_calib_range rx = calibrate_with(Q8_CALIB_MINMAX, sym, x, N);
    const double e_entropy = measured_mse(x, N, re.min, re.max, Q8_INT8, sym);
    const double e_minmax = measured_mse(x, N, rx.min, rx.max, Q8_INT8, sym);
    cr_log_info("  max %g (99.9th percentile %g, observed %g), mse %.3g vs minmax %.3g",
                (double)re.max, (double)p999, (double)re.observed_max, e_entropy, e_minmax);
    cr_assert_geq(re.max, p999, "the bulk is kept");
    cr_assert_lt(e_entropy, 2.0 * e_minmax);
    if (!sym) cr_assert_eq(re.min, 0.0f, "no value is negative");
  }
  free(x);
  free(sorted);
}

/* The mse range beats minmax and a too-small range on the measured error. */
Test(calibrate, mse_beats_minmax_and_small_range) {
  const size_t n = 100000;
  float *x = gaussian(n, 6);
  for (size_t i = 0; i < 20; ++i) x[i * 4999] *= 6.0f; /* a heavier tail */
  for (int sym = 0; sym <= 1; ++sym) {
    for (q8_dtype dt = Q8_INT8; dt <= Q8_UINT8; ++dt) {
      const q8_calib_options om = options_for(Q8_CALIB_MSE, sym, dt);
      const q8_calib_options ox = options_for(Q8_CALIB_MINMAX, sym, dt);
      const q8_calib_range rm = calibrate(&om, x, n, 5000);
      const q8_calib_range rx = calibrate(&ox, x, n, 5000);
      const double e_mse = measured_mse(x, n, rm.min, rm.max, dt, sym);
      const double e_minmax = measured_mse(x, n, rx.min, rx.max, dt, sym);
      const double e_small = measured_mse(x, n, rm.min / 3, rm.max / 3, dt, sym);
      cr_log_info("mse %s %s: [%g, %g] mse %.3g; minmax [%g, %g] %.3g; a third %.3g",
                  sym ? "sym" : "asym", dt == Q8_INT8 ? "int8" : "uint8", (double)rm.min,
                  (double)rm.max, e_mse, (double)rx.min, (double)rx.max, e_minmax, e_small);
      cr_assert_lt(e_mse, e_minmax);
      cr_assert_lt(e_mse, e_small);
      cr_assert_lt(rm.max, rx.max, "the outliers are clipped");
    }
  }
  free(x);
}

/* ---- batching, NaN/Inf, constants, extremes ------------------------------------ */

Test(calibrate, batching_does_not_change_ranges) {
  const size_t n = 60013;
  float *x = gaussian(n, 7);
  for (size_t i = 0; i < n; i += 5) x[i] = fabsf(x[i]) * 0.3f;
  /* The largest values arrive late, forcing the histogram to grow. */
  x[n - 2] = 9.0f;
  x[n - 1] = -20.0f;
  const size_t batches[] = {1, 7, 999, 4096, n};
  for (size_t m = 0; m < METHODS; ++m) {
    /* ema is defined by its batches: only the same batches must agree. */
    const bool by_batch = all_methods[m] == Q8_CALIB_EMA;
    for (int sym = 0; sym <= 1; ++sym) {
      const q8_calib_options o = options_for(all_methods[m], sym, Q8_UINT8);
      for (size_t b = 0; b < sizeof batches / sizeof batches[0]; ++b) {
        const q8_calib_range ref = calibrate(&o, x, n, by_batch ? batches[b] : n);
        const q8_calib_range r = calibrate(&o, x, n, batches[b]);
        cr_assert_eq(r.min, ref.min, "%s sym %d batch %zu: %g vs %g",
                     q8_calib_method_name(all_methods[m]), sym, batches[b], (double)r.min,
                     (double)ref.min);
        cr_assert_eq(r.max, ref.max, "%s sym %d batch %zu: %g vs %g",
                     q8_calib_method_name(all_methods[m]), sym, batches[b], (double)r.max,
                     (double)ref.max);
      }
    }
  }
  free(x);
}

/* Parts calibrated separately and merged give exactly the whole. */
Test(calibrate, merge_equals_one_calibrator) {
  const size_t n = 30011;
  float *x = gaussian(n, 11);
  x[100] = 40.0f;  /* the parts get different histogram widths */
  x[20000] = 0.0f; /* and the last part sees only zeros */
  for (size_t i = 29000; i < n; ++i) x[i] = 0.0f;
  const size_t cuts[] = {0, 10000, 29000, n};
  for (size_t m = 0; m < METHODS; ++m) {
    for (int sym = 0; sym <= 1; ++sym) {
      const q8_calib_options o = options_for(all_methods[m], sym, Q8_INT8);
      q8_calibrator *parts[3];
      for (size_t p = 0; p < 3; ++p) {
        cr_assert_eq(q8_calibrator_create(&o, &parts[p]), Q8_OK);
        cr_assert_eq(q8_calibrator_observe(parts[p], x + cuts[p], cuts[p + 1] - cuts[p]), Q8_OK);
      }
      /* Merge in an order where the finer histogram is merged into the coarser and back. */
      const q8_status s1 = q8_calibrator_merge(parts[2], parts[1]);
      if (all_methods[m] == Q8_CALIB_EMA) {
        cr_assert_eq(s1, Q8_ERR_UNSUPPORTED);
        cr_assert_not_null(strstr(q8_error_detail(), "ema"), "%s", q8_error_detail());
      } else {
        cr_assert_eq(s1, Q8_OK, "%s", q8_error_detail());
        cr_assert_eq(q8_calibrator_merge(parts[0], parts[2]), Q8_OK);
        q8_calib_range merged;
        cr_assert_eq(q8_calibrator_range(parts[0], &merged), Q8_OK);
        const q8_calib_range whole = calibrate(&o, x, n, 777);
        cr_assert_eq(merged.min, whole.min, "%s", q8_calib_method_name(all_methods[m]));
        cr_assert_eq(merged.max, whole.max, "%s", q8_calib_method_name(all_methods[m]));
        cr_assert_eq(merged.values, n);
        cr_assert_eq(merged.observed_max, 40.0f);
      }
      for (size_t p = 0; p < 3; ++p) q8_calibrator_destroy(parts[p]);
    }
  }
  /* Different options, itself, NULL. */
  q8_calib_options a = options_for(Q8_CALIB_PERCENTILE, false, Q8_INT8), b = a;
  b.percentile = 99.0;
  q8_calibrator *ca = NULL, *cb = NULL;
  cr_assert_eq(q8_calibrator_create(&a, &ca), Q8_OK);
  cr_assert_eq(q8_calibrator_create(&b, &cb), Q8_OK);
  cr_assert_eq(q8_calibrator_merge(ca, cb), Q8_ERR_ARG);
  cr_assert_not_null(strstr(q8_error_detail(), "options"), "%s", q8_error_detail());
  cr_assert_eq(q8_calibrator_merge(ca, ca), Q8_ERR_ARG);
  cr_assert_eq(q8_calibrator_merge(ca, NULL), Q8_ERR_NULL);
  q8_calibrator_destroy(ca);
  q8_calibrator_destroy(cb);
  free(x);
}

Test(calibrate, nonfinite_counted_and_skipped) {
  const size_t n = 5000;
  float *x = gaussian(n, 8);
  float *dirty = malloc((n + 40) * sizeof *dirty);
  cr_assert_not_null(dirty);
  size_t j = 0;
  const float specials[] = {NAN, INFINITY, -INFINITY, -NAN};
  for (size_t i = 0; i < n; ++i) {
    if (i % 125 == 0) dirty[j++] = specials[(i / 125) % 4];
    dirty[j++] = x[i];
  }
  cr_assert_eq(j, n + 40);
  for (size_t m = 0; m < METHODS; ++m) {
    for (int sym = 0; sym <= 1; ++sym) {
      const q8_calib_options o = options_for(all_methods[m], sym, Q8_INT8);
      const q8_calib_range clean = calibrate(&o, x, n, 1000);
      const q8_calib_range r = calibrate(&o, dirty, n + 40, 1000);
      cr_assert_eq(r.nonfinite, 40);
      cr_assert_eq(r.values, n);
      cr_assert(isfinite(r.min) && isfinite(r.max));
      cr_assert_eq(r.observed_min, clean.observed_min);
      cr_assert_eq(r.observed_max, clean.observed_max);
      if (all_methods[m] != Q8_CALIB_EMA) { /* its batches differ */
        cr_assert_eq(r.min, clean.min, "%s", q8_calib_method_name(all_methods[m]));
        cr_assert_eq(r.max, clean.max, "%s", q8_calib_method_name(all_methods[m]));
      }
    }
  }
  /* Nothing finite at all: no range, and the message says why. */
  q8_calib_options o = options_for(Q8_CALIB_ENTROPY, false, Q8_INT8);
  q8_calibrator *c = NULL;
  cr_assert_eq(q8_calibrator_create(&o, &c), Q8_OK);
  cr_assert_eq(q8_calibrator_observe(c, specials, 4), Q8_OK);
  q8_calib_range r;
  cr_assert_eq(q8_calibrator_range(c, &r), Q8_ERR_ARG);
  cr_assert_not_null(strstr(q8_error_detail(), "4 NaN/Inf"), "%s", q8_error_detail());
  q8_calibrator_destroy(c);
  free(x);
  free(dirty);
}

Test(calibrate, constant_tensor_flagged_and_widened) {
  float values[300];
  const float constants[] = {3.5f, -2.0f, 0.0f};
  for (size_t k = 0; k < 3; ++k) {
    const float v = constants[k];
    for (size_t i = 0; i < 300; ++i) values[i] = v;
    for (size_t m = 0; m < METHODS; ++m) {
      for (int sym = 0; sym <= 1; ++sym) {
        const q8_calib_range r = calibrate_with(all_methods[m], sym, values, 300);
        cr_assert(r.constant, "%s %g", q8_calib_method_name(all_methods[m]), (double)v);
        cr_assert_eq(r.observed_min, v);
        cr_assert_eq(r.observed_max, v);
        /* calibrate() checked min <= 0 <= max and min < max. */
        cr_assert(r.min <= v && v <= r.max, "the constant itself is inside");
        if (v == 0.0f) {
          cr_assert_eq(r.min, -1.0f);
          cr_assert_eq(r.max, 1.0f);
        } else if (sym) {
          cr_assert_eq(r.max, fabsf(v));
        } else {
          cr_assert_eq(r.min, fminf(v, 0.0f));
          cr_assert_eq(r.max, fmaxf(v, 0.0f));
        }
      }
    }
  }
  const float two[] = {1.0f, 1.0f, 1.0f, 1.0000001f};
  cr_assert_not(calibrate_with(Q8_CALIB_MSE, false, two, 4).constant);
}

/* Subnormal and huge magnitudes, alone and mixed: the histogram width must
 * cover them without overflow, and the range stays inside what was seen. */
Test(calibrate, extreme_magnitudes) {
  const float tiny = 1e-44f, huge = FLT_MAX;
  const float sets[][6] = {
      {tiny, -tiny, 0.0f, 2 * tiny, tiny, -3 * tiny},
      {huge, -huge, 0.0f, 1.0f, -1.0f, huge},
      {tiny, huge, -tiny, 0.0f, 1e-30f, -1e30f},
  };
  for (size_t s = 0; s < 3; ++s) {
    for (size_t m = 0; m < METHODS; ++m) {
      for (int sym = 0; sym <= 1; ++sym) {
        for (size_t batch = 1; batch <= 6; batch += 5) {
          q8_calib_options o = options_for(all_methods[m], sym, Q8_INT8);
          o.bins = all_methods[m] == Q8_CALIB_ENTROPY ? 256 : 2;
          const q8_calib_range r = calibrate(&o, sets[s], 6, batch);
          cr_assert(isfinite(r.min) && isfinite(r.max));
          const float amax = fmaxf(-r.observed_min, r.observed_max);
          cr_assert_leq(fmaxf(-r.min, r.max), amax, "set %zu %s", s,
                        q8_calib_method_name(all_methods[m]));
        }
      }
    }
  }
}

/* ---- scale and zero point ------------------------------------------------------- */

static void expect_params(float min, float max, q8_dtype dt, bool sym, float scale, int32_t zp) {
  float s = 0.0f;
  int32_t z = -1000;
  cr_assert_eq(q8_quant_params_from_range(min, max, dt, sym, &s, &z), Q8_OK, "%s",
               q8_error_detail());
  cr_assert_eq(s, scale, "[%g, %g] %s sym %d: scale %.9g, expected %.9g", (double)min,
               (double)max, dt == Q8_INT8 ? "int8" : "uint8", sym, (double)s, (double)scale);
  cr_assert_eq(z, zp, "[%g, %g] %s sym %d: zero point %d, expected %d", (double)min, (double)max,
               dt == Q8_INT8 ? "int8" : "uint8", sym, z, zp);
}

Test(calibrate, quant_params_from_range) {
  /* Asymmetric [-1, 3]: scale 4/255; qmin - min/scale = qmin + 63.75. */
  expect_params(-1.0f, 3.0f, Q8_INT8, false, 4.0f / 255.0f, -64);
  expect_params(-1.0f, 3.0f, Q8_UINT8, false, 4.0f / 255.0f, 64);
  /* One-sided ranges are widened to 0. */
  expect_params(0.0f, 6.0f, Q8_UINT8, false, 6.0f / 255.0f, 0);
  expect_params(2.0f, 6.0f, Q8_INT8, false, 6.0f / 255.0f, -128);
  expect_params(-6.0f, -2.0f, Q8_UINT8, false, 6.0f / 255.0f, 255);
  /* Ties of the zero point round to even: scale 0.5, 0 - min/scale = 0.5 / 1.5. */
  expect_params(-0.25f, 127.25f, Q8_UINT8, false, 0.5f, 0);
  expect_params(-0.75f, 126.75f, Q8_UINT8, false, 0.5f, 2);
  expect_params(-0.25f, 127.25f, Q8_INT8, false, 0.5f, -128);
  /* Symmetric: max |.| / 127; uint8 is the int8 grid shifted by 128. */
  expect_params(-1.0f, 3.0f, Q8_INT8, true, 3.0f / 127.0f, 0);
  expect_params(-1.0f, 3.0f, Q8_UINT8, true, 3.0f / 127.0f, 128);
  expect_params(-5.0f, 0.5f, Q8_INT8, true, 5.0f / 127.0f, 0);
  /* [0, 0]: scale 1 and the type's zero point. */
  expect_params(0.0f, 0.0f, Q8_INT8, false, 1.0f, 0);
  expect_params(0.0f, 0.0f, Q8_UINT8, false, 1.0f, 0);
  expect_params(0.0f, 0.0f, Q8_INT8, true, 1.0f, 0);
  expect_params(0.0f, 0.0f, Q8_UINT8, true, 1.0f, 128);
  /* A scale that would be subnormal counts as zero width. */
  expect_params(0.0f, 1e-40f, Q8_UINT8, false, 1.0f, 0);
}

Test(calibrate, quant_params_errors) {
  float s;
  int32_t z;
  cr_assert_eq(q8_quant_params_from_range(NAN, 1.0f, Q8_INT8, false, &s, &z), Q8_ERR_ARG);
  cr_assert_not_null(strstr(q8_error_detail(), "nan"), "%s", q8_error_detail());
  cr_assert_eq(q8_quant_params_from_range(0.0f, INFINITY, Q8_INT8, false, &s, &z), Q8_ERR_ARG);
  cr_assert_eq(q8_quant_params_from_range(2.0f, 1.0f, Q8_INT8, false, &s, &z), Q8_ERR_ARG);
  cr_assert_eq(q8_quant_params_from_range(-FLT_MAX, FLT_MAX, Q8_INT8, false, &s, &z),
               Q8_ERR_ARG);
  cr_assert_not_null(strstr(q8_error_detail(), "wider"), "%s", q8_error_detail());
  cr_assert_eq(q8_quant_params_from_range(-1.0f, 1.0f, Q8_INT32, false, &s, &z), Q8_ERR_ARG);
  cr_assert_eq(q8_quant_params_from_range(-1.0f, 1.0f, Q8_INT8, false, NULL, &z), Q8_ERR_NULL);
  cr_assert_eq(q8_quant_params_from_range(-1.0f, 1.0f, Q8_INT8, false, &s, NULL), Q8_ERR_NULL);
}

/* The ranges the calibrators choose feed q8_quant_params_from_range. */
Test(calibrate, every_range_gives_valid_params) {
  const size_t n = 20000;
  float *x = gaussian(n, 9);
  for (size_t m = 0; m < METHODS; ++m) {
    for (int sym = 0; sym <= 1; ++sym) {
      for (q8_dtype dt = Q8_INT8; dt <= Q8_UINT8; ++dt) {
        const q8_calib_options o = options_for(all_methods[m], sym, dt);
        const q8_calib_range r = calibrate(&o, x, n, 3000);
        float s;
        int32_t z;
        cr_assert_eq(q8_quant_params_from_range(r.min, r.max, dt, sym, &s, &z), Q8_OK);
        cr_assert(s > 0.0f && isfinite(s));
        cr_assert(z >= (dt == Q8_INT8 ? -128 : 0) && z <= (dt == Q8_INT8 ? 127 : 255));
        /* 0 is exactly representable. */
        cr_assert_eq(q8_ref_quantize_one(0.0f, s, z, dt, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE), z);
      }
    }
  }
  free(x);
}
