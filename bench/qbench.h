/* qbench internals. */
#ifndef Q8_BENCH_QBENCH_H
#define Q8_BENCH_QBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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
/* Probes (probe.c): read bandwidth of a stream of `bytes`, in bytes/s. */
double qb_read_bandwidth(size_t bytes, double min_time);

#endif
