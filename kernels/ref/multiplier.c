/* Real multiplier -> Q31 fixed-point mantissa and power-of-two shift.
 * Mirrors TFLite's QuantizeMultiplier (tensorflow/lite/kernels/internal/
 * quantization_util.cc) so q8's gemmlowp/single modes agree with TFLite. */
#include <math.h>

#include "q8/kernels.h"

void q8_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift) {
  if (real == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  int exponent = 0;
  const double mantissa = frexp(real, &exponent); /* real = mantissa * 2^exponent, mantissa in [0.5, 1) */
  /* TFRound is round half away from zero: C's round(). */
  int64_t q_fixed = (int64_t)round(mantissa * (double)(1LL << 31));
  if (q_fixed == (1LL << 31)) { /* mantissa rounded up to 1.0: renormalise */
    q_fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) { /* too small to represent: TFLite flushes to zero */
    exponent = 0;
    q_fixed = 0;
  }
  if (exponent > 30) { /* too large: TFLite saturates to the largest representable */
    exponent = 30;
    q_fixed = (1LL << 31) - 1;
  }
  *multiplier = (int32_t)q_fixed;
  *shift = exponent;
}
