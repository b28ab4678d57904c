/* Quantize / dequantize: rounding rules, scale operations, saturation,
 * special values, per-channel layouts, and argument errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

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
