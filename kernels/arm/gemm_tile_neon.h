/* The epilogue shared by the Arm GEMM micro-kernels: an mr x nr tile held as
 * rows of up to 16 int32 lanes (4 vectors, lane order = column order) is
 * written as int32, or requantized (kernels/arm/requant_neon.h) to int8/uint8.
 * Writes exactly mr x nr elements: partial rows go through a stack copy. */
#ifndef Q8_KERNELS_ARM_GEMM_TILE_NEON_H
#define Q8_KERNELS_ARM_GEMM_TILE_NEON_H

#include <arm_neon.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/arm/requant_neon.h"
#include "q8/kernels.h"

#define Q8_TILE_NEON_MAX_ROWS 8

/* For the Arm GEMM kernel functions: GCC's scheduling pass before register
 * allocation ignores register pressure and hoists loads and products of a
 * fully unrolled tile step ahead of their use, so the loop spills or copies
 * registers; the out-of-order cores reorder the loop themselves, and the
 * pass after register allocation still runs. Other compilers schedule under
 * register pressure and take no such attribute. */
#if defined(__GNUC__) && !defined(__clang__)
#define Q8_TILE_NEON_NO_PRE_RA_SCHED __attribute__((optimize("no-schedule-insns")))
#else
#define Q8_TILE_NEON_NO_PRE_RA_SCHED
#endif

typedef struct q8_tile_neon {
  int32x4_t v[Q8_TILE_NEON_MAX_ROWS][4]; /* [row][columns 4j .. 4j + 3] */
} q8_tile_neon;

/* One tile function per row count and activation type: an Arm kernel file
 * defines TILE(MR, flip_or_u8, mca, nr, k, a, a_stride, packed, c, c_stride,
 * rq), always inlined, and Q8_TILE_NEON_FNS(ATTR, TILE, R, MR) then defines
 * s8_R and u8_R (ATTR: the storage class and target attribute); the int8
 * function of the full tile (R == MR) carries the llvm-mca markers. */
typedef void (*q8_tile_neon_fn)(size_t nr, size_t k, const int8_t *a, size_t as,
                                const int8_t *packed, unsigned char *c, size_t cs,
                                const q8_requant_params *rq);
#define Q8_TILE_NEON_FNS(ATTR, TILE, R, MR)                                                  \
  ATTR void s8_##R(size_t nr, size_t k, const int8_t *a, size_t as, const int8_t *packed,    \
                   unsigned char *c, size_t cs, const q8_requant_params *rq) {               \
    TILE(R, false, (R) == (MR), nr, k, a, as, packed, c, cs, rq);                            \
  }                                                                                          \
  ATTR void u8_##R(size_t nr, size_t k, const int8_t *a, size_t as, const int8_t *packed,    \
                   unsigned char *c, size_t cs, const q8_requant_params *rq) {               \
    TILE(R, true, false, nr, k, a, as, packed, c, cs, rq);                                   \
  }

/* MR rows (compile-time constant after inlining), NV <= 4 vectors per row,
 * holding columns col0 .. col0 + 4 NV - 1 of a tile nr columns wide (col0 a
 * multiple of 16): kernels wider than 16 columns store 16 at a time. */
static inline __attribute__((always_inline)) void q8_tile_neon_store_at(
    const int MR, const int NV, const q8_tile_neon *t, size_t col0, size_t nr,
    unsigned char *c, size_t cs, const q8_requant_params *rq) {
  if (col0 != 0 && col0 >= nr) return; /* nr >= 1: part 0 always has columns */
  nr -= col0;
  if (rq == NULL) {
    c += col0 * sizeof(int32_t);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      int32_t *out = (int32_t *)(void *)(c + (size_t)m * cs);
      if (nr >= 4 * (size_t)NV) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) vst1q_s32(out + 4 * v, t->v[m][v]);
      } else {
        int32_t tmp[16];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) vst1q_s32(tmp + 4 * v, t->v[m][v]);
        memcpy(out, tmp, nr * sizeof(int32_t));
      }
    }
    return;
  }
  /* Vectors past nr (and past NV) stay 0: narrowed, never stored. */
  int32x4_t q[Q8_TILE_NEON_MAX_ROWS][4];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) q[m][v] = vdupq_n_s32(0);
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const size_t col = 4 * (size_t)v;
    if (col >= nr) break;
    q8_rqn p;
    q8_rqn_init(&p, rq, col0 + col, nr - col < 4 ? nr - col : 4);
    /* The mode is chosen once per 4 columns, outside the rows. */
    switch (rq->mode) {
      case Q8_REQUANT_GEMMLOWP:
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) q[m][v] = q8_rqn_gemmlowp(&p, t->v[m][v]);
        break;
      case Q8_REQUANT_SINGLE:
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) q[m][v] = q8_rqn_single(&p, t->v[m][v]);
        break;
      case Q8_REQUANT_FP32:
      default:
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) q[m][v] = q8_rqn_fp32(&p, t->v[m][v]);
        break;
    }
  }
  c += col0;
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    q8_rqn_store(c + (size_t)m * cs, nr, q8_rqn_narrow16(q[m][0], q[m][1], q[m][2], q[m][3]));
  }
}

static inline __attribute__((always_inline)) void q8_tile_neon_store(
    const int MR, const int NV, const q8_tile_neon *t, size_t nr, unsigned char *c, size_t cs,
    const q8_requant_params *rq) {
  q8_tile_neon_store_at(MR, NV, t, 0, nr, c, cs, rq);
}

#endif
