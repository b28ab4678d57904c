/* Status strings and the per-thread error detail behind q8_error_detail(). */
#include <stdarg.h>
#include <stdio.h>

#include "dispatch/internal.h"

/* Per thread, so concurrent callers never see each other's messages. */
static _Thread_local char error_detail[512];

const char *q8_status_str(q8_status status) {
  switch (status) {
    case Q8_OK: return "ok";
    case Q8_ERR_NULL: return "required pointer is NULL";
    case Q8_ERR_ARG: return "invalid argument";
    case Q8_ERR_SCALE: return "invalid scale";
    case Q8_ERR_ZERO_POINT: return "zero point or clamp bound out of range";
    case Q8_ERR_OVERFLOW: return "int32 accumulator could overflow";
    case Q8_ERR_UNSUPPORTED: return "not supported";
    case Q8_ERR_ISA: return "ISA unknown or not usable on this CPU/OS";
    case Q8_ERR_NOMEM: return "out of memory";
    case Q8_ERR_INTERNAL: return "internal error";
    case Q8_ERR_IO: return "file cannot be read";
    case Q8_ERR_FORMAT: return "corrupt or invalid model file";
  }
  return "unknown status";
}

const char *q8_error_detail(void) { return error_detail; }

void q8_clear_error(void) { error_detail[0] = '\0'; }

q8_status q8_fail(q8_status status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(error_detail, sizeof error_detail, fmt, args);
  va_end(args);
  return status;
}
