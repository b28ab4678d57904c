#define _GNU_SOURCE /* cpu_set_t in peers_internal.h */
/* Peers: the convolution qbench conv times, through oneDNN
 * (convolution_forward) and XNNPACK (qc8 convolution) on the same inputs
 * (qb_conv_data). Only the execute call is timed; primitive/operator creation,
 * weight reorders and packing are not. */
#include <stdlib.h>
#include <string.h>

#include "bench/peers_internal.h"
#include "bench/qbench.h"

/* ---- oneDNN ---------------------------------------------------------------
 * NHWC s8 or u8 source and s8 weights in the layout the primitive picks
 * ("any"), reordered from OHWI (untimed). A nonzero source zero point is
 * oneDNN's zero-point attribute, under which padding also reads as the zero
 * point, as in q8; the output is requantized with per-channel output scales and the dst
 * zero point as an eltwise linear post-op (x + zp) before oneDNN's rounding,
 * as bench/peers.c does for the GEMM, so exact .5 ties can differ by 1. */
#if QB_HAVE_ONEDNN

static bool onednn_conv(const qb_conv_data *d, q8_dtype out, size_t threads, const qb_peer_timing *timing, void *y,
                        qb_peer_result *result, char *err, size_t err_size) {
  const q8_conv_shape *s = &d->shape;
  bool ok = true;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  float *scales = malloc(d->n * sizeof(float));
  qb_dnnl_env env;
  if (!qb_dnnl_begin(threads, &env, err, err_size)) {
    free(scales);
    return false;
  }
  if (scales == NULL) {
    ok = qb_peer_fail(err, err_size, "onednn: out of memory");
    goto done;
  }

  const dnnl_dim_t batch = (dnnl_dim_t)s->batch, ic = (dnnl_dim_t)s->in_channels, oc = (dnnl_dim_t)s->out_channels;
  const dnnl_dim_t groups = (dnnl_dim_t)s->groups, kh = (dnnl_dim_t)s->kernel_h, kw = (dnnl_dim_t)s->kernel_w;
  const dnnl_dims_t src_dims = {batch, ic, (dnnl_dim_t)s->in_h, (dnnl_dim_t)s->in_w};
  const dnnl_dims_t dst_dims = {batch, oc, (dnnl_dim_t)d->out_h, (dnnl_dim_t)d->out_w};
  const dnnl_dims_t bias_dims = {oc};
  const dnnl_dims_t w_dims = {oc, ic, kh, kw};
  const dnnl_dims_t gw_dims = {groups, oc / groups, ic / groups, kh, kw};
  const dnnl_dims_t strides = {(dnnl_dim_t)s->stride_h, (dnnl_dim_t)s->stride_w};
  const dnnl_dims_t dilates = {(dnnl_dim_t)s->dilation_h - 1, (dnnl_dim_t)s->dilation_w - 1}; /* 0: dense */
  const dnnl_dims_t pad_l = {(dnnl_dim_t)s->pad_top, (dnnl_dim_t)s->pad_left};
  const dnnl_dims_t pad_r = {(dnnl_dim_t)s->pad_bottom, (dnnl_dim_t)s->pad_right};
  const dnnl_data_type_t dst_type = out == Q8_INT32 ? dnnl_s32 : out == Q8_INT8 ? dnnl_s8 : dnnl_u8;
  const bool grouped = s->groups > 1;
  dnnl_memory_desc_t src_md, w_any_md, w_user_md, bias_md, dst_md;
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, d->in_dtype == Q8_UINT8 ? dnnl_u8 : dnnl_s8, dnnl_nhwc));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any_md, grouped ? 5 : 4, grouped ? gw_dims : w_dims, dnnl_s8,
                                        dnnl_format_tag_any));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user_md, grouped ? 5 : 4, grouped ? gw_dims : w_dims, dnnl_s8,
                                        grouped ? dnnl_gohwi : dnnl_ohwi));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_s32, dnnl_a));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dst_type, dnnl_nhwc));

  DNNL_TRY(dnnl_primitive_attr_create(&attr));
  /* Only when needed: with a zero point oneDNN 2.6 leaves its brgemm
   * convolutions for the older jit_int8 ones. */
  if (d->in_zero_point != 0) DNNL_TRY(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &d->in_zero_point));
  if (out != Q8_INT32) {
    /* The requantization scale of channel j as q8 computes it (double, rounded once). */
    for (size_t j = 0; j < d->n; ++j) scales[j] = (float)((double)d->in_scale * d->w_scales[j] / d->out_scale);
    DNNL_TRY(qb_dnnl_requant_attr(attr, scales, d->n, d->out_zero_point));
  }
  dnnl_convolution_desc_t cd;
  DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
                                                      &w_any_md, &bias_md, &dst_md, strides, dilates, pad_l, pad_r));
  DNNL_TRY(dnnl_primitive_desc_create(&pd, &cd, attr, env.engine, NULL));
  ok = qb_dnnl_run(&env, pd, &w_user_md, d->weights, d->input, d->bias, y, timing, result, err, err_size);

done:
  dnnl_primitive_desc_destroy(pd);
  dnnl_primitive_attr_destroy(attr);
  qb_dnnl_end(&env);
  free(scales);
  return ok;
}
#endif /* QB_HAVE_ONEDNN */

/* ---- XNNPACK ---------------------------------------------------------------
 * The qc8 convolution (per-channel kernel scales) of the 2022 XNNPACK: its
 * kernel layout is [groups][group_output_channels][kh][kw][group_input_channels],
 * q8's OHWI. Depthwise is groups = C with one input channel per group, which
 * XNNPACK runs on its dwconv micro-kernels; a 1x1 stride-1 unpadded layer on
 * its GEMM, the rest on its indirect GEMM. Output s8 only (u8 through the sign
 * flip, as for the GEMM peer; no int32). */
#if QB_HAVE_XNNPACK
static bool xnnpack_conv(const qb_conv_data *d, q8_dtype out, size_t threads, const qb_peer_timing *timing, void *y,
                         qb_peer_result *result, char *err, size_t err_size) {
  if (out == Q8_INT32) return qb_peer_fail(err, err_size, "xnnpack has no int32-output convolution");
  if (qb_xnn_init() != xnn_status_success) {
    return qb_peer_fail(err, err_size, "xnnpack: xnn_initialize failed (status %d)", (int)qb_xnn_init());
  }
  const q8_conv_shape *s = &d->shape;
  const bool u8 = out == Q8_UINT8;
  const int32_t zp = u8 ? d->out_zero_point - 128 : d->out_zero_point; /* the flip adds 128 back */
  /* u8 input: x - zp = (x ^ 0x80) - (zp - 128), so the s8 copy (made here,
   * untimed) with the zero point moved gives the same sums, padding included. */
  const bool in_u8 = d->in_dtype == Q8_UINT8;
  const int32_t in_zp = in_u8 ? d->in_zero_point - 128 : d->in_zero_point;
  unsigned char *input = in_u8 ? malloc(qb_conv_input_count(d)) : NULL;
  if (in_u8 && input == NULL) return qb_peer_fail(err, err_size, "xnnpack: out of memory");
  if (in_u8) {
    memcpy(input, d->input, qb_conv_input_count(d));
    qb_flip_sign_bits(input, qb_conv_input_count(d));
  }
  bool ok = true;
  qb_affinity_guard affinity;
  qb_unpin_for_workers(&affinity, threads);
  pthreadpool_t pool = threads > 1 ? pthreadpool_create(threads) : NULL;
  xnn_operator_t op = NULL;
  enum xnn_status st;
  if (threads > 1 && pool == NULL) {
    ok = qb_peer_fail(err, err_size, "xnnpack: pthreadpool_create(%zu) failed", threads);
    goto done;
  }
  st = xnn_create_convolution2d_nhwc_qc8(
      (uint32_t)s->pad_top, (uint32_t)s->pad_right, (uint32_t)s->pad_bottom, (uint32_t)s->pad_left,
      (uint32_t)s->kernel_h, (uint32_t)s->kernel_w, (uint32_t)s->stride_h, (uint32_t)s->stride_w,
      (uint32_t)s->dilation_h, (uint32_t)s->dilation_w, (uint32_t)s->groups, s->in_channels / s->groups,
      s->out_channels / s->groups, s->in_channels, s->out_channels, (int8_t)in_zp, d->in_scale,
      d->w_scales, d->weights, d->bias, (int8_t)zp, d->out_scale, INT8_MIN, INT8_MAX, 0, &op);
  if (st != xnn_status_success) {
    ok = qb_peer_fail(err, err_size, "xnnpack: xnn_create_convolution2d_nhwc_qc8 failed (status %d)", (int)st);
    goto done;
  }
  st = xnn_setup_convolution2d_nhwc_qc8(op, s->batch, s->in_h, s->in_w, in_u8 ? (const void *)input : d->input, y,
                                        pool);
  if (st != xnn_status_success) {
    ok = qb_peer_fail(err, err_size, "xnnpack: xnn_setup_convolution2d_nhwc_qc8 failed (status %d)", (int)st);
    goto done;
  }
  if ((st = xnn_run_operator(op, pool)) != xnn_status_success) {
    ok = qb_peer_fail(err, err_size, "xnnpack: xnn_run_operator failed (status %d)", (int)st);
    goto done;
  }
  if (u8) qb_flip_sign_bits(y, qb_conv_output_count(d));
  qb_xnn_run run = {.op = op, .pool = pool, .c = y, .bytes = qb_conv_output_count(d), .flip = u8};
  qb_peer_time(qb_xnn_execute, &run, timing, result);
  qb_xnn_describe(d->m, result);
  if (qb_conv_is_depthwise(s)) {
    snprintf(result->impl, sizeof result->impl, "qc8_dwconv (%s)", result->isa);
  } else {
    const bool gemm = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
                      s->pad_top + s->pad_left + s->pad_bottom + s->pad_right == 0;
    char kernel[64];
    snprintf(kernel, sizeof kernel, "%.63s", result->impl + strlen("qc8_gemm_"));
    snprintf(result->impl, sizeof result->impl, "qc8_%s_%s", gemm ? "gemm" : "igemm", kernel);
  }
done:
  if (op) xnn_delete_operator(op);
  if (pool) pthreadpool_destroy(pool);
  qb_restore_affinity(&affinity);
  free(input);
  return ok;
}
#endif /* QB_HAVE_XNNPACK */

bool qb_peer_conv_measure(qb_peer peer, const qb_conv_data *d, size_t threads, q8_dtype out,
                          const qb_peer_timing *timing,
                          void *y, qb_peer_result *result, char *err, size_t err_size) {
  *result = (qb_peer_result){0};
  if (err && err_size) err[0] = '\0';
  const char *why = NULL;
  if (!qb_peer_built(peer, &why)) return qb_peer_fail(err, err_size, "%s", why);
  if (threads == 0) threads = 1;
  (void)d;
  (void)out;
  (void)timing;
  (void)y;
#if QB_HAVE_ONEDNN
  if (peer == QB_PEER_ONEDNN) return onednn_conv(d, out, threads, timing, y, result, err, err_size);
#endif
#if QB_HAVE_XNNPACK
  if (peer == QB_PEER_XNNPACK) return xnnpack_conv(d, out, threads, timing, y, result, err, err_size);
#endif
  return qb_peer_fail(err, err_size, "%s: no conv peer", qb_peer_name(peer));
}
