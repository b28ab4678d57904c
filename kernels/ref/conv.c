/* Reference int8 convolution: the readable specification every conv path
 * (indirect GEMM, 1x1, depthwise) must match bit for bit. */
#include "q8/kernels.h"

size_t q8_conv_out_extent(size_t in, size_t kernel, size_t stride, size_t dilation,
                          size_t pad_before, size_t pad_after) {
  const size_t dilated_kernel = (kernel - 1) * dilation + 1;
  const size_t padded_in = in + pad_before + pad_after;
  if (dilated_kernel > padded_in) return 0;
  return (padded_in - dilated_kernel) / stride + 1;
}

static int32_t load_input(const void *x, size_t index, q8_dtype dtype) {
  return dtype == Q8_UINT8 ? ((const uint8_t *)x)[index] : ((const int8_t *)x)[index];
}

static void store_output(void *y, size_t index, int32_t acc, const q8_requant_params *rq,
                         size_t channel) {
  if (rq == NULL) {
    ((int32_t *)y)[index] = acc;
    return;
  }
  const int32_t q = q8_ref_requantize_one(acc, rq, rq->channels == 1 ? 0 : channel);
  if (rq->out_dtype == Q8_UINT8) {
    ((uint8_t *)y)[index] = (uint8_t)q;
  } else {
    ((int8_t *)y)[index] = (int8_t)q;
  }
}

q8_status q8_conv_ref(const q8_conv_shape *s, const void *input, q8_dtype in_dtype,
                      int32_t in_zero_point, const int8_t *weights, const int32_t *bias,
                      const q8_requant_params *rq, void *output) {
  const size_t out_h = q8_conv_out_extent(s->in_h, s->kernel_h, s->stride_h, s->dilation_h,
                                          s->pad_top, s->pad_bottom);
  const size_t out_w = q8_conv_out_extent(s->in_w, s->kernel_w, s->stride_w, s->dilation_w,
                                          s->pad_left, s->pad_right);
  const size_t group_in = s->in_channels / s->groups;
  const size_t group_out = s->out_channels / s->groups;
  for (size_t n = 0; n < s->batch; ++n) {
    for (size_t y = 0; y < out_h; ++y) {
      for (size_t x = 0; x < out_w; ++x) {
        for (size_t oc = 0; oc < s->out_channels; ++oc) {
          const size_t first_in_channel = oc / group_out * group_in;
          /* int64 so that an overflow is detected rather than wrapped; the
           * value itself is the exact sum the GEMM defines. */
          int64_t acc = bias ? bias[oc] : 0;
          for (size_t ky = 0; ky < s->kernel_h; ++ky) {
            /* Signed: the top rows of the kernel may sit in the padding. */
            const int64_t iy = (int64_t)(y * s->stride_h + ky * s->dilation_h) - (int64_t)s->pad_top;
            if (iy < 0 || iy >= (int64_t)s->in_h) continue; /* padding: (zp - zp) * w = 0 */
            for (size_t kx = 0; kx < s->kernel_w; ++kx) {
              const int64_t ix =
                  (int64_t)(x * s->stride_w + kx * s->dilation_w) - (int64_t)s->pad_left;
              if (ix < 0 || ix >= (int64_t)s->in_w) continue;
              const size_t pixel = ((n * s->in_h + (size_t)iy) * s->in_w + (size_t)ix) * s->in_channels;
              const int8_t *w = weights + ((oc * s->kernel_h + ky) * s->kernel_w + kx) * group_in;
              for (size_t ic = 0; ic < group_in; ++ic) {
                acc += (int64_t)(load_input(input, pixel + first_in_channel + ic, in_dtype) -
                                 in_zero_point) * w[ic];
              }
            }
          }
          if (acc < INT32_MIN || acc > INT32_MAX) return Q8_ERR_OVERFLOW;
          const size_t at = ((n * out_h + y) * out_w + x) * s->out_channels + oc;
          store_output(output, at, (int32_t)acc, rq, oc);
        }
      }
    }
  }
  return Q8_OK;
}
