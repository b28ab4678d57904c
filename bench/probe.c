/* Machine probes measured in the same run as the kernels they qualify. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"

typedef struct read_ctx {
  const uint64_t *data;
  size_t words;
  uint64_t sink;
} read_ctx;

/* Four independent sums so the loop is bound by loads, not by add latency;
 * the compiler vectorises it at the baseline ISA. */
static void read_stream(void *p) {
  read_ctx *c = p;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= c->words; i += 4) {
    s0 += c->data[i];
    s1 += c->data[i + 1];
    s2 += c->data[i + 2];
    s3 += c->data[i + 3];
  }
  c->sink += s0 + s1 + s2 + s3;
}

double qb_read_bandwidth(size_t bytes, double min_time) {
  bytes = (bytes + 63) / 64 * 64;
  uint64_t *data = aligned_alloc(64, bytes);
  if (data == NULL) return 0.0;
  memset(data, 1, bytes);
  read_ctx ctx = {.data = data, .words = bytes / 8};
  const qb_timing t = qb_measure(read_stream, &ctx, min_time, 5);
  free(data);
  return (double)bytes / t.median_s;
}
