/* qbench requant: the standalone element-wise kernels (requantize in each
 * mode, quantize, dequantize) in GB/s, each against the measured read
 * bandwidth of the memory level its stream lives in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/cpu.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

static const char *mode_name(q8_requant_mode mode) {
  return mode == Q8_REQUANT_GEMMLOWP ? "gemmlowp" : mode == Q8_REQUANT_SINGLE ? "single" : "fp32";
}

/* Bytes a call reads and writes per element. */
static size_t bytes_per_element(q8_op op) {
  return op == Q8_OP_REQUANTIZE ? sizeof(int32_t) + 1 : sizeof(float) + 1;
}

/* One copy of a call's buffers. */
typedef struct stream {
  float *f32;
  int32_t *i32;
  int8_t *i8;
} stream;

typedef struct elementwise_ctx {
  const q8_kernel *kernel;
  size_t count, copies, next;
  stream *streams;
  q8_quant_params qp;
  q8_requant_params rq;
} elementwise_ctx;

static void run_on(const elementwise_ctx *c, const q8_kernel *k, const stream *s, void *out) {
  switch (k->op) {
    case Q8_OP_QUANTIZE:
      k->quantize(s->f32, c->count, 1, &c->qp, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE, out ? out : s->i8);
      break;
    case Q8_OP_DEQUANTIZE: k->dequantize(s->i8, c->count, 1, &c->qp, out ? out : s->f32); break;
    case Q8_OP_REQUANTIZE: k->requantize(s->i32, c->count, 1, &c->rq, out ? out : s->i8); break;
    default: break;
  }
}

static void run_elementwise(void *p) {
  elementwise_ctx *c = p;
  const size_t i = c->next;
  c->next = i + 1 == c->copies ? 0 : i + 1;
  run_on(c, c->kernel, &c->streams[i], NULL);
}

int qb_stream_level(size_t bytes) {
  const q8_cpu_info *cpu = q8_cpu();
  if (cpu->l1d_bytes && bytes <= cpu->l1d_bytes / 2) return 1;
  if (cpu->l2_bytes && bytes <= cpu->l2_bytes / 2) return 2;
  if (cpu->l3_bytes && bytes <= cpu->l3_bytes / 2) return 3;
  return 4;
}

static const q8_kernel *ref_kernel(q8_op op) {
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  for (size_t i = 0; i < count; ++i) {
    if (all[i].op == op && all[i].isa == Q8_ISA_REF) return &all[i];
  }
  return NULL;
}

bool qb_elementwise_measure(const q8_kernel *k, size_t count, q8_requant_mode mode, const qb_method *method,
                            qb_row *row) {
  static int32_t multiplier = 1 << 30, shift = -8, zp = 3;
  static float rq_scale = 1.0f / 512.0f, scale = 0.05f;
  const size_t per_call = count * bytes_per_element(k->op);
  elementwise_ctx c = {.kernel = k, .count = count,
                       .qp = {Q8_INT8, 1, &scale, &zp},
                       .rq = {mode, Q8_INT8, 3, -128, 127, 1, &multiplier, &shift, &rq_scale}};
  c.copies = qb_cold_copies(method, per_call);
  c.streams = calloc(c.copies, sizeof *c.streams);
  bool ok = c.streams != NULL;
  for (size_t s = 0; ok && s < c.copies; ++s) {
    stream *st = &c.streams[s];
    /* Only the buffers the op touches, so --cold sizes what it streams. */
    if (k->op != Q8_OP_REQUANTIZE) ok &= (st->f32 = malloc(count * sizeof(float))) != NULL;
    if (k->op == Q8_OP_REQUANTIZE) ok &= (st->i32 = malloc(count * sizeof(int32_t))) != NULL;
    ok &= (st->i8 = malloc(count)) != NULL;
    for (size_t i = 0; ok && i < count; ++i) {
      /* Values across the whole range, with ties and saturation. */
      if (st->f32) st->f32[i] = (float)((int)(i * 2654435761u % 20001u) - 10000) * 0.001f;
      if (st->i32) st->i32[i] = (int32_t)(i * 2654435761u % 131071u) - 65535;
      st->i8[i] = (int8_t)(i * 31u);
    }
  }
  if (!ok) fprintf(stderr, "qbench requant: out of memory for %zu copies of %zu elements\n", c.copies, count);
  if (ok) {
    row->t = qb_measure(run_elementwise, &c, method->min_time, 5);
    const char *isa = q8_isa_name(k->isa);
    if (k->op == Q8_OP_REQUANTIZE) {
      snprintf(row->name, sizeof row->name, "requantize/%s/%zu/%s", mode_name(mode), count, isa);
      snprintf(row->mode, sizeof row->mode, "%s", mode_name(mode));
    } else {
      snprintf(row->name, sizeof row->name, "%s/%zu/%s", q8_op_name(k->op), count, isa);
    }
    snprintf(row->suite, sizeof row->suite, "elementwise");
    snprintf(row->op, sizeof row->op, "%s", q8_op_name(k->op));
    snprintf(row->isa, sizeof row->isa, "%s", isa);
    snprintf(row->kernel, sizeof row->kernel, "%s", k->name);
    row->count = count;
    row->bytes = per_call;
    row->threads = 1;
    row->rate = (double)per_call / row->t.median_s * 1e-9;
    row->bandwidth_level = qb_stream_level(per_call * c.copies);
    row->bandwidth_gbps = qb_run_bandwidth(row->bandwidth_level, method->min_time);
    row->peak = row->bandwidth_gbps;
    const size_t out_bytes = k->op == Q8_OP_DEQUANTIZE ? count * sizeof(float) : count;
    const void *timed = k->op == Q8_OP_DEQUANTIZE ? (const void *)c.streams[0].f32 : (const void *)c.streams[0].i8;
    unsigned char *again = malloc(out_bytes);
    if (method->check && again) {
      const q8_kernel *ref = ref_kernel(k->op);
      run_on(&c, ref, &c.streams[0], again);
      row->checked = true;
      row->check_ok = ref && memcmp(again, timed, out_bytes) == 0;
    }
    if (method->bitwise && again) {
      run_on(&c, k, &c.streams[0], again);
      row->bitwise_checked = true;
      row->bitwise_ok = memcmp(again, timed, out_bytes) == 0;
    }
    free(again);
    snprintf(row->repro, sizeof row->repro, "qbench requant --isa %s --op %s%s%s --count %zu --min-time %g%s%s%s",
             isa, q8_op_name(k->op), row->mode[0] ? " --mode " : "", row->mode, count, method->min_time,
             method->cold ? " --cold" : "", method->check ? " --check" : "", method->bitwise ? " --bitwise" : "");
  }
  for (size_t s = 0; c.streams && s < c.copies; ++s) {
    free(c.streams[s].f32);
    free(c.streams[s].i32);
    free(c.streams[s].i8);
  }
  free(c.streams);
  return ok;
}

bool qb_elementwise_bench(const bool isa_wanted[Q8_ISA_COUNT], const bool op_wanted[Q8_OP_COUNT],
                          const bool mode_wanted[3], const size_t *counts, size_t count_n,
                          const qb_method *method, const qb_outputs *o, qb_rows *rows) {
  static const q8_op ops[] = {Q8_OP_REQUANTIZE, Q8_OP_QUANTIZE, Q8_OP_DEQUANTIZE};
  static const q8_requant_mode modes[] = {Q8_REQUANT_GEMMLOWP, Q8_REQUANT_SINGLE, Q8_REQUANT_FP32};
  size_t kernel_count;
  const q8_kernel *all = q8_kernels(&kernel_count);
  bool all_ok = true;
  for (size_t ci = 0; ci < count_n; ++ci) {
    for (size_t oi = 0; oi < sizeof ops / sizeof ops[0]; ++oi) {
      if (!op_wanted[ops[oi]]) continue;
      for (size_t mi = 0; mi < 3; ++mi) {
        if (ops[oi] == Q8_OP_REQUANTIZE ? !mode_wanted[mi] : mi > 0) continue;
        double ref_rate = NAN;
        for (size_t ki = 0; ki < kernel_count; ++ki) {
          const q8_kernel *k = &all[ki];
          if (k->op != ops[oi] || !isa_wanted[k->isa] || !q8_isa_usable_on(k->isa, q8_cpu(), NULL)) continue;
          qb_progress("%s %s %zu %s", q8_op_name(k->op), ops[oi] == Q8_OP_REQUANTIZE ? mode_name(modes[mi]) : "",
                      counts[ci], q8_isa_name(k->isa));
          qb_row *row = qb_rows_add(rows);
          if (!qb_elementwise_measure(k, counts[ci], modes[mi], method, row)) {
            --rows->count;
            all_ok = false;
            continue;
          }
          if (k->isa == Q8_ISA_REF) ref_rate = row->rate;
          row->speedup_vs_ref = row->rate / ref_rate;
          if ((row->checked && !row->check_ok) || (row->bitwise_checked && !row->bitwise_ok)) all_ok = false;
          qb_table_row(o, row);
        }
      }
    }
  }
  qb_progress_clear();
  return all_ok;
}

static void usage(FILE *f) {
  fputs("usage: qbench requant [--isa NAME[,NAME...]|all] [--op requantize|quantize|dequantize|all]\n"
        "                      [--mode gemmlowp|single|fp32|all] [--count N[,N...]]\n"
        "                      [--min-time S] [--quick] [--core N] [--cold] [--check] [--bitwise] [--repro]\n"
        "                      [--json FILE|-] [--csv FILE|-]\n\n"
        "Times the element-wise kernels of every usable ISA over `count` elements,\n"
        "single thread: requantize int32 -> int8 (gemmlowp, single or fp32 mode),\n"
        "quantize float -> int8, dequantize int8 -> float. Prints GB/s (bytes read plus\n"
        "written per second) against the read bandwidth, measured in the same run, of\n"
        "the level the stream lives in (it fits in half of L1, L2 or L3, else DRAM),\n"
        "and the speed-up over ref.\n\n"
        "  --count    elements per call (default: one size per level, L2 and DRAM)\n"
        "  --cold     rotate among copies spanning twice the last-level cache (DRAM)\n"
        "  --check    compare each output with ref byte for byte\n"
        "  --bitwise  run again and compare the bytes\n"
        "  other options as in qbench gemm\n\n"
        "Exit status: 0, 1 when --check or --bitwise found a difference, 2 bad arguments.\n", f);
}

int qb_cmd_requant(int argc, char **argv) {
  bool isa_wanted[Q8_ISA_COUNT] = {false}, op_wanted[Q8_OP_COUNT] = {false}, mode_wanted[3] = {false};
  bool any_isa = false, any_op = false, any_mode = false;
  qb_method method = {.min_time = 0.2};
  qb_outputs outputs;
  qb_outputs_init(&outputs);
  size_t counts[16], count_n = 0;
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; ++i) {
    const char *arg = argv[i];
    const bool has_value = i + 1 < argc;
    int used = qb_parse_method(argc, argv, &i, &method, "qbench requant");
    if (used == 0) used = qb_parse_outputs(argc, argv, &i, &outputs, "qbench requant");
    if (used < 0) rc = 2;
    if (used != 0) continue;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(arg, "--isa") == 0 && has_value) {
      rc = qb_parse_isa_list(argv[++i], isa_wanted, &any_isa, "qbench requant");
    } else if (strcmp(arg, "--op") == 0 && has_value) {
      const char *v = argv[++i];
      any_op = true;
      if (strcmp(v, "all") == 0) {
        op_wanted[Q8_OP_REQUANTIZE] = op_wanted[Q8_OP_QUANTIZE] = op_wanted[Q8_OP_DEQUANTIZE] = true;
      } else if (strcmp(v, "requantize") == 0) {
        op_wanted[Q8_OP_REQUANTIZE] = true;
      } else if (strcmp(v, "quantize") == 0) {
        op_wanted[Q8_OP_QUANTIZE] = true;
      } else if (strcmp(v, "dequantize") == 0) {
        op_wanted[Q8_OP_DEQUANTIZE] = true;
      } else {
        fprintf(stderr, "qbench requant: --op '%s': expected requantize, quantize, dequantize or all\n", v);
        rc = 2;
      }
    } else if (strcmp(arg, "--mode") == 0 && has_value) {
      const char *v = argv[++i];
      any_mode = true;
      if (strcmp(v, "all") == 0) mode_wanted[0] = mode_wanted[1] = mode_wanted[2] = true;
      else if (strcmp(v, "gemmlowp") == 0) mode_wanted[0] = true;
      else if (strcmp(v, "single") == 0) mode_wanted[1] = true;
      else if (strcmp(v, "fp32") == 0) mode_wanted[2] = true;
      else {
        fprintf(stderr, "qbench requant: --mode '%s': expected gemmlowp, single, fp32 or all\n", v);
        rc = 2;
      }
    } else if (strcmp(arg, "--count") == 0 && has_value) {
      const char *p = argv[++i];
      do {
        char *end;
        const unsigned long long v = strtoull(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v == 0 || v > (1ull << 30) || *p == '-') {
          fprintf(stderr, "qbench requant: --count '%s': expected element counts in 1..2^30\n", argv[i]);
          rc = 2;
          break;
        }
        if (count_n == sizeof counts / sizeof counts[0]) {
          fprintf(stderr, "qbench requant: --count: at most 16 sizes\n");
          rc = 2;
          break;
        }
        counts[count_n++] = (size_t)v;
        p = *end == ',' ? end + 1 : NULL;
      } while (p);
    } else {
      fprintf(stderr, "qbench requant: unknown or incomplete option '%s'\n(see qbench requant --help)\n", arg);
      rc = 2;
    }
  }
  if (rc != 0) return rc;
  if (!any_isa) {
    for (int k = 0; k < Q8_ISA_COUNT; ++k) isa_wanted[k] = q8_isa_usable_on((q8_isa)k, q8_cpu(), NULL);
  }
  if (!any_op) op_wanted[Q8_OP_REQUANTIZE] = op_wanted[Q8_OP_QUANTIZE] = op_wanted[Q8_OP_DEQUANTIZE] = true;
  if (!any_mode) mode_wanted[0] = mode_wanted[1] = mode_wanted[2] = true;
  if (count_n == 0) {
    /* One stream resident in L2 and one in DRAM (four times the L3). */
    const q8_cpu_info *cpu = q8_cpu();
    const size_t l2 = cpu->l2_bytes ? cpu->l2_bytes : (size_t)1 << 20;
    const size_t l3 = cpu->l3_bytes ? cpu->l3_bytes : (size_t)32 << 20;
    counts[count_n++] = l2 / 4 / 5;
    counts[count_n++] = l3 * 4 / 5;
  }
  if (!qb_pin_main_thread(&method, "qbench requant")) return 2;
  qb_note_method(method.min_time, method.cold, method.check, method.bitwise);
  qb_rows rows = {0};
  qb_table_header(&outputs);
  const bool ok = qb_elementwise_bench(isa_wanted, op_wanted, mode_wanted, counts, count_n, &method, &outputs, &rows);
  rc = qb_write_outputs(&outputs, rows.items, rows.count);
  qb_rows_free(&rows);
  return rc != 0 ? rc : ok ? 0 : 1;
}
