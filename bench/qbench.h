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
/* Probes (probe.c): read bandwidth of a stream of `bytes`, in bytes/s: loads
 * only, widest usable width (and AVX2), best rate of many short calls. */
double qb_read_bandwidth(size_t bytes, double min_time);
/* Probe harness: warm-up, then fn(ctx) (returning the work it did) timed call
 * by call for >= min_time and >= 20 calls; the best work per second. */
double qb_best_rate(double (*fn)(void *), void *ctx, double min_time);
/* Best-of-samples read bandwidth (bytes/s) of the stream sized for `level`
 * (1 = L1, 2 = L2, 3 = L3, 4 = DRAM; sizes from hwloc); 0 for another level. */
double qb_bandwidth_level(int level, double min_time, size_t *bytes_out);
size_t qb_bandwidth_level_bytes(int level);
const char *qb_read_loads(void); /* load widths the probes use, e.g. "avx2" */

/* ---- compute peak (peak.c) ---- */
/* Measured single-thread int8 peak of `isa` in GOPS (1 MAC = 2 ops), best
 * rate of many short calls; 0 when `isa` has no probe or cannot run here. */
double qb_peak_gops(q8_isa isa, double min_time);
/* Whether qb_peak_gops can measure `isa`; if not, *reason says why. */
bool qb_peak_usable(q8_isa isa, const char **reason);
double qb_clock_ghz(double min_time); /* dependent-add chain estimate, 0 off x86 */
int qb_cmd_peak(int argc, char **argv);

/* ---- GEMM measurement (gemm.c): `qbench gemm` and the default run ---- */
typedef struct qb_gemm_row {
  char name[128];
  q8_isa isa, peak_isa;   /* peak_isa: whose measured peak bounds the row */
  char kernel[96];
  size_t m, n, k, threads;
  q8_dtype out;
  qb_timing t;
  double gops, peak;      /* GOPS; peak GOPS of peak_isa on `threads` cores */
  double weight_gbps;     /* packed-weight bytes per second */
  double bandwidth;       /* GB/s of the level holding the weights (M <= 16), else NAN */
  int level;              /* 2, 3 or 4 (DRAM) */
  bool checked, check_ok;
} qb_gemm_row;
/* Times q8_gemm_run with `isa` forced (packing untimed); false with a message
 * on stderr if the plan cannot be made. */
bool qb_gemm_measure(q8_isa isa, const size_t shape[3], size_t threads, q8_dtype out,
                     double min_time, bool check, qb_gemm_row *row);
const char *qb_out_name(q8_dtype out);

/* ---- peers (peers.c): the same GEMM through other int8 libraries ---- */
typedef enum qb_peer { QB_PEER_ONEDNN, QB_PEER_XNNPACK, QB_PEER_COUNT } qb_peer;
const char *qb_peer_name(qb_peer peer); /* "onednn", "xnnpack" */
/* Whether this build found the peer at configure time; if not, *reason says why. */
bool qb_peer_built(qb_peer peer, const char **reason);
/* The peer's version string ("2.6.3"), "" when not built. */
const char *qb_peer_version(qb_peer peer);
typedef struct qb_peer_result {
  qb_timing t;
  char isa[48];      /* what the peer says it dispatched to, e.g. "avx512_core_vnni" */
  char impl[96];     /* the peer's implementation name, e.g. "brg:avx512_core_vnni" */
  bool checked;
  int max_abs_diff;  /* checked: largest |peer - q8 ref| over the output */
} qb_peer_result;
/* Times the peer's fastest int8 path for the GEMM qb_gemm_measure times:
 * C[m][n] = requant(sum_k (A[m][k] - 3) * W[n][k] + bias[n]) with A int8
 * (zero point 3, scale 0.02), W int8 per-output-channel scales
 * 0.001 + 0.0001 * (j % 7), bias (j % 1000) - 500, out s32/s8/u8 with scale
 * 0.5 and zero point -1 (u8: 127), same data generator (qb_gemm_fill).
 * Operator creation and weight packing are not timed. `threads` threads.
 * false with the reason in err (e.g. "xnnpack has no int32-output GEMM")
 * when the peer cannot run this case. */
bool qb_peer_gemm_measure(qb_peer peer, const size_t shape[3], size_t threads, q8_dtype out,
                          double min_time, bool check, qb_peer_result *result, char *err,
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

/* ---- plot (plot.c) ---- */
int qb_cmd_plot(int argc, char **argv);
/* ---- requant (requant.c): standalone element-wise kernels in GB/s ---- */
int qb_cmd_requant(int argc, char **argv);

#endif
