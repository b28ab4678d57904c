/* The default qbench run: machine info, then every registered kernel this
 * machine can run, each beside the measured peak that bounds it. */
#define _POSIX_C_SOURCE 200809L /* gmtime_r, mkdir */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench/qbench.h"
#include "dispatch/cpu.h"
#include "dispatch/registry.h"

typedef struct suite_opts {
  double min_time;
  const char *json_path; /* NULL: none; "-": stdout */
  const char *csv_path;  /* NULL: none */
  const char *results_dir; /* where the run's JSON is saved; NULL: not saved */
} suite_opts;

typedef struct row {
  char name[96];
  char kernel_name[96];
  const char *kernel;
  const char *isa;
  const char *unit; /* "GB/s" or "GOPS" */
  double time_s, rate, peak, ref_rate;
  long long m, n, k, count;
} row;

/* ---- element-wise kernels ---- */
typedef struct elementwise_ctx {
  const q8_kernel *kernel;
  size_t count;
  float *f32;
  int32_t *i32;
  int8_t *i8;
  q8_quant_params qp;
  q8_requant_params rq;
} elementwise_ctx;

static void run_elementwise(void *p) {
  elementwise_ctx *c = p;
  switch (c->kernel->op) {
    case Q8_OP_QUANTIZE:
      c->kernel->quantize(c->f32, c->count, 1, &c->qp, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE, c->i8);
      break;
    case Q8_OP_DEQUANTIZE: c->kernel->dequantize(c->i8, c->count, 1, &c->qp, c->f32); break;
    case Q8_OP_REQUANTIZE: c->kernel->requantize(c->i32, c->count, 1, &c->rq, c->i8); break;
    default: break;
  }
}

static const char *requant_mode_name(q8_requant_mode mode) {
  return mode == Q8_REQUANT_GEMMLOWP ? "gemmlowp" : mode == Q8_REQUANT_SINGLE ? "single" : "fp32";
}

static size_t usable_kernels(q8_op op, const q8_kernel **out, size_t max) {
  size_t count, n = 0;
  const q8_kernel *all = q8_kernels(&count);
  for (size_t i = 0; i < count && n < max; ++i) {
    if (all[i].op == op && q8_isa_usable_on(all[i].isa, q8_cpu(), NULL)) out[n++] = &all[i];
  }
  return n;
}

static size_t bench_elementwise(const suite_opts *o, double bandwidth, row *rows, size_t max) {
  const size_t count = 1u << 20;
  int32_t multiplier = 1 << 30, shift = -8;
  float rq_scale = 1.0f / 512.0f, scale = 0.05f;
  int32_t zp = 3;
  elementwise_ctx ctx = {.count = count,
                         .f32 = malloc(count * sizeof(float)),
                         .i32 = malloc(count * sizeof(int32_t)),
                         .i8 = malloc(count),
                         .qp = {Q8_INT8, 1, &scale, &zp},
                         .rq = {Q8_REQUANT_GEMMLOWP, Q8_INT8, 3, -128, 127, 1, &multiplier, &shift,
                                &rq_scale}};
  for (size_t i = 0; i < count; ++i) {
    ctx.f32[i] = (float)((int)(i * 2654435761u % 20001u) - 10000) * 0.001f;
    ctx.i32[i] = (int32_t)(i * 2654435761u % 131071u) - 65535;
    ctx.i8[i] = (int8_t)(i * 31u);
  }
  size_t n = 0;
  const q8_op ops[] = {Q8_OP_REQUANTIZE, Q8_OP_REQUANTIZE, Q8_OP_REQUANTIZE, Q8_OP_QUANTIZE,
                       Q8_OP_DEQUANTIZE};
  const q8_requant_mode modes[] = {Q8_REQUANT_GEMMLOWP, Q8_REQUANT_SINGLE, Q8_REQUANT_FP32};
  for (size_t t = 0; t < sizeof ops / sizeof ops[0] && n < max; ++t) {
    const q8_kernel *kernels[Q8_ISA_COUNT];
    const size_t nk = usable_kernels(ops[t], kernels, Q8_ISA_COUNT);
    double ref_rate = 0.0;
    for (size_t i = 0; i < nk && n < max; ++i) {
      ctx.kernel = kernels[i];
      size_t bytes_per_elem = 5; /* int32 in, int8 out */
      if (ops[t] == Q8_OP_REQUANTIZE) {
        ctx.rq.mode = modes[t];
        snprintf(rows[n].name, sizeof rows[n].name, "requantize/%s/%zu", requant_mode_name(modes[t]), count);
      } else {
        snprintf(rows[n].name, sizeof rows[n].name, "%s/%zu", q8_op_name(ops[t]), count);
      }
      const qb_timing tm = qb_measure(run_elementwise, &ctx, o->min_time, 5);
      row *r = &rows[n++];
      r->kernel = kernels[i]->name;
      r->isa = q8_isa_name(kernels[i]->isa);
      r->unit = "GB/s";
      r->time_s = tm.median_s;
      r->rate = (double)(count * bytes_per_elem) / tm.median_s * 1e-9;
      r->peak = bandwidth * 1e-9;
      r->count = (long long)count;
      if (kernels[i]->isa == Q8_ISA_REF) ref_rate = r->rate;
      r->ref_rate = ref_rate;
    }
  }
  free(ctx.f32);
  free(ctx.i32);
  free(ctx.i8);
  return n;
}

/* GEMM rows through the same measurement as `qbench gemm`: every usable ISA
 * forced in turn, single thread, int8 output, against that ISA's peak. */
static size_t bench_gemm(const suite_opts *o, row *rows, size_t max) {
  static const size_t shapes[][3] = {{1, 768, 768}, {64, 768, 768}, {256, 256, 256}};
  size_t n = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
    double ref_rate = 0.0;
    for (int isa = 0; isa < Q8_ISA_COUNT && n < max; ++isa) {
      if (!q8_isa_usable_on((q8_isa)isa, q8_cpu(), NULL)) continue;
      qb_gemm_row g;
      if (!qb_gemm_measure((q8_isa)isa, shapes[s], 1, Q8_INT8, o->min_time, false, &g)) continue;
      row *r = &rows[n++];
      snprintf(r->name, sizeof r->name, "gemm/%zux%zux%zu/s8", g.m, g.n, g.k);
      snprintf(r->kernel_name, sizeof r->kernel_name, "%s", g.kernel);
      r->kernel = r->kernel_name;
      r->isa = q8_isa_name((q8_isa)isa);
      r->unit = "GOPS";
      r->time_s = g.t.median_s;
      r->rate = g.gops;
      r->peak = g.peak;
      r->m = (long long)g.m;
      r->n = (long long)g.n;
      r->k = (long long)g.k;
      if (isa == Q8_ISA_REF) ref_rate = r->rate;
      r->ref_rate = ref_rate;
    }
  }
  return n;
}

static void print_rows(FILE *out, const row *rows, size_t n) {
  fprintf(out, "\n%-30s %-32s %10s %10s %8s %8s\n", "benchmark", "kernel", "time", "rate",
          "of peak", "vs ref");
  for (size_t i = 0; i < n; ++i) {
    const row *r = &rows[i];
    char peak[16] = "n/a";
    if (isfinite(r->peak)) snprintf(peak, sizeof peak, "%.0f%%", 100.0 * r->rate / r->peak);
    fprintf(out, "%-30s %-32s %8.1fus %6.2f %-4s %8s %7.2fx\n", r->name, r->kernel,
            r->time_s * 1e6, r->rate, r->unit, peak, r->ref_rate > 0 ? r->rate / r->ref_rate : 0.0);
  }
}

static void write_json(FILE *out, const row *rows, size_t n, double bandwidth) {
  qb_json j = {.out = out};
  qb_json_begin_object(&j, NULL);
  qb_json_begin_object(&j, "context");
  qb_json_context_fields(&j);
  qb_json_number(&j, "read_bandwidth_gbps", bandwidth * 1e-9);
  qb_json_end_object(&j);
  qb_json_begin_array(&j, "benchmarks");
  for (size_t i = 0; i < n; ++i) {
    const row *r = &rows[i];
    char name[160];
    snprintf(name, sizeof name, "%.96s/%.32s", r->name, r->isa);
    qb_json_begin_object(&j, NULL);
    qb_json_string(&j, "name", name);
    qb_json_string(&j, "run_name", name);
    qb_json_string(&j, "run_type", "iteration");
    qb_json_int(&j, "iterations", 1);
    qb_json_number(&j, "real_time", r->time_s * 1e9);
    qb_json_number(&j, "cpu_time", r->time_s * 1e9);
    qb_json_string(&j, "time_unit", "ns");
    qb_json_string(&j, "isa", r->isa);
    qb_json_string(&j, "kernel", r->kernel);
    if (strcmp(r->unit, "GOPS") == 0) {
      qb_json_int(&j, "m", r->m);
      qb_json_int(&j, "n", r->n);
      qb_json_int(&j, "k", r->k);
      qb_json_number(&j, "gops", r->rate);
    } else {
      qb_json_int(&j, "count", r->count);
      qb_json_number(&j, "gbps", r->rate);
    }
    qb_json_number(&j, "peak", r->peak);
    qb_json_number(&j, "peak_fraction", r->rate / r->peak);
    qb_json_number(&j, "speedup_vs_ref", r->ref_rate > 0 ? r->rate / r->ref_rate : NAN);
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  qb_json_end_object(&j);
}

static void write_csv(FILE *out, const row *rows, size_t n) {
  fputs("name,isa,kernel,unit,time_ns,rate,peak,peak_fraction,speedup_vs_ref\n", out);
  for (size_t i = 0; i < n; ++i) {
    const row *r = &rows[i];
    fprintf(out, "%s/%s,%s,%s,%s,%.1f,%.6g,%.6g,%.6g,%.6g\n", r->name, r->isa, r->isa, r->kernel,
            r->unit, r->time_s * 1e9, r->rate, r->peak, r->rate / r->peak,
            r->ref_rate > 0 ? r->rate / r->ref_rate : NAN);
  }
}

/* results/<cpu model>-<date>.json: lower case, runs of other characters as '-'. */
static void results_path(const char *dir, char *path, size_t size) {
  char slug[96];
  size_t n = 0;
  for (const char *c = q8_cpu()->model; *c && n + 1 < sizeof slug; ++c) {
    const char ch = *c;
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
      slug[n++] = ch;
    } else if (ch >= 'A' && ch <= 'Z') {
      slug[n++] = (char)(ch - 'A' + 'a');
    } else if (n > 0 && slug[n - 1] != '-') {
      slug[n++] = '-';
    }
  }
  while (n > 0 && slug[n - 1] == '-') --n;
  slug[n] = '\0';
  const time_t now = time(NULL);
  struct tm day;
  gmtime_r(&now, &day);
  char date[16];
  strftime(date, sizeof date, "%Y-%m-%d", &day);
  snprintf(path, size, "%s/%s-%s.json", dir, n ? slug : "unknown-cpu", date);
}

static int write_file(const char *path, void (*writer)(FILE *, const row *, size_t, double),
                      const row *rows, size_t n, double bandwidth) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "qbench: cannot write '%s': %s\n", path, strerror(errno));
    return 1;
  }
  writer(f, rows, n, bandwidth);
  return fclose(f) == 0 ? 0 : 1;
}

static void write_csv_file(FILE *f, const row *rows, size_t n, double bandwidth) {
  (void)bandwidth;
  write_csv(f, rows, n);
}

static void usage(FILE *out) {
  fputs("usage: qbench [--min-time S] [--quick] [--json FILE|-] [--csv FILE]\n"
        "              [--results-dir DIR | --no-save]\n\n"
        "With no subcommand: prints `qbench info`, measures the machine's read bandwidth,\n"
        "then times every registered kernel this CPU can run (element-wise kernels in\n"
        "GB/s against the measured bandwidth; GEMM in GOPS) with the speed-up over ref.\n"
        "Each figure is the median of >= 5 samples after a warm-up.\n\n"
        "  --min-time S   seconds of samples per benchmark (default 0.2)\n"
        "  --quick        --min-time 0.05\n"
        "  --json FILE    also write Google Benchmark-style JSON ('-': stdout, table to stderr)\n"
        "  --csv FILE     also write the rows as CSV\n"
        "  --results-dir DIR  save the JSON as DIR/<cpu model>-<date>.json (default results)\n"
        "  --no-save      do not save it\n"
        "  --help         this text\n\n"
        "Subcommands: info, peak, gemm, compare. `qbench <subcommand> --help` describes each.\n", out);
}

int qb_cmd_suite(int argc, char **argv) {
  suite_opts o = {.min_time = 0.2, .results_dir = "results"};
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--quick") == 0) {
      o.min_time = 0.05;
    } else if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
      char *end;
      o.min_time = strtod(argv[++i], &end);
      if (*end != '\0' || !(o.min_time > 0.0) || o.min_time > 60.0) {
        fprintf(stderr, "qbench: --min-time '%s': expected seconds in (0, 60]\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      o.json_path = argv[++i];
    } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
      o.csv_path = argv[++i];
    } else if (strcmp(argv[i], "--results-dir") == 0 && i + 1 < argc) {
      o.results_dir = argv[++i];
    } else if (strcmp(argv[i], "--no-save") == 0) {
      o.results_dir = NULL;
    } else {
      fprintf(stderr, "qbench: unknown option or subcommand '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  const bool json_stdout = o.json_path && strcmp(o.json_path, "-") == 0;
  FILE *table = json_stdout ? stderr : stdout;
  char *info_argv[] = {"info", NULL};
  if (!json_stdout) {
    const int rc = qb_cmd_info(1, info_argv);
    if (rc != 0) return rc;
  }
  const q8_cpu_info *cpu = q8_cpu();
  /* Element-wise kernels stream 5 MiB: size the probe the same way, and at
   * least four times L2 so both see the same memory level. */
  size_t probe_bytes = (size_t)5 << 20;
  if (cpu->l2_bytes * 4 > probe_bytes) probe_bytes = cpu->l2_bytes * 4;
  const double bandwidth = qb_read_bandwidth(probe_bytes, o.min_time);
  fprintf(table, "\nMeasured read bandwidth (%zu KiB stream): %.1f GB/s\n", probe_bytes >> 10,
          bandwidth * 1e-9);

  row rows[64];
  size_t n = bench_elementwise(&o, bandwidth, rows, 64);
  n += bench_gemm(&o, rows + n, 64 - n);
  print_rows(table, rows, n);
  int rc = 0;
  if (json_stdout) {
    write_json(stdout, rows, n, bandwidth);
  } else if (o.json_path) {
    rc |= write_file(o.json_path, write_json, rows, n, bandwidth);
  }
  if (o.csv_path) rc |= write_file(o.csv_path, write_csv_file, rows, n, bandwidth);
  if (o.results_dir) {
    char path[512];
    results_path(o.results_dir, path, sizeof path);
    if (mkdir(o.results_dir, 0777) != 0 && errno != EEXIST) {
      fprintf(stderr, "qbench: cannot create '%s': %s\n", o.results_dir, strerror(errno));
      rc = 1;
    } else if (write_file(path, write_json, rows, n, bandwidth) == 0) {
      fprintf(table, "\nResults saved to %s (compare runs with: qbench compare OLD.json NEW.json)\n", path);
    } else {
      rc = 1;
    }
  }
  return rc;
}
