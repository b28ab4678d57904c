/* Marked inner loops with known int8 MAC counts, for the bench/arm-mca test.
 * Not a kernel: each loop is shaped like one (loads, then multiplies into
 * independent accumulators) so that the count per iteration is fixed by the
 * source, whatever registers the compiler picks. Expected counts live in
 * tests/test_arm_mca.sh; change both together. */
#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

/* A 4x8 tile like a dotprod micro-kernel's: 8 x sdot .4s (by element) =
 * 128 MACs per iteration, eight independent accumulator chains. */
__attribute__((target("arch=armv8.2-a+dotprod"))) void
fixture_sdot(const int8_t *a, const int8_t *b, size_t k4, int32_t *out) {
  /* Named accumulators, not an array: GCC keeps an array in memory across the
   * markers' asm statements. */
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c10 = c00, c11 = c00;
  int32x4_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (size_t i = 0; i < k4; i++) {
    __asm__ volatile("// LLVM-MCA-BEGIN fixture_sdot");
    int8x16_t va = vld1q_s8(a + 16 * i);
    int8x16_t vb0 = vld1q_s8(b + 32 * i);
    int8x16_t vb1 = vld1q_s8(b + 32 * i + 16);
    c00 = vdotq_laneq_s32(c00, vb0, va, 0);
    c01 = vdotq_laneq_s32(c01, vb1, va, 0);
    c10 = vdotq_laneq_s32(c10, vb0, va, 1);
    c11 = vdotq_laneq_s32(c11, vb1, va, 1);
    c20 = vdotq_laneq_s32(c20, vb0, va, 2);
    c21 = vdotq_laneq_s32(c21, vb1, va, 2);
    c30 = vdotq_laneq_s32(c30, vb0, va, 3);
    c31 = vdotq_laneq_s32(c31, vb1, va, 3);
    __asm__ volatile("// LLVM-MCA-END");
  }
  int32x4_t rows[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
  for (int r = 0; r < 8; r++)
    vst1q_s32(out + 4 * r, rows[r]);
}

/* 2 x smmla + 1 x usmmla = 96 MACs per iteration; three accumulator chains
 * are too few to hide smmla's latency, so this loop falls short of peak. */
__attribute__((target("arch=armv8.2-a+dotprod+i8mm"))) void
fixture_smmla(const int8_t *a, const int8_t *b, const uint8_t *u, size_t k8, int32_t *out) {
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0, acc2 = acc0;
  for (size_t i = 0; i < k8; i++) {
    __asm__ volatile("// LLVM-MCA-BEGIN fixture_smmla");
    int8x16_t va = vld1q_s8(a + 16 * i);
    int8x16_t vb0 = vld1q_s8(b + 32 * i);
    int8x16_t vb1 = vld1q_s8(b + 32 * i + 16);
    uint8x16_t vu = vld1q_u8(u + 16 * i);
    acc0 = vmmlaq_s32(acc0, va, vb0);
    acc1 = vmmlaq_s32(acc1, va, vb1);
    acc2 = vusmmlaq_s32(acc2, vu, vb0);
    __asm__ volatile("// LLVM-MCA-END");
  }
  vst1q_s32(out, acc0);
  vst1q_s32(out + 4, acc1);
  vst1q_s32(out + 8, acc2);
}

/* Armv8.0: smull .8h + smull2 .8h (8 + 8) and smlal .4s + smlal2 .4s on
 * 16-bit lanes (4 + 4) = 24 MACs per iteration; sadalp only adds. */
void fixture_smull(const int8_t *a, const int8_t *b, const int16_t *c, size_t k16, int32_t *out) {
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0;
  for (size_t i = 0; i < k16; i++) {
    __asm__ volatile("// LLVM-MCA-BEGIN fixture_smull");
    int8x16_t va = vld1q_s8(a + 16 * i);
    int8x16_t vb = vld1q_s8(b + 16 * i);
    int16x8_t vc = vld1q_s16(c + 8 * i);
    int16x8_t lo = vmull_s8(vget_low_s8(va), vget_low_s8(vb));
    int16x8_t hi = vmull_high_s8(va, vb);
    acc0 = vpadalq_s16(acc0, lo);
    acc0 = vpadalq_s16(acc0, hi);
    acc1 = vmlal_s16(acc1, vget_low_s16(vc), vget_low_s16(lo));
    acc1 = vmlal_high_s16(acc1, vc, hi);
    __asm__ volatile("// LLVM-MCA-END");
  }
  vst1q_s32(out, acc0);
  vst1q_s32(out + 4, acc1);
}
