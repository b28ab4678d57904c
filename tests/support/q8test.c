#define _POSIX_C_SOURCE 200809L /* popen */
#define _DEFAULT_SOURCE 1         /* MAP_ANONYMOUS */
#include "tests/support/q8test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quant/graph.h"

uint64_t q8t_seed(void) {
  static uint64_t seed;
  static bool ready;
  if (!ready) {
    const char *env = getenv("Q8_TEST_SEED");
    seed = env ? strtoull(env, NULL, 0) : 0x9E3779B97F4A7C15ull;
    fprintf(stderr, "q8 tests: Q8_TEST_SEED=0x%llx\n", (unsigned long long)seed);
    ready = true;
  }
  return seed;
}

/* splitmix64: tiny, good enough for test data, reproducible everywhere. */
uint64_t q8t_next(q8t_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

q8t_rng q8t_rng_new(uint64_t stream) {
  q8t_rng r = {q8t_seed() ^ (stream * 0xD1B54A32D192ED03ull)};
  q8t_next(&r);
  return r;
}

int32_t q8t_range(q8t_rng *r, int32_t lo, int32_t hi) {
  const uint64_t span = (uint64_t)((int64_t)hi - lo) + 1;
  return (int32_t)((int64_t)lo + (int64_t)(q8t_next(r) % span));
}

float q8t_uniform(q8t_rng *r, float lo, float hi) {
  const double u = (double)(q8t_next(r) >> 11) / 9007199254740992.0;
  return (float)(lo + (hi - lo) * u);
}

void q8t_fill_bytes(q8t_rng *r, void *dst, size_t n) {
  unsigned char *p = dst;
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)q8t_next(r);
}

q8t_buf q8t_buf_new(size_t bytes, size_t offset) {
  q8t_buf b = {0};
  const size_t total = Q8T_GUARD + 16 + bytes + Q8T_GUARD;
  b.base = aligned_alloc(64, (total + 63) / 64 * 64);
  if (b.base == NULL) abort();
  memset(b.base, Q8T_GUARD_BYTE, total);
  b.data = b.base + Q8T_GUARD + (offset % 16);
  b.bytes = bytes;
  return b;
}

q8t_page_end q8t_page_end_new(size_t bytes) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t data_pages = (bytes + page - 1) / page;
  q8t_page_end b = {.map_bytes = (data_pages + 1) * page};
  b.map = mmap(NULL, b.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b.map == MAP_FAILED) abort();
  unsigned char *guard = (unsigned char *)b.map + data_pages * page;
  if (mprotect(guard, page, PROT_NONE) != 0) abort();
  b.data = guard - bytes;
  return b;
}

void q8t_page_end_free(q8t_page_end *b) {
  if (b->map) munmap(b->map, b->map_bytes);
  b->map = NULL;
  b->data = NULL;
}

bool q8t_buf_guards_ok(const q8t_buf *b) {
  for (const unsigned char *p = b->base; p < b->data; ++p) {
    if (*p != Q8T_GUARD_BYTE) return false;
  }
  for (size_t i = 0; i < Q8T_GUARD; ++i) {
    if (b->data[b->bytes + i] != Q8T_GUARD_BYTE) return false;
  }
  return true;
}

void q8t_buf_free(q8t_buf *b) {
  free(b->base);
  b->base = b->data = NULL;
}

char *q8t_run_qbench(const char *args, bool merge_stderr, int *exit_code) {
  const char *qbench = getenv("Q8_QBENCH");
  if (qbench == NULL) return NULL;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s %s", qbench, args, merge_stderr ? "2>&1" : "2>/dev/null");
  FILE *f = popen(cmd, "r");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, len = 0, got;
  char *out = malloc(cap);
  while (out && (got = fread(out + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (len + 1 == cap) {
      char *bigger = realloc(out, cap *= 2);
      if (bigger == NULL) free(out);
      out = bigger;
    }
  }
  const int status = pclose(f);
  if (out == NULL) return NULL;
  out[len] = '\0';
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

char *q8t_run_qbench_ok(const char *args, char **failure) {
  int code = -1;
  char *out = q8t_run_qbench(args, false, &code);
  *failure = NULL;
  if (out != NULL && code == 0) return out;
  free(out);
  char *all = out ? q8t_run_qbench(args, true, &code) : NULL;
  const char *what = all ? all : "Q8_QBENCH is unset or qbench cannot run";
  const size_t size = strlen(what) + 32;
  if ((*failure = malloc(size)) != NULL) snprintf(*failure, size, "exit %d\n%s", code, what);
  free(all);
  return NULL;
}

/* ---- temporary directory, one per test process ---- */
static char temp_dir[96];

const char *q8t_temp_dir(const char *tag) {
  if (temp_dir[0] == '\0') {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/q8-%.32s-XXXXXX", tag ? tag : "test");
    if (mkdtemp(temp_dir) == NULL) {
      temp_dir[0] = '\0';
      return NULL;
    }
  }
  return temp_dir;
}

const char *q8t_temp_path(const char *name) {
  static char paths[8][256];
  static unsigned next;
  const char *dir = q8t_temp_dir(NULL);
  if (dir == NULL) return NULL;
  char *path = paths[next++ % 8];
  snprintf(path, sizeof paths[0], "%s/%s", dir, name);
  return path;
}

void q8t_temp_dir_remove(void) {
  if (temp_dir[0] == '\0') return;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", temp_dir);
  temp_dir[0] = '\0';
}

/* ---- files ---- */
const char *q8t_onnx_testdata_dir(void) {
  const char *env = getenv("Q8_ONNX_TESTDATA");
  return env && env[0] ? env : "/usr/share/libonnx-testdata/data"; /* Debian's libonnx-testdata */
}

const char *q8t_source_path(const char *relative) {
  static char paths[4][2048];
  static unsigned next;
  const char *src = getenv("Q8_SOURCE_DIR");
  char *path = paths[next++ % 4];
  snprintf(path, sizeof paths[0], "%s/%s", src && src[0] ? src : ".", relative);
  return path;
}

struct q8_graph *q8t_load_fashion_model(void) {
  q8_graph *graph = NULL;
  return q8_graph_load_file(q8t_source_path("models/fashion_mnist_cnn.onnx"), &graph) == Q8_OK ? graph : NULL;
}

bool q8t_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool q8t_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int q8t_compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t q8t_conv_group_in(const q8_conv_shape *s) { return s->in_channels / s->groups; }

size_t q8t_conv_weight_count(const q8_conv_shape *s) {
  return s->out_channels * s->kernel_h * s->kernel_w * q8t_conv_group_in(s);
}

int8_t *q8t_conv_to_oihw(const q8_conv_shape *s, const int8_t *ohwi) {
  const size_t cin = q8t_conv_group_in(s), taps = s->kernel_h * s->kernel_w;
  int8_t *oihw = malloc(q8t_conv_weight_count(s));
  for (size_t oc = 0; oc < s->out_channels; ++oc)
    for (size_t tap = 0; tap < taps; ++tap)
      for (size_t ic = 0; ic < cin; ++ic)
        oihw[(oc * cin + ic) * taps + tap] = ohwi[(oc * taps + tap) * cin + ic];
  return oihw;
}

q8_status q8t_conv_reference(const q8_conv_desc *d, const void *input, void *out) {
  if (d->out_dtype == Q8_INT32) {
    return q8_conv_ref(&d->shape, input, d->in_dtype, d->in_zero_point, d->weights, d->bias,
                       NULL, out);
  }
  const size_t n = d->w_channels;
  int32_t *multiplier = malloc(n * sizeof(int32_t)), *shift = malloc(n * sizeof(int32_t));
  float *scale = malloc(n * sizeof(float));
  const bool u8 = d->out_dtype == Q8_UINT8;
  q8_requant_params rq;
  q8_status s = q8_requant_params_init(
      &rq, d->requant, n, d->in_scale, d->w_scales, d->out_scale, d->out_dtype,
      d->out_zero_point, d->clamp ? d->out_min : (u8 ? 0 : -128),
      d->clamp ? d->out_max : (u8 ? 255 : 127), multiplier, shift, scale);
  if (s == Q8_OK) {
    s = q8_conv_ref(&d->shape, input, d->in_dtype, d->in_zero_point, d->weights, d->bias, &rq,
                    out);
  }
  free(multiplier);
  free(shift);
  free(scale);
  return s;
}
