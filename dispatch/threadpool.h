/* A persistent worker pool for the parallel GEMM/conv drivers (not installed). */
#ifndef Q8_DISPATCH_THREADPOOL_H
#define Q8_DISPATCH_THREADPOOL_H

#include <stddef.h>

/* Runs task(ctx, i) for i in [0, tasks) on up to `threads` threads (the caller
 * is one of them) and returns when all are done. Workers are created on first
 * use and pinned one per physical core (hwloc), core 0 left to the caller.
 * Calls from several threads at once are serialised. */
void q8_parallel_for(size_t threads, size_t tasks, void (*task)(void *ctx, size_t i), void *ctx);
/* Default thread count: one per physical core. */
size_t q8_default_threads(void);
/* Pins the calling thread to physical core `core` (for qbench); 0 on success. */
int q8_pin_current_thread(int core);

#endif
