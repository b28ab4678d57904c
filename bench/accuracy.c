/* `qbench accuracy`: what int8 costs a model. Quantizes a float ONNX model
 * (BatchNormalization folded, calibrated on the dataset's train split), runs
 * the float reference and the int8 graph on the test split, and reports
 * top-1 of both, their agreement, per-layer SQNR and time per image. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "quant/exec_ops.h"
#include "quant/float_exec.h"
#include "quant/ptq.h"

/* Per-layer SQNR flag: below this the layer's int8 error is large. */
#define QB_SQNR_WARN_DB 20.0

typedef struct acc_options {
  const char *model, *data, *json;
  size_t limit;
  bool cast_float64;
  q8_ptq_options ptq;
  q8_policy policy;
} acc_options;

static void usage(FILE *f) {
  fputs("usage: qbench accuracy --model M.onnx [--data fashion-mnist|DIR] [--limit N]\n"
        "         [--calib N] [--calibrator minmax|ema|percentile|entropy|mse] [--percentile P]\n"
        "         [--per-tensor] [--activations int8|uint8] [--profile onnx|tflite|pytorch]\n"
        "         [--keep-float-ops A,B] [--keep-float-nodes 'glob,...'] [--keep-first-float]\n"
        "         [--keep-last-float] [--batch N] [--cast-float64] [--json FILE|-]\n"
        "Quantizes the model (calibrating on the first N train images, default 500) and\n"
        "compares it with the float model on the test split (t10k).\n",
        f);
}

static bool parse_size(const char *s, size_t min, size_t *out) {
  char *end;
  errno = 0;
  const unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < min) return false;
  *out = (size_t)v;
  return true;
}

static int bad(const char *option, const char *value, const char *what) {
  fprintf(stderr, "qbench accuracy: %s '%s': %s\n", option, value, what);
  return 2;
}

/* 0 ok, 2 bad usage (message printed), -1 --help. */
static int parse(int argc, char **argv, acc_options *o) {
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const bool has_value = i + 1 < argc;
    const char *v = has_value ? argv[i + 1] : "";
    q8_status st = Q8_OK;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return -1;
    if (strcmp(a, "--per-tensor") == 0) { o->ptq.quant.per_channel = false; continue; }
    if (strcmp(a, "--keep-first-float") == 0) { o->policy.keep_first_float = true; continue; }
    if (strcmp(a, "--keep-last-float") == 0) { o->policy.keep_last_float = true; continue; }
    if (strcmp(a, "--cast-float64") == 0) { o->cast_float64 = true; continue; }
    static const char *const valued[] = {"--model", "--data", "--limit", "--calib", "--calibrator",
                                         "--percentile", "--activations", "--profile",
                                         "--keep-float-ops", "--keep-float-nodes", "--batch",
                                         "--json", NULL};
    bool known = false;
    for (int k = 0; valued[k]; ++k) known |= strcmp(a, valued[k]) == 0;
    if (!known) {
      fprintf(stderr, "qbench accuracy: unknown option '%s' (see --help)\n", a);
      return 2;
    }
    if (!has_value) {
      fprintf(stderr, "qbench accuracy: %s needs a value\n", a);
      return 2;
    }
    ++i;
    if (strcmp(a, "--model") == 0) {
      o->model = v;
    } else if (strcmp(a, "--data") == 0) {
      o->data = v;
    } else if (strcmp(a, "--json") == 0) {
      o->json = v;
    } else if (strcmp(a, "--limit") == 0) {
      if (!parse_size(v, 1, &o->limit)) return bad(a, v, "must be a whole number >= 1");
    } else if (strcmp(a, "--calib") == 0) {
      if (!parse_size(v, 1, &o->ptq.calib_images)) return bad(a, v, "must be a whole number >= 1");
    } else if (strcmp(a, "--batch") == 0) {
      if (!parse_size(v, 1, &o->ptq.batch)) return bad(a, v, "must be a whole number >= 1");
    } else if (strcmp(a, "--calibrator") == 0) {
      q8_calib_method m;
      if ((st = q8_calib_method_parse(v, &m)) != Q8_OK) return bad(a, v, q8_error_detail());
      const double percentile = o->ptq.calib.percentile;
      q8_calib_options_default(&o->ptq.calib, m);
      o->ptq.calib.percentile = percentile;
    } else if (strcmp(a, "--percentile") == 0) {
      char *end;
      const double p = strtod(v, &end);
      if (end == v || *end || !(p > 0 && p <= 100)) return bad(a, v, "must be in (0, 100]");
      o->ptq.calib.percentile = p;
    } else if (strcmp(a, "--activations") == 0) {
      if (strcmp(v, "int8") == 0) o->ptq.quant.activations = Q8_INT8;
      else if (strcmp(v, "uint8") == 0) o->ptq.quant.activations = Q8_UINT8;
      else return bad(a, v, "must be int8 or uint8");
    } else if (strcmp(a, "--profile") == 0) {
      if (strcmp(v, "onnx") == 0) o->ptq.quant.profile = Q8_PROFILE_ONNX;
      else if (strcmp(v, "tflite") == 0) o->ptq.quant.profile = Q8_PROFILE_TFLITE;
      else if (strcmp(v, "pytorch") == 0) o->ptq.quant.profile = Q8_PROFILE_PYTORCH;
      else return bad(a, v, "must be onnx, tflite or pytorch");
    } else if (strcmp(a, "--keep-float-ops") == 0) {
      if ((st = q8_policy_set_keep_float_ops(&o->policy, v)) != Q8_OK) return bad(a, v, q8_error_detail());
    } else if (strcmp(a, "--keep-float-nodes") == 0) {
      if ((st = q8_policy_set_keep_float_nodes(&o->policy, v)) != Q8_OK) return bad(a, v, q8_error_detail());
    }
  }
  if (o->model == NULL) {
    fputs("qbench accuracy: --model is required (e.g. --model models/fashion_mnist_cnn.onnx)\n", stderr);
    return 2;
  }
  o->ptq.calib.dtype = o->ptq.quant.activations;
  return 0;
}

/* Float vs int8 value of one quantized layer output, summed over images. */
typedef struct layer_error {
  double signal, noise;
} layer_error;

typedef struct acc_result {
  size_t images, float_correct, int8_correct, agree;
  double float_s, int8_s;
  layer_error *errors; /* per node of the prepared graph */
} acc_result;

static size_t argmax(const float *v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

static void accumulate_errors(const q8_ptq_model *m, q8_float_session *fs, q8_float_session *qs,
                              layer_error *errors) {
  for (size_t i = 0; i < m->quant.n_layers; ++i) {
    const q8_layer_result *l = &m->quant.layers[i];
    if (l->precision == Q8_LAYER_FLOAT || l->output < 0) continue;
    const int32_t q = m->quant.qtensor[l->output];
    q8_float_tensor f, qv;
    if (q < 0 || q8_float_session_tensor_at(fs, l->output, &f) != Q8_OK ||
        q8_float_session_tensor_at(qs, q, &qv) != Q8_OK || f.type != Q8_ELEM_FLOAT) {
      continue;
    }
    size_t count = 1;
    for (int d = 0; d < f.rank; ++d) count *= (size_t)f.dims[d];
    const q8_qparams p = m->quant.qparams[l->output];
    for (size_t e = 0; e < count; ++e) {
      const int32_t code = qv.type == Q8_ELEM_UINT8 ? ((const uint8_t *)qv.data)[e]
                                                    : ((const int8_t *)qv.data)[e];
      const double x = ((const float *)f.data)[e];
      const double d = x - (double)(code - p.zero_point) * p.scale;
      errors[i].signal += x * x;
      errors[i].noise += d * d;
    }
  }
}

static double sqnr_db(const layer_error *e) {
  if (e->noise == 0) return e->signal > 0 ? INFINITY : NAN;
  return 10.0 * log10(e->signal / e->noise);
}

static q8_status evaluate(const q8_ptq_model *m, const q8_dataset *test, const acc_options *o,
                          acc_result *r) {
  const q8_graph *g = m->graph;
  const size_t batch = o->ptq.batch ? o->ptq.batch : 100;
  const size_t images = o->limit && o->limit < test->count ? o->limit : test->count;
  float *x = malloc(batch * test->rows * test->cols * sizeof(float));
  r->errors = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *r->errors);
  q8_float_session *fs = NULL, *qs = NULL;
  q8_status st = x && r->errors ? Q8_OK : Q8_ERR_NOMEM;
  if (st == Q8_OK) st = q8_float_session_create(g, &fs);
  if (st == Q8_OK) st = q8_float_session_create(m->quant.graph, &qs);
  for (size_t first = 0; st == Q8_OK && first < images; first += batch) {
    const size_t n = images - first < batch ? images - first : batch;
    qb_progress("accuracy: %zu / %zu images", first, images);
    q8_float_tensor in = {.name = g->tensors[g->inputs[0]].name, .type = Q8_ELEM_FLOAT, .data = x};
    q8_float_tensor fo, qo;
    if ((st = q8_ptq_input(g, test, first, n, x, in.dims, &in.rank)) != Q8_OK) break;
    double t0 = qb_now();
    if ((st = q8_float_session_run(fs, &in, 1, &fo, 1)) != Q8_OK) break;
    double t1 = qb_now();
    if ((st = q8_float_session_run(qs, &in, 1, &qo, 1)) != Q8_OK) break;
    r->float_s += t1 - t0;
    r->int8_s += qb_now() - t1;
    const size_t classes = fo.rank >= 1 ? (size_t)fo.dims[fo.rank - 1] : 1;
    for (size_t i = 0; i < n; ++i) {
      const size_t fa = argmax((const float *)fo.data + i * classes, classes);
      const size_t qa = argmax((const float *)qo.data + i * classes, classes);
      const size_t label = test->labels[first + i];
      r->float_correct += fa == label;
      r->int8_correct += qa == label;
      r->agree += fa == qa;
    }
    accumulate_errors(m, fs, qs, r->errors);
    r->images += n;
  }
  qb_progress_clear();
  q8_float_session_destroy(fs);
  q8_float_session_destroy(qs);
  free(x);
  return st;
}

static double pct(size_t part, size_t whole) { return whole ? 100.0 * (double)part / (double)whole : NAN; }

/* Layers in the order the report lists them: quantized ones worst SQNR first,
 * then the float ones in graph order. */
typedef struct layer_row {
  size_t node;
  double sqnr;
} layer_row;

static int by_sqnr(const void *pa, const void *pb) {
  const layer_row *a = pa, *b = pb;
  const bool fa = isnan(a->sqnr), fb = isnan(b->sqnr);
  if (fa != fb) return fa ? 1 : -1;
  if (!fa && a->sqnr != b->sqnr) return a->sqnr < b->sqnr ? -1 : 1;
  return a->node < b->node ? -1 : a->node > b->node;
}

static const char *precision_name(q8_layer_precision p) {
  return p == Q8_LAYER_INT8 ? "int8" : p == Q8_LAYER_FUSED ? "fused" : "float";
}

static layer_row *sorted_layers(const q8_ptq_model *m, const acc_result *r) {
  layer_row *rows = malloc((m->quant.n_layers ? m->quant.n_layers : 1) * sizeof *rows);
  if (rows == NULL) return NULL;
  for (size_t i = 0; i < m->quant.n_layers; ++i) {
    const bool measured = m->quant.layers[i].precision != Q8_LAYER_FLOAT &&
                          m->quant.qtensor[m->quant.layers[i].output] >= 0;
    rows[i] = (layer_row){.node = i, .sqnr = measured ? sqnr_db(&r->errors[i]) : NAN};
  }
  qsort(rows, m->quant.n_layers, sizeof *rows, by_sqnr);
  return rows;
}

static void print_report(FILE *f, const acc_options *o, const q8_ptq_model *m, const acc_result *r,
                         const layer_row *rows) {
  fprintf(f, "model %s: %zu test images, calibrated on %zu train images (%s, %s weights, %s activations, %s profile)\n",
          o->model, r->images, m->calib_images, q8_calib_method_name(o->ptq.calib.method),
          o->ptq.quant.per_channel ? "per-channel" : "per-tensor",
          o->ptq.quant.activations == Q8_UINT8 ? "uint8" : "int8",
          o->ptq.quant.profile == Q8_PROFILE_TFLITE ? "tflite"
          : o->ptq.quant.profile == Q8_PROFILE_PYTORCH ? "pytorch" : "onnx");
  fprintf(f, "  float top-1  %6.2f %%   %8.3f ms/image\n", pct(r->float_correct, r->images),
          r->images ? 1e3 * r->float_s / (double)r->images : NAN);
  fprintf(f, "  int8  top-1  %6.2f %%   %8.3f ms/image\n", pct(r->int8_correct, r->images),
          r->images ? 1e3 * r->int8_s / (double)r->images : NAN);
  fprintf(f, "  agreement    %6.2f %%   (same top-1)\n", pct(r->agree, r->images));
  fprintf(f, "\n  %-28s %-12s %-6s %10s %10s\n", "layer", "op", "prec", "SQNR dB", "weight dB");
  for (size_t i = 0; i < m->quant.n_layers; ++i) {
    const size_t n = rows[i].node;
    const q8_layer_result *l = &m->quant.layers[n];
    char sqnr[16] = "-", weight[16] = "-";
    if (!isnan(rows[i].sqnr)) snprintf(sqnr, sizeof sqnr, "%.2f", rows[i].sqnr);
    if (!isnan(l->weight_sqnr_db)) snprintf(weight, sizeof weight, "%.2f", l->weight_sqnr_db);
    fprintf(f, "  %-28s %-12s %-6s %10s %10s%s\n", m->graph->nodes[n].name,
            m->graph->nodes[n].op_type, precision_name(l->precision), sqnr, weight,
            rows[i].sqnr < QB_SQNR_WARN_DB ? "  << below 20 dB" : "");
  }
  bool header = false;
  for (size_t i = 0; i < m->quant.n_layers; ++i) {
    const q8_layer_result *l = &m->quant.layers[i];
    if (l->precision != Q8_LAYER_FLOAT) continue;
    if (!header) fputs("\n  kept in float:\n", f);
    header = true;
    fprintf(f, "    %s (%s): %s\n", m->graph->nodes[i].name, m->graph->nodes[i].op_type, l->reason);
  }
  for (size_t i = 0; i < m->notes.count; ++i) fprintf(f, "  note: %s\n", m->notes.items[i]);
  for (size_t i = 0; i < m->warnings.count; ++i) fprintf(f, "  warning: %s\n", m->warnings.items[i]);
}

static void write_json(FILE *f, const acc_options *o, const q8_ptq_model *m, const acc_result *r,
                       const layer_row *rows) {
  qb_json j = {.out = f};
  qb_json_begin_object(&j, NULL);
  qb_json_begin_object(&j, "context");
  qb_json_context_fields(&j);
  qb_json_end_object(&j);
  qb_json_string(&j, "model", o->model);
  qb_json_string(&j, "data", o->data);
  qb_json_int(&j, "images", (long long)r->images);
  qb_json_int(&j, "calib_images", (long long)m->calib_images);
  qb_json_string(&j, "calibrator", q8_calib_method_name(o->ptq.calib.method));
  qb_json_bool(&j, "per_channel", o->ptq.quant.per_channel);
  qb_json_string(&j, "activations", o->ptq.quant.activations == Q8_UINT8 ? "uint8" : "int8");
  qb_json_number(&j, "float_top1", pct(r->float_correct, r->images));
  qb_json_number(&j, "int8_top1", pct(r->int8_correct, r->images));
  qb_json_number(&j, "agreement", pct(r->agree, r->images));
  qb_json_number(&j, "float_ms_per_image", r->images ? 1e3 * r->float_s / (double)r->images : NAN);
  qb_json_number(&j, "int8_ms_per_image", r->images ? 1e3 * r->int8_s / (double)r->images : NAN);
  qb_json_begin_array(&j, "layers");
  for (size_t i = 0; i < m->quant.n_layers; ++i) {
    const size_t n = rows[i].node;
    const q8_layer_result *l = &m->quant.layers[n];
    qb_json_begin_object(&j, NULL);
    qb_json_string(&j, "name", m->graph->nodes[n].name);
    qb_json_string(&j, "op", m->graph->nodes[n].op_type);
    qb_json_string(&j, "precision", precision_name(l->precision));
    qb_json_number(&j, "sqnr_db", rows[i].sqnr);
    qb_json_number(&j, "weight_sqnr_db", l->weight_sqnr_db);
    qb_json_string(&j, "reason", l->reason);
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  qb_json_begin_array(&j, "notes");
  for (size_t i = 0; i < m->notes.count; ++i) qb_json_string(&j, NULL, m->notes.items[i]);
  qb_json_end_array(&j);
  qb_json_begin_array(&j, "warnings");
  for (size_t i = 0; i < m->warnings.count; ++i) qb_json_string(&j, NULL, m->warnings.items[i]);
  qb_json_end_array(&j);
  qb_json_end_object(&j);
  fputc('\n', f);
}

static int fail(const char *what, q8_status st) {
  fprintf(stderr, "qbench accuracy: %s: %s (%s)\n", what, q8_error_detail(), q8_status_str(st));
  return 1;
}

int qb_cmd_accuracy(int argc, char **argv) {
  acc_options o = {.data = "fashion-mnist"};
  q8_ptq_options_default(&o.ptq);
  q8_policy_init(&o.policy);
  const int parsed = parse(argc, argv, &o);
  if (parsed != 0) {
    q8_policy_free(&o.policy);
    if (parsed < 0) usage(stdout);
    return parsed < 0 ? 0 : parsed;
  }
  o.ptq.policy = &o.policy;
  const char *dir = strcmp(o.data, "fashion-mnist") == 0 ? NULL : o.data;
  q8_dataset train = {0}, test = {0};
  q8_graph *graph = NULL;
  q8_ptq_model model = {0};
  acc_result r = {0};
  layer_row *rows = NULL;
  int rc = 0;
  q8_status st;
  if ((st = q8_graph_load_file(o.model, &graph)) != Q8_OK) {
    rc = fail("loading the model", st);
  } else if (o.cast_float64 && (st = q8_graph_cast_float64(graph)) != Q8_OK) {
    rc = fail("casting float64 to float32", st);
  } else if ((st = q8_dataset_load(dir, "train", &train)) != Q8_OK ||
             (st = q8_dataset_load(dir, "t10k", &test)) != Q8_OK) {
    rc = fail("loading the dataset", st);
  } else {
    st = q8_ptq_quantize(graph, &train, &o.ptq, &model);
    graph = NULL; /* taken over */
    if (st != Q8_OK) rc = fail("quantizing", st);
  }
  if (rc == 0 && (st = evaluate(&model, &test, &o, &r)) != Q8_OK) rc = fail("running", st);
  if (rc == 0 && (rows = sorted_layers(&model, &r)) == NULL) rc = fail("report", Q8_ERR_NOMEM);
  if (rc == 0) {
    const bool json_stdout = o.json && strcmp(o.json, "-") == 0;
    print_report(json_stdout ? stderr : stdout, &o, &model, &r, rows);
    if (o.json) {
      FILE *f = json_stdout ? stdout : fopen(o.json, "w");
      if (f == NULL) {
        fprintf(stderr, "qbench accuracy: cannot write %s: %s\n", o.json, strerror(errno));
        rc = 1;
      } else {
        write_json(f, &o, &model, &r, rows);
        if (!json_stdout && fclose(f) != 0) rc = 1;
      }
    }
  }
  free(rows);
  free(r.errors);
  q8_ptq_model_free(&model);
  q8_graph_destroy(graph);
  q8_dataset_free(&train);
  q8_dataset_free(&test);
  q8_policy_free(&o.policy);
  return rc;
}
