#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdlib.h>
#include <time.h>

#include "bench/qbench.h"

double qb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* See qb_measure. */
#define QB_SAMPLES 200

/* Warm-up for `seconds` (caches, page faults, frequency ramp), then the
 * calls a sample of `sample_target` seconds takes, from the fastest pass: a
 * pass cut by a time slice must not size the samples. */
static size_t warm_up_and_size(void (*fn)(void *), void *ctx, double seconds, double sample_target) {
  size_t calls = 1;
  double per_call = 0.0;
  const double until = qb_now() + seconds;
  do {
    const double t0 = qb_now();
    for (size_t i = 0; i < calls; ++i) fn(ctx);
    const double elapsed = qb_now() - t0;
    const double this_call = elapsed / (double)calls;
    if (per_call == 0.0 || this_call < per_call) per_call = this_call;
    if (elapsed < sample_target / 4) calls *= 2;
  } while (qb_now() < until);
  calls = per_call > 0 ? (size_t)(sample_target / per_call) : 1;
  return calls < 1 ? 1 : calls;
}

/* Seconds per call of one sample of `calls` calls. */
static double sample(void (*fn)(void *), void *ctx, size_t calls) {
  const double t0 = qb_now();
  for (size_t i = 0; i < calls; ++i) fn(ctx);
  return (qb_now() - t0) / (double)calls;
}

/* A growing array of samples. */
typedef struct samples {
  double *v;
  size_t n, capacity;
} samples;

static void push(samples *s, double x) {
  if (s->n == s->capacity) {
    s->capacity = s->capacity ? 2 * s->capacity : 64;
    double *grown = realloc(s->v, s->capacity * sizeof *grown);
    if (grown == NULL) abort(); /* a benchmark without memory for its samples has nothing to report */
    s->v = grown;
  }
  s->v[s->n++] = x;
}

/* Sorts x and returns the median. */
static double sorted_median(double *x, size_t n) {
  qsort(x, n, sizeof *x, compare_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static qb_timing timing_of(samples *s, size_t calls) {
  const double median = sorted_median(s->v, s->n); /* sorts */
  return (qb_timing){.median_s = median, .min_s = s->v[0], .max_s = s->v[s->n - 1], .samples = s->n,
                     .calls_per_sample = calls};
}

qb_timing qb_measure(void (*fn)(void *), void *ctx, double min_time, size_t min_samples) {
  if (min_samples < 5) min_samples = 5;
  /* Many short samples (about QB_SAMPLES of them), not min_samples long
   * ones: on a shared machine a long sample averages in every disturbance
   * (neighbours on the same core's caches, time slices) and so measures the
   * host's mean load; the median of short samples is the kernel's own time,
   * the same undisturbed conditions the peak probes read at. Zen 5 VM,
   * 1x768x768 int8 out in one process: batches of 20 calls median 3.17 us,
   * mean 3.44, p90 3.91; 5 samples of 13000 calls 3.29-4.09. */
  const double sample_target = min_time / (double)(min_samples > QB_SAMPLES ? min_samples : QB_SAMPLES);
  const size_t calls = warm_up_and_size(fn, ctx, min_time * 0.25, sample_target);
  samples s = {0};
  const double start = qb_now();
  while (s.n < min_samples || qb_now() - start < min_time) push(&s, sample(fn, ctx, calls));
  const qb_timing r = timing_of(&s, calls);
  free(s.v);
  return r;
}

/* Timed samples per slot of qb_measure_paired: enough for a steady slot
 * median, few enough that a slot (about 9 samples of min_time / QB_SAMPLES)
 * is short beside the host's drift. */
#define QB_PAIR_SAMPLES 8
#define QB_MIN_PAIRS 5

qb_paired qb_measure_paired(void (*fn_a)(void *), void *ctx_a, void (*fn_b)(void *), void *ctx_b,
                            double min_time) {
  void (*const fns[2])(void *) = {fn_a, fn_b};
  void *const ctxs[2] = {ctx_a, ctx_b};
  const double sample_target = min_time / QB_SAMPLES;
  size_t calls[2];
  for (int side = 0; side < 2; ++side) calls[side] = warm_up_and_size(fns[side], ctxs[side], min_time * 0.25, sample_target);
  samples all[2] = {{0}}, ratios = {0};
  double timed[2] = {0, 0};
  while (ratios.n < QB_MIN_PAIRS || timed[0] < min_time || timed[1] < min_time) {
    double slot_median[2];
    for (int turn = 0; turn < 2; ++turn) {
      /* a b, then b a: a steady drift lengthens both sides alike. */
      const int side = ratios.n % 2 ? 1 - turn : turn;
      sample(fns[side], ctxs[side], calls[side]); /* refills what the other side evicted */
      double slot[QB_PAIR_SAMPLES];
      for (int i = 0; i < QB_PAIR_SAMPLES; ++i) {
        slot[i] = sample(fns[side], ctxs[side], calls[side]);
        timed[side] += slot[i] * (double)calls[side];
        push(&all[side], slot[i]);
      }
      slot_median[side] = sorted_median(slot, QB_PAIR_SAMPLES);
    }
    push(&ratios, slot_median[1] / slot_median[0]);
  }
  qb_paired r = {.a = timing_of(&all[0], calls[0]), .b = timing_of(&all[1], calls[1]), .pairs = ratios.n};
  r.ratio = sorted_median(ratios.v, ratios.n);
  r.ratio_q1 = ratios.v[(ratios.n - 1) / 4];
  r.ratio_q3 = ratios.v[(3 * (ratios.n - 1) + 3) / 4];
  free(all[0].v);
  free(all[1].v);
  free(ratios.v);
  return r;
}
