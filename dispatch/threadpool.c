/* Persistent worker pool. Tasks are claimed through an atomic counter, so the
 * split of work never depends on timing in a way that changes results: each
 * output element is computed by exactly one task.
 *
 * Workers and the caller spin a while before they sleep on a condition
 * variable. Waking a sleeping thread costs a futex call and, in a virtual
 * machine whose idle vCPU halted, an inter-processor interrupt: measured here
 * at tens of microseconds per parallel call, more than a whole small layer
 * (MobileNetV2's 14x14x192:64 1x1 took 36 us on two threads against 12 us on
 * one). Consecutive layers of a network start within the spin and find the
 * workers awake. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "dispatch/threadpool.h"

#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "dispatch/cpu.h"

#define Q8_MAX_THREADS 256
/* Polls before sleeping: with a pause of ~10-140 cycles per poll, roughly
 * 0.1-1 ms. Every Q8_SPIN_YIELD polls the spinning thread yields, so that a
 * thread sharing its CPU (a caller pinned where a worker is) still runs. */
#define Q8_SPIN_POLLS 20000
#define Q8_SPIN_YIELD 256

/* A job is published as one word, generation << 16 | active workers, so that
 * a worker reads both at once (a worker that read them apart could take part
 * in a job it is not counted in). */
#define Q8_JOB_ACTIVE_BITS 16

typedef struct pool {
  pthread_mutex_t lock;   /* serialises q8_parallel_for callers */
  pthread_mutex_t mutex;  /* with the condition variables: sleeping and waking */
  pthread_cond_t wake, done;
  size_t workers;         /* started worker threads */
  atomic_uint_fast64_t job; /* generation << 16 | workers taking part */
  atomic_size_t running;  /* workers still in the current job */
  atomic_int spin_polls;  /* 0 when there are more threads than CPUs: spinning
                             would take the CPU from the thread being waited for */
  void (*task)(void *, size_t);
  void *ctx;
  size_t tasks;
  atomic_size_t next;
} pool;

/* One poll's wait: a pause hint, and every Q8_SPIN_YIELD polls a yield. */
static inline void spin_pause(int poll) {
  if (poll % Q8_SPIN_YIELD == Q8_SPIN_YIELD - 1) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

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

/* The core the caller pinned itself to: worker i goes i cores after it, so
 * that a caller on core 1 does not share it with worker 1. */
static atomic_int pinned_base;

static int pin_to_core(int core) {
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

int q8_pin_current_thread(int core) {
  if (core < 0) return -1;
  const int rc = pin_to_core(core);
  if (rc == 0) atomic_store(&pinned_base, core);
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
  p->workers = 0;
  atomic_store(&p->spin_polls, 0);
  atomic_store(&p->job, 0);
  atomic_store(&p->running, 0);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void install_atfork(void) { pthread_atfork(NULL, NULL, reset_after_fork); }

static void run_tasks(pool *p) {
  for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->tasks;) p->task(p->ctx, i);
}

typedef struct worker_arg {
  size_t index;
} worker_arg;

/* The next job after generation `seen`: spins, then sleeps. */
static uint_fast64_t wait_for_job(pool *p, uint_fast64_t seen) {
  uint_fast64_t job;
  const int polls = atomic_load_explicit(&p->spin_polls, memory_order_relaxed);
  for (int i = 0; i < polls; ++i) {
    job = atomic_load_explicit(&p->job, memory_order_acquire);
    if (job >> Q8_JOB_ACTIVE_BITS != seen) return job;
    spin_pause(i);
  }
  pthread_mutex_lock(&p->mutex);
  while ((job = atomic_load_explicit(&p->job, memory_order_acquire)) >> Q8_JOB_ACTIVE_BITS ==
         seen) {
    pthread_cond_wait(&p->wake, &p->mutex);
  }
  pthread_mutex_unlock(&p->mutex);
  return job;
}

static void *worker_main(void *arg) {
  const size_t index = ((worker_arg *)arg)->index;
  free(arg);
  pin_to_core(atomic_load(&pinned_base) + (int)index); /* best effort: unpinned still works */
  pool *p = &the_pool;
  uint_fast64_t seen = 0;
  for (;;) {
    const uint_fast64_t job = wait_for_job(p, seen);
    seen = job >> Q8_JOB_ACTIVE_BITS;
    const size_t active = (size_t)(job & ((1u << Q8_JOB_ACTIVE_BITS) - 1));
    if (index > active) continue;
    run_tasks(p);
    if (atomic_fetch_sub_explicit(&p->running, 1, memory_order_acq_rel) == 1) {
      /* Under the mutex: the caller checks `running` under it before it sleeps. */
      pthread_mutex_lock(&p->mutex);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mutex);
    }
  }
  return NULL;
}

/* The CPUs the process may run on (taskset, cgroups; not those online), read
 * when the library is loaded: later the calling thread may have pinned itself
 * to one core (qbench does), and its own mask would say 1. */
static atomic_int start_cpus;
__attribute__((constructor)) static void read_start_cpus(void) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    atomic_store(&start_cpus, CPU_COUNT(&allowed));
  }
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
  const int cpus = atomic_load(&start_cpus);
  atomic_store(&p->spin_polls, cpus > 0 && p->workers + 1 <= (size_t)cpus ? Q8_SPIN_POLLS : 0);
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
  p->task = task;
  p->ctx = ctx;
  p->tasks = tasks;
  atomic_store(&p->next, 0);
  atomic_store(&p->running, helpers);
  const uint_fast64_t generation =
      (atomic_load_explicit(&p->job, memory_order_relaxed) >> Q8_JOB_ACTIVE_BITS) + 1;
  pthread_mutex_lock(&p->mutex);
  atomic_store_explicit(&p->job, generation << Q8_JOB_ACTIVE_BITS | helpers,
                        memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mutex);
  run_tasks(p); /* the caller works too */
  bool done = false;
  const int polls = atomic_load_explicit(&p->spin_polls, memory_order_relaxed);
  for (int i = 0; i < polls; ++i) {
    done = atomic_load_explicit(&p->running, memory_order_acquire) == 0;
    if (done) break;
    spin_pause(i);
  }
  if (!done) {
    pthread_mutex_lock(&p->mutex);
    while (atomic_load_explicit(&p->running, memory_order_acquire) > 0) {
      pthread_cond_wait(&p->done, &p->mutex);
    }
    pthread_mutex_unlock(&p->mutex);
  }
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
