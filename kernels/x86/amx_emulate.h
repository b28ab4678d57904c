/* A scalar model of the AMX tile unit (palette 1, TMUL int8), for testing
 * gemm_amx.c's logic bit for bit on CPUs without AMX (gemm_amx_emu.c
 * compiles that file's source against it; the real kernel uses the
 * intrinsics). QEMU 7.2 does not emulate AMX, so without AMX hardware this
 * is what runs the kernel's tile configuration, K steps, tails and epilogue.
 *
 * It faults (a message, then abort) where the hardware raises #GP or #UD: a
 * configuration that is not valid for palette 1, a tile used before
 * configuration or that the configuration leaves empty, and a multiply whose
 * tile shapes do not agree (tdpbusd: dst rows = src1 rows, dst bytes per row =
 * src2 bytes per row, src1 bytes per row = 4 x src2 rows). Loads read exactly
 * rows x colsb bytes and zero the rest of the tile, stores write exactly
 * rows x colsb; the multiply wraps modulo 2^32 as the hardware does.
 *
 * Included by gemm_amx.c after it defines q8_amx_tilecfg, only with
 * Q8_AMX_EMULATE. State is per thread, as the tile registers are. */
#ifndef Q8_KERNELS_X86_AMX_EMULATE_H
#define Q8_KERNELS_X86_AMX_EMULATE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct q8_amx_emu_state {
  int configured;
  q8_amx_tilecfg cfg;
  uint8_t tile[8][16][64];
} q8_amx_emu_state;

static _Thread_local q8_amx_emu_state q8_amx_emu;

static void q8_amx_emu_fault(const char *what, int tile) {
  fprintf(stderr, "AMX emulation fault: %s (tile %d)\n", what, tile);
  abort();
}

static void q8_amx_emu_config(const q8_amx_tilecfg *cfg) {
  if (cfg->palette_id != 1) q8_amx_emu_fault("palette is not 1", -1);
  if (cfg->start_row != 0) q8_amx_emu_fault("start_row is not 0", -1);
  for (int i = 0; i < 14; ++i) {
    if (cfg->reserved[i] != 0) q8_amx_emu_fault("reserved byte set", -1);
  }
  for (int t = 0; t < 16; ++t) {
    if (t >= 8 && (cfg->rows[t] != 0 || cfg->colsb[t] != 0)) {
      q8_amx_emu_fault("palette 1 has 8 tiles", t);
    }
    if (cfg->rows[t] > 16 || cfg->colsb[t] > 64) q8_amx_emu_fault("tile larger than 16 x 64", t);
    if ((cfg->rows[t] == 0) != (cfg->colsb[t] == 0)) {
      q8_amx_emu_fault("rows and colsb must be both zero or both set", t);
    }
  }
  q8_amx_emu.cfg = *cfg;
  q8_amx_emu.configured = 1;
  memset(q8_amx_emu.tile, 0, sizeof q8_amx_emu.tile);
}

static void q8_amx_emu_check(int t) {
  if (!q8_amx_emu.configured) q8_amx_emu_fault("tiles not configured", t);
  if (t < 0 || t > 7) q8_amx_emu_fault("no such tile", t);
  if (q8_amx_emu.cfg.rows[t] == 0) q8_amx_emu_fault("tile not configured", t);
}

static void q8_amx_emu_load(int t, const void *base, size_t stride) {
  q8_amx_emu_check(t);
  const size_t rows = q8_amx_emu.cfg.rows[t], colsb = q8_amx_emu.cfg.colsb[t];
  memset(q8_amx_emu.tile[t], 0, sizeof q8_amx_emu.tile[t]);
  for (size_t r = 0; r < rows; ++r) {
    memcpy(q8_amx_emu.tile[t][r], (const uint8_t *)base + r * stride, colsb);
  }
}

static void q8_amx_emu_store(int t, void *base, size_t stride) {
  q8_amx_emu_check(t);
  const size_t rows = q8_amx_emu.cfg.rows[t], colsb = q8_amx_emu.cfg.colsb[t];
  for (size_t r = 0; r < rows; ++r) memcpy((uint8_t *)base + r * stride, q8_amx_emu.tile[t][r], colsb);
}

static void q8_amx_emu_zero(int t) {
  q8_amx_emu_check(t);
  memset(q8_amx_emu.tile[t], 0, sizeof q8_amx_emu.tile[t]);
}

/* tdpbusd: dst[m][n] += sum_k sum_i u8(src1[m][4k+i]) * s8(src2[k][4n+i]). */
static void q8_amx_emu_dpbusd(int dst, int src1, int src2) {
  q8_amx_emu_check(dst);
  q8_amx_emu_check(src1);
  q8_amx_emu_check(src2);
  const q8_amx_tilecfg *c = &q8_amx_emu.cfg;
  if (c->rows[dst] != c->rows[src1]) q8_amx_emu_fault("dst rows != src1 rows", dst);
  if (c->colsb[dst] != c->colsb[src2]) q8_amx_emu_fault("dst colsb != src2 colsb", dst);
  if (c->colsb[src1] != 4 * c->rows[src2]) q8_amx_emu_fault("src1 colsb != 4 x src2 rows", src1);
  if (c->colsb[dst] % 4 != 0) q8_amx_emu_fault("dst colsb not a multiple of 4", dst);
  const size_t rows = c->rows[dst], cols = c->colsb[dst] / 4, groups = c->rows[src2];
  for (size_t m = 0; m < rows; ++m) {
    for (size_t n = 0; n < cols; ++n) {
      int64_t sum = 0;
      for (size_t g = 0; g < groups; ++g) {
        for (size_t i = 0; i < 4; ++i) {
          sum += (int64_t)q8_amx_emu.tile[src1][m][4 * g + i] *
                 (int8_t)q8_amx_emu.tile[src2][g][4 * n + i];
        }
      }
      uint32_t acc;
      memcpy(&acc, &q8_amx_emu.tile[dst][m][4 * n], sizeof acc);
      acc += (uint32_t)(uint64_t)sum;
      memcpy(&q8_amx_emu.tile[dst][m][4 * n], &acc, sizeof acc);
    }
  }
}

static void q8_amx_emu_release(void) {
  q8_amx_emu.configured = 0;
  memset(&q8_amx_emu.cfg, 0, sizeof q8_amx_emu.cfg);
}

#define Q8_AMX_CONFIG(cfg) q8_amx_emu_config(cfg)
#define Q8_AMX_ZERO(t) q8_amx_emu_zero(t)
#define Q8_AMX_LOAD(t, base, stride) q8_amx_emu_load(t, base, stride)
#define Q8_AMX_STORE(t, base, stride) q8_amx_emu_store(t, base, stride)
#define Q8_AMX_DPBUSD(dst, src1, src2) q8_amx_emu_dpbusd(dst, src1, src2)
#define Q8_AMX_RELEASE() q8_amx_emu_release()

#endif
