/* Rows, the run's context, and the three ways a result leaves qbench: the
 * table, Google Benchmark JSON (docs/results.md) and CSV. */
#define _POSIX_C_SOURCE 200809L /* isatty */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/qbench.h"
#include "dispatch/cpu.h"
#include "dispatch/threadpool.h"

void qb_row_init(qb_row *row) {
  *row = (qb_row){.bandwidth_gbps = NAN, .speedup_vs_ref = NAN, .ratio_vs_peer = NAN, .peak = NAN,
                  .weight_gbps = NAN};
  snprintf(row->library, sizeof row->library, "q8");
  snprintf(row->unit, sizeof row->unit, "GB/s");
}

void qb_row_set_pairs(qb_row *row, const qb_peer_result *result) {
  if (result->pairs == 0) return;
  row->ratio_vs_peer = result->ratio;
  row->ratio_q1 = result->ratio_q1;
  row->ratio_q3 = result->ratio_q3;
  row->pairs = result->pairs;
  row->paired_q8 = result->partner_t;
}

const char *qb_level_name(int level) {
  static const char *const names[] = {"", "L1", "L2", "L3", "DRAM"};
  return level >= 1 && level <= 4 ? names[level] : "";
}

/* ---- the run's context ---- */
static struct {
  double peak_gops[Q8_ISA_COUNT];
  double bandwidth[5];
  struct {
    char name[16], version[32], isa[48];
  } peers[4];
  size_t peer_count;
  double min_time;
  bool cold, checked, bitwise;
  int core; /* -1: not pinned */
} run = {.min_time = NAN, .core = -1};

void qb_note_peak(const char *isa, double gops) {
  q8_isa id;
  if (q8_isa_from_name(isa, &id) && gops > 0) run.peak_gops[id] = gops;
}

void qb_note_bandwidth(int level, double gbps) {
  if (level >= 1 && level <= 4 && gbps > 0) run.bandwidth[level] = gbps;
}

double qb_run_bandwidth(int level, double min_time) {
  if (level < 1 || level > 4) return 0.0;
  if (!(run.bandwidth[level] > 0)) qb_note_bandwidth(level, qb_bandwidth_level(level, min_time, NULL) * 1e-9);
  return run.bandwidth[level];
}

void qb_note_peer(const char *name, const char *version, const char *isa) {
  for (size_t i = 0; i < run.peer_count; ++i) {
    if (strcmp(run.peers[i].name, name) == 0) return;
  }
  if (run.peer_count == sizeof run.peers / sizeof run.peers[0]) return;
  snprintf(run.peers[run.peer_count].name, sizeof run.peers[0].name, "%s", name);
  snprintf(run.peers[run.peer_count].version, sizeof run.peers[0].version, "%s", version);
  snprintf(run.peers[run.peer_count].isa, sizeof run.peers[0].isa, "%s", isa);
  ++run.peer_count;
}

void qb_note_method(double min_time, bool cold, bool checked, bool bitwise) {
  run.min_time = min_time;
  run.cold = cold;
  run.checked = checked;
  run.bitwise = bitwise;
}

static void write_context(qb_json *j) {
  qb_json_begin_object(j, "context");
  qb_json_context_fields(j);
  qb_json_begin_array(j, "isas");
  static const q8_isa best_first[] = {Q8_ISA_AMX,      Q8_ISA_AVX512VNNI, Q8_ISA_AVXVNNI, Q8_ISA_AVX2,
                                      Q8_ISA_NEONI8MM, Q8_ISA_NEONDOT,    Q8_ISA_NEON,    Q8_ISA_HWY,
                                      Q8_ISA_REF};
  for (size_t i = 0; i < sizeof best_first / sizeof best_first[0]; ++i) {
    if (q8_isa_usable_on(best_first[i], q8_cpu(), NULL)) qb_json_string(j, NULL, q8_isa_name(best_first[i]));
  }
  qb_json_end_array(j);
  qb_json_begin_object(j, "peaks_gops");
  for (int i = 0; i < Q8_ISA_COUNT; ++i) {
    if (run.peak_gops[i] > 0) qb_json_number(j, q8_isa_name((q8_isa)i), run.peak_gops[i]);
  }
  qb_json_end_object(j);
  qb_json_begin_object(j, "bandwidth_gbps");
  for (int level = 1; level <= 4; ++level) {
    if (run.bandwidth[level] > 0) qb_json_number(j, qb_level_name(level), run.bandwidth[level]);
  }
  qb_json_end_object(j);
  if (isfinite(run.min_time)) qb_json_number(j, "min_time_s", run.min_time);
  qb_json_bool(j, "cold", run.cold);
  if (run.core >= 0) qb_json_int(j, "core", run.core);
  qb_json_bool(j, "checked", run.checked);
  qb_json_bool(j, "bitwise", run.bitwise);
  qb_json_begin_object(j, "peers");
  for (size_t i = 0; i < run.peer_count; ++i) {
    qb_json_begin_object(j, run.peers[i].name);
    qb_json_string(j, "version", run.peers[i].version);
    qb_json_string(j, "isa", run.peers[i].isa);
    qb_json_end_object(j);
  }
  qb_json_end_object(j);
  qb_json_end_object(j);
}

/* ---- JSON and CSV ---- */

/* Conv rows: the geometry, and for depthwise layers the bytes they move. */
static void write_conv_fields(qb_json *j, const qb_row *r) {
  const q8_conv_shape *s = &r->conv;
  const struct {
    const char *key;
    size_t value;
  } sizes[] = {{"batch", s->batch},           {"in_h", s->in_h},           {"in_w", s->in_w},
               {"in_channels", s->in_channels}, {"out_channels", s->out_channels}, {"out_h", r->out_h},
               {"out_w", r->out_w},           {"kernel_h", s->kernel_h},   {"kernel_w", s->kernel_w},
               {"stride_h", s->stride_h},     {"stride_w", s->stride_w},   {"dilation_h", s->dilation_h},
               {"dilation_w", s->dilation_w}, {"pad_top", s->pad_top},     {"pad_left", s->pad_left},
               {"pad_bottom", s->pad_bottom}, {"pad_right", s->pad_right}, {"groups", s->groups}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) qb_json_int(j, sizes[i].key, (long long)sizes[i].value);
  qb_json_bool(j, "depthwise", qb_conv_is_depthwise(s));
  qb_json_string(j, "in", r->in);
  qb_json_string(j, "algorithm", r->algorithm);
  if (r->bytes > 0) {
    const double gbps = (double)r->bytes / r->t.median_s * 1e-9;
    qb_json_int(j, "bytes", (long long)r->bytes);
    qb_json_number(j, "gbps", gbps);
    qb_json_number(j, "bandwidth_gbps", r->bandwidth_gbps);
    qb_json_number(j, "bandwidth_fraction", gbps / r->bandwidth_gbps);
    qb_json_string(j, "bandwidth_level", qb_level_name(r->bandwidth_level));
  }
}
void qb_write_json(FILE *f, const qb_row *rows, size_t n) { qb_write_json_extra(f, rows, n, NULL, NULL); }

void qb_write_json_extra(FILE *f, const qb_row *rows, size_t n, void (*extra)(qb_json *, void *), void *ctx) {
  qb_json j = {.out = f};
  qb_json_begin_object(&j, NULL);
  write_context(&j);
  qb_json_begin_array(&j, "benchmarks");
  for (size_t i = 0; i < n; ++i) {
    const qb_row *r = &rows[i];
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
    qb_json_string(&j, "suite", r->suite);
    qb_json_string(&j, "op", r->op);
    qb_json_string(&j, "library", r->library);
    qb_json_string(&j, "isa", r->isa);
    qb_json_string(&j, "kernel", r->kernel);
    qb_json_int(&j, "threads", (long long)r->threads);
    qb_json_string(&j, "unit", r->unit);
    qb_json_number(&j, "rate", r->rate);
    qb_json_number(&j, "peak", r->peak);
    qb_json_number(&j, "peak_fraction", r->rate / r->peak);
    if (r->is_gemm) {
      qb_json_int(&j, "m", (long long)r->m);
      qb_json_int(&j, "n", (long long)r->n);
      qb_json_int(&j, "k", (long long)r->k);
      qb_json_string(&j, "out", r->out);
      qb_json_number(&j, "gops", r->rate);
      qb_json_number(&j, "peak_gops", r->peak);
      qb_json_string(&j, "peak_isa", r->peak_isa);
      if (isfinite(r->weight_gbps)) qb_json_number(&j, "weight_gbps", r->weight_gbps);
      if (!r->is_conv && isfinite(r->bandwidth_gbps)) {
        qb_json_number(&j, "bandwidth_gbps", r->bandwidth_gbps);
        qb_json_number(&j, "bandwidth_fraction", r->weight_gbps / r->bandwidth_gbps);
        qb_json_string(&j, "bandwidth_level", qb_level_name(r->bandwidth_level));
      }
      if (r->is_conv) write_conv_fields(&j, r);
    } else if (r->count > 0) {
      qb_json_int(&j, "count", (long long)r->count);
      if (r->mode[0]) qb_json_string(&j, "mode", r->mode);
      qb_json_int(&j, "bytes", (long long)r->bytes);
      qb_json_number(&j, "gbps", r->rate);
      qb_json_number(&j, "bandwidth_gbps", r->bandwidth_gbps);
      qb_json_string(&j, "bandwidth_level", qb_level_name(r->bandwidth_level));
    }
    if (isfinite(r->speedup_vs_ref)) qb_json_number(&j, "speedup_vs_ref", r->speedup_vs_ref);
    if (strcmp(r->library, "q8") != 0) {
      qb_json_string(&j, "peer", r->library);
      if (isfinite(r->ratio_vs_peer)) qb_json_number(&j, "ratio_vs_peer", r->ratio_vs_peer);
      if (r->pairs > 0) {
        qb_json_number(&j, "ratio_vs_peer_q1", r->ratio_q1);
        qb_json_number(&j, "ratio_vs_peer_q3", r->ratio_q3);
        qb_json_int(&j, "pairs", (long long)r->pairs);
        qb_json_number(&j, "paired_q8_time", r->paired_q8.median_s * 1e9);
      }
      if (r->checked) qb_json_int(&j, "max_abs_diff", r->max_abs_diff);
    }
    if (r->checked) qb_json_bool(&j, "check_ok", r->check_ok);
    if (r->bitwise_checked) qb_json_bool(&j, "bitwise_ok", r->bitwise_ok);
    qb_json_string(&j, "repro", r->repro);
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  if (extra) extra(&j, ctx);
  qb_json_end_object(&j);
}

/* Quotes a CSV field only when it needs it (RFC 4180). */
static void csv_field(FILE *f, const char *s) {
  if (strpbrk(s, ",\"\n") == NULL) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; ++s) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void csv_number(FILE *f, double v) {
  if (isfinite(v)) fprintf(f, "%.6g", v);
}

void qb_write_csv(FILE *f, const qb_row *rows, size_t n) {
  fputs("name,suite,op,library,isa,kernel,threads,m,n,k,out,count,mode,real_time_ns,min_time_ns,"
        "max_time_ns,samples,unit,rate,peak,peak_fraction,speedup_vs_ref,ratio_vs_peer,"
        "bandwidth_gbps,check_ok,bitwise_ok\n", f);
  for (size_t i = 0; i < n; ++i) {
    const qb_row *r = &rows[i];
    const char *fields[] = {r->name, r->suite, r->op, r->library, r->isa, r->kernel};
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; ++k) {
      csv_field(f, fields[k]);
      fputc(',', f);
    }
    fprintf(f, "%zu,", r->threads);
    if (r->is_gemm) fprintf(f, "%zu,%zu,%zu,%s,,,", r->m, r->n, r->k, r->out);
    else fprintf(f, ",,,,%zu,%s,", r->count, r->mode);
    fprintf(f, "%.1f,%.1f,%.1f,%zu,%s,", r->t.median_s * 1e9, r->t.min_s * 1e9, r->t.max_s * 1e9,
            r->t.samples, r->unit);
    const double numbers[] = {r->rate, r->peak, r->rate / r->peak, r->speedup_vs_ref, r->ratio_vs_peer,
                              r->bandwidth_gbps};
    for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; ++k) {
      csv_number(f, numbers[k]);
      fputc(',', f);
    }
    fprintf(f, "%s,%s\n", r->checked ? (r->check_ok ? "true" : "false") : "",
            r->bitwise_checked ? (r->bitwise_ok ? "true" : "false") : "");
  }
}

static FILE *open_output(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL) fprintf(stderr, "qbench: cannot write '%s': %s\n", path, strerror(errno));
  return f;
}

static int close_output(FILE *f, const char *path) {
  if (fclose(f) != 0) {
    fprintf(stderr, "qbench: cannot write '%s': %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

int qb_write_json_file(const char *path, const qb_row *rows, size_t n) {
  FILE *f = open_output(path);
  if (f == NULL) return 1;
  qb_write_json(f, rows, n);
  return close_output(f, path);
}

int qb_write_outputs(const qb_outputs *o, const qb_row *rows, size_t n) {
  int rc = 0;
  if (o->json_path && strcmp(o->json_path, "-") == 0) {
    qb_write_json(stdout, rows, n);
    fflush(stdout);
  } else if (o->json_path) {
    rc |= qb_write_json_file(o->json_path, rows, n);
  }
  if (o->csv_path) {
    FILE *f = strcmp(o->csv_path, "-") == 0 ? stdout : open_output(o->csv_path);
    if (f == NULL) return 1;
    qb_write_csv(f, rows, n);
    if (f != stdout) rc |= close_output(f, o->csv_path);
  }
  return rc;
}

void qb_outputs_init(qb_outputs *o) { *o = (qb_outputs){.table = stdout}; }

int qb_parse_outputs(int argc, char **argv, int *i, qb_outputs *o, const char *prefix) {
  const char *arg = argv[*i];
  if (strcmp(arg, "--repro") == 0) {
    o->repro = true;
    return 1;
  }
  const bool json = strcmp(arg, "--json") == 0, csv = strcmp(arg, "--csv") == 0;
  if (!json && !csv) return 0;
  if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
    fprintf(stderr, "%s: %s needs a file name ('-' for stdout)\n", prefix, arg);
    return -1;
  }
  const char *path = argv[++*i];
  if (json) o->json_path = path;
  else o->csv_path = path;
  if (strcmp(path, "-") == 0) o->table = stderr;
  if (o->json_path && o->csv_path && strcmp(o->json_path, "-") == 0 && strcmp(o->csv_path, "-") == 0) {
    fprintf(stderr, "%s: --json - and --csv - cannot both go to stdout\n", prefix);
    return -1;
  }
  return 1;
}

/* ---- the table ---- */
void qb_table_header(const qb_outputs *o) {
  qb_progress_clear();
  if (q8_cpu()->emulated[0]) {
    fprintf(o->table, "EMULATED: %s. The timings below measure the emulator, not any CPU.\n",
            q8_cpu()->emulated);
  }
  fprintf(o->table, "%-44s %-16s %-34s %3s %11s %14s %7s %8s  %s\n", "benchmark", "isa", "kernel", "thr",
          "time", "rate", "of peak", "vs ref", "notes");
}

static void format_time(char *buf, size_t size, double s) {
  if (s < 1e-3) snprintf(buf, size, "%.2f us", s * 1e6);
  else if (s < 1.0) snprintf(buf, size, "%.2f ms", s * 1e3);
  else snprintf(buf, size, "%.2f s", s);
}

void qb_table_row(const qb_outputs *o, const qb_row *r) {
  qb_progress_clear();
  char label[160], time[24], rate[32], peak[16] = "n/a", ref[16] = "", notes[160] = "";
  if (r->is_conv) {
    char spec[96];
    qb_conv_spec_format(&r->conv, spec, sizeof spec);
    snprintf(label, sizeof label, "%.11s %.96s %.7s-%.7s%s", r->suite, spec, r->in, r->out,
             strcmp(r->algorithm, "im2col") == 0 ? " im2col" : "");
  } else if (r->is_gemm) {
    snprintf(label, sizeof label, "%.12s %zux%zux%zu %s", r->suite, r->m, r->n, r->k, r->out);
  } else if (r->mode[0]) {
    snprintf(label, sizeof label, "%s %s %zu", r->op, r->mode, r->count);
  } else {
    snprintf(label, sizeof label, "%s %zu", r->op, r->count);
  }
  format_time(time, sizeof time, r->t.median_s);
  snprintf(rate, sizeof rate, "%.1f %s", r->rate, r->unit);
  if (isfinite(r->peak) && r->peak > 0) snprintf(peak, sizeof peak, "%.1f%%", 100.0 * r->rate / r->peak);
  if (isfinite(r->speedup_vs_ref)) snprintf(ref, sizeof ref, "%.1fx", r->speedup_vs_ref);
  size_t len = 0;
#define NOTE(...) len += (size_t)snprintf(notes + len, len < sizeof notes ? sizeof notes - len : 0, __VA_ARGS__)
  if (strcmp(r->library, "q8") != 0) {
    NOTE("%s", r->library);
    if (r->pairs > 0) NOTE(" (q8 %.2fx, pairs %.2f-%.2f)", r->ratio_vs_peer, r->ratio_q1, r->ratio_q3);
    NOTE(" ");
  }
  if (r->is_conv && r->bytes > 0) {
    const double gbps = (double)r->bytes / r->t.median_s * 1e-9;
    NOTE("%.1f GB/s = %.0f%% of %s bw ", gbps, 100.0 * gbps / r->bandwidth_gbps, qb_level_name(r->bandwidth_level));
  } else if (r->is_gemm && isfinite(r->bandwidth_gbps)) {
    NOTE("weights %.0f%% of %s bw ", 100.0 * r->weight_gbps / r->bandwidth_gbps, qb_level_name(r->bandwidth_level));
  } else if (!r->is_gemm && r->bandwidth_level) {
    NOTE("of %s bw ", qb_level_name(r->bandwidth_level));
  }
  if (r->checked) {
    if (strcmp(r->library, "q8") != 0) NOTE("check %s (max diff %d) ", r->check_ok ? "ok" : "FAILED", r->max_abs_diff);
    else NOTE("check %s ", r->check_ok ? "ok" : "FAILED");
  }
  if (r->bitwise_checked) NOTE("bitwise %s", r->bitwise_ok ? "ok" : "DIFFERS");
#undef NOTE
  fprintf(o->table, "%-44s %-16s %-34s %3zu %11s %14s %7s %8s  %s\n", label, r->isa, r->kernel, r->threads, time,
          rate, peak, ref, notes);
  if (o->repro) fprintf(o->table, "    repro: %s\n", r->repro);
  fflush(o->table);
}

/* ---- rows ---- */
qb_row *qb_rows_add(qb_rows *rows) {
  if (rows->count == rows->capacity) {
    rows->capacity = rows->capacity ? 2 * rows->capacity : 64;
    rows->items = realloc(rows->items, rows->capacity * sizeof *rows->items);
    if (rows->items == NULL) {
      fputs("qbench: out of memory\n", stderr);
      exit(1);
    }
  }
  qb_row *r = &rows->items[rows->count++];
  qb_row_init(r);
  return r;
}

void qb_rows_free(qb_rows *rows) {
  free(rows->items);
  *rows = (qb_rows){0};
}

/* ---- progress ---- */
static bool progress_shown;

void qb_progress(const char *fmt, ...) {
  if (isatty(STDERR_FILENO) != 1) return;
  char line[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\r\033[K%s", line);
  fflush(stderr);
  progress_shown = true;
}

void qb_progress_clear(void) {
  if (!progress_shown) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
  progress_shown = false;
}

/* ---- the measurement method ---- */
int qb_parse_method(int argc, char **argv, int *i, qb_method *m, const char *prefix) {
  const char *arg = argv[*i];
  if (strcmp(arg, "--check") == 0) m->check = true;
  else if (strcmp(arg, "--bitwise") == 0) m->bitwise = true;
  else if (strcmp(arg, "--cold") == 0) m->cold = true;
  else if (strcmp(arg, "--quick") == 0) m->min_time = 0.05;
  else if (strcmp(arg, "--core") == 0) {
    const int cores = q8_cpu()->cores > 0 ? q8_cpu()->cores : 1;
    char *end;
    const char *value = *i + 1 < argc ? argv[++*i] : "";
    const long core = strtol(value, &end, 10);
    if (end == value || *end != '\0' || core < 0 || core >= cores) {
      fprintf(stderr, "%s: --core '%s': expected a physical core 0..%d\n", prefix, value, cores - 1);
      return -1;
    }
    m->core = (int)core;
  }
  else if (strcmp(arg, "--min-time") == 0) {
    if (*i + 1 >= argc) {
      fprintf(stderr, "%s: --min-time needs a value in seconds\n", prefix);
      return -1;
    }
    char *end;
    const char *value = argv[++*i];
    m->min_time = strtod(value, &end);
    if (end == value || *end != '\0' || !(m->min_time > 0.0) || m->min_time > 60.0) {
      fprintf(stderr, "%s: --min-time '%s': expected seconds in (0, 60]\n", prefix, value);
      return -1;
    }
  } else {
    return 0;
  }
  return 1;
}

bool qb_pin_main_thread(const qb_method *m, const char *prefix) {
  if (q8_pin_current_thread(m->core) != 0) {
    /* Without hwloc's topology (a container hiding it) the run stays unpinned. */
    if (m->core == 0) return true;
    fprintf(stderr, "%s: --core %d: could not pin the thread to that core\n", prefix, m->core);
    return false;
  }
  run.core = m->core;
  return true;
}

size_t qb_cold_copies(const qb_method *m, size_t bytes) {
  if (!m->cold || bytes == 0) return 1;
  const q8_cpu_info *cpu = q8_cpu();
  size_t llc = cpu->l3_bytes ? cpu->l3_bytes : cpu->l2_bytes ? cpu->l2_bytes : (size_t)32 << 20;
  size_t copies = (2 * llc + bytes - 1) / bytes + 1;
  /* Cap the memory at 1 GiB and the count at 64 Ki (tiny calls); the
   * caller judges the level from copies x bytes, so a cap never lies. */
  const size_t max_by_memory = ((size_t)1 << 30) / bytes;
  if (copies > max_by_memory) copies = max_by_memory;
  if (copies > ((size_t)1 << 16)) copies = (size_t)1 << 16;
  return copies < 2 ? 2 : copies;
}
