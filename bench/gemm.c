/* qbench gemm: times q8_gemm_run (never the packing) per ISA and shape, each
 * figure beside the peak of the same ISA measured in the same run, and the
 * peers (oneDNN, XNNPACK) on the same inputs when asked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

const char *qb_out_name(q8_dtype out) {
  return out == Q8_INT32 ? "s32" : out == Q8_INT8 ? "s8" : "u8";
}

/* ---- peaks, measured once per (ISA, threads) on the threads that run ---- */
typedef struct peak_job {
  q8_isa isa;
  double min_time;
  double gops[1024];
} peak_job;

static void peak_task(void *p, size_t i) {
  peak_job *j = p;
  j->gops[i] = qb_peak_gops(j->isa, j->min_time);
}

q8_isa qb_peak_isa_for(q8_isa isa) {
  if (isa != Q8_ISA_REF && isa != Q8_ISA_HWY) return isa;
  static const q8_isa best[] = {Q8_ISA_AMX, Q8_ISA_AVX512VNNI, Q8_ISA_AVXVNNI, Q8_ISA_AVX2,
                                Q8_ISA_NEONI8MM, Q8_ISA_NEONDOT, Q8_ISA_NEON};
  for (size_t i = 0; i < sizeof best / sizeof best[0]; ++i) {
    if (q8_isa_usable_on(best[i], q8_cpu(), NULL) && qb_peak_usable(best[i], NULL)) return best[i];
  }
  return isa;
}

double qb_peak_for(q8_isa isa, size_t threads, double min_time) {
  static double cache[Q8_ISA_COUNT][9];
  const size_t slot = threads < 8 ? threads : 8; /* 8: any count above 7, remeasured */
  if (cache[isa][slot] == 0.0 || slot == 8) {
    peak_job *job = calloc(1, sizeof *job);
    job->isa = isa;
    job->min_time = min_time;
    if (threads > 1024) threads = 1024;
    q8_parallel_for(threads, threads, peak_task, job);
    double sum = 0.0;
    for (size_t i = 0; i < threads; ++i) sum += job->gops[i];
    free(job);
    cache[isa][slot] = sum;
    if (threads == 1) qb_note_peak(q8_isa_name(isa), sum);
  }
  return cache[isa][slot];
}

q8_isa qb_dispatched_isa(void) {
  const q8_kernel *k = q8_select_kernel(Q8_OP_GEMM);
  return k ? k->isa : Q8_ISA_REF;
}

/* Read bandwidth of the level that holds `bytes` of weights (per thread). */
static double weight_bandwidth(size_t bytes, double min_time, int *level_out) {
  const q8_cpu_info *cpu = q8_cpu();
  int level = 4;
  if (cpu->l2_bytes && bytes <= cpu->l2_bytes) level = 2;
  else if (cpu->l3_bytes && bytes <= cpu->l3_bytes) level = 3;
  *level_out = level;
  return qb_run_bandwidth(level, min_time) * 1e9;
}

void qb_gemm_data_init(qb_gemm_data *d, size_t m, size_t n, size_t k, q8_dtype out) {
  *d = (qb_gemm_data){.m = m, .n = n, .k = k, .a = malloc(m * k), .w = malloc(n * k),
                      .w_scales = malloc(n * sizeof(float)), .bias = malloc(n * sizeof(int32_t)),
                      .a_zero_point = 3, .a_scale = 0.02f, .out_scale = 0.5f,
                      .out_zero_point = out == Q8_UINT8 ? 127 : -1};
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < m * k; ++i) d->a[i] = (int8_t)((seed = seed * 6364136223846793005ull + 1) >> 56);
  for (size_t i = 0; i < n * k; ++i) d->w[i] = (int8_t)((seed = seed * 6364136223846793005ull + 1) >> 56);
  for (size_t j = 0; j < n; ++j) {
    d->w_scales[j] = 0.001f + 0.0001f * (float)(j % 7);
    d->bias[j] = (int32_t)(j % 1000) - 500;
  }
}

void qb_gemm_data_free(qb_gemm_data *d) {
  free(d->a);
  free(d->w);
  free(d->w_scales);
  free(d->bias);
  *d = (qb_gemm_data){0};
}

q8_gemm_desc qb_gemm_desc(const qb_gemm_data *d, q8_dtype out, size_t threads) {
  return (q8_gemm_desc){.m = d->m, .n = d->n, .k = d->k, .a_dtype = Q8_INT8,
                        .a_zero_point = d->a_zero_point, .a_scale = d->a_scale, .weights = d->w,
                        .w_channels = d->n, .w_scales = d->w_scales, .bias = d->bias,
                        .out_dtype = out, .requant = Q8_REQUANT_FP32, .out_scale = d->out_scale,
                        .out_zero_point = d->out_zero_point, .threads = threads};
}

bool qb_gemm_reference(const qb_gemm_data *d, q8_dtype out, void *c) {
  char previous[32] = "";
  if (q8_forced_isa()) snprintf(previous, sizeof previous, "%s", q8_forced_isa());
  q8_set_isa("ref");
  const q8_gemm_desc desc = qb_gemm_desc(d, out, 1);
  q8_gemm_plan *ref = NULL;
  const bool ok = q8_gemm_plan_create(&desc, &ref) == Q8_OK && q8_gemm_run(ref, d->a, d->k, c, d->n) == Q8_OK;
  q8_gemm_plan_destroy(ref);
  q8_set_isa(previous[0] ? previous : NULL);
  return ok;
}

/* Copies of everything a call touches, rotated under --cold. */
typedef struct run_ctx {
  q8_gemm_plan **plans;
  int8_t **a;
  unsigned char **c;
  size_t copies, next, k, n;
} run_ctx;

static void run_plan(void *p) {
  run_ctx *r = p;
  const size_t i = r->next;
  r->next = i + 1 == r->copies ? 0 : i + 1;
  q8_gemm_run(r->plans[i], r->a[i], r->k, r->c[i], r->n);
}

static void repro_method(char *buf, size_t size, const qb_method *m) {
  snprintf(buf, size, " --min-time %g%s%s%s", m->min_time, m->cold ? " --cold" : "", m->check ? " --check" : "",
           m->bitwise ? " --bitwise" : "");
}

/* The --shape value that reruns `s` under the same row name: labelled with
 * its suite unless it came from --shape. */
static void repro_shape(char *buf, size_t size, const qb_shape *s) {
  const bool cli = strcmp(s->suite, "cli") == 0;
  snprintf(buf, size, "%s%s%zux%zux%zu", cli ? "" : s->suite, cli ? "" : ":", s->m, s->n, s->k);
}

static void name_row(qb_row *row, const qb_shape *s, q8_dtype out, const char *who, size_t threads) {
  snprintf(row->name, sizeof row->name, "gemm/%s/%zux%zux%zu/%s/%s/threads:%zu", s->suite, s->m, s->n, s->k,
           qb_out_name(out), who, threads);
  snprintf(row->suite, sizeof row->suite, "%s", s->suite);
  snprintf(row->op, sizeof row->op, "gemm");
  snprintf(row->out, sizeof row->out, "%s", qb_out_name(out));
  row->is_gemm = true;
  snprintf(row->unit, sizeof row->unit, "GOPS");
  row->m = s->m;
  row->n = s->n;
  row->k = s->k;
}

bool qb_gemm_measure(q8_isa isa, const qb_shape *shape, size_t threads, q8_dtype out,
                     const qb_method *method, qb_row *row) {
  const size_t m = shape->m, n = shape->n, k = shape->k;
  const size_t esize = out == Q8_INT32 ? 4 : 1;
  qb_gemm_data data;
  qb_gemm_data_init(&data, m, n, k, out);
  if (q8_set_isa(q8_isa_name(isa)) != Q8_OK) {
    fprintf(stderr, "qbench gemm: %s: %s\n", q8_isa_name(isa), q8_error_detail());
    qb_gemm_data_free(&data);
    return false;
  }
  const q8_gemm_desc d = qb_gemm_desc(&data, out, threads);
  q8_gemm_plan *first = NULL;
  if (q8_gemm_plan_create(&d, &first) != Q8_OK) {
    fprintf(stderr, "qbench gemm: %s %zux%zux%zu: %s\n", q8_isa_name(isa), m, n, k, q8_error_detail());
    q8_set_isa(NULL);
    qb_gemm_data_free(&data);
    return false;
  }
  const size_t packed = q8_gemm_plan_packed_bytes(first);
  run_ctx ctx = {.k = k, .n = n};
  ctx.copies = qb_cold_copies(method, packed + m * k + m * n * esize);
  ctx.plans = calloc(ctx.copies, sizeof *ctx.plans);
  ctx.a = calloc(ctx.copies, sizeof *ctx.a);
  ctx.c = calloc(ctx.copies, sizeof *ctx.c);
  bool ok = ctx.plans && ctx.a && ctx.c;
  for (size_t i = 0; ok && i < ctx.copies; ++i) {
    ctx.plans[i] = i == 0 ? first : NULL;
    if (i > 0 && q8_gemm_plan_create(&d, &ctx.plans[i]) != Q8_OK) ok = false;
    ctx.a[i] = i == 0 ? data.a : malloc(m * k);
    ctx.c[i] = calloc(m * n, esize);
    if (ctx.a[i] == NULL || ctx.c[i] == NULL) ok = false;
    else if (i > 0) memcpy(ctx.a[i], data.a, m * k);
  }
  if (!ok) fprintf(stderr, "qbench gemm: %zux%zux%zu: out of memory for %zu cold copies\n", m, n, k, ctx.copies);

  if (ok) {
    row->t = qb_measure(run_plan, &ctx, method->min_time, 5);
    name_row(row, shape, out, q8_isa_name(isa), q8_gemm_plan_threads(first));
    snprintf(row->kernel, sizeof row->kernel, "%s", q8_gemm_plan_kernel(first));
    snprintf(row->isa, sizeof row->isa, "%s", q8_isa_name(isa));
    row->threads = q8_gemm_plan_threads(first);
    row->rate = 2.0 * (double)m * (double)n * (double)k / row->t.median_s * 1e-9;
    const q8_isa peak_isa = qb_peak_isa_for(isa);
    snprintf(row->peak_isa, sizeof row->peak_isa, "%s", q8_isa_name(peak_isa));
    row->peak = qb_peak_for(peak_isa, row->threads, method->min_time);
    row->weight_gbps = (double)packed / row->t.median_s * 1e-9;
    if (m <= 16 && !method->cold) {
      row->bandwidth_gbps =
          weight_bandwidth(packed / row->threads, method->min_time, &row->bandwidth_level) * 1e-9 * (double)row->threads;
    }
    /* Every copy ran the same call: copy 0's output stands for all. */
    if (method->check) {
      unsigned char *want = malloc(m * n * esize);
      row->checked = true;
      row->check_ok = want && qb_gemm_reference(&data, out, want) && memcmp(want, ctx.c[0], m * n * esize) == 0;
      free(want);
    }
    if (method->bitwise) {
      unsigned char *again = calloc(m * n, esize);
      row->bitwise_checked = true;
      row->bitwise_ok = again && q8_gemm_run(first, data.a, k, again, n) == Q8_OK &&
                        memcmp(again, ctx.c[0], m * n * esize) == 0;
      free(again);
    }
    char extra[96], shape_arg[64];
    repro_method(extra, sizeof extra, method);
    repro_shape(shape_arg, sizeof shape_arg, shape);
    snprintf(row->repro, sizeof row->repro, "qbench gemm --isa %s --shape %s --out %s --threads %zu%s",
             q8_isa_name(isa), shape_arg, qb_out_name(out), row->threads, extra);
  }
  for (size_t i = 0; i < ctx.copies; ++i) {
    if (ctx.plans) q8_gemm_plan_destroy(ctx.plans[i]);
    if (ctx.a && i > 0) free(ctx.a[i]);
    if (ctx.c) free(ctx.c[i]);
  }
  if (!ctx.plans) q8_gemm_plan_destroy(first);
  free(ctx.plans);
  free(ctx.a);
  free(ctx.c);
  q8_set_isa(NULL);
  qb_gemm_data_free(&data);
  return ok;
}

/* q8 on the dispatched ISA, timed in pairs with a peer (the same inputs). */
typedef struct gemm_partner {
  qb_gemm_data data;
  q8_gemm_plan *plan;
  void *c;
} gemm_partner;

static void run_partner(void *p) {
  gemm_partner *g = p;
  q8_gemm_run(g->plan, g->data.a, g->data.k, g->c, g->data.n);
}

static void partner_close(gemm_partner *g) {
  q8_gemm_plan_destroy(g->plan);
  free(g->c);
  qb_gemm_data_free(&g->data);
}

static bool partner_open(gemm_partner *g, const qb_shape *s, size_t threads, q8_dtype out, char *err,
                         size_t err_size) {
  *g = (gemm_partner){0};
  qb_gemm_data_init(&g->data, s->m, s->n, s->k, out);
  const q8_gemm_desc d = qb_gemm_desc(&g->data, out, threads);
  g->c = calloc(s->m * s->n, out == Q8_INT32 ? 4 : 1);
  if (g->c == NULL || q8_gemm_plan_create(&d, &g->plan) != Q8_OK ||
      q8_gemm_run(g->plan, g->data.a, s->k, g->c, s->n) != Q8_OK) {
    snprintf(err, err_size, "q8 beside the peer: %s", g->c ? q8_error_detail() : "out of memory");
    partner_close(g);
    return false;
  }
  return true;
}

bool qb_gemm_measure_peer(qb_peer peer, const qb_shape *shape, size_t threads, q8_dtype out,
                          const qb_method *method, qb_row *row, char *err, size_t err_size) {
  const char *why = NULL;
  if (!qb_peer_built(peer, &why)) {
    snprintf(err, err_size, "%s", why);
    return false;
  }
  /* The peer runs on as many threads as q8 resolves `threads` to (0: one per core). */
  gemm_partner partner;
  if (!partner_open(&partner, shape, threads, out, err, err_size)) return false;
  threads = q8_gemm_plan_threads(partner.plan);
  qb_peer_result result = {0};
  const size_t dims[3] = {shape->m, shape->n, shape->k};
  const qb_peer_timing timing = {.min_time = method->min_time, .partner = run_partner, .partner_ctx = &partner};
  const bool ok = qb_peer_gemm_measure(peer, dims, threads, out, &timing, method->check, &result, err, err_size);
  partner_close(&partner);
  if (!ok) return false;
  const char *name = qb_peer_name(peer);
  name_row(row, shape, out, name, threads);
  snprintf(row->library, sizeof row->library, "%s", name);
  snprintf(row->isa, sizeof row->isa, "%s", result.isa);
  snprintf(row->kernel, sizeof row->kernel, "%s", result.impl);
  row->t = result.t;
  row->threads = threads;
  row->rate = 2.0 * (double)shape->m * (double)shape->n * (double)shape->k / row->t.median_s * 1e-9;
  qb_row_set_pairs(row, &result);
  /* A peer is bounded by the machine's best multiply-add, as q8 is. */
  const q8_isa peak_isa = qb_peak_isa_for(Q8_ISA_REF);
  snprintf(row->peak_isa, sizeof row->peak_isa, "%s", q8_isa_name(peak_isa));
  row->peak = qb_peak_for(peak_isa, threads, method->min_time);
  row->checked = result.checked;
  row->max_abs_diff = result.max_abs_diff;
  row->check_ok = result.checked && result.max_abs_diff <= (out == Q8_INT32 ? 0 : 1);
  qb_note_peer(name, qb_peer_version(peer), result.isa);
  char extra[96], shape_arg[64];
  repro_method(extra, sizeof extra, method);
  repro_shape(shape_arg, sizeof shape_arg, shape);
  snprintf(row->repro, sizeof row->repro, "qbench gemm --isa %s --peer %s --shape %s --out %s --threads %zu%s",
           q8_isa_name(qb_dispatched_isa()), name, shape_arg, qb_out_name(out), threads, extra);
  return true;
}

bool qb_gemm_bench(const qb_selection *sel, q8_dtype out, const qb_method *method, const qb_outputs *o,
                   qb_rows *rows) {
  const qb_shapes *shapes = &sel->shapes;
  const bool *isa_wanted = sel->isa_wanted, *peer_wanted = sel->peer_wanted;
  const size_t threads = sel->threads;
  bool all_ok = true;
  size_t total = 0, done = 0;
  for (int i = 0; i < Q8_ISA_COUNT; ++i) total += isa_wanted[i];
  for (int p = 0; p < QB_PEER_COUNT; ++p) total += peer_wanted[p];
  total *= shapes->count;
  bool peer_skip_said[QB_PEER_COUNT] = {false};
  for (size_t s = 0; s < shapes->count; ++s) {
    const qb_shape *shape = &shapes->items[s];
    double ref_rate = NAN;
    for (int isa = 0; isa < Q8_ISA_COUNT; ++isa) {
      if (!isa_wanted[isa]) continue;
      qb_progress("[%zu/%zu] gemm %s %zux%zux%zu %s", ++done, total, shape->suite, shape->m, shape->n, shape->k,
                  q8_isa_name((q8_isa)isa));
      qb_row *row = qb_rows_add(rows);
      if (!qb_gemm_measure((q8_isa)isa, shape, threads, out, method, row)) {
        --rows->count;
        all_ok = false;
        continue;
      }
      if (isa == Q8_ISA_REF) ref_rate = row->rate;
      row->speedup_vs_ref = row->rate / ref_rate;
      if ((row->checked && !row->check_ok) || (row->bitwise_checked && !row->bitwise_ok)) all_ok = false;
      qb_table_row(o, row);
    }
    for (int p = 0; p < QB_PEER_COUNT; ++p) {
      if (!peer_wanted[p]) continue;
      qb_progress("[%zu/%zu] gemm %s %zux%zux%zu %s", ++done, total, shape->suite, shape->m, shape->n, shape->k,
                  qb_peer_name((qb_peer)p));
      qb_row *row = qb_rows_add(rows);
      char err[256];
      if (!qb_gemm_measure_peer((qb_peer)p, shape, threads, out, method, row, err, sizeof err)) {
        --rows->count;
        if (!peer_skip_said[p]) { /* a peer that cannot do a case says so once, not per shape */
          qb_progress_clear();
          fprintf(o->table, "    %s skipped: %s\n", qb_peer_name((qb_peer)p), err);
          peer_skip_said[p] = true;
        }
        continue;
      }
      row->speedup_vs_ref = row->rate / ref_rate;
      if (row->checked && !row->check_ok) all_ok = false;
      qb_table_row(o, row);
    }
  }
  qb_progress_clear();
  return all_ok;
}

static void usage(FILE *f) {
  fputs("usage: qbench gemm [--isa NAME[,NAME...]|all|none] [--shape MxNxK[,MxNxK...]]\n"
        "                   [--suite NAME] [--shapes FILE] [--peers | --peer NAME]\n"
        "                   [--threads N] [--out s32|s8|u8] [--min-time S] [--quick] [--core N]\n"
        "                   [--cold] [--check] [--bitwise] [--repro] [--json FILE|-] [--csv FILE|-]\n\n"
        "Times C = A x W^T through q8_gemm_run (int8 A with zero point, int8 weights with\n"
        "per-channel scales and bias; packing is done once at plan creation and not\n"
        "timed): warm-up, then samples over at least --min-time seconds, each about a\n"
        "200th of it (>= 1 call, >= 5 samples): their median (see README, Method).\n"
        "Prints GOPS (2*M*N*K per second) and the fraction of the peak of the same ISA\n"
        "measured in the same run on the same number of cores (ref, hwy and peer rows use\n"
        "the machine's best peak), and the speed-up over ref when ref ran. For M <= 16 it\n"
        "also prints packed-weight GB/s against the measured read bandwidth of the cache\n"
        "level that holds the weights.\n\n"
        "  --isa      ISAs to time (default: all usable): ref hwy avx2 avxvnni avx512vnni\n"
        "             amx neon neondot neoni8mm; naming an unusable one is an error;\n"
        "             none: peers only (plus q8's dispatched ISA's row)\n"
        "  --shape    shapes MxNxK (default 1024x1024x1024 when no --suite/--shapes);\n"
        "             SUITE:MxNxK names the row as in that suite (what repro prints)\n"
        "  --suite    square (256..2048), transformer (M 1,8,64,256 x 768/3072/4096),\n"
        "             resnet50, mobilenetv2 (their convolutions as GEMMs), small, all\n"
        "  --shapes   a file with one MxNxK per line ('#' starts a comment)\n"
        "  --peers    also time every peer this build found (oneDNN, XNNPACK) on the same\n"
        "             inputs, in alternating slots with q8's dispatched plan: q8's speed-up\n"
        "             is the median slot pair's (with quartiles); --peer NAME for one\n"
        "  --threads  default 1; 0 = one per physical core\n"
        "  --out      s32 (default), s8 or u8 (fused requantization, fp32 mode)\n"
        "  --min-time seconds of samples per row (default 0.2); --quick = 0.05\n"
        "  --core     the physical core qbench runs on (default 0; threads go to the\n"
        "             cores after it)\n"
        "  --cold     rotate among copies of weights, inputs and outputs spanning twice\n"
        "             the last-level cache (peers are timed warm)\n"
        "  --check    verify each timed output against the reference, byte for byte\n"
        "             (peers: within 1)\n"
        "  --bitwise  run each case again and compare the bytes (determinism)\n",
        f);
  fputs(qb_outputs_help, f);
}

const char qb_outputs_help[] =
    "  --repro    print a one-line reproducer under each row\n"
    "  --json     write Google Benchmark JSON, docs/results.md ('-': stdout, table to stderr)\n"
    "  --csv      write the rows as CSV ('-': stdout)\n\n"
    "Exit status: 0, 1 when a case failed (plan, --check, --bitwise), 2 bad arguments.\n";

int qb_usage_error(const char *command, const char *fmt, const char *arg) {
  fprintf(stderr, "qbench %s: ", command);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see qbench %s --help)\n", command);
  return 2;
}

static int fail_usage(const char *fmt, const char *arg) { return qb_usage_error("gemm", fmt, arg); }

/* --isa LIST: names, "all", "none"; 0 or 2 (message printed). */
int qb_parse_isa_list(const char *list, bool wanted[Q8_ISA_COUNT], bool *any, const char *prefix) {
  const char *p = list;
  do {
    const char *comma = strchr(p, ',');
    const size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
    if (strcmp(name, "all") == 0) {
      for (int k = 0; k < Q8_ISA_COUNT; ++k) wanted[k] |= q8_isa_usable_on((q8_isa)k, q8_cpu(), NULL);
    } else if (strcmp(name, "none") != 0) {
      q8_isa isa;
      if (!q8_isa_from_name(name, &isa)) {
        fprintf(stderr, "%s: --isa '%s' is not an ISA q8 knows (ref hwy avx2 avxvnni avx512vnni amx neon neondot neoni8mm)\n",
                prefix, name);
        return 2;
      }
      const char *reason = NULL;
      if (!q8_isa_usable_on(isa, q8_cpu(), &reason)) {
        fprintf(stderr, "%s: --isa %s cannot run on this machine: %s\n", prefix, name, reason);
        return 2;
      }
      wanted[isa] = true;
    }
    *any = true;
    p = comma ? comma + 1 : NULL;
  } while (p);
  return 0;
}

/* --peer NAME / --peers; 0 or 2. */
static int parse_peer(const char *name, bool wanted[QB_PEER_COUNT], const char *prefix) {
  for (int p = 0; p < QB_PEER_COUNT; ++p) {
    if (name == NULL || strcmp(name, qb_peer_name((qb_peer)p)) == 0) {
      const char *why = NULL;
      if (qb_peer_built((qb_peer)p, &why)) {
        wanted[p] = true;
      } else if (name != NULL) {
        fprintf(stderr, "%s: --peer %s: %s\n", prefix, name, why);
        return 2;
      } else {
        fprintf(stderr, "%s: --peers: no %s rows: %s\n", prefix, qb_peer_name((qb_peer)p), why);
      }
      if (name != NULL) return 0;
    }
  }
  if (name != NULL) {
    fprintf(stderr, "%s: --peer '%s': expected onednn or xnnpack\n", prefix, name);
    return 2;
  }
  return 0;
}

int qb_parse_selection(int argc, char **argv, int *i, qb_selection *sel, const char *prefix) {
  const char *arg = argv[*i];
  const bool has_value = *i + 1 < argc;
  char err[512];
  int rc = 0;
  if (strcmp(arg, "--isa") == 0 && has_value) {
    rc = qb_parse_isa_list(argv[++*i], sel->isa_wanted, &sel->any_isa, prefix);
  } else if (strcmp(arg, "--shape") == 0 && has_value) {
    if (!qb_shapes_add_list(&sel->shapes, argv[++*i], "cli", err, sizeof err)) {
      fprintf(stderr, "%s: %s\n", prefix, err);
      rc = 2;
    }
  } else if (strcmp(arg, "--suite") == 0 && has_value) {
    if (!qb_shapes_add_suite(&sel->shapes, argv[++*i])) {
      fprintf(stderr, "%s: --suite '%s': expected default, square, transformer, resnet50, mobilenetv2, small or all\n",
              prefix, argv[*i]);
      rc = 2;
    }
  } else if (strcmp(arg, "--shapes") == 0 && has_value) {
    if (!qb_shapes_add_file(&sel->shapes, argv[++*i], err, sizeof err)) {
      fprintf(stderr, "%s: --shapes: %s\n", prefix, err);
      rc = 2;
    }
  } else if (strcmp(arg, "--peers") == 0) {
    rc = parse_peer(NULL, sel->peer_wanted, prefix);
  } else if (strcmp(arg, "--peer") == 0 && has_value) {
    rc = parse_peer(argv[++*i], sel->peer_wanted, prefix);
  } else if (strcmp(arg, "--threads") == 0 && has_value) {
    char *end;
    const long t = strtol(argv[++*i], &end, 10);
    if (end == argv[*i] || *end != '\0' || t < 0 || t > 1024) {
      fprintf(stderr, "%s: --threads '%s': expected 0..1024 (0: one per physical core)\n", prefix, argv[*i]);
      rc = 2;
    } else {
      sel->threads = t == 0 ? q8_default_threads() : (size_t)t;
    }
  } else {
    return 0;
  }
  return rc == 0 ? 1 : -1;
}

void qb_selection_finish(qb_selection *sel, const char *default_suite) {
  if (!sel->any_isa) {
    for (int k = 0; k < Q8_ISA_COUNT; ++k) sel->isa_wanted[k] = q8_isa_usable_on((q8_isa)k, q8_cpu(), NULL);
  }
  bool any_peer = false;
  for (int p = 0; p < QB_PEER_COUNT; ++p) any_peer |= sel->peer_wanted[p];
  if (any_peer) sel->isa_wanted[qb_dispatched_isa()] = true; /* the q8 side of q8/peer */
  if (sel->threads == 0) sel->threads = 1;
  if (sel->shapes.count == 0) {
    char err[64];
    if (!qb_shapes_add_suite(&sel->shapes, default_suite)) qb_shapes_add_list(&sel->shapes, default_suite, "cli", err, sizeof err);
  }
}

int qb_cmd_gemm(int argc, char **argv) {
  qb_selection sel = {.threads = 1};
  qb_method method = {.min_time = 0.2};
  qb_outputs outputs;
  qb_outputs_init(&outputs);
  q8_dtype out = Q8_INT32;
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; ++i) {
    const char *arg = argv[i];
    int used = qb_parse_method(argc, argv, &i, &method, "qbench gemm");
    if (used == 0) used = qb_parse_outputs(argc, argv, &i, &outputs, "qbench gemm");
    if (used == 0) used = qb_parse_selection(argc, argv, &i, &sel, "qbench gemm");
    if (used < 0) rc = 2;
    if (used != 0) continue;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      qb_shapes_free(&sel.shapes);
      return 0;
    } else if (strcmp(arg, "--out") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      if (strcmp(v, "s32") == 0) out = Q8_INT32;
      else if (strcmp(v, "s8") == 0) out = Q8_INT8;
      else if (strcmp(v, "u8") == 0) out = Q8_UINT8;
      else rc = fail_usage("--out '%s': expected s32, s8 or u8", v);
    } else {
      rc = fail_usage("unknown or incomplete option '%s'", arg);
    }
  }
  bool forced;
  q8_isa forced_isa;
  if (rc == 0 && q8_forced(&forced, &forced_isa) != Q8_OK) {
    fprintf(stderr, "qbench gemm: %s\n", q8_error_detail());
    rc = 2;
  }
  if (rc != 0) {
    qb_shapes_free(&sel.shapes);
    return rc;
  }
  qb_selection_finish(&sel, "1024x1024x1024");

  if (!qb_pin_main_thread(&method, "qbench gemm")) return 2;
  qb_note_method(method.min_time, method.cold, method.check, method.bitwise);
  qb_rows rows = {0};
  qb_table_header(&outputs);
  const bool ok = qb_gemm_bench(&sel, out, &method, &outputs, &rows);
  rc = qb_write_outputs(&outputs, rows.items, rows.count);
  qb_rows_free(&rows);
  qb_shapes_free(&sel.shapes);
  return rc != 0 ? rc : ok ? 0 : 1;
}
