/* The output side of GEMM and convolution plans, shared so that both check
 * and compute requantization parameters the same way. */
#include <stdio.h>
#include <stdlib.h>

#include "dispatch/internal.h"

q8_status q8_check_plan_output(const q8_plan_output *o) {
  if (o->out_dtype == Q8_INT32) return Q8_OK;
  if (o->out_dtype != Q8_INT8 && o->out_dtype != Q8_UINT8) {
    return q8_fail(Q8_ERR_ARG, "%s out_dtype %d: must be Q8_INT32, Q8_INT8 or Q8_UINT8", o->op,
                   (int)o->out_dtype);
  }
  if (o->mode != Q8_REQUANT_GEMMLOWP && o->mode != Q8_REQUANT_SINGLE &&
      o->mode != Q8_REQUANT_FP32) {
    return q8_fail(Q8_ERR_ARG, "%s requant mode %d: must be gemmlowp, single or fp32", o->op,
                   (int)o->mode);
  }
  char name[96];
  snprintf(name, sizeof name, "%s %s", o->op, o->in_scale_name);
  q8_status s = q8_check_scale(o->in_scale, name);
  if (s != Q8_OK) return s;
  snprintf(name, sizeof name, "%s out_scale", o->op);
  if ((s = q8_check_scale(o->out_scale, name)) != Q8_OK) return s;
  if (o->w_channels != 1 && o->w_channels != o->channels) {
    return q8_fail(Q8_ERR_ARG, "%s w_channels = %zu: must be 1 (per tensor) or %s = %zu", o->op,
                   o->w_channels, o->channels_name, o->channels);
  }
  if (o->w_scales == NULL) return q8_fail(Q8_ERR_NULL, "%s w_scales are NULL", o->op);
  for (size_t c = 0; c < o->w_channels; ++c) {
    snprintf(name, sizeof name, "%s w_scales[%zu]", o->op, c);
    if ((s = q8_check_scale(o->w_scales[c], name)) != Q8_OK) return s;
  }
  snprintf(name, sizeof name, "%s out_zero_point", o->op);
  if ((s = q8_check_zero_point(o->out_zero_point, o->out_dtype, name)) != Q8_OK) return s;
  if (o->clamp) {
    snprintf(name, sizeof name, "%s out_min", o->op);
    if ((s = q8_check_zero_point(o->out_min, o->out_dtype, name)) != Q8_OK) return s;
    snprintf(name, sizeof name, "%s out_max", o->op);
    if ((s = q8_check_zero_point(o->out_max, o->out_dtype, name)) != Q8_OK) return s;
    if (o->out_min > o->out_max) {
      return q8_fail(Q8_ERR_ZERO_POINT, "%s clamp [%d, %d] is empty: out_min > out_max", o->op,
                     (int)o->out_min, (int)o->out_max);
    }
  }
  return Q8_OK;
}

q8_status q8_plan_requant_init(q8_plan_requant *r, const q8_plan_output *o) {
  const size_t channels = o->w_channels;
  r->multiplier = calloc(channels, sizeof(int32_t));
  r->shift = calloc(channels, sizeof(int32_t));
  r->scale = calloc(channels, sizeof(float));
  if (!r->multiplier || !r->shift || !r->scale) {
    return q8_fail(Q8_ERR_NOMEM, "%s plan: no memory for %zu requantization channels", o->op,
                   channels);
  }
  const int32_t qmin = o->clamp ? o->out_min : q8_dtype_min(o->out_dtype);
  const int32_t qmax = o->clamp ? o->out_max : q8_dtype_max(o->out_dtype);
  return q8_requant_params_init(&r->params, o->mode, channels, o->in_scale, o->w_scales,
                                o->out_scale, o->out_dtype, o->out_zero_point, qmin, qmax,
                                r->multiplier, r->shift, r->scale);
}

void q8_plan_requant_free(q8_plan_requant *r) {
  free(r->multiplier);
  free(r->shift);
  free(r->scale);
}

bool q8_requant_channel_clamp_free(const q8_requant_params *p, size_t channel, int64_t acc_bound) {
  if (p->mode != Q8_REQUANT_FP32 || p->qmax != q8_dtype_max(p->out_dtype)) return false;
  const double scale = p->scale[p->channels > 1 ? channel : 0];
  return (double)acc_bound * scale < 0x1p30;
}
