/* A program outside the q8 tree, built against the installed package: a 2x3x4
 * GEMM with int8 output, checked against hand-computed values. */
#include <q8/q8.h>
#include <stdio.h>

int main(void) {
  const int8_t a[2 * 4] = {1, 2, 3, 4, -1, -2, -3, -4};
  const int8_t w[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1};
  const float w_scale = 1.0f;
  const q8_gemm_desc desc = {.m = 2, .n = 3, .k = 4, .a_dtype = Q8_INT8, .a_scale = 1.0f,
                             .weights = w, .w_channels = 1, .w_scales = &w_scale,
                             .out_dtype = Q8_INT8, .requant = Q8_REQUANT_FP32, .out_scale = 1.0f};
  q8_gemm_plan *plan = NULL;
  if (q8_gemm_plan_create(&desc, &plan) != Q8_OK) {
    fprintf(stderr, "consumer: %s\n", q8_error_detail());
    return 1;
  }
  int8_t c[2 * 3];
  const q8_status s = q8_gemm_run(plan, a, 4, c, 3);
  const int8_t want[6] = {1, 2, 10, -1, -2, -10};
  int ok = s == Q8_OK;
  for (int i = 0; i < 6; ++i) ok &= c[i] == want[i];
  printf("consumer: q8 %s, kernel %s: %s\n", q8_version(), q8_gemm_plan_kernel(plan), ok ? "ok" : "WRONG");
  q8_gemm_plan_destroy(plan);
  return ok ? 0 : 1;
}
