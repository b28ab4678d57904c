/* qbench plot: the charts, data files and script it writes for the fixture
 * tests/data/sample-results.json, what it does without peer rows, and exit 2
 * on bad input or options. Drawing needs gnuplot: without it those tests are
 * skipped, and plot must say how to install it. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/q8test.h"

static const char *temp_dir(void) {
  const char *dir = q8t_temp_dir("plot");
  cr_assert_not_null(dir, "cannot create a temporary directory");
  return dir;
}

static const char *path_in(const char *name) {
  static char paths[8][256];
  static int next;
  char *path = paths[next++ % 8];
  snprintf(path, 256, "%s/%s", temp_dir(), name);
  return path;
}

static const char *write_file(const char *name, const char *text) {
  const char *path = path_in(name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static const char *fixture(void) {
  static char path[1024];
  const char *src = getenv("Q8_SOURCE_DIR");
  cr_assert_not_null(src, "ctest sets Q8_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/data/sample-results.json", src);
  return path;
}

/* The fixture under another name in the temp directory (no ' in `name`). */
static const char *copy_fixture(const char *name) {
  const char *copy = path_in(name);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", fixture(), copy);
  cr_assert_eq(system(cmd), 0);
  return copy;
}

static bool have_gnuplot(void) {
  const char *path = getenv("PATH");
  char copy[4096], candidate[4200];
  snprintf(copy, sizeof copy, "%s", path ? path : "");
  for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(candidate, sizeof candidate, "%s/gnuplot", d);
    if (access(candidate, X_OK) == 0) return true;
  }
  return false;
}

/* Info, not a warning: Criterion 2.4 exits nonzero after a warning. */
#define NEED_GNUPLOT()                                                          \
  do {                                                                          \
    if (!have_gnuplot()) {                                                      \
      cr_log_info("gnuplot not on PATH (apt-get install gnuplot-nox): skipped"); \
      cr_skip_test("gnuplot not installed");                                    \
    }                                                                           \
  } while (0)

static int plot(const char *args, char **out) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "plot %s", args);
  int code = -1;
  *out = q8t_run_qbench(cmd, true, &code);
  cr_assert_not_null(*out, "ctest sets Q8_QBENCH");
  return code;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void expect_png(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s written", path);
  unsigned char magic[8] = {0};
  const size_t got = fread(magic, 1, sizeof magic, f);
  fclose(f);
  cr_expect(got == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is a PNG", path);
  cr_expect_gt(file_size(path), 1000, "%s has a picture", path);
}

static void expect_contains(const char *path, const char *text) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s written", path);
  static char buf[1 << 20];
  const size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[got] = '\0';
  cr_expect(strstr(buf, text) != NULL, "%s contains '%s'", path, text);
}

TestSuite(plot, .fini = q8t_temp_dir_remove);

Test(plot, fixture_gives_both_charts_data_and_script) {
  NEED_GNUPLOT();
  char args[512], *out;
  snprintf(args, sizeof args, "%s --out %s/charts", fixture(), temp_dir());
  cr_assert_eq(plot(args, &out), 0, "%s", out);
  const char *charts[] = {"gemm", "peers"};
  for (int c = 0; c < 2; ++c) {
    char name[64];
    snprintf(name, sizeof name, "charts/sample-results-%s.png", charts[c]);
    expect_png(path_in(name));
    cr_expect(strstr(out, name) != NULL, "path printed: %s", out);
    snprintf(name, sizeof name, "charts/sample-results-%s.svg", charts[c]);
    expect_contains(path_in(name), "<svg");
    snprintf(name, sizeof name, "charts/sample-results-%s.dat", charts[c]);
    cr_expect_gt(file_size(path_in(name)), 0, "%s", name);
  }
  /* The script names files relative to its directory and shows the peak. */
  const char *script = path_in("charts/sample-results-plot.gp");
  expect_contains(script, "set output \"sample-results-gemm.png\"");
  expect_contains(script, "avx512vnni peak 473 GOPS");
  expect_contains(script, "set logscale y"); /* ref is ~80x slower than avx512vnni */
  expect_contains(path_in("charts/sample-results-gemm.dat"), "256x4096x4096");
  free(out);
}

/* The fixture copied to `json`, plotted beside it as PNG only: -gemm.png exists. */
static void plot_copy_as_png(const char *json, const char *gemm_png) {
  char args[512], *out;
  snprintf(args, sizeof args, "'%s' --format png", copy_fixture(json));
  cr_assert_eq(plot(args, &out), 0, "%s", out);
  free(out);
  expect_png(path_in(gemm_png));
}

Test(plot, default_directory_and_single_format) {
  NEED_GNUPLOT();
  /* Next to the input by default; --format png writes no SVG. */
  plot_copy_as_png("run.json", "run-gemm.png");
  expect_png(path_in("run-peers.png"));
  cr_expect_eq(file_size(path_in("run-gemm.svg")), -1, "no SVG with --format png");
}

Test(plot, no_peer_rows_means_no_peers_chart) {
  NEED_GNUPLOT();
  const char *path = write_file(
      "own.json",
      "{\"context\": {\"q8_version\": \"0.1.0\", \"cpu_model\": \"Test CPU\", \"peaks_gops\": {\"avx2\": 200}},\n"
      " \"benchmarks\": [\n"
      "  {\"name\": \"gemm/cli/8x64x64/s32/ref/threads:1\", \"suite\": \"cli\", \"op\": \"gemm\", \"library\": \"q8\",\n"
      "   \"isa\": \"ref\", \"m\": 8, \"n\": 64, \"k\": 64, \"out\": \"s32\", \"threads\": 1, \"unit\": \"GOPS\", \"rate\": 4.5},\n"
      "  {\"name\": \"gemm/cli/8x64x64/s32/avx2/threads:1\", \"suite\": \"cli\", \"op\": \"gemm\", \"library\": \"q8\",\n"
      "   \"isa\": \"avx2\", \"m\": 8, \"n\": 64, \"k\": 64, \"out\": \"s32\", \"threads\": 1, \"unit\": \"GOPS\", \"rate\": 120},\n"
      "  {\"name\": \"gemm/cli/8x64x64/s32/hwy/threads:1\", \"op\": \"gemm\", \"library\": \"q8\", \"isa\": \"hwy\"},\n"
      "  {\"name\": \"requantize/fp32/1024/ref\", \"op\": \"requantize\", \"isa\": \"ref\", \"gbps\": 1.5}\n"
      " ]}\n");
  char args[512], *out;
  snprintf(args, sizeof args, "%s --out %s/o", path, temp_dir());
  cr_assert_eq(plot(args, &out), 0, "%s", out);
  cr_expect(strstr(out, "no peer rows") != NULL, "says why there is no peers chart: %s", out);
  cr_expect(strstr(out, "skipped 1 row") != NULL, "the row without m/n/k/rate is counted: %s", out);
  expect_png(path_in("o/own-gemm.png"));
  cr_expect_eq(file_size(path_in("o/own-peers.png")), -1);
  cr_expect_eq(file_size(path_in("o/own-peers.svg")), -1);
  /* The peak comes from context.peaks_gops when no row carries it. */
  expect_contains(path_in("o/own-plot.gp"), "avx2 peak 200 GOPS");
  free(out);
}

Test(plot, accepts_qbench_gemm_json) {
  NEED_GNUPLOT();
  const char *json = path_in("gemm.json");
  char args[512], *out;
  int code;
  snprintf(args, sizeof args, "gemm --isa ref --shape 4x8x16 --min-time 0.01 --json %s", json);
  out = q8t_run_qbench(args, true, &code);
  cr_assert_eq(code, 0, "%s", out);
  free(out);
  snprintf(args, sizeof args, "%s --format svg", json);
  cr_assert_eq(plot(args, &out), 0, "%s", out);
  expect_contains(path_in("gemm-gemm.svg"), "<svg");
  expect_contains(path_in("gemm-gemm.dat"), "4x8x16");
  free(out);
}

Test(plot, awkward_file_names_are_quoted) {
  NEED_GNUPLOT();
  /* Quotes, a backquote and a space must reach gnuplot as a name, not code. */
  plot_copy_as_png("a \"b`touch pwned`.json", "a \"b`touch pwned`-gemm.png");
  cr_expect_eq(file_size(path_in("pwned")), -1, "no command ran");
}

Test(plot, bad_input_exits_2_naming_the_file) {
  char args[512], *out;
  const char *missing = path_in("missing.json");
  snprintf(args, sizeof args, "%s", missing);
  cr_expect_eq(plot(args, &out), 2, "%s", out);
  cr_expect(strstr(out, "missing.json") != NULL, "%s", out);
  free(out);

  snprintf(args, sizeof args, "%s", write_file("broken.json", "{\"benchmarks\": [ {\"name\": "));
  cr_expect_eq(plot(args, &out), 2, "%s", out);
  cr_expect(strstr(out, "broken.json") != NULL && strstr(out, "JSON") != NULL, "%s", out);
  free(out);

  snprintf(args, sizeof args, "%s", write_file("norows.json", "{\"context\": {}}"));
  cr_expect_eq(plot(args, &out), 2, "%s", out);
  cr_expect(strstr(out, "norows.json") != NULL && strstr(out, "benchmarks") != NULL, "%s", out);
  free(out);
}

Test(plot, bad_options_exit_2_with_usage) {
  char args[512], *out;
  snprintf(args, sizeof args, "%s --bogus", fixture());
  cr_expect_eq(plot(args, &out), 2, "%s", out);
  cr_expect(strstr(out, "usage: qbench plot") != NULL, "%s", out);
  free(out);
  snprintf(args, sizeof args, "%s --format jpeg", fixture());
  cr_expect_eq(plot(args, &out), 2, "%s", out);
  free(out);
  snprintf(args, sizeof args, "%s --out", fixture());
  cr_expect_eq(plot(args, &out), 2, "%s", out);
  free(out);
  cr_expect_eq(plot("", &out), 2, "no file: %s", out);
  free(out);
  cr_expect_eq(plot("--help", &out), 0, "%s", out);
  free(out);
}

Test(plot, without_gnuplot_says_how_to_install_it) {
  /* A PATH with no gnuplot on it (qbench itself is run by its full path). */
  const char *old = getenv("PATH");
  char *saved = strdup(old ? old : "/usr/bin:/bin");
  cr_assert_eq(setenv("PATH", temp_dir(), 1), 0);
  char args[512], *out;
  snprintf(args, sizeof args, "%s --out %s/none", fixture(), temp_dir());
  const int code = plot(args, &out);
  setenv("PATH", saved, 1); /* the clean-up at exit runs rm */
  free(saved);
  cr_expect_eq(code, 1, "%s", out);
  cr_expect(strstr(out, "gnuplot not found (apt-get install gnuplot-nox)") != NULL, "%s", out);
  free(out);
}
