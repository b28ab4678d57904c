/* qbench peers: oneDNN and XNNPACK time the same GEMM as q8 and agree with
 * q8's reference (within 1 for 8-bit outputs, whose rounding of ties and
 * scale products differ; exactly for int32). Peers this build did not find
 * are skipped, and must say why. */
#include <criterion/criterion.h>
#include <string.h>

#include "bench/qbench.h"

#define MIN_TIME 0.01
static const qb_peer_timing unpaired = {.min_time = MIN_TIME};

#if defined(QB_HAVE_ONEDNN) && QB_HAVE_ONEDNN
#define HAVE_ONEDNN true
#else
#define HAVE_ONEDNN false
#endif
#if defined(QB_HAVE_XNNPACK) && QB_HAVE_XNNPACK
#define HAVE_XNNPACK true
#else
#define HAVE_XNNPACK false
#endif

static const size_t shapes[][3] = {{1, 64, 64}, {7, 33, 129}, {64, 256, 256}};

static void require_peer(qb_peer peer) {
  const char *why = NULL;
  if (!qb_peer_built(peer, &why)) {
    cr_log_info("skipping %s: %s", qb_peer_name(peer), why);
    cr_skip_test("%s is not built", qb_peer_name(peer));
  }
}

/* Every shape with check on: succeeds, a sane timing, names, small diff. */
static void check_peer(qb_peer peer, q8_dtype out, size_t threads, int max_diff) {
  require_peer(peer);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
    qb_peer_result r;
    char err[256] = "";
    const bool ok = qb_peer_gemm_measure(peer, shapes[s], threads, out, &unpaired, true, &r, err, sizeof err);
    cr_assert(ok, "%s %zux%zux%zu %s: %s", qb_peer_name(peer), shapes[s][0], shapes[s][1], shapes[s][2],
              qb_out_name(out), err);
    cr_expect(r.checked);
    cr_expect_leq(r.max_abs_diff, max_diff, "%s %zux%zux%zu %s threads %zu: %d off the q8 reference",
                  qb_peer_name(peer), shapes[s][0], shapes[s][1], shapes[s][2], qb_out_name(out),
                  threads, r.max_abs_diff);
    cr_expect_gt(r.t.median_s, 0.0);
    cr_expect_geq(r.t.samples, 5);
    cr_expect_str_not_empty(r.isa, "%s: isa", qb_peer_name(peer));
    cr_expect_str_not_empty(r.impl, "%s: impl", qb_peer_name(peer));
    cr_log_info("%s %zux%zux%zu %s: isa %s, impl %s, max diff %d", qb_peer_name(peer), shapes[s][0],
                shapes[s][1], shapes[s][2], qb_out_name(out), r.isa, r.impl, r.max_abs_diff);
  }
}

Test(peers, names) {
  cr_expect_str_eq(qb_peer_name(QB_PEER_ONEDNN), "onednn");
  cr_expect_str_eq(qb_peer_name(QB_PEER_XNNPACK), "xnnpack");
}

Test(peers, built_matches_the_configure_result) {
  const bool expected[QB_PEER_COUNT] = {HAVE_ONEDNN, HAVE_XNNPACK};
  for (int p = 0; p < QB_PEER_COUNT; ++p) {
    const char *why = "unset";
    const bool built = qb_peer_built((qb_peer)p, &why);
    cr_expect_eq(built, expected[p], "%s: built %d, QB_HAVE_* says %d", qb_peer_name((qb_peer)p), built,
                 expected[p]);
    if (built) {
      cr_expect_null(why, "%s is built: no reason", qb_peer_name((qb_peer)p));
      cr_expect_str_not_empty(qb_peer_version((qb_peer)p), "%s: a version", qb_peer_name((qb_peer)p));
    } else {
      cr_expect(why && strstr(why, "built without"), "%s: why not: %s", qb_peer_name((qb_peer)p),
                why ? why : "(null)");
      cr_expect_str_empty(qb_peer_version((qb_peer)p));
    }
  }
  cr_expect(qb_peer_built(QB_PEER_ONEDNN, NULL) == HAVE_ONEDNN, "reason may be NULL");
}

Test(peers, a_peer_not_built_refuses_with_the_reason) {
  for (int p = 0; p < QB_PEER_COUNT; ++p) {
    const char *why = NULL;
    if (qb_peer_built((qb_peer)p, &why)) continue;
    qb_peer_result r;
    char err[256] = "";
    cr_expect_not(
        qb_peer_gemm_measure((qb_peer)p, shapes[0], 1, Q8_INT8, &unpaired, true, &r, err, sizeof err));
    cr_expect_str_eq(err, why);
  }
  if (HAVE_ONEDNN && HAVE_XNNPACK) cr_log_info("both peers are built: nothing to refuse");
}

/* 8-bit outputs within 1 of the reference; int32 exactly. */
Test(onednn, s8_matches_reference) { check_peer(QB_PEER_ONEDNN, Q8_INT8, 1, 1); }
Test(onednn, u8_matches_reference) { check_peer(QB_PEER_ONEDNN, Q8_UINT8, 1, 1); }
Test(onednn, s32_equals_reference) { check_peer(QB_PEER_ONEDNN, Q8_INT32, 1, 0); }
Test(onednn, two_threads) { check_peer(QB_PEER_ONEDNN, Q8_INT8, 2, 1); }
Test(xnnpack, s8_matches_reference) { check_peer(QB_PEER_XNNPACK, Q8_INT8, 1, 1); }
Test(xnnpack, u8_matches_reference) { check_peer(QB_PEER_XNNPACK, Q8_UINT8, 1, 1); }
Test(xnnpack, two_threads) { check_peer(QB_PEER_XNNPACK, Q8_UINT8, 2, 1); }

Test(xnnpack, s32_is_refused) {
  require_peer(QB_PEER_XNNPACK);
  qb_peer_result r;
  char err[256] = "";
  cr_expect_not(
      qb_peer_gemm_measure(QB_PEER_XNNPACK, shapes[1], 1, Q8_INT32, &unpaired, true, &r, err, sizeof err));
  cr_expect_str_eq(err, "xnnpack has no int32-output GEMM");
}

/* ---- paired timing: q8 and a peer in alternating slots ---- */

/* Work of `*(size_t *)ctx` dependent steps, which no compiler can fold. */
static void spin(void *ctx) {
  volatile size_t x = 0;
  for (size_t i = 0, n = *(size_t *)ctx; i < n; ++i) x = x * 3 + i;
}

Test(paired, ratio_is_the_time_of_b_over_a) {
  size_t one = 20000, two = 40000;
  const qb_paired p = qb_measure_paired(spin, &one, spin, &two, 0.05);
  cr_expect_geq(p.pairs, 5);
  /* Each side: QB_PAIR_SAMPLES (8) timed samples a slot, one slot a pair. */
  cr_expect_eq(p.a.samples, 8 * p.pairs);
  cr_expect_eq(p.b.samples, 8 * p.pairs);
  cr_expect_leq(p.ratio_q1, p.ratio);
  cr_expect_leq(p.ratio, p.ratio_q3);
  /* Twice the work: about twice the time (wide bounds: a shared machine). */
  cr_expect(p.ratio > 1.5 && p.ratio < 2.7, "ratio %.3f (quartiles %.3f-%.3f)", p.ratio, p.ratio_q1, p.ratio_q3);
  cr_expect(p.a.median_s > 0 && p.b.median_s > p.a.median_s, "a %g s, b %g s", p.a.median_s, p.b.median_s);
  const qb_paired same = qb_measure_paired(spin, &one, spin, &one, 0.05);
  cr_expect(same.ratio > 0.75 && same.ratio < 1.33, "same work: ratio %.3f", same.ratio);
}

static void count_call(void *ctx) {
  ++*(size_t *)ctx;
  size_t n = 2000;
  spin(&n);
}

/* A peer timed beside a partner runs both and reports the pairs. */
static void check_paired(qb_peer peer) {
  require_peer(peer);
  size_t partner_calls = 0;
  const qb_peer_timing timing = {.min_time = MIN_TIME, .partner = count_call, .partner_ctx = &partner_calls};
  qb_peer_result r;
  char err[256] = "";
  cr_assert(qb_peer_gemm_measure(peer, shapes[1], 1, Q8_INT8, &timing, true, &r, err, sizeof err), "%s", err);
  cr_expect_geq(r.pairs, 5);
  cr_expect_gt(partner_calls, r.partner_t.samples, "every sample of the partner ran it");
  cr_expect_eq(r.partner_t.samples, r.t.samples);
  cr_expect(r.ratio > 0 && r.ratio_q1 <= r.ratio && r.ratio <= r.ratio_q3, "ratio %g (%g-%g)", r.ratio, r.ratio_q1,
            r.ratio_q3);
  cr_expect_leq(r.max_abs_diff, 1, "paired, the peer still computes the same GEMM");
  cr_assert(qb_peer_gemm_measure(peer, shapes[1], 1, Q8_INT8, &unpaired, false, &r, err, sizeof err), "%s", err);
  cr_expect_eq(r.pairs, 0, "no partner, no pairs");
  cr_expect_eq(r.partner_t.samples, 0);
}

Test(onednn, paired_with_a_partner) { check_paired(QB_PEER_ONEDNN); }
Test(xnnpack, paired_with_a_partner) { check_paired(QB_PEER_XNNPACK); }
