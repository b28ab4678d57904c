/* The default qbench run: machine info, measured peaks and bandwidth, then
 * the element-wise kernels and the GEMM suite on every usable ISA (plus the
 * peers when asked), each row beside the measured bound and the speed-up over
 * ref; the JSON is saved under results/. */
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
#include "dispatch/threadpool.h"

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

static void usage(FILE *out) {
  fputs("usage: qbench [--suite NAME] [--shapes FILE] [--isa LIST] [--peers | --peer NAME]\n"
        "              [--threads N] [--min-time S] [--quick] [--core N] [--cold] [--check] [--bitwise]\n"
        "              [--repro] [--json FILE|-] [--csv FILE|-] [--results-dir DIR | --no-save]\n\n"
        "With no subcommand: prints `qbench info`, measures each ISA's int8 peak and the\n"
        "read bandwidth of every memory level, then times, on every usable ISA including\n"
        "hwy and ref: requantize (each mode), quantize and dequantize in GB/s against the\n"
        "bandwidth, and GEMM (int8 output) on shapes from real models in GOPS against the\n"
        "peak, with the speed-up over ref. Each figure is the median of >= 5 short samples\n"
        "after a warm-up. The JSON (docs/results.md) is saved as\n"
        "results/<cpu model>-<date>.json for `qbench compare`.\n\n"
        "  --suite NAME   GEMM shapes: default (a few from each model family), square,\n"
        "                 transformer, resnet50, mobilenetv2, small, all\n"
        "  --shapes FILE  GEMM shapes from a file, one MxNxK per line\n"
        "  --isa LIST     only these ISAs (comma-separated; all by default)\n"
        "  --peers        also time oneDNN and XNNPACK (when built) on the GEMM shapes\n"
        "  --peer NAME    one of them\n"
        "  --threads N    GEMM threads (default 1; 0 = one per physical core)\n"
        "  --min-time S   seconds of samples per row (default 0.2); --quick = 0.05\n"
        "  --core N       the physical core qbench runs on (default 0; threads go to\n"
        "                 the cores after it)\n"
        "  --cold         rotate inputs among copies spanning twice the last-level cache\n"
        "  --check        compare every timed output with ref\n"
        "  --bitwise      run every case again and compare the bytes\n"
        "  --repro        print a one-line reproducer under each row\n"
        "  --json FILE    write the JSON ('-': stdout, table to stderr)\n"
        "  --csv FILE     write the rows as CSV\n"
        "  --results-dir DIR  where the JSON is saved (default results)\n"
        "  --no-save      do not save it\n"
        "  --help         this text\n\n"
        "Subcommands: info, peak, gemm, requant, compare, plot; `qbench <subcommand> --help`.\n"
        "Exit status: 0, 1 when a case failed (--check, --bitwise) or a file could not be\n"
        "written, 2 bad arguments.\n", out);
}

/* Peaks of every usable ISA and bandwidth of every level, up front: the
 * context of the whole run, printed before the rows they bound. */
static void measure_bounds(FILE *table, double min_time) {
  fprintf(table, "\nMeasured bounds (single thread):");
  for (int isa = 0; isa < Q8_ISA_COUNT; ++isa) {
    if (!q8_isa_usable_on((q8_isa)isa, q8_cpu(), NULL) || !qb_peak_usable((q8_isa)isa, NULL)) continue;
    qb_progress("peak %s", q8_isa_name((q8_isa)isa));
    const double gops = qb_peak_for((q8_isa)isa, 1, min_time);
    qb_progress_clear();
    fprintf(table, " %s %.1f GOPS,", q8_isa_name((q8_isa)isa), gops);
  }
  fprintf(table, " read bandwidth");
  for (int level = 1; level <= 4; ++level) {
    qb_progress("bandwidth %s", qb_level_name(level));
    const double gbps = qb_run_bandwidth(level, min_time);
    qb_progress_clear();
    fprintf(table, " %s %.1f%s", qb_level_name(level), gbps, level < 4 ? "," : " GB/s\n\n");
  }
  fflush(table);
}

int qb_cmd_suite(int argc, char **argv) {
  qb_selection sel = {.threads = 1};
  qb_method method = {.min_time = 0.2};
  qb_outputs outputs;
  qb_outputs_init(&outputs);
  const char *results_dir = "results";
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; ++i) {
    const char *arg = argv[i];
    int used = qb_parse_method(argc, argv, &i, &method, "qbench");
    if (used == 0) used = qb_parse_outputs(argc, argv, &i, &outputs, "qbench");
    if (used == 0) used = qb_parse_selection(argc, argv, &i, &sel, "qbench");
    if (used < 0) rc = 2;
    if (used != 0) continue;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      qb_shapes_free(&sel.shapes);
      return 0;
    } else if (strcmp(arg, "--results-dir") == 0 && i + 1 < argc) {
      results_dir = argv[++i];
    } else if (strcmp(arg, "--no-save") == 0) {
      results_dir = NULL;
    } else {
      fprintf(stderr, "qbench: unknown option or subcommand '%s'\n", arg);
      usage(stderr);
      rc = 2;
    }
  }
  bool forced;
  q8_isa forced_isa;
  if (rc == 0 && q8_forced(&forced, &forced_isa) != Q8_OK) {
    fprintf(stderr, "qbench: %s\n", q8_error_detail());
    rc = 2;
  }
  if (rc != 0) {
    qb_shapes_free(&sel.shapes);
    return rc;
  }
  qb_selection_finish(&sel, "default");

  FILE *table = outputs.table;
  if (table == stdout) {
    char *info_argv[] = {"info", NULL};
    rc = qb_cmd_info(1, info_argv);
    if (rc != 0) return rc;
  }
  if (!qb_pin_main_thread(&method, "qbench")) return 2;
  qb_note_method(method.min_time, method.cold, method.check, method.bitwise);
  const double start = qb_now();
  measure_bounds(table, method.min_time);

  qb_rows rows = {0};
  qb_table_header(&outputs);
  /* 1 Mi elements: 5 MiB per call, beyond L2 on the machines we know. */
  const size_t counts[] = {(size_t)1 << 20};
  const bool ops[Q8_OP_COUNT] = {[Q8_OP_REQUANTIZE] = true, [Q8_OP_QUANTIZE] = true, [Q8_OP_DEQUANTIZE] = true};
  const bool modes[3] = {true, true, true};
  bool ok = qb_elementwise_bench(sel.isa_wanted, ops, modes, counts, 1, &method, &outputs, &rows);
  ok &= qb_gemm_bench(&sel, Q8_INT8, &method, &outputs, &rows);
  fprintf(table, "\n%zu rows in %.1f s\n", rows.count, qb_now() - start);

  rc = qb_write_outputs(&outputs, rows.items, rows.count);
  if (results_dir) {
    char path[512];
    results_path(results_dir, path, sizeof path);
    if (mkdir(results_dir, 0777) != 0 && errno != EEXIST) {
      fprintf(stderr, "qbench: cannot create '%s': %s\n", results_dir, strerror(errno));
      rc = 1;
    } else if (qb_write_json_file(path, rows.items, rows.count) == 0) {
      fprintf(table, "Results saved to %s (compare runs with: qbench compare OLD.json NEW.json)\n", path);
    } else {
      rc = 1;
    }
  }
  qb_rows_free(&rows);
  qb_shapes_free(&sel.shapes);
  return rc != 0 ? rc : ok ? 0 : 1;
}
