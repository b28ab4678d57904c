/* Tensor quantization math of the public API: profiles, multipliers, and the
 * element-wise quantize / dequantize / requantize entry points, which validate
 * their arguments and run the kernel dispatch picked. */
#include <math.h>
#include <stdio.h>

#include "dispatch/internal.h"
#include "dispatch/registry.h"

q8_profile q8_profile_get(q8_profile_id id) {
  switch (id) {
    case Q8_PROFILE_TFLITE:
      return (q8_profile){Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE, Q8_REQUANT_GEMMLOWP};
    case Q8_PROFILE_PYTORCH:
      return (q8_profile){Q8_ROUND_HALF_EVEN, Q8_SCALE_RECIPROCAL, Q8_REQUANT_FP32};
    case Q8_PROFILE_ONNX:
    default:
      return (q8_profile){Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE, Q8_REQUANT_FP32};
  }
}

q8_status q8_multiplier_from_scale(double real, int32_t *multiplier, int32_t *shift) {
  q8_clear_error();
  if (multiplier == NULL || shift == NULL) {
    return q8_fail(Q8_ERR_NULL, "multiplier/shift output pointer is NULL");
  }
  if (!isfinite(real) || real < 0.0) {
    return q8_fail(Q8_ERR_SCALE, "real multiplier %g: must be finite and >= 0", real);
  }
  q8_quantize_multiplier(real, multiplier, shift);
  return Q8_OK;
}

q8_status q8_requant_params_init(q8_requant_params *p, q8_requant_mode mode, size_t channels,
                                 float input_scale, const float *weight_scales,
                                 float output_scale, q8_dtype out_dtype, int32_t zero_point,
                                 int32_t qmin, int32_t qmax,
                                 int32_t *multiplier, int32_t *shift, float *scale_out) {
  q8_clear_error();
  if (p == NULL || weight_scales == NULL || multiplier == NULL || shift == NULL ||
      scale_out == NULL) {
    return q8_fail(Q8_ERR_NULL, "requant params init: a pointer argument is NULL");
  }
  if (channels == 0) return q8_fail(Q8_ERR_ARG, "requant params init: channels = 0");
  q8_status s = q8_check_scale(input_scale, "input scale");
  if (s != Q8_OK) return s;
  if ((s = q8_check_scale(output_scale, "output scale")) != Q8_OK) return s;
  for (size_t c = 0; c < channels; ++c) {
    char name[48];
    snprintf(name, sizeof name, "weight scale[%zu]", c);
    if ((s = q8_check_scale(weight_scales[c], name)) != Q8_OK) return s;
    /* In double: the product of three floats is exact enough that the only
     * rounding left is the one to the Q31 mantissa or to float. */
    const double real = (double)input_scale * weight_scales[c] / output_scale;
    q8_quantize_multiplier(real, &multiplier[c], &shift[c]);
    scale_out[c] = (float)real;
    if (!isfinite(scale_out[c])) {
      return q8_fail(Q8_ERR_SCALE, "channel %zu: input*weight/output scale %g overflows float",
                     c, real);
    }
  }
  *p = (q8_requant_params){.mode = mode, .out_dtype = out_dtype, .zero_point = zero_point,
                           .qmin = qmin, .qmax = qmax, .channels = channels,
                           .multiplier = multiplier, .shift = shift, .scale = scale_out};
  return q8_check_requant_params(p, "requant");
}

static q8_status check_layout(size_t channels, size_t inner) {
  if (channels > 1 && inner == 0) {
    return q8_fail(Q8_ERR_ARG, "inner = 0 with %zu channels: must be >= 1", channels);
  }
  return Q8_OK;
}

static const q8_kernel *select_or_fail(q8_op op, q8_status *status) {
  const q8_kernel *k = q8_select_kernel(op);
  *status = k ? Q8_OK : Q8_ERR_ISA;
  return k;
}

q8_status q8_quantize(const float *x, size_t count, size_t inner, const q8_quant_params *p,
                      q8_profile profile, void *y) {
  q8_clear_error();
  if (count > 0 && (x == NULL || y == NULL)) return q8_fail(Q8_ERR_NULL, "quantize: x or y is NULL");
  q8_status s = q8_check_quant_params(p, "quantize");
  if (s != Q8_OK || (s = check_layout(p->channels, inner)) != Q8_OK) return s;
  if (profile.rounding != Q8_ROUND_HALF_AWAY && profile.rounding != Q8_ROUND_HALF_EVEN) {
    return q8_fail(Q8_ERR_ARG, "quantize: rounding %d is not a q8_rounding", (int)profile.rounding);
  }
  if (profile.scale_op != Q8_SCALE_DIVIDE && profile.scale_op != Q8_SCALE_RECIPROCAL) {
    return q8_fail(Q8_ERR_ARG, "quantize: scale_op %d is not a q8_scale_op", (int)profile.scale_op);
  }
  const q8_kernel *k = select_or_fail(Q8_OP_QUANTIZE, &s);
  if (k) k->quantize(x, count, inner ? inner : 1, p, profile.rounding, profile.scale_op, y);
  return s;
}

q8_status q8_dequantize(const void *q, size_t count, size_t inner, const q8_quant_params *p,
                        float *y) {
  q8_clear_error();
  if (count > 0 && (q == NULL || y == NULL)) return q8_fail(Q8_ERR_NULL, "dequantize: q or y is NULL");
  q8_status s = q8_check_quant_params(p, "dequantize");
  if (s != Q8_OK || (s = check_layout(p->channels, inner)) != Q8_OK) return s;
  const q8_kernel *k = select_or_fail(Q8_OP_DEQUANTIZE, &s);
  if (k) k->dequantize(q, count, inner ? inner : 1, p, y);
  return s;
}

q8_status q8_requantize(const int32_t *acc, size_t count, size_t inner,
                        const q8_requant_params *p, void *y) {
  q8_clear_error();
  if (count > 0 && (acc == NULL || y == NULL)) return q8_fail(Q8_ERR_NULL, "requantize: acc or y is NULL");
  q8_status s = q8_check_requant_params(p, "requantize");
  if (s != Q8_OK || (s = check_layout(p->channels, inner)) != Q8_OK) return s;
  const q8_kernel *k = select_or_fail(Q8_OP_REQUANTIZE, &s);
  if (k) k->requantize(acc, count, inner ? inner : 1, p, y);
  return s;
}
