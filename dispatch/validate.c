/* Argument checks for the public API: every message names the argument,
 * the channel and the limit, so a caller can fix the input without a debugger. */
#include <math.h>
#include <stdio.h>

#include "dispatch/internal.h"

int32_t q8_dtype_min(q8_dtype dtype) {
  return dtype == Q8_UINT8 ? 0 : dtype == Q8_INT8 ? -128 : INT32_MIN;
}

int32_t q8_dtype_max(q8_dtype dtype) {
  return dtype == Q8_UINT8 ? 255 : dtype == Q8_INT8 ? 127 : INT32_MAX;
}

const char *q8_dtype_name(q8_dtype dtype) {
  switch (dtype) {
    case Q8_INT8: return "int8";
    case Q8_UINT8: return "uint8";
    case Q8_INT32: return "int32";
    case Q8_FLOAT32: return "float32";
  }
  return "unknown dtype";
}

size_t q8_dtype_size(q8_dtype dtype) {
  return dtype == Q8_INT32 || dtype == Q8_FLOAT32 ? 4 : 1;
}

q8_status q8_check_scale(float scale, const char *what) {
  if (!isfinite(scale) || scale <= 0.0f) {
    return q8_fail(Q8_ERR_SCALE, "%s = %g: a scale must be finite and > 0", what, (double)scale);
  }
  return Q8_OK;
}

q8_status q8_check_zero_point(int32_t zero_point, q8_dtype dtype, const char *what) {
  if (zero_point < q8_dtype_min(dtype) || zero_point > q8_dtype_max(dtype)) {
    return q8_fail(Q8_ERR_ZERO_POINT, "%s = %d is outside %s [%d, %d]", what, (int)zero_point,
                   q8_dtype_name(dtype), (int)q8_dtype_min(dtype), (int)q8_dtype_max(dtype));
  }
  return Q8_OK;
}

int64_t q8_activation_span(q8_dtype dtype, int32_t zero_point) {
  const int64_t below = (int64_t)zero_point - q8_dtype_min(dtype);
  const int64_t above = (int64_t)q8_dtype_max(dtype) - zero_point;
  return below > above ? below : above;
}

q8_status q8_check_accumulator_bound(const char *op, size_t channel, int64_t bias, int64_t bound) {
  if (bias + bound > INT32_MAX || bias - bound < INT32_MIN) {
    return q8_fail(Q8_ERR_OVERFLOW,
                   "%s output channel %zu: bias %lld + sum of up to +-%lld leaves int32 "
                   "for some activations; reduce the bias or the weights' magnitude",
                   op, channel, (long long)bias, (long long)bound);
  }
  return Q8_OK;
}

static bool is_8bit(q8_dtype dtype) { return dtype == Q8_INT8 || dtype == Q8_UINT8; }

q8_status q8_check_quant_params(const q8_quant_params *p, const char *what) {
  if (p == NULL) return q8_fail(Q8_ERR_NULL, "%s quantization parameters are NULL", what);
  if (!is_8bit(p->dtype)) {
    return q8_fail(Q8_ERR_ARG, "%s dtype %d: must be Q8_INT8 or Q8_UINT8", what, (int)p->dtype);
  }
  if (p->channels == 0) return q8_fail(Q8_ERR_ARG, "%s channels = 0: must be >= 1", what);
  if (p->scale == NULL) return q8_fail(Q8_ERR_NULL, "%s scale array is NULL", what);
  for (size_t c = 0; c < p->channels; ++c) {
    char name[96];
    snprintf(name, sizeof name, "%s scale[%zu]", what, c);
    q8_status s = q8_check_scale(p->scale[c], name);
    if (s != Q8_OK) return s;
    if (p->zero_point != NULL) {
      snprintf(name, sizeof name, "%s zero_point[%zu]", what, c);
      s = q8_check_zero_point(p->zero_point[c], p->dtype, name);
      if (s != Q8_OK) return s;
    }
  }
  return Q8_OK;
}

q8_status q8_check_requant_params(const q8_requant_params *p, const char *what) {
  if (p == NULL) return q8_fail(Q8_ERR_NULL, "%s requantization parameters are NULL", what);
  if (p->mode != Q8_REQUANT_GEMMLOWP && p->mode != Q8_REQUANT_SINGLE &&
      p->mode != Q8_REQUANT_FP32) {
    return q8_fail(Q8_ERR_ARG, "%s requant mode %d: must be gemmlowp, single or fp32", what,
                   (int)p->mode);
  }
  if (!is_8bit(p->out_dtype)) {
    return q8_fail(Q8_ERR_ARG, "%s out_dtype %d: must be Q8_INT8 or Q8_UINT8", what,
                   (int)p->out_dtype);
  }
  char name[96];
  snprintf(name, sizeof name, "%s zero_point", what);
  q8_status s = q8_check_zero_point(p->zero_point, p->out_dtype, name);
  if (s != Q8_OK) return s;
  snprintf(name, sizeof name, "%s qmin", what);
  if ((s = q8_check_zero_point(p->qmin, p->out_dtype, name)) != Q8_OK) return s;
  snprintf(name, sizeof name, "%s qmax", what);
  if ((s = q8_check_zero_point(p->qmax, p->out_dtype, name)) != Q8_OK) return s;
  if (p->qmin > p->qmax) {
    return q8_fail(Q8_ERR_ZERO_POINT, "%s clamp [%d, %d] is empty: qmin > qmax", what,
                   (int)p->qmin, (int)p->qmax);
  }
  if (p->channels == 0) return q8_fail(Q8_ERR_ARG, "%s channels = 0: must be >= 1", what);
  if (p->mode == Q8_REQUANT_FP32) {
    if (p->scale == NULL) return q8_fail(Q8_ERR_NULL, "%s scale array is NULL (fp32 mode)", what);
    for (size_t c = 0; c < p->channels; ++c) {
      if (!isfinite(p->scale[c]) || p->scale[c] < 0.0f) {
        return q8_fail(Q8_ERR_SCALE, "%s scale[%zu] = %g: must be finite and >= 0", what, c,
                       (double)p->scale[c]);
      }
    }
    return Q8_OK;
  }
  if (p->multiplier == NULL || p->shift == NULL) {
    return q8_fail(Q8_ERR_NULL, "%s multiplier/shift arrays are NULL (%s mode)", what,
                   p->mode == Q8_REQUANT_GEMMLOWP ? "gemmlowp" : "single");
  }
  for (size_t c = 0; c < p->channels; ++c) {
    const int32_t m = p->multiplier[c];
    if (m != 0 && m < (INT32_C(1) << 30)) {
      return q8_fail(Q8_ERR_SCALE,
                     "%s multiplier[%zu] = %d: a Q31 mantissa must be 0 or in [2^30, 2^31)",
                     what, c, (int)m);
    }
    if (p->shift[c] < -31 || p->shift[c] > 30) {
      return q8_fail(Q8_ERR_SCALE, "%s shift[%zu] = %d: must be in [-31, 30]", what, c,
                     (int)p->shift[c]);
    }
  }
  return Q8_OK;
}
