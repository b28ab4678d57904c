/* qbench conv: its JSON rows against docs/results.md (the GEMM fields, the
 * conv geometry, rate = 2 m n k / time with m, n, k the GEMM-equivalent sizes
 * of the geometry), --check on every path, bad specs naming their bad part,
 * each row's repro rerunning that row, the MobileNetV2 suite with its
 * depthwise rows in GB/s, and the per-suite totals. Small layers and a tiny
 * --min-time: this times nothing, it checks what qbench reports. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "tests/support/q8test.h"

/* A few layers covering padding (symmetric and not), stride, dilation,
 * groups, depthwise with multiplier 2, batch 2 and a 1x1. */
#define LAYERS "9x9x8:16:3x3:s1:p1,2x7x6x4:6:3x3:s2:p0,1,1,0:d1:g2,6x6x4:8:3x3:p1:dw,5x5x3:5:1x1,8x8x2:3:3x3:p2:d2"

static qb_jvalue *run_json(const char *args) {
  char *failure = NULL;
  char *out = q8t_run_qbench_ok(args, &failure);
  cr_assert_not_null(out, "qbench %s: %s", args, failure ? failure : "out of memory");
  char err[256];
  qb_jvalue *doc = qb_json_parse(out, err, sizeof err);
  cr_assert_not_null(doc, "qbench %s: stdout is not JSON (%s):\n%.3000s", args, err, out);
  free(out);
  return doc;
}

static const qb_jvalue *rows_of(const qb_jvalue *doc) {
  const qb_jvalue *rows = qb_json_get(doc, "benchmarks");
  cr_assert(rows && rows->type == QB_JARRAY && rows->count > 0, "no benchmark rows");
  return rows;
}

static double num(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JNUMBER ? v->number : NAN;
}

static const char *str(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JSTRING ? v->string : "";
}

static bool flag(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JBOOL && v->boolean;
}

static bool near(double a, double b, double rel) { return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)); }

/* Every field a conv row must have, with its JSON type: 'n' number, 'i'
 * integer, 's' string, 'b' bool. */
static const struct {
  const char *key;
  char type;
} conv_fields[] = {
    {"name", 's'},        {"run_name", 's'},     {"run_type", 's'},     {"iterations", 'i'},  {"real_time", 'n'},
    {"cpu_time", 'n'},    {"time_unit", 's'},    {"min_time_ns", 'n'},  {"max_time_ns", 'n'}, {"samples", 'i'},
    {"suite", 's'},       {"op", 's'},           {"library", 's'},      {"isa", 's'},         {"kernel", 's'},
    {"threads", 'i'},     {"unit", 's'},         {"rate", 'n'},         {"peak", 'n'},        {"peak_fraction", 'n'},
    {"repro", 's'},       {"m", 'i'},            {"n", 'i'},            {"k", 'i'},           {"out", 's'},
    {"gops", 'n'},        {"peak_gops", 'n'},    {"peak_isa", 's'},     {"batch", 'i'},       {"in_h", 'i'},
    {"in_w", 'i'},        {"in_channels", 'i'},  {"out_channels", 'i'}, {"out_h", 'i'},       {"out_w", 'i'},
    {"kernel_h", 'i'},    {"kernel_w", 'i'},     {"stride_h", 'i'},     {"stride_w", 'i'},    {"dilation_h", 'i'},
    {"dilation_w", 'i'},  {"pad_top", 'i'},      {"pad_left", 'i'},     {"pad_bottom", 'i'},  {"pad_right", 'i'},
    {"groups", 'i'},      {"depthwise", 'b'},    {"in", 's'},           {"algorithm", 's'}};

static const char *const depthwise_fields[] = {"bytes", "gbps", "bandwidth_gbps", "bandwidth_fraction"};

static long count_of(const qb_jvalue *row, const char *key) { return (long)num(row, key); }

/* The schema of one conv row, and that its numbers agree with each other. */
static void check_conv_row(const qb_jvalue *row) {
  const char *name = str(row, "name");
  for (size_t i = 0; i < sizeof conv_fields / sizeof conv_fields[0]; ++i) {
    const qb_jvalue *v = qb_json_get(row, conv_fields[i].key);
    const char t = conv_fields[i].type;
    const bool ok = v && ((t == 's' && v->type == QB_JSTRING) || (t == 'b' && v->type == QB_JBOOL) ||
                          (t == 'n' && v->type == QB_JNUMBER && isfinite(v->number)) ||
                          (t == 'i' && v->type == QB_JNUMBER && v->number == floor(v->number)));
    cr_expect(ok, "%s: \"%s\" missing or not a%s %c", name, conv_fields[i].key, t == 'i' ? "n" : "", t);
  }
  cr_expect_str_eq(str(row, "op"), "conv", "%s: op", name);
  cr_expect(strncmp(name, "conv/", 5) == 0, "%s: name starts with conv/", name);
  cr_expect_str_eq(str(row, "unit"), "GOPS", "%s", name);
  /* GEMM-equivalent sizes from the geometry. */
  const long groups = count_of(row, "groups");
  cr_expect_eq(count_of(row, "m"), count_of(row, "batch") * count_of(row, "out_h") * count_of(row, "out_w"),
               "%s: m = batch x out_h x out_w", name);
  cr_expect_eq(count_of(row, "n"), count_of(row, "out_channels"), "%s: n = out_channels", name);
  cr_expect_eq(count_of(row, "k"),
               count_of(row, "kernel_h") * count_of(row, "kernel_w") * count_of(row, "in_channels") / groups,
               "%s: k = KH x KW x C / groups", name);
  const long dilated_h = (count_of(row, "kernel_h") - 1) * count_of(row, "dilation_h") + 1;
  cr_expect_eq(count_of(row, "out_h"),
               (count_of(row, "in_h") + count_of(row, "pad_top") + count_of(row, "pad_bottom") - dilated_h) /
                       count_of(row, "stride_h") + 1,
               "%s: out_h from the geometry", name);
  /* gops == 2 x ops / time, time in ns. */
  const double ops = 2.0 * num(row, "m") * num(row, "n") * num(row, "k");
  const double seconds = num(row, "real_time") * 1e-9;
  cr_expect(seconds > 0, "%s: real_time %g", name, seconds);
  cr_expect(near(num(row, "gops"), ops / seconds * 1e-9, 1e-6), "%s: gops %g != 2 m n k / time %g", name,
            num(row, "gops"), ops / seconds * 1e-9);
  cr_expect(near(num(row, "rate"), num(row, "gops"), 1e-12), "%s: rate = gops", name);
  cr_expect(near(num(row, "peak_fraction"), num(row, "rate") / num(row, "peak"), 1e-6), "%s: peak_fraction", name);
  cr_expect(num(row, "peak") > 0, "%s: a measured peak", name);
  cr_expect(num(row, "samples") >= 5, "%s: >= 5 samples", name);
  const bool depthwise = flag(row, "depthwise");
  cr_expect_eq(depthwise, groups > 1 && groups == count_of(row, "in_channels"), "%s: depthwise flag", name);
  for (size_t i = 0; i < sizeof depthwise_fields / sizeof depthwise_fields[0]; ++i) {
    const qb_jvalue *v = qb_json_get(row, depthwise_fields[i]);
    if (depthwise) {
      cr_expect(v && v->type == QB_JNUMBER && v->number > 0, "%s: depthwise row without \"%s\"", name,
                depthwise_fields[i]);
    } else {
      cr_expect_null(v, "%s: \"%s\" on a layer that is not depthwise", name, depthwise_fields[i]);
    }
  }
  if (depthwise) {
    const long out_bytes = strcmp(str(row, "out"), "s32") == 0 ? 4 : 1;
    const long bytes = count_of(row, "batch") * count_of(row, "in_h") * count_of(row, "in_w") *
                           count_of(row, "in_channels") +
                       count_of(row, "m") * count_of(row, "n") * out_bytes + count_of(row, "n") * count_of(row, "k");
    cr_expect_eq(count_of(row, "bytes"), bytes, "%s: bytes = input + output + weights", name);
    cr_expect(near(num(row, "gbps"), (double)bytes / seconds * 1e-9, 1e-6), "%s: gbps = bytes / time", name);
    cr_expect(near(num(row, "bandwidth_fraction"), num(row, "gbps") / num(row, "bandwidth_gbps"), 1e-6),
              "%s: bandwidth_fraction", name);
    const char *level = str(row, "bandwidth_level");
    cr_expect(strcmp(level, "L1") == 0 || strcmp(level, "L2") == 0 || strcmp(level, "L3") == 0 ||
                  strcmp(level, "DRAM") == 0,
              "%s: bandwidth_level '%s'", name, level);
  }
}

static size_t count_rows(const qb_jvalue *rows, const char *algorithm) {
  size_t n = 0;
  for (size_t i = 0; i < rows->count; ++i) n += strcmp(str(rows->items[i], "algorithm"), algorithm) == 0;
  return n;
}

Test(qbench_conv, json_schema_and_rates) {
  qb_jvalue *doc = run_json("conv --shape " LAYERS " --isa ref --min-time 0.005 --json -");
  const qb_jvalue *rows = rows_of(doc);
  /* plan and im2col per layer. */
  cr_expect_eq(rows->count, 10, "5 layers x (plan, im2col): got %zu rows", rows->count);
  for (size_t i = 0; i < rows->count; ++i) check_conv_row(rows->items[i]);
  cr_expect_eq(count_rows(rows, "plan"), 5);
  cr_expect_eq(count_rows(rows, "im2col"), 5);
  qb_json_free(doc);
}

/* Every path against the ref ISA's conv plan: q8 rows exact, peers within 1
 * in s8/u8 and exact in s32; u8 input too. */
static void check_run(const char *args) {
  qb_jvalue *doc = run_json(args);
  const qb_jvalue *rows = rows_of(doc);
  size_t peers = 0;
  for (size_t i = 0; i < rows->count; ++i) {
    const qb_jvalue *row = rows->items[i];
    const char *name = str(row, "name");
    check_conv_row(row);
    cr_expect(flag(row, "check_ok"), "%s: check_ok (max_abs_diff %g)", name, num(row, "max_abs_diff"));
    if (strcmp(str(row, "library"), "q8") != 0) {
      ++peers;
      const double diff = num(row, "max_abs_diff");
      cr_expect(diff >= 0 && diff <= (strcmp(str(row, "out"), "s32") == 0 ? 0 : 1), "%s: max_abs_diff %g", name,
                diff);
      cr_expect(num(row, "ratio_vs_peer") > 0, "%s: ratio_vs_peer", name);
      cr_expect_geq(num(row, "pairs"), 5, "%s: timed in pairs with the q8 plan", name);
      cr_expect_gt(num(row, "paired_q8_time"), 0, "%s: paired_q8_time", name);
    }
  }
  cr_log_info("%s: %zu rows, %zu of peers", args, rows->count, peers);
  qb_json_free(doc);
}

Test(qbench_conv, check_every_path_s8) {
  check_run("conv --shape " LAYERS " --isa all --peers --out s8 --check --bitwise --min-time 0.002 --json -");
}

Test(qbench_conv, check_every_path_u8_in_s32_out) {
  check_run("conv --shape " LAYERS " --isa all --peers --in u8 --out s32 --check --min-time 0.002 --json -");
}

Test(qbench_conv, check_u8_out) {
  check_run("conv --shape 6x6x4:8:3x3:p1:dw,9x9x8:16:3x3:s2:p1 --peers --in u8 --out u8 --check --min-time 0.002 "
            "--json -");
}

static void expect_repro_reruns(const qb_jvalue *row);

/* An input off the 64-byte grid (where a large malloc puts it) gives the
 * same outputs on every path, and the repro keeps the offset. */
Test(qbench_conv, check_input_off_the_line_grid) {
  check_run("conv --shape 5x5x64:64:3x3:s2:p1:dw,4x4x128:128:3x3:p1:dw," LAYERS
            " --isa all --peers --in u8 --in-offset 16 --out s8 --check --min-time 0.002 --json -");
  qb_jvalue *doc = run_json("conv --shape 5x5x64:64:3x3:s2:p1:dw --isa ref --in-offset 16 --min-time 0.002 --json -");
  const qb_jvalue *rows = rows_of(doc);
  cr_assert_gt(rows->count, 0);
  cr_expect(strstr(str(rows->items[0], "repro"), " --in-offset 16") != NULL, "repro: %s",
            str(rows->items[0], "repro"));
  expect_repro_reruns(rows->items[0]);
  qb_json_free(doc);
}

/* Bad input exits 2 before measuring, naming what is wrong. */
Test(qbench_conv, bad_specs_name_the_bad_part) {
  static const struct {
    const char *args, *expect;
  } cases[] = {
      {"--shape 56x56:64:3x3", "'56x56'"},
      {"--shape 56x56x64:0:3x3", "output channels '0'"},
      {"--shape 56x56x64:64:3", "kernel '3'"},
      {"--shape 56x56x64:64:3x0", "kernel '3x0'"},
      {"--shape 56x56x64:64:3x3:q1", "':q1'"},
      {"--shape 56x56x64:64:3x3:p1,2", "':p1,2'"},
      {"--shape 56x56x64:64:3x3:s0", "':s0'"},
      {"--shape 56x56x64:64:3x3:s1:s2", "':s2' repeats"},
      {"--shape 56x56x64:64:3x3:dwx", "':dwx'"},
      {"--shape 56x56x64:60:3x3:dw", "':dw'"},
      {"--shape 56x56x6:64:3x3:g4", "group"},
      {"--shape 4x4x8:8:7x7", "kernel"},
      {"--shape foo:5x5x8:8:3x3", "unknown suite 'foo'"},
      {"--shape 5x5x8:8:3x3:p1,9x9", "'9x9'"},
      {"--shape 5x5x8:8:3x3x", "kernel '3x3x'"},
      {"--suite resnet18", "'resnet18'"},
      {"--in s32", "'s32'"},
      {"--in-offset 64", "'64'"},
      {"--in-offset x", "'x'"},
      {"--out f32", "'f32'"},
      {"--cold", "--cold"},
      {"--bogus", "'--bogus'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    char args[160];
    snprintf(args, sizeof args, "conv %s --isa none --min-time 0.001", cases[i].args);
    int code = -1;
    char *out = q8t_run_qbench(args, true, &code);
    cr_assert_not_null(out);
    cr_expect_eq(code, 2, "qbench %s: exit %d, expected 2:\n%s", args, code, out);
    cr_expect(strstr(out, cases[i].expect) != NULL, "qbench %s: the message does not name %s:\n%s", args,
              cases[i].expect, out);
    cr_expect(strstr(out, "benchmark") == NULL, "qbench %s: measured before rejecting:\n%s", args, out);
    free(out);
  }
}

/* A row's repro command, run with --json -, gives a row of the same name. */
static void expect_repro_reruns(const qb_jvalue *row) {
  const char *repro = str(row, "repro");
  cr_assert(strncmp(repro, "qbench ", 7) == 0, "repro '%s' starts with qbench", repro);
  char args[512];
  snprintf(args, sizeof args, "%s --json -", repro + 7);
  qb_jvalue *doc = run_json(args);
  const qb_jvalue *rows = rows_of(doc);
  bool found = false;
  for (size_t i = 0; i < rows->count; ++i) found |= strcmp(str(rows->items[i], "name"), str(row, "name")) == 0;
  cr_expect(found, "%s reruns no row named %s", repro, str(row, "name"));
  qb_json_free(doc);
}

Test(qbench_conv, repro_reruns_the_row) {
  qb_jvalue *doc = run_json("conv --shape mobilenetv2:6x6x4:8:3x3:s2:p0,1,1,0:dw,2x5x5x3:4:3x3:p1 --peers --in u8 "
                            "--out s8 --check --min-time 0.002 --json -");
  const qb_jvalue *rows = rows_of(doc);
  bool seen_plan = false, seen_im2col = false, seen_peer = false;
  for (size_t i = 0; i < rows->count; ++i) {
    const qb_jvalue *row = rows->items[i];
    const char *algorithm = str(row, "algorithm");
    bool *seen = strcmp(algorithm, "plan") == 0 ? &seen_plan : strcmp(algorithm, "im2col") == 0 ? &seen_im2col : &seen_peer;
    if (*seen) continue;
    *seen = true;
    expect_repro_reruns(row);
  }
  cr_expect(seen_plan && seen_im2col, "plan and im2col rows");
  cr_expect(strstr(str(rows->items[0], "name"), "conv/mobilenetv2/6x6x4:8:3x3:s2:p0,1,1,0:dw/u8-s8/") != NULL,
            "the row keeps the suite its --shape names: %s", str(rows->items[0], "name"));
  qb_json_free(doc);
}

/* The suites list their layers; MobileNetV2's depthwise rows carry GB/s. */
Test(qbench_conv, suites_list_their_layers) {
  int code = -1;
  char *out = q8t_run_qbench("conv --suite resnet50 --list", false, &code);
  cr_assert_not_null(out);
  cr_expect_eq(code, 0);
  size_t lines = 0;
  for (const char *p = out; (p = strchr(p, '\n')) != NULL; ++p) ++lines;
  cr_expect_eq(lines, 23, "resnet50: conv1 and 22 distinct 3x3/1x1 layers, got %zu:\n%s", lines, out);
  static const char *const resnet_layers[] = {"resnet50:224x224x3:64:7x7:s2:p3\n", "resnet50:56x56x64:64:3x3:s1:p1\n",
                                              "resnet50:56x56x128:128:3x3:s2:p1\n", "resnet50:56x56x256:512:1x1:s2:p0\n",
                                              "resnet50:7x7x512:512:3x3:s1:p1\n"};
  for (size_t i = 0; i < sizeof resnet_layers / sizeof resnet_layers[0]; ++i) {
    cr_expect(strstr(out, resnet_layers[i]) != NULL, "resnet50 lacks %s", resnet_layers[i]);
  }
  free(out);
  out = q8t_run_qbench("conv --suite mobilenetv2 --list", false, &code);
  cr_assert_not_null(out);
  size_t depthwise = 0;
  for (const char *p = out; (p = strstr(p, ":dw\n")) != NULL; ++p) ++depthwise;
  cr_expect_eq(depthwise, 10, "mobilenetv2: 10 distinct depthwise 3x3 layers, got %zu:\n%s", depthwise, out);
  cr_expect(strstr(out, "mobilenetv2:112x112x96:96:3x3:s2:p1:dw\n") != NULL, "a stride-2 depthwise layer");
  free(out);
  out = q8t_run_qbench("conv --suite efficientnet_b0 --list", false, &code);
  cr_assert_not_null(out);
  size_t layers = 0, five = 0;
  for (const char *p = out; (p = strchr(p, '\n')) != NULL; ++p) ++layers;
  for (const char *p = out; (p = strstr(p, ":5x5:")) != NULL; ++p) ++five;
  cr_expect_eq(layers, 32, "efficientnet_b0: 32 distinct layers, got %zu:\n%s", layers, out);
  cr_expect_eq(five, 6, "efficientnet_b0: 6 distinct depthwise 5x5 layers, got %zu:\n%s", five, out);
  cr_expect(strstr(out, "efficientnet_b0:14x14x672:672:5x5:s2:p2:dw\n") != NULL, "a stride-2 5x5 layer");
  free(out);
}

Test(qbench_conv, mobilenetv2_depthwise_rows_in_gbps) {
  char args[160];
  snprintf(args, sizeof args, "conv --suite mobilenetv2 --isa %s --min-time 0.001 --json -",
           q8_isa_name(qb_dispatched_isa()));
  qb_jvalue *doc = run_json(args);
  const qb_jvalue *rows = rows_of(doc);
  size_t depthwise = 0;
  for (size_t i = 0; i < rows->count; ++i) {
    const qb_jvalue *row = rows->items[i];
    check_conv_row(row);
    cr_expect_str_eq(str(row, "suite"), "mobilenetv2");
    depthwise += flag(row, "depthwise") && strcmp(str(row, "algorithm"), "plan") == 0;
  }
  cr_expect_eq(rows->count, 60, "30 layers x (plan, im2col), got %zu", rows->count);
  cr_expect_eq(depthwise, 10, "10 depthwise plan rows, got %zu", depthwise);
  qb_json_free(doc);
}

/* conv_totals: per suite and path, the sum of its rows' median times. */
Test(qbench_conv, totals_sum_the_rows) {
  qb_jvalue *doc = run_json("conv --shape " LAYERS " --isa ref --min-time 0.002 --json -");
  const qb_jvalue *rows = rows_of(doc), *totals = qb_json_get(doc, "conv_totals");
  cr_assert(totals && totals->type == QB_JARRAY && totals->count == 2, "conv_totals: plan:ref and im2col:ref");
  double plan_ms = NAN;
  for (size_t t = 0; t < totals->count; ++t) {
    const qb_jvalue *x = totals->items[t];
    const char *path = str(x, "path");
    double sum_ns = 0;
    long layers = 0;
    for (size_t i = 0; i < rows->count; ++i) {
      char row_path[64];
      snprintf(row_path, sizeof row_path, "%s:%s", str(rows->items[i], "algorithm"), str(rows->items[i], "isa"));
      if (strcmp(row_path, path) != 0) continue;
      sum_ns += num(rows->items[i], "real_time");
      ++layers;
    }
    cr_expect_str_eq(str(x, "suite"), "cli");
    cr_expect_eq(count_of(x, "layers"), layers, "%s: layers", path);
    cr_expect_eq(layers, 5, "%s: 5 layers", path);
    cr_expect(near(num(x, "total_ms"), sum_ns * 1e-6, 1e-6), "%s: total_ms %g != %g", path, num(x, "total_ms"),
              sum_ns * 1e-6);
    if (strcmp(path, "plan:ref") == 0) plan_ms = num(x, "total_ms");
  }
  const qb_jvalue *im2col = totals->items[1];
  cr_expect_str_eq(str(im2col, "path"), "im2col:ref");
  cr_expect_str_eq(str(im2col, "plan_path"), "plan:ref");
  cr_expect(near(num(im2col, "time_vs_plan"), num(im2col, "total_ms") / plan_ms, 1e-6), "time_vs_plan");
  qb_json_free(doc);
}

/* A peer's total beside the q8 time of the same pairs: their sums and ratio. */
Test(qbench_conv, peer_totals_carry_the_paired_q8_time) {
  if (!qb_peer_built(QB_PEER_ONEDNN, NULL)) {
    cr_log_info("oneDNN is not built: no peer total to check");
    cr_skip_test("oneDNN is not built");
  }
  qb_jvalue *doc = run_json("conv --shape " LAYERS " --isa none --peer onednn --min-time 0.002 --json -");
  const qb_jvalue *rows = rows_of(doc), *totals = qb_json_get(doc, "conv_totals");
  const qb_jvalue *x = NULL;
  for (size_t t = 0; totals && t < totals->count; ++t) {
    if (strcmp(str(totals->items[t], "path"), "onednn") == 0) x = totals->items[t];
  }
  cr_assert_not_null(x, "conv_totals has the onednn path");
  double peer_ns = 0, q8_ns = 0;
  for (size_t i = 0; i < rows->count; ++i) {
    if (strcmp(str(rows->items[i], "library"), "onednn") != 0) continue;
    peer_ns += num(rows->items[i], "real_time");
    q8_ns += num(rows->items[i], "paired_q8_time");
  }
  cr_expect_str_eq(str(x, "path"), "onednn");
  cr_expect_eq(count_of(x, "layers"), 5);
  cr_expect(near(num(x, "total_ms"), peer_ns * 1e-6, 1e-6), "total_ms %g != %g", num(x, "total_ms"), peer_ns * 1e-6);
  cr_expect(near(num(x, "paired_q8_total_ms"), q8_ns * 1e-6, 1e-6), "paired_q8_total_ms %g != %g",
            num(x, "paired_q8_total_ms"), q8_ns * 1e-6);
  cr_expect(near(num(x, "time_vs_paired_q8"), peer_ns / q8_ns, 1e-6), "time_vs_paired_q8");
  qb_json_free(doc);
}
