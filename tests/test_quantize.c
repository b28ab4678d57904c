/* Quantize / dequantize: rounding rules, scale operations, saturation,
 * special values, per-channel layouts, and argument errors; then every ISA's
 * kernels bit-exact with the reference. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/registry.h"
#include "q8/kernels.h"
#include "q8/q8.h"
#include "tests/support/q8test.h"

static int32_t quant1(float x, float scale, int32_t zp, q8_dtype dt, q8_rounding r, q8_scale_op op) {
  return q8_ref_quantize_one(x, scale, zp, dt, r, op);
}
#define AWAY(x) quant1(x, 1.0f, 0, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE)
#define EVEN(x) quant1(x, 1.0f, 0, Q8_INT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE)

Test(quantize, ties_half_away_from_zero) {
  cr_expect_eq(AWAY(0.5f), 1);
  cr_expect_eq(AWAY(-0.5f), -1);
  cr_expect_eq(AWAY(2.5f), 3);
  cr_expect_eq(AWAY(-2.5f), -3);
  cr_expect_eq(AWAY(3.5f), 4);
  cr_expect_eq(AWAY(0.49999997f), 0, "just below a tie");
  cr_expect_eq(AWAY(-0.49999997f), 0);
}

Test(quantize, ties_half_to_even) {
  cr_expect_eq(EVEN(0.5f), 0);
  cr_expect_eq(EVEN(-0.5f), 0);
  cr_expect_eq(EVEN(1.5f), 2);
  cr_expect_eq(EVEN(2.5f), 2);
  cr_expect_eq(EVEN(-2.5f), -2);
  cr_expect_eq(EVEN(3.5f), 4);
  cr_expect_eq(EVEN(-3.5f), -4);
  cr_expect_eq(EVEN(2.5000002f), 3, "just above a tie");
}

Test(quantize, ties_with_zero_point_and_scale) {
  /* (x / 0.25) = 10.5, + zp 3 */
  cr_expect_eq(quant1(2.625f, 0.25f, 3, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE), 14);
  cr_expect_eq(quant1(2.625f, 0.25f, 3, Q8_INT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE), 13);
  cr_expect_eq(quant1(-2.625f, 0.25f, 3, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE), -8);
  cr_expect_eq(quant1(-2.625f, 0.25f, 3, Q8_INT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE), -7);
  cr_expect_eq(quant1(2.625f, 0.25f, 128, Q8_UINT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE), 138);
}

Test(quantize, divide_and_reciprocal_differ_where_they_should) {
  /* Found by search: x / scale is exactly -115.5, x * (1/scale) is
   * -115.49999 (one float ulp above): the profiles disagree by one. */
  const float scale = 0x1.0624dep-10f, x = -0x1.d91688p-4f;
  cr_expect_eq(quant1(x, scale, 0, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE), -116);
  cr_expect_eq(quant1(x, scale, 0, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_RECIPROCAL), -115);
  cr_expect_eq(quant1(x, scale, 0, Q8_INT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE), -116);
  cr_expect_eq(quant1(x, scale, 0, Q8_INT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_RECIPROCAL), -115);
}

Test(quantize, saturation_and_special_values) {
  cr_expect_eq(EVEN(1e30f), 127);
  cr_expect_eq(EVEN(-1e30f), -128);
  cr_expect_eq(EVEN(INFINITY), 127);
  cr_expect_eq(EVEN(-INFINITY), -128);
  cr_expect_eq(EVEN(NAN), 0, "NaN maps to the zero point");
  cr_expect_eq(quant1(NAN, 0.1f, 77, Q8_UINT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE), 77);
  cr_expect_eq(EVEN(-0.0f), 0);
  cr_expect_eq(EVEN(1e-45f), 0, "denormal");
  cr_expect_eq(quant1(127.6f, 1.0f, 0, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE), 127);
  cr_expect_eq(quant1(-300.f, 1.0f, 255, Q8_UINT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE), 0);
  cr_expect_eq(quant1(300.f, 1.0f, 0, Q8_UINT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE), 255);
  cr_expect_eq(quant1(1.0f, 1e-39f, 0, Q8_INT8, Q8_ROUND_HALF_AWAY, Q8_SCALE_RECIPROCAL), 127,
               "1/scale overflows to inf: saturates");
  cr_expect_eq(quant1(0.0f, 1e-39f, 5, Q8_INT8, Q8_ROUND_HALF_EVEN, Q8_SCALE_RECIPROCAL), 5,
               "0 * inf is NaN: the zero point");
}

Test(quantize, public_api_per_channel_layouts) {
  const float x[6] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  const float scales[3] = {1.0f, 0.5f, 0.25f};
  const int32_t zps[3] = {0, 1, 2};
  const q8_quant_params p = {Q8_INT8, 3, scales, zps};
  int8_t y[6];
  cr_assert_eq(q8_quantize(x, 6, 1, &p, q8_profile_get(Q8_PROFILE_ONNX), y), Q8_OK);
  const int8_t want1[6] = {1, 3, 6, 1, 3, 6};
  cr_expect_arr_eq(y, want1, 6);
  cr_assert_eq(q8_quantize(x, 6, 2, &p, q8_profile_get(Q8_PROFILE_ONNX), y), Q8_OK);
  const int8_t want2[6] = {1, 1, 3, 3, 6, 6};
  cr_expect_arr_eq(y, want2, 6);
  float back[6];
  cr_assert_eq(q8_dequantize(y, 6, 2, &p, back), Q8_OK);
  for (int i = 0; i < 6; ++i) cr_expect_eq(back[i], 1.0f);
}

Test(dequantize, all_values_extreme_zero_points) {
  for (int dt = 0; dt < 2; ++dt) {
    const q8_dtype dtype = dt ? Q8_UINT8 : Q8_INT8;
    const int32_t zps[2] = {dt ? 0 : -128, dt ? 255 : 127};
    for (int z = 0; z < 2; ++z) {
      uint8_t q[256];
      for (int i = 0; i < 256; ++i) q[i] = (uint8_t)i;
      float scale = 0.037f, y[256];
      const q8_quant_params p = {dtype, 1, &scale, &zps[z]};
      cr_assert_eq(q8_dequantize(q, 256, 1, &p, y), Q8_OK);
      for (int i = 0; i < 256; ++i) {
        const int v = dt ? q[i] : (int8_t)q[i];
        cr_assert_eq(y[i], (float)(v - zps[z]) * scale);
      }
    }
  }
}

Test(quantize, bad_scales_are_errors) {
  const float x[1] = {1.0f};
  int8_t y[1];
  const float bad[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -1.0f};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    const q8_quant_params p = {Q8_INT8, 1, &bad[i], NULL};
    cr_expect_eq(q8_quantize(x, 1, 1, &p, q8_profile_get(Q8_PROFILE_TFLITE), y), Q8_ERR_SCALE,
                 "scale %g", (double)bad[i]);
    cr_expect(strstr(q8_error_detail(), "scale") != NULL, "detail: %s", q8_error_detail());
    float f[1];
    cr_expect_eq(q8_dequantize(y, 1, 1, &p, f), Q8_ERR_SCALE);
  }
}

Test(quantize, bad_arguments_are_errors) {
  const float x[4] = {0};
  int8_t y[4];
  float scale = 1.0f;
  int32_t zp_bad = 128;
  q8_quant_params p = {Q8_INT8, 1, &scale, &zp_bad};
  const q8_profile prof = q8_profile_get(Q8_PROFILE_ONNX);
  cr_expect_eq(q8_quantize(x, 4, 1, &p, prof, y), Q8_ERR_ZERO_POINT);
  cr_expect(strstr(q8_error_detail(), "128") != NULL, "detail names the value: %s", q8_error_detail());
  p.zero_point = NULL;
  cr_expect_eq(q8_quantize(NULL, 4, 1, &p, prof, y), Q8_ERR_NULL);
  cr_expect_eq(q8_quantize(x, 4, 1, &p, prof, NULL), Q8_ERR_NULL);
  cr_expect_eq(q8_quantize(x, 4, 1, NULL, prof, y), Q8_ERR_NULL);
  cr_expect_eq(q8_quantize(NULL, 0, 1, &p, prof, NULL), Q8_OK, "empty arrays need no pointers");
  p.dtype = Q8_INT32;
  cr_expect_eq(q8_quantize(x, 4, 1, &p, prof, y), Q8_ERR_ARG);
  p.dtype = Q8_INT8;
  p.channels = 0;
  cr_expect_eq(q8_quantize(x, 4, 1, &p, prof, y), Q8_ERR_ARG);
  p.channels = 1;
  p.scale = NULL;
  cr_expect_eq(q8_quantize(x, 4, 1, &p, prof, y), Q8_ERR_NULL);
  p.scale = &scale;
  q8_profile bad = prof;
  bad.rounding = (q8_rounding)7;
  cr_expect_eq(q8_quantize(x, 4, 1, &p, bad, y), Q8_ERR_ARG);
  const float s2[2] = {1.0f, 1.0f};
  const q8_quant_params pc = {Q8_INT8, 2, s2, NULL};
  cr_expect_eq(q8_quantize(x, 4, 0, &pc, prof, y), Q8_ERR_ARG, "inner 0 with channels");
}

Test(profiles, name_their_choices) {
  const q8_profile t = q8_profile_get(Q8_PROFILE_TFLITE);
  cr_expect(t.rounding == Q8_ROUND_HALF_AWAY && t.scale_op == Q8_SCALE_DIVIDE &&
            t.requant == Q8_REQUANT_GEMMLOWP);
  const q8_profile o = q8_profile_get(Q8_PROFILE_ONNX);
  cr_expect(o.rounding == Q8_ROUND_HALF_EVEN && o.scale_op == Q8_SCALE_DIVIDE &&
            o.requant == Q8_REQUANT_FP32);
  const q8_profile p = q8_profile_get(Q8_PROFILE_PYTORCH);
  cr_expect(p.rounding == Q8_ROUND_HALF_EVEN && p.scale_op == Q8_SCALE_RECIPROCAL &&
            p.requant == Q8_REQUANT_FP32);
}

/* ---- every ISA's quantize / dequantize kernel against the reference ------
 * Forces each ISA in turn (neondot and neoni8mm fall back to the NEON
 * kernels), runs the selected kernels on special and tie values over every
 * layout the kernels treat apart (per tensor, inner 1, inner >= 16, and the
 * small inner left to the reference) and tails around the 16-element block,
 * and compares every output with guard bytes around it. */
static const char *const elementwise_isas[] = {"ref",        "hwy",  "avx2",    "avxvnni",
                                               "avx512vnni", "neon", "neondot", "neoni8mm"};

typedef struct quant_layout {
  size_t channels, inner;
} quant_layout;
static const quant_layout quant_layouts[] = {{1, 1}, {7, 1}, {33, 1}, {3, 16}, {5, 17},
                                             {2, 40}, {4, 3}};
static const size_t quant_counts[] = {1, 3, 15, 16, 17, 31, 33, 64, 100, 257};
#define QUANT_MAX_CH 40

/* Scales (some denormal, whose reciprocal overflows) and zero points at the
 * limits of the type. */
static void quant_channel_params(q8t_rng *r, q8_dtype dtype, size_t channels, float *scale,
                                 int32_t *zp) {
  static const float scale_corners[] = {1.0f, 0.25f, 1e-39f, 0x1.0624dep-10f, 3e-5f, 7.0f};
  const int32_t lo = dtype == Q8_UINT8 ? 0 : -128, hi = dtype == Q8_UINT8 ? 255 : 127;
  for (size_t c = 0; c < channels; ++c) {
    scale[c] = q8t_range(r, 0, 1) ? scale_corners[q8t_range(r, 0, 5)] : q8t_uniform(r, 1e-3f, 2.0f);
    const int32_t which = q8t_range(r, 0, 2);
    zp[c] = which == 0 ? lo : which == 1 ? hi : q8t_range(r, lo, hi);
  }
}

/* NaN, infinities, signed zeros, denormals, exact ties and their neighbours
 * (k + 1/2 times the scale of the element's channel), huge and random values. */
static float special_x(q8t_rng *r, float scale) {
  static const float corners[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-45f, -1e-45f,
                                  1e30f, -1e30f, 0x1.fffffep127f, -0.49999997f, -0x1.d91688p-4f};
  switch (q8t_range(r, 0, 3)) {
    case 0: return corners[q8t_range(r, 0, (int32_t)(sizeof corners / sizeof corners[0]) - 1)];
    case 1: {
      const float tie = ((float)q8t_range(r, -300, 300) + 0.5f) * scale;
      const int32_t step = q8t_range(r, -1, 1);
      return step == 0 ? tie : nextafterf(tie, step > 0 ? INFINITY : -INFINITY);
    }
    case 2: return q8t_uniform(r, -200.0f, 200.0f) * scale;
    default: return q8t_uniform(r, -1e6f, 1e6f);
  }
}

static size_t quant_channel_of(const quant_layout *l, size_t i) {
  return l->channels == 1 ? 0 : i / l->inner % l->channels;
}

static void check_quantize_kernel(const char *isa, const q8_kernel *k, q8t_rng *r, q8_dtype dtype,
                                  q8_rounding rounding, q8_scale_op op, const quant_layout *l,
                                  size_t count) {
  float scale[QUANT_MAX_CH];
  int32_t zp[QUANT_MAX_CH];
  quant_channel_params(r, dtype, l->channels, scale, zp);
  const q8_quant_params p = {dtype, l->channels, scale, q8t_range(r, 0, 3) ? zp : NULL};
  float *x = malloc(count * sizeof(float));
  for (size_t i = 0; i < count; ++i) x[i] = special_x(r, scale[quant_channel_of(l, i)]);
  unsigned char *want = malloc(count);
  q8_ref_quantize(x, count, l->inner, &p, rounding, op, want);
  q8t_buf out = q8t_buf_new(count, 1 + count % 15);
  k->quantize(x, count, l->inner, &p, rounding, op, out.data);
  size_t bad = 0;
  while (bad < count && out.data[bad] == want[bad]) ++bad;
  cr_assert_eq(bad, count,
               "%s [%s] %s rounding %d op %d, channels %zu inner %zu count %zu: element %zu "
               "(x %a) is %d, want %d",
               isa, k->name, dtype == Q8_UINT8 ? "uint8" : "int8", (int)rounding, (int)op,
               l->channels, l->inner, count, bad, bad < count ? (double)x[bad] : 0.0,
               bad < count ? out.data[bad] : 0, bad < count ? want[bad] : 0);
  cr_assert(q8t_buf_guards_ok(&out), "%s [%s]: wrote outside the output", isa, k->name);
  q8t_buf_free(&out);
  free(want);
  free(x);
}

static void check_dequantize_kernel(const char *isa, const q8_kernel *k, q8t_rng *r,
                                    q8_dtype dtype, const quant_layout *l, size_t count) {
  float scale[QUANT_MAX_CH];
  int32_t zp[QUANT_MAX_CH];
  quant_channel_params(r, dtype, l->channels, scale, zp);
  const q8_quant_params p = {dtype, l->channels, scale, q8t_range(r, 0, 3) ? zp : NULL};
  unsigned char *q = malloc(count);
  for (size_t i = 0; i < count; ++i) {
    const int32_t pick = q8t_range(r, 0, 3);
    q[i] = pick == 0 ? 0x80 : pick == 1 ? 0x7f : pick == 2 ? 0xff : (unsigned char)q8t_next(r);
  }
  float *want = malloc(count * sizeof(float));
  q8_ref_dequantize(q, count, l->inner, &p, want);
  q8t_buf out = q8t_buf_new(count * sizeof(float), 4 * (count % 4));
  k->dequantize(q, count, l->inner, &p, (float *)(void *)out.data);
  cr_assert(memcmp(out.data, want, count * sizeof(float)) == 0,
            "%s [%s] %s channels %zu inner %zu count %zu: bits differ", isa, k->name,
            dtype == Q8_UINT8 ? "uint8" : "int8", l->channels, l->inner, count);
  cr_assert(q8t_buf_guards_ok(&out), "%s [%s]: wrote outside the output", isa, k->name);
  q8t_buf_free(&out);
  free(want);
  free(q);
}

static void check_elementwise_isa(const char *isa) {
  const char *reason = NULL;
  if (!q8_isa_usable(isa, &reason)) {
    cr_log_info("quantize: ISA %s not usable here (%s): skipped", isa, reason);
    return;
  }
  cr_assert_eq(q8_set_isa(isa), Q8_OK, "%s", q8_error_detail());
  const q8_kernel *quant = q8_select_kernel(Q8_OP_QUANTIZE);
  const q8_kernel *dequant = q8_select_kernel(Q8_OP_DEQUANTIZE);
  cr_assert(quant != NULL && dequant != NULL);
  if (strncmp(isa, "neon", 4) == 0) {
    cr_assert_str_eq(quant->name, "q8_quantize_f32x8__neon");
    cr_assert_str_eq(dequant->name, "q8_dequantize_x8f32__neon");
  }
  q8t_rng r = q8t_rng_new(91);
  size_t runs = 0;
  for (size_t li = 0; li < sizeof quant_layouts / sizeof quant_layouts[0]; ++li) {
    for (size_t ci = 0; ci < sizeof quant_counts / sizeof quant_counts[0]; ++ci) {
      for (int dt = 0; dt < 2; ++dt) {
        const q8_dtype dtype = dt ? Q8_UINT8 : Q8_INT8;
        for (int mode = 0; mode < 4; ++mode, ++runs) {
          check_quantize_kernel(isa, quant, &r, dtype,
                                mode % 2 ? Q8_ROUND_HALF_EVEN : Q8_ROUND_HALF_AWAY,
                                mode / 2 ? Q8_SCALE_RECIPROCAL : Q8_SCALE_DIVIDE,
                                &quant_layouts[li], quant_counts[ci]);
        }
        check_dequantize_kernel(isa, dequant, &r, dtype, &quant_layouts[li], quant_counts[ci]);
        ++runs;
      }
    }
  }
  cr_log_info("quantize: %zu runs bit-exact under %s with %s and %s%s%s", runs, isa, quant->name,
              dequant->name, quant->isa == Q8_ISA_HWY ? ", Highway target " : "",
              quant->isa == Q8_ISA_HWY ? q8_hwy_target() : "");
  q8_set_isa(NULL);
}

Test(quantize, every_isa_kernel_matches_ref_on_special_values) {
  for (size_t i = 0; i < sizeof elementwise_isas / sizeof elementwise_isas[0]; ++i) {
    check_elementwise_isa(elementwise_isas[i]);
  }
}
