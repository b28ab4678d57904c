/* qbench compare on crafted result files: exit 0 within tolerance, 1 on a
 * regression, 2 on bad arguments or input; added and removed rows reported. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/q8test.h"

static const char *write_file(const char *name, const char *text) {
  cr_assert_not_null(q8t_temp_dir("compare"), "cannot create a temporary directory");
  const char *path = q8t_temp_path(name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* A result with rows a (peak_fraction fa) and b (fb), or only a when fb < 0. */
static const char *result(const char *name, double fa, double fb) {
  char text[1024];
  int n = snprintf(text, sizeof text,
                   "{\"context\": {\"q8_version\": \"0.1.0\"}, \"benchmarks\": ["
                   "{\"name\": \"gemm/a\", \"real_time\": 100.0, \"time_unit\": \"ns\", \"peak_fraction\": %g}",
                   fa);
  if (fb >= 0) {
    n += snprintf(text + n, sizeof text - (size_t)n,
                  ", {\"name\": \"gemm/b\", \"real_time\": 200.0, \"time_unit\": \"ns\", \"peak_fraction\": %g}", fb);
  }
  snprintf(text + n, sizeof text - (size_t)n, "]}\n");
  return write_file(name, text);
}

static int compare(const char *base, const char *now, const char *extra, char **out) {
  char args[512];
  snprintf(args, sizeof args, "compare %s %s %s", base, now, extra);
  int code = -1;
  *out = q8t_run_qbench(args, true, &code);
  cr_assert_not_null(*out, "ctest sets Q8_QBENCH");
  return code;
}

TestSuite(compare, .fini = q8t_temp_dir_remove);
TestSuite(results, .fini = q8t_temp_dir_remove);

Test(compare, identical_files_pass) {
  const char *base = result("base.json", 0.80, 0.50);
  char *out;
  cr_expect_eq(compare(base, base, "", &out), 0, "%s", out);
  cr_expect(strstr(out, "0 regressed") != NULL, "%s", out);
  free(out);
}

Test(compare, regression_beyond_tolerance_fails) {
  const char *base = result("base.json", 0.80, 0.50);
  const char *now = result("new.json", 0.70, 0.50); /* a: -12.5 % */
  char *out;
  cr_expect_eq(compare(base, now, "", &out), 1, "%s", out);
  cr_expect(strstr(out, "REGRESSED") != NULL && strstr(out, "gemm/a") != NULL, "%s", out);
  free(out);
  cr_expect_eq(compare(base, now, "--tolerance 15", &out), 0, "12.5 %% is within 15 %%: %s", out);
  free(out);
}

Test(compare, small_change_and_improvement_pass) {
  const char *base = result("base.json", 0.80, 0.50);
  const char *now = result("new.json", 0.78, 0.60); /* a: -2.5 %, b: +20 % */
  char *out;
  cr_expect_eq(compare(base, now, "", &out), 0, "%s", out);
  cr_expect(strstr(out, "improved") != NULL, "%s", out);
  free(out);
}

Test(compare, added_and_removed_rows_are_reported) {
  const char *base = result("base.json", 0.80, 0.50);
  const char *now = result("new.json", 0.80, -1);
  char *out;
  cr_expect_eq(compare(base, now, "", &out), 0, "a removed row is reported, not a regression: %s", out);
  cr_expect(strstr(out, "removed") != NULL && strstr(out, "1 removed") != NULL, "%s", out);
  free(out);
  cr_expect_eq(compare(now, base, "", &out), 0, "%s", out);
  cr_expect(strstr(out, "1 new") != NULL, "%s", out);
  free(out);
}

Test(compare, falls_back_to_real_time_without_peak_fraction) {
  const char *base = write_file("t0.json", "{\"benchmarks\": [{\"name\": \"x\", \"real_time\": 100}]}");
  const char *slower = write_file("t1.json", "{\"benchmarks\": [{\"name\": \"x\", \"real_time\": 120}]}");
  char *out;
  cr_expect_eq(compare(base, slower, "", &out), 1, "20 %% slower: %s", out);
  cr_expect(strstr(out, "real_time") != NULL, "%s", out);
  free(out);
}

Test(compare, bad_input_and_options_exit_2) {
  const char *base = result("base.json", 0.80, 0.50);
  const char *broken = write_file("broken.json", "{\"benchmarks\": [ {\"name\": ");
  const char *no_rows = write_file("norows.json", "{\"context\": {}}");
  char *out;
  cr_expect_eq(compare(base, broken, "", &out), 2, "%s", out);
  cr_expect(strstr(out, "broken.json") != NULL && strstr(out, "line 1") != NULL, "names file and place: %s", out);
  free(out);
  cr_expect_eq(compare(base, no_rows, "", &out), 2, "%s", out);
  free(out);
  cr_expect_eq(compare(base, "/nonexistent/x.json", "", &out), 2, "%s", out);
  free(out);
  cr_expect_eq(compare(base, base, "--tolerance abc", &out), 2, "%s", out);
  free(out);
  cr_expect_eq(compare(base, base, "--bogus", &out), 2, "%s", out);
  free(out);
  int code;
  out = q8t_run_qbench("compare only-one.json", true, &code);
  cr_expect_eq(code, 2, "%s", out);
  free(out);
}

Test(compare, accepts_its_own_gemm_output) {
  /* qbench gemm --json is what users compare: it must round-trip. */
  int code;
  char args[256];
  const char *path = write_file("gemm.json", "");
  snprintf(args, sizeof args, "gemm --isa ref --shape 4x8x16 --min-time 0.01 --json %s", path);
  char *out = q8t_run_qbench(args, true, &code);
  cr_assert_eq(code, 0, "%s", out);
  free(out);
  cr_expect_eq(compare(path, path, "", &out), 0, "%s", out);
  cr_expect(strstr(out, "gemm/cli/4x8x16/s32/ref/threads:1") != NULL, "%s", out);
  free(out);
}

Test(results, default_run_saves_json_and_writes_csv) {
  const char *csv = write_file("run.csv", "");
  char results[128], args[512];
  snprintf(results, sizeof results, "%s/saved", q8t_temp_dir("compare"));
  snprintf(args, sizeof args, "--min-time 0.01 --csv %s --results-dir %s", csv, results);
  int code;
  char *out = q8t_run_qbench(args, true, &code);
  cr_assert_eq(code, 0, "%s", out);
  const char *saved = strstr(out, "Results saved to ");
  cr_assert_not_null(saved, "%s", out);
  char path[256];
  cr_assert_eq(sscanf(saved, "Results saved to %255s", path), 1);
  cr_expect(strncmp(path, results, strlen(results)) == 0, "saved under --results-dir: %s", path);
  free(out);
  /* The saved file is a result compare accepts, compared with itself. */
  cr_expect_eq(compare(path, path, "", &out), 0, "%s", out);
  cr_expect(strstr(out, "gemm/transformer/1x768x768/s8/ref") != NULL, "%s", out);
  free(out);
  FILE *f = fopen(csv, "r");
  cr_assert_not_null(f);
  char line[512];
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_expect(strncmp(line, "name,suite,op,library,isa,kernel,", 33) == 0, "CSV header: %s", line);
  cr_expect(strstr(line, ",peak_fraction,speedup_vs_ref,ratio_vs_peer,") != NULL, "CSV header: %s", line);
  int rows = 0;
  while (fgets(line, sizeof line, f)) ++rows;
  fclose(f);
  cr_expect_geq(rows, 10, "one CSV row per benchmark");
}
