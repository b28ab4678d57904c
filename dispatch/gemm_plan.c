/* GEMM plans: validate once, pack the weights for the chosen kernel, prove the
 * int32 accumulator cannot overflow, then run many times. */
#define _DEFAULT_SOURCE /* madvise */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "dispatch/internal.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

struct q8_gemm_plan {
  size_t m, n, k;
  q8_dtype a_dtype;
  int32_t a_zero_point;
  q8_dtype out_dtype;
  const q8_kernel *kernel;
  void *packed;
  size_t packed_bytes;
  int32_t *w_zero_points; /* n entries or NULL */
  int32_t *bias;          /* n entries or NULL */
  size_t nc;              /* micro-kernel column block (L2-sized) */
  size_t mc_bytes;        /* A bytes per row chunk (q8_gemm_chunk_rows) */
  size_t threads;
  bool requantize;
  q8_plan_requant rq;
};

/* The descriptor's output side, for the checks and parameters shared with conv. */
static q8_plan_output gemm_output(const q8_gemm_desc *d) {
  return (q8_plan_output){
      .op = "gemm", .in_scale_name = "a_scale", .channels_name = "n", .channels = d->n,
      .in_scale = d->a_scale, .w_channels = d->w_channels, .w_scales = d->w_scales,
      .out_dtype = d->out_dtype, .mode = d->requant, .out_scale = d->out_scale,
      .out_zero_point = d->out_zero_point, .clamp = d->clamp, .out_min = d->out_min,
      .out_max = d->out_max};
}

static q8_status check_dims(const q8_gemm_desc *d) {
  const size_t dims[3] = {d->m, d->n, d->k};
  const char *names[3] = {"m", "n", "k"};
  for (int i = 0; i < 3; ++i) {
    if (dims[i] == 0) return q8_fail(Q8_ERR_ARG, "gemm %s = 0: dimensions must be >= 1", names[i]);
    if (dims[i] > Q8_MAX_DIM) {
      return q8_fail(Q8_ERR_ARG, "gemm %s = %zu exceeds %zu (a negative value cast to size_t?)",
                     names[i], dims[i], Q8_MAX_DIM);
    }
  }
  if (d->k > Q8_GEMM_MAX_K) {
    return q8_fail(Q8_ERR_OVERFLOW,
                   "gemm k = %zu exceeds Q8_GEMM_MAX_K = %d, the largest K for which the int32 "
                   "accumulator cannot overflow; split K and add the partial results",
                   d->k, Q8_GEMM_MAX_K);
  }
  return Q8_OK;
}

static q8_status check_desc(const q8_gemm_desc *d) {
  q8_status s = check_dims(d);
  if (s != Q8_OK) return s;
  if (d->a_dtype != Q8_INT8 && d->a_dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "gemm a_dtype %d: activations must be Q8_INT8 or Q8_UINT8",
                   (int)d->a_dtype);
  }
  if ((s = q8_check_zero_point(d->a_zero_point, d->a_dtype, "gemm a_zero_point")) != Q8_OK) return s;
  if (d->weights == NULL) return q8_fail(Q8_ERR_NULL, "gemm weights are NULL");
  if (d->w_zero_points != NULL) {
    for (size_t j = 0; j < d->n; ++j) {
      char name[64];
      snprintf(name, sizeof name, "gemm w_zero_points[%zu]", j);
      if ((s = q8_check_zero_point(d->w_zero_points[j], Q8_INT8, name)) != Q8_OK) return s;
    }
  }
  const q8_plan_output output = gemm_output(d);
  return q8_check_plan_output(&output);
}

/* bias[j] + sum_k (A - za)(W - zb) must fit int32 for every A of the dtype:
 * bound the sum by max|A - za| * sum_k |W[j][k] - zb[j]|. */
static int64_t sum_bound(const q8_gemm_desc *d, size_t j) {
  const int32_t zb = d->w_zero_points ? d->w_zero_points[j] : 0;
  int64_t w_abs_sum = 0;
  for (size_t p = 0; p < d->k; ++p) w_abs_sum += llabs((int64_t)d->weights[j * d->k + p] - zb);
  return q8_activation_span(d->a_dtype, d->a_zero_point) * w_abs_sum;
}

static q8_status check_accumulator_range(const q8_gemm_desc *d) {
  for (size_t j = 0; j < d->n; ++j) {
    const q8_status s =
        q8_check_accumulator_bound("gemm", j, d->bias ? d->bias[j] : 0, sum_bound(d, j));
    if (s != Q8_OK) return s;
  }
  return Q8_OK;
}

/* q8_requant_params.fp32_clamp_free for the plan's parameters. */
static bool clamp_free(const q8_requant_params *rq, const q8_gemm_desc *d) {
  for (size_t j = 0; j < d->n; ++j) {
    const int64_t bound = llabs(d->bias ? (int64_t)d->bias[j] : 0) + sum_bound(d, j);
    if (!q8_requant_channel_clamp_free(rq, j, bound)) return false;
  }
  return true;
}

/* L2-sized column blocks: half of L2 for the packed weights of one block,
 * the rest for A's row tile, C and the stack. */
static size_t column_block(const q8_gemm_ukernel *uk, size_t k) {
  const size_t blocks = q8_cpu_l2_bytes() / 2 / q8_gemm_block_bytes(uk->nr, uk->kr, k);
  return (blocks ? blocks : 1) * uk->nr;
}

static int32_t *copy_i32(const int32_t *src, size_t n);

/* Packed weights of 2 MiB and more sit on transparent huge pages where the OS
 * allows it: a small-M GEMM streams them once per run from L3 or DRAM, and
 * with 4 KiB pages a 16 MiB stream is 4096 pages, more than the second-level
 * TLB holds, so every page costs a table walk and the hardware prefetchers
 * stop at each page boundary (Zen 5, 1x4096x4096: 224-263 us per process
 * against 254-287). Below 2 MiB they stay on 4 KiB pages: 1x768x768 on a
 * 2 MiB page ran 4.4-5.8 us against 3.1-5.0. */
static void *alloc_packed(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  if (bytes < huge) return aligned_alloc(64, (bytes + 63) / 64 * 64);
  void *p = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p) (void)madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE); /* a hint only */
#endif
  return p;
}

static q8_status pack_weights(q8_gemm_plan *plan, const q8_gemm_desc *d) {
  const q8_gemm_ukernel *uk = plan->kernel->ukernel;
  if (uk == NULL) { /* reference: weights as given, zero points and bias kept */
    plan->packed_bytes = plan->kernel->gemm.packed_bytes(d->n, d->k);
    plan->packed = malloc(plan->packed_bytes);
    plan->w_zero_points = copy_i32(d->w_zero_points, d->n);
    plan->bias = copy_i32(d->bias, d->n);
    if (plan->packed == NULL || (d->w_zero_points && !plan->w_zero_points) ||
        (d->bias && !plan->bias)) {
      return q8_fail(Q8_ERR_NOMEM, "gemm plan: no memory for %zu bytes of weights",
                     plan->packed_bytes);
    }
    plan->kernel->gemm.pack(d->n, d->k, d->weights, plan->packed);
    return Q8_OK;
  }
  /* Micro-kernel: bias and zero-point terms folded into col_term. */
  plan->packed_bytes = q8_gemm_packed_bytes(uk->nr, uk->kr, d->n, d->k);
  plan->packed = alloc_packed(plan->packed_bytes);
  int32_t *col_term = malloc(d->n * sizeof(int32_t));
  if (plan->packed == NULL || col_term == NULL) {
    free(col_term);
    return q8_fail(Q8_ERR_NOMEM, "gemm plan: no memory for %zu bytes of packed weights",
                   plan->packed_bytes);
  }
  const int32_t offset = q8_gemm_a_offset(uk, d->a_dtype);
  q8_gemm_col_terms(d->n, d->k, d->weights, d->bias, d->a_zero_point, offset, col_term);
  uk->pack(uk->nr, uk->kr, d->n, d->k, d->weights, col_term, plan->packed);
  free(col_term);
  plan->nc = column_block(uk, d->k);
  /* A quarter of L2: beside the weight block (half), room for C and the stack. */
  plan->mc_bytes = q8_cpu_l2_bytes() / 4;
  return Q8_OK;
}

static int32_t *copy_i32(const int32_t *src, size_t n) {
  if (src == NULL) return NULL;
  int32_t *dst = malloc(n * sizeof(int32_t));
  if (dst) memcpy(dst, src, n * sizeof(int32_t));
  return dst;
}

q8_status q8_gemm_plan_create(const q8_gemm_desc *desc, q8_gemm_plan **plan_out) {
  q8_clear_error();
  if (plan_out == NULL) return q8_fail(Q8_ERR_NULL, "gemm plan output pointer is NULL");
  *plan_out = NULL;
  if (desc == NULL) return q8_fail(Q8_ERR_NULL, "gemm descriptor is NULL");
  q8_status s = check_desc(desc);
  if (s != Q8_OK) return s;
  if ((s = check_accumulator_range(desc)) != Q8_OK) return s;

  bool weight_zero_points = false;
  for (size_t j = 0; desc->w_zero_points && j < desc->n; ++j) {
    weight_zero_points |= desc->w_zero_points[j] != 0;
  }
  const q8_kernel *kernel = q8_select_gemm_kernel(desc->m, weight_zero_points);
  if (kernel == NULL) return Q8_ERR_ISA; /* detail set by the selection */

  q8_gemm_plan *plan = calloc(1, sizeof *plan);
  if (plan == NULL) return q8_fail(Q8_ERR_NOMEM, "gemm plan: out of memory");
  plan->m = desc->m;
  plan->n = desc->n;
  plan->k = desc->k;
  plan->a_dtype = desc->a_dtype;
  plan->a_zero_point = desc->a_zero_point;
  plan->out_dtype = desc->out_dtype;
  plan->kernel = kernel;
  plan->threads = desc->threads ? desc->threads : q8_default_threads();
  if ((s = pack_weights(plan, desc)) != Q8_OK) {
    q8_gemm_plan_destroy(plan);
    return s;
  }
  if (desc->out_dtype != Q8_INT32) {
    plan->requantize = true;
    const q8_plan_output output = gemm_output(desc);
    if ((s = q8_plan_requant_init(&plan->rq, &output)) != Q8_OK) {
      q8_gemm_plan_destroy(plan);
      return s;
    }
    plan->rq.params.fp32_clamp_free = clamp_free(&plan->rq.params, desc);
  }
  *plan_out = plan;
  return Q8_OK;
}

/* One task of a parallel run: a range of whole row tiles or of whole
 * column tiles, so every output element is computed by exactly one task. */
typedef struct run_ctx {
  const q8_gemm_plan *plan;
  const void *a;
  size_t lda;
  void *c;
  size_t ldc;
  q8_tile_split split;
  size_t unit;        /* rows (MR) or columns (NR) per tile */
  atomic_int status;  /* written by any task that fails */
} run_ctx;

static void run_range(const run_ctx *r, size_t m0, size_t m1, size_t n0, size_t n1,
                      q8_status *status) {
  const q8_gemm_plan *plan = r->plan;
  if (plan->kernel->ukernel) {
    const q8_gemm_blocked_args args = {
        .k = plan->k, .a = r->a, .lda = r->lda, .a_dtype = plan->a_dtype,
        .packed = plan->packed, .c = r->c, .ldc = r->ldc,
        .rq = plan->requantize ? &plan->rq.params : NULL, .nc = plan->nc,
        .mc_bytes = plan->mc_bytes};
    q8_gemm_blocked(plan->kernel->ukernel, &args, m0, m1, n0, n1);
    return;
  }
  const q8_gemm_call call = {
      .k = plan->k, .a = r->a, .lda = r->lda, .a_dtype = plan->a_dtype,
      .a_zero_point = plan->a_zero_point, .packed_weights = plan->packed,
      .w_zero_points = plan->w_zero_points, .bias = plan->bias,
      .rq = plan->requantize ? &plan->rq.params : NULL, .c = r->c, .ldc = r->ldc};
  const q8_status s = plan->kernel->gemm.run(&call, m0, m1, n0, n1);
  if (s != Q8_OK) *status = s;
}

static void run_task(void *p, size_t i) {
  run_ctx *r = p;
  size_t first, last;
  q8_split_task_range(&r->split, i, &first, &last);
  if (first == last) return;
  q8_status status = Q8_OK;
  if (r->split.rows) {
    const size_t m1 = last * r->unit < r->plan->m ? last * r->unit : r->plan->m;
    run_range(r, first * r->unit, m1, 0, r->plan->n, &status);
  } else {
    const size_t n1 = last * r->unit < r->plan->n ? last * r->unit : r->plan->n;
    run_range(r, 0, r->plan->m, first * r->unit, n1, &status);
  }
  if (status != Q8_OK) atomic_store(&r->status, (int)status);
}

q8_status q8_gemm_run(const q8_gemm_plan *plan, const void *a, size_t lda, void *c, size_t ldc) {
  q8_clear_error();
  if (plan == NULL) return q8_fail(Q8_ERR_NULL, "gemm plan is NULL");
  if (a == NULL) return q8_fail(Q8_ERR_NULL, "gemm input A is NULL");
  if (c == NULL) return q8_fail(Q8_ERR_NULL, "gemm output C is NULL");
  if (lda < plan->k) return q8_fail(Q8_ERR_ARG, "gemm lda = %zu < k = %zu", lda, plan->k);
  if (ldc < plan->n) return q8_fail(Q8_ERR_ARG, "gemm ldc = %zu < n = %zu", ldc, plan->n);
  const size_t mr = plan->kernel->mr ? plan->kernel->mr : 1;
  const size_t nr = plan->kernel->nr ? plan->kernel->nr : 1;
  const size_t m_tiles = (plan->m + mr - 1) / mr, n_tiles = (plan->n + nr - 1) / nr;
  run_ctx r = {.plan = plan, .a = a, .lda = lda, .c = c, .ldc = ldc};
  atomic_init(&r.status, Q8_OK);
  r.split = q8_split_tiles(plan->threads, m_tiles, n_tiles);
  r.unit = r.split.rows ? mr : nr;
  q8_parallel_for(plan->threads, r.split.tasks, run_task, &r);
  const q8_status status = (q8_status)atomic_load(&r.status);
  if (status != Q8_OK) {
    /* The plan proved the accumulator range, so this is a bug. */
    return q8_fail(Q8_ERR_INTERNAL, "gemm kernel %s returned %s", plan->kernel->name,
                   q8_status_str(status));
  }
  return Q8_OK;
}

void q8_gemm_plan_destroy(q8_gemm_plan *plan) {
  if (plan == NULL) return;
  free(plan->packed);
  free(plan->w_zero_points);
  free(plan->bias);
  q8_plan_requant_free(&plan->rq);
  free(plan);
}

const char *q8_gemm_plan_kernel(const q8_gemm_plan *plan) {
  return plan ? plan->kernel->name : "";
}

size_t q8_gemm_plan_packed_bytes(const q8_gemm_plan *plan) {
  return plan ? plan->packed_bytes : 0;
}

size_t q8_gemm_plan_threads(const q8_gemm_plan *plan) { return plan ? plan->threads : 0; }
