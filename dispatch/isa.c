/* ISA names, what each needs from the CPU/OS, and the process-wide ISA choice
 * (Q8_ISA or q8_set_isa). A bad choice is an error, never a silent fallback. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "dispatch/registry.h"

static const char *const isa_names[Q8_ISA_COUNT] = {
    "ref", "hwy", "avx2", "avxvnni", "avx512vnni", "amx", "neon", "neondot", "neoni8mm"};

const char *q8_isa_name(q8_isa isa) {
  return (unsigned)isa < Q8_ISA_COUNT ? isa_names[isa] : "unknown";
}

bool q8_isa_from_name(const char *name, q8_isa *isa) {
  if (name == NULL) return false;
  for (int i = 0; i < Q8_ISA_COUNT; ++i) {
    if (strcmp(name, isa_names[i]) == 0) {
      *isa = (q8_isa)i;
      return true;
    }
  }
  return false;
}

/* Features each ISA's kernels execute; AMX kernels use AVX-512 for packing and
 * the requantization epilogue, so AMX needs the avx512vnni set as well. */
static const q8_cpu_feature isa_features[Q8_ISA_COUNT][8] = {
    [Q8_ISA_REF] = {Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_HWY] = {Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_AVX2] = {Q8_CPU_AVX2, Q8_CPU_FMA, Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_AVXVNNI] = {Q8_CPU_AVX2, Q8_CPU_FMA, Q8_CPU_AVXVNNI, Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_AVX512VNNI] = {Q8_CPU_AVX512F, Q8_CPU_AVX512BW, Q8_CPU_AVX512VL, Q8_CPU_AVX512VNNI,
                           Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_AMX] = {Q8_CPU_AMX_TILE, Q8_CPU_AMX_INT8, Q8_CPU_AVX512F, Q8_CPU_AVX512BW,
                    Q8_CPU_AVX512VL, Q8_CPU_AVX512VNNI, Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_NEON] = {Q8_CPU_NEON, Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_NEONDOT] = {Q8_CPU_NEON, Q8_CPU_DOTPROD, Q8_CPU_FEATURE_COUNT},
    [Q8_ISA_NEONI8MM] = {Q8_CPU_NEON, Q8_CPU_DOTPROD, Q8_CPU_I8MM, Q8_CPU_FEATURE_COUNT},
};

static char lacks_reason[Q8_CPU_FEATURE_COUNT][48];
static pthread_once_t lacks_once = PTHREAD_ONCE_INIT;

static void init_lacks_reasons(void) {
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; ++f) {
    snprintf(lacks_reason[f], sizeof lacks_reason[f], "CPU lacks %s",
             q8_cpu_feature_name((q8_cpu_feature)f));
  }
}

bool q8_isa_usable_on(q8_isa isa, const q8_cpu_info *cpu, const char **reason) {
  if ((unsigned)isa >= Q8_ISA_COUNT) {
    if (reason) *reason = "unknown ISA";
    return false;
  }
  pthread_once(&lacks_once, init_lacks_reasons);
  for (const q8_cpu_feature *f = isa_features[isa]; *f != Q8_CPU_FEATURE_COUNT; ++f) {
    if (!cpu->cpu_has[*f]) {
      if (reason) *reason = lacks_reason[*f];
      return false;
    }
    if (!cpu->os_ok[*f]) {
      if (reason) *reason = cpu->os_reason[*f][0] ? cpu->os_reason[*f] : "not enabled by the OS";
      return false;
    }
  }
  if (reason) *reason = "";
  return true;
}

/* A forced ISA falls back only to ISAs it builds on. avx512vnni does not
 * include avxvnni: Zen 4 has the former without the latter. */
static const q8_isa fallback_lists[Q8_ISA_COUNT][6] = {
    [Q8_ISA_REF] = {Q8_ISA_REF},
    [Q8_ISA_HWY] = {Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_AVX2] = {Q8_ISA_AVX2, Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_AVXVNNI] = {Q8_ISA_AVXVNNI, Q8_ISA_AVX2, Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_AVX512VNNI] = {Q8_ISA_AVX512VNNI, Q8_ISA_AVX2, Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_AMX] = {Q8_ISA_AMX, Q8_ISA_AVX512VNNI, Q8_ISA_AVX2, Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_NEON] = {Q8_ISA_NEON, Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_NEONDOT] = {Q8_ISA_NEONDOT, Q8_ISA_NEON, Q8_ISA_HWY, Q8_ISA_REF},
    [Q8_ISA_NEONI8MM] = {Q8_ISA_NEONI8MM, Q8_ISA_NEONDOT, Q8_ISA_NEON, Q8_ISA_HWY, Q8_ISA_REF},
};

const q8_isa *q8_isa_fallbacks(q8_isa isa, size_t *count) {
  const q8_isa *list = fallback_lists[isa];
  size_t n = 1;
  while (list[n - 1] != Q8_ISA_REF) ++n;
  *count = n;
  return list;
}

/* Forcing an ISA also caps Highway's targets at that ISA's level, so that
 * Q8_ISA=avx2 really runs no AVX-512 instruction. NULL: no cap. */
static const char *const *hwy_targets_for(q8_isa isa) {
  static const char *const avx2_level[] = {"AVX2", "SSE4", "SSSE3", "EMU128", "SCALAR", NULL};
  static const char *const neon_level[] = {"NEON", "EMU128", "SCALAR", NULL};
  switch (isa) {
    case Q8_ISA_AVX2:
    case Q8_ISA_AVXVNNI: return avx2_level;
    case Q8_ISA_NEON:
    case Q8_ISA_NEONDOT: return neon_level;
    default: return NULL;
  }
}

static void apply_hwy_cap(q8_isa isa, bool forced) {
  const char *const *allowed = forced ? hwy_targets_for(isa) : NULL;
  if (allowed == NULL) {
    q8_hwy_force_target(NULL);
    return;
  }
  const char *supported[32];
  const size_t n = q8_hwy_supported_targets(supported, 32);
  for (const char *const *want = allowed; *want; ++want) {
    for (size_t i = 0; i < n && i < 32; ++i) {
      if (strcmp(supported[i], *want) == 0) {
        q8_hwy_force_target(*want);
        return;
      }
    }
  }
  q8_hwy_force_target(NULL);
}

/* -1: automatic. Written by q8_set_isa (documented as a start-up call). */
static atomic_int forced_isa = -1;
static q8_status env_status = Q8_OK;
static char env_error[384];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void list_usable(char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < Q8_ISA_COUNT && used < size; ++i) {
    if (q8_isa_usable_on((q8_isa)i, q8_cpu(), NULL)) {
      used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", isa_names[i]);
    }
  }
}

/* Validates `name`; on failure writes the message into msg. */
static q8_status parse_isa(const char *origin, const char *name, q8_isa *isa, char *msg,
                           size_t size) {
  char usable[160];
  list_usable(usable, sizeof usable);
  if (!q8_isa_from_name(name, isa)) {
    snprintf(msg, size, "%s'%s' is not an ISA q8 knows (ref, hwy, avx2, avxvnni, avx512vnni, "
             "amx, neon, neondot, neoni8mm); usable here: %s", origin, name, usable);
    return Q8_ERR_ISA;
  }
  const char *reason = NULL;
  if (!q8_isa_usable_on(*isa, q8_cpu(), &reason)) {
    snprintf(msg, size, "%s'%s' cannot run here (%s); usable here: %s", origin, name, reason,
             usable);
    return Q8_ERR_ISA;
  }
  return Q8_OK;
}

static void read_env(void) {
  const char *name = getenv("Q8_ISA");
  if (name == NULL || name[0] == '\0') return;
  q8_isa isa;
  env_status = parse_isa("Q8_ISA=", name, &isa, env_error, sizeof env_error);
  if (env_status == Q8_OK) {
    atomic_store(&forced_isa, (int)isa);
    apply_hwy_cap(isa, true);
  }
}

q8_status q8_forced(bool *forced, q8_isa *isa) {
  pthread_once(&env_once, read_env);
  if (env_status != Q8_OK) return q8_fail(env_status, "%s", env_error);
  const int value = atomic_load(&forced_isa);
  *forced = value >= 0;
  *isa = value >= 0 ? (q8_isa)value : Q8_ISA_REF;
  return Q8_OK;
}

q8_status q8_set_isa(const char *name) {
  pthread_once(&env_once, read_env);
  if (name == NULL || name[0] == '\0') {
    env_status = Q8_OK; /* an explicit call overrides a bad Q8_ISA */
    atomic_store(&forced_isa, -1);
    apply_hwy_cap(Q8_ISA_REF, false);
    return Q8_OK;
  }
  q8_isa isa;
  char msg[384];
  const q8_status status = parse_isa("", name, &isa, msg, sizeof msg);
  if (status != Q8_OK) return q8_fail(status, "%s", msg);
  env_status = Q8_OK;
  atomic_store(&forced_isa, (int)isa);
  apply_hwy_cap(isa, true);
  return Q8_OK;
}

const char *q8_forced_isa(void) {
  bool forced = false;
  q8_isa isa;
  if (q8_forced(&forced, &isa) != Q8_OK || !forced) return NULL;
  return isa_names[isa];
}

bool q8_isa_usable(const char *name, const char **reason) {
  q8_isa isa;
  if (!q8_isa_from_name(name, &isa)) {
    if (reason) *reason = "unknown ISA";
    return false;
  }
  return q8_isa_usable_on(isa, q8_cpu(), reason);
}
