/* Times the depthwise engine (dispatch/conv_depthwise.c) on MobileNetV2's 3x3
 * depthwise layers, batch 1, int8 in and out (fp32 requantization, per
 * channel). Not part of the build: from the source folder, after building the
 * release preset,
 *
 *   cc -std=c17 -O2 -I include -I . tools/dwconv_bench.c build/release/libq8.a \
 *      $(pkg-config --libs libhwy hwloc libcpuid libprotobuf-c zlib) -lstdc++ -lm \
 *      -o build/release/dwconv_bench
 *   build/release/dwconv_bench [threads] [repetitions] [int32]
 *
 * Q8_ISA forces the ISA as everywhere. Each figure is the median of the
 * repetitions after a warm-up (and the best one, less disturbed on a shared
 * machine); GB/s counts input + output + packed-weight-free
 * weight bytes (kh * kw * channels) once, GOPS = 2 * outputs * kh * kw / time. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch/conv_depthwise.h"
#include "q8/kernels.h"

typedef struct layer {
  size_t hw, channels, stride;
} layer;

static const layer layers[] = {{112, 32, 1}, {112, 96, 2}, {56, 144, 1}, {56, 144, 2},
                               {28, 192, 1}, {14, 576, 1}, {7, 960, 1}};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const size_t threads = argc > 1 ? strtoul(argv[1], NULL, 10) : 1;
  const size_t reps = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
  const bool int32_out = argc > 3 && strcmp(argv[3], "int32") == 0;
  printf("%-18s %-38s %9s %7s %7s %9s %7s\n", "layer", "kernel", "median us", "GB/s", "GOPS",
         "best us", "GOPS");
  for (size_t l = 0; l < sizeof layers / sizeof layers[0]; ++l) {
    const layer *y = &layers[l];
    const q8_conv_shape s = {1, y->hw, y->hw, y->channels, y->channels, 3, 3, y->stride,
                             y->stride, 1, 1, 1, 1, 1, 1, y->channels};
    size_t out_h = 0, out_w = 0;
    if (q8_conv_output_shape(&s, &out_h, &out_w) != Q8_OK) return 1;
    const size_t in_bytes = y->hw * y->hw * y->channels, out_bytes = out_h * out_w * y->channels;
    const size_t w_bytes = 9 * y->channels;
    int8_t *in = malloc(in_bytes), *out = malloc(out_bytes * 4), *w = malloc(w_bytes);
    float *scale = malloc(y->channels * sizeof(float));
    int32_t *bias = malloc(y->channels * sizeof(int32_t));
    double *times = malloc(reps * sizeof(double));
    for (size_t i = 0; i < in_bytes; ++i) in[i] = (int8_t)(rand() % 256 - 128);
    for (size_t i = 0; i < w_bytes; ++i) w[i] = (int8_t)(rand() % 256 - 128);
    for (size_t c = 0; c < y->channels; ++c) {
      scale[c] = 1e-3f + 1e-5f * (float)c;
      bias[c] = rand() % 20000 - 10000;
    }
    const q8_requant_params rq = {.mode = Q8_REQUANT_FP32, .out_dtype = Q8_INT8, .zero_point = 3,
                                  .qmin = -128, .qmax = 127, .channels = y->channels,
                                  .scale = scale};
    q8_dwconv *d = NULL;
    if (q8_dwconv_create(&s, Q8_INT8, -5, w, bias, int32_out ? NULL : &rq, &d) != Q8_OK) {
      fprintf(stderr, "create failed: %s\n", q8_error_detail());
      return 1;
    }
    for (size_t i = 0; i < 20; ++i) q8_dwconv_run(d, in, out, threads);
    for (size_t i = 0; i < reps; ++i) {
      const double t0 = now();
      q8_dwconv_run(d, in, out, threads);
      times[i] = now() - t0;
    }
    qsort(times, reps, sizeof(double), compare);
    const double t = times[reps / 2], best = times[0];
    char name[32];
    snprintf(name, sizeof name, "%zux%zux%zu s%zu", y->hw, y->hw, y->channels, y->stride);
    printf("%-18s %-38s %9.2f %7.1f %7.1f %9.2f %7.1f\n", name, q8_dwconv_kernel(d), t * 1e6,
           (double)(in_bytes + out_bytes + w_bytes) / t * 1e-9,
           2.0 * (double)out_bytes * 9 / t * 1e-9, best * 1e6,
           2.0 * (double)out_bytes * 9 / best * 1e-9);
    q8_dwconv_destroy(d);
    free(in), free(out), free(w), free(scale), free(bias), free(times);
  }
  return 0;
}
