/* The reference GEMM against a straightforward int64 computation, and the
 * GEMM plan (which runs the selected kernel) against the reference. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "q8/q8.h"
#include "tests/support/q8test.h"

typedef struct problem {
  size_t m, n, k, lda, ldc;
  q8_dtype a_dtype;
  int32_t za;
  void *a;
  int8_t *w;
  int32_t *zb;   /* n or NULL */
  int32_t *bias; /* n or NULL */
} problem;

/* Independent model: int64 accumulation, no shortcuts. */
static int64_t model_acc(const problem *p, size_t i, size_t j) {
  int64_t acc = p->bias ? p->bias[j] : 0;
  for (size_t q = 0; q < p->k; ++q) {
    const int64_t a = p->a_dtype == Q8_UINT8 ? ((uint8_t *)p->a)[i * p->lda + q]
                                             : ((int8_t *)p->a)[i * p->lda + q];
    acc += (a - p->za) * ((int64_t)p->w[j * p->k + q] - (p->zb ? p->zb[j] : 0));
  }
  return acc;
}

static problem make_problem(q8t_rng *r, size_t m, size_t n, size_t k, q8_dtype dt, int fill) {
  problem p = {.m = m, .n = n, .k = k, .lda = k + (size_t)q8t_range(r, 0, 3),
               .ldc = n + (size_t)q8t_range(r, 0, 3), .a_dtype = dt};
  p.a = malloc(m * p.lda + 1);
  p.w = malloc(n * k);
  const int lo = dt == Q8_UINT8 ? 0 : -128, hi = dt == Q8_UINT8 ? 255 : 127;
  for (size_t i = 0; i < m * p.lda; ++i) {
    const int v = fill == 0 ? q8t_range(r, lo, hi) : fill < 0 ? lo : hi;
    if (dt == Q8_UINT8) ((uint8_t *)p.a)[i] = (uint8_t)v; else ((int8_t *)p.a)[i] = (int8_t)v;
  }
  for (size_t i = 0; i < n * k; ++i) p.w[i] = (int8_t)(fill == 0 ? q8t_range(r, -128, 127) : fill < 0 ? 127 : -128);
  p.za = fill == 0 ? q8t_range(r, lo, hi) : fill < 0 ? hi : lo;
  return p;
}

static void free_problem(problem *p) {
  free(p->a);
  free(p->w);
  free(p->zb);
  free(p->bias);
}

Test(gemm_ref, int32_output_matches_int64_model_random) {
  q8t_rng r = q8t_rng_new(21);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t m = (size_t)q8t_range(&r, 1, 9), n = (size_t)q8t_range(&r, 1, 19),
                 k = (size_t)q8t_range(&r, 1, 70);
    problem p = make_problem(&r, m, n, k, trial % 2 ? Q8_UINT8 : Q8_INT8, 0);
    if (trial % 3 == 0) {
      p.zb = malloc(n * sizeof(int32_t));
      for (size_t j = 0; j < n; ++j) p.zb[j] = q8t_range(&r, -128, 127);
    }
    if (trial % 4 != 0) {
      p.bias = malloc(n * sizeof(int32_t));
      for (size_t j = 0; j < n; ++j) p.bias[j] = q8t_range(&r, -1000000, 1000000);
    }
    int32_t *c = malloc(m * p.ldc * sizeof(int32_t));
    cr_assert_eq(q8_ref_gemm(m, n, k, p.a, p.lda, p.a_dtype, p.za, p.w, k, p.zb, p.bias, NULL, c, p.ldc), Q8_OK);
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j)
        cr_assert_eq(c[i * p.ldc + j], model_acc(&p, i, j), "trial %d (%zu,%zu)", trial, i, j);
    free(c);
    free_problem(&p);
  }
}

Test(gemm_ref, extremes_at_the_k_limit) {
  /* |A - za| = 255 and |W - zb| = 255 everywhere: the largest possible sum. */
  q8t_rng r = q8t_rng_new(22);
  for (int fill = -1; fill <= 1; fill += 2) {
    for (int dt = 0; dt < 2; ++dt) {
      const size_t k = Q8_GEMM_MAX_K;
      problem p = make_problem(&r, 1, 2, k, dt ? Q8_UINT8 : Q8_INT8, fill);
      p.zb = malloc(2 * sizeof(int32_t));
      p.zb[0] = fill < 0 ? -128 : 127;
      p.zb[1] = fill < 0 ? -128 : 127;
      int32_t c[8];
      cr_assert_eq(q8_ref_gemm(1, 2, k, p.a, p.lda, p.a_dtype, p.za, p.w, k, p.zb, NULL, NULL, c, p.ldc), Q8_OK);
      const int64_t want = model_acc(&p, 0, 0);
      cr_expect(want == 255LL * 255 * (long long)k || want == -255LL * 255 * (long long)k,
                "the extreme really is extreme: %lld", (long long)want);
      cr_expect_eq(c[0], want);
      cr_expect_eq(c[1], model_acc(&p, 0, 1));
      cr_expect_eq(q8_ref_gemm(1, 2, k + 1, p.a, p.lda, p.a_dtype, p.za, p.w, k, p.zb, NULL, NULL, c, p.ldc),
                   Q8_ERR_OVERFLOW, "K beyond the limit is refused");
      free_problem(&p);
    }
  }
}

Test(gemm_ref, all_minus128_all_127_uint8_255) {
  /* all -128 activations x all 127 weights, za = 0: sum = -128 * 127 * k */
  const size_t k = 100;
  int8_t a[100], w[100];
  memset(a, 0x80, sizeof a);
  memset(w, 127, sizeof w);
  int32_t c;
  cr_assert_eq(q8_ref_gemm(1, 1, k, a, k, Q8_INT8, 0, w, k, NULL, NULL, NULL, &c, 1), Q8_OK);
  cr_expect_eq(c, -128 * 127 * 100);
  uint8_t u[100];
  memset(u, 255, sizeof u);
  cr_assert_eq(q8_ref_gemm(1, 1, k, u, k, Q8_UINT8, 0, w, k, NULL, NULL, NULL, &c, 1), Q8_OK);
  cr_expect_eq(c, 255 * 127 * 100);
  cr_assert_eq(q8_ref_gemm(1, 1, k, u, k, Q8_UINT8, 255, w, k, NULL, NULL, NULL, &c, 1), Q8_OK);
  cr_expect_eq(c, 0, "uint8 255 with zero point 255 contributes nothing");
  const int32_t bias = INT32_MAX;
  cr_expect_eq(q8_ref_gemm(1, 1, k, a, k, Q8_INT8, -128, w, k, NULL, &bias, NULL, &c, 1), Q8_OK,
               "bias INT32_MAX plus a zero sum");
  cr_expect_eq(c, INT32_MAX);
  cr_expect_eq(q8_ref_gemm(1, 1, k, u, k, Q8_UINT8, 0, w, k, NULL, &bias, NULL, &c, 1),
               Q8_ERR_OVERFLOW, "bias + sum leaving int32 is reported, not wrapped");
}

/* Requantized output = requantize(model accumulator), for every mode/dtype. */
Test(gemm_ref, requantized_outputs_per_tensor_and_per_channel) {
  q8t_rng r = q8t_rng_new(23);
  for (int trial = 0; trial < 120; ++trial) {
    const size_t m = (size_t)q8t_range(&r, 1, 5), n = (size_t)q8t_range(&r, 1, 17), k = (size_t)q8t_range(&r, 1, 40);
    problem p = make_problem(&r, m, n, k, trial % 2 ? Q8_UINT8 : Q8_INT8, 0);
    const q8_dtype out = trial % 4 < 2 ? Q8_INT8 : Q8_UINT8;
    const size_t channels = trial % 3 ? n : 1;
    int32_t mult[17], shift[17];
    float scale[17], wscale[17];
    for (size_t c = 0; c < channels; ++c) wscale[c] = q8t_uniform(&r, 1e-4f, 1e-2f);
    q8_requant_params rq;
    const int32_t zp = out == Q8_UINT8 ? q8t_range(&r, 0, 255) : q8t_range(&r, -128, 127);
    cr_assert_eq(q8_requant_params_init(&rq, (q8_requant_mode)(trial % 3), channels, 0.05f, wscale, 0.1f,
                                        out, zp, out == Q8_UINT8 ? 0 : -128, out == Q8_UINT8 ? 255 : 127,
                                        mult, shift, scale), Q8_OK, "%s", q8_error_detail());
    uint8_t *c8 = malloc(m * p.ldc);
    cr_assert_eq(q8_ref_gemm(m, n, k, p.a, p.lda, p.a_dtype, p.za, p.w, k, NULL, NULL, &rq, c8, p.ldc), Q8_OK);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        const int32_t want = q8_ref_requantize_one((int32_t)model_acc(&p, i, j), &rq, channels == 1 ? 0 : j);
        const int32_t got = out == Q8_UINT8 ? c8[i * p.ldc + j] : (int8_t)c8[i * p.ldc + j];
        cr_assert_eq(got, want, "trial %d (%zu,%zu)", trial, i, j);
      }
    }
    free(c8);
    free_problem(&p);
  }
}

/* The plan (whatever kernel dispatch picked) equals the reference, with
 * guard bytes around C and an unaligned, strided A. */
static void check_plan(q8t_rng *r, size_t m, size_t n, size_t k, q8_dtype a_dt, q8_dtype out,
                       size_t w_channels, q8_requant_mode mode, bool clamp) {
  problem p = make_problem(r, m, n, k, a_dt, 0);
  float wscale[64];
  for (size_t c = 0; c < w_channels; ++c) wscale[c] = q8t_uniform(r, 1e-3f, 2e-2f);
  p.bias = malloc(n * sizeof(int32_t));
  for (size_t j = 0; j < n; ++j) p.bias[j] = q8t_range(r, -5000, 5000);
  const int32_t zp_out = out == Q8_UINT8 ? 7 : -3;
  q8_gemm_desc d = {.m = m, .n = n, .k = k, .a_dtype = a_dt, .a_zero_point = p.za, .a_scale = 0.02f,
                    .weights = p.w, .w_channels = w_channels, .w_scales = wscale, .bias = p.bias,
                    .out_dtype = out, .requant = mode, .out_scale = 0.15f, .out_zero_point = zp_out,
                    .clamp = clamp, .out_min = out == Q8_UINT8 ? 7 : -3, .out_max = out == Q8_UINT8 ? 90 : 60};
  q8_gemm_plan *plan = NULL;
  cr_assert_eq(q8_gemm_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
  const size_t esize = out == Q8_INT32 ? 4 : 1;
  /* Misaligned for SIMD, aligned to the element (C requires it for int32). */
  q8t_buf cbuf = q8t_buf_new(m * p.ldc * esize, esize == 4 ? 4 : 3);
  void *want = malloc(m * p.ldc * esize);
  memcpy(want, cbuf.data, m * p.ldc * esize);
  cr_assert_eq(q8_gemm_run(plan, p.a, p.lda, cbuf.data, p.ldc), Q8_OK, "%s", q8_error_detail());

  int32_t mult[64], shift[64];
  float rscale[64];
  q8_requant_params rq;
  if (out != Q8_INT32) {
    cr_assert_eq(q8_requant_params_init(&rq, mode, w_channels, 0.02f, wscale, 0.15f, out, zp_out,
                                        clamp ? d.out_min : (out == Q8_UINT8 ? 0 : -128),
                                        clamp ? d.out_max : (out == Q8_UINT8 ? 255 : 127),
                                        mult, shift, rscale), Q8_OK);
  }
  cr_assert_eq(q8_ref_gemm(m, n, k, p.a, p.lda, a_dt, p.za, p.w, k, NULL, p.bias,
                           out == Q8_INT32 ? NULL : &rq, want, p.ldc), Q8_OK);
  for (size_t i = 0; i < m; ++i) {
    cr_assert_arr_eq((uint8_t *)cbuf.data + i * p.ldc * esize, (uint8_t *)want + i * p.ldc * esize, n * esize,
                     "%s: m=%zu n=%zu k=%zu row %zu", q8_gemm_plan_kernel(plan), m, n, k, i);
  }
  cr_assert(q8t_buf_guards_ok(&cbuf), "%s wrote outside C", q8_gemm_plan_kernel(plan));
  /* Padding between rows (ldc > n) is untouched: it still holds the guard pattern. */
  for (size_t i = 0; i < m; ++i)
    for (size_t b = n * esize; b < p.ldc * esize; ++b)
      cr_assert_eq(((uint8_t *)cbuf.data)[i * p.ldc * esize + b], Q8T_GUARD_BYTE, "row padding written");
  free(want);
  q8t_buf_free(&cbuf);
  q8_gemm_plan_destroy(plan);
  free_problem(&p);
}

Test(gemm_plan, matches_reference_over_a_grid) {
  q8t_rng r = q8t_rng_new(24);
  const size_t dims[] = {1, 2, 3, 7, 8, 9, 16, 17, 31};
  for (size_t a = 0; a < sizeof dims / sizeof dims[0]; ++a) {
    for (size_t b = 0; b < sizeof dims / sizeof dims[0]; b += 2) {
      const size_t m = dims[a], n = dims[b], k = dims[(a + b) % 9] * 3 + 1;
      check_plan(&r, m, n, k, (a + b) % 2 ? Q8_UINT8 : Q8_INT8, Q8_INT32, 1, Q8_REQUANT_FP32, false);
      check_plan(&r, m, n, k, Q8_INT8, Q8_INT8, n, (q8_requant_mode)(a % 3), b % 4 == 0);
      check_plan(&r, m, n, k, Q8_UINT8, Q8_UINT8, 1, (q8_requant_mode)(b % 3), a % 2 == 0);
    }
  }
}
