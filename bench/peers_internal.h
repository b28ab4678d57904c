/* What bench/peers.c (GEMM) and bench/peers_conv.c (convolution) share to
 * drive oneDNN and XNNPACK the same way. */
#ifndef Q8_BENCH_PEERS_INTERNAL_H
#define Q8_BENCH_PEERS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "bench/qbench.h"

#ifdef __linux__
#include <sched.h>
#endif
#if QB_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#endif
#if QB_HAVE_XNNPACK
#include <pthreadpool.h>
#include <xnnpack.h>
#endif

/* Times fn(ctx), paired with timing->partner when set, into result. */
void qb_peer_time(void (*fn)(void *), void *ctx, const qb_peer_timing *timing, qb_peer_result *result);

/* Writes the message into err; returns false, for `return qb_peer_fail(...)`. */
__attribute__((format(printf, 3, 4))) bool qb_peer_fail(char *err, size_t err_size, const char *fmt, ...);

/* While a peer creates and runs its worker threads the calling thread is
 * unpinned (workers inherit its affinity); restored afterwards. */
typedef struct qb_affinity_guard {
#ifdef __linux__
  cpu_set_t saved;
  bool restore;
#else
  int unused;
#endif
} qb_affinity_guard;
void qb_unpin_for_workers(qb_affinity_guard *g, size_t threads);
void qb_restore_affinity(qb_affinity_guard *g);

#if QB_HAVE_ONEDNN
/* A oneDNN call inside a function with `bool ok`, `err`, `err_size` and a
 * `done:` cleanup label: on failure, the message and the jump. */
#define DNNL_TRY(call)                                                                       \
  do {                                                                                       \
    const dnnl_status_t s_ = (call);                                                         \
    if (s_ != dnnl_success) {                                                                \
      ok = qb_peer_fail(err, err_size, "onednn: %s failed: %s", #call, dnnl_status2str(s_)); \
      goto done;                                                                             \
    }                                                                                        \
  } while (0)
/* A oneDNN run's surroundings: the process's engine and stream, oneDNN's
 * OpenMP thread count (which its implementation choice reads) and the
 * calling thread unpinned for the workers; qb_dnnl_end restores both. */
typedef struct qb_dnnl_env {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  int previous_threads;
  qb_affinity_guard affinity;
} qb_dnnl_env;
bool qb_dnnl_begin(size_t threads, qb_dnnl_env *env, char *err, size_t err_size);
void qb_dnnl_end(qb_dnnl_env *env);
/* Requantization into attr: per-output-channel (dimension 1) output scales,
 * then the dst zero point as an eltwise linear post-op (x + zero_point),
 * which oneDNN applies in float before its rounding. */
dnnl_status_t qb_dnnl_requant_attr(dnnl_primitive_attr_t attr, const float *scales, size_t n, int32_t zero_point);
/* Everything after the primitive descriptor, the same for every oneDNN peer:
 * the weights reordered from w_user_md into pd's layout (untimed), one checked
 * execute, the timed executes (src, weights, bias, dst), impl and ISA. */
bool qb_dnnl_run(const qb_dnnl_env *env, const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *w_user_md,
                 const void *weights, const void *src, const int32_t *bias, void *dst, const qb_peer_timing *timing,
                 qb_peer_result *result, char *err, size_t err_size);
/* The implementation oneDNN picked and its ISA, into result->impl/isa. */
dnnl_status_t qb_dnnl_describe(const_dnnl_primitive_desc_t pd, qb_peer_result *result);
#endif

#if QB_HAVE_XNNPACK
/* xnn_initialize once per process; its status. */
enum xnn_status qb_xnn_init(void);
/* An operator run, with the sign flip that turns XNNPACK's s8 into u8. */
typedef struct qb_xnn_run {
  xnn_operator_t op;
  pthreadpool_t pool;
  unsigned char *c;
  size_t bytes;
  bool flip; /* u8 from s8 */
} qb_xnn_run;
void qb_xnn_execute(void *run);
void qb_flip_sign_bits(unsigned char *c, size_t bytes);
/* The ISA and qc8 GEMM kernel XNNPACK picks on this CPU for m rows. */
void qb_xnn_describe(size_t m, qb_peer_result *result);
#endif

#endif
