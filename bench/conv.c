/* qbench conv: times q8_conv_run (never the packing) per ISA and layer, the
 * same layer through im2col (bench-side, timed) + q8_gemm_run, and the peers
 * (oneDNN, XNNPACK convolutions) when asked; each figure beside the peak of
 * the same ISA measured in the same run, depthwise layers also in GB/s
 * against the bandwidth of the cache level their working set fits in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

/* ---- data ---- */

size_t qb_conv_input_count(const qb_conv_data *d) {
  const q8_conv_shape *s = &d->shape;
  return s->batch * s->in_h * s->in_w * s->in_channels;
}

size_t qb_conv_output_count(const qb_conv_data *d) { return d->m * d->n; }

bool qb_conv_data_init(qb_conv_data *d, const q8_conv_shape *shape, q8_dtype in, q8_dtype out,
                       size_t in_offset) {
  *d = (qb_conv_data){.shape = *shape, .in_dtype = in, .in_zero_point = in == Q8_UINT8 ? 0 : 3,
                      .in_scale = 0.02f, .out_scale = 0.5f,
                      .out_zero_point = out == Q8_UINT8 ? 127 : -1};
  if (q8_conv_output_shape(shape, &d->out_h, &d->out_w) != Q8_OK) return false;
  d->m = shape->batch * d->out_h * d->out_w;
  d->n = shape->out_channels;
  d->k = shape->kernel_h * shape->kernel_w * (shape->in_channels / shape->groups);
  const size_t in_count = qb_conv_input_count(d), w_count = d->n * d->k;
  /* aligned_alloc wants a multiple of the alignment; the offset is < 64. */
  d->in_offset = in_offset;
  d->input_block = aligned_alloc(64, (in_count + 64 + 63) / 64 * 64);
  d->input = d->input_block ? (unsigned char *)d->input_block + in_offset : NULL;
  d->weights = malloc(w_count);
  d->w_scales = malloc(d->n * sizeof(float));
  d->bias = malloc(d->n * sizeof(int32_t));
  if (!d->input || !d->weights || !d->w_scales || !d->bias) {
    qb_conv_data_free(d);
    return false;
  }
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  unsigned char *input = d->input;
  for (size_t i = 0; i < in_count; ++i) input[i] = (unsigned char)((seed = seed * 6364136223846793005ull + 1) >> 56);
  for (size_t i = 0; i < w_count; ++i) d->weights[i] = (int8_t)((seed = seed * 6364136223846793005ull + 1) >> 56);
  for (size_t j = 0; j < d->n; ++j) {
    d->w_scales[j] = 0.001f + 0.0001f * (float)(j % 7);
    d->bias[j] = (int32_t)(j % 1000) - 500;
  }
  return true;
}

void qb_conv_data_free(qb_conv_data *d) {
  free(d->input_block);
  free(d->weights);
  free(d->w_scales);
  free(d->bias);
  d->input = d->input_block = NULL;
  d->weights = NULL;
  d->w_scales = NULL;
  d->bias = NULL;
}

static q8_conv_desc conv_desc(const qb_conv_data *d, q8_dtype out, size_t threads) {
  return (q8_conv_desc){.shape = d->shape, .in_dtype = d->in_dtype, .in_zero_point = d->in_zero_point,
                        .in_scale = d->in_scale, .weights = d->weights, .w_layout = Q8_WEIGHTS_OHWI,
                        .w_channels = d->n, .w_scales = d->w_scales, .bias = d->bias, .out_dtype = out,
                        .requant = Q8_REQUANT_FP32, .out_scale = d->out_scale,
                        .out_zero_point = d->out_zero_point, .threads = threads};
}

static size_t out_size(q8_dtype out) { return out == Q8_INT32 ? 4 : 1; }

/* The reference ISA's conv plan output, the oracle of --check. */
static bool conv_reference(const qb_conv_data *d, q8_dtype out, void *y) {
  char previous[32] = "";
  if (q8_forced_isa()) snprintf(previous, sizeof previous, "%s", q8_forced_isa());
  q8_set_isa("ref");
  const q8_conv_desc desc = conv_desc(d, out, 1);
  q8_conv_plan *ref = NULL;
  const bool ok = q8_conv_plan_create(&desc, &ref) == Q8_OK && q8_conv_run(ref, d->input, y) == Q8_OK;
  q8_conv_plan_destroy(ref);
  q8_set_isa(previous[0] ? previous : NULL);
  return ok;
}

/* ---- one layer: the reference output, computed once and shared by every row ---- */
typedef struct layer {
  const qb_conv_spec *spec;
  qb_conv_data data;
  q8_dtype in, out;
  void *want; /* --check: reference output, NULL until asked */
  bool want_failed;
} layer;

static const void *layer_reference(layer *l) {
  if (l->want == NULL && !l->want_failed) {
    l->want = malloc(qb_conv_output_count(&l->data) * out_size(l->out));
    if (l->want == NULL || !conv_reference(&l->data, l->out, l->want)) {
      free(l->want);
      l->want = NULL;
      l->want_failed = true;
    }
  }
  return l->want;
}

/* ---- rows ---- */

/* Name, sizes, rate and reproducer of a row; isa_args selects the path in
 * the reproducer ("--isa X", plus "--peer Y" for a peer). */
static void fill_row(qb_row *row, const layer *l, const char *who, const char *algorithm, size_t threads,
                     const qb_timing *t, const char *isa_args, const qb_method *m) {
  const qb_conv_data *d = &l->data;
  char spec[96];
  qb_conv_spec_format(&d->shape, spec, sizeof spec);
  snprintf(row->name, sizeof row->name, "conv/%s/%s/%s-%s/%s/threads:%zu", l->spec->suite, spec,
           qb_out_name(l->in), qb_out_name(l->out), who, threads);
  snprintf(row->suite, sizeof row->suite, "%s", l->spec->suite);
  snprintf(row->op, sizeof row->op, "conv");
  snprintf(row->in, sizeof row->in, "%s", qb_out_name(l->in));
  snprintf(row->out, sizeof row->out, "%s", qb_out_name(l->out));
  snprintf(row->unit, sizeof row->unit, "GOPS");
  snprintf(row->algorithm, sizeof row->algorithm, "%s", algorithm);
  row->is_gemm = row->is_conv = true;
  row->conv = d->shape;
  row->out_h = d->out_h;
  row->out_w = d->out_w;
  row->m = d->m;
  row->n = d->n;
  row->k = d->k;
  row->threads = threads;
  row->t = *t;
  row->rate = 2.0 * (double)d->m * (double)d->n * (double)d->k / t->median_s * 1e-9;
  /* Depthwise layers are memory-bound: also judged by what they move. */
  if (qb_conv_is_depthwise(&d->shape)) {
    row->bytes = qb_conv_input_count(d) + qb_conv_output_count(d) * out_size(l->out) + d->n * d->k;
    row->bandwidth_level = qb_stream_level(row->bytes);
  }
  char offset[40] = "";
  if (d->in_offset) snprintf(offset, sizeof offset, " --in-offset %zu", d->in_offset);
  snprintf(row->repro, sizeof row->repro, "qbench conv %s --shape %s:%s%s%s --out %s --threads %zu --min-time %g%s%s",
           isa_args, l->spec->suite, spec, l->in == Q8_UINT8 ? " --in u8" : "", offset, qb_out_name(l->out),
           threads, m->min_time, m->check ? " --check" : "", m->bitwise ? " --bitwise" : "");
}

/* Peak and bandwidth of a finished row (measured once per run and cached). */
static void bound_row(qb_row *row, q8_isa peak_isa, double min_time) {
  snprintf(row->peak_isa, sizeof row->peak_isa, "%s", q8_isa_name(peak_isa));
  row->peak = qb_peak_for(peak_isa, row->threads, min_time);
  if (row->bandwidth_level) row->bandwidth_gbps = qb_run_bandwidth(row->bandwidth_level, min_time);
}

static void check_row(qb_row *row, layer *l, const void *got, int tolerance) {
  row->checked = true;
  const void *want = layer_reference(l);
  if (want == NULL) {
    row->check_ok = false;
    row->max_abs_diff = -1;
    return;
  }
  row->max_abs_diff = qb_max_abs_diff(got, want, qb_conv_output_count(&l->data), l->out);
  row->check_ok = row->max_abs_diff <= tolerance;
}

/* The reference is for reading, not speed: few samples. */
static qb_timing measure(q8_isa isa, void (*fn)(void *), void *ctx, double min_time) {
  return qb_measure(fn, ctx, isa == Q8_ISA_REF ? fmin(min_time, 0.01) : min_time, 5);
}

/* ---- the conv plan ---- */
typedef struct plan_run {
  q8_conv_plan *plan;
  const void *input;
  void *output;
} plan_run;

static void run_plan(void *p) {
  plan_run *r = p;
  q8_conv_run(r->plan, r->input, r->output);
}

static bool measure_plan(q8_isa isa, layer *l, size_t threads, const qb_method *method, qb_row *row) {
  const qb_conv_data *d = &l->data;
  char spec[96];
  qb_conv_spec_format(&d->shape, spec, sizeof spec);
  if (q8_set_isa(q8_isa_name(isa)) != Q8_OK) {
    fprintf(stderr, "qbench conv: %s: %s\n", q8_isa_name(isa), q8_error_detail());
    return false;
  }
  const q8_conv_desc desc = conv_desc(d, l->out, threads);
  plan_run r = {.input = d->input};
  const size_t bytes = qb_conv_output_count(d) * out_size(l->out);
  bool ok = q8_conv_plan_create(&desc, &r.plan) == Q8_OK;
  if (!ok) fprintf(stderr, "qbench conv: %s %s: %s\n", q8_isa_name(isa), spec, q8_error_detail());
  if (ok && ((r.output = calloc(1, bytes)) == NULL || q8_conv_run(r.plan, d->input, r.output) != Q8_OK)) {
    fprintf(stderr, "qbench conv: %s %s: %s\n", q8_isa_name(isa), spec,
            r.output ? q8_error_detail() : "out of memory");
    ok = false;
  }
  if (ok) {
    const qb_timing t = measure(isa, run_plan, &r, method->min_time);
    char isa_args[48];
    snprintf(isa_args, sizeof isa_args, "--isa %s", q8_isa_name(isa));
    fill_row(row, l, q8_isa_name(isa), "plan", threads, &t, isa_args, method);
    snprintf(row->isa, sizeof row->isa, "%s", q8_isa_name(isa));
    snprintf(row->kernel, sizeof row->kernel, "%s", q8_conv_plan_kernel(r.plan));
    bound_row(row, qb_peak_isa_for(isa), method->min_time);
    if (method->check) check_row(row, l, r.output, 0);
    if (method->bitwise) {
      unsigned char *again = calloc(1, bytes);
      row->bitwise_checked = true;
      row->bitwise_ok = again && q8_conv_run(r.plan, d->input, again) == Q8_OK && memcmp(again, r.output, bytes) == 0;
      free(again);
    }
  }
  q8_conv_plan_destroy(r.plan);
  free(r.output);
  q8_set_isa(NULL);
  return ok;
}

/* ---- im2col + GEMM: the baseline the conv plan must beat ----
 * A 1x1 stride-1 unpadded single-group layer needs no copy: its input is A.
 * Columns [pixel][group][ky][kx][channel of the group]: one row of K per group,
 * padded positions hold the input zero point (they then contribute 0, as in
 * the convolution). Group g is then a GEMM of A = columns at offset g * k
 * (row stride groups * k) with that group's weight rows, written into the
 * output at column g * (OC / groups) (row stride OC). */
typedef struct im2col_run {
  const qb_conv_data *d;
  int8_t *cols; /* NULL when the input already is the columns (1x1, stride 1, no padding, one group) */
  q8_gemm_plan **plans; /* one per group */
  unsigned char *output;
  size_t esize;
} im2col_run;

static void im2col(const qb_conv_data *d, int8_t *cols) {
  const q8_conv_shape *s = &d->shape;
  const size_t cg = s->in_channels / s->groups;
  int8_t *dst = cols;
  for (size_t b = 0; b < s->batch; ++b) {
    for (size_t y = 0; y < d->out_h; ++y) {
      for (size_t x = 0; x < d->out_w; ++x) {
        for (size_t g = 0; g < s->groups; ++g) {
          for (size_t ky = 0; ky < s->kernel_h; ++ky) {
            /* Unsigned wrap makes a position above or left of the input large. */
            const size_t iy = y * s->stride_h + ky * s->dilation_h - s->pad_top;
            for (size_t kx = 0; kx < s->kernel_w; ++kx, dst += cg) {
              const size_t ix = x * s->stride_w + kx * s->dilation_w - s->pad_left;
              if (iy < s->in_h && ix < s->in_w) {
                memcpy(dst, (const int8_t *)d->input + ((b * s->in_h + iy) * s->in_w + ix) * s->in_channels + g * cg, cg);
              } else {
                memset(dst, (unsigned char)d->in_zero_point, cg);
              }
            }
          }
        }
      }
    }
  }
}

static void run_im2col(void *p) {
  im2col_run *r = p;
  const qb_conv_data *d = r->d;
  const size_t groups = d->shape.groups, ocg = d->n / groups;
  const int8_t *a = r->cols ? r->cols : d->input;
  if (r->cols) im2col(d, r->cols);
  for (size_t g = 0; g < groups; ++g) {
    q8_gemm_run(r->plans[g], a + g * d->k, groups * d->k, r->output + g * ocg * r->esize, d->n);
  }
}

static bool measure_im2col(q8_isa isa, layer *l, size_t threads, const qb_method *method, qb_row *row) {
  const qb_conv_data *d = &l->data;
  const size_t groups = d->shape.groups, ocg = d->n / groups;
  char spec[96];
  qb_conv_spec_format(&d->shape, spec, sizeof spec);
  if (q8_set_isa(q8_isa_name(isa)) != Q8_OK) {
    fprintf(stderr, "qbench conv: %s: %s\n", q8_isa_name(isa), q8_error_detail());
    return false;
  }
  const q8_conv_shape *s = &d->shape;
  const bool identity = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
                        s->pad_top + s->pad_left + s->pad_bottom + s->pad_right == 0 && groups == 1;
  im2col_run r = {.d = d, .esize = out_size(l->out), .cols = identity ? NULL : malloc(d->m * groups * d->k),
                  .plans = calloc(groups, sizeof(q8_gemm_plan *)),
                  .output = calloc(qb_conv_output_count(d), out_size(l->out))};
  bool ok = (identity || r.cols) && r.plans && r.output;
  if (!ok) fprintf(stderr, "qbench conv: im2col %s: out of memory\n", spec);
  for (size_t g = 0; ok && g < groups; ++g) {
    const q8_gemm_desc gd = {.m = d->m, .n = ocg, .k = d->k, .a_dtype = d->in_dtype, .a_zero_point = d->in_zero_point,
                             .a_scale = d->in_scale, .weights = d->weights + g * ocg * d->k, .w_channels = ocg,
                             .w_scales = d->w_scales + g * ocg, .bias = d->bias + g * ocg, .out_dtype = l->out,
                             .requant = Q8_REQUANT_FP32, .out_scale = d->out_scale,
                             .out_zero_point = d->out_zero_point, .threads = threads};
    if (q8_gemm_plan_create(&gd, &r.plans[g]) != Q8_OK) {
      fprintf(stderr, "qbench conv: im2col %s %s: %s\n", q8_isa_name(isa), spec, q8_error_detail());
      ok = false;
    }
  }
  if (ok) {
    run_im2col(&r);
    const qb_timing t = measure(isa, run_im2col, &r, method->min_time);
    char who[64];
    snprintf(who, sizeof who, "im2col:%s", q8_isa_name(isa));
    char isa_args[48];
    snprintf(isa_args, sizeof isa_args, "--isa %s", q8_isa_name(isa));
    fill_row(row, l, who, "im2col", threads, &t, isa_args, method);
    snprintf(row->isa, sizeof row->isa, "%s", q8_isa_name(isa));
    snprintf(row->kernel, sizeof row->kernel, "%s%s", identity ? "" : "im2col+", q8_gemm_plan_kernel(r.plans[0]));
    bound_row(row, qb_peak_isa_for(isa), method->min_time);
    if (method->check) check_row(row, l, r.output, 0);
  }
  for (size_t g = 0; r.plans && g < groups; ++g) q8_gemm_plan_destroy(r.plans[g]);
  free(r.plans);
  free(r.cols);
  free(r.output);
  q8_set_isa(NULL);
  return ok;
}

/* ---- peers ---- */
static bool measure_peer(qb_peer peer, layer *l, size_t threads, const qb_method *method, qb_row *row, char *err,
                         size_t err_size) {
  const qb_conv_data *d = &l->data;
  /* q8's plan on the dispatched ISA, timed in pairs with the peer; the peer
   * runs on as many threads as the plan resolves `threads` to. */
  const q8_conv_desc desc = conv_desc(d, l->out, threads);
  plan_run partner = {.input = d->input, .output = calloc(qb_conv_output_count(d), out_size(l->out))};
  void *y = calloc(qb_conv_output_count(d), out_size(l->out));
  qb_peer_result result = {0};
  bool ok = y && partner.output;
  if (!ok) snprintf(err, err_size, "out of memory");
  if (ok && (q8_conv_plan_create(&desc, &partner.plan) != Q8_OK ||
             q8_conv_run(partner.plan, d->input, partner.output) != Q8_OK)) {
    snprintf(err, err_size, "q8 beside the peer: %s", q8_error_detail());
    ok = false;
  }
  if (ok) {
    threads = q8_conv_plan_threads(partner.plan);
    const qb_peer_timing timing = {.min_time = method->min_time, .partner = run_plan, .partner_ctx = &partner};
    ok = qb_peer_conv_measure(peer, d, threads, l->out, &timing, y, &result, err, err_size);
  }
  if (ok) {
    const char *name = qb_peer_name(peer);
    char isa_args[64];
    snprintf(isa_args, sizeof isa_args, "--isa %s --peer %s", q8_isa_name(qb_dispatched_isa()), name);
    fill_row(row, l, name, "peer", threads, &result.t, isa_args, method);
    snprintf(row->library, sizeof row->library, "%s", name);
    snprintf(row->isa, sizeof row->isa, "%s", result.isa);
    snprintf(row->kernel, sizeof row->kernel, "%s", result.impl);
    qb_row_set_pairs(row, &result);
    /* A peer is bounded by the machine's best multiply-add, as q8 is. */
    bound_row(row, qb_peak_isa_for(Q8_ISA_REF), method->min_time);
    /* Peers round the output zero point in with the scale: 1 apart at exact ties. */
    if (method->check) check_row(row, l, y, l->out == Q8_INT32 ? 0 : 1);
    qb_note_peer(name, qb_peer_version(peer), result.isa);
  }
  q8_conv_plan_destroy(partner.plan);
  free(partner.output);
  free(y);
  return ok;
}

/* ---- per-suite totals: the plan against im2col + GEMM and the peers ---- */
typedef struct total {
  char suite[24], path[64]; /* path: "plan:<isa>", "im2col:<isa>", or the peer */
  double seconds;
  double paired_q8_seconds; /* peer paths: q8's time in the pairs with the peer */
  size_t layers, paired;    /* paired: layers timed in pairs */
} total;

typedef struct totals {
  total items[64];
  size_t count;
} totals;

static void add_total(totals *t, const qb_row *row) {
  char path[64];
  if (strcmp(row->algorithm, "peer") == 0) snprintf(path, sizeof path, "%s", row->library);
  else snprintf(path, sizeof path, "%s:%s", row->algorithm, row->isa);
  total *x = NULL;
  for (size_t i = 0; i < t->count && x == NULL; ++i) {
    if (strcmp(t->items[i].suite, row->suite) == 0 && strcmp(t->items[i].path, path) == 0) x = &t->items[i];
  }
  if (x == NULL) {
    if (t->count == sizeof t->items / sizeof t->items[0]) return;
    x = &t->items[t->count++];
    *x = (total){0};
    snprintf(x->suite, sizeof x->suite, "%s", row->suite);
    snprintf(x->path, sizeof x->path, "%s", path);
  }
  x->seconds += row->t.median_s;
  ++x->layers;
  if (row->pairs > 0) {
    x->paired_q8_seconds += row->paired_q8.median_s;
    ++x->paired;
  }
}

/* The plan total a path compares with: the same ISA's plan for im2col, the
 * dispatched ISA's for a peer; NULL when none covers the same layers. */
static const total *plan_total_for(const totals *t, const total *x) {
  char want[64];
  const char *colon = strchr(x->path, ':');
  if (strncmp(x->path, "plan:", 5) == 0) return NULL;
  snprintf(want, sizeof want, "plan:%s", colon ? colon + 1 : q8_isa_name(qb_dispatched_isa()));
  for (size_t i = 0; i < t->count; ++i) {
    if (strcmp(t->items[i].suite, x->suite) == 0 && strcmp(t->items[i].path, want) == 0 &&
        t->items[i].layers == x->layers) {
      return &t->items[i];
    }
  }
  return NULL;
}

static void print_totals(FILE *f, const totals *t) {
  if (t->count == 0) return;
  fprintf(f, "\nSummed median time per suite (each distinct layer once):\n");
  for (size_t i = 0; i < t->count; ++i) {
    const total *x = &t->items[i];
    const total *plan = plan_total_for(t, x);
    fprintf(f, "  %-12s %-22s %3zu layers %11.3f ms", x->suite, x->path, x->layers, x->seconds * 1e3);
    if (plan) fprintf(f, "  = %.2fx the time of %s", x->seconds / plan->seconds, plan->path);
    if (x->paired == x->layers) {
      char beside[64];
      snprintf(beside, sizeof beside, "q8 beside %.50s", x->path);
      fprintf(f, "\n  %-12s %-22s %3zu layers %11.3f ms  (%s: %.2fx this time, in the same pairs)", x->suite,
              beside, x->layers, x->paired_q8_seconds * 1e3, x->path, x->seconds / x->paired_q8_seconds);
    }
    fputc('\n', f);
  }
}

static void json_totals(qb_json *j, void *ctx) {
  const totals *t = ctx;
  qb_json_begin_array(j, "conv_totals");
  for (size_t i = 0; i < t->count; ++i) {
    const total *x = &t->items[i];
    const total *plan = plan_total_for(t, x);
    qb_json_begin_object(j, NULL);
    qb_json_string(j, "suite", x->suite);
    qb_json_string(j, "path", x->path);
    qb_json_int(j, "layers", (long long)x->layers);
    qb_json_number(j, "total_ms", x->seconds * 1e3);
    if (plan) {
      qb_json_string(j, "plan_path", plan->path);
      qb_json_number(j, "time_vs_plan", x->seconds / plan->seconds);
    }
    if (x->paired == x->layers) {
      qb_json_number(j, "paired_q8_total_ms", x->paired_q8_seconds * 1e3);
      qb_json_number(j, "time_vs_paired_q8", x->seconds / x->paired_q8_seconds);
    }
    qb_json_end_object(j);
  }
  qb_json_end_array(j);
}

/* ---- the command ---- */

static void usage(FILE *f) {
  fputs("usage: qbench conv [--suite resnet50|mobilenetv2|efficientnet_b0] [--shape SPEC[,...]]\n"
        "                   [--isa NAME[,NAME...]|all|none] [--peers | --peer NAME] [--threads N]\n"
        "                   [--in s8|u8] [--in-offset B] [--out s32|s8|u8] [--min-time S] [--quick]\n"
        "                   [--core N] [--check] [--bitwise] [--list]"
        " [--repro] [--json FILE|-] [--csv FILE|-]\n\n"
        "Times each convolution three ways: q8_conv_run (the conv plan; weights packed\n"
        "once at plan creation, not timed), im2col (timed; none for 1x1 stride-1\n"
        "unpadded layers) + q8_gemm_run per group on the same ISA, and the peers when\n"
        "asked. NHWC input, OHWI int8 weights with per-channel scales, int32 bias,\n"
        "batch 1 unless the spec says. Warm-up, then samples over --min-time (each about\n"
        "a 200th of it), median of >= 5 (ref: few samples). Prints GOPS\n"
        "(2 * out pixels * OC * KH * KW * C / groups per second, padded taps included:\n"
        "q8's border tiles and oneDNN skip those, so their nominal rate can pass 100 %%)\n"
        "and the fraction of the peak of the same ISA measured in the same run;\n"
        "depthwise layers also GB/s\n"
        "(input + output + weight bytes per second) against the measured read\n"
        "bandwidth of the cache level their working set fits in. Ends with the summed\n"
        "time of each suite per path (plan, im2col, peers).\n\n"
        "SPEC  [N x]HxWxC:OC:KHxKW[:sS][:pP|:pT,L,B,R][:dD][:gG|:dw]\n"
        "      input N x H x W x C (N, the batch, defaults to 1), OC output channels,\n"
        "      KH x KW kernel; sS stride, pP padding on all sides or pT,L,B,R (top,\n"
        "      left, bottom, right), dD dilation, gG groups; dw = depthwise (groups = C,\n"
        "      OC a multiple of C). Defaults s1 p0 d1 g1. E.g. 56x56x64:64:3x3:s1:p1,\n"
        "      2x112x112x96:96:3x3:s2:p0,0,1,1:dw. SUITE:SPEC names the row as in that\n"
        "      suite (what repro prints).\n\n"
        "  --suite    resnet50 (conv1 and every distinct 3x3 and 1x1 layer, 23),\n"
        "             mobilenetv2 (stem, expansion 1x1, depthwise 3x3, projection 1x1,\n"
        "             last 1x1, 30) or efficientnet_b0 (the same with depthwise 3x3\n"
        "             and 5x5, 32); default resnet50 and mobilenetv2, when no --shape\n"
        "  --isa      ISAs to time (default: every usable one but ref; ref, or all, adds\n"
        "             the reference, timed with few samples); none: peers only\n"
        "  --peers    also time oneDNN (convolution_forward) and XNNPACK (qc8 convolution)\n"
        "             on the same inputs, in alternating slots with q8's dispatched plan:\n"
        "             q8's speed-up is the median slot pair's; --peer NAME for one\n"
        "  --threads  default 1; 0 = one per physical core\n"
        "  --in       input s8 with zero point 3 (default) or u8 with zero point 0, as\n"
        "             post-ReLU activations are (oneDNN then runs without a zero point)\n"
        "  --in-offset the input starts B (0..63) bytes past a 64-byte boundary; default\n"
        "             0, as inference runtimes align tensors; 16 is where a large malloc\n"
        "             puts it (wide depthwise layers then split every 64-byte load)\n"
        "  --out      s32 (default), s8 or u8 (fused requantization, fp32 mode)\n"
        "  --min-time seconds of samples per row (default 0.2); --quick = 0.05\n"
        "  --core     the physical core qbench runs on (default 0; threads go to the\n"
        "             cores after it): on a shared host a core whose neighbour is busy\n"
        "             can run cache-bound layers markedly slower\n"
        "  --check    compare every output with the ref ISA's conv plan: exact for q8\n"
        "             rows, peers within 1 in s8/u8 (the table shows the max difference)\n"
        "  --bitwise  run each plan again and compare the bytes\n"
        "  --list     print the layers (SUITE:SPEC, one a line) and measure nothing\n",
        f);
  fputs(qb_outputs_help, f);
}

static int fail_usage(const char *fmt, const char *arg) { return qb_usage_error("conv", fmt, arg); }

static void table_row(const qb_outputs *o, qb_row *row, bool *all_ok) {
  if ((row->checked && !row->check_ok) || (row->bitwise_checked && !row->bitwise_ok)) *all_ok = false;
  qb_table_row(o, row);
}

static bool conv_bench(const qb_conv_spec *specs, size_t count, const qb_selection *sel, q8_dtype in, q8_dtype out,
                       size_t in_offset, const qb_method *method, const qb_outputs *o, qb_rows *rows, totals *sums) {
  bool all_ok = true, peer_skip_said[QB_PEER_COUNT] = {false};
  size_t total_rows = 0, done = 0;
  for (int i = 0; i < Q8_ISA_COUNT; ++i) total_rows += 2 * sel->isa_wanted[i];
  for (int p = 0; p < QB_PEER_COUNT; ++p) total_rows += sel->peer_wanted[p];
  total_rows *= count;
  for (size_t s = 0; s < count; ++s) {
    layer l = {.spec = &specs[s], .in = in, .out = out};
    char spec[96];
    qb_conv_spec_format(&specs[s].shape, spec, sizeof spec);
    if (!qb_conv_data_init(&l.data, &specs[s].shape, in, out, in_offset)) {
      fprintf(stderr, "qbench conv: %s: out of memory\n", spec);
      all_ok = false;
      continue;
    }
    double ref_rate = NAN;
    for (int isa = 0; isa < Q8_ISA_COUNT; ++isa) {
      if (!sel->isa_wanted[isa]) continue;
      for (int way = 0; way < 2; ++way) {
        qb_progress("[%zu/%zu] conv %s %s %s%s", ++done, total_rows, specs[s].suite, spec,
                    way ? "im2col:" : "", q8_isa_name((q8_isa)isa));
        qb_row *row = qb_rows_add(rows);
        const bool ok = way == 0 ? measure_plan((q8_isa)isa, &l, sel->threads, method, row)
                                 : measure_im2col((q8_isa)isa, &l, sel->threads, method, row);
        if (!ok) {
          --rows->count;
          all_ok = false;
          continue;
        }
        if (way == 0 && isa == Q8_ISA_REF) ref_rate = row->rate;
        row->speedup_vs_ref = row->rate / ref_rate;
        add_total(sums, row);
        table_row(o, row, &all_ok);
      }
    }
    for (int p = 0; p < QB_PEER_COUNT; ++p) {
      if (!sel->peer_wanted[p]) continue;
      qb_progress("[%zu/%zu] conv %s %s %s", ++done, total_rows, specs[s].suite, spec, qb_peer_name((qb_peer)p));
      qb_row *row = qb_rows_add(rows);
      char err[256];
      if (!measure_peer((qb_peer)p, &l, sel->threads, method, row, err, sizeof err)) {
        --rows->count;
        qb_progress_clear();
        /* A peer that cannot do a kind of case (an output type) says so once. */
        if (!peer_skip_said[p]) fprintf(o->table, "    %s skipped %s: %s\n", qb_peer_name((qb_peer)p), spec, err);
        peer_skip_said[p] = strstr(err, "output") != NULL;
        continue;
      }
      row->speedup_vs_ref = row->rate / ref_rate;
      add_total(sums, row);
      table_row(o, row, &all_ok);
    }
    free(l.want);
    qb_conv_data_free(&l.data);
  }
  qb_progress_clear();
  return all_ok;
}

int qb_cmd_conv(int argc, char **argv) {
  qb_selection sel = {.threads = 1};
  qb_method method = {.min_time = 0.2};
  qb_outputs outputs;
  qb_outputs_init(&outputs);
  q8_dtype in = Q8_INT8, out = Q8_INT32;
  size_t in_offset = 0;
  bool list = false;
  qb_conv_spec *specs = NULL;
  size_t count = 0;
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; ++i) {
    const char *arg = argv[i];
    const bool has_value = i + 1 < argc;
    char err[512];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      free(specs);
      return 0;
    } else if (strcmp(arg, "--shape") == 0 && has_value) {
      if (!qb_conv_specs_add_list(&specs, &count, argv[++i], "cli", err, sizeof err)) {
        fprintf(stderr, "qbench conv: --shape: %s\n", err);
        rc = 2;
      }
      continue;
    } else if (strcmp(arg, "--suite") == 0 && has_value) {
      if (!qb_conv_specs_add_suite(&specs, &count, argv[++i])) rc = fail_usage("--suite '%s': expected resnet50, mobilenetv2 or efficientnet_b0", argv[i]);
      continue;
    } else if (strcmp(arg, "--list") == 0) {
      list = true;
      continue;
    } else if (strcmp(arg, "--in") == 0 && has_value) {
      const char *v = argv[++i];
      if (strcmp(v, "s8") == 0) in = Q8_INT8;
      else if (strcmp(v, "u8") == 0) in = Q8_UINT8;
      else rc = fail_usage("--in '%s': expected s8 or u8", v);
      continue;
    } else if (strcmp(arg, "--in-offset") == 0 && has_value) {
      const char *v = argv[++i];
      char *end;
      const unsigned long b = strtoul(v, &end, 10);
      if (*v == '\0' || *end != '\0' || b > 63) {
        rc = fail_usage("--in-offset '%s': expected bytes 0..63 past a 64-byte boundary", v);
      }
      in_offset = b;
      continue;
    } else if (strcmp(arg, "--out") == 0 && has_value) {
      const char *v = argv[++i];
      if (strcmp(v, "s32") == 0) out = Q8_INT32;
      else if (strcmp(v, "s8") == 0) out = Q8_INT8;
      else if (strcmp(v, "u8") == 0) out = Q8_UINT8;
      else rc = fail_usage("--out '%s': expected s32, s8 or u8", v);
      continue;
    } else if (strcmp(arg, "--shapes") == 0 || strcmp(arg, "--cold") == 0) {
      rc = fail_usage("%s is a qbench gemm option, not a conv one", arg);
      continue;
    }
    int used = qb_parse_method(argc, argv, &i, &method, "qbench conv");
    if (used == 0) used = qb_parse_outputs(argc, argv, &i, &outputs, "qbench conv");
    if (used == 0) used = qb_parse_selection(argc, argv, &i, &sel, "qbench conv");
    if (used < 0) rc = 2;
    if (used == 0) rc = fail_usage("unknown or incomplete option '%s'", arg);
  }
  bool forced;
  q8_isa forced_isa;
  if (rc == 0 && q8_forced(&forced, &forced_isa) != Q8_OK) {
    fprintf(stderr, "qbench conv: %s\n", q8_error_detail());
    rc = 2;
  }
  if (rc != 0) {
    free(specs);
    qb_shapes_free(&sel.shapes);
    return rc;
  }
  const bool any_isa = sel.any_isa;
  qb_selection_finish(&sel, "1x1x1");
  qb_shapes_free(&sel.shapes); /* GEMM shapes: conv has its own */
  if (!any_isa) sel.isa_wanted[Q8_ISA_REF] = false; /* the reference only when asked: it is slow */
  if (count == 0) {
    qb_conv_specs_add_suite(&specs, &count, "resnet50");
    qb_conv_specs_add_suite(&specs, &count, "mobilenetv2");
  }
  if (list) {
    for (size_t i = 0; i < count; ++i) {
      char spec[96];
      qb_conv_spec_format(&specs[i].shape, spec, sizeof spec);
      printf("%s:%s\n", specs[i].suite, spec);
    }
    free(specs);
    return 0;
  }

  if (!qb_pin_main_thread(&method, "qbench conv")) return 2;
  qb_note_method(method.min_time, false, method.check, method.bitwise);
  qb_rows rows = {0};
  totals *sums = calloc(1, sizeof *sums);
  if (sums == NULL) {
    free(specs);
    fputs("qbench conv: out of memory\n", stderr);
    return 1;
  }
  qb_table_header(&outputs);
  const bool ok = conv_bench(specs, count, &sel, in, out, in_offset, &method, &outputs, &rows, sums);
  print_totals(outputs.table, sums);
  rc = 0;
  if (outputs.json_path) {
    FILE *f = strcmp(outputs.json_path, "-") == 0 ? stdout : fopen(outputs.json_path, "w");
    if (f == NULL) {
      fprintf(stderr, "qbench conv: cannot write '%s'\n", outputs.json_path);
      rc = 1;
    } else {
      qb_write_json_extra(f, rows.items, rows.count, json_totals, sums);
      if (f == stdout) fflush(f);
      else if (fclose(f) != 0) rc = 1;
    }
  }
  if (outputs.csv_path) {
    qb_outputs csv_only = outputs;
    csv_only.json_path = NULL;
    rc |= qb_write_outputs(&csv_only, rows.items, rows.count);
  }
  qb_rows_free(&rows);
  free(sums);
  free(specs);
  return rc != 0 ? rc : ok ? 0 : 1;
}
