/* q8 dispatch — internals shared by dispatch/, quant/ and bench/ (not installed). */
#ifndef Q8_DISPATCH_INTERNAL_H
#define Q8_DISPATCH_INTERNAL_H

#include "q8/q8.h"

/* Plan dimensions beyond this are almost surely a negative value cast to size_t. */
#define Q8_MAX_DIM ((size_t)INT32_MAX)

/* Records a message for q8_error_detail() on this thread and returns status. */
q8_status q8_fail(q8_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void q8_clear_error(void);

/* Argument checks shared by the public entry points; `what` names the
 * argument in the message (e.g. "weights", "output"). */
q8_status q8_check_quant_params(const q8_quant_params *p, const char *what);
q8_status q8_check_requant_params(const q8_requant_params *p, const char *what);
q8_status q8_check_scale(float scale, const char *what);
q8_status q8_check_zero_point(int32_t zero_point, q8_dtype dtype, const char *what);
int32_t q8_dtype_min(q8_dtype dtype);
int32_t q8_dtype_max(q8_dtype dtype);
const char *q8_dtype_name(q8_dtype dtype);
size_t q8_dtype_size(q8_dtype dtype);

/* Overflow proofs of GEMM and convolution plans. The largest |a - zero_point|
 * over the values of an 8-bit activation dtype: */
int64_t q8_activation_span(q8_dtype dtype, int32_t zero_point);
/* Q8_ERR_OVERFLOW naming `op` and the channel unless bias + s fits int32 for
 * every s in [-bound, bound]. */
q8_status q8_check_accumulator_bound(const char *op, size_t channel, int64_t bias, int64_t bound);

/* The output side of a plan descriptor (GEMM, convolution): dtype, requant
 * mode, scales, zero point and clamp. `op` and the *_name fields name the
 * descriptor's fields in messages. */
typedef struct q8_plan_output {
  const char *op;            /* "gemm", "conv" */
  const char *in_scale_name; /* "a_scale", "in_scale" */
  const char *channels_name; /* "n", "out_channels" */
  size_t channels;           /* output channels */
  float in_scale;
  size_t w_channels;
  const float *w_scales;
  q8_dtype out_dtype;
  q8_requant_mode mode;
  float out_scale;
  int32_t out_zero_point;
  bool clamp;
  int32_t out_min, out_max;
} q8_plan_output;
/* Q8_OK for int32 output without looking further; else checks every field. */
q8_status q8_check_plan_output(const q8_plan_output *o);

/* Requantization parameters owned by a plan (arrays of w_channels entries). */
typedef struct q8_plan_requant {
  q8_requant_params params;
  int32_t *multiplier, *shift;
  float *scale;
} q8_plan_requant;
/* Precondition: q8_check_plan_output(o) == Q8_OK and o->out_dtype is 8-bit.
 * On failure r may be partly allocated: q8_plan_requant_free it. */
q8_status q8_plan_requant_init(q8_plan_requant *r, const q8_plan_output *o);
void q8_plan_requant_free(q8_plan_requant *r);
/* Whether channel `channel` of fp32 parameters p leaves its upper clamp to
 * the saturating narrowing (q8_requant_params.fp32_clamp_free), given a bound
 * of its accumulators' magnitude. A plan sets the flag when every channel
 * does. */
bool q8_requant_channel_clamp_free(const q8_requant_params *p, size_t channel, int64_t acc_bound);

#endif
