/* API misuse: every bad argument gets a status code and a message naming it;
 * nothing crashes and nothing is written. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "q8/q8.h"

static int8_t weights[4 * 8];
static float wscales[4] = {0.01f, 0.02f, 0.03f, 0.04f};

static q8_gemm_desc good_desc(void) {
  return (q8_gemm_desc){.m = 2, .n = 4, .k = 8, .a_dtype = Q8_INT8, .a_zero_point = 0,
                        .a_scale = 0.1f, .weights = weights, .w_channels = 4, .w_scales = wscales,
                        .out_dtype = Q8_INT8, .requant = Q8_REQUANT_FP32, .out_scale = 0.2f};
}

#define EXPECT_PLAN_ERROR(desc, status, word)                                            \
  do {                                                                                   \
    q8_gemm_plan *plan_ = (q8_gemm_plan *)0x1;                                           \
    cr_expect_eq(q8_gemm_plan_create(&(desc), &plan_), status, "%s", q8_error_detail()); \
    cr_expect_null(plan_, "no plan on failure");                                         \
    cr_expect(strstr(q8_error_detail(), word) != NULL, "detail '%s' should name '%s'",  \
              q8_error_detail(), word);                                                  \
  } while (0)

Test(api, good_desc_is_accepted) {
  q8_gemm_desc d = good_desc();
  q8_gemm_plan *plan = NULL;
  cr_assert_eq(q8_gemm_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
  cr_expect_str_eq(q8_error_detail(), "");
  cr_expect_gt(q8_gemm_plan_packed_bytes(plan), 0);
  cr_expect(strncmp(q8_gemm_plan_kernel(plan), "q8_gemm_", 8) == 0);
  q8_gemm_plan_destroy(plan);
  q8_gemm_plan_destroy(NULL);
}

Test(api, null_pointers) {
  q8_gemm_desc d = good_desc();
  q8_gemm_plan *plan = NULL;
  cr_expect_eq(q8_gemm_plan_create(NULL, &plan), Q8_ERR_NULL);
  cr_expect_eq(q8_gemm_plan_create(&d, NULL), Q8_ERR_NULL);
  d.weights = NULL;
  EXPECT_PLAN_ERROR(d, Q8_ERR_NULL, "weights");
  d = good_desc();
  d.w_scales = NULL;
  EXPECT_PLAN_ERROR(d, Q8_ERR_NULL, "w_scales");
}

Test(api, dimensions) {
  q8_gemm_desc d = good_desc();
  d.m = 0;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "m = 0");
  d = good_desc();
  d.n = (size_t)-1; /* a negative int passed as size_t */
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "n = ");
  d = good_desc();
  d.k = 0;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "k = 0");
  d = good_desc();
  d.k = Q8_GEMM_MAX_K + 1;
  EXPECT_PLAN_ERROR(d, Q8_ERR_OVERFLOW, "33025");
}

Test(api, types_scales_zero_points) {
  q8_gemm_desc d = good_desc();
  d.a_dtype = Q8_FLOAT32;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "a_dtype");
  d = good_desc();
  d.a_zero_point = 200;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ZERO_POINT, "a_zero_point");
  d = good_desc();
  d.out_dtype = Q8_FLOAT32;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "out_dtype");
  d = good_desc();
  d.a_scale = NAN;
  EXPECT_PLAN_ERROR(d, Q8_ERR_SCALE, "a_scale");
  d = good_desc();
  d.out_scale = -1.0f;
  EXPECT_PLAN_ERROR(d, Q8_ERR_SCALE, "out_scale");
  d = good_desc();
  float bad_w[4] = {0.01f, 0.02f, 0.0f, 0.04f};
  d.w_scales = bad_w;
  EXPECT_PLAN_ERROR(d, Q8_ERR_SCALE, "w_scales[2]");
  d = good_desc();
  d.w_channels = 3;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "w_channels");
  d = good_desc();
  d.out_dtype = Q8_UINT8;
  d.out_zero_point = -1;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ZERO_POINT, "out_zero_point");
  d = good_desc();
  d.clamp = true;
  d.out_min = 10;
  d.out_max = 5;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ZERO_POINT, "empty");
  d = good_desc();
  d.requant = (q8_requant_mode)9;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ARG, "requant");
  d = good_desc();
  int32_t zb[4] = {0, 0, 0, 300};
  d.w_zero_points = zb;
  EXPECT_PLAN_ERROR(d, Q8_ERR_ZERO_POINT, "w_zero_points[3]");
  d = good_desc();
  d.out_dtype = Q8_INT32; /* scales are not needed for int32 output */
  d.w_scales = NULL;
  d.a_scale = NAN;
  q8_gemm_plan *plan = NULL;
  cr_expect_eq(q8_gemm_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
  q8_gemm_plan_destroy(plan);
}

Test(api, bias_that_could_overflow_names_the_channel) {
  q8_gemm_desc d = good_desc();
  int32_t bias[4] = {0, 0, INT32_MAX - 100, 0};
  memset(weights, 1, sizeof weights);
  d.bias = bias;
  EXPECT_PLAN_ERROR(d, Q8_ERR_OVERFLOW, "channel 2");
  memset(weights, 0, sizeof weights);
  q8_gemm_plan *plan = NULL;
  cr_expect_eq(q8_gemm_plan_create(&d, &plan), Q8_OK, "all-zero weights cannot overflow");
  q8_gemm_plan_destroy(plan);
}

Test(api, run_arguments) {
  q8_gemm_desc d = good_desc();
  q8_gemm_plan *plan = NULL;
  cr_assert_eq(q8_gemm_plan_create(&d, &plan), Q8_OK);
  int8_t a[2 * 8] = {0}, c[2 * 4];
  memset(c, 0x5A, sizeof c);
  cr_expect_eq(q8_gemm_run(NULL, a, 8, c, 4), Q8_ERR_NULL);
  cr_expect_eq(q8_gemm_run(plan, NULL, 8, c, 4), Q8_ERR_NULL);
  cr_expect_eq(q8_gemm_run(plan, a, 8, NULL, 4), Q8_ERR_NULL);
  cr_expect_eq(q8_gemm_run(plan, a, 7, c, 4), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "lda") != NULL);
  cr_expect_eq(q8_gemm_run(plan, a, 8, c, 3), Q8_ERR_ARG);
  cr_expect(strstr(q8_error_detail(), "ldc") != NULL);
  for (size_t i = 0; i < sizeof c; ++i) cr_expect_eq((uint8_t)c[i], 0x5A, "nothing written on error");
  cr_expect_eq(q8_gemm_run(plan, a, 8, c, 4), Q8_OK);
  q8_gemm_plan_destroy(plan);
}

Test(api, requantize_params) {
  const int32_t acc[2] = {1, 2};
  int8_t out[2];
  int32_t m = INT32_C(1) << 30, s = 0;
  float sc = 0.5f;
  q8_requant_params p = {Q8_REQUANT_GEMMLOWP, Q8_INT8, 0, -128, 127, 1, &m, &s, &sc, false};
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_OK);
  m = 12345;
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_ERR_SCALE);
  cr_expect(strstr(q8_error_detail(), "multiplier[0]") != NULL, "%s", q8_error_detail());
  m = INT32_C(1) << 30;
  s = 31;
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_ERR_SCALE);
  cr_expect(strstr(q8_error_detail(), "shift[0]") != NULL);
  s = 0;
  p.qmin = 5;
  p.qmax = 4;
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_ERR_ZERO_POINT);
  p.qmin = -128;
  p.qmax = 127;
  p.out_dtype = Q8_UINT8; /* qmin -128 now outside uint8 */
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_ERR_ZERO_POINT);
  p.out_dtype = Q8_INT8;
  p.mode = Q8_REQUANT_FP32;
  sc = INFINITY;
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_ERR_SCALE);
  p.scale = NULL;
  cr_expect_eq(q8_requantize(acc, 2, 1, &p, out), Q8_ERR_NULL);
  cr_expect_eq(q8_requantize(acc, 2, 1, NULL, out), Q8_ERR_NULL);
}

Test(api, status_strings) {
  for (int s = Q8_OK; s <= Q8_ERR_FORMAT; ++s) {
    cr_expect(q8_status_str((q8_status)s) != NULL && q8_status_str((q8_status)s)[0] != '\0');
  }
  cr_expect_str_eq(q8_status_str((q8_status)999), "unknown status");
  cr_expect(q8_version()[0] >= '0' && q8_version()[0] <= '9');
}
