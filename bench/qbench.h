/* qbench internals. */
#ifndef Q8_BENCH_QBENCH_H
#define Q8_BENCH_QBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <stdint.h>

#include "dispatch/registry.h" /* q8_isa */
#include "q8/q8.h"

/* ---- timing (timing.c) ---- */
typedef struct qb_timing {
  double median_s, min_s, max_s; /* seconds per call */
  size_t samples, calls_per_sample;
} qb_timing;

double qb_now(void);
/* Warm-up, then samples of enough calls to last min_time / min_samples each,
 * until at least min_samples samples and min_time seconds: median/min/max. */
qb_timing qb_measure(void (*fn)(void *), void *ctx, double min_time, size_t min_samples);

/* Two workloads timed in alternating slots (a b b a a b ...), each slot an
 * untimed sample (the caches the other side evicted) then QB_PAIR_SAMPLES
 * samples as qb_measure takes them, until each side has min_time of samples
 * and >= 5 pairs. A ratio of one slot pair is b's median over a's: the host's
 * drift (seconds to minutes on a shared machine) moves both sides of a pair
 * alike, so the median ratio is steadier than a ratio of separate runs. */
typedef struct qb_paired {
  qb_timing a, b;                  /* over all samples of each side */
  double ratio, ratio_q1, ratio_q3; /* median and quartiles of the pair ratios b / a */
  size_t pairs;
} qb_paired;
qb_paired qb_measure_paired(void (*fn_a)(void *), void *ctx_a, void (*fn_b)(void *), void *ctx_b,
                            double min_time);

/* ---- JSON writer (json.c): commas and nesting handled for the caller ---- */
typedef struct qb_json {
  FILE *out;
  int depth;
  bool need_comma[32];
} qb_json;
void qb_json_begin_object(qb_json *j, const char *key);
void qb_json_end_object(qb_json *j);
void qb_json_begin_array(qb_json *j, const char *key);
void qb_json_end_array(qb_json *j);
void qb_json_string(qb_json *j, const char *key, const char *value);
void qb_json_number(qb_json *j, const char *key, double value);
void qb_json_int(qb_json *j, const char *key, long long value);
void qb_json_bool(qb_json *j, const char *key, bool value);
/* The "context" fields every result file shares (version, CPU, compiler). */
void qb_json_context_fields(qb_json *j);

/* ---- JSON reader (json_parse.c): a small DOM for results files ---- */
typedef enum qb_jtype { QB_JNULL, QB_JBOOL, QB_JNUMBER, QB_JSTRING, QB_JARRAY, QB_JOBJECT } qb_jtype;
typedef struct qb_jvalue {
  qb_jtype type;
  bool boolean;
  double number;
  char *string;              /* QB_JSTRING */
  char **keys;               /* QB_JOBJECT: count keys */
  struct qb_jvalue **items;  /* QB_JARRAY / QB_JOBJECT: count items */
  size_t count;
} qb_jvalue;
/* Parses a whole document; NULL on error with a message (line, column) in err. */
qb_jvalue *qb_json_parse(const char *text, char *err, size_t err_size);
qb_jvalue *qb_json_parse_file(const char *path, char *err, size_t err_size);
void qb_json_free(qb_jvalue *v);
/* Member of an object by key, or NULL. */
const qb_jvalue *qb_json_get(const qb_jvalue *object, const char *key);

/* ---- subcommands ---- */
int qb_cmd_info(int argc, char **argv);
int qb_cmd_suite(int argc, char **argv); /* the default run */
int qb_cmd_gemm(int argc, char **argv);
int qb_cmd_compare(int argc, char **argv);
int qb_cmd_conv(int argc, char **argv);
/* Probes (probe.c): read bandwidth of a stream of `bytes`, in bytes/s: loads
 * only, widest usable width (and AVX2), best rate of many short calls. */
double qb_read_bandwidth(size_t bytes, double min_time);
/* Probe harness: warm-up, then fn(ctx) (returning the work it did) timed call
 * by call for >= min_time and >= 20 calls; the best work per second. */
double qb_best_rate(double (*fn)(void *), void *ctx, double min_time);
/* Best-of-samples read bandwidth (bytes/s) of the stream sized for `level`
 * (1 = L1, 2 = L2, 3 = L3, 4 = DRAM; sizes from hwloc); 0 for another level.
 * L3 is the best of streams from 2x L2 up to qb_bandwidth_level_bytes(3)
 * (probe.c: the L3 a core reaches can be smaller than reported); bytes_out
 * gets the size measured (for L3, the best one). */
double qb_bandwidth_level(int level, double min_time, size_t *bytes_out);
/* The stream size of `level` (for L3, the largest the ladder tries). */
size_t qb_bandwidth_level_bytes(int level);
const char *qb_read_loads(void); /* load widths the probes use, e.g. "avx2" */
/* The level (1 = L1 .. 4 = DRAM) a stream of `bytes` lives in when it is read
 * over and over: the first whose half holds it. */
int qb_stream_level(size_t bytes);

/* ---- compute peak (peak.c) ---- */
/* Measured single-thread int8 peak of `isa` in GOPS (1 MAC = 2 ops), best
 * rate of many short calls; 0 when `isa` has no probe or cannot run here. */
double qb_peak_gops(q8_isa isa, double min_time);
/* Whether qb_peak_gops can measure `isa`; if not, *reason says why. */
bool qb_peak_usable(q8_isa isa, const char **reason);
double qb_clock_ghz(double min_time); /* dependent-add chain estimate, 0 off x86 */
int qb_cmd_peak(int argc, char **argv);

/* ---- rows and reports (report.c): one row type for every measuring
 * subcommand, written as a table, Google Benchmark JSON and CSV
 * (docs/results.md is the schema) ---- */
typedef struct qb_row {
  char name[192];
  char suite[24];    /* square, transformer, ..., elementwise, peak */
  char op[16];       /* gemm, requantize, quantize, dequantize, peak */
  char library[16];  /* q8, onednn, xnnpack */
  char isa[48];      /* forced q8 ISA, or what the peer dispatched */
  char kernel[96];
  char out[8];       /* gemm: s32, s8, u8 */
  char mode[12];     /* requantize: gemmlowp, single, fp32 */
  char peak_isa[24]; /* gemm: whose measured peak bounds the row */
  char repro[320];
  char unit[8];      /* GOPS or GB/s */
  size_t m, n, k, count, bytes, threads;
  qb_timing t;
  bool is_gemm;
  double rate;           /* GOPS (gemm) or GB/s */
  double peak;           /* same unit: measured peak GOPS or bandwidth GB/s */
  double weight_gbps;    /* gemm: packed weights per second */
  double bandwidth_gbps; /* bandwidth of the level holding the stream, NAN if none */
  int bandwidth_level;   /* 1..4 (4 = DRAM), 0 if none */
  double speedup_vs_ref; /* NAN if none */
  double ratio_vs_peer;  /* peer rows: q8's speed-up over the peer, the median slot pair; NAN otherwise */
  /* peer rows timed in pairs with q8's dispatched ISA (pairs > 0): the
   * quartiles of the pair speed-ups and q8's median time in those pairs. */
  double ratio_q1, ratio_q3;
  size_t pairs;
  qb_timing paired_q8;
  bool checked, check_ok, bitwise_checked, bitwise_ok;
  int max_abs_diff;      /* peer rows, checked */
  /* conv rows (is_gemm too: m, n, k are the GEMM-equivalent sizes) */
  bool is_conv;
  q8_conv_shape conv;
  size_t out_h, out_w;
  char in[8];            /* conv: input s8 or u8 */
  char algorithm[16];    /* conv: plan (q8_conv_run), im2col (+ q8_gemm_run), peer */
} qb_row;
void qb_row_init(qb_row *row);
struct qb_peer_result;
/* A peer row's ratio, quartiles, pairs and q8 timing from a paired result
 * (nothing when it was not paired). */
void qb_row_set_pairs(qb_row *row, const struct qb_peer_result *result);
const char *qb_level_name(int level); /* "L1".."DRAM" */

/* What the run measured besides rows, for the JSON context. */
void qb_note_peak(const char *isa, double gops);
void qb_note_bandwidth(int level, double gbps);
/* Read bandwidth of `level` (1..4) in GB/s, measured the first time the run
 * asks (and noted), so every row and the context share one figure per level. */
double qb_run_bandwidth(int level, double min_time);
void qb_note_peer(const char *name, const char *version, const char *isa);
void qb_note_method(double min_time, bool cold, bool checked, bool bitwise);

/* Where a subcommand's output goes: --json FILE|- and --csv FILE. With
 * --json -, the table goes to stderr. */
typedef struct qb_outputs {
  const char *json_path, *csv_path;
  bool repro;   /* print each row's reproducer under it */
  FILE *table;  /* stdout, or stderr when JSON goes to stdout */
} qb_outputs;
void qb_outputs_init(qb_outputs *o);
void qb_table_header(const qb_outputs *o);
void qb_table_row(const qb_outputs *o, const qb_row *row);
void qb_write_json(FILE *f, const qb_row *rows, size_t n);
/* The same, with `extra` adding members to the top-level object. */
void qb_write_json_extra(FILE *f, const qb_row *rows, size_t n, void (*extra)(qb_json *, void *), void *ctx);
void qb_write_csv(FILE *f, const qb_row *rows, size_t n);
/* Writes --json/--csv; 0, or 1 with a message when a file cannot be written. */
int qb_write_outputs(const qb_outputs *o, const qb_row *rows, size_t n);
int qb_write_json_file(const char *path, const qb_row *rows, size_t n);

/* A growing array of rows. */
typedef struct qb_rows {
  qb_row *items;
  size_t count, capacity;
} qb_rows;
qb_row *qb_rows_add(qb_rows *rows);
void qb_rows_free(qb_rows *rows);

/* Progress on stderr, only when stderr is a terminal: one line, rewritten. */
void qb_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void qb_progress_clear(void);

/* ---- measurement method shared by every subcommand ---- */
typedef struct qb_method {
  double min_time; /* --min-time, seconds of samples per row */
  bool check;      /* --check: compare each timed output with ref */
  bool bitwise;    /* --bitwise: run again and compare the bytes */
  bool cold;       /* --cold: rotate among copies bigger than the last cache */
  int core;        /* --core: the physical core the main thread runs on (default 0) */
} qb_method;
/* Pins the main thread to m->core (the pool's workers to the cores after it)
 * and records it for the JSON context; false with a message naming prefix
 * when the core does not exist or the pin fails. */
bool qb_pin_main_thread(const qb_method *m, const char *prefix);
/* Parses one of the method options at argv[*i] (advancing *i past its value);
 * 1 if it was one, 0 if not, -1 (message printed, prefix names the command)
 * for a bad value. */
int qb_parse_method(int argc, char **argv, int *i, qb_method *m, const char *prefix);
/* Help lines of --repro, --json, --csv and the exit status, shared by the
 * measuring subcommands' --help. */
extern const char qb_outputs_help[];
/* "qbench COMMAND: <fmt with arg>" and a pointer to --help on stderr; 2. */
int qb_usage_error(const char *command, const char *fmt, const char *arg);
/* Parses --json/--csv/--repro likewise. */
int qb_parse_outputs(int argc, char **argv, int *i, qb_outputs *o, const char *prefix);
/* Number of input copies to rotate for `bytes` of inputs per call: 1 unless
 * cold, then enough to span twice the last-level cache (capped). */
size_t qb_cold_copies(const qb_method *m, size_t bytes);

/* ---- shapes and suites (shapes.c) ---- */
typedef struct qb_shape {
  size_t m, n, k;
  const char *suite;
} qb_shape;
typedef struct qb_shapes {
  qb_shape *items;
  size_t count, capacity;
} qb_shapes;
/* Appends suite `name` (square, transformer, resnet50, mobilenetv2, small,
 * all, default); false for an unknown name. */
bool qb_shapes_add_suite(qb_shapes *s, const char *name);
/* "MxNxK[,MxNxK...]"; false with a message in err. */
bool qb_shapes_add_list(qb_shapes *s, const char *list, const char *suite, char *err, size_t err_size);
/* One MxNxK per line; '#' comments and blank lines skipped; false with the
 * file, line and problem in err. */
bool qb_shapes_add_file(qb_shapes *s, const char *path, char *err, size_t err_size);
void qb_shapes_free(qb_shapes *s);
extern const char *const qb_suite_names[]; /* NULL-terminated */

/* ---- peers (peers.c): the same GEMM through other int8 libraries ---- */
typedef enum qb_peer { QB_PEER_ONEDNN, QB_PEER_XNNPACK, QB_PEER_COUNT } qb_peer;
const char *qb_peer_name(qb_peer peer); /* "onednn", "xnnpack" */
/* Whether this build found the peer at configure time; if not, *reason says why. */
bool qb_peer_built(qb_peer peer, const char **reason);
/* The peer's version string ("2.6.3"), "" when not built. */
const char *qb_peer_version(qb_peer peer);
/* How a peer is timed: min_time of samples, and when `partner` is set, in
 * alternating slots with it (qb_measure_paired; q8's run of the same case). */
typedef struct qb_peer_timing {
  double min_time;
  void (*partner)(void *);
  void *partner_ctx;
} qb_peer_timing;
typedef struct qb_peer_result {
  qb_timing t;
  /* Paired (pairs > 0): the partner's timing and the pair ratios peer time /
   * partner time (the partner's speed-up), median and quartiles. */
  qb_timing partner_t;
  double ratio, ratio_q1, ratio_q3;
  size_t pairs;
  char isa[48];      /* what the peer says it dispatched to, e.g. "avx512_core_vnni" */
  char impl[96];     /* the peer's implementation name, e.g. "brg:avx512_core_vnni" */
  bool checked;
  int max_abs_diff;  /* checked: largest |peer - q8 ref| over the output */
} qb_peer_result;
/* Largest |got - want| over `count` elements of `out`. */
int qb_max_abs_diff(const void *got, const void *want, size_t count, q8_dtype out);
/* Times the peer's fastest int8 path for the GEMM qb_gemm_measure times:
 * C[m][n] = requant(sum_k (A[m][k] - 3) * W[n][k] + bias[n]) with A int8
 * (zero point 3, scale 0.02), W int8 per-output-channel scales
 * 0.001 + 0.0001 * (j % 7), bias (j % 1000) - 500, out s32/s8/u8 with scale
 * 0.5 and zero point -1 (u8: 127), same data (qb_gemm_data_init).
 * Operator creation and weight packing are not timed. `threads` threads.
 * false with the reason in err (e.g. "xnnpack has no int32-output GEMM")
 * when the peer cannot run this case. */
bool qb_peer_gemm_measure(qb_peer peer, const size_t shape[3], size_t threads, q8_dtype out,
                          const qb_peer_timing *timing, bool check, qb_peer_result *result, char *err,
                          size_t err_size);

/* The inputs every GEMM row uses (ours and the peers'), deterministic. */
typedef struct qb_gemm_data {
  size_t m, n, k;
  int8_t *a, *w;      /* A[m][k], W[n][k] */
  float *w_scales;    /* [n] */
  int32_t *bias;      /* [n] */
  int32_t a_zero_point;
  float a_scale, out_scale;
  int32_t out_zero_point;
} qb_gemm_data;
void qb_gemm_data_init(qb_gemm_data *d, size_t m, size_t n, size_t k, q8_dtype out);
void qb_gemm_data_free(qb_gemm_data *d);
/* The plan description for `d` (borrowing its arrays). */
q8_gemm_desc qb_gemm_desc(const qb_gemm_data *d, q8_dtype out, size_t threads);
/* The reference output (q8 with Q8_ISA=ref) into c (m*n elements of out). */
bool qb_gemm_reference(const qb_gemm_data *d, q8_dtype out, void *c);

/* ---- GEMM measurement (gemm.c): `qbench gemm` and the default run ---- */
/* Times q8_gemm_run with `isa` forced (packing untimed) into row; false with a
 * message on stderr if the plan cannot be made. */
bool qb_gemm_measure(q8_isa isa, const qb_shape *shape, size_t threads, q8_dtype out,
                     const qb_method *method, qb_row *row);
/* Times `peer` on the same GEMM into row (ratio_vs_peer left NAN); false with
 * the reason in err. */
bool qb_gemm_measure_peer(qb_peer peer, const qb_shape *shape, size_t threads, q8_dtype out,
                          const qb_method *method, qb_row *row, char *err, size_t err_size);
/* The ISA automatic dispatch uses for GEMM on this machine. */
q8_isa qb_dispatched_isa(void);
/* Measured peak GOPS of `isa` on `threads` cores, cached for the run. */
double qb_peak_for(q8_isa isa, size_t threads, double min_time);
/* The ISA whose multiply-add bounds a row of `isa` (best ISA for ref/hwy). */
q8_isa qb_peak_isa_for(q8_isa isa);

/* What a GEMM run covers: --isa, --peers/--peer, --threads, --shape,
 * --suite, --shapes. */
typedef struct qb_selection {
  bool isa_wanted[Q8_ISA_COUNT], peer_wanted[QB_PEER_COUNT], any_isa;
  qb_shapes shapes;
  size_t threads;
} qb_selection;
/* Parses one selection option at argv[*i] like qb_parse_method. */
int qb_parse_selection(int argc, char **argv, int *i, qb_selection *sel, const char *prefix);
/* --isa LIST (names, all, none): 0, or 2 with a message on stderr. */
int qb_parse_isa_list(const char *list, bool wanted[Q8_ISA_COUNT], bool *any, const char *prefix);
/* Defaults: every usable ISA, q8's dispatched ISA when peers run (the q8
 * side of q8/peer), shapes of `default_suite` (a suite or MxNxK list). */
void qb_selection_finish(qb_selection *sel, const char *default_suite);
/* Every shape x wanted ISA, then wanted peer, into rows, each printed as it
 * completes; speedup_vs_ref and ratio_vs_peer filled. false when a case
 * failed (plan, --check, --bitwise). */
bool qb_gemm_bench(const qb_selection *sel, q8_dtype out, const qb_method *method, const qb_outputs *o,
                   qb_rows *rows);

/* ---- element-wise kernels (requant.c) ---- */
/* Times kernel `k` over `count` elements (mode for requantize) into row. */
bool qb_elementwise_measure(const q8_kernel *k, size_t count, q8_requant_mode mode,
                            const qb_method *method, qb_row *row);
/* Every wanted op (and requantize mode: gemmlowp, single, fp32) x count x
 * usable kernel of a wanted ISA, into rows. false when a case failed. */
bool qb_elementwise_bench(const bool isa_wanted[Q8_ISA_COUNT], const bool op_wanted[Q8_OP_COUNT],
                          const bool mode_wanted[3], const size_t *counts, size_t count_n,
                          const qb_method *method, const qb_outputs *o, qb_rows *rows);
const char *qb_out_name(q8_dtype out);

/* ---- convolution (shapes.c: specs and suites; conv.c: `qbench conv`;
 * peers_conv.c: the same convolution through the peers) ---- */
typedef struct qb_conv_spec {
  q8_conv_shape shape;
  const char *suite; /* resnet50, mobilenetv2, efficientnet_b0, cli */
} qb_conv_spec;
/* One "[SUITE:][Nx]HxWxC:OC:KHxKW[:sS][:pP|:pT,L,B,R][:dD][:gG|:dw]"; false with
 * a message naming the bad part in err. */
bool qb_conv_spec_parse(const char *text, const char *suite, qb_conv_spec *spec, char *err, size_t err_size);
/* "SPEC[,SPEC...]" (a comma inside :pT,L,B,R does not split) appended to
 * *specs (realloc'd); false with a message in err. */
bool qb_conv_specs_add_list(qb_conv_spec **specs, size_t *count, const char *list, const char *suite, char *err,
                            size_t err_size);
/* Appends suite `name` (resnet50, mobilenetv2, efficientnet_b0); false for an
 * unknown name. */
bool qb_conv_specs_add_suite(qb_conv_spec **specs, size_t *count, const char *name);
/* The canonical spec of a shape (what row names carry). */
void qb_conv_spec_format(const q8_conv_shape *s, char *buf, size_t size);
/* Depthwise: one input channel per group. */
bool qb_conv_is_depthwise(const q8_conv_shape *s);

/* The inputs every conv row uses (q8's and the peers'), deterministic: NHWC
 * input, int8 with zero point 3 or uint8 with zero point 0 (post-ReLU
 * activations), scale 0.02; OHWI int8 weights with
 * per-output-channel scales 0.001 + 0.0001 * (j % 7), bias (j % 1000) - 500,
 * out scale 0.5 and zero point -1 (u8: 127), fp32 requantization. */
typedef struct qb_conv_data {
  q8_conv_shape shape;
  size_t out_h, out_w;
  size_t m, n, k; /* GEMM-equivalent: out pixels, out channels, KH*KW*C/groups */
  q8_dtype in_dtype;   /* Q8_INT8 or Q8_UINT8 */
  void *input;         /* in_dtype, in_offset bytes past a 64-byte boundary */
  void *input_block;   /* what input was allocated as (freed) */
  size_t in_offset;
  int8_t *weights;
  float *w_scales;
  int32_t *bias;
  int32_t in_zero_point, out_zero_point;
  float in_scale, out_scale;
} qb_conv_data;
/* The input starts in_offset (< 64) bytes past a 64-byte boundary: 0 as
 * inference runtimes align tensors (ONNX Runtime, PyTorch and TFLite use 64
 * bytes), 16 where a large malloc puts it (see qbench conv --in-offset). */
bool qb_conv_data_init(qb_conv_data *d, const q8_conv_shape *shape, q8_dtype in, q8_dtype out,
                       size_t in_offset);
void qb_conv_data_free(qb_conv_data *d);
size_t qb_conv_input_count(const qb_conv_data *d);
size_t qb_conv_output_count(const qb_conv_data *d);
/* Times `peer` running the convolution of `d` into y (output_count elements of
 * out); creation, weight reorders and packing untimed. false with the reason
 * in err when the peer cannot run this case. */
bool qb_peer_conv_measure(qb_peer peer, const qb_conv_data *d, size_t threads, q8_dtype out,
                          const qb_peer_timing *timing,
                          void *y, qb_peer_result *result, char *err, size_t err_size);

/* ---- plot (plot.c) ---- */
int qb_cmd_plot(int argc, char **argv);
/* ---- requant (requant.c): standalone element-wise kernels in GB/s ---- */
int qb_cmd_requant(int argc, char **argv);
/* `qbench accuracy` (accuracy.c): float vs int8 on a dataset. */
int qb_cmd_accuracy(int argc, char **argv);

#endif
