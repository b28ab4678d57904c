/* Read-bandwidth probes, measured in the same run as the kernels they qualify,
 * and the best-rate harness the compute probes (peak.c) share.
 *
 * A probe must be an upper bound of what any kernel reading the same level
 * achieves, so it does nothing but load: 16 independent full-width loads per
 * 1 KiB block, no arithmetic, no loop-carried dependence except the pointer
 * (inline asm, so the compiler can neither drop the unused loads nor narrow
 * them). It runs with every usable load width from the widest down to AVX2
 * (on Zen 4, 512-bit loads are split and 256-bit ones can be as fast) and
 * keeps the best. Buffers of 2 MiB and more ask for transparent huge pages
 * (fewer TLB misses than a kernel may see, never more).
 *
 * Timing: after a warm-up, many short calls (tens of microseconds: a few MiB
 * read, whole passes over a small buffer or the next chunk of a large one)
 * are timed one by one and the best rate counts, as STREAM's "best rate". On
 * a shared machine some calls run undisturbed by time slices and neighbours;
 * with long samples none might, and a kernel timed in a quiet moment would
 * then "beat" the hardware. */
#define _DEFAULT_SOURCE /* madvise */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bench/qbench.h"
#include "dispatch/cpu.h"

#define BLOCK 1024                        /* bytes per unrolled loop iteration */
#define BYTES_PER_CALL ((size_t)4 << 20)  /* about 20-200 us per call */
#define HUGE_PAGE ((size_t)2 << 20)
#define MIN_SAMPLES 20

double qb_best_rate(double (*fn)(void *), void *ctx, double min_time) {
  /* Warm-up: caches, page faults, the clock ramp, AVX-512 licence changes. */
  const double warm_until = qb_now() + 0.25 * min_time;
  do {
    (void)fn(ctx);
  } while (qb_now() < warm_until);
  double best = 0.0;
  const double start = qb_now();
  double t0 = start;
  for (size_t n = 1;; ++n) {
    const double work = fn(ctx);
    const double t1 = qb_now();
    if (t1 > t0 && work / (t1 - t0) > best) best = work / (t1 - t0);
    t0 = t1;
    if (n >= MIN_SAMPLES && t1 - start >= min_time) break;
  }
  return best;
}

typedef struct read_ctx {
  const unsigned char *data;
  size_t bytes;  /* whole buffer, multiple of BLOCK */
  size_t offset; /* where the next chunk of a large buffer starts */
  /* What one asm call reads: `passes` times [begin, begin + len). */
  const unsigned char *begin;
  size_t len, passes;
  uint64_t sink; /* portable fallback only */
} read_ctx;

typedef struct read_variant {
  const char *name;
  void (*fn)(read_ctx *);
} read_variant;

#if defined(__x86_64__)
/* Passes and blocks are both counted in the asm: no call or loop exit per
 * pass (an L1-sized pass is only 16 blocks). */
#define READ_LOOP(loads, after)                                                          \
  "2:\n\t"                                                                               \
  "mov %[begin], %[p]\n\t"                                                               \
  ".p2align 5\n\t"                                                                       \
  "1:\n\t" loads                                                                         \
  "add $1024, %[p]\n\t"                                                                  \
  "cmp %[end], %[p]\n\t"                                                                 \
  "jb 1b\n\t"                                                                            \
  "dec %[n]\n\t"                                                                         \
  "jnz 2b\n\t" after
/* p is early-clobber: it must not share a register with begin or end. */
#define READ_OPERANDS                                                                    \
  : [p] "=&r"(p), [n] "+r"(passes)                                                       \
  : [begin] "r"(c->begin), [end] "r"(c->begin + c->len)
#define CLOBBER_XMM0_15                                                                  \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* 16 loads of 64 bytes per block, into zmm16..31: no AVX/SSE transition
 * state, so no vzeroupper. */
#define LD512(off, reg) "vmovdqa64 " #off "(%[p]), %%zmm" #reg "\n\t"
__attribute__((target("avx512f"))) static void read_avx512(read_ctx *c) {
  const unsigned char *p;
  uint64_t passes = c->passes;
  __asm__ volatile(READ_LOOP(LD512(0, 16) LD512(64, 17) LD512(128, 18) LD512(192, 19)
                             LD512(256, 20) LD512(320, 21) LD512(384, 22) LD512(448, 23)
                             LD512(512, 24) LD512(576, 25) LD512(640, 26) LD512(704, 27)
                             LD512(768, 28) LD512(832, 29) LD512(896, 30) LD512(960, 31), "")
                   READ_OPERANDS
                   : "cc", "memory", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",
                     "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
                     "xmm30", "xmm31");
}

/* 32 loads of 32 bytes per block. */
#define LD256(off, reg) "vmovdqa " #off "(%[p]), %%ymm" #reg "\n\t"
#define LD256_512(o)                                                                     \
  LD256(o, 0) LD256(o + 32, 1) LD256(o + 64, 2) LD256(o + 96, 3) LD256(o + 128, 4)          \
  LD256(o + 160, 5) LD256(o + 192, 6) LD256(o + 224, 7) LD256(o + 256, 8) LD256(o + 288, 9) \
  LD256(o + 320, 10) LD256(o + 352, 11) LD256(o + 384, 12) LD256(o + 416, 13)               \
  LD256(o + 448, 14) LD256(o + 480, 15)
__attribute__((target("avx2"))) static void read_avx2(read_ctx *c) {
  const unsigned char *p;
  uint64_t passes = c->passes;
  __asm__ volatile(READ_LOOP(LD256_512(0) LD256_512(512), "vzeroupper\n\t")
                   READ_OPERANDS
                   : "cc", "memory", CLOBBER_XMM0_15);
}

/* SSE2, the x86-64 baseline: 64 loads of 16 bytes per block. */
#define LD128(off, reg) "movdqa " #off "(%[p]), %%xmm" #reg "\n\t"
#define LD128_256(o)                                                                     \
  LD128(o, 0) LD128(o + 16, 1) LD128(o + 32, 2) LD128(o + 48, 3) LD128(o + 64, 4)           \
  LD128(o + 80, 5) LD128(o + 96, 6) LD128(o + 112, 7) LD128(o + 128, 8) LD128(o + 144, 9)   \
  LD128(o + 160, 10) LD128(o + 176, 11) LD128(o + 192, 12) LD128(o + 208, 13)               \
  LD128(o + 224, 14) LD128(o + 240, 15)
static void read_sse2(read_ctx *c) {
  const unsigned char *p;
  uint64_t passes = c->passes;
  __asm__ volatile(READ_LOOP(LD128_256(0) LD128_256(256) LD128_256(512) LD128_256(768), "")
                   READ_OPERANDS
                   : "cc", "memory", CLOBBER_XMM0_15);
}
#else
/* Other architectures: eight independent sums, vectorised by the compiler at
 * the baseline ISA (NEON on aarch64). */
static void read_portable(read_ctx *c) {
  const uint64_t *d = (const uint64_t *)(const void *)c->begin;
  const size_t words = c->len / 8;
  for (size_t pass = 0; pass < c->passes; ++pass) {
    uint64_t s[8] = {0};
    for (size_t i = 0; i < words; i += 8) {
      for (size_t l = 0; l < 8; ++l) s[l] += d[i + l];
    }
    for (size_t l = 0; l < 8; ++l) c->sink += s[l];
  }
}

#endif

/* Usable load widths, widest first: the widest plus AVX2 when it is wider. */
static size_t read_variants(read_variant out[2]) {
  size_t n = 0;
#if defined(__x86_64__)
  const q8_cpu_info *cpu = q8_cpu();
  if (q8_cpu_usable(cpu, Q8_CPU_AVX512F)) out[n++] = (read_variant){"avx512", read_avx512};
  if (q8_cpu_usable(cpu, Q8_CPU_AVX2)) out[n++] = (read_variant){"avx2", read_avx2};
  if (n == 0) out[n++] = (read_variant){"sse2", read_sse2};
#else
  out[n++] = (read_variant){"scalar/auto-vectorised", read_portable};
#endif
  return n;
}

/* One timed call of the probe: returns the bytes read. */
typedef struct read_call_ctx {
  read_ctx read;
  void (*fn)(read_ctx *);
} read_call_ctx;

static double read_call(void *arg) {
  read_call_ctx *rc = arg;
  read_ctx *c = &rc->read;
  if (c->bytes < BYTES_PER_CALL) { /* small buffer: whole passes */
    c->begin = c->data;
    c->len = c->bytes;
    c->passes = BYTES_PER_CALL / c->bytes;
  } else { /* large buffer: the next chunk, so consecutive calls stream it all */
    c->begin = c->data + c->offset;
    c->len = c->bytes - c->offset < BYTES_PER_CALL ? c->bytes - c->offset : BYTES_PER_CALL;
    c->passes = 1;
    c->offset = (c->offset + c->len) % c->bytes;
  }
  rc->fn(c);
  return (double)c->len * (double)c->passes;
}

const char *qb_read_loads(void) {
  read_variant v[2];
  const size_t n = read_variants(v);
  return n == 2 ? "avx512 and avx2 (best of both)" : v[0].name;
}

double qb_read_bandwidth(size_t bytes, double min_time) {
  bytes = (bytes + BLOCK - 1) / BLOCK * BLOCK;
  if (bytes == 0) bytes = BLOCK;
  size_t alloc = bytes, align = 64;
  if (bytes >= HUGE_PAGE) {
    align = HUGE_PAGE;
    alloc = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
  }
  unsigned char *data = aligned_alloc(align, alloc);
  if (data == NULL) return 0.0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == HUGE_PAGE) (void)madvise(data, alloc, MADV_HUGEPAGE);
#endif
  memset(data, 1, alloc); /* fault every page in before timing */
  read_variant v[2];
  const size_t n = read_variants(v);
  double best = 0.0;
  for (size_t i = 0; i < n; ++i) {
    read_call_ctx ctx = {.read = {.data = data, .bytes = bytes}, .fn = v[i].fn};
    const double rate = qb_best_rate(read_call, &ctx, min_time);
    if (rate > best) best = rate;
  }
  free(data);
  return best;
}

size_t qb_bandwidth_level_bytes(int level) {
  const q8_cpu_info *cpu = q8_cpu();
  /* Unknown sizes (hwloc failed): typical ones. */
  const size_t l1 = cpu->l1d_bytes ? cpu->l1d_bytes : (size_t)32 << 10;
  const size_t l2 = cpu->l2_bytes > l1 ? cpu->l2_bytes : (size_t)1 << 20;
  const size_t l3 = cpu->l3_bytes > l2 ? cpu->l3_bytes : (size_t)8 << 20;
  size_t bytes;
  switch (level) {
  case 1: bytes = l1 / 2; break;
  case 2: bytes = l2 / 2 > l1 * 2 ? l2 / 2 : (l1 + l2) / 2; break;
  case 3: bytes = l3 / 2 > l2 * 2 ? l3 / 2 : (l2 + l3) / 2; break;
  case 4: bytes = l3 * 4 > ((size_t)256 << 20) ? l3 * 4 : (size_t)256 << 20; break;
  default: return 0;
  }
  return (bytes + BLOCK - 1) / BLOCK * BLOCK;
}

/* L3: the best of a ladder of streams from twice L2 up to half the L3 hwloc
 * reports, doubling. A core may reach less L3 than reported (a VM's virtual
 * topology; an L3 split between core complexes): seen here, 508 MiB reported,
 * and a 254 MiB stream read at DRAM speed (42 GB/s) while 16 MiB kernels read
 * 62 GB/s, more than their "bound". Streams past what the core reaches fall
 * toward DRAM speed, so the best rung is the L3's; the ladder stops once a
 * rung reads less than half the best so far. */
static double l3_ladder(double min_time, size_t *bytes_out) {
  const size_t top = qb_bandwidth_level_bytes(3);
  const size_t l2 = qb_bandwidth_level_bytes(2) * 2; /* the L2 (or its stand-in) */
  size_t bytes = 2 * l2 < top ? 2 * l2 : top, best_bytes = top;
  double best = 0.0;
  for (;;) {
    const double rate = qb_read_bandwidth(bytes, min_time);
    if (rate > best) {
      best = rate;
      best_bytes = bytes;
    }
    if (bytes >= top || rate < 0.5 * best) break;
    bytes = 2 * bytes < top ? 2 * bytes : top;
  }
  if (bytes_out) *bytes_out = best_bytes;
  return best;
}

double qb_bandwidth_level(int level, double min_time, size_t *bytes_out) {
  const size_t bytes = qb_bandwidth_level_bytes(level);
  if (bytes_out) *bytes_out = bytes;
  if (bytes == 0) return 0.0;
  return level == 3 ? l3_ladder(min_time, bytes_out) : qb_read_bandwidth(bytes, min_time);
}
