#define _POSIX_C_SOURCE 200809L /* popen */
/* qbench peak: compute-peak and read-bandwidth probes, their C API and the
 * `qbench peak` subcommand. Small --min-time keeps them fast; bounds allow
 * for a shared, noisy machine. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"
#include "tests/support/q8test.h"

#define MIN_TIME 0.02

/* The ISAs with a compute probe on this build's architecture, in the order
 * qbench peak lists them; the others of the enum have none. */
#if defined(__aarch64__)
static const q8_isa arch_isas[] = {Q8_ISA_NEON, Q8_ISA_NEONDOT, Q8_ISA_NEONI8MM};
static const q8_isa other_isas[] = {Q8_ISA_AVX2, Q8_ISA_AVX512VNNI, Q8_ISA_AMX};
#else
static const q8_isa arch_isas[] = {Q8_ISA_AVX2, Q8_ISA_AVXVNNI, Q8_ISA_AVX512VNNI, Q8_ISA_AMX};
static const q8_isa other_isas[] = {Q8_ISA_NEON, Q8_ISA_NEONDOT, Q8_ISA_NEONI8MM};
#endif
#define N_ARCH_ISAS (sizeof arch_isas / sizeof arch_isas[0])

Test(peak, usable_isas_have_a_positive_finite_peak) {
  for (size_t i = 0; i < sizeof arch_isas / sizeof arch_isas[0]; ++i) {
    const q8_isa isa = arch_isas[i];
    const char *reason = NULL;
    const bool usable = qb_peak_usable(isa, &reason);
    cr_assert_not_null(reason);
    cr_expect_eq(usable, q8_isa_usable_on(isa, q8_cpu(), NULL),
                 "%s: every ISA of this architecture has a probe, so probe-usable == dispatch-usable",
                 q8_isa_name(isa));
    const double gops = qb_peak_gops(isa, MIN_TIME);
    if (usable) {
      cr_expect(isfinite(gops) && gops > 0.0, "%s peak %g GOPS", q8_isa_name(isa), gops);
      cr_expect_str_empty(reason);
      /* Far above any single core today (AMX on Sapphire Rapids: ~2e4 GOPS). */
      cr_expect_lt(gops, 1e6, "%s peak %g GOPS is not plausible", q8_isa_name(isa), gops);
    } else {
      cr_expect_eq(gops, 0.0, "%s is not usable (%s) yet measured %g", q8_isa_name(isa), reason,
                   gops);
      cr_expect_str_not_empty(reason, "%s: a reason why not", q8_isa_name(isa));
    }
  }
}

Test(peak, isas_without_a_probe_report_zero_with_a_reason) {
  const q8_isa none[] = {Q8_ISA_REF, Q8_ISA_HWY, other_isas[0], (q8_isa)Q8_ISA_COUNT};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; ++i) {
    const char *reason = NULL;
    cr_expect_not(qb_peak_usable(none[i], &reason), "isa %d", (int)none[i]);
    cr_expect(reason && reason[0], "isa %d: a reason", (int)none[i]);
    cr_expect_eq(qb_peak_gops(none[i], MIN_TIME), 0.0);
  }
  cr_expect_not(qb_peak_usable(Q8_ISA_REF, NULL), "reason may be NULL");
}

Test(peak, avx512vnni_is_at_least_avx2) {
  if (!qb_peak_usable(Q8_ISA_AVX512VNNI, NULL) || !qb_peak_usable(Q8_ISA_AVX2, NULL)) {
    cr_skip_test("needs avx2 and avx512vnni");
  }
  const double avx2 = qb_peak_gops(Q8_ISA_AVX2, MIN_TIME);
  const double vnni = qb_peak_gops(Q8_ISA_AVX512VNNI, MIN_TIME);
  /* 4x the MACs per instruction; at worst double-pumped with half the rate. */
  cr_expect_geq(vnni, avx2, "avx512vnni %g GOPS < avx2 %g GOPS", vnni, avx2);
}

Test(peak, avxvnni_is_at_least_avx2) {
  if (!qb_peak_usable(Q8_ISA_AVXVNNI, NULL)) cr_skip_test("needs avxvnni");
  const double avx2 = qb_peak_gops(Q8_ISA_AVX2, MIN_TIME);
  const double vnni = qb_peak_gops(Q8_ISA_AVXVNNI, MIN_TIME);
  cr_expect_geq(vnni, avx2, "avxvnni %g GOPS < avx2 %g GOPS", vnni, avx2);
}

Test(peak, clock_estimate_is_plausible) {
#if defined(__x86_64__) || defined(__aarch64__)
  const double ghz = qb_clock_ghz(MIN_TIME);
  cr_expect(ghz > 0.2 && ghz < 10.0, "clock %g GHz", ghz);
#else
  cr_expect_eq(qb_clock_ghz(MIN_TIME), 0.0);
#endif
}

Test(bandwidth, level_sizes_follow_the_caches) {
  const q8_cpu_info *cpu = q8_cpu();
  size_t bytes[5];
  for (int l = 1; l <= 4; ++l) {
    bytes[l] = qb_bandwidth_level_bytes(l);
    cr_expect_gt(bytes[l], 0, "level %d", l);
    if (l > 1) cr_expect_gt(bytes[l], bytes[l - 1], "level %d is larger than level %d", l, l - 1);
  }
  if (cpu->l1d_bytes) cr_expect_leq(bytes[1], cpu->l1d_bytes, "L1 stream fits L1d");
  if (cpu->l2_bytes) cr_expect_leq(bytes[2], cpu->l2_bytes, "L2 stream fits L2");
  if (cpu->l3_bytes) {
    cr_expect_leq(bytes[3], cpu->l3_bytes, "L3 stream fits L3");
    cr_expect_geq(bytes[4], 4 * cpu->l3_bytes, "DRAM stream is >= 4x L3");
  }
  cr_expect_geq(bytes[4], (size_t)256 << 20, "DRAM stream is >= 256 MiB");
  cr_expect_eq(qb_bandwidth_level_bytes(0), 0);
  cr_expect_eq(qb_bandwidth_level_bytes(5), 0);
  size_t out = 123;
  cr_expect_eq(qb_bandwidth_level(7, MIN_TIME, &out), 0.0);
  cr_expect_eq(out, 0);
}

Test(bandwidth, levels_are_ordered_roughly) {
  double bw[5];
  for (int l = 1; l <= 4; ++l) {
    size_t bytes = 0;
    bw[l] = qb_bandwidth_level(l, MIN_TIME, &bytes);
    if (l == 3) { /* the best rung of the ladder, from twice the L2 stream's L2 */
      cr_expect(bytes >= 2 * qb_bandwidth_level_bytes(2) && bytes <= qb_bandwidth_level_bytes(3),
                "L3 stream of %zu bytes", bytes);
    } else {
      cr_expect_eq(bytes, qb_bandwidth_level_bytes(l));
    }
    cr_expect(isfinite(bw[l]) && bw[l] > 0.0, "level %d: %g B/s", l, bw[l]);
    cr_expect_lt(bw[l], 1e13, "level %d: %g B/s is not plausible", l, bw[l]);
  }
  /* Under qemu every level reads at the emulator's speed (about 7 GB/s each on
   * the CI host), so the order is noise there, not a property of the probes. */
  if (q8_cpu()->emulated[0]) {
    cr_log_info("emulated (%s): L1 %g, L2 %g, DRAM %g B/s; order not checked",
                q8_cpu()->emulated, bw[1], bw[2], bw[4]);
    return;
  }
  /* Noise allowance: a busy neighbour can slow any one probe. */
  cr_expect_geq(bw[1], 0.8 * bw[2], "L1 %g < 0.8 x L2 %g", bw[1], bw[2]);
  cr_expect_geq(bw[2], 0.8 * bw[4], "L2 %g < 0.8 x DRAM %g", bw[2], bw[4]);
  cr_expect_geq(bw[1], 0.8 * bw[4], "L1 %g < 0.8 x DRAM %g", bw[1], bw[4]);
}

Test(bandwidth, read_bandwidth_takes_any_size) {
  const size_t sizes[] = {1, 1000, 100000, 3 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    const double b = qb_read_bandwidth(sizes[i], MIN_TIME);
    cr_expect(isfinite(b) && b > 0.0, "%zu bytes: %g B/s", sizes[i], b);
  }
  cr_expect_str_not_empty(qb_read_loads());
}

/* Runs qbench with `args`; stderr is dropped unless `merge_stderr`. */
static char *run_qbench(const char *args, bool merge_stderr, int *exit_code) {
  char *out = q8t_run_qbench(args, merge_stderr, exit_code);
  cr_assert_not_null(out, "ctest sets Q8_QBENCH to the qbench binary");
  return out;
}

Test(qbench_peak, json_parses_and_has_the_keys) {
  int code;
  char *out = run_qbench("peak --min-time 0.02 --json -", false, &code);
  cr_assert_eq(code, 0, "%s", out);
  char err[256];
  qb_jvalue *doc = qb_json_parse(out, err, sizeof err);
  cr_assert_not_null(doc, "qbench peak --json - is not JSON: %s\n%s", err, out);

  const qb_jvalue *peaks = qb_json_get(doc, "peaks");
  cr_assert(peaks && peaks->type == QB_JARRAY && peaks->count == N_ARCH_ISAS, "the ISAs of this architecture");
  for (size_t i = 0; i < peaks->count; ++i) {
    const qb_jvalue *p = peaks->items[i];
    const qb_jvalue *isa = qb_json_get(p, "isa"), *usable = qb_json_get(p, "usable");
    const qb_jvalue *gops = qb_json_get(p, "gops"), *reason = qb_json_get(p, "reason");
    cr_assert(isa && isa->type == QB_JSTRING);
    cr_assert(usable && usable->type == QB_JBOOL, "%s: usable", isa->string);
    cr_assert(gops && gops->type == QB_JNUMBER, "%s: gops", isa->string);
    cr_assert(reason && reason->type == QB_JSTRING, "%s: reason", isa->string);
    cr_expect_str_eq(isa->string, q8_isa_name(arch_isas[i]));
    cr_expect_eq(usable->boolean, q8_isa_usable(isa->string, NULL), "%s", isa->string);
    if (usable->boolean) {
      cr_expect_gt(gops->number, 0.0, "%s", isa->string);
    } else {
      cr_expect_eq(gops->number, 0.0, "%s", isa->string);
      cr_expect_str_not_empty(reason->string, "%s", isa->string);
    }
  }

  const char *levels[] = {"L1", "L2", "L3", "DRAM"};
  const qb_jvalue *bw = qb_json_get(doc, "bandwidth");
  cr_assert(bw && bw->type == QB_JARRAY && bw->count == 4, "four memory levels");
  for (size_t i = 0; i < bw->count; ++i) {
    const qb_jvalue *level = qb_json_get(bw->items[i], "level");
    const qb_jvalue *bytes = qb_json_get(bw->items[i], "bytes");
    const qb_jvalue *gbps = qb_json_get(bw->items[i], "gbps");
    cr_assert(level && level->type == QB_JSTRING);
    cr_expect_str_eq(level->string, levels[i]);
    cr_assert(bytes && bytes->type == QB_JNUMBER && gbps && gbps->type == QB_JNUMBER);
    if (i == 2) {
      cr_expect_leq((size_t)bytes->number, qb_bandwidth_level_bytes(3), "L3 stream within its ladder");
    } else {
      cr_expect_eq((size_t)bytes->number, qb_bandwidth_level_bytes((int)i + 1), "%s", levels[i]);
    }
    cr_expect_gt(gbps->number, 0.0, "%s", levels[i]);
  }
  qb_json_free(doc);
  free(out);
}

Test(qbench_peak, table_lists_every_isa_and_level) {
  int code;
  char *out = run_qbench("peak --min-time 0.02", true, &code);
  cr_assert_eq(code, 0, "%s", out);
  for (size_t i = 0; i < sizeof arch_isas / sizeof arch_isas[0]; ++i) {
    const char *name = q8_isa_name(arch_isas[i]);
    cr_expect(strstr(out, name) != NULL, "table names %s:\n%s", name, out);
    if (!q8_isa_usable(name, NULL)) {
      char line[64];
      snprintf(line, sizeof line, "%-11s not usable: ", name);
      cr_expect(strstr(out, line) != NULL, "table says why %s is not usable:\n%s", name, out);
    }
  }
  cr_expect(strstr(out, "DRAM") && strstr(out, "L1") && strstr(out, "GB/s"), "%s", out);
  free(out);
}

Test(qbench_peak, help_and_bad_options) {
  int code;
  char *out = run_qbench("peak --help", true, &code);
  cr_expect_eq(code, 0);
  cr_expect(strstr(out, "usage: qbench peak") != NULL, "%s", out);
  cr_expect(strstr(out, "--min-time") && strstr(out, "--json"), "%s", out);
  free(out);

  const char *bad[] = {"peak --frobnicate", "peak --min-time", "peak --min-time abc",
                       "peak --min-time -1", "peak --min-time 0", "peak --json"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    out = run_qbench(bad[i], true, &code);
    cr_expect_eq(code, 2, "'qbench %s' exits %d:\n%s", bad[i], code, out);
    cr_expect(strstr(out, "qbench peak:") != NULL, "'qbench %s' says what is wrong:\n%s", bad[i],
              out);
    free(out);
  }
}
