/* A persistent worker pool for the parallel GEMM/conv drivers (not installed). */
#ifndef Q8_DISPATCH_THREADPOOL_H
#define Q8_DISPATCH_THREADPOOL_H

#include <stdbool.h>
#include <stddef.h>

/* Runs task(ctx, i) for i in [0, tasks) on up to `threads` threads (the caller
 * is one of them) and returns when all are done. Workers are created on first
 * use and pinned one per physical core (hwloc), core 0 left to the caller.
 * Calls from several threads at once are serialised. */
void q8_parallel_for(size_t threads, size_t tasks, void (*task)(void *ctx, size_t i), void *ctx);
/* How a plan divides an m_tiles x n_tiles grid of output tiles between
 * `threads`: whole row tiles when there are enough for every thread (each
 * thread then streams all weights from its own cache), else whole column
 * tiles, so that batch-1 work divides the weight stream. `units` tiles along
 * that dimension go to `tasks` balanced contiguous ranges, a few per thread,
 * claimed dynamically: a thread slowed by a neighbour takes fewer. */
typedef struct q8_tile_split {
  bool rows;
  size_t units;
  size_t tasks;
} q8_tile_split;
q8_tile_split q8_split_tiles(size_t threads, size_t m_tiles, size_t n_tiles);
/* Task i's range [first, last) of the split's units. */
void q8_split_task_range(const q8_tile_split *split, size_t i, size_t *first, size_t *last);
/* Default thread count: one per physical core. */
size_t q8_default_threads(void);
/* Pins the calling thread to physical core `core` (modulo the core count;
 * for qbench); 0 on success. Pool workers started later go to the cores
 * after it. */
int q8_pin_current_thread(int core);

#endif
