/* q8 dispatch — CPU feature, OS-support and topology detection.
 *
 * x86-64: libcpuid for identification, raw cpuid for the leaf-7 bits it does
 * not decode, xgetbv for OS register-state support, arch_prctl for AMX.
 * aarch64: getauxval hwcaps. Everywhere: hwloc for cores and caches. */
#define _GNU_SOURCE /* syscall(), getauxval() are not in strict C17 */

#include "dispatch/cpu.h"

#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(Q8_HAVE_LIBCPUID)
#include <libcpuid.h>
#endif
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

/* ------------------------------------------------------------------ names */

static const char *const feature_names[Q8_CPU_FEATURE_COUNT] = {
    [Q8_CPU_AVX2] = "avx2",
    [Q8_CPU_FMA] = "fma",
    [Q8_CPU_AVX512F] = "avx512f",
    [Q8_CPU_AVX512BW] = "avx512bw",
    [Q8_CPU_AVX512VL] = "avx512vl",
    [Q8_CPU_AVX512VNNI] = "avx512_vnni",
    [Q8_CPU_AVX512VBMI] = "avx512vbmi",
    [Q8_CPU_AVXVNNI] = "avx_vnni",
    [Q8_CPU_AMX_TILE] = "amx_tile",
    [Q8_CPU_AMX_INT8] = "amx_int8",
    [Q8_CPU_NEON] = "neon",
    [Q8_CPU_DOTPROD] = "dotprod",
    [Q8_CPU_I8MM] = "i8mm",
    [Q8_CPU_SVE] = "sve",
};

const char *q8_cpu_feature_name(q8_cpu_feature f) {
  if ((int)f < 0 || f >= Q8_CPU_FEATURE_COUNT) return "unknown";
  return feature_names[f];
}

bool q8_cpu_usable(const q8_cpu_info *info, q8_cpu_feature f) {
  if (!info || (int)f < 0 || f >= Q8_CPU_FEATURE_COUNT) return false;
  return info->cpu_has[f] && info->os_ok[f];
}

/* snprintf into a fixed field; truncation is acceptable for display strings. */
#define SETSTR(field, ...) snprintf((field), sizeof(field), __VA_ARGS__)

/* ------------------------------------------------------------------- x86 */

#if defined(__x86_64__)

/* Not every libc ships these (asm/prctl.h gained them in Linux 5.16). */
#ifndef ARCH_GET_XCOMP_PERM
#define ARCH_GET_XCOMP_PERM 0x1022
#endif
#ifndef ARCH_REQ_XCOMP_PERM
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
#define Q8_XFEATURE_XTILEDATA 18

#define XCR0_AVX_MASK 0x6ull       /* SSE | YMM */
#define XCR0_AVX512_MASK 0xE6ull   /* SSE | YMM | opmask | ZMM_Hi256 | Hi16_ZMM */
#define XCR0_AMX_MASK (3ull << 17) /* XTILECFG | XTILEDATA */

/* Raw xgetbv so the file needs no -mxsave; only valid once OSXSAVE is set. */
static uint64_t read_xcr0(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static bool bit(uint32_t reg, int b) { return (reg >> b) & 1u; }

/* Vendor, brand and family without libcpuid (fallback when it is absent or
 * cpu_identify fails, e.g. on a CPU it considers alien). */
static void identify_raw(q8_cpu_info *out, unsigned max_leaf, uint32_t l1_eax) {
  uint32_t a, b, c, d;
  __cpuid(0, a, b, c, d);
  char v[13];
  memcpy(v, &b, 4);
  memcpy(v + 4, &d, 4);
  memcpy(v + 8, &c, 4);
  v[12] = '\0';
  SETSTR(out->vendor, "%s", v);

  if (max_leaf >= 1) {
    unsigned base_fam = (l1_eax >> 8) & 0xF, base_model = (l1_eax >> 4) & 0xF;
    out->family = (int)(base_fam == 0xF ? base_fam + ((l1_eax >> 20) & 0xFF) : base_fam);
    out->model_id = (int)(base_fam == 0x6 || base_fam == 0xF
                              ? (((l1_eax >> 16) & 0xF) << 4) + base_model
                              : base_model);
    out->stepping = (int)(l1_eax & 0xF);
  }

  if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
    uint32_t brand[12];
    for (unsigned i = 0; i < 3; i++)
      __cpuid(0x80000002u + i, brand[4 * i], brand[4 * i + 1], brand[4 * i + 2],
              brand[4 * i + 3]);
    char s[49];
    memcpy(s, brand, 48);
    s[48] = '\0';
    const char *p = s;
    while (*p == ' ') p++; /* Intel pads the brand string on the left */
    if (*p) SETSTR(out->model, "%s", p);
  }
}

/* AMX needs per-process permission for the XTILEDATA state (Linux >= 5.16);
 * without it the first tile instruction faults. Returns true if granted and
 * writes a reason otherwise. */
static bool amx_request_permission(char *reason, size_t reason_size) {
#if defined(__linux__)
  unsigned long mask = 0;
  /* Ask first: if already granted (earlier detection) skip the request. */
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mask) == 0 &&
      (mask & (1ul << Q8_XFEATURE_XTILEDATA)))
    return true;
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, Q8_XFEATURE_XTILEDATA) != 0) {
    snprintf(reason, reason_size, "arch_prctl(ARCH_REQ_XCOMP_PERM) refused: %s",
             strerror(errno));
    return false;
  }
  mask = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mask) != 0) {
    snprintf(reason, reason_size, "arch_prctl(ARCH_GET_XCOMP_PERM) failed: %s",
             strerror(errno));
    return false;
  }
  if (!(mask & (1ul << Q8_XFEATURE_XTILEDATA))) {
    snprintf(reason, reason_size, "AMX permission not granted (perm mask=0x%lx)", mask);
    return false;
  }
  return true;
#else
  snprintf(reason, reason_size, "AMX permission request is only implemented on Linux");
  return false;
#endif
}

static bool amx_deny_env(void) {
  const char *e = getenv("Q8_AMX_DENY");
  return e && *e && strcmp(e, "0") != 0;
}

static void detect_x86(q8_cpu_info *out) {
  SETSTR(out->arch, "x86_64");
  bool *has = out->cpu_has, *ok = out->os_ok;

  unsigned max_leaf = (unsigned)__get_cpuid_max(0, NULL); /* int in some clang versions */
  uint32_t a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (max_leaf >= 1) __cpuid(1, a1, b1, c1, d1);
  (void)b1;
  (void)d1;

  identify_raw(out, max_leaf, a1);

#if defined(Q8_HAVE_LIBCPUID)
  struct cpu_id_t id;
  memset(&id, 0, sizeof id);
  if (cpuid_present() && cpu_identify(NULL, &id) == 0) {
    if (id.vendor_str[0]) SETSTR(out->vendor, "%s", id.vendor_str);
    if (id.brand_str[0]) SETSTR(out->model, "%s", id.brand_str);
    /* ext_* are the display values (base + extended), as in /proc/cpuinfo. */
    out->family = id.ext_family;
    out->model_id = id.ext_model;
    out->stepping = id.stepping;
    has[Q8_CPU_AVX2] = id.flags[CPU_FEATURE_AVX2];
    has[Q8_CPU_FMA] = id.flags[CPU_FEATURE_FMA3];
    has[Q8_CPU_AVX512F] = id.flags[CPU_FEATURE_AVX512F];
    has[Q8_CPU_AVX512BW] = id.flags[CPU_FEATURE_AVX512BW];
    has[Q8_CPU_AVX512VL] = id.flags[CPU_FEATURE_AVX512VL];
    has[Q8_CPU_AVX512VNNI] = id.flags[CPU_FEATURE_AVX512VNNI];
    has[Q8_CPU_AVX512VBMI] = id.flags[CPU_FEATURE_AVX512VBMI];
  }
#endif

  /* Raw cpuid is OR-ed in: libcpuid 0.6 decodes leaf 7 only for Intel, so it
   * reports no AVX-512 at all on AMD Zen 4, and knows nothing of AVX-VNNI/AMX. */
  if (max_leaf >= 1) has[Q8_CPU_FMA] |= bit(c1, 12);
  if (max_leaf >= 7) {
    uint32_t a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    has[Q8_CPU_AVX2] |= bit(b, 5);
    has[Q8_CPU_AVX512F] |= bit(b, 16);
    has[Q8_CPU_AVX512BW] |= bit(b, 30);
    has[Q8_CPU_AVX512VL] |= bit(b, 31);
    has[Q8_CPU_AVX512VNNI] |= bit(c, 11);
    has[Q8_CPU_AVX512VBMI] |= bit(c, 1);
    has[Q8_CPU_AMX_TILE] = bit(d, 24);
    has[Q8_CPU_AMX_INT8] = bit(d, 25);
    if (a >= 1) { /* EAX of sub-leaf 0 = highest valid sub-leaf */
      uint32_t a71, b71, c71, d71;
      __cpuid_count(7, 1, a71, b71, c71, d71);
      (void)b71;
      (void)c71;
      (void)d71;
      has[Q8_CPU_AVXVNNI] = bit(a71, 4);
    }
  }

  /* The OS must save/restore the wider registers, or using them corrupts
   * state across context switches (the CPU then raises #UD). */
  bool osxsave = max_leaf >= 1 && bit(c1, 27);
  out->xcr0 = osxsave ? read_xcr0() : 0;
  bool avx_state = osxsave && (out->xcr0 & XCR0_AVX_MASK) == XCR0_AVX_MASK;
  bool avx512_state = osxsave && (out->xcr0 & XCR0_AVX512_MASK) == XCR0_AVX512_MASK;
  bool amx_state = osxsave && (out->xcr0 & XCR0_AMX_MASK) == XCR0_AMX_MASK;

  char why_avx[96], why_avx512[96], why_amx[96];
  if (!osxsave) {
    SETSTR(why_avx, "OS does not enable XSAVE (CPUID.1:ECX.OSXSAVE=0)");
    SETSTR(why_avx512, "%s", why_avx);
    SETSTR(why_amx, "%s", why_avx);
  } else {
    SETSTR(why_avx, "OS does not enable AVX state (XCR0=0x%llx)",
           (unsigned long long)out->xcr0);
    SETSTR(why_avx512, "OS does not enable AVX-512 state (XCR0=0x%llx)",
           (unsigned long long)out->xcr0);
    SETSTR(why_amx, "OS does not enable AMX tile state (XCR0=0x%llx)",
           (unsigned long long)out->xcr0);
  }

  static const q8_cpu_feature avx_feats[] = {Q8_CPU_AVX2, Q8_CPU_FMA, Q8_CPU_AVXVNNI};
  static const q8_cpu_feature avx512_feats[] = {Q8_CPU_AVX512F, Q8_CPU_AVX512BW,
                                                Q8_CPU_AVX512VL, Q8_CPU_AVX512VNNI,
                                                Q8_CPU_AVX512VBMI};
  for (size_t i = 0; i < sizeof avx_feats / sizeof avx_feats[0]; i++) {
    q8_cpu_feature f = avx_feats[i];
    ok[f] = has[f] && avx_state;
    if (has[f] && !avx_state) SETSTR(out->os_reason[f], "%s", why_avx);
  }
  for (size_t i = 0; i < sizeof avx512_feats / sizeof avx512_feats[0]; i++) {
    q8_cpu_feature f = avx512_feats[i];
    ok[f] = has[f] && avx512_state;
    if (has[f] && !avx512_state) SETSTR(out->os_reason[f], "%s", why_avx512);
  }

  /* AMX: XCR0 state, then permission. Only ask the kernel when the CPU has
   * tiles; the env override skips the syscall to test the refused path. */
  if (has[Q8_CPU_AMX_TILE]) {
    bool amx_ok = false;
    if (!amx_state) {
      /* keep why_amx */
    } else if (amx_deny_env()) {
      out->amx_denied_by_env = true;
      SETSTR(why_amx, "AMX permission denied by Q8_AMX_DENY");
    } else {
      out->amx_permission = amx_request_permission(why_amx, sizeof why_amx);
      amx_ok = out->amx_permission;
    }
    static const q8_cpu_feature amx_feats[] = {Q8_CPU_AMX_TILE, Q8_CPU_AMX_INT8};
    for (size_t i = 0; i < 2; i++) {
      q8_cpu_feature f = amx_feats[i];
      ok[f] = has[f] && amx_ok;
      if (has[f] && !amx_ok) SETSTR(out->os_reason[f], "%s", why_amx);
    }
  }
  /* AMX-INT8 without AMX-TILE is not a real configuration; stays !os_ok. */
}

#endif /* __x86_64__ */

/* --------------------------------------------------------------- aarch64 */

#if defined(__aarch64__)

#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1ul << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef HWCAP_SVE
#define HWCAP_SVE (1ul << 22)
#endif
#ifndef HWCAP_CPUID
#define HWCAP_CPUID (1ul << 11)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1ul << 13)
#endif

static const char *arm_implementer_name(unsigned long imp) {
  switch (imp) {
  case 0x41: return "ARM";
  case 0x42: return "Broadcom";
  case 0x43: return "Cavium";
  case 0x46: return "Fujitsu";
  case 0x48: return "HiSilicon";
  case 0x4e: return "NVIDIA";
  case 0x51: return "Qualcomm";
  case 0x61: return "Apple";
  case 0xc0: return "Ampere";
  default: return NULL;
  }
}

/* Names of common Arm Ltd. cores (implementer 0x41) seen in servers/boards. */
static const char *arm_part_name(unsigned long part) {
  switch (part) {
  case 0xd03: return "Cortex-A53";
  case 0xd05: return "Cortex-A55";
  case 0xd08: return "Cortex-A72";
  case 0xd0b: return "Cortex-A76";
  case 0xd0c: return "Neoverse-N1";
  case 0xd40: return "Neoverse-V1";
  case 0xd41: return "Cortex-A78";
  case 0xd44: return "Cortex-X1";
  case 0xd49: return "Neoverse-N2";
  case 0xd4f: return "Neoverse-V2";
  default: return NULL;
  }
}

/* First "CPU implementer"/"CPU part" of /proc/cpuinfo; best effort only.
 * qemu-user passes the host's /proc/cpuinfo through: an aarch64 process that
 * reads an x86 "vendor_id" line there runs emulated. The core qemu models is
 * then read from MIDR_EL1 (the kernel or qemu emulates the read, HWCAP_CPUID). */
static void arm_identify(q8_cpu_info *out) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[256];
  long imp = -1, part = -1;
  bool host_is_x86 = false;
  while (fgets(line, sizeof line, f) && (imp < 0 || part < 0)) {
    const char *colon = strchr(line, ':');
    if (!colon) continue;
    if (imp < 0 && strncmp(line, "CPU implementer", 15) == 0)
      imp = strtol(colon + 1, NULL, 0);
    else if (part < 0 && strncmp(line, "CPU part", 8) == 0)
      part = strtol(colon + 1, NULL, 0);
    else if (strncmp(line, "vendor_id", 9) == 0)
      host_is_x86 = true;
  }
  fclose(f);
  if (host_is_x86) {
    SETSTR(out->emulated, "qemu-user (the host's /proc/cpuinfo is x86)");
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_CPUID) {
      uint64_t midr;
      __asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
      imp = (long)((midr >> 24) & 0xff);
      part = (long)((midr >> 4) & 0xfff);
    }
#endif
  }
  if (imp >= 0) {
    const char *n = arm_implementer_name((unsigned long)imp);
    if (n) SETSTR(out->vendor, "%s", n);
    else SETSTR(out->vendor, "0x%02lx", imp);
  }
  if (part >= 0) {
    const char *n = imp == 0x41 ? arm_part_name((unsigned long)part) : NULL;
    if (n) SETSTR(out->model, "%s", n);
    else SETSTR(out->model, "part 0x%03lx", part);
  }
}

static void detect_arm(q8_cpu_info *out) {
  SETSTR(out->arch, "aarch64");
  arm_identify(out);
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  out->cpu_has[Q8_CPU_NEON] = (hw & HWCAP_ASIMD) != 0;
  out->cpu_has[Q8_CPU_DOTPROD] = (hw & HWCAP_ASIMDDP) != 0;
  out->cpu_has[Q8_CPU_SVE] = (hw & HWCAP_SVE) != 0;
  out->cpu_has[Q8_CPU_I8MM] = (hw2 & HWCAP2_I8MM) != 0;
#else
  out->cpu_has[Q8_CPU_NEON] = true; /* Advanced SIMD is mandatory in AArch64 */
#endif
  /* The kernel advertises a hwcap only if it also enables the state. */
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; f++) out->os_ok[f] = out->cpu_has[f];
}

#endif /* __aarch64__ */

/* -------------------------------------------------------------- topology */

static size_t cache_size(hwloc_topology_t topo, hwloc_obj_type_t type) {
  hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, 0);
  return (o && o->attr) ? (size_t)o->attr->cache.size : 0;
}

static int count_objs(hwloc_topology_t topo, hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(topo, type);
  return n > 0 ? n : 0; /* -1 means "at several depths": unknown */
}

static void detect_topology(q8_cpu_info *out) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) {
    SETSTR(out->topology_error, "hwloc_topology_init failed: %s", strerror(errno));
    return;
  }
  if (hwloc_topology_load(topo) != 0) {
    SETSTR(out->topology_error, "hwloc_topology_load failed: %s", strerror(errno));
    hwloc_topology_destroy(topo);
    return;
  }
  /* hwloc restricts to the allowed cpuset (cgroups, taskset) by default,
   * which is what thread counts should follow. */
  out->cores = count_objs(topo, HWLOC_OBJ_CORE);
  out->pus = count_objs(topo, HWLOC_OBJ_PU);
  out->packages = count_objs(topo, HWLOC_OBJ_PACKAGE);
  /* Some platforms/VMs expose no Core objects; each PU is then a core. */
  if (out->cores == 0) out->cores = out->pus;
  /* HWLOC_OBJ_L1CACHE is data/unified only (instruction caches have their
   * own types), so the first one is an L1d. */
  out->l1d_bytes = cache_size(topo, HWLOC_OBJ_L1CACHE);
  out->l2_bytes = cache_size(topo, HWLOC_OBJ_L2CACHE);
  out->l3_bytes = cache_size(topo, HWLOC_OBJ_L3CACHE);
  hwloc_topology_destroy(topo);
}

/* ------------------------------------------------------------ public API */

void q8_cpu_detect(q8_cpu_info *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  SETSTR(out->vendor, "unknown");
  SETSTR(out->model, "unknown");
  out->family = out->model_id = out->stepping = -1;

#if defined(__x86_64__)
  detect_x86(out);
#elif defined(__aarch64__)
  detect_arm(out);
#elif defined(__riscv)
  SETSTR(out->arch, "riscv64");
#elif defined(__powerpc64__)
  SETSTR(out->arch, "ppc64");
#elif defined(__i386__)
  SETSTR(out->arch, "i386");
#else
  SETSTR(out->arch, "unknown");
#endif

  detect_topology(out);
}

static q8_cpu_info g_cpu;
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;

static void detect_once(void) { q8_cpu_detect(&g_cpu); }

const q8_cpu_info *q8_cpu(void) {
  pthread_once(&g_cpu_once, detect_once);
  return &g_cpu;
}

size_t q8_cpu_l2_bytes(void) {
  const size_t l2 = q8_cpu()->l2_bytes;
  return l2 ? l2 : (size_t)1 << 20;
}
