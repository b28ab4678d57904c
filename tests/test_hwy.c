/* Tests for kernels/hwy: every Highway target this machine supports must give
 * byte-identical results to kernels/ref (quantize, dequantize, requantize) for
 * random, extreme and tie inputs, per tensor and per channel, any length and
 * alignment, without writing outside the output. Each test forces every target
 * in turn through q8_hwy_force_target and restores dispatch at the end. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q8/kernels.h"
#include "tests/support/q8test.h"

#define MAX_TARGETS 16
#define MAX_CHANNELS 1024
#define LARGE_COUNT 100003

/* ---- targets --------------------------------------------------------------- */

static size_t list_targets(const char **names) {
  const size_t n = q8_hwy_supported_targets(names, MAX_TARGETS);
  cr_assert_gt(n, 0, "no Highway target listed");
  cr_assert_leq(n, MAX_TARGETS);
  return n;
}

static void log_seed(void) {
  cr_log_info("seed 0x%llx (set Q8_TEST_SEED to reproduce another)",
              (unsigned long long)q8t_seed());
}

/* Runs fn once per supported target, with dispatch forced to it. */
static void for_each_target(void (*fn)(const char *target, q8t_rng *rng), uint64_t stream) {
  log_seed();
  const char *names[MAX_TARGETS];
  const size_t n = list_targets(names);
  for (size_t t = 0; t < n; ++t) {
    cr_assert_eq(q8_hwy_force_target(names[t]), 0, "cannot force %s", names[t]);
    cr_assert_str_eq(q8_hwy_target(), names[t]);
    q8t_rng rng = q8t_rng_new(stream); /* same data for every target */
    fn(names[t], &rng);
  }
  cr_assert_eq(q8_hwy_force_target(NULL), 0);
}

Test(hwy, target_api) {
  const char *names[MAX_TARGETS];
  const size_t n = list_targets(names);
  cr_assert_str_eq(q8_hwy_target(), names[0], "dispatch must start on the best target");
  cr_assert_eq(q8_hwy_supported_targets(NULL, 0), n, "max 0 must still count");
  for (size_t t = 0; t < n; ++t) {
    cr_assert_eq(q8_hwy_force_target(names[t]), 0);
    cr_assert_str_eq(q8_hwy_target(), names[t]);
    const char *again[MAX_TARGETS];
    cr_assert_eq(q8_hwy_supported_targets(again, MAX_TARGETS), n,
                 "forcing %s must not shrink the supported list", names[t]);
    for (size_t k = 0; k < n; ++k) cr_assert_str_eq(again[k], names[k]);
  }
  cr_assert_eq(q8_hwy_force_target("NO_SUCH_TARGET"), -1);
  cr_assert_str_eq(q8_hwy_target(), names[n - 1], "a failed force must change nothing");
  cr_assert_eq(q8_hwy_force_target(NULL), 0);
  cr_assert_str_eq(q8_hwy_target(), names[0]);
}

/* ---- comparison helpers ---------------------------------------------------- */

static size_t channel_of(size_t i, size_t inner, size_t channels) {
  return channels == 1 ? 0 : (i / inner) % channels;
}

static size_t first_difference(const void *a, const void *b, size_t count, size_t elem) {
  for (size_t i = 0; i < count; ++i) {
    if (memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem) != 0) return i;
  }
  return count;
}

static int32_t out_value(const void *out, size_t i, q8_dtype dtype) {
  return dtype == Q8_UINT8 ? ((const uint8_t *)out)[i] : ((const int8_t *)out)[i];
}

/* ---- requantize ------------------------------------------------------------ */

static const char *mode_name(q8_requant_mode mode) {
  return mode == Q8_REQUANT_GEMMLOWP ? "gemmlowp" : mode == Q8_REQUANT_SINGLE ? "single" : "fp32";
}

/* Compares q8_hwy_requantize with q8_ref_requantize; the input is copied
 * in_off (0 or 1) elements past a 64-byte boundary and the output written
 * out_off (0..3) bytes past one, inside guard bytes. */
static void check_requantize(const char *target, const int32_t *acc, size_t count, size_t inner,
                             const q8_requant_params *p, size_t in_off, size_t out_off) {
  q8t_buf in = q8t_buf_new(count * sizeof(int32_t), in_off * sizeof(int32_t));
  if (count) memcpy(in.data, acc, count * sizeof(int32_t));
  unsigned char *expect = malloc(count + 1);
  q8t_buf got = q8t_buf_new(count, out_off);
  q8_ref_requantize((const int32_t *)in.data, count, inner, p, expect);
  q8_hwy_requantize((const int32_t *)in.data, count, inner, p, got.data);
  const size_t i = first_difference(expect, got.data, count, 1);
  if (i < count) {
    const size_t c = channel_of(i, inner, p->channels);
    cr_assert_fail("%s requantize %s %s: count %zu inner %zu channels %zu (in+%zu out+%zu): "
                   "acc[%zu] = %d (channel %zu: multiplier %d shift %d scale %a, zp %d "
                   "clamp [%d, %d]) -> ref %d, hwy %d",
                   target, mode_name(p->mode), p->out_dtype == Q8_UINT8 ? "uint8" : "int8",
                   count, inner, p->channels, in_off, out_off, i, acc[i], c,
                   p->multiplier ? p->multiplier[c] : 0, p->shift ? p->shift[c] : 0,
                   p->scale ? (double)p->scale[c] : 0.0, p->zero_point, p->qmin, p->qmax,
                   out_value(expect, i, p->out_dtype), out_value(got.data, i, p->out_dtype));
  }
  cr_assert(q8t_buf_guards_ok(&got), "%s requantize %s: write outside the output (count %zu)",
            target, mode_name(p->mode), count);
  q8t_buf_free(&in);
  q8t_buf_free(&got);
  free(expect);
}

/* Accumulators mixing every hard case: full-range random, small, values near
 * the clamp, int32 extremes, odd multiples of powers of two (exact ties for
 * power-of-two multipliers/scales) and floats' rounding boundary 2^24 + 1. */
static int32_t random_acc(q8t_rng *r) {
  static const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0, 1,
                                     -1, 2, -2, (1 << 24) + 1, -(1 << 24) - 1, (1 << 30),
                                     -(1 << 30), (1 << 30) + 1, 255, -255, 256, -256};
  switch (q8t_next(r) % 6) {
    case 0: return (int32_t)(uint32_t)q8t_next(r);
    case 1: return q8t_range(r, -(1 << 16), 1 << 16);
    case 2: return q8t_range(r, -600, 600);
    case 3: return extremes[q8t_next(r) % (sizeof extremes / sizeof extremes[0])];
    case 4: {
      const int t = q8t_range(r, 0, 24);
      const int64_t v = (int64_t)(2 * q8t_range(r, -300, 300) + 1) * ((int64_t)1 << t);
      return (int32_t)(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
    }
    default: return q8t_range(r, -(1 << 24) - 64, (1 << 24) + 64);
  }
}

typedef struct requant_case {
  int32_t multiplier[MAX_CHANNELS];
  int32_t shift[MAX_CHANNELS];
  float scale[MAX_CHANNELS];
} requant_case;

/* Per-channel parameters: random real multipliers in [1e-6, 4] through
 * q8_quantize_multiplier, plus exact powers of two (ties), the extreme
 * mantissas 2^30 and 2^31 - 1, multiplier 0, and the extreme shifts. */
static void random_requant_params(q8t_rng *r, size_t channels, requant_case *rc) {
  for (size_t c = 0; c < channels; ++c) {
    const unsigned kind = (unsigned)(q8t_next(r) % 8);
    double real = exp(q8t_uniform(r, (float)log(1e-6), (float)log(4.0)));
    if (kind == 1) real = ldexp(1.0, q8t_range(r, -20, 1));
    int32_t m, s;
    q8_quantize_multiplier(real, &m, &s);
    if (kind == 2) m = 1 << 30;
    if (kind == 3) m = INT32_MAX;
    if (kind == 4) m = 0;
    if (kind == 5) s = q8t_next(r) % 2 ? 30 : -31;
    if (kind == 6) s = q8t_range(r, -31, 30);
    rc->multiplier[c] = m;
    rc->shift[c] = s;
    const unsigned fkind = (unsigned)(q8t_next(r) % 6);
    rc->scale[c] = fkind == 0   ? ldexpf(1.0f, q8t_range(r, -24, 2)) /* ties */
                   : fkind == 1 ? 1e-40f                          /* denormal */
                   : fkind == 2 ? 3e30f                           /* overflows to inf */
                                : (float)real;
  }
}

typedef struct clamp_case {
  int32_t zp, qmin, qmax;
} clamp_case;

static const clamp_case kInt8Clamps[] = {
    {0, -128, 127}, {-128, -128, 127}, {127, -128, 127}, {-5, -128, 127},
    {-128, -128, -122} /* ReLU6 */, {10, 10, 16}, {127, 127, 127}, {-128, -128, -128},
    {3, -100, 90}};
static const clamp_case kUint8Clamps[] = {
    {0, 0, 255}, {255, 0, 255}, {128, 0, 255}, {0, 0, 6} /* ReLU6 */,
    {250, 0, 255}, {255, 255, 255}, {0, 0, 0}, {100, 100, 106}};

static q8_requant_params make_requant(q8_requant_mode mode, q8_dtype dtype, clamp_case cc,
                                      size_t channels, const requant_case *rc) {
  q8_requant_params p = {mode, dtype, cc.zp, cc.qmin, cc.qmax, channels,
                         rc->multiplier, rc->shift, rc->scale, false};
  return p;
}

static const struct {
  size_t channels, inner;
} kLayouts[] = {{1, 1}, {3, 1}, {16, 1}, {17, 1}, {3, 5}, {16, 5}, {17, 5}};

static void requant_lengths(const char *target, q8t_rng *r, q8_requant_mode mode) {
  static requant_case rc;
  int32_t acc[67 + 1];
  for (int dt = 0; dt < 2; ++dt) {
    const q8_dtype dtype = dt ? Q8_UINT8 : Q8_INT8;
    const clamp_case *clamps = dt ? kUint8Clamps : kInt8Clamps;
    const size_t nclamps = dt ? sizeof kUint8Clamps / sizeof kUint8Clamps[0]
                              : sizeof kInt8Clamps / sizeof kInt8Clamps[0];
    for (size_t l = 0; l < sizeof kLayouts / sizeof kLayouts[0]; ++l) {
      random_requant_params(r, kLayouts[l].channels, &rc);
      for (size_t count = 0; count <= 67; ++count) {
        for (size_t i = 0; i < count; ++i) acc[i] = random_acc(r);
        const clamp_case cc = clamps[(count + l) % nclamps];
        const q8_requant_params p = make_requant(mode, dtype, cc, kLayouts[l].channels, &rc);
        for (size_t in_off = 0; in_off <= 1; ++in_off) {
          for (size_t out_off = 0; out_off <= 3; ++out_off) {
            check_requantize(target, acc, count, kLayouts[l].inner, &p, in_off, out_off);
          }
        }
      }
    }
  }
}

/* Every (multiplier, shift) corner against every extreme accumulator, per
 * tensor: all shifts -31..30 with mantissas 2^30, 2^30 + 1, 2^31 - 1, 0. */
static void requant_corners(const char *target, q8t_rng *r, q8_requant_mode mode) {
  static requant_case rc;
  enum { N = 1024 };
  int32_t acc[N];
  for (size_t i = 0; i < N; ++i) acc[i] = random_acc(r);
  static const int32_t mantissas[] = {1 << 30, (1 << 30) + 1, INT32_MAX, 0, 1518500250};
  for (int dt = 0; dt < 2; ++dt) {
    const q8_dtype dtype = dt ? Q8_UINT8 : Q8_INT8;
    const clamp_case cc = dt ? kUint8Clamps[2] : kInt8Clamps[3];
    for (size_t mi = 0; mi < sizeof mantissas / sizeof mantissas[0]; ++mi) {
      for (int32_t s = -31; s <= 30; ++s) {
        rc.multiplier[0] = mantissas[mi];
        rc.shift[0] = s;
        rc.scale[0] = ldexpf(1.0f, s);
        const q8_requant_params p = make_requant(mode, dtype, cc, 1, &rc);
        check_requantize(target, acc, N, 1, &p, 0, 0);
      }
    }
  }
}

static void requant_large(const char *target, q8t_rng *r, q8_requant_mode mode) {
  static requant_case rc;
  static const struct {
    size_t channels, inner;
  } layouts[] = {{1, 1}, {17, 1}, {3, 5}, {1000, 1}, {300, 5}, {30, 100}};
  int32_t *acc = malloc(LARGE_COUNT * sizeof(int32_t));
  cr_assert_not_null(acc);
  for (size_t i = 0; i < LARGE_COUNT; ++i) acc[i] = random_acc(r);
  for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; ++l) {
    random_requant_params(r, layouts[l].channels, &rc);
    const q8_dtype dtype = l % 2 ? Q8_UINT8 : Q8_INT8;
    const clamp_case cc = l % 2 ? kUint8Clamps[2] : kInt8Clamps[3];
    const q8_requant_params p = make_requant(mode, dtype, cc, layouts[l].channels, &rc);
    check_requantize(target, acc, LARGE_COUNT, layouts[l].inner, &p, l % 2, l % 4);
  }
  free(acc);
}

static void requant_all(const char *target, q8t_rng *r, q8_requant_mode mode) {
  requant_lengths(target, r, mode);
  requant_corners(target, r, mode);
  requant_large(target, r, mode);
}

static void requant_gemmlowp(const char *t, q8t_rng *r) { requant_all(t, r, Q8_REQUANT_GEMMLOWP); }
static void requant_single(const char *t, q8t_rng *r) { requant_all(t, r, Q8_REQUANT_SINGLE); }
static void requant_fp32(const char *t, q8t_rng *r) { requant_all(t, r, Q8_REQUANT_FP32); }

Test(hwy, requantize_gemmlowp) { for_each_target(requant_gemmlowp, 1); }
Test(hwy, requantize_single) { for_each_target(requant_single, 2); }
Test(hwy, requantize_fp32) { for_each_target(requant_fp32, 3); }

/* ---- quantize -------------------------------------------------------------- */

typedef struct quant_case {
  float scale[MAX_CHANNELS];
  int32_t zero_point[MAX_CHANNELS];
} quant_case;

static void check_quantize(const char *target, const float *x, size_t count, size_t inner,
                           const q8_quant_params *p, q8_rounding rounding, q8_scale_op op,
                           size_t in_off, size_t out_off) {
  q8t_buf in = q8t_buf_new(count * sizeof(float), in_off * sizeof(float));
  if (count) memcpy(in.data, x, count * sizeof(float));
  unsigned char *expect = malloc(count + 1);
  q8t_buf got = q8t_buf_new(count, out_off);
  q8_ref_quantize((const float *)in.data, count, inner, p, rounding, op, expect);
  q8_hwy_quantize((const float *)in.data, count, inner, p, rounding, op, got.data);
  const size_t i = first_difference(expect, got.data, count, 1);
  if (i < count) {
    const size_t c = channel_of(i, inner, p->channels);
    cr_assert_fail("%s quantize %s %s %s: count %zu inner %zu channels %zu (in+%zu out+%zu): "
                   "x[%zu] = %a (channel %zu: scale %a zp %d) -> ref %d, hwy %d",
                   target, p->dtype == Q8_UINT8 ? "uint8" : "int8",
                   rounding == Q8_ROUND_HALF_AWAY ? "half-away" : "half-even",
                   op == Q8_SCALE_RECIPROCAL ? "reciprocal" : "divide", count, inner,
                   p->channels, in_off, out_off, i, (double)x[i], c, (double)p->scale[c],
                   p->zero_point ? p->zero_point[c] : 0, out_value(expect, i, p->dtype),
                   out_value(got.data, i, p->dtype));
  }
  cr_assert(q8t_buf_guards_ok(&got), "%s quantize: write outside the output (count %zu)",
            target, count);
  q8t_buf_free(&in);
  q8t_buf_free(&got);
  free(expect);
}

/* Scales: random, and powers of two so that (k + 0.5) * scale is an exact tie
 * under both scale ops. Scales are normal floats: for a denormal scale below
 * ~2.9e-39, 1.0f / scale overflows and the reference hits 0 * inf = NaN. */
static void random_quant_params(q8t_rng *r, size_t channels, q8_dtype dtype, quant_case *qc) {
  for (size_t c = 0; c < channels; ++c) {
    const unsigned kind = (unsigned)(q8t_next(r) % 4);
    qc->scale[c] = kind == 0 ? ldexpf(1.0f, q8t_range(r, -10, 3))
                   : kind == 1 ? 1.0f
                               : expf(q8t_uniform(r, logf(1e-4f), logf(10.0f)));
    const unsigned zkind = (unsigned)(q8t_next(r) % 4);
    const int32_t lo = dtype == Q8_UINT8 ? 0 : -128, hi = dtype == Q8_UINT8 ? 255 : 127;
    qc->zero_point[c] = zkind == 0 ? lo : zkind == 1 ? hi : q8t_range(r, lo, hi);
  }
}

/* Inputs: in-range and out-of-range values, exact ties and their float
 * neighbours, 0.49999997-style near-ties, and the special values. */
static float random_x(q8t_rng *r, float scale) {
  static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, 1e30f, -1e30f, FLT_MAX,
                                   -FLT_MAX, 1e-40f, -1e-45f, FLT_MIN, 0.5f, -0.5f, 2.5f,
                                   -2.5f, 0.49999997f, -0.49999997f, 1.5f, 127.5f, -128.5f,
                                   255.5f, 8388607.5f, 16777216.0f};
  switch (q8t_next(r) % 7) {
    case 0: return q8t_uniform(r, -300.0f, 300.0f) * scale;
    case 1: return q8t_uniform(r, -3.0f, 3.0f) * scale;
    case 2: return ((float)q8t_range(r, -300, 300) + 0.5f) * scale;
    case 3: {
      const float tie = ((float)q8t_range(r, -300, 300) + 0.5f) * scale;
      return nextafterf(tie, q8t_next(r) % 2 ? INFINITY : -INFINITY);
    }
    case 4: return specials[q8t_next(r) % (sizeof specials / sizeof specials[0])];
    case 5: return q8t_next(r) % 2 ? NAN : -NAN;
    default: {
      uint32_t bits = (uint32_t)q8t_next(r); /* any float at all, NaN payloads included */
      float f;
      memcpy(&f, &bits, sizeof f);
      return f;
    }
  }
}

static void quant_lengths(const char *target, q8t_rng *r) {
  static quant_case qc;
  float x[67 + 1];
  for (int dt = 0; dt < 2; ++dt) {
    const q8_dtype dtype = dt ? Q8_UINT8 : Q8_INT8;
    for (size_t l = 0; l < sizeof kLayouts / sizeof kLayouts[0]; ++l) {
      const size_t channels = kLayouts[l].channels, inner = kLayouts[l].inner;
      random_quant_params(r, channels, dtype, &qc);
      for (size_t count = 0; count <= 67; ++count) {
        for (size_t i = 0; i < count; ++i) x[i] = random_x(r, qc.scale[channel_of(i, inner, channels)]);
        /* Every other length without zero points (NULL means all zero). */
        const q8_quant_params p = {dtype, channels, qc.scale, count % 2 ? qc.zero_point : NULL};
        for (int mode = 0; mode < 4; ++mode) {
          const q8_rounding rounding = mode & 1 ? Q8_ROUND_HALF_EVEN : Q8_ROUND_HALF_AWAY;
          const q8_scale_op op = mode & 2 ? Q8_SCALE_RECIPROCAL : Q8_SCALE_DIVIDE;
          for (size_t in_off = 0; in_off <= 1; ++in_off) {
            for (size_t out_off = 0; out_off <= 3; ++out_off) {
              check_quantize(target, x, count, inner, &p, rounding, op, in_off, out_off);
            }
          }
        }
      }
    }
  }
}

static void quant_large(const char *target, q8t_rng *r) {
  static quant_case qc;
  static const struct {
    size_t channels, inner;
  } layouts[] = {{1, 1}, {17, 1}, {3, 5}, {1000, 1}, {300, 5}};
  float *x = malloc(LARGE_COUNT * sizeof(float));
  cr_assert_not_null(x);
  for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; ++l) {
    const size_t channels = layouts[l].channels, inner = layouts[l].inner;
    const q8_dtype dtype = l % 2 ? Q8_UINT8 : Q8_INT8;
    random_quant_params(r, channels, dtype, &qc);
    for (size_t i = 0; i < LARGE_COUNT; ++i) x[i] = random_x(r, qc.scale[channel_of(i, inner, channels)]);
    const q8_quant_params p = {dtype, channels, qc.scale, qc.zero_point};
    for (int mode = 0; mode < 4; ++mode) {
      check_quantize(target, x, LARGE_COUNT, inner, &p,
                     mode & 1 ? Q8_ROUND_HALF_EVEN : Q8_ROUND_HALF_AWAY,
                     mode & 2 ? Q8_SCALE_RECIPROCAL : Q8_SCALE_DIVIDE, l % 2, l % 4);
    }
  }
  free(x);
}

/* Every float in [-300, 300] on a fine grid around each half integer, for
 * both roundings, with scale 1 (x / 1 and x * 1 are exact). */
static void quant_ties(const char *target, q8t_rng *r) {
  (void)r;
  enum { PER = 9, N = 601 * PER };
  static float x[N];
  size_t n = 0;
  for (int k = -300; k <= 300; ++k) {
    float v = (float)k + 0.5f;
    for (int j = 0; j < 4; ++j) v = nextafterf(v, -INFINITY);
    for (int j = 0; j < PER; ++j, v = nextafterf(v, INFINITY)) x[n++] = v;
  }
  static const float one = 1.0f;
  static const float quarter = 0.25f;
  for (int dt = 0; dt < 2; ++dt) {
    for (int mode = 0; mode < 4; ++mode) {
      for (int zk = 0; zk < 3; ++zk) {
        const int32_t zp = dt ? (zk == 0 ? 0 : zk == 1 ? 255 : 128) : (zk == 0 ? -128 : zk == 1 ? 127 : 0);
        const q8_quant_params p = {dt ? Q8_UINT8 : Q8_INT8, 1, zk == 2 ? &quarter : &one, &zp};
        check_quantize(target, x, N, 1, &p, mode & 1 ? Q8_ROUND_HALF_EVEN : Q8_ROUND_HALF_AWAY,
                       mode & 2 ? Q8_SCALE_RECIPROCAL : Q8_SCALE_DIVIDE, 0, 0);
      }
    }
  }
}

static void quant_all(const char *target, q8t_rng *r) {
  quant_lengths(target, r);
  quant_ties(target, r);
  quant_large(target, r);
}

Test(hwy, quantize) { for_each_target(quant_all, 4); }

/* ---- dequantize ------------------------------------------------------------ */

static void check_dequantize(const char *target, const void *q, size_t count, size_t inner,
                             const q8_quant_params *p, size_t in_off, size_t out_off) {
  q8t_buf in = q8t_buf_new(count, in_off);
  if (count) memcpy(in.data, q, count);
  float *expect = malloc((count + 1) * sizeof(float));
  q8t_buf got = q8t_buf_new(count * sizeof(float), out_off * sizeof(float));
  q8_ref_dequantize(in.data, count, inner, p, expect);
  q8_hwy_dequantize(in.data, count, inner, p, (float *)got.data);
  const size_t i = first_difference(expect, got.data, count, sizeof(float));
  if (i < count) {
    const size_t c = channel_of(i, inner, p->channels);
    float g;
    memcpy(&g, got.data + i * sizeof(float), sizeof g);
    cr_assert_fail("%s dequantize %s: count %zu inner %zu channels %zu (in+%zu out+%zu): "
                   "q[%zu] = %d (channel %zu: scale %a zp %d) -> ref %a, hwy %a",
                   target, p->dtype == Q8_UINT8 ? "uint8" : "int8", count, inner, p->channels,
                   in_off, out_off, i, out_value(q, i, p->dtype), c, (double)p->scale[c],
                   p->zero_point ? p->zero_point[c] : 0, (double)expect[i], (double)g);
  }
  cr_assert(q8t_buf_guards_ok(&got), "%s dequantize: write outside the output (count %zu)",
            target, count);
  q8t_buf_free(&in);
  q8t_buf_free(&got);
  free(expect);
}

static void dequant_all(const char *target, q8t_rng *r) {
  static quant_case qc;
  unsigned char q[256];
  /* All 256 values with extreme zero points and scales (denormal, overflowing). */
  for (int i = 0; i < 256; ++i) q[i] = (unsigned char)i;
  static const float scales[] = {1.0f, 0.1f, 1e-40f, 3e38f, 0.0078125f};
  for (int dt = 0; dt < 2; ++dt) {
    const int32_t zps[] = {dt ? 0 : -128, dt ? 255 : 127, dt ? 128 : 0};
    for (size_t z = 0; z < 3; ++z) {
      for (size_t s = 0; s < sizeof scales / sizeof scales[0]; ++s) {
        const q8_quant_params p = {dt ? Q8_UINT8 : Q8_INT8, 1, &scales[s], &zps[z]};
        for (size_t off = 0; off < 4; ++off) check_dequantize(target, q, 256, 1, &p, off, off % 2);
      }
    }
  }
  /* Lengths, layouts, alignments. */
  for (int dt = 0; dt < 2; ++dt) {
    const q8_dtype dtype = dt ? Q8_UINT8 : Q8_INT8;
    for (size_t l = 0; l < sizeof kLayouts / sizeof kLayouts[0]; ++l) {
      random_quant_params(r, kLayouts[l].channels, dtype, &qc);
      for (size_t count = 0; count <= 67; ++count) {
        q8t_fill_bytes(r, q, count);
        const q8_quant_params p = {dtype, kLayouts[l].channels, qc.scale,
                                   count % 2 ? qc.zero_point : NULL};
        for (size_t in_off = 0; in_off <= 3; ++in_off) {
          for (size_t out_off = 0; out_off <= 1; ++out_off) {
            check_dequantize(target, q, count, kLayouts[l].inner, &p, in_off, out_off);
          }
        }
      }
    }
  }
  /* Large. */
  static const struct {
    size_t channels, inner;
  } layouts[] = {{1, 1}, {17, 1}, {3, 5}, {1000, 1}, {300, 5}};
  unsigned char *big = malloc(LARGE_COUNT);
  cr_assert_not_null(big);
  q8t_fill_bytes(r, big, LARGE_COUNT);
  for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; ++l) {
    const q8_dtype dtype = l % 2 ? Q8_UINT8 : Q8_INT8;
    random_quant_params(r, layouts[l].channels, dtype, &qc);
    const q8_quant_params p = {dtype, layouts[l].channels, qc.scale, qc.zero_point};
    check_dequantize(target, big, LARGE_COUNT, layouts[l].inner, &p, l % 4, l % 2);
  }
  free(big);
}

Test(hwy, dequantize) { for_each_target(dequant_all, 5); }
