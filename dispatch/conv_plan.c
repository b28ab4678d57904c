/* Convolution plans: validate the geometry and quantization once, repack the
 * weights into the canonical OHWI-per-group layout, prove the int32
 * accumulator cannot overflow, pack them per group for the GEMM micro-kernel
 * the ISA choice gives, then run many times. Three paths:
 *   gemm:  1x1, stride 1, no padding: the input is already the GEMM's A
 *          (per group: A = input + g * Cg, lda = in_channels), straight
 *          through q8_gemm_blocked;
 *   igemm: every other dense or grouped conv: indirect GEMM
 *          (q8_conv_indirect) over an indirection table built here once;
 *   windows: dense convs of few input channels (stems) on kernels with
 *          run_k_ranges: each kernel row a K range read straight from a
 *          padded copy of the input row (q8_conv_windows), no gather;
 *   depthwise: one input channel per group (groups = in_channels, any
 *          multiplier): the depthwise engine (dispatch/conv_depthwise.h)
 *          with its own kernels;
 *   ref:   q8_conv_ref, for Q8_ISA=ref (no micro-kernel).
 * Threads split the output pixels in whole row tiles (or the output
 * channels in whole column tiles when there are few pixels), as the GEMM plan
 * does, so every output element has one owner: bit-identical for any thread
 * count. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/conv_depthwise.h"
#include "dispatch/internal.h"
#include "dispatch/registry.h"
#include "dispatch/threadpool.h"

typedef enum conv_path {
  CONV_REF = 0,
  CONV_GEMM,
  CONV_IGEMM,
  CONV_WINDOWS,
  CONV_DEPTHWISE
} conv_path;

struct q8_conv_plan {
  q8_conv_shape shape;
  size_t out_h, out_w;
  q8_dtype in_dtype;
  int32_t in_zero_point;
  int8_t *weights;       /* canonical OHWI per group (the reference path) */
  int32_t *bias;         /* out_channels entries or NULL (the reference path) */
  size_t threads;
  bool requantize;
  q8_plan_requant rq;
  conv_path path;
  const q8_gemm_ukernel *uk;   /* gemm, igemm and windows */
  void *packed;                /* groups blocks of group_bytes */
  size_t group_bytes;
  size_t nc;                   /* column block (L2-sized) */
  size_t mc_bytes;             /* A bytes per row chunk (q8_gemm_chunk_rows) */
  q8_conv_pixel *pixels;       /* igemm: indirection table */
  q8_conv_segment *segments;
  q8_conv_gather_fn gather;    /* igemm: NULL for the portable gather */
  q8_conv_strided strided;     /* igemm with the VBMI gather: its table (entries NULL: none) */
  q8_conv_tiling tiling;       /* igemm: count 0 unless border tiles skip padded taps */
  int32_t *col_adjust;         /* tiling.skip_sets x out_channels, NULL when padding reads 0 */
  q8_dwconv *dw;               /* depthwise */
  char name[96];
};

static q8_status check_size(size_t value, const char *field, bool zero_allowed) {
  if (value == 0 && !zero_allowed) {
    return q8_fail(Q8_ERR_ARG, "conv shape.%s = 0: must be >= 1", field);
  }
  if (value > Q8_MAX_DIM) {
    return q8_fail(Q8_ERR_ARG, "conv shape.%s = %zu exceeds %zu (a negative value cast to size_t?)",
                   field, value, Q8_MAX_DIM);
  }
  return Q8_OK;
}

/* product *= factor, false when it would not fit size_t. */
static bool multiply_fits(size_t *product, size_t factor) {
  if (factor != 0 && *product > SIZE_MAX / factor) return false;
  *product *= factor;
  return true;
}

static q8_status check_elements(const char *tensor, const size_t *dims, size_t count,
                                size_t element_bytes) {
  size_t bytes = element_bytes;
  for (size_t i = 0; i < count; ++i) {
    if (!multiply_fits(&bytes, dims[i])) {
      return q8_fail(Q8_ERR_ARG, "conv %s: the element count overflows size_t", tensor);
    }
  }
  return Q8_OK;
}

/* One spatial axis: the dilated kernel must fit the padded input. */
static q8_status check_axis(const char *axis, size_t in, size_t kernel, size_t dilation,
                            size_t pad_before, size_t pad_after, size_t stride, size_t *out) {
  *out = q8_conv_out_extent(in, kernel, stride, dilation, pad_before, pad_after);
  if (*out == 0) {
    return q8_fail(Q8_ERR_ARG,
                   "conv shape.kernel_%s = %zu with dilation %zu spans %zu, more than the padded "
                   "input %zu + %zu + %zu",
                   axis, kernel, dilation, (kernel - 1) * dilation + 1, pad_before, in, pad_after);
  }
  return Q8_OK;
}

q8_status q8_conv_output_shape(const q8_conv_shape *s, size_t *out_h_out, size_t *out_w_out) {
  if (s == NULL) return q8_fail(Q8_ERR_NULL, "conv shape is NULL");
  const struct { size_t value; const char *field; bool zero_allowed; } sizes[] = {
      {s->batch, "batch", false},         {s->in_h, "in_h", false},
      {s->in_w, "in_w", false},           {s->in_channels, "in_channels", false},
      {s->out_channels, "out_channels", false}, {s->kernel_h, "kernel_h", false},
      {s->kernel_w, "kernel_w", false},   {s->stride_h, "stride_h", false},
      {s->stride_w, "stride_w", false},   {s->dilation_h, "dilation_h", false},
      {s->dilation_w, "dilation_w", false}, {s->groups, "groups", false},
      {s->pad_top, "pad_top", true},      {s->pad_bottom, "pad_bottom", true},
      {s->pad_left, "pad_left", true},    {s->pad_right, "pad_right", true}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    const q8_status st = check_size(sizes[i].value, sizes[i].field, sizes[i].zero_allowed);
    if (st != Q8_OK) return st;
  }
  if (s->in_channels % s->groups != 0) {
    return q8_fail(Q8_ERR_ARG, "conv shape.in_channels = %zu is not divisible by groups = %zu",
                   s->in_channels, s->groups);
  }
  if (s->out_channels % s->groups != 0) {
    return q8_fail(Q8_ERR_ARG, "conv shape.out_channels = %zu is not divisible by groups = %zu",
                   s->out_channels, s->groups);
  }
  size_t out_h = 0, out_w = 0;
  q8_status st = check_axis("h", s->in_h, s->kernel_h, s->dilation_h, s->pad_top, s->pad_bottom,
                            s->stride_h, &out_h);
  if (st != Q8_OK) return st;
  if ((st = check_axis("w", s->in_w, s->kernel_w, s->dilation_w, s->pad_left, s->pad_right,
                       s->stride_w, &out_w)) != Q8_OK) {
    return st;
  }
  const size_t input[] = {s->batch, s->in_h, s->in_w, s->in_channels};
  const size_t output[] = {s->batch, out_h, out_w, s->out_channels};
  const size_t weights[] = {s->out_channels, s->kernel_h, s->kernel_w, s->in_channels / s->groups};
  if ((st = check_elements("input", input, 4, 1)) != Q8_OK) return st;
  if ((st = check_elements("output", output, 4, sizeof(int32_t))) != Q8_OK) return st;
  if ((st = check_elements("weights", weights, 4, 1)) != Q8_OK) return st;
  if (out_h_out) *out_h_out = out_h;
  if (out_w_out) *out_w_out = out_w;
  return Q8_OK;
}

/* The descriptor's output side, for the checks and parameters shared with the GEMM. */
static q8_plan_output conv_output(const q8_conv_desc *d) {
  return (q8_plan_output){
      .op = "conv", .in_scale_name = "in_scale", .channels_name = "out_channels",
      .channels = d->shape.out_channels, .in_scale = d->in_scale, .w_channels = d->w_channels,
      .w_scales = d->w_scales, .out_dtype = d->out_dtype, .mode = d->requant,
      .out_scale = d->out_scale, .out_zero_point = d->out_zero_point, .clamp = d->clamp,
      .out_min = d->out_min, .out_max = d->out_max};
}

static q8_status check_desc(const q8_conv_desc *d, size_t *out_h, size_t *out_w) {
  q8_status s = q8_conv_output_shape(&d->shape, out_h, out_w);
  if (s != Q8_OK) return s;
  if (d->in_dtype != Q8_INT8 && d->in_dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "conv in_dtype %d: activations must be Q8_INT8 or Q8_UINT8",
                   (int)d->in_dtype);
  }
  if ((s = q8_check_zero_point(d->in_zero_point, d->in_dtype, "conv in_zero_point")) != Q8_OK) {
    return s;
  }
  if (d->weights == NULL) return q8_fail(Q8_ERR_NULL, "conv weights are NULL");
  if (d->w_layout != Q8_WEIGHTS_OIHW && d->w_layout != Q8_WEIGHTS_OHWI) {
    return q8_fail(Q8_ERR_ARG, "conv w_layout %d: must be Q8_WEIGHTS_OIHW or Q8_WEIGHTS_OHWI",
                   (int)d->w_layout);
  }
  const q8_plan_output output = conv_output(d);
  return q8_check_plan_output(&output);
}

/* OIHW (ONNX) or OHWI -> OHWI, the layout q8_conv_ref reads. */
static void repack_weights(const q8_conv_desc *d, int8_t *ohwi) {
  const q8_conv_shape *s = &d->shape;
  const size_t group_in = s->in_channels / s->groups;
  const size_t taps = s->kernel_h * s->kernel_w;
  if (d->w_layout == Q8_WEIGHTS_OHWI) {
    memcpy(ohwi, d->weights, s->out_channels * taps * group_in);
    return;
  }
  for (size_t oc = 0; oc < s->out_channels; ++oc) {
    for (size_t ic = 0; ic < group_in; ++ic) {
      for (size_t tap = 0; tap < taps; ++tap) {
        ohwi[(oc * taps + tap) * group_in + ic] = d->weights[(oc * group_in + ic) * taps + tap];
      }
    }
  }
}

/* bias[oc] + sum (X - zp) * W[oc] must fit int32 for every input of the dtype
 * (padding contributes 0, so it only shrinks the sum): bound the sum by
 * max|X - zp| * sum |W[oc]|, as the GEMM plan does. */
/* A bound of |sum of (X - in_zero_point) * W| of output channel oc. */
static int64_t sum_bound(const q8_conv_plan *plan, size_t oc) {
  const q8_conv_shape *s = &plan->shape;
  const size_t k = s->kernel_h * s->kernel_w * (s->in_channels / s->groups);
  int64_t w_abs_sum = 0;
  for (size_t p = 0; p < k; ++p) w_abs_sum += llabs((long long)plan->weights[oc * k + p]);
  return q8_activation_span(plan->in_dtype, plan->in_zero_point) * w_abs_sum;
}

static q8_status check_accumulator_range(const q8_conv_plan *plan, const int32_t *bias) {
  for (size_t oc = 0; oc < plan->shape.out_channels; ++oc) {
    const q8_status st =
        q8_check_accumulator_bound("conv", oc, bias ? bias[oc] : 0, sum_bound(plan, oc));
    if (st != Q8_OK) return st;
  }
  return Q8_OK;
}

/* q8_requant_params.fp32_clamp_free for the plan's parameters. */
static bool clamp_free(const q8_conv_plan *plan, const int32_t *bias) {
  for (size_t oc = 0; oc < plan->shape.out_channels; ++oc) {
    const int64_t bound = llabs(bias ? (int64_t)bias[oc] : 0) + sum_bound(plan, oc);
    if (!q8_requant_channel_clamp_free(&plan->rq.params, oc, bound)) return false;
  }
  return true;
}

/* L2-sized column blocks, as the GEMM plan sizes them: half of L2 for one
 * block of packed weights, the rest for the row panel, C and the stack. */
static size_t column_block(const q8_gemm_ukernel *uk, size_t k) {
  const size_t blocks = q8_cpu_l2_bytes() / 2 / q8_gemm_block_bytes(uk->nr, uk->kr, k);
  return (blocks ? blocks : 1) * uk->nr;
}

static size_t tap_bytes(const q8_conv_shape *s) {
  return s->kernel_h * s->kernel_w * (s->in_channels / s->groups);
}

/* Depthwise (one input channel per group) has kernels of its own. */
static bool is_depthwise(const q8_conv_shape *s) {
  return s->groups > 1 && s->groups == s->in_channels;
}

static bool is_pointwise(const q8_conv_shape *s) {
  return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
         s->pad_top == 0 && s->pad_bottom == 0 && s->pad_left == 0 && s->pad_right == 0;
}

/* Per group: col_term = bias - (in_zero_point + offset) * sum W, packed by
 * the micro-kernel's own pack. */
static q8_status pack_groups(q8_conv_plan *plan, const int8_t *weights, size_t k) {
  const q8_conv_shape *s = &plan->shape;
  const q8_gemm_ukernel *uk = plan->uk;
  const size_t group_out = s->out_channels / s->groups;
  plan->group_bytes = q8_gemm_packed_bytes(uk->nr, uk->kr, group_out, k);
  const size_t bytes = s->groups * plan->group_bytes;
  plan->packed = aligned_alloc(64, (bytes + 63) / 64 * 64);
  int32_t *col_term = malloc(group_out * sizeof(int32_t));
  if (plan->packed == NULL || col_term == NULL) {
    free(col_term);
    return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for %zu bytes of packed weights", bytes);
  }
  const int32_t offset = q8_gemm_a_offset(uk, plan->in_dtype);
  for (size_t g = 0; g < s->groups; ++g) {
    const int8_t *w = weights + g * group_out * k;
    q8_gemm_col_terms(group_out, k, w, plan->bias ? plan->bias + g * group_out : NULL,
                      plan->in_zero_point, offset, col_term);
    uk->pack(uk->nr, uk->kr, group_out, k, w, col_term,
             (unsigned char *)plan->packed + g * plan->group_bytes);
  }
  free(col_term);
  plan->nc = column_block(uk, k);
  /* A quarter of L2, as the GEMM plan. */
  plan->mc_bytes = q8_cpu_l2_bytes() / 4;
  return Q8_OK;
}

/* The windows path's weights: each kernel row padded to the window. */
static q8_status pack_windows(q8_conv_plan *plan) {
  const q8_conv_shape *s = &plan->shape;
  const size_t window = q8_conv_window_bytes(plan->uk, s), k = s->kernel_h * window;
  int8_t *windows = malloc(s->out_channels * k);
  if (windows == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for %zu bytes of window weights",
                   s->out_channels * k);
  }
  q8_conv_windows_weights(s, window, plan->weights, windows);
  const q8_status st = pack_groups(plan, windows, k);
  free(windows);
  return st;
}

static q8_status build_indirection(q8_conv_plan *plan) {
  const size_t pixels = plan->out_h * plan->out_w;
  const size_t count = q8_conv_indirection(&plan->shape, plan->out_h, plan->out_w, NULL, NULL);
  plan->pixels = malloc(pixels * sizeof *plan->pixels);
  plan->segments = malloc(count * sizeof *plan->segments);
  if (plan->pixels == NULL || plan->segments == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for the indirection table (%zu pixels)",
                   pixels);
  }
  q8_conv_indirection(&plan->shape, plan->out_h, plan->out_w, plan->pixels, plan->segments);
  return Q8_OK;
}

/* Border tiles that skip the taps every row of theirs reads as padding
 * (q8_conv_tiling), for kernels with run_k_ranges whose K ranges can be whole
 * taps (Cg a multiple of KR; at most 64 taps). Leaves the tiling empty when
 * nothing would be skipped. col_adjust: what the skipped padding would have
 * added, (zero point + offset) * W summed over the skipped taps, per set and
 * output channel; none when that factor is 0. */
static q8_status build_tiling(q8_conv_plan *plan) {
  const q8_conv_shape *s = &plan->shape;
  const q8_gemm_ukernel *uk = plan->uk;
  const size_t cg = s->in_channels / s->groups, taps = s->kernel_h * s->kernel_w;
  if (uk->run_k_ranges == NULL || cg % uk->kr != 0 || taps > 64) return Q8_OK;
  /* In place: a kernel without an A panel reading the input type as is. */
  const bool direct = uk->pack_a == NULL && q8_gemm_a_offset(uk, plan->in_dtype) == 0;
  if (!q8_conv_tiling_build(s, plan->out_h, plan->out_w, q8_gemm_k_ranges_mr(uk), plan->pixels,
                            direct, &plan->tiling)) {
    return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for the border tiles");
  }
  const int64_t pad = (int64_t)plan->in_zero_point + q8_gemm_a_offset(uk, plan->in_dtype);
  if (plan->tiling.count == 0 || pad == 0) return Q8_OK;
  const size_t sets = plan->tiling.skip_sets, k = taps * cg;
  plan->col_adjust = malloc(sets * s->out_channels * sizeof(int32_t));
  if (plan->col_adjust == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for the border tiles' corrections");
  }
  for (size_t set = 0; set < sets; ++set) {
    const uint64_t skipped = plan->tiling.skipped[set];
    for (size_t n = 0; n < s->out_channels; ++n) {
      int64_t sum = 0;
      for (size_t t = 0; t < taps; ++t) {
        if (!(skipped >> t & 1u)) continue;
        const int8_t *w = plan->weights + n * k + t * cg;
        for (size_t c = 0; c < cg; ++c) sum += w[c];
      }
      /* Wrapping, as col_term is: the plan proved the true result fits. */
      plan->col_adjust[set * s->out_channels + n] = (int32_t)(uint32_t)((uint64_t)(pad * sum));
    }
  }
  return Q8_OK;
}

/* The row-panel gather for the ISA choice: ISAs that imply AVX-512 BW get
 * the masked-load one, every other the portable one. */
static q8_conv_gather_fn choose_gather(q8_isa isa) {
#if defined(__x86_64__)
  if (isa == Q8_ISA_AVX512VNNI || isa == Q8_ISA_AMX) return q8_conv_gather_x8__avx512vnni;
#else
  (void)isa;
#endif
  return NULL;
}

/* With AVX-512 VBMI, the strided-tile table for row tiles along the
 * interior of output rows: the pattern of the image's middle pixel, MR rows,
 * the anchor step to its right neighbour. Where tiles do not qualify (or no
 * memory for the table) the masked-load gather stays, and also where the
 * permutes would cost more than the copies: a 512-bit vpermb counts 2 (Zen 4
 * splits it), a chunk's store 1, against a load and a store per segment and
 * row. Measured on Zen 4: the MobileNetV2 stem (12 permutes, 4 chunks
 * against 24 copies) 136 -> 130 us; ResNet-50 conv1 (76 permutes, 19 chunks
 * against 56 copies) 667 -> 735 us, so it keeps the copies. (Both now take
 * the kernel-row windows instead, which gather nothing: the stem 114 -> 95
 * us, conv1 668 -> 646 us; this stays for the grouped and dilated convs of
 * few channels the windows do not take.) */
static void choose_strided_gather(q8_conv_plan *plan) {
#if defined(__x86_64__)
  if (plan->gather != q8_conv_gather_x8__avx512vnni || plan->out_w < 2 ||
      !q8_cpu_usable(q8_cpu(), Q8_CPU_AVX512VBMI)) {
    return;
  }
  const size_t mid = plan->out_h / 2 * plan->out_w + (plan->out_w - 1) / 2;
  const q8_conv_pixel *p = &plan->pixels[mid];
  if (p[1].first != p->first) return;
  const size_t k = tap_bytes(&plan->shape);
  if (q8_conv_strided_build(plan->segments, p->first, p->count, plan->uk->mr,
                            p[1].anchor - p->anchor, q8_conv_indirect_panel_stride(plan->uk, k),
                            &plan->strided)) {
    const size_t permutes = plan->strided.chunk_first[plan->strided.chunks];
    if (2 * permutes + plan->strided.chunks < 2 * plan->uk->mr * plan->strided.sources) {
      plan->gather = q8_conv_gather_x8__avx512vbmi;
    } else {
      q8_conv_strided_free(&plan->strided);
    }
  }
#else
  (void)plan;
#endif
}

/* The path and micro-kernel: the ISA choice's GEMM kernel for this many
 * output pixels; no micro-kernel (Q8_ISA=ref) means the reference. */
static q8_status choose_path(q8_conv_plan *plan) {
  const q8_conv_shape *s = &plan->shape;
  const q8_kernel *kernel = q8_select_gemm_kernel(s->batch * plan->out_h * plan->out_w, false);
  if (kernel == NULL) return Q8_ERR_ISA; /* detail set by the selection */
  if (kernel->ukernel == NULL) {
    plan->path = CONV_REF;
    snprintf(plan->name, sizeof plan->name, "q8_conv_ref");
    return Q8_OK;
  }
  if (is_depthwise(s)) {
    plan->path = CONV_DEPTHWISE;
    const q8_status st = q8_dwconv_create(s, plan->in_dtype, plan->in_zero_point, plan->weights,
                                          plan->bias, plan->requantize ? &plan->rq.params : NULL,
                                          &plan->dw);
    if (st == Q8_OK) snprintf(plan->name, sizeof plan->name, "%s", q8_dwconv_kernel(plan->dw));
    return st;
  }
  plan->uk = kernel->ukernel;
  if (!is_pointwise(s) && q8_conv_windows_suit(plan->uk, s)) {
    plan->path = CONV_WINDOWS;
    snprintf(plan->name, sizeof plan->name, "windows:%s", plan->uk->name);
    return pack_windows(plan);
  }
  plan->path = is_pointwise(s) ? CONV_GEMM : CONV_IGEMM;
  plan->gather = choose_gather(kernel->isa);
  snprintf(plan->name, sizeof plan->name, "%s:%s", plan->path == CONV_GEMM ? "gemm" : "igemm",
           plan->uk->name);
  q8_status st = pack_groups(plan, plan->weights, tap_bytes(s));
  if (st == Q8_OK && plan->path == CONV_IGEMM) st = build_indirection(plan);
  if (st == Q8_OK && plan->path == CONV_IGEMM) choose_strided_gather(plan);
  if (st == Q8_OK && plan->path == CONV_IGEMM) st = build_tiling(plan);
  if (st == Q8_OK && plan->tiling.count) {
    snprintf(plan->name, sizeof plan->name, "igemm+border:%s", plan->uk->name);
  }
  return st;
}

static q8_status init_plan(q8_conv_plan *plan, const q8_conv_desc *d) {
  const q8_conv_shape *s = &d->shape;
  const size_t weight_bytes = s->out_channels * tap_bytes(s);
  plan->weights = malloc(weight_bytes);
  if (plan->weights == NULL) {
    return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for %zu bytes of weights", weight_bytes);
  }
  repack_weights(d, plan->weights);
  q8_status st = check_accumulator_range(plan, d->bias);
  if (st != Q8_OK) return st;
  if (d->bias != NULL) {
    plan->bias = malloc(s->out_channels * sizeof(int32_t));
    if (plan->bias == NULL) return q8_fail(Q8_ERR_NOMEM, "conv plan: no memory for the bias");
    memcpy(plan->bias, d->bias, s->out_channels * sizeof(int32_t));
  }
  if (d->out_dtype != Q8_INT32) {
    plan->requantize = true;
    const q8_plan_output output = conv_output(d);
    if ((st = q8_plan_requant_init(&plan->rq, &output)) != Q8_OK) return st;
    plan->rq.params.fp32_clamp_free = clamp_free(plan, d->bias);
  }
  if ((st = choose_path(plan)) != Q8_OK) return st;
  if (plan->path != CONV_REF) { /* packed: the OHWI copy and bias are folded in */
    free(plan->weights);
    free(plan->bias);
    plan->weights = NULL;
    plan->bias = NULL;
  }
  return Q8_OK;
}

q8_status q8_conv_plan_create(const q8_conv_desc *desc, q8_conv_plan **plan_out) {
  q8_clear_error();
  if (plan_out == NULL) return q8_fail(Q8_ERR_NULL, "conv plan output pointer is NULL");
  *plan_out = NULL;
  if (desc == NULL) return q8_fail(Q8_ERR_NULL, "conv descriptor is NULL");
  size_t out_h = 0, out_w = 0;
  q8_status s = check_desc(desc, &out_h, &out_w);
  if (s != Q8_OK) return s;

  q8_conv_plan *plan = calloc(1, sizeof *plan);
  if (plan == NULL) return q8_fail(Q8_ERR_NOMEM, "conv plan: out of memory");
  plan->shape = desc->shape;
  plan->out_h = out_h;
  plan->out_w = out_w;
  plan->in_dtype = desc->in_dtype;
  plan->in_zero_point = desc->in_zero_point;
  plan->threads = desc->threads ? desc->threads : q8_default_threads();
  if ((s = init_plan(plan, desc)) != Q8_OK) {
    q8_conv_plan_destroy(plan);
    return s;
  }
  *plan_out = plan;
  return Q8_OK;
}

/* One task of a parallel run: a range of whole row tiles (output pixels) or
 * of whole column tiles of every group. */
typedef struct run_ctx {
  const q8_conv_plan *plan;
  const unsigned char *input;
  unsigned char *output;
  q8_tile_split split;
  atomic_int status;  /* written by any task that fails */
} run_ctx;

static void run_group(const run_ctx *r, size_t g, size_t m0, size_t m1, size_t n0, size_t n1,
                      unsigned char *panel) {
  const q8_conv_plan *plan = r->plan;
  const q8_conv_shape *s = &plan->shape;
  const size_t group_in = s->in_channels / s->groups, group_out = s->out_channels / s->groups;
  q8_requant_params rq_group;
  const q8_requant_params *rq =
      q8_requant_params_at(plan->requantize ? &plan->rq.params : NULL, g * group_out, &rq_group);
  const size_t c_elem = rq ? 1 : sizeof(int32_t);
  const unsigned char *packed = (const unsigned char *)plan->packed + g * plan->group_bytes;
  unsigned char *c = r->output + g * group_out * c_elem;
  if (plan->path == CONV_GEMM) {
    const q8_gemm_blocked_args args = {
        .k = group_in, .a = r->input + g * group_in, .lda = s->in_channels,
        .a_dtype = plan->in_dtype, .packed = packed, .c = c, .ldc = s->out_channels, .rq = rq,
        .nc = plan->nc, .mc_bytes = plan->mc_bytes};
    q8_gemm_blocked(plan->uk, &args, m0, m1, n0, n1);
    return;
  }
  if (plan->path == CONV_WINDOWS) {
    const q8_conv_windows_args args = {
        .shape = s, .out_h = plan->out_h, .out_w = plan->out_w, .input = r->input, .in_dtype = plan->in_dtype, .in_zero_point = plan->in_zero_point,
        .packed = packed, .c = c, .rq = rq, .nc = plan->nc, .buffer = panel};
    q8_conv_windows(plan->uk, &args, m0, m1, n0, n1);
    return;
  }
  const q8_conv_indirect_args args = {
      .k = tap_bytes(s), .panel_stride = q8_conv_indirect_panel_stride(plan->uk, tap_bytes(s)),
      .input = r->input + g * group_in,
      .image_pixels = plan->out_h * plan->out_w,
      .image_bytes = s->in_h * s->in_w * s->in_channels, .in_dtype = plan->in_dtype,
      .in_zero_point = plan->in_zero_point, .pixels = plan->pixels,
      .segments = plan->segments, .packed = packed, .c = c, .ldc = s->out_channels, .rq = rq,
      .nc = plan->nc, .panel = panel, .gather = plan->gather,
      .strided = plan->strided.entries ? &plan->strided : NULL};
  if (plan->tiling.count) {
    /* m0, m1: tiles of the tiling. */
    q8_conv_indirect_tiled(plan->uk, &args, &plan->tiling,
                           plan->col_adjust ? plan->col_adjust + g * group_out : NULL,
                           s->out_channels, m0, m1, n0, n1);
    return;
  }
  q8_conv_indirect(plan->uk, &args, m0, m1, n0, n1);
}

/* Per-thread scratch: the igemm row panel, or the windows' row buffer. */
static size_t scratch_bytes(const q8_conv_plan *plan) {
  if (plan->path == CONV_WINDOWS) return q8_conv_windows_buffer_bytes(plan->uk, &plan->shape);
  if (plan->path == CONV_IGEMM) {
    return q8_conv_indirect_panel_bytes(plan->uk, tap_bytes(&plan->shape));
  }
  return 0;
}

/* Row units the threads split: tiles of the tiling, output lines (windows),
 * or row tiles of MR pixels. */
static size_t row_units(const q8_conv_plan *plan) {
  if (plan->tiling.count) return plan->shape.batch * plan->tiling.count;
  if (plan->path == CONV_WINDOWS) return plan->shape.batch * plan->out_h;
  const size_t pixels = plan->shape.batch * plan->out_h * plan->out_w;
  return (pixels + plan->uk->mr - 1) / plan->uk->mr;
}

static void run_task(void *p, size_t i) {
  run_ctx *r = p;
  const q8_conv_plan *plan = r->plan;
  size_t first, last;
  q8_split_task_range(&r->split, i, &first, &last);
  if (first == last) return;
  unsigned char *panel = NULL;
  const size_t scratch = scratch_bytes(plan);
  if (scratch) {
    panel = aligned_alloc(64, (scratch + 63) / 64 * 64);
    if (panel == NULL) {
      atomic_store(&r->status, (int)Q8_ERR_NOMEM);
      return;
    }
  }
  /* Rows: output pixels; with border tiles, tiles; windows: output lines. */
  const bool by_units = plan->tiling.count != 0 || plan->path == CONV_WINDOWS;
  const size_t pixels = plan->shape.batch * plan->out_h * plan->out_w;
  const size_t rows = by_units ? row_units(plan) : pixels;
  const size_t row_unit = by_units ? 1 : plan->uk->mr;
  const size_t group_out = plan->shape.out_channels / plan->shape.groups;
  for (size_t g = 0; g < plan->shape.groups; ++g) {
    if (r->split.rows) {
      const size_t m1 = last * row_unit < rows ? last * row_unit : rows;
      run_group(r, g, first * row_unit, m1, 0, group_out, panel);
    } else {
      const size_t n1 = last * plan->uk->nr < group_out ? last * plan->uk->nr : group_out;
      run_group(r, g, 0, rows, first * plan->uk->nr, n1, panel);
    }
  }
  free(panel);
}

static q8_status run_reference(const q8_conv_plan *plan, const void *input, void *output) {
  const q8_status s = q8_conv_ref(&plan->shape, input, plan->in_dtype, plan->in_zero_point,
                                  plan->weights, plan->bias,
                                  plan->requantize ? &plan->rq.params : NULL, output);
  if (s != Q8_OK) {
    /* The plan proved the accumulator range, so this is a bug. */
    return q8_fail(Q8_ERR_INTERNAL, "conv reference returned %s", q8_status_str(s));
  }
  return Q8_OK;
}

q8_status q8_conv_run(const q8_conv_plan *plan, const void *input, void *output) {
  q8_clear_error();
  if (plan == NULL) return q8_fail(Q8_ERR_NULL, "conv plan is NULL");
  if (input == NULL) return q8_fail(Q8_ERR_NULL, "conv input is NULL");
  if (output == NULL) return q8_fail(Q8_ERR_NULL, "conv output is NULL");
  if (plan->path == CONV_REF) return run_reference(plan, input, output);
  if (plan->path == CONV_DEPTHWISE) return q8_dwconv_run(plan->dw, input, output, plan->threads);
  const size_t group_out = plan->shape.out_channels / plan->shape.groups;
  const size_t m_tiles = row_units(plan);
  const size_t n_tiles = (group_out + plan->uk->nr - 1) / plan->uk->nr;
  run_ctx r = {.plan = plan, .input = input, .output = output};
  atomic_init(&r.status, Q8_OK);
  r.split = q8_split_tiles(plan->threads, m_tiles, n_tiles);
  q8_parallel_for(plan->threads, r.split.tasks, run_task, &r);
  const q8_status status = (q8_status)atomic_load(&r.status);
  if (status != Q8_OK) {
    return q8_fail(status, "conv run: no memory for the %zu-byte scratch of a thread",
                   scratch_bytes(plan));
  }
  return Q8_OK;
}

void q8_conv_plan_destroy(q8_conv_plan *plan) {
  if (plan == NULL) return;
  free(plan->weights);
  free(plan->bias);
  free(plan->packed);
  free(plan->pixels);
  q8_dwconv_destroy(plan->dw);
  free(plan->segments);
  q8_conv_tiling_free(&plan->tiling);
  q8_conv_strided_free(&plan->strided);
  free(plan->col_adjust);
  q8_plan_requant_free(&plan->rq);
  free(plan);
}

const char *q8_conv_plan_kernel(const q8_conv_plan *plan) { return plan ? plan->name : ""; }

size_t q8_conv_plan_threads(const q8_conv_plan *plan) { return plan ? plan->threads : 0; }
