/* qbench peak: measured single-thread int8 compute peak per ISA and read
 * bandwidth per memory level.
 *
 * A compute probe must be an upper bound of every kernel of its ISA, so it is
 * the ISA's multiply-accumulate instruction and nothing else: register
 * operands only (no loads), many more independent accumulators than
 * latency x throughput needs on any known core, the loop unrolled so the
 * counter's uops are noise, inline asm so the compiler can neither hoist nor
 * spill anything. The figure is the best rate of many calls of ~30-60 us
 * (qb_best_rate, as STREAM's "best rate": some calls run undisturbed by time
 * slices and neighbours), so a kernel's median cannot beat it without beating
 * the hardware.
 *
 *   ISA         instruction                      MACs/instr  accumulators
 *   avx2        vpmaddwd ymm + vpaddd ymm        16          8 (+6 products)
 *               (two instruction orders, the better counts)
 *   avxvnni     {vex} vpdpbusd ymm               32          14
 *   avx512vnni  vpdpbusd zmm                     64          24
 *   amx         tdpbssd 16x16 <- 16x64 . 16x64   16384       6 tiles
 *
 * 1 MAC = 2 ops. Sources are zero: nothing depends on the data but the power
 * drawn, and less power can only mean a higher clock. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"

typedef struct compute_ctx {
  uint64_t iterations; /* loop iterations per call */
} compute_ctx;

typedef struct compute_probe {
  q8_isa isa;
  void (*fn[2])(void *); /* variants of one loop: the best counts */
  double macs_per_iteration;
  uint64_t iterations; /* per call: about 100-200k cycles */
} compute_probe;

/* One timed call: runs the loop, returns the ops it did. */
typedef struct compute_call_ctx {
  compute_ctx loop;
  void (*fn)(void *);
  double ops;
} compute_call_ctx;

static double compute_call(void *arg) {
  compute_call_ctx *c = arg;
  c->fn(&c->loop);
  return c->ops;
}

#if defined(__x86_64__)
/* avx512vnni: zmm0..23 += zmm30 (u8) . zmm31 (s8), 48 per iteration. Intel
 * Sapphire Rapids issues two per cycle at latency 5 (10 in flight); Zen 4 one
 * (double-pumped) at latency 4; 24 covers both with room. */
#define DP512(n) "vpdpbusd %%zmm31, %%zmm30, %%zmm" #n "\n\t"
#define DP512_ALL                                                                        \
  DP512(0) DP512(1) DP512(2) DP512(3) DP512(4) DP512(5) DP512(6) DP512(7) DP512(8)        \
  DP512(9) DP512(10) DP512(11) DP512(12) DP512(13) DP512(14) DP512(15) DP512(16)          \
  DP512(17) DP512(18) DP512(19) DP512(20) DP512(21) DP512(22) DP512(23)
#define ZERO512(n) "vpxord %%zmm" #n ", %%zmm" #n ", %%zmm" #n "\n\t"
__attribute__((target("avx512f,avx512vnni"))) static void peak_avx512vnni(void *arg) {
  uint64_t n = ((compute_ctx *)arg)->iterations;
  __asm__ volatile(
      ZERO512(0) ZERO512(1) ZERO512(2) ZERO512(3) ZERO512(4) ZERO512(5) ZERO512(6) ZERO512(7)
      ZERO512(8) ZERO512(9) ZERO512(10) ZERO512(11) ZERO512(12) ZERO512(13) ZERO512(14)
      ZERO512(15) ZERO512(16) ZERO512(17) ZERO512(18) ZERO512(19) ZERO512(20) ZERO512(21)
      ZERO512(22) ZERO512(23) ZERO512(30) ZERO512(31)
      ".p2align 5\n\t"
      "1:\n\t"
      DP512_ALL DP512_ALL
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
        "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31");
}

/* avxvnni: VEX reaches ymm0..15 only: ymm0..13 += ymm14 (u8) . ymm15 (s8),
 * 28 per iteration (Alder Lake: two per cycle at latency 5). */
#define DPVEX(n) "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm" #n "\n\t"
#define DPVEX_ALL                                                                        \
  DPVEX(0) DPVEX(1) DPVEX(2) DPVEX(3) DPVEX(4) DPVEX(5) DPVEX(6) DPVEX(7) DPVEX(8)        \
  DPVEX(9) DPVEX(10) DPVEX(11) DPVEX(12) DPVEX(13)
#define ZERO256(n) "vpxor %%ymm" #n ", %%ymm" #n ", %%ymm" #n "\n\t"
#define ZERO256_ALL                                                                      \
  ZERO256(0) ZERO256(1) ZERO256(2) ZERO256(3) ZERO256(4) ZERO256(5) ZERO256(6) ZERO256(7) \
  ZERO256(8) ZERO256(9) ZERO256(10) ZERO256(11) ZERO256(12) ZERO256(13) ZERO256(14)       \
  ZERO256(15)
#define CLOBBER_YMM0_15                                                                  \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
__attribute__((target("avx2,avxvnni"))) static void peak_avxvnni(void *arg) {
  uint64_t n = ((compute_ctx *)arg)->iterations;
  __asm__ volatile(ZERO256_ALL
                   ".p2align 5\n\t"
                   "1:\n\t"
                   DPVEX_ALL DPVEX_ALL
                   "dec %[n]\n\t"
                   "jnz 1b\n\t"
                   "vzeroupper\n\t"
                   : [n] "+r"(n)
                   :
                   : "cc", CLOBBER_YMM0_15);
}

/* avx2: the exact int8 product q8's AVX2 kernels use, after sign extension to
 * int16: vpmaddwd (16 MACs into 8 int32) then vpaddd into an accumulator;
 * no kernel needs fewer than these two instructions per 16 MACs (and a real
 * one also widens its bytes). Products go to ymm8..13 (renamed, independent),
 * accumulators are ymm0..7 (vpaddd latency 1), 24 products per iteration.
 * Where vpaddd competes with vpmaddwd for the same pipes (Zen 4) the order
 * matters: six multiplies then their six adds beats strict pairs by 5% there,
 * so both orders run and the better one counts. */
#define MUL(t) "vpmaddwd %%ymm15, %%ymm14, %%ymm" #t "\n\t"
#define ADD(t, a) "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define MADD(t, a) MUL(t) ADD(t, a)
#define MADD_24_PAIRS                                                                    \
  MADD(8, 0) MADD(9, 1) MADD(10, 2) MADD(11, 3) MADD(12, 4) MADD(13, 5) MADD(8, 6)         \
  MADD(9, 7) MADD(10, 0) MADD(11, 1) MADD(12, 2) MADD(13, 3) MADD(8, 4) MADD(9, 5)          \
  MADD(10, 6) MADD(11, 7) MADD(12, 0) MADD(13, 1) MADD(8, 2) MADD(9, 3) MADD(10, 4)         \
  MADD(11, 5) MADD(12, 6) MADD(13, 7)
#define MADD6(a0, a1, a2, a3, a4, a5)                                                    \
  MUL(8) MUL(9) MUL(10) MUL(11) MUL(12) MUL(13)                                          \
  ADD(8, a0) ADD(9, a1) ADD(10, a2) ADD(11, a3) ADD(12, a4) ADD(13, a5)
#define MADD_24_GROUPED                                                                  \
  MADD6(0, 1, 2, 3, 4, 5) MADD6(6, 7, 0, 1, 2, 3) MADD6(4, 5, 6, 7, 0, 1) MADD6(2, 3, 4, 5, 6, 7)
__attribute__((target("avx2"))) static void peak_avx2_pairs(void *arg) {
  uint64_t n = ((compute_ctx *)arg)->iterations;
  __asm__ volatile(ZERO256_ALL
                   ".p2align 5\n\t"
                   "1:\n\t"
                   MADD_24_PAIRS
                   "dec %[n]\n\t"
                   "jnz 1b\n\t"
                   "vzeroupper\n\t"
                   : [n] "+r"(n)
                   :
                   : "cc", CLOBBER_YMM0_15);
}
__attribute__((target("avx2"))) static void peak_avx2_grouped(void *arg) {
  uint64_t n = ((compute_ctx *)arg)->iterations;
  __asm__ volatile(ZERO256_ALL
                   ".p2align 5\n\t"
                   "1:\n\t"
                   MADD_24_GROUPED
                   "dec %[n]\n\t"
                   "jnz 1b\n\t"
                   "vzeroupper\n\t"
                   : [n] "+r"(n)
                   :
                   : "cc", CLOBBER_YMM0_15);
}

/* amx: tmm0..5 += tmm6 (16 rows x 64 int8) . tmm7 (16 rows x 16x4 int8), 12
 * per iteration. Sapphire Rapids issues one tdpbssd per 16 cycles; six
 * independent accumulator tiles (all that is left beside the two sources)
 * cover its latency with room. Palette 1, every tile 16 rows x 64 bytes. */
typedef struct amx_tilecfg {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_tilecfg;
_Static_assert(sizeof(amx_tilecfg) == 64, "ldtilecfg reads 64 bytes");

#define TDP(n) "tdpbssd %%tmm7, %%tmm6, %%tmm" #n "\n\t"
#define TDP_ALL TDP(0) TDP(1) TDP(2) TDP(3) TDP(4) TDP(5)
__attribute__((target("amx-tile,amx-int8"))) static void peak_amx(void *arg) {
  uint64_t n = ((compute_ctx *)arg)->iterations;
  static _Alignas(64) const int8_t tile[16 * 64]; /* zeros: both sources */
  amx_tilecfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  __asm__ volatile("ldtilecfg %[cfg]\n\t"
                   "tilezero %%tmm0\n\t"
                   "tilezero %%tmm1\n\t"
                   "tilezero %%tmm2\n\t"
                   "tilezero %%tmm3\n\t"
                   "tilezero %%tmm4\n\t"
                   "tilezero %%tmm5\n\t"
                   "tileloadd (%[src],%[stride],1), %%tmm6\n\t"
                   "tileloadd (%[src],%[stride],1), %%tmm7\n\t"
                   ".p2align 5\n\t"
                   "1:\n\t"
                   TDP_ALL TDP_ALL
                   "dec %[n]\n\t"
                   "jnz 1b\n\t"
                   "tilerelease\n\t"
                   : [n] "+r"(n)
                   : [cfg] "m"(cfg), [src] "r"(tile), [stride] "r"((uint64_t)64)
                   : "cc", "memory");
}

static const compute_probe probes[] = {
    {Q8_ISA_AVX2, {peak_avx2_grouped, peak_avx2_pairs}, 24 * 16, 8192},
    {Q8_ISA_AVXVNNI, {peak_avxvnni, NULL}, 28 * 32, 8192},
    {Q8_ISA_AVX512VNNI, {peak_avx512vnni, NULL}, 48 * 64, 4096},
    {Q8_ISA_AMX, {peak_amx, NULL}, 12 * 16384, 1024},
};

/* The clock chain's instruction and loop tail (add_chain below): reg-reg,
 * so no rename-time immediate folding. */
#define CHAIN_ADD "add %[one], %[x]\n\t"
#define COUNT_DOWN "dec %[n]\n\t" "jnz 1b\n\t"

#elif defined(__aarch64__)
/* Arm probes: v0..23 accumulate v30 . v31, 48 instructions per iteration;
 * Cortex-A76/A710 and Neoverse N1/V1/N2 issue at most two of these per cycle
 * at latency 2-4, so 24 accumulators cover every known core.
 *   neon      smull v24-29.8h + sadalp: the exact int8 product without dot
 *             instructions (two int8 products can reach 32768 and overflow an
 *             int16 lane, so nothing cheaper is exact); 8 MACs per pair
 *   neondot   sdot .4s: 16 MACs
 *   neoni8mm  smmla .4s (2x8 . 8x2): 32 MACs */
#define ARM_ACCS(op)                                                                     \
  op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) op(12) op(13) \
  op(14) op(15) op(16) op(17) op(18) op(19) op(20) op(21) op(22) op(23)
#define ARM_ZERO(n) "movi v" #n ".4s, #0\n\t"
#define ARM_CLOBBER                                                                      \
  "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",    \
      "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",    \
      "v26", "v27", "v28", "v29", "v30", "v31"
#define ARM_LOOP(body)                                                                   \
  uint64_t n = ((compute_ctx *)arg)->iterations;                                        \
  __asm__ volatile(ARM_ACCS(ARM_ZERO) ARM_ZERO(30) ARM_ZERO(31)                          \
                   ".p2align 5\n\t"                                                      \
                   "1:\n\t" body body                                                    \
                   "subs %[n], %[n], #1\n\t"                                              \
                   "b.ne 1b\n\t"                                                          \
                   : [n] "+r"(n)                                                         \
                   :                                                                     \
                   : "cc", ARM_CLOBBER)

#define SDOT(n) "sdot v" #n ".4s, v30.16b, v31.16b\n\t"
__attribute__((target("arch=armv8.2-a+dotprod"))) static void peak_neondot(void *arg) {
  ARM_LOOP(ARM_ACCS(SDOT));
}
#define SMMLA(n) "smmla v" #n ".4s, v30.16b, v31.16b\n\t"
__attribute__((target("arch=armv8.2-a+dotprod+i8mm"))) static void peak_neoni8mm(void *arg) {
  ARM_LOOP(ARM_ACCS(SMMLA));
}
/* Products in v24..29 (renamed), each pair: smull then sadalp into v0..23. */
#define SMULL_SADALP(t, a) "smull v" #t ".8h, v30.8b, v31.8b\n\tsadalp v" #a ".4s, v" #t ".8h\n\t"
#define NEON_24                                                                          \
  SMULL_SADALP(24, 0) SMULL_SADALP(25, 1) SMULL_SADALP(26, 2) SMULL_SADALP(27, 3)            \
  SMULL_SADALP(28, 4) SMULL_SADALP(29, 5) SMULL_SADALP(24, 6) SMULL_SADALP(25, 7)            \
  SMULL_SADALP(26, 8) SMULL_SADALP(27, 9) SMULL_SADALP(28, 10) SMULL_SADALP(29, 11)          \
  SMULL_SADALP(24, 12) SMULL_SADALP(25, 13) SMULL_SADALP(26, 14) SMULL_SADALP(27, 15)        \
  SMULL_SADALP(28, 16) SMULL_SADALP(29, 17) SMULL_SADALP(24, 18) SMULL_SADALP(25, 19)        \
  SMULL_SADALP(26, 20) SMULL_SADALP(27, 21) SMULL_SADALP(28, 22) SMULL_SADALP(29, 23)
static void peak_neon(void *arg) { ARM_LOOP(NEON_24); }

static const compute_probe probes[] = {
    {Q8_ISA_NEON, {peak_neon, NULL}, 48 * 8, 4096},
    {Q8_ISA_NEONDOT, {peak_neondot, NULL}, 48 * 16, 4096},
    {Q8_ISA_NEONI8MM, {peak_neoni8mm, NULL}, 48 * 32, 4096},
};

#define CHAIN_ADD "add %[x], %[x], %[one]\n\t"
#define COUNT_DOWN "subs %[n], %[n], #1\n\t" "b.ne 1b\n\t"

#else
static const compute_probe probes[] = {{Q8_ISA_COUNT, {NULL, NULL}, 0, 0}};
#endif

#if defined(CHAIN_ADD)
/* Core clock estimate: a chain of dependent register adds, one per cycle on
 * every x86 and Arm core. */
static void add_chain(void *arg) {
  uint64_t n = ((compute_ctx *)arg)->iterations, x = 0, one = 1;
#define ADD10 CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD CHAIN_ADD
  __asm__ volatile("1:\n\t" ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 COUNT_DOWN
                   : [n] "+r"(n), [x] "+r"(x)
                   : [one] "r"(one)
                   : "cc");
#undef ADD10
}
#endif

double qb_clock_ghz(double min_time) {
#if defined(CHAIN_ADD)
  compute_call_ctx ctx = {.loop = {.iterations = 1000}, .fn = add_chain, .ops = 1000 * 100};
  return qb_best_rate(compute_call, &ctx, min_time) * 1e-9; /* adds (cycles) per second */
#else
  (void)min_time;
  return 0.0;
#endif
}

static const compute_probe *find_probe(q8_isa isa) {
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; ++i) {
    if (probes[i].fn[0] && probes[i].isa == isa) return &probes[i];
  }
  return NULL;
}

bool qb_peak_usable(q8_isa isa, const char **reason) {
  const char *why = NULL;
  bool ok = q8_isa_usable_on(isa, q8_cpu(), &why);
  if (ok && find_probe(isa) == NULL) {
    ok = false;
    why = "no compute probe for this ISA";
  }
  if (reason) *reason = ok ? "" : (why ? why : "not usable");
  return ok;
}

double qb_peak_gops(q8_isa isa, double min_time) {
  if (!qb_peak_usable(isa, NULL)) return 0.0;
  const compute_probe *p = find_probe(isa);
  double best = 0.0;
  for (int v = 0; v < 2 && p->fn[v]; ++v) {
    compute_call_ctx ctx = {.loop = {.iterations = p->iterations}, .fn = p->fn[v],
                            .ops = 2.0 * p->macs_per_iteration * (double)p->iterations};
    const double rate = qb_best_rate(compute_call, &ctx, min_time);
    if (rate > best) best = rate;
  }
  return best * 1e-9;
}

/* ---- qbench peak ---------------------------------------------------------- */

#if defined(__aarch64__)
static const q8_isa peak_isas[] = {Q8_ISA_NEON, Q8_ISA_NEONDOT, Q8_ISA_NEONI8MM};
#else
static const q8_isa peak_isas[] = {Q8_ISA_AVX2, Q8_ISA_AVXVNNI, Q8_ISA_AVX512VNNI, Q8_ISA_AMX};
#endif
#define N_PEAK_ISAS (sizeof peak_isas / sizeof peak_isas[0])
static const char *const level_names[] = {"L1", "L2", "L3", "DRAM"};

static void usage(FILE *out) {
  fputs("usage: qbench peak [--min-time S] [--quick] [--core N] [--json FILE|-] [--csv FILE|-]\n\n"
        "Measures, single-threaded, what the hardware allows, so kernel figures can be read\n"
        "as a fraction of it:\n"
        "  - int8 compute peak (GOPS, 1 MAC = 2 ops) of every ISA q8 knows for this\n"
        "    architecture: x86 avx2 (vpmaddwd + vpaddd), avxvnni (vpdpbusd ymm),\n"
        "    avx512vnni (vpdpbusd zmm), amx (tdpbssd); aarch64 neon (smull + sadalp),\n"
        "    neondot (sdot), neoni8mm (smmla); ISAs this CPU/OS cannot run are listed\n"
        "    with the reason;\n"
        "  - read bandwidth (GB/s) of streams sized for L1 (1/2 L1d), L2 (1/2 L2),\n"
        "    L3 (the best of 2x L2, 4x L2, ... up to 1/2 L3: a core can reach less L3\n"
        "    than the topology reports) and DRAM (4x L3, at least 256 MiB), with the\n"
        "    widest loads; the size column is the stream measured.\n"
        "Each probe is an upper bound (independent accumulators or loads only, unrolled,\n"
        "inline asm); each figure is the best rate of many short timed calls (tens of\n"
        "microseconds, at least 20, for --min-time after a warm-up), so time slices and\n"
        "busy neighbours on a shared machine do not pull the bound down.\n"
        "The core clock is estimated from a chain of dependent adds (ops/cycle column).\n\n"
        "  --min-time S   seconds of samples per probe (default 0.2)\n"
        "  --quick        --min-time 0.05\n"
        "  --core N       the physical core the probes run on (default 0)\n"
        "  --json FILE    also write JSON ('-': stdout, table to stderr): Google Benchmark\n"
        "                 rows (docs/results.md) plus peaks[{isa, usable, gops, reason}],\n"
        "                 bandwidth[{level, bytes, gbps}]\n"
        "  --csv FILE     the rows as CSV ('-': stdout)\n"
        "  --help         this text\n", out);
}

static const char *peak_instruction(q8_isa isa) {
  switch (isa) {
    case Q8_ISA_AVX2: return "vpmaddwd+vpaddd ymm";
    case Q8_ISA_AVXVNNI: return "vpdpbusd ymm";
    case Q8_ISA_AVX512VNNI: return "vpdpbusd zmm";
    case Q8_ISA_AMX: return "tdpbssd";
    case Q8_ISA_NEON: return "smull+sadalp";
    case Q8_ISA_NEONDOT: return "sdot";
    case Q8_ISA_NEONI8MM: return "smmla";
    default: return "";
  }
}

typedef struct peak_detail {
  double ghz, min_time;
  const double *gops;
  const char *const *reasons;
  const bool *usable;
  const double *gbps;
  const size_t *bytes;
} peak_detail;

/* The per-ISA table with unusable ISAs and their reasons, and the probe sizes. */
static void write_detail(qb_json *j, void *ctx) {
  const peak_detail *d = ctx;
  qb_json_number(j, "min_time", d->min_time);
  qb_json_number(j, "clock_ghz", d->ghz);
  qb_json_begin_array(j, "peaks");
  for (size_t i = 0; i < N_PEAK_ISAS; ++i) {
    qb_json_begin_object(j, NULL);
    qb_json_string(j, "isa", q8_isa_name(peak_isas[i]));
    qb_json_bool(j, "usable", d->usable[i]);
    qb_json_number(j, "gops", d->gops[i]);
    qb_json_string(j, "reason", d->reasons[i]);
    qb_json_end_object(j);
  }
  qb_json_end_array(j);
  qb_json_string(j, "loads", qb_read_loads());
  qb_json_begin_array(j, "bandwidth");
  for (int l = 0; l < 4; ++l) {
    qb_json_begin_object(j, NULL);
    qb_json_string(j, "level", level_names[l]);
    qb_json_int(j, "bytes", (long long)d->bytes[l]);
    qb_json_number(j, "gbps", d->gbps[l]);
    qb_json_end_object(j);
  }
  qb_json_end_array(j);
}

static void print_size(FILE *out, size_t bytes) {
  char s[32];
  if (bytes >= ((size_t)1 << 20)) {
    snprintf(s, sizeof s, "%.1f MiB", (double)bytes / (1 << 20));
  } else {
    snprintf(s, sizeof s, "%zu KiB", bytes >> 10);
  }
  fprintf(out, "%-10s", s);
}

int qb_cmd_peak(int argc, char **argv) {
  qb_method method = {.min_time = 0.2};
  qb_outputs outputs;
  qb_outputs_init(&outputs);
  for (int i = 1; i < argc; ++i) {
    /* The probes have no output to check and nothing to cool. */
    const char *arg = argv[i];
    if (strcmp(arg, "--cold") == 0 || strcmp(arg, "--check") == 0 || strcmp(arg, "--bitwise") == 0 ||
        strcmp(arg, "--repro") == 0) {
      fprintf(stderr, "qbench peak: %s does not apply to the peak probes\n", arg);
      return 2;
    }
    int used = qb_parse_method(argc, argv, &i, &method, "qbench peak");
    if (used == 0) used = qb_parse_outputs(argc, argv, &i, &outputs, "qbench peak");
    if (used < 0) return 2;
    if (used > 0) continue;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    fprintf(stderr, "qbench peak: unknown option '%s'\n", argv[i]);
    usage(stderr);
    return 2;
  }
  if (!qb_pin_main_thread(&method, "qbench peak")) return 2;
  const double min_time = method.min_time;
  FILE *table = outputs.table;
  const q8_cpu_info *cpu = q8_cpu();

  const double ghz = qb_clock_ghz(min_time);
  fprintf(table, "CPU %s / %s\n", cpu->vendor, cpu->model);
  if (cpu->emulated[0]) fprintf(table, "EMULATED: %s. These figures measure the emulator.\n", cpu->emulated);
  if (ghz > 0) fprintf(table, "Core clock (dependent-add chain): %.2f GHz\n", ghz);

  fprintf(table, "\nCompute peak, single thread, int8 (1 MAC = 2 ops), best of short calls:\n");
  fprintf(table, "  %-11s %10s %10s\n", "isa", "GOPS", "ops/cycle");
  double gops[N_PEAK_ISAS];
  const char *reasons[N_PEAK_ISAS];
  bool usable[N_PEAK_ISAS];
  for (size_t i = 0; i < N_PEAK_ISAS; ++i) {
    usable[i] = qb_peak_usable(peak_isas[i], &reasons[i]);
    gops[i] = usable[i] ? qb_peak_gops(peak_isas[i], min_time) : 0.0;
    if (usable[i]) {
      fprintf(table, "  %-11s %10.1f %10.1f\n", q8_isa_name(peak_isas[i]), gops[i],
              ghz > 0 ? gops[i] / ghz : NAN);
    } else {
      fprintf(table, "  %-11s not usable: %s\n", q8_isa_name(peak_isas[i]), reasons[i]);
    }
  }

  fprintf(table, "\nRead bandwidth, single thread, loads: %s:\n", qb_read_loads());
  fprintf(table, "  %-5s %-10s %10s\n", "level", "size", "GB/s");
  double gbps[4];
  size_t bytes[4];
  for (int l = 0; l < 4; ++l) {
    gbps[l] = qb_bandwidth_level(l + 1, min_time, &bytes[l]) * 1e-9;
    fprintf(table, "  %-5s ", level_names[l]);
    print_size(table, bytes[l]);
    fprintf(table, " %10.1f\n", gbps[l]);
  }

  /* Google Benchmark rows (docs/results.md) for tools and `qbench compare`,
   * plus the per-ISA detail (unusable ISAs and why) as extra members. A
   * peak row's time is per 10^9 ops (per GB for bandwidth): probes report
   * a best rate, not a call time. */
  qb_rows rows = {0};
  for (size_t i = 0; i < N_PEAK_ISAS; ++i) {
    if (!usable[i]) continue;
    qb_note_peak(q8_isa_name(peak_isas[i]), gops[i]);
    qb_row *r = qb_rows_add(&rows);
    snprintf(r->name, sizeof r->name, "peak/%s/threads:1", q8_isa_name(peak_isas[i]));
    snprintf(r->suite, sizeof r->suite, "peak");
    snprintf(r->op, sizeof r->op, "peak");
    snprintf(r->isa, sizeof r->isa, "%s", q8_isa_name(peak_isas[i]));
    snprintf(r->kernel, sizeof r->kernel, "%s", peak_instruction(peak_isas[i]));
    snprintf(r->unit, sizeof r->unit, "GOPS");
    snprintf(r->repro, sizeof r->repro, "qbench peak --min-time %g", min_time);
    r->threads = 1;
    r->rate = r->peak = gops[i];
    r->t.median_s = r->t.min_s = r->t.max_s = 1.0 / gops[i];
    r->t.samples = r->t.calls_per_sample = 1;
  }
  for (int l = 0; l < 4; ++l) {
    qb_note_bandwidth(l + 1, gbps[l]);
    qb_row *r = qb_rows_add(&rows);
    snprintf(r->name, sizeof r->name, "bandwidth/%s/threads:1", level_names[l]);
    snprintf(r->suite, sizeof r->suite, "peak");
    snprintf(r->op, sizeof r->op, "bandwidth");
    snprintf(r->isa, sizeof r->isa, "%s", qb_read_loads());
    snprintf(r->kernel, sizeof r->kernel, "read %zu bytes", bytes[l]);
    snprintf(r->repro, sizeof r->repro, "qbench peak --min-time %g", min_time);
    r->threads = 1;
    r->rate = r->peak = gbps[l];
    r->bandwidth_gbps = gbps[l];
    r->bandwidth_level = l + 1;
    r->t.median_s = r->t.min_s = r->t.max_s = 1.0 / gbps[l];
    r->t.samples = r->t.calls_per_sample = 1;
  }
  qb_note_method(min_time, false, false, false);
  int rc = 0;
  if (outputs.json_path) {
    const bool to_stdout = strcmp(outputs.json_path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(outputs.json_path, "w");
    if (f == NULL) {
      fprintf(stderr, "qbench peak: cannot write '%s'\n", outputs.json_path);
      rc = 1;
    } else {
      peak_detail detail = {ghz, min_time, gops, reasons, usable, gbps, bytes};
      qb_write_json_extra(f, rows.items, rows.count, write_detail, &detail);
      if (!to_stdout && fclose(f) != 0) rc = 1;
    }
  }
  if (outputs.csv_path) {
    qb_outputs csv_only = outputs;
    csv_only.json_path = NULL;
    rc |= qb_write_outputs(&csv_only, rows.items, rows.count);
  }
  qb_rows_free(&rows);
  return rc;
}
