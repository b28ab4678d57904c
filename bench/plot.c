/* qbench plot: bar charts of a result file, drawn by gnuplot. The data files
 * and the gnuplot script are written beside the pictures so that a chart can
 * be redrawn or restyled later without qbench (`gnuplot STEM-plot.gp` in that
 * directory). */
#define _POSIX_C_SOURCE 200809L /* fork, execv, waitpid, mkdir */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/qbench.h"

static void usage(FILE *f) {
  fputs("usage: qbench plot RESULT.json [--out DIR] [--format png|svg|both]\n\n"
        "Draws the GEMM rows of a qbench result file (the default run, qbench gemm --json)\n"
        "with gnuplot:\n"
        "  STEM-gemm.png/.svg   GOPS of every q8 ISA per shape, with each ISA's measured peak\n"
        "  STEM-peers.png/.svg  q8's fastest ISA against the peer libraries (when the file\n"
        "                       has peer rows), with the ratio q8/peer over each peer bar\n"
        "STEM is the file name without .json. The data files (STEM-*.dat) and the script\n"
        "(STEM-plot.gp) are written too, so `gnuplot STEM-plot.gp` in DIR redraws them.\n\n"
        "  --out DIR      where to write (default: the directory of RESULT.json; created)\n"
        "  --format F     png, svg or both (default both)\n\n"
        "Prints the paths of the files written. Exit status: 0 done, 1 gnuplot missing or\n"
        "failed, 2 bad arguments or unreadable input.\n", f);
}

/* ---- the rows ---- */

/* One GEMM row with what the charts need; strings point into the document. */
typedef struct grow {
  const char *suite, *library, *isa, *out, *peak_isa;
  long m, n, k, threads;
  double rate, peak_gops, ratio_vs_peer; /* NAN when absent */
} grow;

static const char *jstr(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JSTRING ? v->string : NULL;
}

static double jnum(const qb_jvalue *o, const char *key) {
  const qb_jvalue *v = qb_json_get(o, key);
  return v && v->type == QB_JNUMBER && isfinite(v->number) ? v->number : NAN;
}

static long jcount(const qb_jvalue *o, const char *key) {
  const double x = jnum(o, key);
  return x >= 1 && x <= 1e9 && x == floor(x) ? (long)x : 0;
}

/* 1: a usable GEMM row in *g; 0: not a GEMM row; -1: a GEMM row (or a
 * non-object) lacking what a chart needs. */
static int read_row(const qb_jvalue *r, grow *g) {
  if (r->type != QB_JOBJECT) return -1;
  const char *op = jstr(r, "op");
  if (op == NULL) {
    /* Files written before rows had "op": the name says what the row is. */
    const char *name = jstr(r, "name");
    if (name == NULL) return -1;
    if (strncmp(name, "gemm/", 5) != 0) return 0;
  } else if (strcmp(op, "conv") == 0) {
    /* Conv rows chart like GEMM rows (m, n, k are the GEMM-equivalent sizes);
     * the im2col baseline would share its ISA's bar, so it stays out. */
    const char *algorithm = jstr(r, "algorithm");
    if (algorithm && strcmp(algorithm, "im2col") == 0) return 0;
  } else if (strcmp(op, "gemm") != 0) {
    return 0;
  }
  const char *unit = jstr(r, "unit");
  double rate = jnum(r, "gops");
  if (!(rate > 0) && (unit == NULL || strcmp(unit, "GOPS") == 0)) rate = jnum(r, "rate");
  *g = (grow){
      .suite = jstr(r, "suite"),
      .library = jstr(r, "library"),
      .isa = jstr(r, "isa"),
      .out = jstr(r, "out"),
      .peak_isa = jstr(r, "peak_isa"),
      .m = jcount(r, "m"),
      .n = jcount(r, "n"),
      .k = jcount(r, "k"),
      .threads = jcount(r, "threads"),
      .rate = rate,
      .peak_gops = jnum(r, "peak_gops"),
      .ratio_vs_peer = jnum(r, "ratio_vs_peer"),
  };
  if (g->isa == NULL || g->m == 0 || g->n == 0 || g->k == 0 || !(g->rate > 0)) return -1;
  /* Older files lack these; their rows were all q8's, single-suite. */
  if (g->library == NULL) g->library = jstr(r, "peer") ? jstr(r, "peer") : "q8";
  if (g->suite == NULL) g->suite = "";
  if (g->out == NULL) g->out = "";
  if (g->threads == 0) g->threads = 1;
  return 1;
}

static bool is_q8(const grow *g) { return strcmp(g->library, "q8") == 0; }

/* The (out, threads) most rows of a chart share: a chart shows one, so bars of
 * one shape are comparable. `others` lists the rest for the title. */
typedef struct frame {
  const char *out;
  long threads;
} frame;

static bool in_frame(const grow *g, frame f) {
  return strcmp(g->out, f.out) == 0 && g->threads == f.threads;
}

static void describe_frame(frame f, char *s, size_t size) {
  snprintf(s, size, "%s%s%ld thread%s", f.out, f.out[0] ? " output, " : "", f.threads,
           f.threads == 1 ? "" : "s");
}

static frame pick_frame(const grow *rows, size_t n, bool peers, char *others, size_t osize) {
  frame best = {"", 1};
  size_t best_count = 0;
  others[0] = '\0';
  for (size_t i = 0; i < n; ++i) {
    if (is_q8(&rows[i]) == peers) continue;
    const frame f = {rows[i].out, rows[i].threads};
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = is_q8(&rows[j]) != peers && in_frame(&rows[j], f);
    if (seen) continue;
    size_t count = 0;
    for (size_t j = i; j < n; ++j) count += is_q8(&rows[j]) != peers && in_frame(&rows[j], f);
    if (count > best_count) {
      best = f;
      best_count = count;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (is_q8(&rows[i]) == peers || in_frame(&rows[i], best)) continue;
    const frame f = {rows[i].out, rows[i].threads};
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) {
      seen = is_q8(&rows[j]) != peers && !in_frame(&rows[j], best) && in_frame(&rows[j], f);
    }
    if (seen) continue;
    char d[64];
    describe_frame(f, d, sizeof d);
    const size_t len = strlen(others);
    snprintf(others + len, osize - len, "%s%s", len ? "; " : "", d);
  }
  return best;
}

/* ---- a clustered bar chart, independent of what it shows ---- */

enum { MAX_SERIES = 12 };

typedef struct bar {
  double value;     /* NAN: no bar */
  char above[24];   /* text over the bar */
  char inside[64];  /* text up the bar, e.g. the ISA a peer ran */
} bar;

typedef struct group {
  const char *suite;
  long m, n, k;
} group;

typedef struct chart {
  const char *name; /* "gemm", "peers": the file name suffix */
  char title[3][320];
  size_t ng, ns;
  group *groups;
  bar *bars; /* ng * ns, group-major */
  char series[MAX_SERIES][128];
  const char *color[MAX_SERIES];
  double peak[MAX_SERIES]; /* dashed line per series; NAN: none */
  char peak_label[MAX_SERIES][96];
  const char *ylabel;
} chart;

static bar *bar_at(chart *c, size_t g, size_t s) { return &c->bars[g * c->ns + s]; }

/* Colors by name, so an ISA or peer has the same color in every chart. */
static const char *color_of(const char *name, size_t fallback) {
  static const char *const known[][2] = {
      {"ref", "#8c8c8c"},      {"hwy", "#2ca02c"},   {"avx2", "#1f77b4"},
      {"avxvnni", "#17becf"},  {"avx512vnni", "#d62728"}, {"amx", "#9467bd"},
      {"neon", "#8c564b"},     {"neondot", "#e377c2"}, {"neoni8mm", "#7f7f00"},
      {"onednn", "#ff7f0e"},   {"xnnpack", "#6a3d9a"},
  };
  static const char *const spare[] = {"#e6ab02", "#1b9e77", "#a6761d", "#666666", "#e7298a", "#3969ac"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i) {
    if (strcmp(name, known[i][0]) == 0) return known[i][1];
  }
  return spare[fallback % (sizeof spare / sizeof spare[0])];
}

/* Writes s as the inside of a gnuplot double-quoted string. Backquotes would
 * run a shell command even inside quotes, so they go as an octal escape;
 * control characters (which would end the line) become spaces. */
static void gp_esc(FILE *f, const char *s) {
  for (; *s; ++s) {
    const unsigned char ch = (unsigned char)*s;
    if (ch == '\\' || ch == '"') {
      fputc('\\', f);
      fputc(ch, f);
    } else if (ch == '`') {
      fputs("\\140", f);
    } else {
      fputc(ch < 0x20 || ch == 0x7f ? ' ' : ch, f);
    }
  }
}

static void gp_str(FILE *f, const char *s) {
  fputc('"', f);
  gp_esc(f, s);
  fputc('"', f);
}

/* Data files are tab-separated: tabs and line breaks in names would shift columns. */
static void dat_str(FILE *f, const char *s) {
  for (; *s; ++s) fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
}

/* A name in a script comment: no line break, and no backquote, which gnuplot
 * would not run there but an editor's copy-and-paste might. */
static void comment_str(FILE *f, const char *s) {
  for (; *s; ++s) fputc((unsigned char)*s < 0x20 ? ' ' : *s == '`' ? '\'' : *s, f);
}

static void shape_label(const group *g, char *s, size_t size) {
  snprintf(s, size, "%ldx%ldx%ld", g->m, g->n, g->k);
}

/* x of group g: groups one apart, a wider gap where the suite changes. */
static double group_x(const chart *c, size_t g) {
  double x = (double)g;
  for (size_t i = 1; i <= g; ++i) x += strcmp(c->groups[i].suite, c->groups[i - 1].suite) != 0 ? 0.8 : 0.0;
  return x;
}

/* Width the bars of one group take: most of the space, but one or two bars
 * are not drawn as wide as four. */
static double cluster(const chart *c) { return fmin(0.8, 0.3 + 0.15 * (double)c->ns); }

static double bar_x(const chart *c, size_t g, size_t s) {
  return group_x(c, g) + ((double)s - (double)(c->ns - 1) / 2.0) * cluster(c) / (double)c->ns;
}

static bool write_data(const chart *c, const char *path, const char *source) {
  FILE *f = fopen(path, "w");
  if (f == NULL) return false;
  fprintf(f, "# qbench plot: %s chart of ", c->name);
  dat_str(f, source);
  fputs("\n# x\tsuite\tshape", f);
  for (size_t s = 0; s < c->ns; ++s) {
    fputc('\t', f);
    dat_str(f, c->series[s]);
  }
  fputc('\n', f);
  for (size_t g = 0; g < c->ng; ++g) {
    char shape[64];
    shape_label(&c->groups[g], shape, sizeof shape);
    fprintf(f, "%g\t", group_x(c, g));
    dat_str(f, c->groups[g].suite[0] ? c->groups[g].suite : "-");
    fprintf(f, "\t%s", shape);
    for (size_t s = 0; s < c->ns; ++s) {
      const double v = c->bars[g * c->ns + s].value;
      if (isnan(v)) {
        fputs("\t-", f);
      } else {
        fprintf(f, "\t%.6g", v);
      }
    }
    fputc('\n', f);
  }
  return fclose(f) == 0;
}

typedef struct yscale {
  bool log;
  double lo, hi;
} yscale;

/* Log scale when the bars span more than 30x (ref next to a SIMD path), so
 * the slow bars are still readable; the range leaves room for peaks and text. */
static yscale y_scale(const chart *c, bool sections) {
  double lo = INFINITY, hi = 0.0;
  for (size_t i = 0; i < c->ng * c->ns; ++i) {
    const double v = c->bars[i].value;
    if (v > 0) {
      lo = fmin(lo, v);
      hi = fmax(hi, v);
    }
  }
  const double top = hi;
  for (size_t s = 0; s < c->ns; ++s) {
    if (c->peak[s] > 0) hi = fmax(hi, c->peak[s]);
  }
  if (top / lo > 30.0) {
    const double span = log10(hi) - log10(lo);
    return (yscale){true, pow(10.0, floor(log10(lo) - 0.05 * span)),
                    pow(10.0, log10(hi) + (sections ? 0.28 : 0.2) * span)};
  }
  return (yscale){false, 0.0, hi * (sections ? 1.22 : 1.15)};
}

/* Fraction of the height at which y sits. */
static double y_frac(yscale y, double v) {
  return y.log ? (log10(v) - log10(y.lo)) / (log10(y.hi) - log10(y.lo)) : (v - y.lo) / (y.hi - y.lo);
}

static void write_chart(FILE *f, const chart *c, const char *stem, bool png, bool svg) {
  bool sections = false;
  size_t longest = 0;
  for (size_t g = 0; g < c->ng; ++g) {
    char shape[64];
    shape_label(&c->groups[g], shape, sizeof shape);
    if (strlen(shape) > longest) longest = strlen(shape);
    if (g > 0 && strcmp(c->groups[g].suite, c->groups[0].suite) != 0) sections = true;
  }
  const yscale y = y_scale(c, sections);
  /* Wide enough that each group keeps ~16 px per bar. */
  const double per_group = fmax(70.0, 16.0 * (double)c->ns + 22.0);
  int width = (int)(180.0 + per_group * (group_x(c, c->ng - 1) + 1.0));
  width = width < 900 ? 900 : width > 4000 ? 4000 : width;
  const double px_per_group = (width - 180.0) / (group_x(c, c->ng - 1) + 1.0);
  const bool rotate = (double)longest * 7.5 > px_per_group - 8.0;
  const int height = rotate ? 640 : 600;

  fprintf(f, "\n# ---- %s ----\nreset\n", c->name);
  fputs("set datafile separator \"\\t\"\nset datafile missing \"-\"\n", f);
  /* Title lines, then the key, then the plot, top down at fixed pixel
   * offsets: gnuplot's own "outside top" key would go above the title. */
  int top = 14;
  for (int i = 0; i < 3 && c->title[i][0]; ++i) {
    fprintf(f, "set label %d ", 1000 + i);
    gp_str(f, c->title[i]);
    fprintf(f, " at screen 0.5, screen %.4f center front font \",%d\"\n", 1.0 - (top + 8.0) / height,
            i == 0 ? 15 : 11);
    top += i == 0 ? 24 : 20;
  }
  fprintf(f, "set key at screen 0.5, screen %.4f center top horizontal maxrows 1 Left reverse samplen 1.5 width 1 font \",11\"\n",
          1.0 - (top + 4.0) / height);
  fprintf(f, "set tmargin at screen %.4f\n", 1.0 - (top + 38.0) / height);
  fputs("set ylabel ", f);
  gp_str(f, c->ylabel);
  fputs("\nset border 3 lw 1 lc rgb \"#444444\"\n", f);
  fputs("set grid ytics lw 1 lc rgb \"#e0e0e0\" dt 1\n", f);
  if (y.log) {
    fputs("set logscale y\nset grid mytics lw 1 lc rgb \"#f0f0f0\" dt 1\nset mytics 10\n", f);
    fputs("set format y \"%g\"\n", f);
  }
  fprintf(f, "set yrange [%g:%g]\nset ytics nomirror\n", y.lo, y.hi);
  fprintf(f, "set xrange [%g:%g]\n", -0.6, group_x(c, c->ng - 1) + 0.6);
  fputs("set xtics nomirror scale 0 (", f);
  for (size_t g = 0; g < c->ng; ++g) {
    char shape[64];
    shape_label(&c->groups[g], shape, sizeof shape);
    fprintf(f, "%s\"%s\" %g", g ? ", " : "", shape, group_x(c, g));
  }
  fprintf(f, ")%s\n", rotate ? " rotate by 35 right" : "");
  fputs("set xlabel \"shape MxNxK\"\n", f);
  fprintf(f, "set boxwidth %g absolute\n", 0.92 * cluster(c) / (double)c->ns);
  fputs("set style fill solid 1.0 noborder\n", f);
  fputs("set style textbox opaque fc rgb \"#ffffff\" noborder margins 1,1\n", f);

  /* Peak lines, labelled in the right margin where no bar or bar label can
   * cover them; labels closer than a line of text are pushed apart. */
  int tag = 1;
  size_t order[MAX_SERIES], npeaks = 0, longest_label = 0;
  for (size_t s = 0; s < c->ns; ++s) {
    if (!(c->peak[s] > 0)) continue;
    size_t at = npeaks++;
    while (at > 0 && c->peak[order[at - 1]] > c->peak[s]) {
      order[at] = order[at - 1];
      --at;
    }
    order[at] = s;
    if (strlen(c->peak_label[s]) > longest_label) longest_label = strlen(c->peak_label[s]);
  }
  if (npeaks) fprintf(f, "set rmargin %d\n", (int)((double)longest_label * 0.85) + 3);
  double last = -1.0;
  for (size_t i = 0; i < npeaks; ++i) {
    const size_t s = order[i];
    const double p = c->peak[s];
    fprintf(f, "set arrow %d from graph 0, first %g to graph 1, first %g nohead back lw 2 dt (12,6) lc rgb \"%s\"\n",
            tag++, p, p, c->color[s]);
    last = fmax(y_frac(y, p), last + 0.05);
    fputs("set label ", f);
    gp_str(f, c->peak_label[s]);
    fprintf(f, " at graph 1, graph %.4f left offset 1,0 front tc rgb \"%s\" font \",10\"\n", last, c->color[s]);
  }
  /* Plot height in pixels, roughly: what is left of the picture below the
   * key and above the tic labels. */
  const double plot_px = height - (top + 38.0) - (rotate ? 130.0 : 70.0);
  for (size_t g = 0; g < c->ng; ++g) {
    for (size_t s = 0; s < c->ns; ++s) {
      const bar *b = &c->bars[g * c->ns + s];
      if (isnan(b->value)) continue;
      /* Text up a bar too short to hold it goes over the bar instead. */
      const bool fits = y_frac(y, b->value) * plot_px > 6.0 * (double)strlen(b->inside) + 10.0;
      char above[sizeof b->above + sizeof b->inside + 2];
      snprintf(above, sizeof above, "%s%s%s", b->above, b->above[0] && !fits ? " " : "", fits ? "" : b->inside);
      if (above[0]) {
        fputs("set label ", f);
        gp_str(f, above);
        fprintf(f, " at %g, first %g left rotate by 90 offset 0,0.3 front boxed font \",8\" tc rgb \"#333333\"\n",
                bar_x(c, g, s), b->value);
      }
      if (b->inside[0] && fits) {
        /* From the foot of the bar (or of the graph, on a log scale) upwards. */
        fputs("set label ", f);
        gp_str(f, b->inside);
        fprintf(f, " at %g, %s left rotate by 90 offset 0,0.4 front font \",8\" tc rgb \"#ffffff\"\n", bar_x(c, g, s),
                y.log ? "graph 0" : "first 0");
      }
    }
  }
  /* Several suites: a dotted line between them and the suite's name on top. */
  if (sections) {
    size_t first = 0;
    for (size_t g = 1; g <= c->ng; ++g) {
      if (g < c->ng && strcmp(c->groups[g].suite, c->groups[first].suite) == 0) continue;
      const double mid = (group_x(c, first) + group_x(c, g - 1)) / 2.0;
      fputs("set label ", f);
      gp_str(f, c->groups[first].suite[0] ? c->groups[first].suite : "(no suite)");
      fprintf(f, " at %g, graph 0.97 center front font \",11\" tc rgb \"#555555\"\n", mid);
      if (g < c->ng) {
        const double sep = (group_x(c, g - 1) + group_x(c, g)) / 2.0;
        fprintf(f, "set arrow %d from %g, graph 0 to %g, graph 1 nohead back lw 1 dt 3 lc rgb \"#999999\"\n",
                tag++, sep, sep);
      }
      first = g;
    }
  }

  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 0 ? !png : !svg) continue;
    if (pass == 0) {
      fprintf(f, "set terminal pngcairo size %d,%d font \"sans,11\" noenhanced background \"#ffffff\"\n", width,
              height);
    } else {
      fprintf(f, "set terminal svg size %d,%d font \"sans,11\" noenhanced background \"#ffffff\"\n", width,
              height);
    }
    char out[4096];
    snprintf(out, sizeof out, "%s-%s.%s", stem, c->name, pass == 0 ? "png" : "svg");
    fputs("set output ", f);
    gp_str(f, out);
    fputs("\nplot \\\n", f);
    char dat[4096];
    snprintf(dat, sizeof dat, "%s-%s.dat", stem, c->name);
    for (size_t s = 0; s < c->ns; ++s) {
      fputs("  ", f);
      gp_str(f, dat);
      fprintf(f, " using ($1%+g):%zu with boxes lc rgb \"%s\" title ", bar_x(c, 0, s) - group_x(c, 0), 4 + s,
              c->color[s]);
      gp_str(f, c->series[s]);
      fputs(s + 1 < c->ns ? ", \\\n" : "\n", f);
    }
    fputs("set output\n", f);
  }
}

/* ---- the two charts ---- */

static size_t group_of(group **groups, size_t *ng, const grow *r) {
  for (size_t g = 0; g < *ng; ++g) {
    const group *x = &(*groups)[g];
    if (strcmp(x->suite, r->suite) == 0 && x->m == r->m && x->n == r->n && x->k == r->k) return g;
  }
  group *bigger = realloc(*groups, (*ng + 1) * sizeof **groups);
  if (bigger == NULL) return SIZE_MAX;
  *groups = bigger;
  bigger[*ng] = (group){r->suite, r->m, r->n, r->k};
  return (*ng)++;
}

/* Rank of an ISA: q8's own order (ref first, slowest to fastest), unknown last. */
static int isa_rank(const char *isa) {
  for (int i = 0; i < Q8_ISA_COUNT; ++i) {
    if (strcmp(isa, q8_isa_name((q8_isa)i)) == 0) return i;
  }
  return Q8_ISA_COUNT;
}

static void fmt_gops(double v, char *s, size_t size) { snprintf(s, size, v < 10 ? "%.1f" : "%.0f", v); }

static const char *ctx_str(const qb_jvalue *doc, const char *key) {
  const char *s = jstr(qb_json_get(doc, "context"), key);
  return s ? s : "?";
}

/* Subtitle: machine, version, what the chart shows. */
static void machine_line(const qb_jvalue *doc, const chart *c, frame fr, char *s, size_t size) {
  char fd[80];
  describe_frame(fr, fd, sizeof fd);
  const char *suite = c->groups[0].suite;
  bool one_suite = true;
  for (size_t g = 1; g < c->ng; ++g) one_suite &= strcmp(c->groups[g].suite, suite) == 0;
  snprintf(s, size, "%s  |  q8 %s  |  %s%s%s", ctx_str(doc, "cpu_model"), ctx_str(doc, "q8_version"),
           one_suite && suite[0] ? suite : "", one_suite && suite[0] ? " suite, " : "", fd);
}

static bool build_gemm(chart *c, const qb_jvalue *doc, const grow *rows, size_t n) {
  char others[200];
  const frame fr = pick_frame(rows, n, false, others, sizeof others);
  const char *isas[MAX_SERIES];
  size_t dropped = 0;
  c->name = "gemm";
  c->ylabel = "GOPS (2 ops per int8 multiply-add)";
  for (size_t i = 0; i < n; ++i) {
    if (!is_q8(&rows[i]) || !in_frame(&rows[i], fr)) continue;
    if (group_of(&c->groups, &c->ng, &rows[i]) == SIZE_MAX) return false;
    bool seen = false;
    for (size_t s = 0; s < c->ns && !seen; ++s) seen = strcmp(isas[s], rows[i].isa) == 0;
    if (seen) continue;
    if (c->ns == MAX_SERIES) {
      ++dropped;
      continue;
    }
    /* Insert in rank order: bars read slowest to fastest. */
    size_t at = c->ns++;
    while (at > 0 && isa_rank(isas[at - 1]) > isa_rank(rows[i].isa)) {
      isas[at] = isas[at - 1];
      --at;
    }
    isas[at] = rows[i].isa;
  }
  if (dropped) fprintf(stderr, "qbench plot: warning: more than %d ISAs; some not drawn\n", MAX_SERIES);
  c->bars = malloc(c->ng * c->ns * sizeof *c->bars);
  if (c->bars == NULL) return false;
  for (size_t i = 0; i < c->ng * c->ns; ++i) c->bars[i] = (bar){.value = NAN};
  const qb_jvalue *ctx_peaks = qb_json_get(qb_json_get(doc, "context"), "peaks_gops");
  for (size_t s = 0; s < c->ns; ++s) {
    snprintf(c->series[s], sizeof c->series[s], "%s", isas[s]);
    c->color[s] = color_of(isas[s], s);
    /* The ISA's own peak on these threads: from a row bounded by it (ref and
     * hwy rows are bounded by another ISA's peak), else the run's
     * single-thread peak times the threads. */
    c->peak[s] = NAN;
    for (size_t i = 0; i < n && isnan(c->peak[s]); ++i) {
      const grow *r = &rows[i];
      if (is_q8(r) && r->threads == fr.threads && r->peak_isa && strcmp(r->peak_isa, isas[s]) == 0 &&
          r->peak_gops > 0) {
        c->peak[s] = r->peak_gops;
      }
    }
    const double single = jnum(ctx_peaks, isas[s]);
    if (isnan(c->peak[s]) && single > 0) c->peak[s] = single * (double)fr.threads;
    if (c->peak[s] > 0) {
      char v[32];
      fmt_gops(c->peak[s], v, sizeof v);
      snprintf(c->peak_label[s], sizeof c->peak_label[s], "%s peak %s GOPS", isas[s], v);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const grow *r = &rows[i];
    if (!is_q8(r) || !in_frame(r, fr)) continue;
    const size_t g = group_of(&c->groups, &c->ng, r);
    for (size_t s = 0; s < c->ns; ++s) {
      bar *b = bar_at(c, g, s);
      if (strcmp(isas[s], r->isa) != 0 || !isnan(b->value)) continue; /* first row of a kind wins */
      b->value = r->rate;
      fmt_gops(r->rate, b->above, sizeof b->above);
    }
  }
  snprintf(c->title[0], sizeof c->title[0], "q8 int8 GEMM throughput per ISA");
  machine_line(doc, c, fr, c->title[1], sizeof c->title[1]);
  if (others[0]) snprintf(c->title[2], sizeof c->title[2], "(most common setting shown; not shown: %s)", others);
  return true;
}

static bool build_peers(chart *c, const qb_jvalue *doc, const grow *rows, size_t n) {
  char others[200];
  const frame fr = pick_frame(rows, n, true, others, sizeof others);
  const char *libs[MAX_SERIES] = {"q8"};
  c->ns = 1;
  c->name = "peers";
  c->ylabel = "GOPS (2 ops per int8 multiply-add)";
  for (size_t i = 0; i < n; ++i) {
    if (is_q8(&rows[i]) || !in_frame(&rows[i], fr)) continue;
    if (group_of(&c->groups, &c->ng, &rows[i]) == SIZE_MAX) return false;
    bool seen = false;
    for (size_t s = 0; s < c->ns && !seen; ++s) seen = strcmp(libs[s], rows[i].library) == 0;
    if (!seen && c->ns < MAX_SERIES) libs[c->ns++] = rows[i].library;
  }
  c->bars = malloc(c->ng * c->ns * sizeof *c->bars);
  const char **isa = malloc(c->ng * c->ns * sizeof *isa); /* what each bar ran */
  if (c->bars == NULL || isa == NULL) {
    free(isa);
    return false;
  }
  for (size_t i = 0; i < c->ng * c->ns; ++i) {
    c->bars[i] = (bar){.value = NAN};
    isa[i] = NULL;
  }
  /* q8's bar: its fastest row of the shape, which is the path it dispatches to. */
  for (size_t g = 0; g < c->ng; ++g) {
    const group *x = &c->groups[g];
    const grow *best = NULL;
    for (int same_suite = 1; same_suite >= 0 && best == NULL; --same_suite) {
      for (size_t i = 0; i < n; ++i) {
        const grow *r = &rows[i];
        if (!is_q8(r) || !in_frame(r, fr) || r->m != x->m || r->n != x->n || r->k != x->k) continue;
        if (same_suite && strcmp(r->suite, x->suite) != 0) continue;
        if (best == NULL || r->rate > best->rate) best = r;
      }
    }
    if (best) {
      bar_at(c, g, 0)->value = best->rate;
      isa[g * c->ns] = best->isa;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const grow *r = &rows[i];
    if (is_q8(r) || !in_frame(r, fr)) continue;
    const size_t g = group_of(&c->groups, &c->ng, r);
    for (size_t s = 1; s < c->ns; ++s) {
      bar *b = bar_at(c, g, s);
      if (strcmp(libs[s], r->library) != 0 || !isnan(b->value)) continue;
      b->value = r->rate;
      isa[g * c->ns + s] = r->isa;
      /* The file's own ratio when it has one: it is against q8's dispatched
       * path, which the best forced ISA only approximates. */
      const double q8 = bar_at(c, g, 0)->value;
      const double ratio = r->ratio_vs_peer > 0 ? r->ratio_vs_peer : q8 / r->rate;
      if (ratio > 0) snprintf(b->above, sizeof b->above, "%.2fx", ratio);
    }
  }
  /* A series that ran one ISA throughout says so in the key; otherwise each
   * bar is labelled with its own. */
  const qb_jvalue *peers = qb_json_get(qb_json_get(doc, "context"), "peers");
  size_t q8_isa_votes = 0;
  for (size_t s = 0; s < c->ns; ++s) {
    const char *common = NULL;
    bool uniform = true;
    for (size_t g = 0; g < c->ng; ++g) {
      const char *a = isa[g * c->ns + s];
      if (a == NULL) continue;
      if (common == NULL) common = a;
      uniform &= strcmp(common, a) == 0;
    }
    const char *version = s > 0 ? jstr(qb_json_get(peers, libs[s]), "version") : NULL;
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", s == 0 ? "q8 fastest ISA" : libs[s], version ? " " : "",
             version ? version : "");
    if (uniform && common) {
      snprintf(c->series[s], sizeof c->series[s], "%s (%s)", name, common);
    } else {
      snprintf(c->series[s], sizeof c->series[s], "%s", name);
      for (size_t g = 0; g < c->ng; ++g) {
        const char *a = isa[g * c->ns + s];
        if (a) snprintf(bar_at(c, g, s)->inside, sizeof c->bars[0].inside, "%s", a);
      }
    }
    c->peak[s] = NAN;
    /* q8 in the color of the ISA it mostly ran, so it matches the gemm chart. */
    if (s == 0) {
      const char *most = "q8";
      for (size_t g = 0; g < c->ng; ++g) {
        const char *a = isa[g * c->ns];
        if (a == NULL) continue;
        size_t votes = 0;
        for (size_t h = 0; h < c->ng; ++h) votes += isa[h * c->ns] && strcmp(isa[h * c->ns], a) == 0;
        if (votes > q8_isa_votes) {
          q8_isa_votes = votes;
          most = a;
        }
      }
      c->color[0] = color_of(most, 0);
    } else {
      c->color[s] = color_of(libs[s], s);
    }
  }
  free(isa);
  snprintf(c->title[0], sizeof c->title[0], "q8 vs peer libraries, int8 GEMM   (number over a peer bar: q8 GOPS / peer GOPS; > 1: q8 faster)");
  machine_line(doc, c, fr, c->title[1], sizeof c->title[1]);
  if (others[0]) snprintf(c->title[2], sizeof c->title[2], "(most common setting shown; not shown: %s)", others);
  return true;
}

static void chart_free(chart *c) {
  free(c->groups);
  free(c->bars);
}

/* ---- files and gnuplot ---- */

/* The executable `prog` on PATH, as a path that works from any directory
 * (the child changes into the output directory), malloc'd; NULL if none. */
static char *find_on_path(const char *prog) {
  const char *path = getenv("PATH");
  if (path == NULL) path = "/usr/local/bin:/usr/bin:/bin";
  char cwd[4096];
  const char *end;
  for (const char *p = path;; p = end + 1) {
    end = strchr(p, ':');
    if (end == NULL) end = p + strlen(p);
    const int len = (int)(end - p);
    char candidate[8192];
    if (len == 0) { /* an empty entry is the current directory */
      snprintf(candidate, sizeof candidate, "%s", prog);
    } else {
      snprintf(candidate, sizeof candidate, "%.*s/%s", len, p, prog);
    }
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0) {
      if (candidate[0] == '/') return strdup(candidate);
      if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
      const size_t size = strlen(cwd) + strlen(candidate) + 2;
      char *abs = malloc(size);
      if (abs) snprintf(abs, size, "%s/%s", cwd, candidate);
      return abs;
    }
    if (*end == '\0') return NULL;
  }
}

/* mkdir -p */
static bool make_dirs(const char *dir) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return false;
  for (char *p = buf + 1;; ++p) {
    if (*p == '/' || *p == '\0') {
      const char saved = *p;
      *p = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST) return false;
      *p = saved;
      if (saved == '\0') break;
    }
  }
  struct stat st;
  return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* gnuplot SCRIPT run in `dir`, its output on our stderr (stdout lists files). */
static int run_gnuplot(const char *gnuplot, const char *dir, const char *script) {
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (chdir(dir) != 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) _exit(126);
    char *const args[] = {(char *)"gnuplot", (char *)script, NULL};
    execv(gnuplot, args);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void join(char *out, size_t size, const char *dir, const char *name) {
  const size_t len = strlen(dir);
  snprintf(out, size, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", name);
}

int qb_cmd_plot(int argc, char **argv) {
  const char *input = NULL, *dir_opt = NULL;
  bool png = true, svg = true;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      dir_opt = argv[++i];
    } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
      const char *fmt = argv[++i];
      png = strcmp(fmt, "png") == 0 || strcmp(fmt, "both") == 0;
      svg = strcmp(fmt, "svg") == 0 || strcmp(fmt, "both") == 0;
      if (!png && !svg) {
        fprintf(stderr, "qbench plot: --format '%s': expected png, svg or both\n\n", fmt);
        usage(stderr);
        return 2;
      }
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "qbench plot: unknown or incomplete option '%s'\n\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (input == NULL) {
      input = argv[i];
    } else {
      fprintf(stderr, "qbench plot: more than one result file given ('%s')\n\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (input == NULL) {
    fputs("qbench plot: no result file given\n\n", stderr);
    usage(stderr);
    return 2;
  }

  /* STEM: the file name without its directory and .json. */
  const char *base = strrchr(input, '/') ? strrchr(input, '/') + 1 : input;
  char stem[1024];
  snprintf(stem, sizeof stem, "%s", base);
  const size_t sl = strlen(stem);
  if (sl > 5 && strcmp(stem + sl - 5, ".json") == 0) stem[sl - 5] = '\0';
  bool control = false;
  for (const char *ch = stem; *ch; ++ch) control |= (unsigned char)*ch < 0x20 || *ch == 0x7f;
  /* gnuplot strings cannot hold a line break: such a name could not be written to. */
  if (stem[0] == '\0' || strlen(base) >= sizeof stem - 32 || control) {
    fprintf(stderr, "qbench plot: %s: not a file name to derive output names from\n", input);
    return 2;
  }
  char dir[4096];
  if (dir_opt && dir_opt[0]) {
    snprintf(dir, sizeof dir, "%s", dir_opt);
  } else if (base == input || dir_opt) { /* --out "" is the current directory too */
    snprintf(dir, sizeof dir, ".");
  } else {
    snprintf(dir, sizeof dir, "%.*s", (int)(base - input), input);
  }

  FILE *probe = fopen(input, "rb");
  if (probe == NULL) {
    fprintf(stderr, "qbench plot: %s: cannot open: %s\n", input, strerror(errno));
    return 2;
  }
  fclose(probe);
  char err[256] = "";
  qb_jvalue *doc = qb_json_parse_file(input, err, sizeof err);
  if (doc == NULL) {
    fprintf(stderr, "qbench plot: %s: not valid JSON: %s\n", input, err);
    return 2;
  }
  const qb_jvalue *list = qb_json_get(doc, "benchmarks");
  if (list == NULL || list->type != QB_JARRAY) {
    fprintf(stderr, "qbench plot: %s has no \"benchmarks\" array (not a qbench result)\n", input);
    qb_json_free(doc);
    return 2;
  }
  grow *rows = malloc((list->count + 1) * sizeof *rows);
  if (rows == NULL) {
    qb_json_free(doc);
    return 2;
  }
  size_t n = 0, skipped = 0, q8_rows = 0, peer_rows = 0;
  for (size_t i = 0; i < list->count; ++i) {
    const int kind = read_row(list->items[i], &rows[n]);
    if (kind < 0) ++skipped;
    if (kind <= 0) continue;
    if (is_q8(&rows[n])) {
      ++q8_rows;
    } else {
      ++peer_rows;
    }
    ++n;
  }
  if (skipped) {
    fprintf(stderr, "qbench plot: warning: %s: skipped %zu row%s lacking GEMM fields (m, n, k, isa, gops/rate)\n",
            input, skipped, skipped == 1 ? "" : "s");
  }
  int status = 0;
  char *gnuplot = NULL;
  chart charts[2] = {{0}, {0}};
  size_t ncharts = 0;
  if (q8_rows == 0) {
    fprintf(stderr, "qbench plot: %s has no q8 GEMM rows to plot\n", input);
    status = 2;
    goto done;
  }
  if ((gnuplot = find_on_path("gnuplot")) == NULL) {
    fputs("qbench plot: gnuplot not found (apt-get install gnuplot-nox)\n", stderr);
    status = 1;
    goto done;
  }
  if (!build_gemm(&charts[ncharts++], doc, rows, n)) {
    fputs("qbench plot: out of memory\n", stderr);
    status = 1;
    goto done;
  }
  if (peer_rows == 0) {
    fprintf(stderr, "qbench plot: %s has no peer rows; no -peers chart\n", input);
  } else if (!build_peers(&charts[ncharts++], doc, rows, n)) {
    fputs("qbench plot: out of memory\n", stderr);
    status = 1;
    goto done;
  }
  if (!make_dirs(dir)) {
    fprintf(stderr, "qbench plot: cannot create directory %s: %s\n", dir, strerror(errno));
    status = 2;
    goto done;
  }

  char path[8192], name[2048];
  for (size_t c = 0; c < ncharts; ++c) {
    snprintf(name, sizeof name, "%s-%s.dat", stem, charts[c].name);
    join(path, sizeof path, dir, name);
    if (!write_data(&charts[c], path, base)) {
      fprintf(stderr, "qbench plot: cannot write %s: %s\n", path, strerror(errno));
      status = 1;
      goto done;
    }
    printf("%s\n", path);
  }
  char script[2048];
  snprintf(script, sizeof script, "%s-plot.gp", stem);
  join(path, sizeof path, dir, script);
  FILE *gp = fopen(path, "w");
  if (gp == NULL) {
    fprintf(stderr, "qbench plot: cannot write %s: %s\n", path, strerror(errno));
    status = 1;
    goto done;
  }
  fputs("# Written by qbench plot from ", gp);
  comment_str(gp, base);
  fputs(". Redraw in this directory with: gnuplot ", gp);
  comment_str(gp, script);
  fputc('\n', gp);
  for (size_t c = 0; c < ncharts; ++c) write_chart(gp, &charts[c], stem, png, svg);
  if (fclose(gp) != 0) {
    fprintf(stderr, "qbench plot: cannot write %s: %s\n", path, strerror(errno));
    status = 1;
    goto done;
  }
  printf("%s\n", path);
  /* Pictures of an earlier run must not pass for this run's. */
  for (size_t c = 0; c < ncharts; ++c) {
    for (int pass = 0; pass < 2; ++pass) {
      snprintf(name, sizeof name, "%s-%s.%s", stem, charts[c].name, pass == 0 ? "png" : "svg");
      join(path, sizeof path, dir, name);
      if ((pass == 0 ? png : svg) && unlink(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "qbench plot: cannot replace %s: %s\n", path, strerror(errno));
        status = 1;
        goto done;
      }
    }
  }
  join(path, sizeof path, dir, script);
  const int rc = run_gnuplot(gnuplot, dir, script);
  if (rc != 0) {
    fprintf(stderr, "qbench plot: gnuplot failed (exit status %d) on %s\n", rc, path);
    status = 1;
    goto done;
  }
  for (size_t c = 0; c < ncharts; ++c) {
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 0 ? !png : !svg) continue;
      snprintf(name, sizeof name, "%s-%s.%s", stem, charts[c].name, pass == 0 ? "png" : "svg");
      join(path, sizeof path, dir, name);
      struct stat st;
      if (stat(path, &st) != 0 || st.st_size == 0) {
        fprintf(stderr, "qbench plot: gnuplot did not write %s\n", path);
        status = 1;
        goto done;
      }
      printf("%s\n", path);
    }
  }

done:
  for (size_t c = 0; c < ncharts; ++c) chart_free(&charts[c]);
  free(gnuplot);
  free(rows);
  qb_json_free(doc);
  return status;
}
