/* The conv plan's fast paths (gemm: 1x1 through the micro-kernels; igemm:
 * indirect GEMM) on every ISA this machine can run, bit-exact with
 * q8_conv_ref over a grid of shapes, dtypes, requantization modes, weight
 * layouts and thread counts; and the indirection table itself. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/cpu.h"
#include "dispatch/registry.h"
#include "q8/kernels.h"
#include "q8/q8.h"
#include "tests/support/q8test.h"

static const char *const isas[] = {"ref",  "hwy",  "avx2",    "avxvnni", "avx512vnni",
                                   "amx",  "neon", "neondot", "neoni8mm"};
#define ISAS (sizeof isas / sizeof isas[0])

/* batch, in_h, in_w, in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w,
 * dilation_h, dilation_w, pad_top, pad_bottom, pad_left, pad_right, groups */
static const q8t_conv_case grid[] = {
    {"1x1", {1, 5, 6, 7, 19, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"1x1 groups 2", {1, 4, 5, 6, 34, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2}},
    {"1x1 stride 2", {1, 7, 6, 17, 33, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1}},
    {"1x1 padded", {1, 3, 4, 3, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}},
    {"3x3 pad 1", {1, 6, 5, 7, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 64 channels", {1, 5, 7, 64, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 25 channels (75-byte rows)", {1, 5, 6, 25, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"5x5 pad 2", {1, 8, 7, 3, 9, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1}},
    {"7x7 stride 2 3 channels (conv1)", {1, 17, 15, 3, 35, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1}},
    {"kernel equal to input", {1, 4, 3, 7, 3, 4, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"padding larger than kernel/2", {1, 4, 4, 3, 4, 3, 3, 1, 1, 1, 1, 3, 2, 2, 3, 1}},
    {"stride larger than kernel", {1, 9, 9, 3, 3, 2, 2, 3, 3, 1, 1, 0, 0, 0, 0, 1}},
    {"dilation 2", {1, 8, 9, 17, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1}},
    {"asymmetric pads", {1, 7, 8, 3, 7, 3, 4, 1, 2, 1, 1, 0, 2, 3, 1, 1}},
    {"groups 2", {1, 6, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}},
    {"groups 4 odd channels", {1, 5, 6, 28, 68, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4}},
    {"depthwise", {1, 5, 5, 7, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7}},
    {"batch 2", {2, 5, 5, 3, 7, 3, 3, 1, 1, 1, 1, 1, 0, 1, 0, 1}},
    {"batch 2 1x1", {2, 3, 5, 17, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"1 channel in and out", {1, 5, 5, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"1 output pixel", {1, 3, 3, 17, 33, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"13 output pixels (prime)", {1, 1, 13, 7, 17, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
    {"1x3 stride (1,2) dilation (2,1)", {1, 6, 7, 7, 3, 1, 3, 1, 2, 2, 1, 0, 1, 1, 1, 1}},
    /* Row gathers: segments of 9 bytes (the MobileNetV2 stem), 16, 32 and 33
     * bytes (piece edges of the AVX-512 gather), runs of padding longer than
     * 32 bytes, rows longer than 64; batch 3 so tiles straddle images. */
    {"3x3 stride 2 3 channels (stem), batch 3", {3, 9, 10, 3, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 stride 2 3 channels unpadded", {1, 11, 12, 3, 8, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1}},
    {"2x2 8 channels (16-byte rows)", {1, 6, 9, 8, 5, 2, 2, 1, 1, 1, 1, 0, 1, 1, 0, 1}},
    {"2x2 16 channels (32-byte rows)", {2, 5, 6, 16, 9, 2, 2, 1, 1, 1, 1, 1, 0, 0, 1, 1}},
    {"3x3 11 channels (33-byte rows)", {1, 6, 7, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 pad 2 35 channels (70-byte padding)", {1, 5, 5, 35, 6, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 1}},
    {"5x5 dilation 2 groups 3", {2, 9, 8, 9, 6, 5, 5, 1, 2, 2, 2, 3, 1, 4, 2, 3}},
    /* Output rows of 20-30 pixels with 3-8 channels: row tiles inside a row
     * are strided runs (the AVX-512 VBMI gather's byte permutes), the rest
     * not; stride 2 and 1, grouped taps (9 segments of 4 bytes). */
    {"3x3 stride 2 3 channels, 20-pixel rows (strided tiles)", {1, 9, 40, 3, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 4 channels, 24-pixel rows (strided tiles)", {2, 5, 24, 4, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 8 channels groups 2, 30-pixel rows", {1, 4, 30, 8, 6, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 2}},
    /* K = 4608: the plan's column blocks (half of L2 of packed weights) are
     * narrower than N, so each row tile is gathered once per block. */
    {"3x3 512 channels, 100 out (several column blocks)", {1, 3, 3, 512, 100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* The same without border tiles (unpadded; 515 channels, not a multiple
     * of KR): more than MR rows over several column blocks, gathered once
     * for all blocks, in tall tiles where the kernel has them. */
    {"3x3 512 channels unpadded, 12 pixels, 100 out", {1, 6, 5, 512, 100, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"3x3 515 channels pad 1, 9 pixels, 100 out", {1, 3, 3, 515, 100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* Border tiles (channels a multiple of 4): padded rows and columns
     * longer than MR (several tiles per line), stride 2 (padding on two
     * sides only), batch 2, groups, a 5x5 whose corner rows skip 2 kernel
     * rows, asymmetric padding, and outputs that read only padding. */
    {"3x3 pad 1 20x19 8 channels (lines of several tiles)", {1, 20, 19, 8, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"3x3 stride 2 pad 1 32 channels, batch 2", {2, 14, 13, 32, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"5x5 pad 2 12 channels groups 3", {1, 11, 9, 12, 18, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 3}},
    {"3x3 dilation 2 asymmetric pads 4 channels", {1, 9, 12, 4, 7, 3, 3, 1, 1, 2, 2, 3, 1, 0, 2, 1}},
    {"3x3 pad 4 16 channels (all-padding outputs)", {1, 4, 5, 16, 17, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, 1}},
    /* Lines of 27 and 29 pixels: K-range tiles of up to 14 rows where the
     * kernel takes them (k_ranges_mr), in place and gathered. */
    {"3x3 pad 1 16 channels, 29-pixel rows (tall K-range tiles)", {1, 5, 29, 16, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* Kernel-row windows (channels not a multiple of KR): output rows of
     * 17 pixels (two row tiles and one row), 48 output channels (a column
     * tail), vertical dilation with asymmetric padding, input rows of 210
     * bytes (the copy's 64-byte loop), windows of padding only. */
    {"windows: 17-pixel rows, 48 out", {1, 6, 17, 3, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"windows: dilation (2,1) 5 channels, asymmetric pads", {2, 9, 11, 5, 19, 3, 3, 1, 2, 2, 1, 2, 0, 0, 3, 1}},
    {"windows: 70-pixel rows stride 2", {1, 5, 70, 3, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"windows: pad 3 on a 2x2 kernel", {1, 3, 4, 6, 9, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3, 1}},
    /* Unpadded, 7-pixel output rows: the tiles read the input in place. */
    {"1x1 stride 2 16 channels, 7x7 out, batch 2", {2, 13, 13, 16, 20, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1}},
    {"3x3 dilation 2 groups 2 16 channels, 7x7 out", {1, 11, 11, 16, 12, 3, 3, 1, 1, 2, 2, 0, 0, 0, 0, 2}},
};
#define GRID (sizeof grid / sizeof grid[0])

static size_t taps(const q8_conv_shape *s) { return s->kernel_h * s->kernel_w; }

static bool is_pointwise(const q8_conv_shape *s) {
  return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
         s->pad_top + s->pad_bottom + s->pad_left + s->pad_right == 0;
}

/* The path the plan must take on a micro-kernel ISA (igemm with or
 * without border tiles: "igemm:" or "igemm+border:"; few input channels on
 * kernels with run_k_ranges: "windows:"). */
static const char *expected_path(const q8_conv_shape *s) {
  if (s->groups > 1 && s->groups == s->in_channels) return "q8_dwconv_";
  if (is_pointwise(s)) return "gemm:";
  size_t out_h, out_w;
  cr_assert_eq(q8_conv_output_shape(s, &out_h, &out_w), Q8_OK);
  const q8_kernel *k = q8_select_gemm_kernel(s->batch * out_h * out_w, false);
  cr_assert(k && k->ukernel);
  return q8_conv_windows_suit(k->ukernel, s) ? "windows:" : "igemm";
}

/* Plans that ran border tiles (skipping padded taps), and kernel-row
 * windows, per ISA. */
static size_t border_runs, window_runs;

/* One configuration of a shape: what varies besides the geometry. */
typedef struct variant {
  q8_dtype in_dtype, out_dtype;
  q8_requant_mode mode;
  int fill;          /* 0 random; -1 inputs at the minimum, +1 at the maximum (weights,
                        zero point at the opposite end: the largest products) */
  bool bias, per_channel, clamp, oihw;
  /* Requantization scales near 5 x 10^5: float(acc) * scale leaves int32, so
   * the fp32 upper clamp guards the conversion and must stay
   * (q8_requant_params.fp32_clamp_free false); otherwise the plans drop it
   * for fp32 without a narrowed clamp. */
  bool huge_scales;
} variant;

/* fp32 with a narrowed clamp gets scales of 1-20, so that values pass the
 * clamp: an upper clamp the plans must keep although the conversion cannot
 * overflow. */
static float out_scale(const variant *v) {
  if (v->huge_scales) return 1e-10f;
  return v->mode == Q8_REQUANT_FP32 && v->clamp ? 5e-6f : 0.9f;
}

typedef struct outcome {
  char kernel[128];
} outcome;

/* Builds the problem, runs the reference and the plan with 1 and 2 threads,
 * asserts byte equality and intact guards. Returns the plan's kernel name. */
static outcome check_case(q8t_rng *r, const q8t_conv_case *sc, const variant *v) {
  const q8_conv_shape *s = &sc->shape;
  size_t out_h, out_w;
  cr_assert_eq(q8_conv_output_shape(s, &out_h, &out_w), Q8_OK, "%s", q8_error_detail());
  const size_t in_count = s->batch * s->in_h * s->in_w * s->in_channels;
  const size_t out_count = s->batch * out_h * out_w * s->out_channels;
  const bool u8 = v->in_dtype == Q8_UINT8;
  const int lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
  /* Input at an odd offset from alignment: nothing may assume aligned rows. */
  q8t_buf x = q8t_buf_new(in_count, 3);
  for (size_t i = 0; i < in_count; ++i) {
    const int val = v->fill == 0 ? q8t_range(r, lo, hi) : v->fill < 0 ? lo : hi;
    x.data[i] = (unsigned char)val;
  }
  int8_t *w = malloc(q8t_conv_weight_count(s));
  for (size_t i = 0; i < q8t_conv_weight_count(s); ++i) {
    w[i] = (int8_t)(v->fill == 0 ? q8t_range(r, -128, 127) : v->fill < 0 ? 127 : -128);
  }
  const int32_t zp = v->fill == 0 ? q8t_range(r, lo, hi) : v->fill < 0 ? hi : lo;
  int32_t *bias = NULL;
  if (v->bias) {
    bias = malloc(s->out_channels * sizeof(int32_t));
    for (size_t c = 0; c < s->out_channels; ++c) bias[c] = q8t_range(r, -100000, 100000);
  }
  const size_t w_channels = v->per_channel ? s->out_channels : 1;
  float *w_scales = malloc(w_channels * sizeof(float));
  for (size_t c = 0; c < w_channels; ++c) w_scales[c] = q8t_uniform(r, 1e-4f, 2e-3f);
  const bool int32_out = v->out_dtype == Q8_INT32;
  const bool out_u8 = v->out_dtype == Q8_UINT8;
  q8_conv_desc d = {
      .shape = *s, .in_dtype = v->in_dtype, .in_zero_point = zp, .in_scale = 0.05f,
      .weights = w, .w_layout = Q8_WEIGHTS_OHWI, .w_channels = w_channels,
      .w_scales = w_scales, .bias = bias, .out_dtype = v->out_dtype, .requant = v->mode,
      .out_scale = out_scale(v), .out_zero_point = out_u8 ? 131 : -7, .clamp = v->clamp,
      .out_min = out_u8 ? 20 : -100, .out_max = out_u8 ? 230 : 90};

  const size_t bytes = out_count * (int32_out ? 4 : 1);
  unsigned char *want = malloc(bytes);
  cr_assert_eq(q8t_conv_reference(&d, x.data, want), Q8_OK, "%s: %s", sc->name,
               q8_error_detail());

  int8_t *oihw = v->oihw ? q8t_conv_to_oihw(s, w) : NULL;
  if (oihw) {
    d.weights = oihw;
    d.w_layout = Q8_WEIGHTS_OIHW;
  }
  /* The 2-thread run reads a copy that ends where an inaccessible page
   * begins: a gather reading past the last input byte faults. */
  q8t_page_end x_end = q8t_page_end_new(in_count);
  memcpy(x_end.data, x.data, in_count);
  outcome result = {{0}};
  for (size_t threads = 1; threads <= 2; ++threads) {
    d.threads = threads;
    q8_conv_plan *plan = NULL;
    cr_assert_eq(q8_conv_plan_create(&d, &plan), Q8_OK, "%s: %s", sc->name, q8_error_detail());
    snprintf(result.kernel, sizeof result.kernel, "%s", q8_conv_plan_kernel(plan));
    q8t_buf y = q8t_buf_new(bytes, int32_out ? 4 : 1);
    cr_assert_eq(q8_conv_run(plan, threads == 1 ? x.data : x_end.data, y.data), Q8_OK, "%s",
                 q8_error_detail());
    for (size_t i = 0; i < bytes; ++i) {
      if (y.data[i] != want[i]) {
        cr_assert_fail("%s [%s] threads %zu: byte %zu (pixel %zu) is %u, reference %u "
                       "(in %s zp %d, out %s mode %d, fill %d, %s)",
                       sc->name, result.kernel, threads, i,
                       i / (s->out_channels * (int32_out ? 4 : 1)), y.data[i], want[i],
                       u8 ? "u8" : "s8", zp, int32_out ? "s32" : out_u8 ? "u8" : "s8",
                       (int)v->mode, v->fill, v->oihw ? "OIHW" : "OHWI");
      }
    }
    cr_assert(q8t_buf_guards_ok(&y), "%s [%s]: the plan wrote outside the output", sc->name,
              result.kernel);
    q8t_buf_free(&y);
    q8_conv_plan_destroy(plan);
  }
  q8t_page_end_free(&x_end);
  free(oihw);
  free(want);
  free(w_scales);
  free(bias);
  free(w);
  q8t_buf_free(&x);
  return result;
}

/* Every variant of the grid; each shape sees every in/out dtype, mode,
 * layout, scale kind and fill at least once across the variants. */
static const variant variants[] = {
    {Q8_INT8, Q8_INT32, Q8_REQUANT_FP32, 0, true, true, false, false, false},
    {Q8_UINT8, Q8_INT32, Q8_REQUANT_FP32, 0, false, true, false, true, false},
    {Q8_INT8, Q8_INT8, Q8_REQUANT_GEMMLOWP, 0, true, true, true, true, false},
    {Q8_UINT8, Q8_UINT8, Q8_REQUANT_SINGLE, 0, true, false, true, false, false},
    {Q8_INT8, Q8_UINT8, Q8_REQUANT_FP32, 0, true, true, false, false, false},
    {Q8_UINT8, Q8_INT8, Q8_REQUANT_GEMMLOWP, 0, false, false, false, true, false},
    {Q8_INT8, Q8_INT32, Q8_REQUANT_FP32, -1, false, true, false, false, false},
    {Q8_INT8, Q8_INT32, Q8_REQUANT_FP32, 1, true, true, false, true, false},
    {Q8_UINT8, Q8_INT32, Q8_REQUANT_FP32, -1, true, true, false, false, false},
    {Q8_UINT8, Q8_INT8, Q8_REQUANT_SINGLE, 1, false, true, true, false, false},
    {Q8_UINT8, Q8_INT8, Q8_REQUANT_FP32, 0, true, true, false, false, true},
    {Q8_INT8, Q8_INT8, Q8_REQUANT_FP32, 1, false, false, false, true, false},
    {Q8_UINT8, Q8_UINT8, Q8_REQUANT_FP32, 0, true, true, true, false, false},
};
#define VARIANTS (sizeof variants / sizeof variants[0])

static void run_grid(const char *isa, const q8t_conv_case *cases, size_t count) {
  q8t_rng r = q8t_rng_new(66);
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < VARIANTS; ++j) {
      const outcome o = check_case(&r, &cases[i], &variants[j]);
      const char *path = strcmp(isa, "ref") == 0 ? "q8_conv_ref" : expected_path(&cases[i].shape);
      cr_assert(strncmp(o.kernel, path, strlen(path)) == 0, "%s on %s runs %s, expected %s...",
                cases[i].name, isa, o.kernel, path);
      if (strncmp(o.kernel, "igemm+border:", 13) == 0) ++border_runs;
      if (strncmp(o.kernel, "windows:", 8) == 0) ++window_runs;
    }
  }
}

/* MR of the micro-kernel a plan names ("...:q8_gemm_x8s8_8x32c4__isa"), 0 if none. */
static unsigned kernel_mr(const char *kernel) {
  const char *tile = strstr(kernel, "q8_gemm_x8s8_");
  unsigned mr = 0;
  if (tile == NULL || sscanf(tile, "q8_gemm_x8s8_%u", &mr) != 1) return 0;
  return mr;
}

/* Output pixel counts around the row tile: 1x1 over a 1 x n input (gemm) and
 * a padded 1x3 (igemm) with n = MR - 1, MR, MR + 1, 2 MR + 1. */
static void run_tile_edges(const char *isa, unsigned mr) {
  const size_t counts[] = {mr - 1, mr, mr + 1, 2 * (size_t)mr + 1};
  q8t_conv_case cases[8];
  char names[8][64];
  size_t n = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (counts[i] == 0) continue;
    snprintf(names[n], sizeof names[n], "1x1, %zu pixels", counts[i]);
    cases[n] = (q8t_conv_case){names[n], {1, 1, counts[i], 5, 37, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1}};
    ++n;
    snprintf(names[n], sizeof names[n], "1x3 pad 1, %zu pixels", counts[i]);
    cases[n] = (q8t_conv_case){names[n], {1, 1, counts[i], 5, 37, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1}};
    ++n;
  }
  run_grid(isa, cases, n);
}

/* Forces isa for the plans that follow; false (and says so) where this CPU
 * cannot run it. */
static bool use_isa(const char *isa) {
  const char *reason = NULL;
  if (!q8_isa_usable(isa, &reason)) {
    cr_log_info("%s: not usable here (%s), skipped", isa, reason ? reason : "?");
    return false;
  }
  cr_assert_eq(q8_set_isa(isa), Q8_OK, "%s", q8_error_detail());
  return true;
}

Test(conv_plan_paths, bit_exact_with_the_reference_on_every_isa) {
  for (size_t i = 0; i < ISAS; ++i) {
    if (!use_isa(isas[i])) continue;
    border_runs = window_runs = 0;
    run_grid(isas[i], grid, GRID);
    /* Every hand-written kernel has run_k_ranges: each must have taken the
     * border tiles on the padded shapes with channels a multiple of its KR
     * (else this grid would not test them). */
    if (strcmp(isas[i], "ref") != 0 && strcmp(isas[i], "hwy") != 0) {
      cr_assert_geq(border_runs, 5 * VARIANTS, "%s: only %zu plans ran border tiles", isas[i],
                    border_runs);
    }
    cr_log_info("%s: %zu plans ran border tiles, %zu kernel-row windows", isas[i], border_runs,
                window_runs);
    /* Kernels with run_k_ranges and no A panel (all but AVX2's) take the
     * windows on the grid's stems and odd-channel shapes. */
    const q8_kernel *gemm = q8_select_gemm_kernel(1000, false);
    if (gemm->ukernel && gemm->ukernel->run_k_ranges && gemm->ukernel->pack_a == NULL) {
      cr_assert_geq(window_runs, 8 * VARIANTS, "%s: only %zu plans ran kernel-row windows",
                    isas[i], window_runs);
    }
    /* The MR of this ISA's kernel, from a plan's name, for the tile edges. */
    int8_t w[3] = {1, 2, 3};
    const q8_conv_desc d = {.shape = {1, 1, 64, 1, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
                            .in_dtype = Q8_UINT8, .weights = w, .w_layout = Q8_WEIGHTS_OHWI,
                            .out_dtype = Q8_INT32, .threads = 1};
    q8_conv_plan *plan = NULL;
    cr_assert_eq(q8_conv_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
    const unsigned mr = kernel_mr(q8_conv_plan_kernel(plan));
    cr_log_info("%s: %s (MR %u)", isas[i], q8_conv_plan_kernel(plan), mr);
    q8_conv_plan_destroy(plan);
    if (mr > 0) run_tile_edges(isas[i], mr);
  }
  q8_set_isa(NULL);
}

/* Row p of the implicit GEMM, as input byte positions (-1: padding), from
 * the table, and straight from the definition. */
static void row_from_table(const q8_conv_pixel *px, const q8_conv_segment *seg, int64_t *row) {
  for (size_t i = px->first; i < px->first + px->count; ++i) {
    for (size_t b = 0; b < seg[i].len; ++b) {
      *row++ = seg[i].offset == Q8_CONV_PADDING ? -1 : px->anchor + seg[i].offset + (int64_t)b;
    }
  }
}

static void row_from_definition(const q8_conv_shape *s, size_t y, size_t x, int64_t *row) {
  for (size_t ky = 0; ky < s->kernel_h; ++ky)
    for (size_t kx = 0; kx < s->kernel_w; ++kx)
      for (size_t c = 0; c < q8t_conv_group_in(s); ++c) {
        const int64_t iy = (int64_t)(y * s->stride_h + ky * s->dilation_h) - (int64_t)s->pad_top;
        const int64_t ix = (int64_t)(x * s->stride_w + kx * s->dilation_w) - (int64_t)s->pad_left;
        const bool inside = iy >= 0 && iy < (int64_t)s->in_h && ix >= 0 && ix < (int64_t)s->in_w;
        *row++ = inside ? (iy * (int64_t)s->in_w + ix) * (int64_t)s->in_channels + (int64_t)c : -1;
      }
}

/* Builds the table of s, checks every row against the definition and that
 * merging left nothing to merge; returns it (caller frees both arrays). */
static size_t checked_table(const q8_conv_shape *s, q8_conv_pixel **pixels_out,
                            q8_conv_segment **seg_out, size_t *out_w_out) {
  size_t out_h, out_w;
  cr_assert_eq(q8_conv_output_shape(s, &out_h, &out_w), Q8_OK);
  const size_t pixels = out_h * out_w, k = taps(s) * q8t_conv_group_in(s);
  const size_t count = q8_conv_indirection(s, out_h, out_w, NULL, NULL);
  q8_conv_pixel *px = malloc(pixels * sizeof *px);
  q8_conv_segment *seg = malloc(count * sizeof *seg);
  cr_assert_eq(q8_conv_indirection(s, out_h, out_w, px, seg), count,
               "counting and building agree");
  int64_t *got = malloc(k * sizeof *got), *want = malloc(k * sizeof *want);
  for (size_t p = 0; p < pixels; ++p) {
    size_t bytes = 0;
    for (size_t i = px[p].first; i < px[p].first + px[p].count; ++i) {
      cr_assert_lt(i, count);
      bytes += seg[i].len;
      if (i == px[p].first) continue;
      const bool pad = seg[i].offset == Q8_CONV_PADDING, prev_pad = seg[i - 1].offset == Q8_CONV_PADDING;
      cr_expect(!(pad && prev_pad), "pixel %zu: adjacent padding segments were not merged", p);
      cr_expect(pad || prev_pad || seg[i - 1].offset + (int64_t)seg[i - 1].len != seg[i].offset,
                "pixel %zu: contiguous segments were not merged", p);
    }
    cr_assert_eq(bytes, k, "pixel %zu spans %zu bytes, not k = %zu", p, bytes, k);
    row_from_table(&px[p], seg, got);
    row_from_definition(s, p / out_w, p % out_w, want);
    cr_assert_arr_eq(got, want, k * sizeof *got, "pixel %zu reads the wrong input bytes", p);
  }
  free(got);
  free(want);
  *pixels_out = px;
  *seg_out = seg;
  *out_w_out = out_w;
  return count;
}

/* The indirection table: rows equal the definition on every shape of the
 * grid; a padded tap is a zero-point fill, taps adjacent in memory are one
 * copy (a whole kernel row for one group without horizontal padding), and
 * pixels padded alike share one pattern. */
Test(conv_indirection, rows_equal_the_definition) {
  for (size_t i = 0; i < GRID; ++i) {
    q8_conv_pixel *px;
    q8_conv_segment *seg;
    size_t out_w;
    checked_table(&grid[i].shape, &px, &seg, &out_w);
    free(px);
    free(seg);
  }
}

Test(conv_indirection, conv1_rows_are_whole_kernel_rows) {
  const q8_conv_shape s = {1, 16, 16, 3, 8, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1};
  q8_conv_pixel *px;
  q8_conv_segment *seg;
  size_t out_w;
  const size_t count = checked_table(&s, &px, &seg, &out_w);
  /* Output (3, 3) reads rows 3..9, columns 3..9: unpadded, 7 rows of 21 bytes. */
  const q8_conv_pixel *p = &px[3 * out_w + 3];
  cr_assert_eq(p->count, 7, "an interior conv1 pixel is 7 row copies");
  cr_expect_eq(p->anchor, (int64_t)((3 * 16 + 3) * 3));
  for (size_t ky = 0; ky < 7; ++ky) {
    cr_expect_eq(seg[p->first + ky].len, 21);
    cr_expect_eq(seg[p->first + ky].offset, (int64_t)(ky * 16 * 3));
  }
  cr_expect_eq(px[2 * out_w + 2].first, p->first, "interior pixels share one pattern");
  /* Output (0, 0): rows and columns -3..3. The 3 padded rows and the first
   * row's 3 padded columns are one fill; then each of the 4 rows is a copy of
   * 4 taps, the 3 rows after the first each preceded by a fill: 8 segments. */
  cr_expect_eq(px[0].count, 8, "the corner pixel's segments");
  cr_expect_eq(px[0].anchor, (int64_t)((-3 * 16 - 3) * 3), "the anchor lies in the padding");
  /* Rows and columns fall in 4 padding classes each (y = 0, 1, 2..6, 7): 16 patterns. */
  cr_expect_leq(count, 16 * 49, "%zu segments: patterns are not shared", count);
  free(px);
  free(seg);
}

/* Groups: taps of one group are in_channels apart, never merged. */
Test(conv_indirection, grouped_taps_stay_separate) {
  const q8_conv_shape s = {1, 4, 4, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 2};
  q8_conv_pixel *px;
  q8_conv_segment *seg;
  size_t out_w;
  cr_expect_eq(checked_table(&s, &px, &seg, &out_w), 9, "one pattern, one segment per tap");
  free(px);
  free(seg);
}

/* The row gathers, panel for panel: the AVX-512 ones (masked loads; and with
 * VBMI, byte permutes for strided tiles) equal the portable q8_conv_gather on
 * every 8-row tile of shapes with strided runs, including the bytes past k
 * up to the panel stride, for both flips, with the input ending at an
 * inaccessible page. */
typedef struct gather_case {
  const char *name;
  q8_conv_shape shape;
  bool strided; /* the interior pattern qualifies for the permutes */
} gather_case;

Test(conv_gather, x86_gathers_equal_the_portable_one) {
#if defined(__x86_64__)
  const q8_cpu_info *cpu = q8_cpu();
  if (!q8_cpu_usable(cpu, Q8_CPU_AVX512BW) || !q8_cpu_usable(cpu, Q8_CPU_AVX512VL)) {
    cr_log_info("AVX-512 BW/VL not usable here: the x86 gathers are not tested");
    return;
  }
  const bool vbmi = q8_cpu_usable(cpu, Q8_CPU_AVX512VBMI);
  if (!vbmi) cr_log_info("AVX-512 VBMI not usable here: the permute gather is not tested");
  static const gather_case cases[] = {
      {"stem 3x3 s2, 3 channels", {2, 9, 40, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}, true},
      {"3x3 s1, 4 channels", {1, 5, 24, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, true},
      {"3x3 s1 groups 2 of 4 channels", {1, 4, 30, 8, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 2}, true},
      {"2x2 s1, 1 channel, dilation 3", {1, 6, 33, 1, 4, 2, 2, 1, 1, 3, 3, 1, 0, 0, 1, 1}, true},
      {"7x7 s2, 3 channels (spans of 63 bytes)", {1, 13, 40, 3, 4, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1}, true},
      {"3x3 s2, 5 channels (spans over 64 bytes)", {1, 7, 40, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}, false},
  };
  const size_t mr = 8;
  q8t_rng r = q8t_rng_new(67);
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci) {
    const q8_conv_shape *s = &cases[ci].shape;
    q8_conv_pixel *px;
    q8_conv_segment *seg;
    size_t out_w;
    checked_table(s, &px, &seg, &out_w);
    size_t out_h, ow;
    cr_assert_eq(q8_conv_output_shape(s, &out_h, &ow), Q8_OK);
    const size_t cg = q8t_conv_group_in(s), k = taps(s) * cg, stride = (k + 3) / 4 * 4;
    const size_t image_pixels = out_h * out_w, image_bytes = s->in_h * s->in_w * s->in_channels;
    q8t_page_end in = q8t_page_end_new(s->batch * image_bytes);
    for (size_t i = 0; i < s->batch * image_bytes; ++i) in.data[i] = (unsigned char)q8t_range(&r, 0, 255);
    const size_t mid = out_h / 2 * out_w + (out_w - 1) / 2;
    q8_conv_strided st;
    const bool built = q8_conv_strided_build(seg, px[mid].first, px[mid].count, mr,
                                             px[mid + 1].anchor - px[mid].anchor, stride, &st);
    cr_assert_eq(built, cases[ci].strided, "%s: the strided table is %sbuilt", cases[ci].name,
                 built ? "" : "not ");
    const size_t panel_bytes = mr * stride + Q8_CONV_PANEL_SLACK;
    unsigned char *want = malloc(panel_bytes), *got = malloc(panel_bytes);
    size_t strided_tiles = 0;
    for (size_t g = 0; g < s->groups; ++g) {
      for (unsigned flip = 0; flip <= 0x80; flip += 0x80) {
        q8_conv_indirect_args a = {.k = k, .panel_stride = stride, .input = in.data + g * cg,
                                   .image_pixels = image_pixels, .image_bytes = image_bytes,
                                   .in_dtype = Q8_UINT8, .in_zero_point = q8t_range(&r, 0, 255),
                                   .pixels = px, .segments = seg,
                                   .strided = built ? &st : NULL};
        const size_t rows_total = s->batch * image_pixels;
        for (size_t m = 0; m < rows_total; m += (m % 3 == 0 ? mr : 1)) {
          const size_t rows = rows_total - m < mr ? rows_total - m : mr;
          a.panel = want;
          q8_conv_gather(&a, m, rows, (uint8_t)flip);
          for (int which = 0; which < (vbmi ? 2 : 1); ++which) {
            memset(got, 0x5a, panel_bytes);
            a.panel = got;
            if (which == 0) {
              q8_conv_gather_x8__avx512vnni(&a, m, rows, (uint8_t)flip);
            } else {
              q8_conv_gather_x8__avx512vbmi(&a, m, rows, (uint8_t)flip);
            }
            cr_assert_arr_eq(got, want, rows * stride, "%s: tile %zu (%zu rows) group %zu flip %u: %s gather differs",
                             cases[ci].name, m, rows, g, flip, which ? "VBMI" : "AVX-512");
          }
          /* What the VBMI gather takes as strided: a run of the table's pattern. */
          if (built && rows == mr && m % image_pixels + mr <= image_pixels) {
            const q8_conv_pixel *p = &px[m % image_pixels];
            bool run = true;
            for (size_t i = 0; i < mr; ++i) {
              run = run && p[i].first == st.pattern && p[i].anchor == p[0].anchor + (int64_t)i * st.step;
            }
            strided_tiles += run;
          }
        }
      }
    }
    if (built) cr_assert_gt(strided_tiles, 0, "%s: no tile was a strided run", cases[ci].name);
    q8_conv_strided_free(&st);
    free(want);
    free(got);
    q8t_page_end_free(&in);
    free(px);
    free(seg);
  }
#else
  cr_log_info("not x86-64: no x86 gathers to test");
#endif
}

#if defined(__x86_64__)
extern const q8_gemm_ukernel q8_gemm_x8s8_32x32c4__amx_emu;
#endif

/* The indirect conv driver (q8_conv_indirect) over the AMX kernel's source
 * on the emulated tile unit, against q8_conv_ref, over the grid: the plans
 * run it only where AMX is usable (not on this kind of machine), so this is
 * what tests the conv path of that kernel: its 32-row tiles over gathered
 * panels, row chunks through run_rows, int8 and uint8 input, int32 and
 * requantized output, guard bytes around the output. */
Test(conv_indirect, emulated_amx_kernel_equals_the_reference) {
#if defined(__x86_64__)
  if (!q8_isa_usable_on(Q8_ISA_AVX512VNNI, q8_cpu(), NULL)) {
    cr_log_info("AVX-512 not usable here: the emulated AMX kernel (AVX-512 epilogue) is not tested");
    return;
  }
  const q8_gemm_ukernel *uk = &q8_gemm_x8s8_32x32c4__amx_emu;
  q8t_rng r = q8t_rng_new(71);
  size_t cases = 0;
  for (size_t gi = 0; gi < sizeof grid / sizeof grid[0]; ++gi) {
    for (int var = 0; var < 2; ++var, ++cases) {
      q8_conv_shape s = grid[gi].shape;
      s.batch = var ? 2 : 1;
      const q8_dtype in_dtype = var ? Q8_INT8 : Q8_UINT8;
      const bool requant = (gi + (size_t)var) % 2 == 1;
      size_t out_h, out_w;
      cr_assert_eq(q8_conv_output_shape(&s, &out_h, &out_w), Q8_OK);
      const size_t cg = q8t_conv_group_in(&s), ng = s.out_channels / s.groups;
      const size_t k = taps(&s) * cg, pixels = out_h * out_w, rows = s.batch * pixels;
      const size_t in_bytes = s.batch * s.in_h * s.in_w * s.in_channels;
      unsigned char *in = malloc(in_bytes);
      for (size_t i = 0; i < in_bytes; ++i) in[i] = (unsigned char)q8t_range(&r, 0, 255);
      const int32_t zp = in_dtype == Q8_UINT8 ? q8t_range(&r, 0, 255) : q8t_range(&r, -128, 127);
      int8_t *w = malloc(s.out_channels * k);
      for (size_t i = 0; i < s.out_channels * k; ++i) w[i] = (int8_t)q8t_range(&r, -128, 127);
      int32_t *bias = malloc(s.out_channels * sizeof(int32_t));
      for (size_t i = 0; i < s.out_channels; ++i) bias[i] = q8t_range(&r, -50000, 50000);
      q8_requant_params rq;
      int32_t *mult = malloc(s.out_channels * sizeof(int32_t));
      int32_t *shift = malloc(s.out_channels * sizeof(int32_t));
      float *scale = malloc(s.out_channels * sizeof(float)), *wscale = malloc(s.out_channels * sizeof(float));
      for (size_t i = 0; i < s.out_channels; ++i) wscale[i] = q8t_uniform(&r, 1e-3f, 2e-2f);
      if (requant) {
        cr_assert_eq(q8_requant_params_init(&rq, (q8_requant_mode)(gi % 3), s.out_channels, 0.05f, wscale,
                                            0.5f, Q8_INT8, q8t_range(&r, -20, 20), -128, 127, mult,
                                            shift, scale),
                     Q8_OK, "%s", q8_error_detail());
      }
      const q8_requant_params *rqp = requant ? &rq : NULL;
      const size_t c_elem = requant ? 1 : sizeof(int32_t), out_bytes = rows * s.out_channels * c_elem;
      unsigned char *want = malloc(out_bytes);
      cr_assert_eq(q8_conv_ref(&s, in, in_dtype, zp, w, bias, rqp, want), Q8_OK);

      q8_conv_pixel *px;
      q8_conv_segment *seg;
      size_t table_w;
      checked_table(&s, &px, &seg, &table_w);
      const size_t group_bytes = q8_gemm_packed_bytes(uk->nr, uk->kr, ng, k);
      unsigned char *packed = malloc(s.groups * group_bytes);
      int32_t *col_term = malloc(ng * sizeof(int32_t));
      unsigned char *panel = aligned_alloc(64, (q8_conv_indirect_panel_bytes(uk, k) + 63) / 64 * 64);
      q8t_buf out = q8t_buf_new(out_bytes, (size_t)q8t_range(&r, 0, 3) * c_elem);
      for (size_t g = 0; g < s.groups; ++g) {
        const int8_t *wg = w + g * ng * k;
        q8_gemm_col_terms(ng, k, wg, bias + g * ng, zp, q8_gemm_a_offset(uk, in_dtype), col_term);
        uk->pack(uk->nr, uk->kr, ng, k, wg, col_term, packed + g * group_bytes);
        q8_requant_params rq_group;
        const q8_conv_indirect_args args = {
            .k = k, .panel_stride = q8_conv_indirect_panel_stride(uk, k), .input = in + g * cg,
            .image_pixels = pixels, .image_bytes = s.in_h * s.in_w * s.in_channels,
            .in_dtype = in_dtype, .in_zero_point = zp, .pixels = px, .segments = seg,
            .packed = packed + g * group_bytes, .c = out.data + g * ng * c_elem,
            .ldc = s.out_channels, .rq = q8_requant_params_at(rqp, g * ng, &rq_group),
            .nc = uk->nr, .panel = panel};
        q8_conv_indirect(uk, &args, 0, rows, 0, ng);
      }
      cr_assert_arr_eq(out.data, want, out_bytes, "%s (batch %zu, %s input, %s output): the emulated AMX "
                       "kernel differs from q8_conv_ref", grid[gi].name, s.batch,
                       in_dtype == Q8_INT8 ? "int8" : "uint8", requant ? "int8" : "int32");
      cr_assert(q8t_buf_guards_ok(&out), "%s: wrote outside the output", grid[gi].name);
      q8t_buf_free(&out);
      free(panel);
      free(col_term);
      free(packed);
      free(px);
      free(seg);
      free(want);
      free(wscale);
      free(scale);
      free(shift);
      free(mult);
      free(bias);
      free(w);
      free(in);
    }
  }
  cr_log_info("%zu conv cases through the emulated AMX kernel", cases);
#else
  cr_log_info("not x86-64: no AMX kernel to test");
#endif
}

/* ---- random shapes ---------------------------------------------------------- */

/* A value of pool, picked uniformly. */
static size_t pick(q8t_rng *r, const size_t *pool, size_t count) {
  return pool[(size_t)q8t_range(r, 0, (int32_t)count - 1)];
}

#define PICK(r, pool) pick(r, pool, sizeof pool / sizeof pool[0])

/* A random valid shape: dense (40 %), grouped (20 %) or depthwise (40 %),
 * kernels 1..7 (mostly square), strides 1..3, dilation 1..2, padding 0..3 per
 * side, batch 1..3, channel counts around the tile and vector widths (1, 7,
 * 16, 17, 33, 64, 65, 144, ...), with at most ~2 M multiply-adds. */
static q8_conv_shape random_shape(q8t_rng *r) {
  static const size_t kernels[] = {1, 1, 2, 3, 3, 3, 3, 5, 5, 7};
  static const size_t strides[] = {1, 1, 1, 2, 2, 3};
  static const size_t dense_in[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 24, 31, 32, 33, 48, 64, 65, 96};
  static const size_t dense_out[] = {1, 3, 7, 8, 16, 17, 24, 31, 32, 33, 40, 48, 64, 65, 100};
  static const size_t dw_channels[] = {1,  3,  7,  8,  15, 16, 17,  24,  31,  32,  33,
                                       40, 48, 63, 64, 65, 80, 96, 112, 144, 160, 200};
  for (;;) {
    q8_conv_shape s = {0};
    const int kind = q8t_range(r, 0, 9);
    s.batch = (size_t)(q8t_range(r, 0, 9) < 7 ? 1 : q8t_range(r, 2, 3));
    s.kernel_h = PICK(r, kernels);
    s.kernel_w = q8t_range(r, 0, 9) < 7 ? s.kernel_h : PICK(r, kernels);
    s.stride_h = PICK(r, strides);
    s.stride_w = q8t_range(r, 0, 9) < 8 ? s.stride_h : PICK(r, strides);
    s.dilation_h = q8t_range(r, 0, 9) < 8 ? 1 : 2;
    s.dilation_w = q8t_range(r, 0, 9) < 8 ? s.dilation_h : 3 - s.dilation_h;
    if (q8t_range(r, 0, 1)) { /* "same"-like padding */
      s.pad_top = s.pad_bottom = (s.kernel_h - 1) * s.dilation_h / 2;
      s.pad_left = s.pad_right = (s.kernel_w - 1) * s.dilation_w / 2;
    } else {
      s.pad_top = (size_t)q8t_range(r, 0, 3);
      s.pad_bottom = (size_t)q8t_range(r, 0, 3);
      s.pad_left = (size_t)q8t_range(r, 0, 3);
      s.pad_right = (size_t)q8t_range(r, 0, 3);
    }
    s.in_h = (size_t)q8t_range(r, 1, 24);
    s.in_w = (size_t)q8t_range(r, 1, 40);
    if (kind < 4) {
      s.groups = 1;
      s.in_channels = PICK(r, dense_in);
      s.out_channels = PICK(r, dense_out);
    } else if (kind < 6) {
      s.groups = (size_t)q8t_range(r, 2, 4);
      s.in_channels = s.groups * PICK(r, dense_in);
      s.out_channels = s.groups * (size_t)q8t_range(r, 1, 24);
    } else {
      s.in_channels = s.groups = PICK(r, dw_channels);
      s.out_channels = s.in_channels * (q8t_range(r, 0, 9) < 8 ? 1 : 2);
    }
    size_t out_h, out_w;
    if (q8_conv_output_shape(&s, &out_h, &out_w) != Q8_OK) continue;
    const size_t macs = s.batch * out_h * out_w * s.out_channels * s.kernel_h * s.kernel_w *
                        (s.in_channels / s.groups);
    if (macs > 2000000) continue;
    return s;
  }
}

/* Random shapes, each with a variant of the grid's: what a grid may miss
 * (combinations of tails, strides, paddings, groups and batch no case names)
 * bit-exact with the reference on every usable ISA, 1 and 2 threads, guard
 * bytes intact. Q8_TEST_RANDOM_CASES overrides the count per ISA. */
Test(conv_plan_random, random_shapes_bit_exact_on_every_isa, .timeout = 600) {
  const char *env = getenv("Q8_TEST_RANDOM_CASES");
  const size_t count = env ? (size_t)strtoul(env, NULL, 10) : 200;
  for (size_t i = 0; i < ISAS; ++i) {
    if (!use_isa(isas[i])) continue;
    q8t_rng r = q8t_rng_new(1000 + i);
    size_t depthwise = 0, border = 0, windows = 0, gemm = 0;
    for (size_t c = 0; c < count; ++c) {
      const q8_conv_shape s = random_shape(&r);
      char name[160];
      snprintf(name, sizeof name,
               "random case %zu: %zux%zux%zux%zu:%zu:%zux%zu:s%zu,%zu:p%zu,%zu,%zu,%zu:d%zu,%zu:g%zu", c,
               s.batch, s.in_h, s.in_w, s.in_channels, s.out_channels, s.kernel_h, s.kernel_w,
               s.stride_h, s.stride_w, s.pad_top, s.pad_left, s.pad_bottom, s.pad_right,
               s.dilation_h, s.dilation_w, s.groups);
      const q8t_conv_case sc = {name, s};
      const outcome o = check_case(&r, &sc, &variants[(size_t)q8t_range(&r, 0, VARIANTS - 1)]);
      depthwise += strncmp(o.kernel, "q8_dwconv_", 10) == 0;
      border += strncmp(o.kernel, "igemm+border:", 13) == 0;
      windows += strncmp(o.kernel, "windows:", 8) == 0;
      gemm += strncmp(o.kernel, "gemm:", 5) == 0;
    }
    cr_log_info("%s: %zu random shapes (%zu depthwise, %zu gemm, %zu border tiles, %zu windows)",
                isas[i], count, depthwise, gemm, border, windows);
  }
  q8_set_isa(NULL);
}
