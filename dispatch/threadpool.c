/* Persistent worker pool. Tasks are claimed through an atomic counter, so the
 * split of work never depends on timing in a way that changes results: each
 * output element is computed by exactly one task. */
#include "dispatch/threadpool.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dispatch/cpu.h"

#define Q8_MAX_THREADS 256

typedef struct pool {
  pthread_mutex_t lock;   /* serialises q8_parallel_for callers */
  pthread_mutex_t mutex;  /* guards the fields below */
  pthread_cond_t wake, done;
  size_t workers;         /* started worker threads */
  size_t active;          /* workers taking part in the current job */
  unsigned long generation;
  size_t running;         /* workers still in the current job */
  void (*task)(void *, size_t);
  void *ctx;
  size_t tasks;
  atomic_size_t next;
} pool;

static pool the_pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .mutex = PTHREAD_MUTEX_INITIALIZER,
                        .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};
static hwloc_topology_t topology;
static bool topology_ready;
static pthread_once_t topology_once = PTHREAD_ONCE_INIT;

static void load_topology(void) {
  if (hwloc_topology_init(&topology) == 0 && hwloc_topology_load(topology) == 0) {
    topology_ready = true;
  }
}

int q8_pin_current_thread(int core) {
  pthread_once(&topology_once, load_topology);
  if (!topology_ready) return -1;
  const int cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
  if (cores <= 0) return -1;
  hwloc_obj_t obj = hwloc_get_obj_by_type(topology, HWLOC_OBJ_CORE, (unsigned)(core % cores));
  if (obj == NULL || obj->cpuset == NULL) return -1;
  /* One PU of the core: SMT siblings would share its execution units. */
  hwloc_bitmap_t set = hwloc_bitmap_dup(obj->cpuset);
  hwloc_bitmap_singlify(set);
  const int rc = hwloc_set_cpubind(topology, set, HWLOC_CPUBIND_THREAD);
  hwloc_bitmap_free(set);
  return rc;
}

size_t q8_default_threads(void) {
  const int cores = q8_cpu()->cores;
  return cores > 0 ? (size_t)cores : 1;
}

/* After fork() the child has only the forking thread: forget the workers
 * (and any lock state) so the next parallel call starts new ones instead of
 * waiting forever for threads that do not exist. */
static void reset_after_fork(void) {
  pool *p = &the_pool;
  pthread_mutex_init(&p->lock, NULL);
  pthread_mutex_init(&p->mutex, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  p->workers = p->active = p->running = 0;
  p->generation = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void install_atfork(void) { pthread_atfork(NULL, NULL, reset_after_fork); }

static void run_tasks(pool *p) {
  for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->tasks;) p->task(p->ctx, i);
}

typedef struct worker_arg {
  size_t index;
} worker_arg;

static void *worker_main(void *arg) {
  const size_t index = ((worker_arg *)arg)->index;
  free(arg);
  q8_pin_current_thread((int)index); /* best effort: unpinned still works */
  pool *p = &the_pool;
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mutex);
  for (;;) {
    while (p->generation == seen) pthread_cond_wait(&p->wake, &p->mutex);
    seen = p->generation;
    const bool take_part = index <= p->active;
    pthread_mutex_unlock(&p->mutex);
    if (take_part) run_tasks(p);
    pthread_mutex_lock(&p->mutex);
    if (take_part && --p->running == 0) pthread_cond_signal(&p->done);
  }
  return NULL;
}

static size_t ensure_workers(pool *p, size_t wanted) {
  while (p->workers < wanted) {
    worker_arg *arg = malloc(sizeof *arg);
    pthread_t thread;
    if (arg == NULL) break;
    arg->index = p->workers + 1;
    pthread_mutex_lock(&p->mutex);
    const int rc = pthread_create(&thread, NULL, worker_main, arg);
    pthread_mutex_unlock(&p->mutex);
    if (rc != 0) {
      free(arg);
      break;
    }
    pthread_detach(thread);
    ++p->workers;
  }
  return p->workers;
}

void q8_parallel_for(size_t threads, size_t tasks, void (*task)(void *ctx, size_t i), void *ctx) {
  if (threads > Q8_MAX_THREADS) threads = Q8_MAX_THREADS;
  if (threads > tasks) threads = tasks;
  if (threads <= 1) {
    for (size_t i = 0; i < tasks; ++i) task(ctx, i);
    return;
  }
  pool *p = &the_pool;
  pthread_once(&atfork_once, install_atfork);
  pthread_mutex_lock(&p->lock);
  size_t helpers = ensure_workers(p, threads - 1);
  if (helpers > threads - 1) helpers = threads - 1; /* earlier calls may have started more */
  pthread_mutex_lock(&p->mutex);
  p->task = task;
  p->ctx = ctx;
  p->tasks = tasks;
  atomic_store(&p->next, 0);
  p->active = helpers;
  p->running = helpers;
  ++p->generation;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mutex);
  run_tasks(p); /* the caller works too */
  pthread_mutex_lock(&p->mutex);
  while (p->running > 0) pthread_cond_wait(&p->done, &p->mutex);
  pthread_mutex_unlock(&p->mutex);
  pthread_mutex_unlock(&p->lock);
}

q8_tile_split q8_split_tiles(size_t threads, size_t m_tiles, size_t n_tiles) {
  q8_tile_split split;
  split.rows = m_tiles >= 2 * threads || m_tiles >= n_tiles;
  split.units = split.rows ? m_tiles : n_tiles;
  const size_t wanted = threads > 1 ? 4 * threads : 1;
  split.tasks = wanted < split.units ? wanted : split.units;
  return split;
}

void q8_split_task_range(const q8_tile_split *split, size_t i, size_t *first, size_t *last) {
  *first = i * split->units / split->tasks;
  *last = (i + 1) * split->units / split->tasks;
}
