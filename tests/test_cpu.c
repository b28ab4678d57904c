/* Tests for dispatch/cpu.c: feature detection, OS support, topology. */
#define _GNU_SOURCE /* setenv */

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/cpu.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

Test(cpu, singleton_is_stable) {
  const q8_cpu_info *a = q8_cpu();
  cr_assert_not_null(a);
  cr_assert_eq(a, q8_cpu(), "q8_cpu() must return the same object every call");
  cr_assert_neq(a->arch[0], '\0', "arch must be set");
  cr_assert_neq(a->vendor[0], '\0');
  cr_assert_neq(a->model[0], '\0');
}

static void *call_q8_cpu(void *arg) {
  (void)arg;
  return (void *)q8_cpu();
}

Test(cpu, singleton_thread_safe) {
  enum { N = 8 };
  pthread_t t[N];
  for (int i = 0; i < N; i++) cr_assert_eq(pthread_create(&t[i], NULL, call_q8_cpu, NULL), 0);
  for (int i = 0; i < N; i++) {
    void *r = NULL;
    pthread_join(t[i], &r);
    cr_assert_eq(r, (void *)q8_cpu(), "thread %d saw a different q8_cpu() pointer", i);
  }
}

Test(cpu, topology_sane) {
  const q8_cpu_info *c = q8_cpu();
  cr_assert_eq(c->topology_error[0], '\0', "hwloc failed: %s", c->topology_error);
  cr_assert_geq(c->cores, 1);
  cr_assert_geq(c->pus, c->cores, "pus %d < cores %d", c->pus, c->cores);
  cr_assert_geq(c->packages, 1);
#if defined(__x86_64__)
  cr_assert_gt(c->l1d_bytes, 0);
  cr_assert_gt(c->l2_bytes, 0);
  /* Per-instance sizes: an L1d is never larger than the L2 behind it. */
  cr_assert_leq(c->l1d_bytes, c->l2_bytes);
#endif
}

Test(cpu, fresh_detect_matches_singleton) {
  q8_cpu_info info;
  q8_cpu_detect(&info);
  const q8_cpu_info *c = q8_cpu();
  cr_assert_str_eq(info.arch, c->arch);
  cr_assert_str_eq(info.vendor, c->vendor);
  cr_assert_eq(info.cores, c->cores);
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; f++) {
    cr_assert_eq(info.cpu_has[f], c->cpu_has[f], "%s", q8_cpu_feature_name(f));
    cr_assert_eq(info.os_ok[f], c->os_ok[f], "%s", q8_cpu_feature_name(f));
  }
}

Test(cpu, os_ok_implies_cpu_has) {
  const q8_cpu_info *c = q8_cpu();
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; f++) {
    const char *n = q8_cpu_feature_name(f);
    if (c->os_ok[f]) cr_assert(c->cpu_has[f], "%s os_ok without cpu_has", n);
    cr_assert_eq(q8_cpu_usable(c, f), c->cpu_has[f] && c->os_ok[f], "%s", n);
    /* A reason is given exactly when the CPU has it but the OS blocks it. */
    bool blocked = c->cpu_has[f] && !c->os_ok[f];
    cr_assert_eq(c->os_reason[f][0] != '\0', blocked, "%s reason '%s'", n, c->os_reason[f]);
  }
  cr_assert_not(q8_cpu_usable(NULL, Q8_CPU_AVX2));
  cr_assert_not(q8_cpu_usable(c, Q8_CPU_FEATURE_COUNT));
}

Test(cpu, feature_names_unique) {
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; f++) {
    const char *a = q8_cpu_feature_name(f);
    cr_assert_not_null(a);
    cr_assert_neq(a[0], '\0', "feature %d has an empty name", f);
    for (int g = 0; g < f; g++)
      cr_assert_str_neq(a, q8_cpu_feature_name(g), "features %d and %d share a name", f, g);
  }
  cr_assert_str_eq(q8_cpu_feature_name(Q8_CPU_AVX512VNNI), "avx512_vnni");
  cr_assert_str_eq(q8_cpu_feature_name(Q8_CPU_AVXVNNI), "avx_vnni");
  cr_assert_str_eq(q8_cpu_feature_name(Q8_CPU_AMX_INT8), "amx_int8");
  cr_assert_not_null(q8_cpu_feature_name(Q8_CPU_FEATURE_COUNT));
}

Test(cpu, amx_deny_env) {
  setenv("Q8_AMX_DENY", "1", 1); /* each Criterion test is its own process */
  q8_cpu_info info;
  q8_cpu_detect(&info);
  cr_assert_not(info.os_ok[Q8_CPU_AMX_TILE]);
  cr_assert_not(info.os_ok[Q8_CPU_AMX_INT8]);
  cr_assert_not(info.amx_permission);
#if defined(__x86_64__)
  bool amx_state = (info.xcr0 & (3ull << 17)) == (3ull << 17);
  if (info.cpu_has[Q8_CPU_AMX_TILE] && amx_state) {
    cr_assert(info.amx_denied_by_env);
    cr_assert_not_null(strstr(info.os_reason[Q8_CPU_AMX_TILE], "Q8_AMX_DENY"), "reason '%s'",
                       info.os_reason[Q8_CPU_AMX_TILE]);
  }
  if (info.cpu_has[Q8_CPU_AMX_INT8] && amx_state)
    cr_assert_not_null(strstr(info.os_reason[Q8_CPU_AMX_INT8], "Q8_AMX_DENY"));
#endif
}

Test(cpu, no_foreign_features) {
  const q8_cpu_info *c = q8_cpu();
#if defined(__x86_64__)
  cr_assert_str_eq(c->arch, "x86_64");
  for (int f = Q8_CPU_NEON; f <= Q8_CPU_SVE; f++)
    cr_assert_not(c->cpu_has[f], "x86 reports Arm feature %s", q8_cpu_feature_name(f));
#elif defined(__aarch64__)
  cr_assert_str_eq(c->arch, "aarch64");
  cr_assert(c->cpu_has[Q8_CPU_NEON], "AArch64 always has Advanced SIMD");
  for (int f = Q8_CPU_AVX2; f <= Q8_CPU_AMX_INT8; f++)
    cr_assert_not(c->cpu_has[f], "Arm reports x86 feature %s", q8_cpu_feature_name(f));
#endif
}

#if defined(__x86_64__)

/* Independent XCR0 read for cross-checking (OSXSAVE must be set first). */
static unsigned long long test_xcr0(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0;
  unsigned lo, hi;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

Test(cpu_x86, xcr0_and_avx512_state) {
  const q8_cpu_info *c = q8_cpu();
  cr_assert_eq(c->xcr0, test_xcr0(), "xcr0 0x%llx vs 0x%llx", (unsigned long long)c->xcr0,
               test_xcr0());
  const q8_cpu_feature z[] = {Q8_CPU_AVX512F, Q8_CPU_AVX512BW, Q8_CPU_AVX512VL,
                              Q8_CPU_AVX512VNNI};
  for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
    if (c->os_ok[z[i]])
      cr_assert_eq(c->xcr0 & 0xE6, 0xE6, "%s os_ok with XCR0=0x%llx",
                   q8_cpu_feature_name(z[i]), (unsigned long long)c->xcr0);
  if (c->os_ok[Q8_CPU_AVX2]) cr_assert_eq(c->xcr0 & 0x6, 0x6);
  if (c->os_ok[Q8_CPU_AMX_TILE]) {
    cr_assert_eq((c->xcr0 >> 17) & 3, 3);
    cr_assert(c->amx_permission);
  }
}

/* GCC/clang's __builtin_cpu_supports checks CPU *and* OS (XCR0) support, so it
 * is compared with usable = cpu_has && os_ok, not with cpu_has alone. */
Test(cpu_x86, agrees_with_builtin_cpu_supports) {
  __builtin_cpu_init();
  const q8_cpu_info *c = q8_cpu();
  struct {
    q8_cpu_feature f;
    bool gcc;
  } t[] = {
      {Q8_CPU_AVX2, __builtin_cpu_supports("avx2")},
      {Q8_CPU_FMA, __builtin_cpu_supports("fma")},
      {Q8_CPU_AVX512F, __builtin_cpu_supports("avx512f")},
      {Q8_CPU_AVX512BW, __builtin_cpu_supports("avx512bw")},
      {Q8_CPU_AVX512VL, __builtin_cpu_supports("avx512vl")},
      {Q8_CPU_AVX512VNNI, __builtin_cpu_supports("avx512vnni")},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    const char *n = q8_cpu_feature_name(t[i].f);
    cr_assert_eq(q8_cpu_usable(c, t[i].f), t[i].gcc, "%s: q8 usable=%d, compiler=%d", n,
                 q8_cpu_usable(c, t[i].f), t[i].gcc);
    if (t[i].gcc) cr_assert(c->cpu_has[t[i].f], "%s", n);
  }
}

/* True if /proc/cpuinfo's first "flags" line lists `flag`; -1 if unreadable. */
static int cpuinfo_flag(const char *flag) {
  FILE *fp = fopen("/proc/cpuinfo", "r");
  if (!fp) return -1;
  static char line[8192];
  int found = -1;
  while (fgets(line, sizeof line, fp)) {
    if (strncmp(line, "flags", 5) != 0) continue;
    char *colon = strchr(line, ':');
    found = 0;
    if (!colon) break;
    for (char *tok = strtok(colon + 1, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
      if (strcmp(tok, flag) == 0) found = 1;
    break;
  }
  fclose(fp);
  return found;
}

/* The kernel lists a flag only if the CPU has it (an old kernel may not know
 * a flag at all), so the check is one way: listed => cpu_has. */
Test(cpu_x86, agrees_with_proc_cpuinfo) {
  const q8_cpu_info *c = q8_cpu();
  const struct {
    q8_cpu_feature f;
    const char *flag;
  } t[] = {{Q8_CPU_AVX2, "avx2"},         {Q8_CPU_AVX512F, "avx512f"},
           {Q8_CPU_AVX512VNNI, "avx512_vnni"}, {Q8_CPU_AVXVNNI, "avx_vnni"},
           {Q8_CPU_AMX_TILE, "amx_tile"}, {Q8_CPU_AMX_INT8, "amx_int8"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    int listed = cpuinfo_flag(t[i].flag);
    if (listed < 0) cr_skip_test("/proc/cpuinfo not readable");
    if (listed == 1)
      cr_assert(c->cpu_has[t[i].f], "/proc/cpuinfo lists %s but cpu_has is false", t[i].flag);
  }
}

#endif /* __x86_64__ */
