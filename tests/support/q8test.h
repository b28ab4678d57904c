/* Shared test helpers: a seeded RNG whose seed is printed, and buffers with
 * guard bytes on both sides to catch out-of-bounds writes. */
#ifndef Q8_TEST_SUPPORT_H
#define Q8_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"

/* Seed from Q8_TEST_SEED (decimal or 0x hex) or a fixed default; the seed in
 * use is printed once per process so a failure can be reproduced. */
uint64_t q8t_seed(void);
typedef struct q8t_rng { uint64_t state; } q8t_rng;
q8t_rng q8t_rng_new(uint64_t stream);
uint64_t q8t_next(q8t_rng *r);
int32_t q8t_range(q8t_rng *r, int32_t lo, int32_t hi); /* inclusive */
float q8t_uniform(q8t_rng *r, float lo, float hi);
void q8t_fill_bytes(q8t_rng *r, void *dst, size_t n);

#define Q8T_GUARD 64
#define Q8T_GUARD_BYTE 0xA5
/* A buffer of `bytes` usable bytes at `offset` (0..15) past a 64-byte boundary,
 * with Q8T_GUARD guard bytes before and after. */
typedef struct q8t_buf {
  unsigned char *base;
  unsigned char *data;
  size_t bytes;
} q8t_buf;
q8t_buf q8t_buf_new(size_t bytes, size_t offset);
/* True when no guard byte was touched. */
bool q8t_buf_guards_ok(const q8t_buf *b);
void q8t_buf_free(q8t_buf *b);

/* `bytes` bytes (>= 1) that end exactly where an inaccessible page begins:
 * a read of one byte past them faults, so a kernel that reads past its input
 * crashes the test instead of passing by luck. */
typedef struct q8t_page_end {
  unsigned char *data;
  void *map;
  size_t map_bytes;
} q8t_page_end;
q8t_page_end q8t_page_end_new(size_t bytes);
void q8t_page_end_free(q8t_page_end *b);

/* Runs `$Q8_QBENCH args` (ctest sets Q8_QBENCH), returns its stdout (and
 * stderr with merge_stderr; else stderr is dropped), malloc'd, and its exit
 * status in *exit_code. NULL if Q8_QBENCH is unset or the command cannot run. */
char *q8t_run_qbench(const char *args, bool merge_stderr, int *exit_code);
/* The same, expecting exit status 0: stdout, or NULL with *failure (malloc'd:
 * "exit N" and stdout with stderr, or why it could not run). */
char *q8t_run_qbench_ok(const char *args, char **failure);

/* A directory of this test process's own under /tmp (q8-<tag>-XXXXXX),
 * created on first use; NULL if it cannot be. q8t_temp_path joins a file
 * name to it (8 rotating buffers). Remove it from a suite's .fini, which
 * runs after failed tests too (atexit does not). */
const char *q8t_temp_dir(const char *tag);
const char *q8t_temp_path(const char *name);
void q8t_temp_dir_remove(void);

/* libonnx-testdata's data folder: $Q8_ONNX_TESTDATA or Debian's path. */
const char *q8t_onnx_testdata_dir(void);
/* A file of the source tree (e.g. "models/fashion_mnist_cnn.onnx") under
 * $Q8_SOURCE_DIR, which ctest sets, else the current directory (4 rotating
 * buffers). */
const char *q8t_source_path(const char *relative);
/* q8's Fashion-MNIST model (models/fashion_mnist_cnn.onnx) loaded, or NULL
 * with q8_error_detail() saying why. */
struct q8_graph *q8t_load_fashion_model(void);
bool q8t_is_dir(const char *path);
bool q8t_is_file(const char *path);
/* qsort comparator for an array of char * (names). */
int q8t_compare_names(const void *a, const void *b);

/* Convolution test grids: a named shape; weight counts and the OHWI -> OIHW
 * (ONNX) transpose of per-group weights, malloc'd. */
typedef struct q8t_conv_case {
  const char *name;
  q8_conv_shape shape;
} q8t_conv_case;
size_t q8t_conv_group_in(const q8_conv_shape *s);
size_t q8t_conv_weight_count(const q8_conv_shape *s);
int8_t *q8t_conv_to_oihw(const q8_conv_shape *s, const int8_t *ohwi);
/* What a plan of d must compute: q8_conv_ref on `input` with d's OHWI
 * weights and the requantization parameters q8_requant_params_init derives
 * from d (the plan's). out: the whole output. Returns the first failure. */
q8_status q8t_conv_reference(const q8_conv_desc *d, const void *input, void *out);

#endif
