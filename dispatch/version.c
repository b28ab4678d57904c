#include "q8/q8.h"

#ifndef Q8_VERSION_STRING
#define Q8_VERSION_STRING "0.0.0-unknown"
#endif

const char *q8_version(void) { return Q8_VERSION_STRING; }
