/* Times the depthwise engine (dispatch/conv_depthwise.c) on MobileNetV2's 3x3
 * depthwise layers, batch 1, int8 in and out (fp32 requantization, per
 * channel), or int32 out. Not part of the build: from the source folder,
 * after building the release preset (targets q8_static and qbench_core),
 *
 *   cc -std=c17 -O2 -I include -I . tools/dwconv_bench.c build/release/libqbench_core.a \
 *      build/release/libq8.a $(pkg-config --libs libhwy hwloc libcpuid libprotobuf-c zlib) \
 *      -lstdc++ -lm -o build/release/dwconv_bench
 *   build/release/dwconv_bench [threads] [seconds per layer] [int32]
 *
 * Q8_ISA forces the ISA as everywhere. Timing is qbench's (qb_measure:
 * warm-up, then samples; median and best). GB/s counts input + output +
 * weight (kh * kw * channels) bytes once, GOPS = 2 * outputs * kh * kw / time;
 * the L2 read bandwidth of this run (qbench peak's probe) is printed for scale. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/conv_depthwise.h"

typedef struct layer {
  size_t hw, channels, stride;
} layer;

static const layer layers[] = {{112, 32, 1}, {112, 96, 2}, {56, 144, 1}, {56, 144, 2},
                               {28, 192, 1}, {14, 576, 1}, {7, 960, 1}};

typedef struct run {
  const q8_dwconv *d;
  const void *in;
  void *out;
  size_t threads;
} run;

static void run_once(void *p) {
  const run *r = p;
  q8_dwconv_run(r->d, r->in, r->out, r->threads);
}

int main(int argc, char **argv) {
  const size_t threads = argc > 1 ? strtoul(argv[1], NULL, 10) : 1;
  const double seconds = argc > 2 ? atof(argv[2]) : 0.5;
  const bool int32_out = argc > 3 && strcmp(argv[3], "int32") == 0;
  const double l2 = qb_bandwidth_level(2, 0.2, NULL) * 1e-9; /* GB/s */
  printf("L2 read bandwidth %.1f GB/s, %zu thread(s), %s output\n", l2, threads,
         int32_out ? "int32" : "int8");
  printf("%-15s %-36s %9s %7s %6s %7s %8s %7s\n", "layer", "kernel", "median us", "GB/s",
         "%L2", "GOPS", "best us", "GOPS");
  srand(1);
  for (size_t l = 0; l < sizeof layers / sizeof layers[0]; ++l) {
    const layer *y = &layers[l];
    const q8_conv_shape s = {1, y->hw, y->hw, y->channels, y->channels, 3, 3, y->stride,
                             y->stride, 1, 1, 1, 1, 1, 1, y->channels};
    size_t out_h = 0, out_w = 0;
    if (q8_conv_output_shape(&s, &out_h, &out_w) != Q8_OK) return 1;
    const size_t in_bytes = y->hw * y->hw * y->channels, outputs = out_h * out_w * y->channels;
    const size_t out_bytes = outputs * (int32_out ? sizeof(int32_t) : 1), w_bytes = 9 * y->channels;
    int8_t *in = malloc(in_bytes), *out = malloc(out_bytes), *w = malloc(w_bytes);
    float *scale = malloc(y->channels * sizeof(float));
    int32_t *bias = malloc(y->channels * sizeof(int32_t));
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
    run r = {d, in, out, threads};
    const qb_timing t = qb_measure(run_once, &r, seconds, 50);
    const double bytes = (double)(in_bytes + out_bytes + w_bytes), ops = 2.0 * (double)outputs * 9;
    char name[32];
    snprintf(name, sizeof name, "%zux%zux%zu s%zu", y->hw, y->hw, y->channels, y->stride);
    printf("%-15s %-36s %9.2f %7.1f %5.0f%% %7.1f %8.2f %7.1f\n", name, q8_dwconv_kernel(d),
           t.median_s * 1e6, bytes / t.median_s * 1e-9, 100 * bytes / t.median_s * 1e-9 / l2,
           ops / t.median_s * 1e-9, t.min_s * 1e6, ops / t.min_s * 1e-9);
    q8_dwconv_destroy(d);
    free(in), free(out), free(w), free(scale), free(bias);
  }
  return 0;
}
