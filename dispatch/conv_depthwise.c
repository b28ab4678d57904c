/* Depthwise convolution: pack the weights for the selected row kernel once,
 * then drive it over output rows, split across threads. Vertical padding and
 * the multiplier are handled here (a row of zero-point bytes; rows expanded
 * channel by channel), horizontal padding by the kernels. When the kernel
 * reads uint8 activations through a sign-bit flip (uint8_a_offset,
 * q8/kernels.h), the input rows are flipped here, once per row rather than
 * once per tap, and the kernel runs on int8. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/conv_depthwise.h"
#include "dispatch/internal.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

struct q8_dwconv {
  q8_conv_shape shape;
  size_t out_h, out_w, multiplier;
  size_t rows_per_call; /* output rows per kernel call (q8_dwconv_row.out_rows) */
  q8_dtype in_dtype;
  bool flip; /* rows are flipped for the kernel, which then reads int8 */
  int32_t in_zero_point;
  const q8_kernel *kernel;
  void *packed;
  uint8_t *zero_row; /* in_w * out_channels bytes of the input zero point */
  const q8_requant_params *rq;
};

/* Output rows per kernel call (q8_dwconv_row.out_rows): a kernel sets up each
 * block of channels once per call, which at 7 output pixels per row was a
 * quarter of the time. Stride 1: about 512 output pixels per call (256: 1-3 %
 * slower, median of 5 alternating runs: 112x112x32 33.0 against 32.0 us,
 * 56x56x144 39.4 against 38.3, 28x28x192 10.76 against 10.51). Wider
 * strides read stride x more input rows per call, which measured no better
 * beyond a few rows (likely the input lines shared by two blocks of
 * channels leave L1 in between): about 48 pixels, one row from 48 on.
 * Zen 5, AVX-512, u8 in, s8 out, median of 5 alternating runs (rows per
 * call: us): 14x14x576 s2 1: 3.96, 2: 3.55, 7: 2.94; 28x28x192 s2 1: 4.06,
 * 3: 3.88, 7: 4.13; 112x112x96 s2 1: 37.0, 2: 39.8; 56x56x144 s1 1: 39.2,
 * 5: 37.7; 112x112x32 s1 1: 33.5, 5: 31.3. */
static size_t rows_per_call(size_t out_w, size_t stride_h) {
  const size_t pixels = stride_h == 1 ? 512 : 48, most = 16;
  const size_t rows = out_w ? (pixels + out_w - 1) / out_w : 1;
  return rows < most ? rows : most;
}

q8_status q8_dwconv_create(const q8_conv_shape *shape, q8_dtype in_dtype, int32_t in_zero_point,
                           const int8_t *weights, const int32_t *bias,
                           const q8_requant_params *rq, q8_dwconv **dwconv_out) {
  if (dwconv_out == NULL) return q8_fail(Q8_ERR_NULL, "dwconv output pointer is NULL");
  *dwconv_out = NULL;
  if (shape == NULL) return q8_fail(Q8_ERR_NULL, "dwconv shape is NULL");
  if (shape->groups != shape->in_channels) return Q8_ERR_UNSUPPORTED;
  if (weights == NULL) return q8_fail(Q8_ERR_NULL, "dwconv weights are NULL");
  if (in_dtype != Q8_INT8 && in_dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "dwconv in_dtype %d: activations must be Q8_INT8 or Q8_UINT8",
                   (int)in_dtype);
  }
  const q8_kernel *kernel =
      q8_select_dwconv_kernel(shape->kernel_h, shape->kernel_w, shape->stride_h, shape->stride_w,
                              shape->dilation_h, shape->dilation_w);
  if (kernel == NULL) return Q8_ERR_ISA; /* detail set by the selection */

  q8_dwconv *d = calloc(1, sizeof *d);
  if (d == NULL) return q8_fail(Q8_ERR_NOMEM, "dwconv: out of memory");
  d->shape = *shape;
  d->out_h = q8_conv_out_extent(shape->in_h, shape->kernel_h, shape->stride_h,
                                shape->dilation_h, shape->pad_top, shape->pad_bottom);
  d->out_w = q8_conv_out_extent(shape->in_w, shape->kernel_w, shape->stride_w,
                                shape->dilation_w, shape->pad_left, shape->pad_right);
  d->multiplier = shape->out_channels / shape->in_channels;
  d->rows_per_call = rows_per_call(d->out_w, shape->stride_h);
  d->in_dtype = in_dtype;
  d->kernel = kernel;
  d->rq = rq;
  const size_t channels = shape->out_channels, taps = shape->kernel_h * shape->kernel_w;
  const q8_dwconv_ukernel *uk = kernel->dwconv;
  const size_t packed_bytes = uk->packed_bytes(channels, taps);
  d->packed = aligned_alloc(64, (packed_bytes + 63) / 64 * 64);
  d->zero_row = malloc(shape->in_w * channels);
  int32_t *col_term = malloc(channels * sizeof(int32_t));
  if (d->packed == NULL || d->zero_row == NULL || col_term == NULL) {
    free(col_term);
    q8_dwconv_destroy(d);
    return q8_fail(Q8_ERR_NOMEM, "dwconv: no memory for %zu bytes of packed weights",
                   packed_bytes);
  }
  /* Only for s8 x s8 kernels (NEON), whose multiplies are the bound: each
   * flip in the loop costs a vector op per tap. The x86 kernels flip int8
   * in the loop where the xor is cheaper than the extra pass over the input
   * (measured on AVX-512: the pass made 3x3 layers 10-40% slower). */
  d->flip = in_dtype == Q8_UINT8 && uk->uint8_a_offset == -128;
  d->in_zero_point = in_zero_point;
  /* The zero point as the byte the kernel reads back as it, flipped like the rows. */
  memset(d->zero_row, (int)((uint8_t)in_zero_point ^ (d->flip ? 0x80u : 0u)),
         shape->in_w * channels);
  const int32_t offset = in_dtype == Q8_INT8 ? uk->int8_a_offset : uk->uint8_a_offset;
  q8_dwconv_col_terms(channels, taps, weights, bias, in_zero_point + offset, col_term);
  uk->pack(channels, taps, weights, col_term, d->packed);
  free(col_term);
  *dwconv_out = d;
  return Q8_OK;
}

typedef struct run_ctx {
  const q8_dwconv *d;
  const uint8_t *input;
  unsigned char *output;
  size_t tasks, units; /* units: batch * out_h output rows */
  atomic_int status;
} run_ctx;

/* A task's copies of input rows, when the kernel reads rows through a copy
 * (expanded by the multiplier, or flipped): kernel_h slots, tagged with the
 * row they hold, so consecutive output rows (a task runs a contiguous range)
 * transform each input row once. kernel_h slots always suffice: an output row
 * needs at most kernel_h distinct input rows. */
typedef struct row_cache {
  size_t *tag;  /* per slot: 1 + (n * in_h + iy) of the row held, 0 for none */
  size_t *need; /* per tap row of the current output row: its tag, 0 for padding */
  uint8_t *data;
} row_cache;

static const void *cached_row(const q8_dwconv *d, const uint8_t *input, row_cache *c,
                              size_t tag) {
  const q8_conv_shape *s = &d->shape;
  const size_t kh = s->kernel_h, row_bytes = s->in_w * s->out_channels;
  for (size_t i = 0; i < kh; ++i) {
    if (c->tag[i] == tag) return c->data + i * row_bytes;
  }
  /* A slot no tap row of this output row needs (one exists, see above). */
  size_t slot = 0;
  for (;; ++slot) {
    bool needed = false;
    for (size_t ky = 0; ky < kh; ++ky) needed |= c->need[ky] == c->tag[slot] && c->tag[slot] != 0;
    if (!needed) break;
  }
  uint8_t *dst = c->data + slot * row_bytes;
  const uint8_t *src = input + (tag - 1) * s->in_w * s->in_channels;
  if (d->multiplier > 1) {
    q8_dwconv_expand_row(src, s->in_w, s->in_channels, d->multiplier, dst);
    src = dst;
  }
  if (d->flip) q8_copy_flip(dst, src, row_bytes, 0x80u);
  c->tag[slot] = tag;
  return dst;
}

/* Output rows [first, last) in calls of up to `per_call` rows
 * (run_rows_per_call); rows has kernel_h pointers per row of a call. */
static void run_rows(const run_ctx *r, size_t first, size_t last, size_t per_call,
                     const void **rows, row_cache *cache) {
  const q8_dwconv *d = r->d;
  const q8_conv_shape *s = &d->shape;
  const size_t channels = s->out_channels, in_row = s->in_w * s->in_channels;
  const size_t out_elem = d->rq ? 1 : sizeof(int32_t);
  q8_dwconv_row row = {
      .rows = rows, .zero_pixel = d->zero_row, .in_dtype = d->flip ? Q8_INT8 : d->in_dtype,
      .channels = channels, .in_w = s->in_w, .out_w = d->out_w, .kernel_h = s->kernel_h,
      .kernel_w = s->kernel_w, .stride_w = s->stride_w, .dilation_w = s->dilation_w,
      .pad_left = s->pad_left, .packed = d->packed, .rq = d->rq};
  for (size_t start = first; start < last; start += per_call) {
    const size_t count = last - start < per_call ? last - start : per_call;
    for (size_t i = 0; i < count; ++i) {
      const size_t unit = start + i, n = unit / d->out_h, y = unit % d->out_h;
      const void **tap_rows = rows + i * s->kernel_h;
      for (size_t ky = 0; ky < s->kernel_h; ++ky) {
        /* Unsigned: a row above the input wraps to a huge value, >= in_h. */
        const size_t iy = y * s->stride_h + ky * s->dilation_h - s->pad_top;
        if (iy >= s->in_h) {
          tap_rows[ky] = d->zero_row;
          if (cache) cache->need[ky] = 0;
        } else if (cache) {
          cache->need[ky] = 1 + n * s->in_h + iy;
        } else {
          tap_rows[ky] = r->input + (n * s->in_h + iy) * in_row;
        }
      }
      if (cache) {
        for (size_t ky = 0; ky < s->kernel_h; ++ky) {
          if (cache->need[ky] != 0) {
            tap_rows[ky] = cached_row(d, r->input, cache, cache->need[ky]);
          }
        }
      }
    }
    row.out = r->output + start * d->out_w * channels * out_elem;
    row.out_rows = count;
    d->kernel->dwconv->run(&row);
  }
}

/* Whether rows reach the kernel through a copy (expanded by the multiplier,
 * or flipped), and the output rows per kernel call of a run: one through the
 * copy, whose kernel_h slots serve one output row at a time. */
static bool uses_row_cache(const q8_dwconv *d) { return d->multiplier > 1 || d->flip; }

static size_t run_rows_per_call(const q8_dwconv *d) {
  return uses_row_cache(d) ? 1 : d->rows_per_call;
}

static void run_task(void *p, size_t i) {
  run_ctx *r = p;
  const size_t first = i * r->units / r->tasks, last = (i + 1) * r->units / r->tasks;
  if (first == last) return;
  const q8_dwconv *d = r->d;
  const size_t kh = d->shape.kernel_h;
  row_cache cache = {0};
  const bool cached = uses_row_cache(d);
  const size_t per_call = run_rows_per_call(d);
  const void **rows = malloc(per_call * kh * sizeof *rows);
  if (cached) {
    cache.tag = calloc(2 * kh, sizeof *cache.tag);
    cache.need = cache.tag ? cache.tag + kh : NULL;
    cache.data = malloc(kh * d->shape.in_w * d->shape.out_channels);
  }
  if (rows == NULL || (cached && (cache.tag == NULL || cache.data == NULL))) {
    atomic_store(&r->status, (int)Q8_ERR_NOMEM);
  } else {
    run_rows(r, first, last, per_call, rows, cached ? &cache : NULL);
  }
  free(rows);
  free(cache.tag);
  free(cache.data);
}

q8_status q8_dwconv_run(const q8_dwconv *d, const void *input, void *output, size_t threads) {
  if (d == NULL) return q8_fail(Q8_ERR_NULL, "dwconv is NULL");
  if (input == NULL) return q8_fail(Q8_ERR_NULL, "dwconv input is NULL");
  if (output == NULL) return q8_fail(Q8_ERR_NULL, "dwconv output is NULL");
  if (threads == 0) return q8_fail(Q8_ERR_ARG, "dwconv threads = 0: must be >= 1");
  run_ctx r = {.d = d, .input = input, .output = output, .units = d->shape.batch * d->out_h};
  atomic_init(&r.status, Q8_OK);
  /* A few tasks per thread, claimed dynamically (as the GEMM plan does),
   * but no more tasks than kernel calls, unless there are fewer calls than
   * threads: each task is at least a call's worth of rows (4 tasks per
   * thread ran a 7-row output a row per call). */
  const size_t per_call = run_rows_per_call(d);
  const size_t calls = (r.units + per_call - 1) / per_call;
  size_t wanted = threads > 1 ? 4 * threads : 1;
  if (wanted > calls) wanted = calls > threads ? calls : threads;
  r.tasks = wanted < r.units ? wanted : r.units;
  q8_parallel_for(threads, r.tasks, run_task, &r);
  const q8_status status = (q8_status)atomic_load(&r.status);
  if (status != Q8_OK) {
    return q8_fail(status, "dwconv: no memory for the row scratch of %zu rows",
                   d->shape.kernel_h);
  }
  return Q8_OK;
}

void q8_dwconv_destroy(q8_dwconv *d) {
  if (d == NULL) return;
  free(d->packed);
  free(d->zero_row);
  free(d);
}

const char *q8_dwconv_kernel(const q8_dwconv *d) { return d ? d->kernel->name : ""; }

bool q8_dwconv_flips_rows(const q8_dwconv *d) { return d != NULL && d->flip; }

void q8_dwconv_set_rows_per_call(q8_dwconv *d, size_t rows) {
  if (d == NULL) return;
  d->rows_per_call = rows ? rows : rows_per_call(d->out_w, d->shape.stride_h);
}

void q8_dwconv_keep_rows_unflipped(q8_dwconv *d) {
  if (d == NULL || !d->flip) return;
  /* The column terms do not depend on who flips (q8/kernels.h). */
  d->flip = false;
  memset(d->zero_row, (int)(uint8_t)d->in_zero_point, d->shape.in_w * d->shape.out_channels);
}
