/* Post-training quantization end to end (see quant/ptq.h). */
#include "quant/ptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "quant/float_exec.h"

/* Below this many images a calibrated range is mostly noise (the issue's
 * threshold; ONNX Runtime's examples use a few hundred). */
#define Q8_PTQ_MIN_CALIB_IMAGES 100

void q8_ptq_options_default(q8_ptq_options *o) {
  *o = (q8_ptq_options){.calib_images = 500, .batch = 100};
  q8_calib_options_default(&o->calib, Q8_CALIB_MINMAX);
  q8_quantize_options_default(&o->quant);
}

void q8_ptq_model_free(q8_ptq_model *m) {
  if (m == NULL) return;
  q8_graph_destroy(m->graph);
  q8_fold_report_free(&m->folds);
  free(m->decisions);
  free(m->ranges);
  q8_quant_result_free(&m->quant);
  q8_messages_free(&m->notes);
  q8_messages_free(&m->warnings);
  *m = (q8_ptq_model){0};
}

q8_status q8_ptq_input(const q8_graph *g, const q8_dataset *ds, size_t first, size_t n, float *out,
                       int64_t *dims, int *rank) {
  if (g->n_inputs != 1) {
    return q8_fail(Q8_ERR_ARG, "model has %zu inputs; the dataset feeds models with exactly one",
                   g->n_inputs);
  }
  const q8_tensor *in = &g->tensors[g->inputs[0]];
  const int64_t pixels = (int64_t)(ds->rows * ds->cols);
  if (in->rank == 4 && (in->dims[1] == 1 || in->dims[1] < 0) &&
      (in->dims[2] == (int64_t)ds->rows || in->dims[2] < 0) &&
      (in->dims[3] == (int64_t)ds->cols || in->dims[3] < 0)) {
    dims[0] = (int64_t)n, dims[1] = 1, dims[2] = (int64_t)ds->rows, dims[3] = (int64_t)ds->cols;
    *rank = 4;
  } else if (in->rank == 2 && (in->dims[1] == pixels || in->dims[1] < 0)) {
    dims[0] = (int64_t)n, dims[1] = pixels;
    *rank = 2;
  } else {
    char shape[96];
    return q8_fail(Q8_ERR_ARG,
                   "model input '%s' has shape %s; %zux%zu images feed [N,1,%zu,%zu] or [N,%lld]",
                   in->name, q8_tensor_shape_str(in, shape, sizeof shape), ds->rows, ds->cols,
                   ds->rows, ds->cols, (long long)pixels);
  }
  return q8_dataset_batch(ds, first, n, out);
}

/* Runs the float graph over the calibration images and observes every
 * tensor in needs with its own calibrator. */
static q8_status calibrate(q8_ptq_model *m, const q8_dataset *ds, const q8_ptq_options *o,
                           const bool *needs) {
  const q8_graph *g = m->graph;
  q8_calibrator **cal = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *cal);
  const size_t batch = o->batch ? o->batch : 100;
  float *x = malloc(batch * ds->rows * ds->cols * sizeof(float));
  q8_float_session *session = NULL;
  q8_status st = cal && x ? Q8_OK : q8_fail(Q8_ERR_NOMEM, "calibration: out of memory");
  for (size_t t = 0; st == Q8_OK && t < g->n_tensors; ++t) {
    if (needs[t]) st = q8_calibrator_create(&o->calib, &cal[t]);
  }
  if (st == Q8_OK) st = q8_float_session_create(g, &session);
  const size_t images = o->calib_images < ds->count ? o->calib_images : ds->count;
  for (size_t first = 0; st == Q8_OK && first < images; first += batch) {
    const size_t n = images - first < batch ? images - first : batch;
    q8_float_tensor in = {.name = g->tensors[g->inputs[0]].name, .type = Q8_ELEM_FLOAT, .data = x};
    if ((st = q8_ptq_input(g, ds, first, n, x, in.dims, &in.rank)) != Q8_OK) break;
    if ((st = q8_float_session_run(session, &in, 1, NULL, 0)) != Q8_OK) break;
    for (size_t t = 0; st == Q8_OK && t < g->n_tensors; ++t) {
      q8_float_tensor v;
      if (cal[t] == NULL || q8_float_session_tensor_at(session, (int32_t)t, &v) != Q8_OK ||
          v.type != Q8_ELEM_FLOAT) {
        continue;
      }
      int64_t count = 1;
      for (int d = 0; d < v.rank; ++d) count *= v.dims[d];
      st = q8_calibrator_observe(cal[t], v.data, (size_t)count);
    }
  }
  m->calib_images = images;
  q8_clear_error();
  for (size_t t = 0; st == Q8_OK && t < g->n_tensors; ++t) {
    q8_calib_range r;
    if (cal[t] == NULL || q8_calibrator_range(cal[t], &r) != Q8_OK) {
      q8_clear_error();
      if (cal[t] != NULL) {
        st = q8_messages_add(&m->warnings, "tensor '%s' had no finite value during calibration; "
                             "its consumers stay float", g->tensors[t].name);
      }
      continue;
    }
    m->ranges[t] = (q8_tensor_range){.known = true, .min = r.min, .max = r.max};
    if (r.nonfinite > 0) {
      st = q8_messages_add(&m->warnings, "tensor '%s' had %zu NaN/Inf values during calibration "
                           "(skipped)", g->tensors[t].name, r.nonfinite);
    } else if (r.constant) {
      st = q8_messages_add(&m->warnings, "tensor '%s' is constant (%g) over the calibration set",
                           g->tensors[t].name, (double)r.observed_min);
    }
  }
  for (size_t t = 0; cal && t < g->n_tensors; ++t) q8_calibrator_destroy(cal[t]);
  free(cal);
  free(x);
  q8_float_session_destroy(session);
  return st;
}

static q8_status prepare(q8_ptq_model *m, const q8_ptq_options *o) {
  q8_status st = q8_graph_fold_batchnorm(m->graph, &m->folds);
  for (size_t i = 0; st == Q8_OK && i < m->folds.count; ++i) {
    st = q8_messages_add(&m->notes, "%s", m->folds.folds[i].message);
  }
  if (st != Q8_OK) return st;
  q8_policy defaults;
  q8_policy_init(&defaults);
  q8_policy policy = o->policy ? *o->policy : defaults;
  policy.activation_dtype = o->quant.activations;
  m->decisions = calloc(m->graph->n_nodes ? m->graph->n_nodes : 1, sizeof *m->decisions);
  if (m->decisions == NULL) return q8_fail(Q8_ERR_NOMEM, "quantize: out of memory");
  if ((st = q8_policy_decide(&policy, m->graph, m->decisions)) != Q8_OK) return st;
  return q8_policy_warnings(&policy, m->graph, &m->warnings);
}

q8_status q8_ptq_quantize(q8_graph *graph, const q8_dataset *calib_set, const q8_ptq_options *o,
                          q8_ptq_model *m) {
  q8_clear_error();
  *m = (q8_ptq_model){.graph = graph};
  if (graph == NULL || calib_set == NULL || o == NULL) {
    q8_graph_destroy(graph);
    m->graph = NULL;
    return q8_fail(Q8_ERR_NULL, "quantize: graph, calibration set or options are NULL");
  }
  q8_status st = q8_graph_check_float64(graph);
  if (st == Q8_OK) st = prepare(m, o);
  bool *int8_nodes = calloc(graph->n_nodes ? graph->n_nodes : 1, sizeof *int8_nodes);
  bool *needs = calloc(graph->n_tensors ? graph->n_tensors : 1, sizeof *needs);
  m->ranges = calloc(graph->n_tensors ? graph->n_tensors : 1, sizeof *m->ranges);
  if (st == Q8_OK && (!int8_nodes || !needs || !m->ranges)) {
    st = q8_fail(Q8_ERR_NOMEM, "quantize: out of memory");
  }
  if (st == Q8_OK) {
    for (size_t i = 0; i < graph->n_nodes; ++i) {
      int8_nodes[i] = m->decisions[i].precision == Q8_PRECISION_INT8;
    }
    q8_quantize_needed_ranges(graph, int8_nodes, needs);
    const size_t images = o->calib_images < calib_set->count ? o->calib_images : calib_set->count;
    if (images < Q8_PTQ_MIN_CALIB_IMAGES) {
      st = q8_messages_add(&m->warnings, "calibrating on %zu images (fewer than %d): ranges may not "
                           "represent the data", images, Q8_PTQ_MIN_CALIB_IMAGES);
    }
  }
  if (st == Q8_OK) st = calibrate(m, calib_set, o, needs);
  if (st == Q8_OK) st = q8_quantize_graph(graph, int8_nodes, m->ranges, &o->quant, &m->quant);
  for (size_t i = 0; st == Q8_OK && i < graph->n_nodes; ++i) {
    const q8_layer_result *l = &m->quant.layers[i];
    if (int8_nodes[i] && l->precision == Q8_LAYER_FLOAT) {
      st = q8_messages_add(&m->notes, "%s '%s' stays %s", graph->nodes[i].op_type,
                           graph->nodes[i].name, l->reason);
    }
  }
  free(int8_nodes);
  free(needs);
  return st;
}
