#define _POSIX_C_SOURCE 200809L /* strtok_r */
/* qbench gemm: times q8_gemm_run (never the packing) per ISA and shape, each
 * figure beside the peak of the same ISA measured in the same run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

#define MAX_SHAPES 64

typedef struct gemm_opts {
  bool isa_wanted[Q8_ISA_COUNT];
  size_t shapes[MAX_SHAPES][3];
  size_t shape_count;
  size_t threads;
  q8_dtype out;
  double min_time;
  const char *json_path;
  const char *csv_path;
  bool check, repro;
} gemm_opts;

const char *qb_out_name(q8_dtype out) {
  return out == Q8_INT32 ? "s32" : out == Q8_INT8 ? "s8" : "u8";
}

static void usage(FILE *f) {
  fputs("usage: qbench gemm [--isa NAME[,NAME...]|all] [--shape MxNxK[,MxNxK...]]\n"
        "                   [--threads N] [--out s32|s8|u8] [--min-time S] [--check] [--repro]\n"
        "                   [--json FILE|-] [--csv FILE]\n\n"
        "Times C = A x W^T through q8_gemm_run (int8 A with zero point, int8 weights with\n"
        "per-channel scales and bias; packing is done once at plan creation and not\n"
        "timed): warm-up, then samples over at least --min-time seconds, median of >= 5.\n"
        "Prints GOPS (2*M*N*K per second) and the fraction of the peak of the same ISA\n"
        "measured in the same run on the same number of cores (ref and hwy rows use the\n"
        "machine's best peak). For M <= 16 it also prints packed-weight GB/s against the\n"
        "measured read bandwidth of the cache level that holds the weights.\n\n"
        "  --isa      ISAs to time (default: all usable): ref hwy avx2 avxvnni avx512vnni\n"
        "             amx neon neondot neoni8mm; naming an unusable one is an error\n"
        "  --shape    default 1024x1024x1024\n"
        "  --threads  default 1; 0 = one per physical core\n"
        "  --out      s32 (default), s8 or u8 (fused requantization, fp32 mode)\n"
        "  --min-time seconds of samples per row (default 0.2)\n"
        "  --check    verify each timed output against the reference, byte for byte\n"
        "  --repro    print a one-line reproducer under each row\n"
        "  --json     write Google Benchmark-style JSON ('-': stdout, table to stderr)\n"
        "  --csv      write the rows as CSV\n", f);
}

static int fail_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "qbench gemm: ");
  fprintf(stderr, fmt, arg);
  fputs("\n(see qbench gemm --help)\n", stderr);
  return 2;
}

static bool parse_shape(const char *text, size_t shape[3]) {
  const char *p = text;
  for (int i = 0; i < 3; ++i) {
    char *end;
    if (*p < '0' || *p > '9') return false;
    const unsigned long long v = strtoull(p, &end, 10);
    if (v == 0 || v > (1ull << 31)) return false;
    shape[i] = (size_t)v;
    if (i < 2 && *end != 'x') return false;
    p = end + (i < 2);
    if (i == 2 && *end != '\0') return false;
  }
  return true;
}

static int parse(int argc, char **argv, gemm_opts *o) {
  *o = (gemm_opts){.threads = 1, .out = Q8_INT32, .min_time = 0.2};
  bool any_isa = false;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(arg, "--check") == 0) {
      o->check = true;
    } else if (strcmp(arg, "--repro") == 0) {
      o->repro = true;
    } else if (strcmp(arg, "--isa") == 0 && has_value) {
      char list[256];
      snprintf(list, sizeof list, "%s", argv[++i]);
      for (char *save, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (strcmp(name, "all") == 0) {
          for (int k = 0; k < Q8_ISA_COUNT; ++k) o->isa_wanted[k] |= q8_isa_usable_on((q8_isa)k, q8_cpu(), NULL);
          any_isa = true;
          continue;
        }
        q8_isa isa;
        if (!q8_isa_from_name(name, &isa)) return fail_usage("--isa: '%s' is not an ISA q8 knows", name);
        const char *reason = NULL;
        if (!q8_isa_usable_on(isa, q8_cpu(), &reason)) {
          fprintf(stderr, "qbench gemm: --isa %s cannot run on this machine: %s\n", name, reason);
          return 2;
        }
        o->isa_wanted[isa] = true;
        any_isa = true;
      }
    } else if (strcmp(arg, "--shape") == 0 && has_value) {
      char list[1024];
      snprintf(list, sizeof list, "%s", argv[++i]);
      for (char *save, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (o->shape_count == MAX_SHAPES) return fail_usage("--shape: more than %s shapes", "64");
        if (!parse_shape(s, o->shapes[o->shape_count])) {
          return fail_usage("--shape '%s': expected MxNxK with positive integers", s);
        }
        if (o->shapes[o->shape_count][2] > Q8_GEMM_MAX_K) {
          return fail_usage("--shape '%s': K exceeds Q8_GEMM_MAX_K (33025)", s);
        }
        ++o->shape_count;
      }
    } else if (strcmp(arg, "--threads") == 0 && has_value) {
      char *end;
      const long t = strtol(argv[++i], &end, 10);
      if (*end != '\0' || t < 0 || t > 1024) return fail_usage("--threads '%s': expected 0..1024", argv[i]);
      o->threads = t == 0 ? q8_default_threads() : (size_t)t;
    } else if (strcmp(arg, "--out") == 0 && has_value) {
      const char *v = argv[++i];
      if (strcmp(v, "s32") == 0) o->out = Q8_INT32;
      else if (strcmp(v, "s8") == 0) o->out = Q8_INT8;
      else if (strcmp(v, "u8") == 0) o->out = Q8_UINT8;
      else return fail_usage("--out '%s': expected s32, s8 or u8", v);
    } else if (strcmp(arg, "--min-time") == 0 && has_value) {
      char *end;
      o->min_time = strtod(argv[++i], &end);
      if (*end != '\0' || !(o->min_time > 0.0) || o->min_time > 60.0) {
        return fail_usage("--min-time '%s': expected seconds in (0, 60]", argv[i]);
      }
    } else if (strcmp(arg, "--json") == 0 && has_value) {
      o->json_path = argv[++i];
    } else if (strcmp(arg, "--csv") == 0 && has_value) {
      o->csv_path = argv[++i];
    } else {
      return fail_usage("unknown or incomplete option '%s'", arg);
    }
  }
  if (!any_isa) {
    for (int k = 0; k < Q8_ISA_COUNT; ++k) o->isa_wanted[k] = q8_isa_usable_on((q8_isa)k, q8_cpu(), NULL);
  }
  if (o->shape_count == 0) {
    o->shapes[0][0] = o->shapes[0][1] = o->shapes[0][2] = 1024;
    o->shape_count = 1;
  }
  return 0;
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

/* The ISA whose multiply-add bounds a row: itself for the SIMD ISAs, the
 * machine's best for the portable paths. */
static q8_isa peak_isa_for(q8_isa isa) {
  if (isa != Q8_ISA_REF && isa != Q8_ISA_HWY) return isa;
  static const q8_isa best[] = {Q8_ISA_AMX, Q8_ISA_AVX512VNNI, Q8_ISA_AVXVNNI, Q8_ISA_AVX2,
                                Q8_ISA_NEONI8MM, Q8_ISA_NEONDOT, Q8_ISA_NEON};
  for (size_t i = 0; i < sizeof best / sizeof best[0]; ++i) {
    if (q8_isa_usable_on(best[i], q8_cpu(), NULL) && qb_peak_usable(best[i], NULL)) return best[i];
  }
  return isa;
}

static double peak_gops(q8_isa isa, size_t threads, double min_time) {
  static double cache[Q8_ISA_COUNT][8];
  const size_t slot = threads < 8 ? threads : 7;
  if (cache[isa][slot] == 0.0) {
    peak_job job = {.isa = isa, .min_time = min_time};
    if (threads > 1024) threads = 1024;
    q8_parallel_for(threads, threads, peak_task, &job);
    double sum = 0.0;
    for (size_t i = 0; i < threads; ++i) sum += job.gops[i];
    cache[isa][slot] = sum;
  }
  return cache[isa][slot];
}

/* Read bandwidth of the level that holds `bytes` of weights (per thread). */
static double weight_bandwidth(size_t bytes, double min_time, int *level_out) {
  const q8_cpu_info *cpu = q8_cpu();
  int level = 4;
  if (cpu->l2_bytes && bytes <= cpu->l2_bytes) level = 2;
  else if (cpu->l3_bytes && bytes <= cpu->l3_bytes) level = 3;
  *level_out = level;
  static double cache[5];
  if (cache[level] == 0.0) cache[level] = qb_bandwidth_level(level, min_time, NULL);
  return cache[level];
}



typedef struct run_ctx {
  const q8_gemm_plan *plan;
  const void *a;
  void *c;
  size_t k, n;
} run_ctx;

static void run_plan(void *p) {
  run_ctx *r = p;
  q8_gemm_run(r->plan, r->a, r->k, r->c, r->n);
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

bool qb_gemm_measure(q8_isa isa, const size_t shape[3], size_t threads, q8_dtype out,
                     double min_time, bool check, qb_gemm_row *row) {
  const size_t m = shape[0], n = shape[1], k = shape[2];
  qb_gemm_data data;
  qb_gemm_data_init(&data, m, n, k, out);
  const int8_t *a = data.a;
  const size_t esize = out == Q8_INT32 ? 4 : 1;
  unsigned char *c = malloc(m * n * esize);
  q8_set_isa(q8_isa_name(isa));
  const q8_gemm_desc d = qb_gemm_desc(&data, out, threads);
  q8_gemm_plan *plan = NULL;
  bool ok = q8_gemm_plan_create(&d, &plan) == Q8_OK;
  if (!ok) {
    fprintf(stderr, "qbench gemm: %s: %s\n", q8_isa_name(isa), q8_error_detail());
  } else {
    run_ctx ctx = {.plan = plan, .a = a, .c = c, .k = k, .n = n};
    row->t = qb_measure(run_plan, &ctx, min_time, 5);
    snprintf(row->kernel, sizeof row->kernel, "%s", q8_gemm_plan_kernel(plan));
    row->isa = isa;
    row->m = m;
    row->n = n;
    row->k = k;
    row->threads = q8_gemm_plan_threads(plan);
    row->out = out;
    snprintf(row->name, sizeof row->name, "gemm/%zux%zux%zu/%s/%s/threads:%zu", m, n, k, qb_out_name(out),
             q8_isa_name(isa), row->threads);
    row->gops = 2.0 * (double)m * (double)n * (double)k / row->t.median_s * 1e-9;
    row->peak_isa = peak_isa_for(isa);
    row->peak = peak_gops(row->peak_isa, row->threads, min_time);
    const size_t packed = q8_gemm_plan_packed_bytes(plan);
    row->weight_gbps = (double)packed / row->t.median_s * 1e-9;
    row->bandwidth = m <= 16 ? weight_bandwidth(packed / row->threads, min_time, &row->level) * 1e-9 *
                                   (double)row->threads
                             : NAN;
    if (check) {
      unsigned char *want = malloc(m * n * esize);
      row->checked = true;
      row->check_ok = qb_gemm_reference(&data, out, want) && memcmp(want, c, m * n * esize) == 0;
      free(want);
    }
    q8_gemm_plan_destroy(plan);
  }
  q8_set_isa(NULL);
  qb_gemm_data_free(&data);
  free(c);
  return ok;
}

static void print_row(FILE *f, const gemm_opts *o, const qb_gemm_row *r) {
  fprintf(f, "%-22s %-11s %-34s %3zu %10.1f %9.1f %9.1f %6.1f%%", "", q8_isa_name(r->isa), r->kernel,
          r->threads, r->t.median_s * 1e6, r->gops, r->peak, 100.0 * r->gops / r->peak);
  if (isfinite(r->bandwidth)) {
    fprintf(f, "  weights %.1f GB/s = %.0f%% of L%s bw", r->weight_gbps, 100.0 * r->weight_gbps / r->bandwidth,
            r->level == 2 ? "2" : r->level == 3 ? "3" : "DRAM");
  }
  if (r->checked) fprintf(f, "  check %s", r->check_ok ? "ok" : "FAILED");
  fputc('\n', f);
  if (o->repro) {
    fprintf(f, "%-22s repro: qbench gemm --isa %s --shape %zux%zux%zu --threads %zu --out %s\n", "",
            q8_isa_name(r->isa), r->m, r->n, r->k, r->threads, qb_out_name(r->out));
  }
}

static void write_json(FILE *f, const gemm_opts *o, const qb_gemm_row *rows, size_t n) {
  qb_json j = {.out = f};
  qb_json_begin_object(&j, NULL);
  qb_json_begin_object(&j, "context");
  qb_json_context_fields(&j);
  qb_json_number(&j, "min_time_s", o->min_time);
  qb_json_bool(&j, "checked", o->check);
  qb_json_end_object(&j);
  qb_json_begin_array(&j, "benchmarks");
  for (size_t i = 0; i < n; ++i) {
    const qb_gemm_row *r = &rows[i];
    qb_json_begin_object(&j, NULL);
    qb_json_string(&j, "name", r->name);
    qb_json_string(&j, "run_name", r->name);
    qb_json_string(&j, "run_type", "iteration");
    qb_json_int(&j, "iterations", (long long)(r->t.samples * r->t.calls_per_sample));
    qb_json_number(&j, "real_time", r->t.median_s * 1e9);
    qb_json_number(&j, "cpu_time", r->t.median_s * 1e9);
    qb_json_string(&j, "time_unit", "ns");
    qb_json_number(&j, "min_time_ns", r->t.min_s * 1e9);
    qb_json_number(&j, "max_time_ns", r->t.max_s * 1e9);
    qb_json_int(&j, "samples", (long long)r->t.samples);
    qb_json_string(&j, "isa", q8_isa_name(r->isa));
    qb_json_string(&j, "kernel", r->kernel);
    qb_json_int(&j, "m", (long long)r->m);
    qb_json_int(&j, "n", (long long)r->n);
    qb_json_int(&j, "k", (long long)r->k);
    qb_json_int(&j, "threads", (long long)r->threads);
    qb_json_string(&j, "out", qb_out_name(r->out));
    qb_json_number(&j, "gops", r->gops);
    qb_json_number(&j, "peak_gops", r->peak);
    qb_json_string(&j, "peak_isa", q8_isa_name(r->peak_isa));
    qb_json_number(&j, "peak_fraction", r->gops / r->peak);
    qb_json_number(&j, "weight_gbps", r->weight_gbps);
    if (isfinite(r->bandwidth)) {
      qb_json_number(&j, "bandwidth_gbps", r->bandwidth);
      qb_json_number(&j, "bandwidth_fraction", r->weight_gbps / r->bandwidth);
    }
    if (r->checked) qb_json_bool(&j, "check_ok", r->check_ok);
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  qb_json_end_object(&j);
}

static void write_csv(FILE *f, const qb_gemm_row *rows, size_t n) {
  fputs("name,isa,kernel,m,n,k,threads,out,real_time_ns,gops,peak_gops,peak_fraction,"
        "weight_gbps,bandwidth_gbps\n", f);
  for (size_t i = 0; i < n; ++i) {
    const qb_gemm_row *r = &rows[i];
    fprintf(f, "%s,%s,%s,%zu,%zu,%zu,%zu,%s,%.1f,%.6g,%.6g,%.6g,%.6g,", r->name, q8_isa_name(r->isa),
            r->kernel, r->m, r->n, r->k, r->threads, qb_out_name(r->out), r->t.median_s * 1e9, r->gops,
            r->peak, r->gops / r->peak, r->weight_gbps);
    if (isfinite(r->bandwidth)) fprintf(f, "%.6g", r->bandwidth);
    fputc('\n', f);
  }
}

int qb_cmd_gemm(int argc, char **argv) {
  gemm_opts o;
  const int rc = parse(argc, argv, &o);
  if (rc != 0) return rc;
  bool forced;
  q8_isa isa_forced;
  if (q8_forced(&forced, &isa_forced) != Q8_OK) {
    fprintf(stderr, "qbench: %s\n", q8_error_detail());
    return 2;
  }
  const bool json_stdout = o.json_path && strcmp(o.json_path, "-") == 0;
  FILE *table = json_stdout ? stderr : stdout;
  q8_pin_current_thread(0);
  qb_gemm_row *rows = calloc(o.shape_count * Q8_ISA_COUNT, sizeof *rows);
  size_t n = 0;
  bool all_ok = true;
  fprintf(table, "%-22s %-11s %-34s %3s %10s %9s %9s %7s\n", "shape (MxNxK)", "isa", "kernel", "thr",
          "time us", "GOPS", "peak", "of peak");
  for (size_t s = 0; s < o.shape_count; ++s) {
    fprintf(table, "%zux%zux%zu %s\n", o.shapes[s][0], o.shapes[s][1], o.shapes[s][2], qb_out_name(o.out));
    for (int isa = 0; isa < Q8_ISA_COUNT; ++isa) {
      if (!o.isa_wanted[isa]) continue;
      if (!qb_gemm_measure((q8_isa)isa, o.shapes[s], o.threads, o.out, o.min_time, o.check, &rows[n])) {
        all_ok = false;
        continue;
      }
      print_row(table, &o, &rows[n]);
      if (rows[n].checked && !rows[n].check_ok) all_ok = false;
      ++n;
    }
  }
  if (o.json_path) {
    FILE *f = json_stdout ? stdout : fopen(o.json_path, "w");
    if (f == NULL) {
      fprintf(stderr, "qbench gemm: cannot write '%s'\n", o.json_path);
      free(rows);
      return 1;
    }
    write_json(f, &o, rows, n);
    if (!json_stdout) fclose(f);
  }
  if (o.csv_path) {
    FILE *f = fopen(o.csv_path, "w");
    if (f == NULL) {
      fprintf(stderr, "qbench gemm: cannot write '%s'\n", o.csv_path);
      free(rows);
      return 1;
    }
    write_csv(f, rows, n);
    fclose(f);
  }
  free(rows);
  return all_ok ? 0 : 1;
}
