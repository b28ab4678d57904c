/* Every measuring subcommand's JSON (the default run, gemm, requant, peak)
 * against docs/results.md: the context fields, the fields of each row kind
 * with their JSON types, their value ranges and how they agree with each
 * other and with the context; each row's repro command reruns that row; the
 * CSV has a field per header column; and bad input exits 2 with a message
 * naming the bad thing, before anything is measured. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "tests/support/q8test.h"

/* ---- running qbench ---- */

static const char *temp_dir(void) {
  const char *dir = q8t_temp_dir("schema");
  cr_assert_not_null(dir, "cannot create a temporary directory");
  return dir;
}

static const char *write_file(const char *name, const char *text) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", temp_dir(), name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* Runs `qbench args` (which writes --json -), expects exit 0 and returns the
 * parsed stdout. On a failure the message carries stdout and stderr. */
static qb_jvalue *run_json(const char *args) {
  int code = -1;
  char *out = q8t_run_qbench(args, false, &code);
  cr_assert_not_null(out, "ctest sets Q8_QBENCH");
  if (code != 0) {
    char *all = q8t_run_qbench(args, true, &code);
    cr_assert_fail("qbench %s: exit %d\n%s", args, code, all ? all : "");
  }
  char err[256];
  qb_jvalue *doc = qb_json_parse(out, err, sizeof err);
  cr_assert_not_null(doc, "qbench %s: stdout is not JSON (%s):\n%.3000s", args, err, out);
  free(out);
  cr_assert_eq(doc->type, QB_JOBJECT, "qbench %s: the document is an object", args);
  return doc;
}

/* ---- the schema: fields per row kind and their JSON types ---- */

typedef enum ftype { F_STRING, F_NUMBER, F_INT, F_BOOL, F_OBJECT, F_ARRAY } ftype;
typedef struct field {
  const char *key;
  ftype type;
} field;

static const field context_fields[] = {
    {"q8_version", F_STRING}, {"cpu_vendor", F_STRING},   {"cpu_model", F_STRING},    {"num_cpus", F_INT},
    {"physical_cores", F_INT}, {"compiler", F_STRING},    {"library_build_type", F_STRING},
    {"isas", F_ARRAY},         {"peaks_gops", F_OBJECT},  {"bandwidth_gbps", F_OBJECT}, {"min_time_s", F_NUMBER},
    {"cold", F_BOOL},          {"checked", F_BOOL},       {"bitwise", F_BOOL},         {"peers", F_OBJECT}};

/* Every row. */
static const field row_fields[] = {
    {"name", F_STRING},      {"run_name", F_STRING},    {"run_type", F_STRING},    {"iterations", F_INT},
    {"real_time", F_NUMBER}, {"cpu_time", F_NUMBER},    {"time_unit", F_STRING},   {"min_time_ns", F_NUMBER},
    {"max_time_ns", F_NUMBER}, {"samples", F_INT},      {"suite", F_STRING},       {"op", F_STRING},
    {"library", F_STRING},   {"isa", F_STRING},         {"kernel", F_STRING},      {"threads", F_INT},
    {"unit", F_STRING},      {"rate", F_NUMBER},        {"peak", F_NUMBER},        {"peak_fraction", F_NUMBER},
    {"repro", F_STRING}};

/* op = gemm. */
static const field gemm_fields[] = {{"m", F_INT},        {"n", F_INT},           {"k", F_INT},
                                    {"out", F_STRING},   {"gops", F_NUMBER},     {"peak_gops", F_NUMBER},
                                    {"peak_isa", F_STRING}};
/* q8 GEMM rows (a peer's packed size is unknown). */
static const field gemm_q8_fields[] = {{"weight_gbps", F_NUMBER}};
/* q8 GEMM rows with M <= 16, unless --cold (the weights are then in no cache). */
static const field gemm_bandwidth_fields[] = {
    {"bandwidth_gbps", F_NUMBER}, {"bandwidth_fraction", F_NUMBER}, {"bandwidth_level", F_STRING}};
/* op = requantize, quantize, dequantize. */
static const field elementwise_fields[] = {{"count", F_INT},          {"bytes", F_INT},
                                           {"gbps", F_NUMBER},        {"bandwidth_gbps", F_NUMBER},
                                           {"bandwidth_level", F_STRING}};
/* Only when they apply. max_abs_diff: peer rows under --check (qbench
 * writes it; docs/results.md does not list it yet). */
static const field optional_fields[] = {{"speedup_vs_ref", F_NUMBER}, {"peer", F_STRING},
                                        {"ratio_vs_peer", F_NUMBER},  {"check_ok", F_BOOL},
                                        {"bitwise_ok", F_BOOL},       {"mode", F_STRING},
                                        {"max_abs_diff", F_INT},      {"ratio_vs_peer_q1", F_NUMBER},
                                        {"ratio_vs_peer_q3", F_NUMBER}, {"pairs", F_INT},
                                        {"paired_q8_time", F_NUMBER}};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *type_name(ftype t) {
  static const char *const names[] = {"string", "number", "integer", "bool", "object", "array"};
  return names[t];
}

static bool has_type(const qb_jvalue *v, ftype t) {
  if (v == NULL) return false;
  switch (t) {
    case F_STRING: return v->type == QB_JSTRING;
    case F_NUMBER: return v->type == QB_JNUMBER && isfinite(v->number);
    case F_INT: return v->type == QB_JNUMBER && isfinite(v->number) && v->number == floor(v->number);
    case F_BOOL: return v->type == QB_JBOOL;
    case F_OBJECT: return v->type == QB_JOBJECT;
    case F_ARRAY: return v->type == QB_JARRAY;
  }
  return false;
}

/* Expects every field of the table in `object`, with its type; false if one
 * is missing or of another type (its values are not checked then). */
static bool expect_fields(const qb_jvalue *object, const field *fields, size_t n, const char *where) {
  bool ok = true;
  for (size_t i = 0; i < n; ++i) {
    const qb_jvalue *v = qb_json_get(object, fields[i].key);
    if (!has_type(v, fields[i].type)) {
      cr_expect_fail("%s: \"%s\" %s, expected a %s", where, fields[i].key, v ? "has the wrong type" : "is missing",
                     type_name(fields[i].type));
      ok = false;
    }
  }
  return ok;
}

static bool in_table(const char *key, const field *fields, size_t n, ftype *type) {
  for (size_t i = 0; i < n; ++i) {
    if (strcmp(key, fields[i].key) == 0) {
      *type = fields[i].type;
      return true;
    }
  }
  return false;
}

/* Every member of a row is a documented field, of its documented type. */
static void expect_only_known_fields(const qb_jvalue *row, const char *where) {
  const struct {
    const field *fields;
    size_t n;
  } tables[] = {{row_fields, COUNT(row_fields)},
                {gemm_fields, COUNT(gemm_fields)},
                {gemm_q8_fields, COUNT(gemm_q8_fields)},
                {gemm_bandwidth_fields, COUNT(gemm_bandwidth_fields)},
                {elementwise_fields, COUNT(elementwise_fields)},
                {optional_fields, COUNT(optional_fields)}};
  for (size_t i = 0; i < row->count; ++i) {
    bool known = false;
    ftype type = F_STRING;
    for (size_t t = 0; t < COUNT(tables) && !known; ++t) {
      known = in_table(row->keys[i], tables[t].fields, tables[t].n, &type);
    }
    cr_expect(known, "%s: \"%s\" is not a field of docs/results.md", where, row->keys[i]);
    if (known) {
      cr_expect(has_type(row->items[i], type), "%s: \"%s\" is not a %s", where, row->keys[i], type_name(type));
    }
  }
}

static bool flag(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JBOOL && v->boolean;
}

static const char *str(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JSTRING ? v->string : "";
}

static double num(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JNUMBER ? v->number : NAN;
}

static bool near(double a, double b, double rel) { return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)); }

static bool one_of(const char *s, const char *const *list) {
  for (; *list; ++list) {
    if (strcmp(s, *list) == 0) return true;
  }
  return false;
}

static const char *const levels[] = {"L1", "L2", "L3", "DRAM", NULL};
static const char *const suites[] = {"square", "transformer", "resnet50", "mobilenetv2", "small",
                                     "shapes", "cli",         "elementwise", "peak",     NULL};
static const char *const ops[] = {"gemm", "requantize", "quantize", "dequantize", "peak", "bandwidth", NULL};
static const char *const elementwise_ops[] = {"requantize", "quantize", "dequantize", NULL};
static const char *const libraries[] = {"q8", "onednn", "xnnpack", NULL};
static const char *const outs[] = {"s32", "s8", "u8", NULL};
static const char *const modes[] = {"gemmlowp", "single", "fp32", NULL};

/* ---- context ---- */

/* False when a field is missing or of the wrong type (nothing else is
 * checked then, and the rows are not: they are read against the context). */
static bool check_context(const qb_jvalue *ctx, const char *what) {
  cr_assert(has_type(ctx, F_OBJECT), "%s: \"context\" is an object", what);
  char where[256];
  snprintf(where, sizeof where, "%s: context", what);
  if (!expect_fields(ctx, context_fields, COUNT(context_fields), where)) return false;
  cr_expect_neq(str(ctx, "q8_version")[0], '\0', "%s: q8_version is empty", where);
  cr_expect_neq(str(ctx, "cpu_model")[0], '\0', "%s: cpu_model is empty", where);
  cr_expect(one_of(str(ctx, "library_build_type"), (const char *const[]){"release", "debug", NULL}),
            "%s: library_build_type '%s'", where, str(ctx, "library_build_type"));
  cr_expect_geq(num(ctx, "num_cpus"), 1, "%s: num_cpus", where);
  cr_expect_geq(num(ctx, "physical_cores"), 1, "%s: physical_cores", where);

  const qb_jvalue *isas = qb_json_get(ctx, "isas");
  cr_expect_gt(isas->count, 0, "%s: isas is empty", where);
  bool has_ref = false;
  for (size_t i = 0; i < isas->count; ++i) {
    cr_expect(has_type(isas->items[i], F_STRING), "%s: isas[%zu] is not a string", where, i);
    if (has_type(isas->items[i], F_STRING)) {
      q8_isa isa;
      cr_expect(q8_isa_from_name(isas->items[i]->string, &isa), "%s: isas[%zu] '%s' is no ISA", where, i,
                isas->items[i]->string);
      has_ref |= strcmp(isas->items[i]->string, "ref") == 0;
    }
  }
  cr_expect(has_ref, "%s: isas lacks \"ref\"", where);

  const qb_jvalue *peaks = qb_json_get(ctx, "peaks_gops");
  for (size_t i = 0; i < peaks->count; ++i) {
    q8_isa isa;
    cr_expect(q8_isa_from_name(peaks->keys[i], &isa), "%s: peaks_gops key '%s' is no ISA", where, peaks->keys[i]);
    cr_expect(has_type(peaks->items[i], F_NUMBER) && peaks->items[i]->number > 0, "%s: peaks_gops.%s > 0", where,
              peaks->keys[i]);
  }
  const qb_jvalue *bw = qb_json_get(ctx, "bandwidth_gbps");
  for (size_t i = 0; i < bw->count; ++i) {
    cr_expect(one_of(bw->keys[i], levels), "%s: bandwidth_gbps key '%s' is not L1..DRAM", where, bw->keys[i]);
    cr_expect(has_type(bw->items[i], F_NUMBER) && bw->items[i]->number > 0, "%s: bandwidth_gbps.%s > 0", where,
              bw->keys[i]);
  }
  cr_expect_gt(num(ctx, "min_time_s"), 0, "%s: min_time_s", where);
  const qb_jvalue *peers = qb_json_get(ctx, "peers");
  for (size_t i = 0; i < peers->count; ++i) {
    const qb_jvalue *p = peers->items[i];
    cr_expect(one_of(peers->keys[i], libraries) && strcmp(peers->keys[i], "q8") != 0, "%s: peer '%s'", where,
              peers->keys[i]);
    cr_expect(has_type(p, F_OBJECT) && has_type(qb_json_get(p, "version"), F_STRING) &&
                  has_type(qb_json_get(p, "isa"), F_STRING),
              "%s: peers.%s is {version: string, isa: string}", where, peers->keys[i]);
  }
  return true;
}

/* ---- rows ---- */

/* Checks one row; `ctx` is the file's (checked) context. */
static void check_row(const qb_jvalue *row, const qb_jvalue *ctx, size_t index, const char *what) {
  char where[512];
  snprintf(where, sizeof where, "%s: benchmarks[%zu]", what, index);
  cr_assert(has_type(row, F_OBJECT), "%s is not an object", where);
  if (has_type(qb_json_get(row, "name"), F_STRING)) {
    snprintf(where, sizeof where, "%s: row %s", what, str(row, "name"));
  }
  expect_only_known_fields(row, where);
  if (!expect_fields(row, row_fields, COUNT(row_fields), where)) return;

  const char *name = str(row, "name"), *op = str(row, "op"), *isa = str(row, "isa"), *library = str(row, "library");
  const bool gemm = strcmp(op, "gemm") == 0, elementwise = one_of(op, elementwise_ops),
             peak_row = strcmp(op, "peak") == 0 || strcmp(op, "bandwidth") == 0;
  cr_expect(one_of(op, ops), "%s: op '%s'", where, op);
  cr_expect_str_eq(str(row, "run_name"), name, "%s: run_name", where);
  cr_expect_str_eq(str(row, "run_type"), "iteration", "%s: run_type", where);
  cr_expect_str_eq(str(row, "time_unit"), "ns", "%s: time_unit", where);
  cr_expect(one_of(str(row, "suite"), suites), "%s: suite '%s'", where, str(row, "suite"));
  cr_expect(one_of(library, libraries), "%s: library '%s'", where, library);
  cr_expect_neq(isa[0], '\0', "%s: isa is empty", where);
  cr_expect_neq(str(row, "kernel")[0], '\0', "%s: kernel is empty", where);
  cr_expect(strncmp(str(row, "repro"), "qbench ", 7) == 0, "%s: repro '%s' is not a qbench command", where,
            str(row, "repro"));

  /* Timing. Peak rows report a best rate as one sample: their time is per
   * 10^9 ops (per GB for bandwidth). */
  const double iterations = num(row, "iterations"), samples = num(row, "samples");
  const double real_time = num(row, "real_time"), rate = num(row, "rate"), peak = num(row, "peak");
  cr_expect_geq(samples, peak_row ? 1 : 5, "%s: samples %g", where, samples);
  cr_expect_geq(iterations, samples, "%s: iterations %g < samples %g", where, iterations, samples);
  cr_expect(real_time > 0, "%s: real_time %g", where, real_time);
  cr_expect_eq(num(row, "cpu_time"), real_time, "%s: cpu_time = real_time", where);
  if (peak_row) {
    cr_expect(near(real_time, 1e9 / rate, 1e-6), "%s: real_time %g is not 10^9 / rate", where, real_time);
  } else {
    cr_expect(num(row, "min_time_ns") > 0 && num(row, "min_time_ns") <= real_time &&
                  real_time <= num(row, "max_time_ns"),
              "%s: min_time_ns %g <= real_time %g <= max_time_ns %g", where, num(row, "min_time_ns"), real_time,
              num(row, "max_time_ns"));
  }

  /* Rate against its bound. */
  cr_expect_geq(num(row, "threads"), 1, "%s: threads", where);
  cr_expect_str_eq(str(row, "unit"), gemm || strcmp(op, "peak") == 0 ? "GOPS" : "GB/s", "%s: unit", where);
  cr_expect(rate > 0, "%s: rate %g", where, rate);
  cr_expect(peak > 0, "%s: peak %g", where, peak);
  const double fraction = num(row, "peak_fraction");
  cr_expect(fraction > 0 && fraction <= 1.5, "%s: peak_fraction %g not in (0, 1.5]", where, fraction);
  cr_expect(near(fraction, rate / peak, 1e-6), "%s: peak_fraction %g != rate / peak %g", where, fraction,
            rate / peak);

  const qb_jvalue *speedup = qb_json_get(row, "speedup_vs_ref");
  if (speedup) {
    cr_expect(speedup->number > 0, "%s: speedup_vs_ref %g", where, speedup->number);
    if (strcmp(isa, "ref") == 0) {
      cr_expect(fabs(speedup->number - 1.0) <= 1e-9, "%s: speedup_vs_ref of ref is %.12g", where, speedup->number);
    }
  }
  /* --check / --bitwise leave a verdict on every measured kernel row. */
  if (!peak_row && flag(ctx, "checked")) {
    cr_expect_not_null(qb_json_get(row, "check_ok"), "%s: --check but no check_ok", where);
  }
  if (!peak_row && strcmp(library, "q8") == 0 && flag(ctx, "bitwise")) {
    cr_expect_not_null(qb_json_get(row, "bitwise_ok"), "%s: --bitwise but no bitwise_ok", where);
  }
  const bool peer_row = strcmp(library, "q8") != 0;
  if (peer_row) {
    cr_expect(gemm, "%s: a peer row is a GEMM row", where);
    cr_expect_str_eq(str(row, "peer"), library, "%s: peer = library", where);
    cr_expect_not_null(qb_json_get(qb_json_get(ctx, "peers"), library), "%s: peer %s not in context.peers", where,
                       library);
    cr_expect(num(row, "ratio_vs_peer") > 0, "%s: ratio_vs_peer %g", where, num(row, "ratio_vs_peer"));
    /* Timed in pairs with q8's dispatched plan: the ratio is the median pair's. */
    const double q1 = num(row, "ratio_vs_peer_q1"), q3 = num(row, "ratio_vs_peer_q3");
    cr_expect(q1 > 0 && q1 <= num(row, "ratio_vs_peer") && num(row, "ratio_vs_peer") <= q3,
              "%s: ratio_vs_peer %g outside its quartiles %g-%g", where, num(row, "ratio_vs_peer"), q1, q3);
    cr_expect_geq(num(row, "pairs"), 5, "%s: pairs", where);
    cr_expect_gt(num(row, "paired_q8_time"), 0, "%s: paired_q8_time", where);
  } else {
    cr_expect_null(qb_json_get(row, "peer"), "%s: a q8 row has no peer", where);
    cr_expect_null(qb_json_get(row, "ratio_vs_peer"), "%s: a q8 row has no ratio_vs_peer", where);
    cr_expect_null(qb_json_get(row, "pairs"), "%s: a q8 row has no pairs", where);
  }

  char want[256];
  if (gemm) {
    if (!expect_fields(row, gemm_fields, COUNT(gemm_fields), where)) return;
    const double m = num(row, "m"), n = num(row, "n"), k = num(row, "k");
    cr_expect(m >= 1 && n >= 1 && k >= 1, "%s: m, n, k = %g, %g, %g", where, m, n, k);
    cr_expect(one_of(str(row, "out"), outs), "%s: out '%s'", where, str(row, "out"));
    cr_expect_eq(num(row, "gops"), rate, "%s: gops = rate", where);
    cr_expect_eq(num(row, "peak_gops"), peak, "%s: peak_gops = peak", where);
    cr_expect(near(rate, 2.0 * m * n * k / real_time, 1e-6), "%s: rate %g is not 2MNK / real_time", where, rate);
    const char *peak_isa = str(row, "peak_isa");
    cr_expect_neq(peak_isa[0], '\0', "%s: peak_isa is empty", where);
    if (num(row, "threads") == 1) {
      const double measured = num(qb_json_get(ctx, "peaks_gops"), peak_isa);
      cr_expect(near(peak, measured, 1e-6), "%s: peak %g is not context.peaks_gops.%s %g", where, peak, peak_isa,
                measured);
    }
    snprintf(want, sizeof want, "gemm/%s/%.0fx%.0fx%.0f/%s/%s/threads:%.0f", str(row, "suite"), m, n, k,
             str(row, "out"), peer_row ? library : isa, num(row, "threads"));
    cr_expect_str_eq(name, want, "%s: the name is gemm/<suite>/<M>x<N>x<K>/<out>/<isa>/threads:<T>", where);
    if (!peer_row) {
      expect_fields(row, gemm_q8_fields, COUNT(gemm_q8_fields), where);
      if (m <= 16 && !flag(ctx, "cold")) {
        expect_fields(row, gemm_bandwidth_fields, COUNT(gemm_bandwidth_fields), where);
      }
    }
    if (qb_json_get(row, "bandwidth_gbps")) {
      cr_expect(one_of(str(row, "bandwidth_level"), levels), "%s: bandwidth_level '%s'", where,
                str(row, "bandwidth_level"));
      cr_expect(near(num(row, "bandwidth_fraction"), num(row, "weight_gbps") / num(row, "bandwidth_gbps"), 1e-6),
                "%s: bandwidth_fraction is not weight_gbps / bandwidth_gbps", where);
      if (num(row, "threads") == 1) {
        const double measured = num(qb_json_get(ctx, "bandwidth_gbps"), str(row, "bandwidth_level"));
        cr_expect(near(num(row, "bandwidth_gbps"), measured, 1e-6), "%s: bandwidth_gbps %g is not context's %s %g",
                  where, num(row, "bandwidth_gbps"), str(row, "bandwidth_level"), measured);
      }
    }
  } else if (elementwise) {
    if (!expect_fields(row, elementwise_fields, COUNT(elementwise_fields), where)) return;
    const double count = num(row, "count"), bytes = num(row, "bytes");
    cr_expect_geq(count, 1, "%s: count", where);
    cr_expect_geq(bytes, count, "%s: bytes %g < count %g", where, bytes, count);
    /* int32 or float in and int8 out, or int8 in and float out. */
    cr_expect_eq(bytes, 5 * count, "%s: bytes %g for %g elements", where, bytes, count);
    cr_expect_eq(num(row, "gbps"), rate, "%s: gbps = rate", where);
    cr_expect(near(rate, bytes / real_time, 1e-6), "%s: rate %g is not bytes / real_time", where, rate);
    const char *level = str(row, "bandwidth_level");
    cr_expect(one_of(level, levels), "%s: bandwidth_level '%s'", where, level);
    cr_expect_eq(num(row, "bandwidth_gbps"), peak, "%s: bandwidth_gbps = peak", where);
    cr_expect(near(peak, num(qb_json_get(ctx, "bandwidth_gbps"), level), 1e-6),
              "%s: peak %g is not context.bandwidth_gbps.%s", where, peak, level);
    if (strcmp(op, "requantize") == 0) {
      cr_expect(one_of(str(row, "mode"), modes), "%s: mode '%s'", where, str(row, "mode"));
      snprintf(want, sizeof want, "requantize/%s/%.0f/%s", str(row, "mode"), count, isa);
    } else {
      cr_expect_null(qb_json_get(row, "mode"), "%s: only requantize rows have a mode", where);
      snprintf(want, sizeof want, "%s/%.0f/%s", op, count, isa);
    }
    cr_expect_str_eq(name, want, "%s: name", where);
  } else if (peak_row) {
    cr_expect_str_eq(str(row, "suite"), "peak", "%s: suite", where);
    cr_expect_eq(fraction, 1.0, "%s: a peak row is its own bound", where);
    const bool compute = strcmp(op, "peak") == 0;
    char level[16] = "";
    if (!compute && sscanf(name, "bandwidth/%15[^/]", level) != 1) level[0] = '\0';
    const double measured = compute ? num(qb_json_get(ctx, "peaks_gops"), isa)
                                    : num(qb_json_get(ctx, "bandwidth_gbps"), level);
    cr_expect(near(rate, measured, 1e-6), "%s: rate %g is not the context's %g", where, rate, measured);
    if (compute) {
      snprintf(want, sizeof want, "peak/%s/threads:1", isa);
    } else {
      cr_expect(one_of(level, levels), "%s: level '%s'", where, level);
      snprintf(want, sizeof want, "bandwidth/%s/threads:1", level);
    }
    cr_expect_str_eq(name, want, "%s: name", where);
  }
}

/* Validates a whole file; returns the rows array. */
static const qb_jvalue *check_file(const qb_jvalue *doc, const char *what) {
  const qb_jvalue *ctx = qb_json_get(doc, "context");
  cr_assert(check_context(ctx, what), "%s: the context does not follow docs/results.md", what);
  const qb_jvalue *rows = qb_json_get(doc, "benchmarks");
  cr_assert(has_type(rows, F_ARRAY), "%s: \"benchmarks\" is an array", what);
  for (size_t i = 0; i < rows->count; ++i) {
    check_row(rows->items[i], ctx, i, what);
    for (size_t j = 0; j < i; ++j) {
      cr_expect(strcmp(str(rows->items[i], "name"), str(rows->items[j], "name")) != 0,
                "%s: name '%s' appears twice", what, str(rows->items[i], "name"));
    }
  }
  return rows;
}

/* run_json, then check_file: the document, its rows in *rows. */
static qb_jvalue *run_checked(const char *args, const qb_jvalue **rows) {
  qb_jvalue *doc = run_json(args);
  *rows = check_file(doc, args);
  return doc;
}

static size_t rows_where(const qb_jvalue *rows, const char *key, const char *value) {
  size_t n = 0;
  for (size_t i = 0; i < rows->count; ++i) n += strcmp(str(rows->items[i], key), value) == 0;
  return n;
}

static const qb_jvalue *first_row_where(const qb_jvalue *rows, const char *key, const char *value) {
  for (size_t i = 0; i < rows->count; ++i) {
    if (strcmp(str(rows->items[i], key), value) == 0) return rows->items[i];
  }
  return NULL;
}

static bool all_true(const qb_jvalue *rows, const char *key) {
  for (size_t i = 0; i < rows->count; ++i) {
    const qb_jvalue *v = qb_json_get(rows->items[i], key);
    if (v == NULL || v->type != QB_JBOOL || !v->boolean) return false;
  }
  return true;
}

/* Runs a row's repro with --json - and expects exactly that row back. */
static void expect_repro_reruns(const qb_jvalue *row) {
  const char *repro = str(row, "repro");
  cr_assert(strncmp(repro, "qbench ", 7) == 0, "%s", repro);
  char args[512];
  snprintf(args, sizeof args, "%s --json -", repro + 7);
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  cr_expect_eq(rows->count, 1, "%s reruns only its row, not %zu", repro, rows->count);
  cr_expect_eq(rows_where(rows, "name", str(row, "name")), 1, "%s reruns %s", repro, str(row, "name"));
  qb_json_free(doc);
}

/* Runs `qbench <command> --shapes FILE <options>` with `shapes` in FILE and
 * validates its JSON; *rows gets the rows. */
static qb_jvalue *run_on_shapes(const char *command, const char *shapes, const char *options,
                                const qb_jvalue **rows) {
  char args[256];
  snprintf(args, sizeof args, "%s --shapes %s %s --json -", command, write_file("shapes.txt", shapes), options);
  return run_checked(args, rows);
}

/* ---- the measuring subcommands ---- */

TestSuite(schema, .fini = q8t_temp_dir_remove);

Test(schema, default_run) {
  const char *args = "--quick --min-time 0.01 --suite small --isa ref,hwy --no-save --json -";
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  const qb_jvalue *ctx = qb_json_get(doc, "context");
  cr_expect(near(num(ctx, "min_time_s"), 0.01, 1e-9), "--min-time after --quick wins: %g", num(ctx, "min_time_s"));
  cr_expect(!flag(ctx, "cold") && !flag(ctx, "checked") && !flag(ctx, "bitwise"), "no --cold, --check, --bitwise");
  /* Both halves of the run: every element-wise op and the GEMM suite. */
  cr_expect_eq(rows_where(rows, "op", "requantize"), 3 * 2, "3 modes x 2 ISAs");
  cr_expect_eq(rows_where(rows, "op", "quantize"), 2);
  cr_expect_eq(rows_where(rows, "op", "dequantize"), 2);
  cr_expect_geq(rows_where(rows, "op", "gemm"), 2, "GEMM rows present");
  cr_expect_eq(rows_where(rows, "suite", "small"), rows_where(rows, "op", "gemm"), "--suite small");
  cr_expect_eq(rows_where(rows, "isa", "ref") + rows_where(rows, "isa", "hwy"), rows->count, "--isa ref,hwy");
  cr_expect_eq(rows_where(rows, "out", "s8"), rows_where(rows, "op", "gemm"), "the default run's GEMMs are s8");
  /* A suite row's and an element-wise row's repro each rerun that row. */
  const qb_jvalue *gemm = first_row_where(rows, "op", "gemm"), *dequantize = first_row_where(rows, "op", "dequantize");
  cr_assert_not_null(gemm);
  cr_assert_not_null(dequantize);
  expect_repro_reruns(gemm);
  expect_repro_reruns(dequantize);
  qb_json_free(doc);
}

/* The up-front bounds, the element-wise rows (1 Mi elements: L3 or DRAM) and
 * GEMM weights beyond L2 (2.4 MB packed) share one measured figure per level
 * with the context. */
Test(schema, default_run_one_bandwidth_per_level) {
  const qb_jvalue *rows;
  qb_jvalue *doc = run_on_shapes("--no-save", "1x3072x768\n1x8x8\n", "--isa ref --min-time 0.01", &rows);
  cr_expect_eq(rows_where(rows, "suite", "shapes"), 2, "a row per shape of the file");
  cr_expect_eq(rows_where(rows, "suite", "elementwise"), 5, "3 requantize modes, quantize, dequantize");
  qb_json_free(doc);
}

Test(schema, gemm_check_bitwise) {
  const char *args = "gemm --shape 4x8x16,1x33x7 --min-time 0.01 --out s8 --check --bitwise --json -";
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  const qb_jvalue *ctx = qb_json_get(doc, "context");
  cr_expect(flag(ctx, "checked") && flag(ctx, "bitwise"), "context: checked, bitwise");
  cr_expect(rows->count >= 4 && rows->count % 2 == 0, "two shapes x every usable ISA: %zu rows", rows->count);
  cr_expect_eq(rows_where(rows, "op", "gemm"), rows->count);
  cr_expect(all_true(rows, "check_ok"), "every row has check_ok: true");
  cr_expect(all_true(rows, "bitwise_ok"), "every row has bitwise_ok: true");
  size_t first = 0, second = 0;
  for (size_t i = 0; i < rows->count; ++i) {
    const qb_jvalue *r = rows->items[i];
    const double m = num(r, "m"), n = num(r, "n"), k = num(r, "k");
    first += m == 4 && n == 8 && k == 16;
    second += m == 1 && n == 33 && k == 7;
    cr_expect_str_eq(str(r, "out"), "s8", "%s", str(r, "name"));
    cr_expect_str_eq(str(r, "suite"), "cli", "%s", str(r, "name"));
    cr_expect(strstr(str(r, "repro"), " --check") && strstr(str(r, "repro"), " --bitwise"),
              "the repro keeps --check --bitwise: %s", str(r, "repro"));
  }
  cr_expect(first == second && first + second == rows->count, "rows: %zu of 4x8x16, %zu of 1x33x7, of %zu", first,
            second, rows->count);
  cr_expect_eq(rows_where(rows, "isa", "ref"), 2, "ref ran on each shape");
  const qb_jvalue *last = rows->items[rows->count - 1];
  expect_repro_reruns(last);
  qb_json_free(doc);
}

Test(schema, gemm_cold) {
  const char *args = "gemm --shape 16x16x16 --min-time 0.01 --cold --isa ref --json -";
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  cr_expect(flag(qb_json_get(doc, "context"), "cold"), "context.cold");
  cr_assert_eq(rows->count, 1);
  const qb_jvalue *r = rows->items[0];
  cr_expect_str_eq(str(r, "name"), "gemm/cli/16x16x16/s32/ref/threads:1");
  cr_expect(strstr(str(r, "repro"), " --cold") != NULL, "the repro keeps --cold: %s", str(r, "repro"));
  qb_json_free(doc);
}

Test(schema, gemm_shapes_file) {
  const qb_jvalue *rows;
  qb_jvalue *doc = run_on_shapes("gemm", "# M x N x K\n2x24x40\n\n3x5x7  # odd sizes\n",
                                 "--isa ref --out u8 --min-time 0.01", &rows);
  cr_assert_eq(rows->count, 2, "one row per line of the file");
  cr_expect_str_eq(str(rows->items[0], "name"), "gemm/shapes/2x24x40/u8/ref/threads:1");
  cr_expect_str_eq(str(rows->items[1], "name"), "gemm/shapes/3x5x7/u8/ref/threads:1");
  expect_repro_reruns(rows->items[1]);
  qb_json_free(doc);
}

Test(schema, requant_check) {
  const char *args = "requant --count 1000 --min-time 0.01 --check --json -";
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  cr_expect(flag(qb_json_get(doc, "context"), "checked"), "context.checked");
  cr_expect_geq(rows->count, 5, "3 modes of requantize, quantize, dequantize: %zu rows", rows->count);
  cr_expect_eq(rows_where(rows, "suite", "elementwise"), rows->count);
  cr_expect(all_true(rows, "check_ok"), "every row has check_ok: true");
  for (size_t i = 0; i < rows->count; ++i) {
    cr_expect_eq(num(rows->items[i], "count"), 1000, "%s", str(rows->items[i], "name"));
  }
  for (const char *const *mode = modes; *mode; ++mode) {
    cr_expect_geq(rows_where(rows, "mode", *mode), 1, "requantize mode %s", *mode);
  }
  qb_json_free(doc);
}

Test(schema, peak) {
  const char *args = "peak --min-time 0.01 --json -";
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  const qb_jvalue *ctx = qb_json_get(doc, "context");
  /* One row per level measured and per usable compute probe, as in the context. */
  cr_expect_eq(rows_where(rows, "op", "bandwidth"), 4, "L1, L2, L3, DRAM");
  cr_expect_eq(qb_json_get(ctx, "bandwidth_gbps")->count, 4);
  cr_expect_eq(rows_where(rows, "op", "peak"), qb_json_get(ctx, "peaks_gops")->count);
  cr_expect(has_type(qb_json_get(doc, "peaks"), F_ARRAY), "the per-ISA detail stays: peaks");
  cr_expect(has_type(qb_json_get(doc, "bandwidth"), F_ARRAY), "the per-level detail stays: bandwidth");
  qb_json_free(doc);
}

Test(schema, peers) {
  const char *args = "gemm --peers --shape 8x64x64 --out s8 --min-time 0.01 --json -";
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(args, &rows);
  const qb_jvalue *peers = qb_json_get(qb_json_get(doc, "context"), "peers");
  const size_t peer_rows = rows->count - rows_where(rows, "library", "q8");
  if (peers->count == 0) {
    cr_log_info("no peer built (oneDNN, XNNPACK): only the q8 side of --peers is checked");
    cr_expect_eq(peer_rows, 0, "no peers ran, yet %zu peer rows", peer_rows);
  } else {
    cr_expect_geq(peer_rows, 1, "context.peers lists %zu peers but there is no peer row", peers->count);
    /* check_row has checked each peer row: peer = library, ratio_vs_peer > 0, isa set. */
    for (size_t i = 0; i < peers->count; ++i) {
      cr_expect_geq(rows_where(rows, "library", peers->keys[i]), 1, "context.peers.%s has a row", peers->keys[i]);
    }
    for (size_t i = 0; i < rows->count; ++i) {
      const qb_jvalue *r = rows->items[i];
      if (strcmp(str(r, "library"), "q8") == 0) continue;
      cr_expect(strstr(str(r, "repro"), " --peer ") != NULL, "%s: repro %s", str(r, "name"), str(r, "repro"));
    }
  }
  qb_json_free(doc);
}

/* Counts comma-separated fields, commas inside "quotes" excepted. */
static size_t csv_fields(const char *line) {
  size_t n = 1;
  bool quoted = false;
  for (; *line && *line != '\n'; ++line) {
    if (*line == '"') quoted = !quoted;
    else if (*line == ',' && !quoted) ++n;
  }
  return n;
}

Test(schema, csv_header_and_row) {
  int code;
  char *out = q8t_run_qbench("gemm --shape 4x4x4 --isa ref --min-time 0.01 --csv -", false, &code);
  cr_assert_not_null(out, "ctest sets Q8_QBENCH");
  cr_assert_eq(code, 0, "%s", out);
  char *second = strchr(out, '\n');
  cr_assert_not_null(second, "%s", out);
  ++second;
  char *end = strchr(second, '\n');
  cr_assert_not_null(end, "a data row: %s", out);
  cr_expect_str_eq(end + 1, "", "one data row only (the table goes to stderr): %s", out);
  cr_expect(strncmp(out, "name,", 5) == 0, "header first: %s", out);
  cr_expect_eq(csv_fields(second), csv_fields(out), "as many fields as the header:\n%s", out);
  cr_expect(strncmp(second, "gemm/cli/4x4x4/s32/ref/threads:1,", 33) == 0, "%s", second);
  free(out);
}

/* ---- bad input: exit 2 and a message naming the problem ---- */

/* Expects `qbench args` to exit 2, its output naming each of `needles`
 * (NULL-terminated), and no table (it stops before measuring). */
static void expect_usage_error(const char *args, ...) {
  int code = -1;
  char *out = q8t_run_qbench(args, true, &code);
  cr_assert_not_null(out, "ctest sets Q8_QBENCH");
  cr_expect_eq(code, 2, "qbench %s: exit %d, expected 2:\n%s", args, code, out);
  va_list ap;
  va_start(ap, args);
  for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;) {
    cr_expect(strstr(out, needle) != NULL, "qbench %s: the message should name '%s':\n%s", args, needle, out);
  }
  va_end(ap);
  cr_expect(strstr(out, "benchmark   ") == NULL && strstr(out, "\"benchmarks\"") == NULL,
            "qbench %s: measured despite the error:\n%s", args, out);
  free(out);
}

TestSuite(cli, .fini = q8t_temp_dir_remove);

/* The rest of each command line keeps a run short should an error be missed. */
#define GEMM "gemm --isa ref --min-time 0.01 "

Test(cli, gemm_shapes) {
  expect_usage_error(GEMM "--shape 0x1x1", "0x1x1", NULL);
  expect_usage_error(GEMM "--shape 1x2", "1x2", NULL);
  expect_usage_error(GEMM "--shape 4x4x4,", "shape", NULL);
  expect_usage_error(GEMM "--shape 1x1x40000", "40000", "Q8_GEMM_MAX_K", NULL);
  expect_usage_error(GEMM "--shapes /nonexistent/shapes.txt", "/nonexistent/shapes.txt", NULL);
  const char *path = write_file("shapes.txt", "4x4x4\n# a comment\n4x4\n8x8x8\n");
  char args[256], where[160];
  snprintf(args, sizeof args, GEMM "--shapes %s", path);
  snprintf(where, sizeof where, "%s:3", path);
  expect_usage_error(args, where, "4x4", NULL);
  expect_usage_error(GEMM "--suite bogus", "bogus", NULL);
  expect_usage_error(GEMM "--shape bogus:4x4x4", "bogus", NULL);
}

Test(cli, gemm_options) {
  expect_usage_error("gemm --shape 4x4x4 --isa bogus", "bogus", NULL);
#if defined(__x86_64__) || defined(__i386__)
  expect_usage_error("gemm --shape 4x4x4 --isa neon", "neon", "cannot run", NULL);
#else
  expect_usage_error("gemm --shape 4x4x4 --isa avx2", "avx2", "cannot run", NULL);
#endif
  expect_usage_error(GEMM "--shape 4x4x4 --out s16", "s16", NULL);
  expect_usage_error(GEMM "--shape 4x4x4 --threads -1", "-1", "--threads", NULL);
  expect_usage_error("gemm --isa ref --shape 4x4x4 --min-time 0", "--min-time", "'0'", NULL);
  expect_usage_error("gemm --isa ref --shape 4x4x4 --min-time abc", "--min-time", "abc", NULL);
  expect_usage_error(GEMM "--shape 4x4x4 --json", "--json", NULL);
  expect_usage_error(GEMM "--shape 4x4x4 --frobnicate", "--frobnicate", NULL);
  expect_usage_error(GEMM "--shape 4x4x4 --peer bogus", "bogus", NULL);
  expect_usage_error(GEMM "--shape 4x4x4 --core 4096", "--core", "'4096'", NULL);
  expect_usage_error(GEMM "--shape 4x4x4 --core -1", "--core", "'-1'", NULL);
  expect_usage_error("conv --isa ref --shape 4x4x4:4:1x1 --core x", "--core", "'x'", NULL);
}

/* --core N: the run says in its context which core it ran on. */
Test(schema, core_in_the_context) {
  const bool two = q8_cpu()->cores >= 2;
  const qb_jvalue *rows;
  qb_jvalue *doc = run_checked(two ? "gemm --isa ref --shape 4x4x4 --min-time 0.01 --core 1 --json -"
                                   : "gemm --isa ref --shape 4x4x4 --min-time 0.01 --json -",
                               &rows);
  const qb_jvalue *core = qb_json_get(qb_json_get(doc, "context"), "core");
  cr_assert_not_null(core, "context.core");
  cr_expect_eq((int)core->number, two ? 1 : 0, "context.core %g", core->number);
  qb_json_free(doc);
}

Test(cli, requant_peak_and_default_run) {
  expect_usage_error("requant --min-time 0.01 --count 0", "--count", "'0'", NULL);
  expect_usage_error("requant --min-time 0.01 --count 1000 --op bogus", "bogus", "--op", NULL);
  expect_usage_error("requant --min-time 0.01 --count 1000 --mode bogus", "bogus", "--mode", NULL);
  expect_usage_error("requant --min-time 0.01 --count 1000 --frobnicate", "--frobnicate", NULL);
  expect_usage_error("peak --min-time -1", "--min-time", "-1", NULL);
  expect_usage_error("peak --frobnicate", "--frobnicate", NULL);
  expect_usage_error("--no-save --isa ref --min-time 0.01 --suite bogus", "bogus", "--suite", NULL);
  expect_usage_error("--no-save --isa ref --min-time 0.01 --suite small --peer bogus", "bogus", "--peer", NULL);
  expect_usage_error("--no-save --frobnicate", "--frobnicate", NULL);
}
