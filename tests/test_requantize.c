/* Known answers for the three requantization modes and the multiplier math.
 * Expected values are worked out by hand from the definitions in DESIGN.md
 * (gemmlowp/TFLite, ruy single rounding, fp32 half-to-even); then every ISA's
 * kernel bit-exact with the reference on extreme inputs. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/registry.h"
#include "q8/kernels.h"
#include "q8/q8.h"
#include "tests/support/q8test.h"

static int32_t rq1(q8_requant_mode mode, int32_t acc, int32_t m, int32_t shift, float scale,
                   int32_t zp, int32_t qmin, int32_t qmax) {
  q8_requant_params p = {mode, Q8_INT8, zp, qmin, qmax, 1, &m, &shift, &scale, false};
  return q8_ref_requantize_one(acc, &p, 0);
}

#define GEMMLOWP(acc, m, s) rq1(Q8_REQUANT_GEMMLOWP, acc, m, s, 0.f, 0, -128, 127)
#define SINGLE(acc, m, s) rq1(Q8_REQUANT_SINGLE, acc, m, s, 0.f, 0, -128, 127)
#define FP32(acc, scale) rq1(Q8_REQUANT_FP32, acc, 0, 0, scale, 0, -128, 127)

static const int32_t HALF = INT32_C(1) << 30; /* Q31 mantissa of 0.5 */

Test(srdhm, known_answers) {
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX,
               "the one overflowing product saturates");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX), -INT32_MAX);
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(INT32_MAX, INT32_MAX), INT32_MAX - 1);
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(3, HALF), 2, "1.5 -> 2");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(-3, HALF), -1,
               "-1.5 -> -1: gemmlowp's nudge sends negative ties toward zero");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(1, HALF), 1, "0.5 -> 1");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(-1, HALF), 0, "-0.5 -> 0");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(5, HALF), 3, "2.5 -> 3");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(-5, HALF), -2, "-2.5 -> -2");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(7, HALF + (HALF >> 1)), 5,
               "7 * 0.75 = 5.25 -> 5");
  cr_expect_eq(q8_ref_saturating_rounding_doubling_high_mul(0, INT32_MIN), 0);
}

Test(rounding_divide_by_pot, known_answers) {
  cr_expect_eq(q8_ref_rounding_divide_by_pot(5, 1), 3, "2.5 -> 3");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(-5, 1), -3, "-2.5 -> -3 (away from zero)");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(6, 2), 2, "1.5 -> 2");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(-6, 2), -2, "-1.5 -> -2");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(7, 2), 2, "1.75 -> 2");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(-7, 2), -2);
  cr_expect_eq(q8_ref_rounding_divide_by_pot(5, 2), 1, "1.25 -> 1");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(-5, 2), -1);
  cr_expect_eq(q8_ref_rounding_divide_by_pot(12345, 0), 12345, "exponent 0 is identity");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(INT32_MIN, 31), -1, "-1.0 exactly");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(INT32_MAX, 31), 1, "0.99999 -> 1");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(INT32_C(1) << 30, 31), 1, "0.5 -> 1");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(-(INT32_C(1) << 30), 31), -1, "-0.5 -> -1");
  cr_expect_eq(q8_ref_rounding_divide_by_pot(-(INT32_C(1) << 30) + 1, 31), 0);
}

Test(requant, double_rounding_differs_between_modes) {
  /* real multiplier 0.25 = 2^30 * 2^(-1-31): mantissa 0.5, shift -1. */
  cr_expect_eq(GEMMLOWP(5, HALF, -1), 2, "gemmlowp: 5*0.5=2.5->3, then 3/2=1.5->2");
  cr_expect_eq(SINGLE(5, HALF, -1), 1, "single: 1.25 -> 1");
  cr_expect_eq(FP32(5, 0.25f), 1, "fp32: 1.25 -> 1");
}

Test(requant, exact_ties_positive_and_negative) {
  /* acc * 0.25 = +-0.5, +-1.5, +-2.5 */
  cr_expect_eq(GEMMLOWP(2, HALF, -1), 1);
  cr_expect_eq(GEMMLOWP(-2, HALF, -1), -1, "RDBPOT: -0.5 -> -1");
  cr_expect_eq(GEMMLOWP(6, HALF, -1), 2);
  cr_expect_eq(GEMMLOWP(-6, HALF, -1), -2);
  cr_expect_eq(SINGLE(2, HALF, -1), 1, "single: ties toward +inf");
  cr_expect_eq(SINGLE(-2, HALF, -1), 0, "single: -0.5 -> 0");
  cr_expect_eq(SINGLE(6, HALF, -1), 2);
  cr_expect_eq(SINGLE(-6, HALF, -1), -1, "single: -1.5 -> -1");
  cr_expect_eq(SINGLE(10, HALF, -1), 3, "single: 2.5 -> 3");
  cr_expect_eq(FP32(2, 0.25f), 0, "fp32: 0.5 -> 0 (even)");
  cr_expect_eq(FP32(-2, 0.25f), 0, "fp32: -0.5 -> 0 (even)");
  cr_expect_eq(FP32(6, 0.25f), 2, "fp32: 1.5 -> 2");
  cr_expect_eq(FP32(10, 0.25f), 2, "fp32: 2.5 -> 2");
  cr_expect_eq(FP32(-10, 0.25f), -2, "fp32: -2.5 -> -2");
  cr_expect_eq(FP32(14, 0.25f), 4, "fp32: 3.5 -> 4");
}

Test(requant, shift_limits) {
  /* shift 30 with the largest mantissa: real ~ 2^30, saturates both ways. */
  const int32_t mmax = INT32_MAX;
  cr_expect_eq(GEMMLOWP(1, mmax, 30), 127);
  cr_expect_eq(GEMMLOWP(-1, mmax, 30), -128);
  cr_expect_eq(GEMMLOWP(0, mmax, 30), 0);
  cr_expect_eq(GEMMLOWP(INT32_MAX, mmax, 30), 127, "left shift saturates, no wrap");
  cr_expect_eq(GEMMLOWP(INT32_MIN, mmax, 30), -128);
  cr_expect_eq(SINGLE(1, mmax, 30), 127);
  cr_expect_eq(SINGLE(INT32_MIN, mmax, 30), -128);
  cr_expect_eq(SINGLE(INT32_MAX, mmax, 30), 127);
  /* shift -31: real = 2^-32; INT32_MAX * 2^-32 = 0.49999999988 */
  cr_expect_eq(GEMMLOWP(INT32_MAX, HALF, -31), 1, "gemmlowp double rounding: 0.4999 -> 1");
  cr_expect_eq(SINGLE(INT32_MAX, HALF, -31), 0, "single: 0.4999 -> 0");
  cr_expect_eq(GEMMLOWP(INT32_MIN, HALF, -31), -1, "-0.5 -> -1 away from zero");
  cr_expect_eq(SINGLE(INT32_MIN, HALF, -31), 0, "-0.5 -> 0 toward +inf");
}

Test(requant, srdhm_int32_min_squared_in_pipeline) {
  /* multiplier INT32_MIN is outside the Q31 contract for users, but the
   * building block is defined for it: the product saturates to INT32_MAX. */
  q8_requant_params p = {Q8_REQUANT_GEMMLOWP, Q8_INT8, 0, -128, 127, 1, NULL, NULL, NULL, false};
  int32_t m = INT32_MIN, s = 0;
  p.multiplier = &m;
  p.shift = &s;
  cr_expect_eq(q8_ref_requantize_one(INT32_MIN, &p, 0), 127);
}

Test(requant, zero_points_at_limits_and_clamps) {
  /* uint8 with zero point 255 (all outputs <= 255) and 0. */
  int32_t m = HALF, s = 0;
  float sc = 0.5f;
  q8_requant_params u = {Q8_REQUANT_GEMMLOWP, Q8_UINT8, 255, 0, 255, 1, &m, &s, &sc, false};
  cr_expect_eq(q8_ref_requantize_one(-20, &u, 0), 245);
  cr_expect_eq(q8_ref_requantize_one(20, &u, 0), 255, "saturates at qmax");
  cr_expect_eq(q8_ref_requantize_one(INT32_MAX, &u, 0), 255, "zero point add does not wrap");
  u.zero_point = 0;
  cr_expect_eq(q8_ref_requantize_one(-20, &u, 0), 0);
  cr_expect_eq(q8_ref_requantize_one(INT32_MIN, &u, 0), 0);
  q8_requant_params i = {Q8_REQUANT_FP32, Q8_INT8, -128, -128, 127, 1, &m, &s, &sc, false};
  cr_expect_eq(q8_ref_requantize_one(INT32_MAX, &i, 0), 127, "fp32 huge value clamps");
  cr_expect_eq(q8_ref_requantize_one(10, &i, 0), -123);
  i.zero_point = 127;
  cr_expect_eq(q8_ref_requantize_one(INT32_MIN, &i, 0), -128);
  cr_expect_eq(q8_ref_requantize_one(-10, &i, 0), 122);
  /* ReLU6-style clamp [zp, zp + 6/scale] */
  q8_requant_params r = {Q8_REQUANT_SINGLE, Q8_INT8, -10, -10, 20, 1, &m, &s, &sc, false};
  cr_expect_eq(q8_ref_requantize_one(-100, &r, 0), -10);
  cr_expect_eq(q8_ref_requantize_one(100, &r, 0), 20);
  cr_expect_eq(q8_ref_requantize_one(30, &r, 0), 5);
}

Test(requant, per_channel_uses_the_right_channel) {
  int32_t m[3] = {HALF, HALF, HALF}, s[3] = {0, -1, -2};
  float sc[3] = {0.5f, 0.25f, 0.125f};
  const int32_t acc[6] = {40, 40, 40, 40, 40, 40};
  int8_t out[6];
  for (int mode = 0; mode < 3; ++mode) {
    q8_requant_params p = {(q8_requant_mode)mode, Q8_INT8, 1, -128, 127, 3, m, s, sc, false};
    q8_ref_requantize(acc, 6, 1, &p, out); /* channel innermost */
    const int8_t want_inner1[6] = {21, 11, 6, 21, 11, 6};
    cr_expect_arr_eq(out, want_inner1, 6, "mode %d, inner 1", mode);
    q8_ref_requantize(acc, 6, 2, &p, out); /* two elements per channel run */
    const int8_t want_inner2[6] = {21, 21, 11, 11, 6, 6};
    cr_expect_arr_eq(out, want_inner2, 6, "mode %d, inner 2", mode);
  }
}

Test(multiplier, tflite_quantize_multiplier) {
  int32_t m, s;
  q8_quantize_multiplier(0.5, &m, &s);
  cr_expect(m == HALF && s == 0, "0.5 -> (2^30, 0), got (%d, %d)", m, s);
  q8_quantize_multiplier(1.0, &m, &s);
  cr_expect(m == HALF && s == 1, "1.0 -> (2^30, 1)");
  q8_quantize_multiplier(0.75, &m, &s);
  cr_expect(m == HALF + (HALF >> 1) && s == 0);
  /* The mantissa 1 - 2^-33 rounds up to 2^31: renormalised to (2^30, shift + 1). */
  q8_quantize_multiplier(1.0 - ldexp(1.0, -33), &m, &s);
  cr_expect(m == HALF && s == 1, "1 - 2^-33 -> (2^30, 1), got (%d, %d)", m, s);
  q8_quantize_multiplier(0.5 - ldexp(1.0, -34), &m, &s);
  cr_expect(m == HALF && s == 0, "0.5 - 2^-34 rounds up to 0.5");
  /* Round half away from zero in the mantissa: 0.5 + 2^-32 is exactly half an ulp of Q31. */
  q8_quantize_multiplier(0.5 + ldexp(1.0, -32), &m, &s);
  cr_expect(m == HALF + 1 && s == 0, "tie rounds away, got %d", m);
  q8_quantize_multiplier(ldexp(1.0, -32), &m, &s);
  cr_expect(m == HALF && s == -31, "2^-32 is the smallest kept");
  q8_quantize_multiplier(ldexp(1.0, -33), &m, &s);
  cr_expect(m == 0 && s == 0, "2^-33 flushes to zero");
  q8_quantize_multiplier(ldexp(1.0, -40), &m, &s);
  cr_expect(m == 0 && s == 0, "tiny flushes to zero");
  q8_quantize_multiplier(0.0, &m, &s);
  cr_expect(m == 0 && s == 0);
  q8_quantize_multiplier(ldexp(1.0, 29), &m, &s);
  cr_expect(m == HALF && s == 30, "2^29 -> (2^30, 30)");
  q8_quantize_multiplier(ldexp(1.0, 30), &m, &s);
  cr_expect(m == INT32_MAX && s == 30, "2^30 saturates");
  q8_quantize_multiplier(1e20, &m, &s);
  cr_expect(m == INT32_MAX && s == 30, "huge saturates");
}

Test(multiplier, round_trip_precision) {
  q8t_rng r = q8t_rng_new(11);
  for (int i = 0; i < 10000; ++i) {
    const double real = ldexp(0.5 + 0.5 * q8t_uniform(&r, 0.f, 1.f), q8t_range(&r, -30, 29));
    int32_t m, s;
    q8_quantize_multiplier(real, &m, &s);
    cr_assert(m >= HALF, "mantissa in [2^30, 2^31): %d", m);
    const double back = ldexp((double)m, s - 31);
    cr_assert(fabs(back - real) <= ldexp(real, -31), "%.17g -> %.17g", real, back);
  }
}

Test(multiplier, public_api_validates) {
  int32_t m, s;
  cr_expect_eq(q8_multiplier_from_scale(NAN, &m, &s), Q8_ERR_SCALE);
  cr_expect_eq(q8_multiplier_from_scale(-1.0, &m, &s), Q8_ERR_SCALE);
  cr_expect_eq(q8_multiplier_from_scale(INFINITY, &m, &s), Q8_ERR_SCALE);
  cr_expect_eq(q8_multiplier_from_scale(0.25, NULL, &s), Q8_ERR_NULL);
  cr_expect_eq(q8_multiplier_from_scale(0.25, &m, &s), Q8_OK);
  cr_expect(m == HALF && s == -1);
}

/* The reference against an independent long-double model of each mode on
 * random accumulators and multipliers: catches a slip in either. */
Test(requant, ref_matches_independent_model) {
  q8t_rng r = q8t_rng_new(12);
  for (int i = 0; i < 200000; ++i) {
    const int32_t acc = (int32_t)q8t_next(&r);
    int32_t m, s;
    q8_quantize_multiplier(ldexp(q8t_uniform(&r, 0.5f, 1.0f), q8t_range(&r, -40, 2)), &m, &s);
    /* single: floor(acc * m / 2^(31-s) + 1/2), exact in long double (64-bit mantissa). */
    const long double exact = (long double)acc * m / ldexpl(1.0L, 31 - s);
    long double v = floorl(exact + 0.5L);
    if (v > 127) v = 127;
    if (v < -128) v = -128;
    cr_assert_eq(SINGLE(acc, m, s), (int32_t)v, "acc %d m %d s %d", acc, m, s);
    const float scale = q8t_uniform(&r, 1e-6f, 1e-2f);
    float f = (float)acc * scale;
    f = f > 127.f ? 127.f : f < -128.f ? -128.f : f;
    cr_assert_eq(FP32(acc, scale), (int32_t)rintf(f), "acc %d scale %a", acc, (double)scale);
  }
}

/* ---- every ISA's requantize kernel against the reference ------------------
 * Forces each ISA in turn (neondot and neoni8mm fall back to the NEON kernel,
 * neon caps Highway at its NEON target), runs the selected kernel on extreme
 * accumulators and parameters over every layout the kernels treat apart
 * (per tensor, inner 1, inner >= 16, and the small inner left to the
 * reference), tails around the 16-element block, and checks every byte and
 * the guard bytes around the unaligned output. */
static const char *const requant_isas[] = {"ref",        "hwy",  "avx2",    "avxvnni",
                                           "avx512vnni", "neon", "neondot", "neoni8mm"};

static int32_t extreme_acc(q8t_rng *r) {
  static const int32_t corners[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0, 1, -1,
                                    1 << 30, -(1 << 30), (1 << 30) + 1, 255, -256};
  const int32_t pick = q8t_range(r, 0, 3);
  if (pick == 0) return corners[q8t_range(r, 0, (int32_t)(sizeof corners / sizeof corners[0]) - 1)];
  if (pick == 1) return q8t_range(r, -100000, 100000);
  return (int32_t)(uint32_t)q8t_next(r);
}

typedef struct requant_layout {
  size_t channels, inner;
} requant_layout;

static void check_requant_kernel(const char *isa, const q8_kernel *k, q8t_rng *r,
                                 q8_requant_mode mode, q8_dtype dtype,
                                 const requant_layout *l, size_t count) {
  enum { MAX_CH = 40 };
  int32_t mult[MAX_CH], shift[MAX_CH];
  float scale[MAX_CH];
  static const int32_t mult_corners[] = {0, INT32_C(1) << 30, INT32_MAX};
  static const int32_t shift_corners[] = {-31, -30, -1, 0, 1, 30};
  static const float scale_corners[] = {0.0f, 1e-9f, 1.0f, 3e9f, 0.5f};
  for (size_t c = 0; c < l->channels; ++c) {
    mult[c] = q8t_range(r, 0, 1) ? mult_corners[q8t_range(r, 0, 2)]
                                 : q8t_range(r, INT32_C(1) << 30, INT32_MAX);
    shift[c] = q8t_range(r, 0, 1) ? shift_corners[q8t_range(r, 0, 5)] : q8t_range(r, -31, 30);
    scale[c] = q8t_range(r, 0, 1) ? scale_corners[q8t_range(r, 0, 4)] : q8t_uniform(r, 1e-6f, 1e-2f);
  }
  const int32_t lo = dtype == Q8_UINT8 ? 0 : -128, hi = dtype == Q8_UINT8 ? 255 : 127;
  static const int32_t zp_pick[] = {0, 1, 2};
  const int32_t which = zp_pick[q8t_range(r, 0, 2)];
  const int32_t zp = which == 0 ? lo : which == 1 ? hi : q8t_range(r, lo, hi);
  q8_requant_params p = {mode, dtype, zp, lo, hi, l->channels, mult, shift, scale, false};
  if (q8t_range(r, 0, 1)) {
    p.qmin = q8t_range(r, lo, lo + 50);
    p.qmax = q8t_range(r, hi - 50, hi);
  }
  int32_t *acc = malloc((count + 1) * sizeof(int32_t));
  for (size_t i = 0; i < count; ++i) acc[i] = extreme_acc(r);
  unsigned char *want = malloc(count + 1);
  q8_ref_requantize(acc, count, l->inner, &p, want);
  q8t_buf out = q8t_buf_new(count, 1 + count % 15);
  k->requantize(acc, count, l->inner, &p, out.data);
  size_t bad = 0;
  while (bad < count && out.data[bad] == want[bad]) ++bad;
  cr_assert_eq(bad, count,
               "%s [%s] mode %d %s, channels %zu inner %zu count %zu: element %zu is %d, want %d "
               "(acc %d)",
               isa, k->name, (int)mode, dtype == Q8_UINT8 ? "uint8" : "int8", l->channels, l->inner,
               count, bad, bad < count ? out.data[bad] : 0, bad < count ? want[bad] : 0,
               bad < count ? acc[bad] : 0);
  cr_assert(q8t_buf_guards_ok(&out), "%s [%s]: wrote outside the output", isa, k->name);
  q8t_buf_free(&out);
  free(want);
  free(acc);
}

static void check_requant_isa(const char *isa) {
  const char *reason = NULL;
  if (!q8_isa_usable(isa, &reason)) {
    cr_log_info("requantize: ISA %s not usable here (%s): skipped", isa, reason);
    return;
  }
  cr_assert_eq(q8_set_isa(isa), Q8_OK, "%s", q8_error_detail());
  const q8_kernel *k = q8_select_kernel(Q8_OP_REQUANTIZE);
  cr_assert_not_null(k);
  if (strncmp(isa, "neon", 4) == 0) cr_assert_str_eq(k->name, "q8_requantize_s32x8__neon");
  static const requant_layout layouts[] = {{1, 1}, {7, 1}, {33, 1}, {3, 16}, {5, 17},
                                           {2, 40}, {4, 3}, {40, 1}};
  static const size_t counts[] = {1, 3, 15, 16, 17, 31, 33, 64, 100, 257};
  q8t_rng r = q8t_rng_new(77);
  size_t runs = 0;
  for (int mode = 0; mode < 3; ++mode) {
    for (int dt = 0; dt < 2; ++dt) {
      for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; ++li) {
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ++ci) {
          for (int rep = 0; rep < 3; ++rep, ++runs) {
            check_requant_kernel(isa, k, &r, (q8_requant_mode)mode, dt ? Q8_UINT8 : Q8_INT8,
                                 &layouts[li], counts[ci]);
          }
        }
      }
    }
  }
  cr_log_info("requantize: %zu runs bit-exact under %s with %s%s%s", runs, isa, k->name,
              k->isa == Q8_ISA_HWY ? ", Highway target " : "",
              k->isa == Q8_ISA_HWY ? q8_hwy_target() : "");
  q8_set_isa(NULL);
}

Test(requant, every_isa_kernel_matches_ref_on_extremes) {
  for (size_t i = 0; i < sizeof requant_isas / sizeof requant_isas[0]; ++i) {
    check_requant_isa(requant_isas[i]);
  }
}
