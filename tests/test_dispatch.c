#define _POSIX_C_SOURCE 200809L /* setenv, popen */
/* Dispatch: the registry, ISA forcing through Q8_ISA and q8_set_isa, and
 * `qbench info --json`. Criterion runs each test in its own process, so a
 * test may set Q8_ISA before q8 first reads it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"
#include "tests/support/q8test.h"

static const char *const all_isas[] = {"ref", "hwy", "avx2", "avxvnni", "avx512vnni",
                                       "amx", "neon", "neondot", "neoni8mm"};

Test(registry, names_follow_the_grammar) {
  size_t count;
  const q8_kernel *k = q8_kernels(&count);
  cr_assert_gt(count, 0);
  for (size_t i = 0; i < count; ++i) {
    char want_prefix[32], want_suffix[32];
    snprintf(want_prefix, sizeof want_prefix, "q8_%s_", q8_op_name(k[i].op));
    snprintf(want_suffix, sizeof want_suffix, "__%s", q8_isa_name(k[i].isa));
    const size_t len = strlen(k[i].name), slen = strlen(want_suffix);
    cr_expect(strncmp(k[i].name, want_prefix, strlen(want_prefix)) == 0, "%s", k[i].name);
    cr_expect(len > slen && strcmp(k[i].name + len - slen, want_suffix) == 0, "%s", k[i].name);
    for (size_t j = 0; j < i; ++j) cr_expect_str_neq(k[i].name, k[j].name, "duplicate");
    if (k[i].op == Q8_OP_GEMM) {
      char tile[32];
      snprintf(tile, sizeof tile, "_%ux%uc%u__", k[i].mr, k[i].nr, k[i].kr);
      cr_expect(strstr(k[i].name, tile) != NULL, "%s should carry its tile %s", k[i].name, tile);
      const bool whole_range = k[i].gemm.run && k[i].gemm.pack && k[i].gemm.packed_bytes;
      const bool micro = k[i].ukernel && k[i].ukernel->run && k[i].ukernel->pack &&
                         strcmp(k[i].ukernel->name, k[i].name) == 0;
      cr_expect(whole_range != micro, "%s: a micro-kernel (named as registered) or whole-range functions",
                k[i].name);
    }
  }
  for (int op = 0; op < Q8_OP_COUNT; ++op) {
    cr_expect_not_null(q8_select_kernel_for((q8_op)op, Q8_ISA_REF), "every op has a ref kernel");
  }
}

Test(isa, set_isa_accepts_usable_and_rejects_others) {
  for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; ++i) {
    const char *reason = NULL;
    const bool usable = q8_isa_usable(all_isas[i], &reason);
    const q8_status s = q8_set_isa(all_isas[i]);
    if (usable) {
      cr_expect_eq(s, Q8_OK, "%s: %s", all_isas[i], q8_error_detail());
      cr_expect_str_eq(q8_forced_isa(), all_isas[i]);
    } else {
      cr_expect_eq(s, Q8_ERR_ISA, "%s is not usable here (%s) yet was accepted", all_isas[i], reason);
      cr_expect(strstr(q8_error_detail(), reason) != NULL, "detail '%s' gives the reason '%s'",
                q8_error_detail(), reason);
      cr_expect(strstr(q8_error_detail(), "usable here: ref, hwy") != NULL, "lists usable ISAs");
    }
  }
  cr_expect_eq(q8_set_isa(NULL), Q8_OK);
  cr_expect_null(q8_forced_isa());
}

Test(isa, unknown_name_is_an_error_that_changes_nothing) {
  cr_assert_eq(q8_set_isa("ref"), Q8_OK);
  cr_expect_eq(q8_set_isa("avx9000"), Q8_ERR_ISA);
  cr_expect(strstr(q8_error_detail(), "'avx9000' is not an ISA") != NULL, "%s", q8_error_detail());
  cr_expect_str_eq(q8_forced_isa(), "ref", "a failed call keeps the previous choice");
  cr_expect_eq(q8_set_isa(""), Q8_OK);
  cr_expect_null(q8_forced_isa());
}

static const char *plan_kernel(void) {
  static int8_t w[4 * 4];
  static char name[96];
  const q8_gemm_desc d = {.m = 1, .n = 4, .k = 4, .a_dtype = Q8_INT8, .weights = w,
                          .out_dtype = Q8_INT32};
  q8_gemm_plan *plan = NULL;
  if (q8_gemm_plan_create(&d, &plan) != Q8_OK) return NULL;
  snprintf(name, sizeof name, "%s", q8_gemm_plan_kernel(plan));
  q8_gemm_plan_destroy(plan);
  return name;
}

Test(isa, env_forces_ref) {
  setenv("Q8_ISA", "ref", 1);
  cr_expect_str_eq(q8_forced_isa(), "ref");
  cr_expect_str_eq(plan_kernel(), "q8_gemm_x8s8_1x1c1__ref");
  for (int op = 0; op < Q8_OP_COUNT; ++op) {
    cr_expect_eq(q8_select_kernel((q8_op)op)->isa, Q8_ISA_REF, "%s", q8_op_name((q8_op)op));
  }
}

/* Forcing an ISA (q8_set_isa, as Q8_ISA does once at start-up) runs that
 * ISA's GEMM micro-kernel wherever the registry has one (neondot, neoni8mm
 * under qemu -cpu max; the x86 ones natively). */
Test(isa, env_forces_each_isas_gemm_kernel) {
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; ++i) {
    const char *reason = NULL;
    if (!q8_isa_usable(all_isas[i], &reason)) {
      cr_log_info("Q8_ISA=%s: not usable here (%s)", all_isas[i], reason);
      continue;
    }
    const char *want = NULL;
    for (size_t j = 0; j < count && want == NULL; ++j) {
      if (all[j].op == Q8_OP_GEMM && strcmp(q8_isa_name(all[j].isa), all_isas[i]) == 0) {
        want = all[j].name;
      }
    }
    if (want == NULL) {
      cr_log_info("Q8_ISA=%s: no GEMM kernel of that ISA (falls back)", all_isas[i]);
      continue;
    }
    cr_assert_eq(q8_set_isa(all_isas[i]), Q8_OK, "%s", q8_error_detail());
    const char *got = plan_kernel();
    cr_expect(got != NULL && strcmp(got, want) == 0, "Q8_ISA=%s: plan runs %s, want %s",
              all_isas[i], got ? got : "(no plan)", want);
    cr_log_info("Q8_ISA=%s: %s", all_isas[i], got ? got : "(no plan)");
  }
  cr_expect_eq(q8_set_isa(NULL), Q8_OK);
}

Test(isa, env_forces_hwy_for_elementwise_ops) {
  setenv("Q8_ISA", "hwy", 1);
  cr_expect_eq(q8_select_kernel(Q8_OP_REQUANTIZE)->isa, Q8_ISA_HWY);
  cr_expect_eq(q8_select_kernel(Q8_OP_QUANTIZE)->isa, Q8_ISA_HWY);
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  bool hwy_gemm = false;
  for (size_t i = 0; i < count; ++i) hwy_gemm |= all[i].op == Q8_OP_GEMM && all[i].isa == Q8_ISA_HWY;
  cr_expect_eq(q8_select_kernel(Q8_OP_GEMM)->isa, hwy_gemm ? Q8_ISA_HWY : Q8_ISA_REF,
               "GEMM under Q8_ISA=hwy: the hwy kernel, or ref where there is none");
  cr_expect_eq(q8_select_gemm_kernel(1, true)->isa, Q8_ISA_REF, "weight zero points: ref only");
}

Test(isa, bad_env_is_an_error_not_a_fallback) {
  setenv("Q8_ISA", "bogus", 1);
  cr_expect_null(plan_kernel(), "plan creation must fail");
  q8_gemm_plan *plan = NULL;
  int8_t w[4] = {0};
  const q8_gemm_desc d = {.m = 1, .n = 1, .k = 4, .a_dtype = Q8_INT8, .weights = w, .out_dtype = Q8_INT32};
  cr_expect_eq(q8_gemm_plan_create(&d, &plan), Q8_ERR_ISA);
  cr_expect(strstr(q8_error_detail(), "Q8_ISA='bogus'") != NULL, "%s", q8_error_detail());
  float x = 1.f, s = 1.f;
  int8_t y;
  const q8_quant_params qp = {Q8_INT8, 1, &s, NULL};
  cr_expect_eq(q8_quantize(&x, 1, 1, &qp, q8_profile_get(Q8_PROFILE_ONNX), &y), Q8_ERR_ISA);
  cr_expect_eq(q8_set_isa(NULL), Q8_OK, "an explicit call clears the bad environment");
  cr_expect_not_null(plan_kernel());
}

Test(isa, forcing_avx2_caps_highway) {
  if (!q8_isa_usable("avx2", NULL)) {
    cr_skip_test("avx2 is not usable on this CPU");
  }
  setenv("Q8_ISA", "avx2", 1);
  cr_expect_str_eq(q8_forced_isa(), "avx2");
  cr_expect_str_eq(q8_hwy_target(), "AVX2", "Q8_ISA=avx2 must not run AVX-512 code in Highway");
  cr_expect_eq(q8_set_isa(NULL), Q8_OK);
  cr_expect_str_neq(q8_hwy_target(), "", "restored");
}

/* ---- Armv8.0 NEON GEMM (armneon) ---- */
Test(isa, env_forces_neon_gemm) {
  const char *reason = NULL;
  if (!q8_isa_usable("neon", &reason)) {
    cr_log_info("neon is not usable here (%s): Q8_ISA=neon not checked", reason);
    cr_skip_test("neon is not usable on this CPU");
  }
  setenv("Q8_ISA", "neon", 1);
  cr_expect_str_eq(q8_forced_isa(), "neon");
  cr_expect_str_eq(plan_kernel(), "q8_gemm_x8s8_4x4c16__neon");
  cr_expect_eq(q8_select_kernel(Q8_OP_GEMM)->isa, Q8_ISA_NEON);
  cr_expect_eq(q8_select_gemm_kernel(1, true)->isa, Q8_ISA_REF, "weight zero points: ref only");
  cr_expect_eq(q8_set_isa(NULL), Q8_OK);
  /* Automatic choice on a core without dot products (QEMU_CPU=cortex-a53). */
  if (q8_isa_usable("neondot", NULL)) {
    cr_log_info("dotprod usable: automatic choice of the NEON kernel not checked");
  } else {
    cr_expect_str_eq(plan_kernel(), "q8_gemm_x8s8_4x4c16__neon");
  }
}

/* ---- qbench info through the real binary ---- */
static char *run_qbench(const char *args, int *exit_code) {
  char *out = q8t_run_qbench(args, true, exit_code);
  cr_assert_not_null(out, "ctest sets Q8_QBENCH to the qbench binary");
  return out;
}

Test(qbench_info, json_parses_and_has_the_keys) {
  int code;
  char *out = run_qbench("info --json", &code);
  cr_assert_eq(code, 0, "%s", out);
  char err[256];
  qb_jvalue *doc = qb_json_parse(out, err, sizeof err);
  cr_assert_not_null(doc, "qbench info --json is not JSON: %s\n%s", err, out);
  cr_expect_eq(qb_json_get(doc, "version")->type, QB_JSTRING);
  const qb_jvalue *cpu = qb_json_get(doc, "cpu");
  cr_assert_not_null(cpu);
  cr_expect_eq(qb_json_get(cpu, "vendor")->type, QB_JSTRING);
  cr_expect_eq(qb_json_get(cpu, "model")->type, QB_JSTRING);
  cr_expect_eq(qb_json_get(cpu, "features")->type, QB_JARRAY);
  const qb_jvalue *topo = qb_json_get(doc, "topology");
  cr_assert_not_null(topo);
  cr_expect_geq(qb_json_get(topo, "cores")->number, 1);
  const char *cache_keys[] = {"l1d_bytes", "l2_bytes", "l3_bytes"};
  for (int i = 0; i < 3; ++i) cr_expect_eq(qb_json_get(topo, cache_keys[i])->type, QB_JNUMBER);
  const qb_jvalue *isas = qb_json_get(doc, "isas");
  cr_assert(isas && isas->type == QB_JARRAY && isas->count == 9, "nine ISAs");
  for (size_t i = 0; i < isas->count; ++i) {
    const char *name = qb_json_get(isas->items[i], "name")->string;
    const bool usable = qb_json_get(isas->items[i], "usable")->boolean;
    cr_expect_eq(usable, q8_isa_usable(name, NULL), "%s usable in JSON vs library", name);
    cr_expect_eq(qb_json_get(isas->items[i], "reason")->type, QB_JSTRING);
  }
  const qb_jvalue *selected = qb_json_get(doc, "selected");
  cr_assert_not_null(selected);
  for (int op = 0; op < Q8_OP_COUNT; ++op) {
    const qb_jvalue *k = qb_json_get(selected, q8_op_name((q8_op)op));
    cr_assert(k && k->type == QB_JSTRING && strncmp(k->string, "q8_", 3) == 0, "selected.%s",
              q8_op_name((q8_op)op));
  }
  qb_json_free(doc);
  free(out);
}

Test(qbench_info, reports_this_machines_features) {
  int code;
  char *out = run_qbench("info --json", &code);
  qb_jvalue *doc = qb_json_parse(out, NULL, 0);
  cr_assert_not_null(doc);
  const qb_jvalue *features = qb_json_get(qb_json_get(doc, "cpu"), "features");
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; ++f) {
    bool listed = false;
    for (size_t i = 0; i < features->count; ++i)
      listed |= strcmp(features->items[i]->string, q8_cpu_feature_name((q8_cpu_feature)f)) == 0;
    cr_expect_eq(listed, q8_cpu_usable(q8_cpu(), (q8_cpu_feature)f), "%s",
                 q8_cpu_feature_name((q8_cpu_feature)f));
  }
  qb_json_free(doc);
  free(out);
}

Test(qbench_info, bad_q8_isa_exits_2_with_a_message) {
  int code;
  char *out = run_qbench("info", &code);
  free(out);
  cr_assert_eq(code, 0);
  setenv("Q8_ISA", "nonsense", 1);
  out = run_qbench("info", &code);
  cr_expect_eq(code, 2);
  cr_expect(strstr(out, "Q8_ISA='nonsense' is not an ISA") != NULL, "%s", out);
  free(out);
  setenv("Q8_ISA", "ref", 1);
  out = run_qbench("info --json", &code);
  cr_expect_eq(code, 0);
  qb_jvalue *doc = qb_json_parse(out, NULL, 0);
  cr_assert_not_null(doc);
  cr_expect_str_eq(qb_json_get(doc, "forced_isa")->string, "ref");
  cr_expect_str_eq(qb_json_get(qb_json_get(doc, "selected"), "gemm")->string, "q8_gemm_x8s8_1x1c1__ref");
  qb_json_free(doc);
  free(out);
}

Test(qbench_cli, help_and_bad_options) {
  int code;
  char *out = run_qbench("--help", &code);
  cr_expect_eq(code, 0);
  cr_expect(strstr(out, "usage: qbench") != NULL);
  free(out);
  out = run_qbench("info --help", &code);
  cr_expect_eq(code, 0);
  cr_expect(strstr(out, "usage: qbench info") != NULL);
  free(out);
  out = run_qbench("info --bogus", &code);
  cr_expect_eq(code, 2);
  cr_expect(strstr(out, "unknown option '--bogus'") != NULL, "%s", out);
  free(out);
  out = run_qbench("--min-time abc", &code);
  cr_expect_eq(code, 2);
  free(out);
}
