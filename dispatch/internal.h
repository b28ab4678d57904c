/* q8 dispatch — internals shared by dispatch/, quant/ and bench/ (not installed). */
#ifndef Q8_DISPATCH_INTERNAL_H
#define Q8_DISPATCH_INTERNAL_H

#include "q8/q8.h"

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

#endif
