/* The kernel registry: every kernel q8 has, listed once, and the choice of
 * kernel per operation. Tests and qbench walk this list. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "dispatch/internal.h"
#include "dispatch/registry.h"

/* ---- reference GEMM as a registry entry: weights kept as given (n x k) ---- */
static size_t ref_gemm_packed_bytes(size_t n, size_t k) { return n * k; }

static void ref_gemm_pack(size_t n, size_t k, const int8_t *weights, void *packed) {
  memcpy(packed, weights, n * k);
}

static q8_status ref_gemm_run(const q8_gemm_call *call, size_t m0, size_t m1, size_t n0,
                              size_t n1) {
  q8_requant_params rq_cols;
  const q8_requant_params *rq = q8_requant_params_at(call->rq, n0, &rq_cols);
  const size_t c_elem = rq == NULL ? sizeof(int32_t) : 1;
  return q8_ref_gemm(m1 - m0, n1 - n0, call->k,
                     (const uint8_t *)call->a + m0 * call->lda, call->lda,
                     call->a_dtype, call->a_zero_point,
                     (const int8_t *)call->packed_weights + n0 * call->k, call->k,
                     call->w_zero_points ? call->w_zero_points + n0 : NULL,
                     call->bias ? call->bias + n0 : NULL, rq,
                     (uint8_t *)call->c + (m0 * call->ldc + n0) * c_elem, call->ldc);
}

/* Micro-kernels, from the per-ISA lists in kernels/. */
#define Q8_UKERNEL(isa_, symbol) extern const q8_gemm_ukernel symbol;
#if defined(__x86_64__)
#include "kernels/x86/gemm.def"
#elif defined(__aarch64__)
#include "kernels/arm/gemm.def"
#endif
#include "kernels/hwy/gemm.def"
#undef Q8_UKERNEL
#define Q8_DWCONV(isa_, symbol) extern const q8_dwconv_ukernel symbol;
#if defined(__x86_64__)
#include "kernels/x86/dwconv.def"
#elif defined(__aarch64__)
#include "kernels/arm/dwconv.def"
#endif
#include "kernels/dwconv.def"
#undef Q8_DWCONV

#define Q8_UKERNEL(isa_, symbol)                                                   \
  {.name = #symbol, .op = Q8_OP_GEMM, .isa = isa_, .ukernel = &symbol,             \
   .layout = "per NR channels: int32 col_term[NR], int8 w[k/KR][NR][KR]"},

static const q8_kernel registry[] = {
#if defined(__x86_64__)
#include "kernels/x86/gemm.def"
#elif defined(__aarch64__)
#include "kernels/arm/gemm.def"
#endif
#include "kernels/hwy/gemm.def"
#undef Q8_UKERNEL

#define Q8_DWCONV(isa_, symbol)                                                      \
  {.name = #symbol, .op = Q8_OP_DWCONV, .isa = isa_, .dwconv = &symbol,              \
   .layout = "per channel tile: int32 col_term, int16 w[taps/2][tile][2] (neon: int32 "     \
             "col_term[16], int32 u8_term[16], int8 w[taps][16]; ref: int8 w[c][taps])"},
#if defined(__x86_64__)
#include "kernels/x86/dwconv.def"
#elif defined(__aarch64__)
#include "kernels/arm/dwconv.def"
#endif
#include "kernels/dwconv.def"
#undef Q8_DWCONV

    {.name = "q8_gemm_x8s8_1x1c1__ref", .op = Q8_OP_GEMM, .isa = Q8_ISA_REF,
     .mr = 1, .nr = 1, .kr = 1, .layout = "n x k row-major (unpacked)",
     .gemm = {ref_gemm_packed_bytes, ref_gemm_pack, ref_gemm_run}},
    {.name = "q8_quantize_f32x8__ref", .op = Q8_OP_QUANTIZE, .isa = Q8_ISA_REF, .layout = "",
     .quantize = q8_ref_quantize},
    {.name = "q8_quantize_f32x8__hwy", .op = Q8_OP_QUANTIZE, .isa = Q8_ISA_HWY, .layout = "",
     .quantize = q8_hwy_quantize},
    {.name = "q8_dequantize_x8f32__ref", .op = Q8_OP_DEQUANTIZE, .isa = Q8_ISA_REF, .layout = "",
     .dequantize = q8_ref_dequantize},
    {.name = "q8_dequantize_x8f32__hwy", .op = Q8_OP_DEQUANTIZE, .isa = Q8_ISA_HWY, .layout = "",
     .dequantize = q8_hwy_dequantize},
    {.name = "q8_requantize_s32x8__ref", .op = Q8_OP_REQUANTIZE, .isa = Q8_ISA_REF, .layout = "",
     .requantize = q8_ref_requantize},
    {.name = "q8_requantize_s32x8__hwy", .op = Q8_OP_REQUANTIZE, .isa = Q8_ISA_HWY, .layout = "",
     .requantize = q8_hwy_requantize},
#if defined(__aarch64__)
    {.name = "q8_quantize_f32x8__neon", .op = Q8_OP_QUANTIZE, .isa = Q8_ISA_NEON, .layout = "",
     .quantize = q8_neon_quantize},
    {.name = "q8_dequantize_x8f32__neon", .op = Q8_OP_DEQUANTIZE, .isa = Q8_ISA_NEON,
     .layout = "", .dequantize = q8_neon_dequantize},
    {.name = "q8_requantize_s32x8__neon", .op = Q8_OP_REQUANTIZE, .isa = Q8_ISA_NEON,
     .layout = "", .requantize = q8_neon_requantize},
#endif
};

#define REGISTRY_SIZE (sizeof registry / sizeof registry[0])

/* The registry with each micro-kernel's tile copied in (a descriptor in
 * another file is not a constant expression for the initialiser above). */
static q8_kernel table[REGISTRY_SIZE];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
  for (size_t i = 0; i < REGISTRY_SIZE; ++i) {
    table[i] = registry[i];
    if (table[i].ukernel) {
      table[i].mr = table[i].ukernel->mr;
      table[i].nr = table[i].ukernel->nr;
      table[i].kr = table[i].ukernel->kr;
    }
  }
}

const q8_kernel *q8_kernels(size_t *count) {
  pthread_once(&table_once, build_table);
  *count = REGISTRY_SIZE;
  return table;
}

static const char *const op_names[Q8_OP_COUNT] = {"gemm", "quantize", "dequantize",
                                                   "requantize", "dwconv"};

const char *q8_op_name(q8_op op) {
  return (unsigned)op < Q8_OP_COUNT ? op_names[op] : "unknown";
}

static const q8_kernel *find(q8_op op, q8_isa isa) {
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  for (size_t i = 0; i < count; ++i) {
    if (all[i].op == op && all[i].isa == isa) return &all[i];
  }
  return NULL;
}

/* AMX below this many rows leaves the choice to the next ISA: a tile
 * multiply costs the same for 1 row as for 16, and below one tile of rows
 * the VNNI kernels' small-M paths (the GEMV case) stream the weights without
 * it. The bound is not measured (no AMX here). */
#define Q8_AMX_MIN_ROWS 16

/* Among isa's GEMM kernels: the largest MR not above m (a tile fully used),
 * else the smallest MR. */
static const q8_kernel *find_gemm(q8_isa isa, size_t m) {
  if (isa == Q8_ISA_AMX && m < Q8_AMX_MIN_ROWS) return NULL;
  size_t count;
  const q8_kernel *all = q8_kernels(&count), *best = NULL;
  for (size_t i = 0; i < count; ++i) {
    const q8_kernel *k = &all[i];
    if (k->op != Q8_OP_GEMM || k->isa != isa) continue;
    if (best == NULL) {
      best = k;
    } else if (k->mr <= m) {
      if (best->mr > m || k->mr > best->mr) best = k;
    } else if (best->mr > m && k->mr < best->mr) {
      best = k;
    }
  }
  return best;
}

const q8_kernel *q8_select_kernel_for(q8_op op, q8_isa isa) {
  if (!q8_isa_usable_on(isa, q8_cpu(), NULL)) return NULL;
  size_t count;
  const q8_isa *list = q8_isa_fallbacks(isa, &count);
  for (size_t i = 0; i < count; ++i) {
    const q8_kernel *k = find(op, list[i]);
    if (k) return k;
  }
  return NULL;
}

/* Automatic choice: the most capable usable ISA that has a kernel for op. */
static const q8_isa preference[] = {Q8_ISA_AMX,      Q8_ISA_AVX512VNNI, Q8_ISA_AVXVNNI,
                                    Q8_ISA_AVX2,     Q8_ISA_NEONI8MM,   Q8_ISA_NEONDOT,
                                    Q8_ISA_NEON,     Q8_ISA_HWY,        Q8_ISA_REF};

const q8_kernel *q8_select_gemm_kernel_for(q8_isa isa, size_t m, bool weight_zero_points) {
  if (!q8_isa_usable_on(isa, q8_cpu(), NULL)) return NULL;
  if (weight_zero_points) return find(Q8_OP_GEMM, Q8_ISA_REF);
  size_t count;
  const q8_isa *list = q8_isa_fallbacks(isa, &count);
  for (size_t i = 0; i < count; ++i) {
    const q8_kernel *k = find_gemm(list[i], m);
    if (k) return k;
  }
  return NULL;
}

const q8_kernel *q8_select_gemm_kernel(size_t m, bool weight_zero_points) {
  bool forced = false;
  q8_isa isa;
  if (q8_forced(&forced, &isa) != Q8_OK) return NULL;
  if (forced) return q8_select_gemm_kernel_for(isa, m, weight_zero_points);
  if (weight_zero_points) return find(Q8_OP_GEMM, Q8_ISA_REF);
  for (size_t i = 0; i < sizeof preference / sizeof preference[0]; ++i) {
    if (!q8_isa_usable_on(preference[i], q8_cpu(), NULL)) continue;
    const q8_kernel *k = find_gemm(preference[i], m);
    if (k) return k;
  }
  return find(Q8_OP_GEMM, Q8_ISA_REF);
}

const q8_kernel *q8_select_kernel(q8_op op) {
  if (op == Q8_OP_GEMM) return q8_select_gemm_kernel(SIZE_MAX, false);
  bool forced = false;
  q8_isa isa;
  if (q8_forced(&forced, &isa) != Q8_OK) return NULL;
  if (forced) return q8_select_kernel_for(op, isa);
  for (size_t i = 0; i < sizeof preference / sizeof preference[0]; ++i) {
    if (!q8_isa_usable_on(preference[i], q8_cpu(), NULL)) continue;
    const q8_kernel *k = find(op, preference[i]);
    if (k) return k;
  }
  return find(op, Q8_ISA_REF);
}

/* Among isa's depthwise kernels: the dedicated one for the shape, else the
 * generic one (dedicated kernels run only dilation 1 and equal strides). */
static const q8_kernel *find_dwconv(q8_isa isa, size_t kernel_h, size_t kernel_w,
                                    size_t stride_h, size_t stride_w, size_t dilation_h,
                                    size_t dilation_w) {
  size_t count;
  const q8_kernel *all = q8_kernels(&count), *generic = NULL;
  for (size_t i = 0; i < count; ++i) {
    if (all[i].op != Q8_OP_DWCONV || all[i].isa != isa) continue;
    const q8_dwconv_ukernel *uk = all[i].dwconv;
    if (uk->kernel_h == 0) {
      generic = &all[i];
    } else if (uk->kernel_h == kernel_h && uk->kernel_w == kernel_w && uk->stride == stride_h &&
               stride_h == stride_w && dilation_h == 1 && dilation_w == 1) {
      return &all[i];
    }
  }
  return generic;
}

const q8_kernel *q8_select_dwconv_kernel_for(q8_isa isa, size_t kernel_h, size_t kernel_w,
                                             size_t stride_h, size_t stride_w, size_t dilation_h,
                                             size_t dilation_w) {
  if (!q8_isa_usable_on(isa, q8_cpu(), NULL)) return NULL;
  size_t count;
  const q8_isa *list = q8_isa_fallbacks(isa, &count);
  for (size_t i = 0; i < count; ++i) {
    const q8_kernel *k =
        find_dwconv(list[i], kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w);
    if (k) return k;
  }
  return NULL;
}

const q8_kernel *q8_select_dwconv_kernel(size_t kernel_h, size_t kernel_w, size_t stride_h,
                                         size_t stride_w, size_t dilation_h, size_t dilation_w) {
  bool forced = false;
  q8_isa isa;
  if (q8_forced(&forced, &isa) != Q8_OK) return NULL;
  if (forced) {
    return q8_select_dwconv_kernel_for(isa, kernel_h, kernel_w, stride_h, stride_w, dilation_h,
                                       dilation_w);
  }
  for (size_t i = 0; i < sizeof preference / sizeof preference[0]; ++i) {
    if (!q8_isa_usable_on(preference[i], q8_cpu(), NULL)) continue;
    const q8_kernel *k =
        find_dwconv(preference[i], kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w);
    if (k) return k;
  }
  return find_dwconv(Q8_ISA_REF, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w);
}
