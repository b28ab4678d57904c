/* The depthwise convolution engine behind q8_conv_plan (not installed):
 * groups == in_channels, out_channels = in_channels * multiplier. */
#ifndef Q8_DISPATCH_CONV_DEPTHWISE_H
#define Q8_DISPATCH_CONV_DEPTHWISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"

typedef struct q8_dwconv q8_dwconv;

/* Returns Q8_ERR_UNSUPPORTED, without setting an error detail, when the shape
 * is not depthwise (groups != in_channels).
 * weights: OHWI per group = [out_channels][kernel_h][kernel_w][1]; bias NULL or
 * out_channels entries; rq NULL for int32 output, else the plan's
 * requantization (per-channel arrays indexed by output channel); rq outlives
 * the dwconv (the conv plan owns it).
 * Selects the kernel for the current ISA choice (forced Q8_ISA or the best
 * usable, as dispatch does for GEMM) and packs the weights. The shape has been
 * validated by q8_conv_output_shape, and the caller has proven that the int32
 * accumulator cannot overflow (the kernels compute it modulo 2^32). */
q8_status q8_dwconv_create(const q8_conv_shape *shape, q8_dtype in_dtype, int32_t in_zero_point,
                           const int8_t *weights, const int32_t *bias,
                           const q8_requant_params *rq, q8_dwconv **dwconv);
/* input dense NHWC, output dense NHWC, bit-identical to q8_conv_ref;
 * threads >= 1, bit-identical for any count. */
q8_status q8_dwconv_run(const q8_dwconv *dwconv, const void *input, void *output, size_t threads);
void q8_dwconv_destroy(q8_dwconv *dwconv);
/* The kernel's registry name, e.g. "q8_dwconv_x8s8_3x3s1c32__avx512vnni". */
const char *q8_dwconv_kernel(const q8_dwconv *dwconv);
/* Whether run flips the input rows for the kernel (uint8 input, kernel with
 * uint8_a_offset = -128), and, for tests, a way to turn that off so that the
 * kernel reads the uint8 rows and flips them itself (the path a caller of
 * the kernel alone takes). */
bool q8_dwconv_flips_rows(const q8_dwconv *dwconv);
void q8_dwconv_keep_rows_unflipped(q8_dwconv *dwconv);
/* Output rows per kernel call (q8_dwconv_row.out_rows), for tests; 0 restores
 * the default (by output width and stride). Runs through a row copy (a
 * multiplier, or flipped rows) keep one row per call. */
void q8_dwconv_set_rows_per_call(q8_dwconv *dwconv, size_t rows);

#endif
