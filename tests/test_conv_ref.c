/* The reference convolution against independent models (an int64 sum over an
 * explicitly padded input; a double computation on dequantized values), and
 * the conv plan API: its errors, its weight layouts, and that it equals the
 * reference. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "tests/support/q8test.h"

/* batch, in_h, in_w, in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w,
 * dilation_h, dilation_w, pad_top, pad_bottom, pad_left, pad_right, groups */
static const q8t_conv_case grid[] = {
    {"1x1", {1, 5, 6, 7, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"3x3 pad 1", {1, 6, 5, 3, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"5x5 stride 2 asymmetric pad", {1, 9, 8, 1, 7, 5, 5, 2, 2, 1, 1, 2, 1, 0, 2, 1}},
    {"7x7 stride 2 pad 3", {1, 11, 10, 3, 5, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1}},
    {"kernel equal to input", {1, 4, 3, 7, 3, 4, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}},
    {"padding larger than kernel/2", {1, 4, 4, 3, 4, 3, 3, 1, 1, 1, 1, 3, 2, 2, 3, 1}},
    {"stride larger than kernel", {1, 9, 9, 3, 3, 2, 2, 3, 3, 1, 1, 0, 0, 0, 0, 1}},
    {"dilation 2", {1, 8, 9, 3, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1}},
    {"groups 2", {1, 6, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}},
    {"depthwise multiplier 1", {1, 7, 7, 17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 17}},
    {"depthwise multiplier 2 stride 2", {1, 6, 6, 7, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 7}},
    {"depthwise 5x5 stride 2", {1, 9, 9, 3, 6, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 3}},
    {"batch 2", {2, 5, 5, 3, 7, 3, 3, 1, 1, 1, 1, 1, 0, 1, 0, 1}},
    {"1 channel in and out", {1, 5, 5, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"1x3 stride (1,2) dilation (2,1)", {1, 6, 7, 7, 3, 1, 3, 1, 2, 2, 1, 0, 1, 1, 1, 1}},
};
#define GRID_CASES (sizeof grid / sizeof grid[0])

typedef struct problem {
  q8_conv_shape s;
  size_t out_h, out_w;
  q8_dtype in_dtype;
  int32_t zp;
  void *x;        /* NHWC */
  int8_t *w;      /* OHWI per group */
  int32_t *bias;  /* out_channels or NULL */
} problem;

static size_t group_in(const q8_conv_shape *s) { return q8t_conv_group_in(s); }
static size_t input_count(const problem *p) {
  return p->s.batch * p->s.in_h * p->s.in_w * p->s.in_channels;
}
static size_t output_count(const problem *p) {
  return p->s.batch * p->out_h * p->out_w * p->s.out_channels;
}
static size_t weight_count(const q8_conv_shape *s) { return q8t_conv_weight_count(s); }

static int32_t input_at(const problem *p, size_t i) {
  return p->in_dtype == Q8_UINT8 ? ((uint8_t *)p->x)[i] : ((int8_t *)p->x)[i];
}

/* fill: 0 random, -1 inputs at the dtype's minimum, +1 at its maximum, with
 * weights and zero point at the opposite ends: the largest |products|. */
static problem make_problem(q8t_rng *r, const q8_conv_shape *s, q8_dtype dt, int fill, bool bias) {
  problem p = {.s = *s, .in_dtype = dt};
  cr_assert_eq(q8_conv_output_shape(s, &p.out_h, &p.out_w), Q8_OK, "%s", q8_error_detail());
  const int lo = dt == Q8_UINT8 ? 0 : -128, hi = dt == Q8_UINT8 ? 255 : 127;
  p.x = malloc(input_count(&p));
  p.w = malloc(weight_count(s));
  for (size_t i = 0; i < input_count(&p); ++i) {
    const int v = fill == 0 ? q8t_range(r, lo, hi) : fill < 0 ? lo : hi;
    if (dt == Q8_UINT8) ((uint8_t *)p.x)[i] = (uint8_t)v; else ((int8_t *)p.x)[i] = (int8_t)v;
  }
  for (size_t i = 0; i < weight_count(s); ++i) {
    p.w[i] = (int8_t)(fill == 0 ? q8t_range(r, -128, 127) : fill < 0 ? 127 : -128);
  }
  p.zp = fill == 0 ? q8t_range(r, lo, hi) : fill < 0 ? hi : lo;
  if (bias) {
    p.bias = malloc(s->out_channels * sizeof(int32_t));
    for (size_t c = 0; c < s->out_channels; ++c) p.bias[c] = q8t_range(r, -100000, 100000);
  }
  return p;
}

static void free_problem(problem *p) {
  free(p->x);
  free(p->w);
  free(p->bias);
}

/* Independent int64 model: materialize the padded input (padding holds the
 * zero point), then convolve without any bounds test. */
static int64_t *model_acc(const problem *p) {
  const q8_conv_shape *s = &p->s;
  const size_t ph = s->pad_top + s->in_h + s->pad_bottom, pw = s->pad_left + s->in_w + s->pad_right;
  int64_t *padded = malloc(s->batch * ph * pw * s->in_channels * sizeof(int64_t));
  for (size_t n = 0; n < s->batch; ++n)
    for (size_t y = 0; y < ph; ++y)
      for (size_t x = 0; x < pw; ++x)
        for (size_t c = 0; c < s->in_channels; ++c) {
          const bool inside = y >= s->pad_top && y < s->pad_top + s->in_h && x >= s->pad_left &&
                              x < s->pad_left + s->in_w;
          padded[((n * ph + y) * pw + x) * s->in_channels + c] =
              inside ? input_at(p, ((n * s->in_h + y - s->pad_top) * s->in_w + x - s->pad_left) *
                                       s->in_channels + c)
                     : p->zp;
        }
  const size_t cin = group_in(s), cout = s->out_channels / s->groups;
  int64_t *acc = malloc(output_count(p) * sizeof(int64_t));
  for (size_t n = 0; n < s->batch; ++n)
    for (size_t oy = 0; oy < p->out_h; ++oy)
      for (size_t ox = 0; ox < p->out_w; ++ox)
        for (size_t g = 0; g < s->groups; ++g)
          for (size_t j = 0; j < cout; ++j) {
            const size_t oc = g * cout + j;
            int64_t sum = p->bias ? p->bias[oc] : 0;
            for (size_t ky = 0; ky < s->kernel_h; ++ky)
              for (size_t kx = 0; kx < s->kernel_w; ++kx)
                for (size_t ic = 0; ic < cin; ++ic) {
                  const size_t y = oy * s->stride_h + ky * s->dilation_h;
                  const size_t x = ox * s->stride_w + kx * s->dilation_w;
                  sum += (padded[((n * ph + y) * pw + x) * s->in_channels + g * cin + ic] - p->zp) *
                         p->w[((oc * s->kernel_h + ky) * s->kernel_w + kx) * cin + ic];
                }
            acc[((n * p->out_h + oy) * p->out_w + ox) * s->out_channels + oc] = sum;
          }
  free(padded);
  return acc;
}

static void check_int32_case(q8t_rng *r, const q8t_conv_case *gc, q8_dtype dt, int fill, bool bias) {
  problem p = make_problem(r, &gc->shape, dt, fill, bias);
  const size_t count = output_count(&p);
  q8t_buf out = q8t_buf_new(count * sizeof(int32_t), 4);
  cr_assert_eq(q8_conv_ref(&p.s, p.x, dt, p.zp, p.w, p.bias, NULL, out.data), Q8_OK, "%s", gc->name);
  int64_t *want = model_acc(&p);
  for (size_t i = 0; i < count; ++i) {
    int32_t got;
    memcpy(&got, out.data + i * sizeof got, sizeof got);
    cr_assert_eq(got, want[i], "%s (%s, fill %d): output %zu", gc->name,
                 dt == Q8_UINT8 ? "uint8" : "int8", fill, i);
  }
  cr_assert(q8t_buf_guards_ok(&out), "%s: wrote outside the output", gc->name);
  free(want);
  q8t_buf_free(&out);
  free_problem(&p);
}

Test(conv_ref, int32_output_equals_int64_model_over_the_grid) {
  q8t_rng r = q8t_rng_new(61);
  for (size_t i = 0; i < GRID_CASES; ++i) {
    for (int trial = 0; trial < 4; ++trial) {
      check_int32_case(&r, &grid[i], trial % 2 ? Q8_UINT8 : Q8_INT8, 0, trial >= 2);
    }
  }
  cr_log_info("conv_ref: %zu grid shapes x int8/uint8 x bias/no bias exact", GRID_CASES);
}

Test(conv_ref, extreme_values_and_zero_points_at_the_ends) {
  q8t_rng r = q8t_rng_new(62);
  for (size_t i = 0; i < GRID_CASES; ++i) {
    for (int fill = -1; fill <= 1; fill += 2) {
      check_int32_case(&r, &grid[i], Q8_INT8, fill, false);
      check_int32_case(&r, &grid[i], Q8_UINT8, fill, false);
    }
  }
}

Test(conv_ref, padding_alone_gives_the_bias) {
  /* Every output of a 1x1 kernel over pure padding reads only the zero point. */
  const q8_conv_shape s = {1, 2, 2, 3, 2, 1, 1, 3, 3, 1, 1, 3, 3, 3, 3, 1};
  size_t oh = 0, ow = 0;
  cr_assert_eq(q8_conv_output_shape(&s, &oh, &ow), Q8_OK);
  cr_assert_eq(oh, 3);
  cr_assert_eq(ow, 3);
  const int8_t x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, w[6] = {1, 1, 1, -1, -1, -1};
  const int32_t bias[2] = {1000, -1000};
  int32_t y[18];
  cr_assert_eq(q8_conv_ref(&s, x, Q8_INT8, -7, w, bias, NULL, y), Q8_OK);
  for (size_t i = 0; i < 18; ++i) {
    const bool centre = i / 2 == 4; /* output (1,1) reads input (0,0) */
    const int32_t want = bias[i % 2] + (centre ? (i % 2 ? -1 : 1) * (1 + 2 + 3 + 3 * 7) : 0);
    cr_expect_eq(y[i], want, "output %zu", i);
  }
}

/* Requantized output against a double computation on dequantized values:
 * real = sum (in_scale (x - zp)) (w_scale[oc] w) + bias in_scale w_scale[oc],
 * q = clamp(round_half_even(real / out_scale) + out_zp). The three modes round
 * the same real value (gemmlowp twice), so each output is within 1 of it;
 * and exactly requantize(model acc), which pins the composition. */
static void check_requantized_case(q8t_rng *r, const q8t_conv_case *gc, q8_dtype dt, q8_dtype out,
                                   q8_requant_mode mode, bool per_channel, bool clamp,
                                   size_t *off_by_one, size_t *outputs) {
  problem p = make_problem(r, &gc->shape, dt, 0, true);
  const size_t oc_count = p.s.out_channels, channels = per_channel ? oc_count : 1;
  const float in_scale = q8t_uniform(r, 0.01f, 0.1f), out_scale = q8t_uniform(r, 0.5f, 4.0f);
  float *w_scales = malloc(channels * sizeof(float)), *rscale = malloc(channels * sizeof(float));
  int32_t *mult = malloc(channels * sizeof(int32_t)), *shift = malloc(channels * sizeof(int32_t));
  for (size_t c = 0; c < channels; ++c) w_scales[c] = q8t_uniform(r, 1e-3f, 2e-2f);
  const int32_t lo = out == Q8_UINT8 ? 0 : -128, hi = out == Q8_UINT8 ? 255 : 127;
  const int32_t out_zp = q8t_range(r, lo, hi);
  const int32_t qmin = clamp ? out_zp : lo, qmax = clamp ? (out_zp + hi) / 2 : hi; /* ReLU-like */
  q8_requant_params rq;
  cr_assert_eq(q8_requant_params_init(&rq, mode, channels, in_scale, w_scales, out_scale, out,
                                      out_zp, qmin, qmax, mult, shift, rscale),
               Q8_OK, "%s", q8_error_detail());
  const size_t count = output_count(&p);
  q8t_buf y = q8t_buf_new(count, 3);
  cr_assert_eq(q8_conv_ref(&p.s, p.x, dt, p.zp, p.w, p.bias, &rq, y.data), Q8_OK, "%s", gc->name);
  cr_assert(q8t_buf_guards_ok(&y), "%s: wrote outside the output", gc->name);

  int64_t *acc = model_acc(&p);
  const q8_conv_shape *s = &p.s;
  const size_t cin = group_in(s), per_group = oc_count / s->groups;
  for (size_t i = 0; i < count; ++i) {
    const size_t oc = i % oc_count, pixel = i / oc_count;
    const size_t ox = pixel % p.out_w, oy = pixel / p.out_w % p.out_h, n = pixel / p.out_w / p.out_h;
    const double ws = w_scales[per_channel ? oc : 0];
    double real = (double)p.bias[oc] * in_scale * ws;
    for (size_t ky = 0; ky < s->kernel_h; ++ky)
      for (size_t kx = 0; kx < s->kernel_w; ++kx) {
        const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_top;
        const long ix = (long)(ox * s->stride_w + kx * s->dilation_w) - (long)s->pad_left;
        if (iy < 0 || ix < 0 || iy >= (long)s->in_h || ix >= (long)s->in_w) continue;
        for (size_t ic = 0; ic < cin; ++ic) {
          const size_t at = ((n * s->in_h + (size_t)iy) * s->in_w + (size_t)ix) * s->in_channels +
                            oc / per_group * cin + ic;
          const double xr = (double)in_scale * (input_at(&p, at) - p.zp);
          const double wr = ws * p.w[((oc * s->kernel_h + ky) * s->kernel_w + kx) * cin + ic];
          real += xr * wr;
        }
      }
    double q = nearbyint(real / out_scale) + out_zp; /* default rounding: half to even */
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    const int32_t got = out == Q8_UINT8 ? y.data[i] : (int8_t)y.data[i];
    cr_assert_leq(fabs(got - q), 1.0, "%s mode %d: output %zu is %d, float model %g", gc->name,
                  (int)mode, i, got, q);
    *off_by_one += got != (int32_t)q;
    ++*outputs;
    cr_assert_eq(got, q8_ref_requantize_one((int32_t)acc[i], &rq, per_channel ? oc : 0),
                 "%s mode %d: output %zu", gc->name, (int)mode, i);
  }
  free(acc);
  q8t_buf_free(&y);
  free(w_scales);
  free(rscale);
  free(mult);
  free(shift);
  free_problem(&p);
}

Test(conv_ref, requantized_output_matches_double_model) {
  q8t_rng r = q8t_rng_new(63);
  size_t off_by_one = 0, outputs = 0;
  for (size_t i = 0; i < GRID_CASES; ++i) {
    for (int mode = 0; mode < 3; ++mode) {
      for (int variant = 0; variant < 4; ++variant) {
        check_requantized_case(&r, &grid[i], variant % 2 ? Q8_UINT8 : Q8_INT8,
                               variant / 2 ? Q8_UINT8 : Q8_INT8, (q8_requant_mode)mode,
                               variant != 1, variant == 3, &off_by_one, &outputs);
      }
    }
  }
  cr_log_info("conv_ref requantized: %zu of %zu outputs differ by 1 from the double model "
              "(rounding of near-ties), none by more", off_by_one, outputs);
}

/* ---- plan -------------------------------------------------------------- */

static q8_conv_desc desc_for(const problem *p, const float *w_scales, size_t w_channels,
                             q8_dtype out, q8_requant_mode mode) {
  return (q8_conv_desc){.shape = p->s, .in_dtype = p->in_dtype, .in_zero_point = p->zp,
                        .in_scale = 0.03f, .weights = p->w, .w_layout = Q8_WEIGHTS_OHWI,
                        .w_channels = w_channels, .w_scales = w_scales, .bias = p->bias,
                        .out_dtype = out, .requant = mode, .out_scale = 0.7f,
                        .out_zero_point = out == Q8_UINT8 ? 100 : -5};
}

Test(conv_plan, equals_reference_and_oihw_equals_ohwi) {
  q8t_rng r = q8t_rng_new(64);
  for (size_t i = 0; i < GRID_CASES; ++i) {
    for (int variant = 0; variant < 6; ++variant) {
      const q8_dtype out = variant < 2 ? Q8_INT32 : variant < 4 ? Q8_INT8 : Q8_UINT8;
      const q8_requant_mode mode = (q8_requant_mode)(variant % 3);
      problem p = make_problem(&r, &grid[i].shape, variant % 2 ? Q8_UINT8 : Q8_INT8, 0, variant != 0);
      const size_t w_channels = variant % 3 == 1 ? 1 : p.s.out_channels;
      float *w_scales = malloc(w_channels * sizeof(float));
      for (size_t c = 0; c < w_channels; ++c) w_scales[c] = q8t_uniform(&r, 1e-3f, 2e-2f);
      q8_conv_desc d = desc_for(&p, w_scales, w_channels, out, mode);
      d.clamp = variant == 5;
      d.out_min = 110;
      d.out_max = 200;
      const size_t bytes = output_count(&p) * (out == Q8_INT32 ? 4 : 1);

      uint8_t *want = malloc(bytes);
      cr_assert_eq(q8t_conv_reference(&d, p.x, want), Q8_OK, "%s", q8_error_detail());

      int8_t *oihw = q8t_conv_to_oihw(&p.s, p.w);
      for (int layout = 0; layout < 2; ++layout) {
        q8_conv_desc dl = d;
        int8_t *weights = malloc(weight_count(&p.s));
        memcpy(weights, layout ? p.w : oihw, weight_count(&p.s));
        dl.weights = weights;
        dl.w_layout = layout ? Q8_WEIGHTS_OHWI : Q8_WEIGHTS_OIHW;
        q8_conv_plan *plan = NULL;
        cr_assert_eq(q8_conv_plan_create(&dl, &plan), Q8_OK, "%s", q8_error_detail());
        /* The plan holds its own copy: the caller's weights may go. */
        memset(weights, 0x55, weight_count(&p.s));
        free(weights);
        q8t_buf y = q8t_buf_new(bytes, out == Q8_INT32 ? 4 : 3);
        cr_assert_eq(q8_conv_run(plan, p.x, y.data), Q8_OK, "%s", q8_error_detail());
        cr_assert_arr_eq(y.data, want, bytes, "%s variant %d layout %s", grid[i].name, variant,
                         layout ? "OHWI" : "OIHW");
        cr_assert(q8t_buf_guards_ok(&y), "%s: the plan wrote outside the output", grid[i].name);
        q8t_buf_free(&y);
        q8_conv_plan_destroy(plan);
      }
      free(oihw);
      free(want);
      free(w_scales);
      free_problem(&p);
    }
  }
}

/* ---- plan errors: each names the offending field ------------------------ */

static int8_t err_weights[8 * 3 * 3 * 4];
static const float err_scales[8] = {0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f};

static q8_conv_desc good_desc(void) {
  return (q8_conv_desc){.shape = {1, 5, 5, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                        .in_dtype = Q8_UINT8, .in_zero_point = 128, .in_scale = 0.1f,
                        .weights = err_weights, .w_layout = Q8_WEIGHTS_OIHW, .w_channels = 8,
                        .w_scales = err_scales, .out_dtype = Q8_INT8,
                        .requant = Q8_REQUANT_FP32, .out_scale = 0.2f};
}

#define EXPECT_CONV_ERROR(desc, status, word)                                            \
  do {                                                                                   \
    q8_conv_plan *plan_ = (q8_conv_plan *)0x1;                                           \
    cr_expect_eq(q8_conv_plan_create(&(desc), &plan_), status, "%s", q8_error_detail()); \
    cr_expect_null(plan_, "no plan on failure");                                         \
    cr_expect(strstr(q8_error_detail(), word) != NULL, "detail '%s' should name '%s'",  \
              q8_error_detail(), word);                                                  \
  } while (0)

/* good_desc() with one field changed must fail with status, naming word. */
#define FIELD_ERROR(field, value, status, word) \
  do {                                          \
    q8_conv_desc bad_ = good_desc();            \
    bad_.field = value;                         \
    EXPECT_CONV_ERROR(bad_, status, word);      \
  } while (0)

static void expect_conv_ok(const q8_conv_desc *d) {
  q8_conv_plan *plan = NULL;
  cr_expect_eq(q8_conv_plan_create(d, &plan), Q8_OK, "%s", q8_error_detail());
  q8_conv_plan_destroy(plan);
}

Test(conv_plan, good_desc_is_accepted) {
  q8_conv_desc d = good_desc();
  q8_conv_plan *plan = NULL;
  cr_assert_eq(q8_conv_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
  cr_expect_str_eq(q8_error_detail(), "");
  uint8_t x[5 * 5 * 4] = {0};
  int8_t y[5 * 5 * 8];
  cr_expect_eq(q8_conv_run(plan, NULL, y), Q8_ERR_NULL);
  cr_expect(strstr(q8_error_detail(), "input") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_conv_run(plan, x, NULL), Q8_ERR_NULL);
  cr_expect(strstr(q8_error_detail(), "output") != NULL, "%s", q8_error_detail());
  cr_expect_eq(q8_conv_run(NULL, x, y), Q8_ERR_NULL);
  q8_conv_plan_destroy(plan);
  q8_conv_plan_destroy(NULL);
}

Test(conv_plan, shape_errors_name_the_field) {
  q8_conv_desc d;
  FIELD_ERROR(shape.batch, 0, Q8_ERR_ARG, "batch");
  FIELD_ERROR(shape.in_h, 0, Q8_ERR_ARG, "in_h");
  FIELD_ERROR(shape.in_w, (size_t)-3, Q8_ERR_ARG, "in_w");
  FIELD_ERROR(shape.in_channels, 0, Q8_ERR_ARG, "in_channels");
  FIELD_ERROR(shape.out_channels, 0, Q8_ERR_ARG, "out_channels");
  FIELD_ERROR(shape.kernel_h, 0, Q8_ERR_ARG, "kernel_h");
  FIELD_ERROR(shape.kernel_w, (size_t)-1, Q8_ERR_ARG, "kernel_w");
  FIELD_ERROR(shape.stride_h, 0, Q8_ERR_ARG, "stride_h");
  FIELD_ERROR(shape.stride_w, 0, Q8_ERR_ARG, "stride_w");
  FIELD_ERROR(shape.dilation_h, 0, Q8_ERR_ARG, "dilation_h");
  FIELD_ERROR(shape.dilation_w, 0, Q8_ERR_ARG, "dilation_w");
  FIELD_ERROR(shape.groups, 0, Q8_ERR_ARG, "groups");
  FIELD_ERROR(shape.pad_left, (size_t)-1, Q8_ERR_ARG, "pad_left");
  FIELD_ERROR(shape.groups, 3, Q8_ERR_ARG, "in_channels"); /* 4 channels, 3 groups */
  d = good_desc();
  d.shape.groups = 4; /* divides the 4 input channels, not the 6 output ones */
  d.shape.out_channels = 6;
  EXPECT_CONV_ERROR(d, Q8_ERR_ARG, "out_channels");
  /* 5 + 1 + 1 padded rows, a 9-row kernel: too large. */
  FIELD_ERROR(shape.kernel_h, 9, Q8_ERR_ARG, "kernel_h");
  /* Dilation 4 stretches the 3-wide kernel to 9 columns. */
  FIELD_ERROR(shape.dilation_w, 4, Q8_ERR_ARG, "kernel_w");
  /* Every dimension within INT32_MAX, but the input has 2^62 elements. */
  d = good_desc();
  d.shape.batch = d.shape.in_h = d.shape.in_w = (size_t)1 << 30;
  d.shape.in_channels = 4;
  EXPECT_CONV_ERROR(d, Q8_ERR_ARG, "input");
  size_t oh = 7;
  cr_expect_eq(q8_conv_output_shape(NULL, &oh, NULL), Q8_ERR_NULL);
  cr_expect_eq(oh, 7, "nothing written on failure");
}

Test(conv_plan, quantization_errors_name_the_field) {
  q8_conv_desc d = good_desc();
  expect_conv_ok(&d);
  d.in_dtype = Q8_INT32;
  EXPECT_CONV_ERROR(d, Q8_ERR_ARG, "in_dtype");
  FIELD_ERROR(in_zero_point, 256, Q8_ERR_ZERO_POINT, "in_zero_point");
  FIELD_ERROR(weights, NULL, Q8_ERR_NULL, "weights");
  FIELD_ERROR(w_layout, (q8_weights_layout)7, Q8_ERR_ARG, "w_layout");
  FIELD_ERROR(w_channels, 3, Q8_ERR_ARG, "w_channels");
  FIELD_ERROR(w_scales, NULL, Q8_ERR_NULL, "w_scales");
  FIELD_ERROR(in_scale, -1.0f, Q8_ERR_SCALE, "in_scale");
  FIELD_ERROR(out_scale, NAN, Q8_ERR_SCALE, "out_scale");
  FIELD_ERROR(out_dtype, Q8_FLOAT32, Q8_ERR_ARG, "out_dtype");
  FIELD_ERROR(requant, (q8_requant_mode)9, Q8_ERR_ARG, "requant");
  FIELD_ERROR(out_zero_point, 128, Q8_ERR_ZERO_POINT, "out_zero_point");
  d = good_desc();
  d.clamp = true;
  d.out_min = 10;
  d.out_max = -10;
  EXPECT_CONV_ERROR(d, Q8_ERR_ZERO_POINT, "out_min");
  /* int32 output needs no scales at all. */
  d = good_desc();
  d.out_dtype = Q8_INT32;
  d.w_scales = NULL;
  d.in_scale = 0.0f;
  expect_conv_ok(&d);
}

Test(conv_plan, accumulator_overflow_names_the_channel) {
  /* K = 3 * 3 * 4 = 36 weights of -128 against |x - 0| <= 255 (uint8, zp 0):
   * +-1175040, so a bias of 2^31 - 1000000 overflows, on channel 5 only. */
  static int8_t w[8 * 36];
  memset(w, 0x80, sizeof w);
  int32_t bias[8] = {0};
  bias[5] = INT32_MAX - 1000000;
  q8_conv_desc d = good_desc();
  d.weights = w;
  d.in_zero_point = 0;
  d.bias = bias;
  EXPECT_CONV_ERROR(d, Q8_ERR_OVERFLOW, "channel 5");
  bias[5] = INT32_MAX - 1175040;
  expect_conv_ok(&d); /* exactly at the limit */
}
