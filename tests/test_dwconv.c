/* Depthwise convolution kernels (dispatch/conv_depthwise.c and the kernels it
 * selects): every kernel under each usable ISA, bit-exact with q8_conv_ref over
 * a grid of shapes, activation types, zero points and output configurations,
 * with guard bytes around the output and 1 vs 2 threads giving the same bytes. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/conv_depthwise.h"
#include "dispatch/internal.h"
#include "dispatch/registry.h"
#include "q8/kernels.h"
#include "tests/support/q8test.h"

typedef struct grid_case {
  const char *name;
  q8_conv_shape shape; /* groups is set to in_channels */
} grid_case;

/* batch, in_h, in_w, in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w,
 * dilation_h, dilation_w, pad_top, pad_bottom, pad_left, pad_right */
static const grid_case grid[] = {
    {"3x3 s1 c1", {1, 5, 7, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c3", {1, 5, 7, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c7", {1, 4, 9, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c16", {1, 5, 6, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c17", {1, 5, 5, 17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c32", {1, 6, 5, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c33", {1, 5, 6, 33, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c65", {1, 4, 5, 65, 65, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 pad 0 c32", {1, 6, 7, 32, 32, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0}},
    {"3x3 s1 pad 2 c17", {1, 5, 6, 17, 17, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 0}},
    {"3x3 s1 asymmetric pad c33", {1, 6, 7, 33, 33, 3, 3, 1, 1, 1, 1, 0, 2, 1, 0, 0}},
    {"3x3 s1 pad 3 > kernel/2 c16", {1, 4, 4, 16, 16, 3, 3, 1, 1, 1, 1, 3, 2, 3, 2, 0}},
    {"3x3 s1 in_w 1 c17", {1, 4, 1, 17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 in_w 2 c33", {1, 3, 2, 33, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 in_w 3 c7", {1, 3, 3, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s1 c96 wide", {1, 5, 13, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c1", {1, 7, 9, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c17", {1, 7, 9, 17, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c32 even input", {1, 8, 8, 32, 32, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 0}},
    {"3x3 s2 c65", {1, 5, 7, 65, 65, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    /* Blocks of 17..32 channels at stride 2 pair pixel x with x + out_w / 2
     * (dw_block_half_s2): odd and even rows, unmasked and masked, pads that
     * move the inner range. */
    {"3x3 s2 c32 odd out_w 11", {1, 5, 21, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c96 out_w 12", {1, 5, 24, 96, 96, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c27 pad 2 out_w 10", {1, 5, 19, 27, 27, 3, 3, 2, 2, 1, 1, 2, 2, 2, 2, 0}},
    {"3x3 s2 c32 pad 0/1 out_w 8", {1, 5, 16, 32, 32, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 0}},
    {"3x3 s2 c18 in_w 2", {1, 5, 2, 18, 18, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c16 out_w 9", {1, 4, 17, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 c144 out_w 7", {1, 3, 13, 144, 144, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 batch 2 c40", {2, 6, 6, 40, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"5x5 s1 c3", {1, 6, 9, 3, 3, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0}},
    {"5x5 s1 c33", {1, 6, 9, 33, 33, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0}},
    {"5x5 s1 kernel equal to input c17", {1, 5, 5, 17, 17, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 0}},
    {"5x5 s2 c16", {1, 9, 11, 16, 16, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0}},
    {"5x5 s2 c33", {1, 9, 10, 33, 33, 5, 5, 2, 2, 1, 1, 2, 1, 1, 2, 0}},
    /* The 5x5 column kernels run pixel pairs: inner and border pairs, odd
     * out_w, full blocks with a tail above and below 32 channels, no pad,
     * pads beyond the kernel, inputs narrower than a pair's columns. */
    {"5x5 s1 c144 out_w 23", {1, 6, 23, 144, 144, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0}},
    {"5x5 s1 c100 pad 0 out_w 12", {1, 7, 16, 100, 100, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 0}},
    {"5x5 s1 c65 in_w 2", {1, 4, 2, 65, 65, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0}},
    {"5x5 s1 c64 in_w 6 pad 4/1", {1, 6, 6, 64, 64, 5, 5, 1, 1, 1, 1, 1, 3, 4, 1, 0}},
    {"5x5 s2 c96 out_w 13", {1, 9, 25, 96, 96, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0}},
    {"5x5 s2 c64 asymmetric pad out_w 8", {1, 8, 16, 64, 64, 5, 5, 2, 2, 1, 1, 1, 2, 0, 3, 0}},
    {"5x5 s2 c17 pad 4 > kernel/2", {1, 5, 6, 17, 17, 5, 5, 2, 2, 1, 1, 4, 3, 4, 3, 0}},
    {"5x5 s2 c130 in_w 3", {1, 7, 3, 130, 130, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0}},
    {"7x7 s1 c19 (generic)", {1, 8, 8, 19, 19, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 0}},
    {"7x7 s2 c33 (generic)", {1, 9, 11, 33, 33, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 0}},
    {"2x3 asymmetric pad c33 (generic)", {1, 5, 7, 33, 33, 2, 3, 1, 1, 1, 1, 0, 1, 1, 0, 0}},
    {"3x3 dilation 2 c35 (generic)", {1, 7, 8, 35, 35, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 0}},
    {"3x3 stride (1,2) c17 (generic)", {1, 5, 9, 17, 17, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"1x1 c33 (generic)", {1, 3, 5, 33, 33, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}},
    {"3x3 s1 multiplier 2 c7", {1, 5, 6, 7, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
    {"3x3 s2 multiplier 2 c17", {2, 6, 5, 17, 34, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}},
    {"5x5 s2 multiplier 3 c11", {1, 7, 7, 11, 33, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0}},
    {"2x3 dilation 2 multiplier 2 c3", {1, 6, 7, 3, 6, 2, 3, 1, 1, 2, 2, 1, 0, 2, 1, 0}},
};
#define GRID_CASES (sizeof grid / sizeof grid[0])

/* Output configurations: int32, then every mode x type, per tensor and per
 * channel, with and without a narrowed clamp. huge_scales (fp32): every 7th
 * channel's scale takes float(acc) * scale beyond the int32 range both ways
 * (the kernels' float-to-int conversion overflows there); without them and
 * without a narrowed clamp, the conv plan lets kernels skip the upper clamp
 * (q8_requant_params.fp32_clamp_free); the test sets it as the plan does
 * (the plan's own choice is tested in test_conv_plan). */
typedef struct out_config {
  q8_dtype dtype;
  q8_requant_mode mode;
  bool per_channel, clamp, huge_scales;
} out_config;
static const out_config configs[] = {
    {Q8_INT32, Q8_REQUANT_FP32, false, false, false},
    {Q8_INT8, Q8_REQUANT_GEMMLOWP, true, true, false},
    {Q8_UINT8, Q8_REQUANT_GEMMLOWP, false, false, false},
    {Q8_INT8, Q8_REQUANT_SINGLE, false, true, false},
    {Q8_UINT8, Q8_REQUANT_SINGLE, true, false, false},
    {Q8_INT8, Q8_REQUANT_FP32, true, false, true},
    {Q8_INT8, Q8_REQUANT_FP32, false, true, true}, /* qmin above -128: the byte max */
    {Q8_UINT8, Q8_REQUANT_FP32, false, true, true},
    {Q8_INT8, Q8_REQUANT_FP32, true, false, false},
    {Q8_UINT8, Q8_REQUANT_FP32, true, false, false},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

typedef struct requant {
  q8_requant_params p;
  int32_t *multiplier, *shift;
  float *scale;
} requant;

static requant make_requant(q8t_rng *r, const out_config *c, size_t channels) {
  requant q = {0};
  const size_t n = c->per_channel ? channels : 1;
  q.multiplier = malloc(n * sizeof(int32_t));
  q.shift = malloc(n * sizeof(int32_t));
  q.scale = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) {
    /* Scales that map the accumulator range (up to ~10^6) across the output
     * range, plus some > 1 so that gemmlowp's left shift and its saturation run. */
    const float real = i % 5 == 4 ? q8t_uniform(r, 1.0f, 40.0f) : q8t_uniform(r, 1e-5f, 3e-3f);
    q8_quantize_multiplier(real, &q.multiplier[i], &q.shift[i]);
    q.scale[i] = c->mode == Q8_REQUANT_FP32 && c->huge_scales && i % 7 == 6 ? 3e9f : real;
  }
  const int32_t lo = c->dtype == Q8_UINT8 ? 0 : -128, hi = c->dtype == Q8_UINT8 ? 255 : 127;
  q.p = (q8_requant_params){.mode = c->mode, .out_dtype = c->dtype,
                            .zero_point = q8t_range(r, lo, hi), .qmin = lo, .qmax = hi,
                            .channels = n, .multiplier = q.multiplier, .shift = q.shift,
                            .scale = q.scale};
  if (c->clamp) {
    q.p.qmin = q8t_range(r, lo, lo + 60);
    q.p.qmax = q8t_range(r, hi - 60, hi);
  }
  return q;
}

/* q8_requant_params.fp32_clamp_free as the conv plan sets it: every
 * channel's |bias| + max|x - zp| * sum |w| (a bound of |acc|) clamp-free. */
static bool clamp_free(const q8_requant_params *p, const q8_conv_shape *s, q8_dtype dt,
                       int32_t zp, const int8_t *w, const int32_t *bias) {
  const size_t taps = s->kernel_h * s->kernel_w;
  for (size_t c = 0; c < s->out_channels; ++c) {
    int64_t w_abs_sum = 0;
    for (size_t t = 0; t < taps; ++t) w_abs_sum += llabs((long long)w[c * taps + t]);
    const int64_t bound =
        llabs(bias ? (long long)bias[c] : 0) + q8_activation_span(dt, zp) * w_abs_sum;
    if (!q8_requant_channel_clamp_free(p, c, bound)) return false;
  }
  return true;
}

static void free_requant(requant *q) {
  free(q->multiplier);
  free(q->shift);
  free(q->scale);
}

/* Inputs and weights with a quarter of the values at each extreme. */
static int32_t pick(q8t_rng *r, int32_t lo, int32_t hi) {
  switch (q8t_range(r, 0, 3)) {
    case 0: return lo;
    case 1: return hi;
    default: return q8t_range(r, lo, hi);
  }
}

/* One case under the current ISA: all input types, zero points and output
 * configurations. Returns the kernel name used. */
static void check_case(const grid_case *g, size_t case_index, const char *isa,
                       const char *want_kernel) {
  q8_conv_shape s = g->shape;
  s.groups = s.in_channels;
  size_t out_h = 0, out_w = 0;
  cr_assert_eq(q8_conv_output_shape(&s, &out_h, &out_w), Q8_OK, "%s: %s", g->name,
               q8_error_detail());
  const size_t in_count = s.batch * s.in_h * s.in_w * s.in_channels;
  const size_t out_count = s.batch * out_h * out_w * s.out_channels;
  const size_t w_count = s.out_channels * s.kernel_h * s.kernel_w;
  q8t_rng r = q8t_rng_new(case_index * 131 + 7);
  int8_t *w = malloc(w_count);
  int32_t *bias = malloc(s.out_channels * sizeof(int32_t));
  /* Per block of 16 channels, in turn: weights in [-127, 127] (symmetric
   * quantization), -128 only at even taps, and the full int8 range. The NEON
   * kernels sum the products of taps (2j, 2j + 1) in int16 unless a channel
   * of the block has -128 at both, so every way runs at its extremes
   * (x = -128 with w = -128 and -127 sums to 32640). */
  const size_t taps = s.kernel_h * s.kernel_w;
  for (size_t i = 0; i < w_count; ++i) {
    const size_t regime = (i / taps / 16 + case_index) % 3;
    const bool allow_min = regime == 2 || (regime == 1 && i % taps % 2 == 0);
    w[i] = (int8_t)pick(&r, allow_min ? -128 : -127, 127);
  }
  for (size_t i = 0; i < s.out_channels; ++i) bias[i] = q8t_range(&r, -300000, 300000);
  static const q8_dtype in_types[] = {Q8_INT8, Q8_UINT8};
  for (size_t ti = 0; ti < 2; ++ti) {
    const q8_dtype dt = in_types[ti];
    const int32_t lo = dt == Q8_UINT8 ? 0 : -128, hi = dt == Q8_UINT8 ? 255 : 127;
    /* Extreme zero points and a random one, rotating over the configurations. */
    const int32_t zps[3] = {lo, hi, q8t_range(&r, lo, hi)};
    q8t_buf in = q8t_buf_new(in_count, 1 + case_index % 15);
    for (size_t i = 0; i < in_count; ++i) in.data[i] = (unsigned char)pick(&r, lo, hi);
    for (size_t ci = 0; ci < CONFIGS; ++ci) {
      const out_config *c = &configs[ci];
      const int32_t zp = zps[(ci + case_index) % 3];
      const bool with_bias = ci % 4 != 3;
      requant q = make_requant(&r, c, s.out_channels);
      q.p.fp32_clamp_free = clamp_free(&q.p, &s, dt, zp, w, with_bias ? bias : NULL);
      /* Scales up to 40 and accumulators below 10^7 stay far inside 2^30. */
      const bool free_expected =
          c->mode == Q8_REQUANT_FP32 && c->dtype != Q8_INT32 && !c->clamp && !c->huge_scales;
      cr_assert(!free_expected || q.p.fp32_clamp_free, "%s config %zu: upper clamp kept",
                g->name, ci);
      const q8_requant_params *rq = c->dtype == Q8_INT32 ? NULL : &q.p;
      const size_t out_bytes = out_count * (rq ? 1 : sizeof(int32_t));
      unsigned char *want = malloc(out_bytes);
      cr_assert_eq(q8_conv_ref(&s, in.data, dt, zp, w, with_bias ? bias : NULL, rq, want), Q8_OK);
      q8_dwconv *d = NULL;
      cr_assert_eq(q8_dwconv_create(&s, dt, zp, w, with_bias ? bias : NULL, rq, &d), Q8_OK,
                   "%s: %s", g->name, q8_error_detail());
      cr_assert_str_eq(q8_dwconv_kernel(d), want_kernel, "%s under %s", g->name, isa);
      /* The NEON kernels read uint8 as x - 128: the driver flips such rows
       * once for them; x86 kernels read uint8 rows as they are. */
      cr_assert_eq(q8_dwconv_flips_rows(d), strncmp(isa, "neon", 4) == 0 && dt == Q8_UINT8,
                   "%s under %s: rows flipped %d", g->name, isa, (int)q8_dwconv_flips_rows(d));
      /* Runs: 1 and 2 threads with the default rows per kernel call, then
       * 1, 2 and 3 rows per call (row runs that end mid-image, and calls
       * spanning both images of a batch); where the driver flips uint8 rows
       * for the kernel, a last run lets the kernel read them and flip them
       * itself. */
      static const struct {
        size_t threads, rows_per_call;
      } settings[] = {{1, 0}, {2, 0}, {1, 1}, {1, 2}, {2, 3}};
      const size_t nsettings = sizeof settings / sizeof settings[0];
      const size_t runs = nsettings + (q8_dwconv_flips_rows(d) ? 1 : 0);
      for (size_t run = 0; run < runs; ++run) {
        const bool unflipped = run == nsettings;
        const size_t threads = unflipped ? 1 : settings[run].threads;
        q8_dwconv_set_rows_per_call(d, unflipped ? 0 : settings[run].rows_per_call);
        if (unflipped) q8_dwconv_keep_rows_unflipped(d);
        q8t_buf out = q8t_buf_new(out_bytes, 3 + ci);
        cr_assert_eq(q8_dwconv_run(d, in.data, out.data, threads), Q8_OK, "%s", q8_error_detail());
        size_t bad = 0;
        while (bad < out_bytes && out.data[bad] == want[bad]) ++bad;
        cr_assert_eq(bad, out_bytes,
                     "%s [%s] %s in, zp %d, config %zu (out %d mode %d%s%s), %zu threads, "
                     "run %zu%s: byte %zu (element %zu) differs",
                     g->name, want_kernel, dt == Q8_UINT8 ? "uint8" : "int8", (int)zp, ci,
                     (int)c->dtype, (int)c->mode, c->per_channel ? " per channel" : "",
                     c->clamp ? " clamped" : "", threads, run,
                     unflipped ? ", rows flipped by the kernel" : "", bad, bad / (rq ? 1 : 4));
        cr_assert(q8t_buf_guards_ok(&out), "%s [%s] config %zu: wrote outside the output",
                  g->name, want_kernel, ci);
        q8t_buf_free(&out);
      }
      q8_dwconv_destroy(d);
      free(want);
      free_requant(&q);
    }
    q8t_buf_free(&in);
  }
  free(w);
  free(bias);
}

/* The kernel each shape must get under `isa` (after its fallbacks). */
static const char *expected_kernel(const char *isa, const q8_conv_shape *s) {
  const bool avx512 = strcmp(isa, "avx512vnni") == 0 || strcmp(isa, "amx") == 0;
  const bool avx2 = strcmp(isa, "avx2") == 0 || strcmp(isa, "avxvnni") == 0;
  /* neondot and neoni8mm have no depthwise kernel of their own. */
  const bool neon = strncmp(isa, "neon", 4) == 0;
  if (!avx512 && !avx2 && !neon) return "q8_dwconv_x8s8_generic_c1__ref";
  const char *suffix = avx512 ? "c64__avx512vnni" : avx2 ? "c16__avx2" : "c16__neon";
  const bool square = s->kernel_h == s->kernel_w && (s->kernel_h == 3 || s->kernel_h == 5);
  const bool dedicated = square && s->stride_h == s->stride_w && s->stride_h <= 2 &&
                         s->dilation_h == 1 && s->dilation_w == 1;
  static char name[96];
  if (dedicated) {
    snprintf(name, sizeof name, "q8_dwconv_x8s8_%zux%zus%zu%s", s->kernel_h, s->kernel_w,
             s->stride_h, suffix);
  } else {
    snprintf(name, sizeof name, "q8_dwconv_x8s8_generic_%s", suffix);
  }
  return name;
}

static void check_isa(const char *isa) {
  const char *reason = NULL;
  if (!q8_isa_usable(isa, &reason)) {
    cr_log_info("dwconv: ISA %s not usable here (%s): skipped", isa, reason);
    return;
  }
  cr_assert_eq(q8_set_isa(isa), Q8_OK, "%s", q8_error_detail());
  for (size_t i = 0; i < GRID_CASES; ++i) {
    const char *want = expected_kernel(isa, &grid[i].shape);
    char copy[96];
    snprintf(copy, sizeof copy, "%s", want);
    check_case(&grid[i], i, isa, copy);
  }
  cr_log_info("dwconv: %zu cases x %zu configurations x 2 input types bit-exact under %s",
              GRID_CASES, CONFIGS, isa);
  q8_set_isa(NULL);
}

Test(dwconv, ref) { check_isa("ref"); }
Test(dwconv, hwy_falls_back_to_ref) { check_isa("hwy"); }
Test(dwconv, avx2) { check_isa("avx2"); }
Test(dwconv, avxvnni_falls_back_to_avx2) { check_isa("avxvnni"); }
Test(dwconv, avx512vnni) { check_isa("avx512vnni"); }
Test(dwconv, neon) { check_isa("neon"); }
Test(dwconv, neondot_falls_back_to_neon) { check_isa("neondot"); }
Test(dwconv, neoni8mm_falls_back_to_neon) { check_isa("neoni8mm"); }

Test(dwconv, automatic_choice_is_the_best_usable_isa) {
  const q8_conv_shape s = {1, 4, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8};
  const int8_t w[72] = {0};
  q8_dwconv *d = NULL;
  cr_assert_eq(q8_dwconv_create(&s, Q8_INT8, 0, w, NULL, NULL, &d), Q8_OK);
  const char *want = q8_isa_usable("avx512vnni", NULL) ? "avx512vnni"
                     : q8_isa_usable("avx2", NULL)     ? "avx2"
                     : q8_isa_usable("neon", NULL)     ? "neon"
                                                       : "ref";
  cr_expect_str_eq(q8_dwconv_kernel(d), expected_kernel(want, &s));
  q8_dwconv_destroy(d);
}

Test(dwconv, not_depthwise_is_unsupported_without_detail) {
  cr_assert_eq(q8_set_isa("no-such-isa"), Q8_ERR_ISA); /* leaves a detail to compare */
  char before[512];
  snprintf(before, sizeof before, "%s", q8_error_detail());
  const q8_conv_shape s = {1, 4, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2};
  const int8_t w[8 * 9 * 4] = {0};
  q8_dwconv *d = (q8_dwconv *)1;
  cr_expect_eq(q8_dwconv_create(&s, Q8_INT8, 0, w, NULL, NULL, &d), Q8_ERR_UNSUPPORTED);
  cr_expect_null(d);
  cr_expect_str_eq(q8_error_detail(), before, "the detail is left alone");
}

Test(dwconv, bad_arguments_are_named) {
  const q8_conv_shape s = {1, 4, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8};
  const int8_t w[72] = {0};
  q8_dwconv *d = NULL;
  cr_expect_eq(q8_dwconv_create(&s, Q8_INT8, 0, NULL, NULL, NULL, &d), Q8_ERR_NULL);
  cr_expect(strstr(q8_error_detail(), "weights") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_dwconv_create(&s, Q8_INT32, 0, w, NULL, NULL, &d), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "in_dtype") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_dwconv_create(NULL, Q8_INT8, 0, w, NULL, NULL, &d), Q8_ERR_NULL);
  cr_assert_eq(q8_dwconv_create(&s, Q8_INT8, 0, w, NULL, NULL, &d), Q8_OK);
  int8_t x[128] = {0};
  int32_t y[128];
  cr_expect_eq(q8_dwconv_run(d, NULL, y, 1), Q8_ERR_NULL);
  cr_expect(strstr(q8_error_detail(), "input") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_dwconv_run(d, x, NULL, 1), Q8_ERR_NULL);
  cr_expect(strstr(q8_error_detail(), "output") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_dwconv_run(d, x, y, 0), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "threads") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_dwconv_run(NULL, x, y, 1), Q8_ERR_NULL);
  q8_dwconv_destroy(d);
  q8_dwconv_destroy(NULL);
  cr_expect_str_eq(q8_dwconv_kernel(NULL), "");
}

Test(dwconv, registry_lists_a_kernel_per_shape_and_isa) {
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  size_t dwconv = 0;
  for (size_t i = 0; i < count; ++i) {
    if (all[i].op != Q8_OP_DWCONV) continue;
    ++dwconv;
    cr_expect_not_null(all[i].dwconv);
    cr_expect_str_eq(all[i].dwconv->name, all[i].name);
  }
#if defined(__x86_64__)
  cr_expect_eq(dwconv, 11, "5 AVX-512, 5 AVX2 and the scalar kernel");
#elif defined(__aarch64__)
  cr_expect_eq(dwconv, 6, "5 NEON and the scalar kernel");
#else
  cr_expect_eq(dwconv, 1);
#endif
}
