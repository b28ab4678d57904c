/* q8 dispatch — what this CPU and OS can run, and its topology.
 * Internal to the library and qbench (not installed). */
#ifndef Q8_DISPATCH_CPU_H
#define Q8_DISPATCH_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum q8_cpu_feature {
  Q8_CPU_AVX2 = 0,
  Q8_CPU_FMA,
  Q8_CPU_AVX512F,
  Q8_CPU_AVX512BW,
  Q8_CPU_AVX512VL,
  Q8_CPU_AVX512VNNI,
  Q8_CPU_AVX512VBMI, /* vpermb: byte permutes (the strided conv gather) */
  Q8_CPU_AVXVNNI,   /* VEX-encoded vpdpbusd (CPUID.(7,1):EAX[4]) */
  Q8_CPU_AMX_TILE,
  Q8_CPU_AMX_INT8,
  Q8_CPU_NEON,      /* HWCAP_ASIMD */
  Q8_CPU_DOTPROD,   /* HWCAP_ASIMDDP */
  Q8_CPU_I8MM,      /* HWCAP2_I8MM */
  Q8_CPU_SVE,       /* HWCAP_SVE */
  Q8_CPU_FEATURE_COUNT
} q8_cpu_feature;

typedef struct q8_cpu_info {
  char arch[16];     /* "x86_64", "aarch64", or the compiler's name for others */
  char vendor[32];   /* "GenuineIntel", "AuthenticAMD", Arm implementer name, ... */
  char model[96];    /* brand string, or "unknown" */
  int family, model_id, stepping; /* x86 only; -1 where unknown */

  bool cpu_has[Q8_CPU_FEATURE_COUNT]; /* the CPU reports the feature */
  bool os_ok[Q8_CPU_FEATURE_COUNT];   /* the OS enables its register state
                                         (XCR0; AMX: also arch_prctl permission) */
  /* Why a feature the CPU has is not usable (empty when usable or absent). */
  char os_reason[Q8_CPU_FEATURE_COUNT][96];

  uint64_t xcr0;                /* x86: XCR0 via xgetbv, 0 if no OSXSAVE */
  bool amx_permission;          /* x86: ARCH_REQ_XCOMP_PERM granted for XTILEDATA */
  bool amx_denied_by_env;       /* Q8_AMX_DENY=1 pretended the OS refused */

  /* Topology from hwloc (0 where unknown). Cache sizes are per instance. */
  int cores;                    /* physical cores */
  int pus;                      /* hardware threads */
  int packages;
  size_t l1d_bytes, l2_bytes, l3_bytes;
  char topology_error[128];     /* non-empty if hwloc failed; sizes then 0 */

  /* Non-empty when the process runs under a user-mode emulator (qemu-user):
   * what gave it away. Timings are then not a statement about any CPU. */
  char emulated[96];
} q8_cpu_info;

/* Detected once per process (thread-safe); never NULL. */
const q8_cpu_info *q8_cpu(void);
/* Fresh detection into *out (honours Q8_AMX_DENY at the time of the call). */
void q8_cpu_detect(q8_cpu_info *out);
/* Short lower-case name used in `qbench info` and JSON: "avx2", "avx512_vnni",
 * "avx_vnni", "amx_int8", "neon", "dotprod", "i8mm", "sve", ... */
const char *q8_cpu_feature_name(q8_cpu_feature f);
/* cpu_has && os_ok */
bool q8_cpu_usable(const q8_cpu_info *info, q8_cpu_feature f);
/* L2 bytes per instance from hwloc, or 1 MiB where unknown: what the plans
 * size their cache blocks from. */
size_t q8_cpu_l2_bytes(void);

#endif
