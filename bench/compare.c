/* qbench compare: the CI gate. Rows are matched by name and judged on
 * peak_fraction, which a slower or throttled machine does not change the way
 * it changes raw time; rows without one fall back to real_time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"

static void usage(FILE *f) {
  fputs("usage: qbench compare BASE.json NEW.json [--tolerance PERCENT]\n\n"
        "Matches the benchmark rows of two qbench JSON results by name and compares\n"
        "each row's peak_fraction (its speed as a fraction of the peak measured in the\n"
        "same run), or real_time where a row has no peak_fraction. Prints every change,\n"
        "and rows present in only one file.\n\n"
        "  --tolerance P  a row regresses when it is more than P percent worse (default 5)\n\n"
        "Exit status: 0 no regression, 1 at least one row regressed, 2 bad arguments or\n"
        "unreadable input.\n", f);
}

typedef struct metric {
  bool ok;
  bool is_fraction; /* peak_fraction (higher is better) or real_time (lower is better) */
  double value;
} metric;

static metric row_metric(const qb_jvalue *row) {
  const qb_jvalue *f = qb_json_get(row, "peak_fraction");
  if (f && f->type == QB_JNUMBER && f->number > 0) return (metric){true, true, f->number};
  const qb_jvalue *t = qb_json_get(row, "real_time");
  if (t && t->type == QB_JNUMBER && t->number > 0) return (metric){true, false, t->number};
  return (metric){false, false, 0.0};
}

static const qb_jvalue *benchmarks_of(const qb_jvalue *doc, const char *path) {
  const qb_jvalue *b = qb_json_get(doc, "benchmarks");
  if (b == NULL || b->type != QB_JARRAY) {
    fprintf(stderr, "qbench compare: %s has no \"benchmarks\" array (not a qbench/Google Benchmark result)\n", path);
    return NULL;
  }
  for (size_t i = 0; i < b->count; ++i) {
    const qb_jvalue *name = qb_json_get(b->items[i], "name");
    if (name == NULL || name->type != QB_JSTRING) {
      fprintf(stderr, "qbench compare: %s: benchmarks[%zu] has no string \"name\"\n", path, i);
      return NULL;
    }
  }
  return b;
}

static const qb_jvalue *find_row(const qb_jvalue *rows, const char *name) {
  for (size_t i = 0; i < rows->count; ++i) {
    if (strcmp(qb_json_get(rows->items[i], "name")->string, name) == 0) return rows->items[i];
  }
  return NULL;
}

int qb_cmd_compare(int argc, char **argv) {
  const char *paths[2] = {NULL, NULL};
  size_t npaths = 0;
  double tolerance = 5.0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--tolerance") == 0 && i + 1 < argc) {
      char *end;
      tolerance = strtod(argv[++i], &end);
      if (*end != '\0' || !(tolerance >= 0.0) || tolerance > 1000.0) {
        fprintf(stderr, "qbench compare: --tolerance '%s': expected a percentage in [0, 1000]\n", argv[i]);
        return 2;
      }
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "qbench compare: unknown or incomplete option '%s'\n(see qbench compare --help)\n", argv[i]);
      return 2;
    } else if (npaths < 2) {
      paths[npaths++] = argv[i];
    } else {
      fprintf(stderr, "qbench compare: more than two files given ('%s')\n", argv[i]);
      return 2;
    }
  }
  if (npaths != 2) {
    fprintf(stderr, "qbench compare: need BASE.json and NEW.json\n(see qbench compare --help)\n");
    return 2;
  }
  qb_jvalue *docs[2] = {NULL, NULL};
  const qb_jvalue *rows[2] = {NULL, NULL};
  int status = 0;
  for (int d = 0; d < 2 && status == 0; ++d) {
    char err[256];
    docs[d] = qb_json_parse_file(paths[d], err, sizeof err);
    if (docs[d] == NULL) {
      fprintf(stderr, "qbench compare: %s: %s\n", paths[d], err);
      status = 2;
    } else if ((rows[d] = benchmarks_of(docs[d], paths[d])) == NULL) {
      status = 2;
    }
  }
  if (status != 0) {
    qb_json_free(docs[0]);
    qb_json_free(docs[1]);
    return status;
  }

  size_t regressed = 0, improved = 0, unchanged = 0, added = 0, removed = 0, incomparable = 0;
  printf("%-60s %10s %10s %8s  %s\n", "benchmark", "base", "new", "change", "verdict");
  for (size_t i = 0; i < rows[0]->count; ++i) {
    const qb_jvalue *base = rows[0]->items[i];
    const char *name = qb_json_get(base, "name")->string;
    const qb_jvalue *now = find_row(rows[1], name);
    if (now == NULL) {
      printf("%-60s %10s %10s %8s  removed (only in base)\n", name, "", "", "");
      ++removed;
      continue;
    }
    const metric mb = row_metric(base), mn = row_metric(now);
    if (!mb.ok || !mn.ok || mb.is_fraction != mn.is_fraction) {
      printf("%-60s %10s %10s %8s  not comparable (no common peak_fraction or real_time)\n", name, "", "", "");
      ++incomparable;
      continue;
    }
    /* Positive change = better, in percent, whichever the metric. */
    const double change = mb.is_fraction ? 100.0 * (mn.value / mb.value - 1.0)
                                         : 100.0 * (mb.value / mn.value - 1.0);
    const char *verdict = "ok";
    if (change < -tolerance) {
      verdict = "REGRESSED";
      ++regressed;
    } else if (change > tolerance) {
      verdict = "improved";
      ++improved;
    } else {
      ++unchanged;
    }
    if (mb.is_fraction) {
      printf("%-60s %9.1f%% %9.1f%% %+7.1f%%  %s\n", name, 100.0 * mb.value, 100.0 * mn.value, change, verdict);
    } else {
      printf("%-60s %8.0fns %8.0fns %+7.1f%%  %s (real_time)\n", name, mb.value, mn.value, change, verdict);
    }
  }
  for (size_t i = 0; i < rows[1]->count; ++i) {
    const char *name = qb_json_get(rows[1]->items[i], "name")->string;
    if (find_row(rows[0], name) == NULL) {
      printf("%-60s %10s %10s %8s  new (only in new)\n", name, "", "", "");
      ++added;
    }
  }
  printf("\n%zu regressed (worse than -%.1f%%), %zu improved, %zu within tolerance, %zu new, "
         "%zu removed, %zu not comparable\n",
         regressed, tolerance, improved, unchanged, added, removed, incomparable);
  qb_json_free(docs[0]);
  qb_json_free(docs[1]);
  return regressed ? 1 : 0;
}
