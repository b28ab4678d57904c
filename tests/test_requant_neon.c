/* kernels/arm/requant_neon.h against the reference, exact equality: all three
 * modes, per tensor and per channel, channel tails, INT32 limits, extreme
 * multipliers and shifts, zero points and clamps. aarch64 only (NEON is the
 * Armv8.0 baseline, so every aarch64 CPU runs it). */
#include <criterion/criterion.h>
#include <string.h>

#include "q8/kernels.h"
#include "tests/support/q8test.h"

#if defined(__aarch64__)
#include "kernels/arm/requant_neon.h"

#define MAX_CH 37 /* a prime: every tail of 4 and 16 */

static int32_t pick_acc(q8t_rng *r) {
  static const int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -65536, -32768, -257, -256, -255,
                                  -129, -128, -3, -2, -1, 0, 1, 2, 3, 127, 128, 255, 256,
                                  32767, 65536, INT32_MAX - 1, INT32_MAX};
  const int32_t u = q8t_range(r, 0, 3);
  if (u == 0) return edges[q8t_range(r, 0, (int32_t)(sizeof edges / sizeof edges[0]) - 1)];
  if (u == 1) return q8t_range(r, -4096, 4096);
  return (int32_t)(uint32_t)q8t_next(r);
}

static void pick_params(q8t_rng *r, q8_requant_mode mode, q8_dtype out, size_t channels,
                        int32_t *mult, int32_t *shift, float *scale, q8_requant_params *p) {
  for (size_t c = 0; c < channels; ++c) {
    const int32_t kind = q8t_range(r, 0, 5);
    /* Valid multipliers are 0 or in [2^30, 2^31); INT32_MIN exercises the
     * SRDHM saturation the reference also defines. */
    mult[c] = kind == 0 ? 0 : kind == 1 ? INT32_MAX : kind == 2 ? (1 << 30)
            : kind == 3 && mode == Q8_REQUANT_GEMMLOWP ? INT32_MIN
            : q8t_range(r, 1 << 30, INT32_MAX);
    const int32_t sk = q8t_range(r, 0, 4);
    shift[c] = sk == 0 ? -31 : sk == 1 ? 30 : sk == 2 ? 0 : q8t_range(r, -31, 30);
    const int32_t fk = q8t_range(r, 0, 3);
    scale[c] = fk == 0 ? 0.0f : fk == 1 ? 0.5f : q8t_uniform(r, 1e-9f, 2.0f);
  }
  const bool u8 = out == Q8_UINT8;
  const int32_t tmin = u8 ? 0 : -128, tmax = u8 ? 255 : 127;
  const int32_t zk = q8t_range(r, 0, 3);
  const int32_t zp = zk == 0 ? tmin : zk == 1 ? tmax : q8t_range(r, tmin, tmax);
  int32_t qmin = tmin, qmax = tmax;
  if (q8t_range(r, 0, 1)) {
    qmin = q8t_range(r, tmin, tmax);
    qmax = q8t_range(r, qmin, tmax);
  }
  *p = (q8_requant_params){.mode = mode, .out_dtype = out, .zero_point = zp, .qmin = qmin,
                           .qmax = qmax, .channels = channels, .multiplier = mult,
                           .shift = shift, .scale = scale};
}

Test(requant_neon, matches_reference_all_modes) {
  q8t_rng r = q8t_rng_new(q8t_seed());
  int32_t mult[MAX_CH], shift[MAX_CH];
  float scale[MAX_CH];
  size_t checked = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const q8_requant_mode mode = (q8_requant_mode)(iter % 3);
    const q8_dtype out = (iter / 3) % 2 ? Q8_UINT8 : Q8_INT8;
    const size_t n = (size_t)q8t_range(&r, 1, MAX_CH);
    const size_t channels = q8t_range(&r, 0, 1) ? n : 1;
    q8_requant_params p;
    pick_params(&r, mode, out, channels, mult, shift, scale, &p);
    /* The arrays of the channels [col, n) start at col: q8_requant_params_at. */
    int32_t acc_s[MAX_CH + 3];
    for (size_t i = 0; i < n; ++i) acc_s[i] = pick_acc(&r);
    int32x4_t acc[(MAX_CH + 3) / 4];
    for (size_t v = 0; v * 4 < n; ++v) acc[v] = vld1q_s32(acc_s + 4 * v);
    unsigned char got[MAX_CH + 8], want[MAX_CH + 8];
    memset(got, 0xA5, sizeof got);
    memset(want, 0xA5, sizeof want);
    q8_rqn_requantize_store(&p, 0, acc, n, got);
    q8_ref_requantize(acc_s, n, 1, &p, want);
    for (size_t i = 0; i < sizeof got; ++i) {
      if (got[i] != want[i]) {
        const size_t ch = channels == 1 ? 0 : i;
        cr_assert_fail("mode %d out %s n %zu channels %zu: byte %zu acc %d mult %d shift %d "
                       "scale %a zp %d [%d, %d]: got %d want %d",
                       (int)mode, out == Q8_UINT8 ? "u8" : "s8", n, channels, i,
                       i < n ? acc_s[i] : 0, mult[ch], shift[ch], (double)scale[ch],
                       p.zero_point, p.qmin, p.qmax, got[i], want[i]);
      }
    }
    checked += n;
  }
  cr_log_info("requant_neon: %zu values checked", checked);
}

/* Every accumulator at the INT32 limits with every shift: the saturating left
 * shift, SRDHM saturation and the negative fix-up of the rounding shift. */
Test(requant_neon, int32_limits_every_shift) {
  static const int32_t accs[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX};
  static const int32_t mults[] = {0, 1 << 30, INT32_MAX, INT32_MIN, 1518500250};
  for (int mode = 0; mode < 2; ++mode) {
    for (int32_t s = -31; s <= 30; ++s) {
      for (size_t m = 0; m < sizeof mults / sizeof mults[0]; ++m) {
        int32_t mult[4] = {mults[m], mults[m], mults[m], mults[m]}, shift[4] = {s, s, s, s};
        const float scale[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        const q8_requant_params p = {.mode = (q8_requant_mode)mode, .out_dtype = Q8_INT8,
                                     .zero_point = 0, .qmin = -128, .qmax = 127, .channels = 1,
                                     .multiplier = mult, .shift = shift, .scale = scale};
        for (size_t a = 0; a < sizeof accs / sizeof accs[0]; ++a) {
          const int32x4_t acc = vdupq_n_s32(accs[a]);
          q8_rqn rq;
          q8_rqn_init(&rq, &p, 0, 4);
          const int32_t got = vgetq_lane_s32(q8_rqn_apply(&rq, p.mode, acc), 0);
          const int32_t want = q8_ref_requantize_one(accs[a], &p, 0);
          cr_assert_eq(got, want, "mode %d acc %d mult %d shift %d: got %d want %d", mode,
                       accs[a], mult[0], s, got, want);
          /* The building blocks alone, unclamped: all of int32 is reachable. */
          if (mode == 0 && s <= 0) {
            const int32_t h = q8_ref_saturating_rounding_doubling_high_mul(accs[a], mult[0]);
            const int32_t ref = q8_ref_rounding_divide_by_pot(h, -s);
            const q8_requant_params wide = {.mode = Q8_REQUANT_GEMMLOWP, .out_dtype = Q8_INT8,
                                            .zero_point = 0, .qmin = INT32_MIN, .qmax = INT32_MAX,
                                            .channels = 1, .multiplier = mult, .shift = shift};
            q8_rqn_init(&rq, &wide, 0, 4);
            cr_assert_eq(vgetq_lane_s32(q8_rqn_gemmlowp(&rq, acc), 0), ref,
                         "unclamped gemmlowp acc %d mult %d shift %d", accs[a], mult[0], s);
          }
        }
      }
    }
  }
}

/* Ties of the rounding shift, both signs: x = (2q + 1) * 2^(r-1). */
Test(requant_neon, rounding_shift_ties) {
  for (int r = 1; r <= 31; ++r) {
    for (int64_t q = -8; q <= 8; ++q) {
      const int64_t x64 = (2 * q + 1) * ((int64_t)1 << (r - 1));
      if (x64 < INT32_MIN || x64 > INT32_MAX) continue;
      /* mult INT32_MAX with no left shift is nearly the identity; feed the
       * tie through a multiplier of 2^30 on 2x instead: SRDHM(2x, 2^30) = x. */
      const int64_t in = 2 * x64;
      if (in < INT32_MIN || in > INT32_MAX) continue;
      const int32_t mult[1] = {1 << 30}, shift[1] = {-r};
      const q8_requant_params p = {.mode = Q8_REQUANT_GEMMLOWP, .out_dtype = Q8_INT8,
                                   .zero_point = 0, .qmin = INT32_MIN, .qmax = INT32_MAX,
                                   .channels = 1, .multiplier = mult, .shift = shift};
      q8_rqn rq;
      q8_rqn_init(&rq, &p, 0, 1);
      const int32_t got = vgetq_lane_s32(q8_rqn_gemmlowp(&rq, vdupq_n_s32((int32_t)in)), 0);
      cr_assert_eq(got, q8_ref_rounding_divide_by_pot((int32_t)x64, r), "x %lld r %d",
                   (long long)x64, r);
    }
  }
}
#else
Test(requant_neon, not_aarch64) { cr_log_info("requant_neon: not an aarch64 build, nothing to test"); }
#endif
