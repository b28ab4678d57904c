/* q8 dispatch — ISAs and the kernel registry (not installed).
 *
 * The registry (registry.c) is the only place a kernel is listed; plans,
 * tests and qbench enumerate it. Adding a kernel is one entry there. */
#ifndef Q8_DISPATCH_REGISTRY_H
#define Q8_DISPATCH_REGISTRY_H

#include <stdbool.h>

#include "dispatch/cpu.h"
#include "q8/q8.h"

typedef enum q8_isa {
  Q8_ISA_REF = 0,
  Q8_ISA_HWY,
  Q8_ISA_AVX2,
  Q8_ISA_AVXVNNI,
  Q8_ISA_AVX512VNNI,
  Q8_ISA_AMX,
  Q8_ISA_NEON,
  Q8_ISA_NEONDOT,
  Q8_ISA_NEONI8MM,
  Q8_ISA_COUNT
} q8_isa;

typedef enum q8_op {
  Q8_OP_GEMM = 0,
  Q8_OP_QUANTIZE,
  Q8_OP_DEQUANTIZE,
  Q8_OP_REQUANTIZE,
  Q8_OP_DWCONV,
  Q8_OP_COUNT
} q8_op;

const char *q8_isa_name(q8_isa isa);
/* Returns false for an unknown name. */
bool q8_isa_from_name(const char *name, q8_isa *isa);
/* Whether the CPU/OS of `cpu` can run `isa`; if not, *reason says why. */
bool q8_isa_usable_on(q8_isa isa, const q8_cpu_info *cpu, const char **reason);
/* The ISAs a forced `isa` may fall back to, best first, ending with ref. */
const q8_isa *q8_isa_fallbacks(q8_isa isa, size_t *count);
const char *q8_op_name(q8_op op);

/* Everything a GEMM kernel gets for one call over the tile range
 * rows [m0, m1) x columns [n0, n1). */
typedef struct q8_gemm_call {
  size_t k;
  const void *a;
  size_t lda;
  q8_dtype a_dtype;
  int32_t a_zero_point;
  const void *packed_weights;
  const int32_t *w_zero_points; /* n entries or NULL */
  const int32_t *bias;          /* n entries or NULL */
  const q8_requant_params *rq;  /* NULL: int32 output */
  void *c;
  size_t ldc;
} q8_gemm_call;

typedef struct q8_gemm_kernel_fns {
  size_t (*packed_bytes)(size_t n, size_t k);
  void (*pack)(size_t n, size_t k, const int8_t *weights, void *packed);
  q8_status (*run)(const q8_gemm_call *call, size_t m0, size_t m1, size_t n0, size_t n1);
} q8_gemm_kernel_fns;

typedef void (*q8_quantize_fn)(const float *, size_t, size_t, const q8_quant_params *,
                               q8_rounding, q8_scale_op, void *);
typedef void (*q8_dequantize_fn)(const void *, size_t, size_t, const q8_quant_params *, float *);
typedef void (*q8_requantize_fn)(const int32_t *, size_t, size_t, const q8_requant_params *,
                                 void *);

typedef struct q8_kernel {
  const char *name;   /* q8_<op>_<types>[_<MR>x<NR>c<KR>]__<isa> */
  q8_op op;
  q8_isa isa;
  unsigned mr, nr, kr; /* GEMM tile (the reference: 1x1c1); 0 for element-wise ops */
  const char *layout;  /* packed-weight layout, "" for element-wise ops */
  /* GEMM: a micro-kernel run by the blocked driver, or (reference only)
   * whole-range functions that need no packing format. */
  const q8_gemm_ukernel *ukernel;
  q8_gemm_kernel_fns gemm;
  q8_quantize_fn quantize;
  q8_dequantize_fn dequantize;
  q8_requantize_fn requantize;
  const q8_dwconv_ukernel *dwconv; /* depthwise: one output row per call */
} q8_kernel;

/* All registered kernels (for this build's architecture). */
const q8_kernel *q8_kernels(size_t *count);
/* The kernel for `op` under the current ISA choice (forced or automatic).
 * Returns NULL with q8_error_detail set (Q8_ERR_ISA) if Q8_ISA is invalid. */
const q8_kernel *q8_select_kernel(q8_op op);
/* The kernel `op` would use with `isa` forced (NULL if isa is not usable). */
const q8_kernel *q8_select_kernel_for(q8_op op, q8_isa isa);
/* The GEMM kernel for an M-row problem under the current ISA choice: among the
 * chosen ISA's micro-kernels, the one whose MR fits M best. Weight zero points
 * other than 0 are handled by the reference only. NULL on a bad Q8_ISA. */
const q8_kernel *q8_select_gemm_kernel(size_t m, bool weight_zero_points);
/* Same with `isa` forced (NULL if not usable). */
const q8_kernel *q8_select_gemm_kernel_for(q8_isa isa, size_t m, bool weight_zero_points);
/* The depthwise kernel for a kernel_h x kernel_w kernel with these strides and
 * dilations under the current ISA choice: the chosen ISA's dedicated kernel
 * for that shape, else its generic one. NULL on a bad Q8_ISA. */
const q8_kernel *q8_select_dwconv_kernel(size_t kernel_h, size_t kernel_w, size_t stride_h,
                                         size_t stride_w, size_t dilation_h, size_t dilation_w);
/* Same with `isa` forced (NULL if not usable). */
const q8_kernel *q8_select_dwconv_kernel_for(q8_isa isa, size_t kernel_h, size_t kernel_w,
                                             size_t stride_h, size_t stride_w, size_t dilation_h,
                                             size_t dilation_w);
/* Current forced ISA; false when automatic. Reports a bad Q8_ISA as Q8_ERR_ISA. */
q8_status q8_forced(bool *forced, q8_isa *isa);

#endif
