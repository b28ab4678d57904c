/* AMX-INT8 GEMM micro-kernel (tdpbusd: u8 activations x s8 weights, 16x16
 * int32 per tile multiply over 64 bytes of K).
 *
 * Tile: MR = 32 rows x NR = 32 columns, KR = 4, the common packed layout
 * (q8_gemm_pack_nrkr), so plans pack for it as for AVX-512 VNNI. The eight
 * tile registers: C as 2 x 2 tiles of 16 x 16 int32 (tmm0-3), two A tiles of
 * 16 rows x 64 bytes (tmm4-5), two B tiles of 16 K groups x 16 columns x 4
 * bytes (tmm6-7): per 64 bytes of K, four loads feed four tdpbusd, the usual
 * 2 x 2 blocking (each A and B tile serves two multiplies). The packed block
 * already is the B tile layout: K group g holds the 32 columns' 4 bytes each,
 * 128 bytes, so the B tiles load straight from it with a stride of 128 bytes
 * (columns 0-15 at offset 0, 16-31 at 64). A tiles load straight from A with
 * its row stride.
 *
 * int8 activations are read as A + 128 (int8_a_offset = 128, the driver's
 * flip panel passes uint8); a direct call with int8 A flips each 64-byte
 * step into a staging tile. The last, partial K step (k not a multiple of
 * 64) goes through staging tiles for both operands: A rows are never read
 * past k bytes, the packed block never past its ceil(k / 4) groups, and the
 * staged bytes past k are zero (so are the packed weights past k).
 *
 * Each call configures the tiles for its rows and columns (ldtilecfg) and
 * releases them at the end (tilerelease): the kernel keeps no state between
 * calls, as kernels/ must not, and leaves no AMX state for another library's
 * code on the thread to meet. run_rows configures once for all the full row
 * tiles of a chunk. The accumulators are stored to the stack and the
 * epilogue (column terms, requantization, stores of any width) is AVX-512.
 *
 * Not measured: this machine has no AMX. The source is tested bit for bit
 * against the reference through q8_gemm_x8s8_32x32c4__amx_emu, the same code
 * on a scalar model of the tile unit (amx_emulate.h, gemm_amx_emu.c); on a
 * CPU with AMX the tests run the real kernel as well. */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "kernels/x86/requant_avx512.h"
#include "q8/kernels.h"

#define Q8_AMX_MR 32
#define Q8_AMX_NR 32
#define Q8_AMX_KSTEP 64                 /* bytes of K per tdpbusd */
#define Q8_AMX_GROUP_BYTES (Q8_AMX_NR * 4) /* one K group of the packed block */

/* The 64-byte operand of ldtilecfg, palette 1. */
typedef struct q8_amx_tilecfg {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} q8_amx_tilecfg;
_Static_assert(sizeof(q8_amx_tilecfg) == 64, "ldtilecfg reads 64 bytes");

#ifdef Q8_AMX_EMULATE
#include "kernels/x86/amx_emulate.h"
#define Q8_AMX_TARGET "avx512f,avx512bw,avx512dq,avx512vl"
#define Q8_AMX_DESCRIPTOR q8_gemm_x8s8_32x32c4__amx_emu
#else
#define Q8_AMX_TARGET "avx512f,avx512bw,avx512dq,avx512vl,amx-tile,amx-int8"
#define Q8_AMX_DESCRIPTOR q8_gemm_x8s8_32x32c4__amx
#define Q8_AMX_CONFIG(cfg) _tile_loadconfig(cfg)
#define Q8_AMX_ZERO(t) _tile_zero(t)
#define Q8_AMX_LOAD(t, base, stride) _tile_loadd(t, base, (long)(stride))
#define Q8_AMX_STORE(t, base, stride) _tile_stored(t, base, (long)(stride))
#define Q8_AMX_DPBUSD(dst, src1, src2) _tile_dpbusd(dst, src1, src2)
#define Q8_AMX_RELEASE() _tile_release()
#endif

#define Q8_AMX_INLINE static inline __attribute__((always_inline, target(Q8_AMX_TARGET)))
#define Q8_AMX_FN static __attribute__((noinline, target(Q8_AMX_TARGET)))

/* Tile registers (the intrinsics take their numbers as literals):
 * C rows 0-15 / 16-31 x columns 0-15 / 16-31: 0, 1, 2, 3; A rows 0-15,
 * 16-31: 4, 5; B columns 0-15, 16-31: 6, 7. */

/* Configures the tiles for `rows` (1..32) rows and one or two column tiles;
 * tiles a partial tile leaves unused are configured empty. */
Q8_AMX_INLINE void configure(size_t rows, int two_cols) {
  q8_amx_tilecfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  const uint8_t rows0 = (uint8_t)(rows < 16 ? rows : 16), rows1 = (uint8_t)(rows - rows0);
#define Q8_AMX_SET(t, r)  \
  do {                    \
    cfg.rows[t] = (r);    \
    cfg.colsb[t] = 64;    \
  } while (0)
  Q8_AMX_SET(0, rows0);
  Q8_AMX_SET(4, rows0);
  Q8_AMX_SET(6, 16);
  if (two_cols) {
    Q8_AMX_SET(1, rows0);
    Q8_AMX_SET(7, 16);
  }
  if (rows1) {
    Q8_AMX_SET(2, rows1);
    Q8_AMX_SET(5, rows1);
    if (two_cols) Q8_AMX_SET(3, rows1);
  }
#undef Q8_AMX_SET
  Q8_AMX_CONFIG(&cfg);
}

/* `rows` rows of len (1..64) bytes from src (stride bytes apart) into a
 * staging tile of 64-byte rows, the bytes past len zero; flip: int8 read as
 * uint8 (A + 128). Masked loads never touch memory past len. */
Q8_AMX_INLINE void stage_a(size_t rows, const uint8_t *src, size_t stride, size_t len, int flip,
                           uint8_t *dst) {
  const __mmask64 bytes = len >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << len) - 1);
  const __m512i sign = _mm512_set1_epi8((char)0x80);
  for (size_t r = 0; r < rows; ++r) {
    __m512i v = _mm512_maskz_loadu_epi8(bytes, src + r * stride);
    if (flip) v = _mm512_maskz_mov_epi8(bytes, _mm512_xor_si512(v, sign));
    _mm512_store_si512(dst + r * 64, v);
  }
}

/* acc (32 x 32 int32, rows past `rows` and columns past 16 without two_cols
 * untouched) = the rows x K product of A and the packed weights w (the
 * block's K groups), with the tiles configured for rows and two_cols. */
Q8_AMX_INLINE void multiply(size_t rows, int two_cols, size_t k, const uint8_t *a,
                            size_t a_stride, int flip, const int8_t *w,
                            int32_t acc[Q8_AMX_MR][Q8_AMX_NR]) {
  const int two_rows = rows > 16;
  _Alignas(64) uint8_t a_stage[Q8_AMX_MR * Q8_AMX_KSTEP];
  _Alignas(64) int8_t b_stage[16 * Q8_AMX_GROUP_BYTES];
  Q8_AMX_ZERO(0);
  if (two_cols) Q8_AMX_ZERO(1);
  if (two_rows) {
    Q8_AMX_ZERO(2);
    if (two_cols) Q8_AMX_ZERO(3);
  }
  const size_t steps = k / Q8_AMX_KSTEP, tail = k % Q8_AMX_KSTEP;
  for (size_t s = 0; s <= steps; ++s) {
    const uint8_t *as = a + s * Q8_AMX_KSTEP;
    size_t as_stride = a_stride;
    const int8_t *ws = w + s * 16 * Q8_AMX_GROUP_BYTES;
    if (s == steps) {
      if (tail == 0) break;
      stage_a(rows, as, a_stride, tail, flip, a_stage);
      as = a_stage;
      as_stride = Q8_AMX_KSTEP;
      const size_t groups = (tail + 3) / 4;
      memcpy(b_stage, ws, groups * Q8_AMX_GROUP_BYTES);
      memset(b_stage + groups * Q8_AMX_GROUP_BYTES, 0, (16 - groups) * Q8_AMX_GROUP_BYTES);
      ws = b_stage;
    } else if (flip) {
      stage_a(rows, as, a_stride, Q8_AMX_KSTEP, 1, a_stage);
      as = a_stage;
      as_stride = Q8_AMX_KSTEP;
    }
    Q8_AMX_LOAD(4, as, as_stride);
    if (two_rows) Q8_AMX_LOAD(5, as + 16 * as_stride, as_stride);
    Q8_AMX_LOAD(6, ws, Q8_AMX_GROUP_BYTES);
    if (two_cols) Q8_AMX_LOAD(7, ws + 64, Q8_AMX_GROUP_BYTES);
    Q8_AMX_DPBUSD(0, 4, 6);
    if (two_cols) Q8_AMX_DPBUSD(1, 4, 7);
    if (two_rows) {
      Q8_AMX_DPBUSD(2, 5, 6);
      if (two_cols) Q8_AMX_DPBUSD(3, 5, 7);
    }
  }
  const size_t c_stride = Q8_AMX_NR * sizeof(int32_t);
  Q8_AMX_STORE(0, &acc[0][0], c_stride);
  if (two_cols) Q8_AMX_STORE(1, &acc[0][16], c_stride);
  if (two_rows) {
    Q8_AMX_STORE(2, &acc[16][0], c_stride);
    if (two_cols) Q8_AMX_STORE(3, &acc[16][16], c_stride);
  }
}

#define Q8_AMX_INT32 (-1)

/* Writes rows x nr of C: acc + the column terms at the head of the packed
 * block, as int32 (KIND Q8_AMX_INT32) or requantized in mode KIND. */
Q8_AMX_INLINE void store_kind(const int KIND, int32_t acc[Q8_AMX_MR][Q8_AMX_NR],
                              const int32_t *col_term, size_t rows, size_t nr, unsigned char *c,
                              size_t c_stride, const q8_requant_params *rq) {
  const int nv = nr > 16 ? 2 : 1;
  __m512i ct[2];
  __mmask16 lanes[2];
  q8_rq512 p[2];
  __m512 fhi = _mm512_setzero_ps();
  for (int v = 0; v < nv; ++v) {
    lanes[v] = q8_rq512_lane_mask(nr, v);
    ct[v] = _mm512_loadu_si512(col_term + 16 * v);
    if (KIND != Q8_AMX_INT32) q8_rq512_init(&p[v], rq, (size_t)v * 16, lanes[v]);
  }
  if (KIND == Q8_REQUANT_FP32) fhi = _mm512_set1_ps((float)(rq->qmax - rq->zero_point));
  for (size_t m = 0; m < rows; ++m) {
    for (int v = 0; v < nv; ++v) {
      const __m512i x = _mm512_add_epi32(_mm512_load_si512(&acc[m][16 * v]), ct[v]);
      unsigned char *dst = c + m * c_stride;
      if (KIND == Q8_AMX_INT32) {
        _mm512_mask_storeu_epi32(dst + 64 * v, lanes[v], x);
        continue;
      }
      __m512i z;
      if (KIND == Q8_REQUANT_GEMMLOWP) {
        z = q8_rq512_gemmlowp(&p[v], x);
      } else if (KIND == Q8_REQUANT_SINGLE) {
        z = q8_rq512_single(&p[v], x);
      } else {
        z = q8_rq512_finish(&p[v], q8_rq512_fp32_upper(x, p[v].scale, fhi));
      }
      /* z is within the output type: vpmovdb's truncation is exact. */
      _mm512_mask_cvtepi32_storeu_epi8(dst + 16 * v, lanes[v], z);
    }
  }
}

Q8_AMX_INLINE void store(int32_t acc[Q8_AMX_MR][Q8_AMX_NR], const int32_t *col_term, size_t rows,
                         size_t nr, unsigned char *c, size_t c_stride,
                         const q8_requant_params *rq) {
  if (rq == NULL) {
    store_kind(Q8_AMX_INT32, acc, col_term, rows, nr, c, c_stride, rq);
  } else if (rq->mode == Q8_REQUANT_GEMMLOWP) {
    store_kind(Q8_REQUANT_GEMMLOWP, acc, col_term, rows, nr, c, c_stride, rq);
  } else if (rq->mode == Q8_REQUANT_SINGLE) {
    store_kind(Q8_REQUANT_SINGLE, acc, col_term, rows, nr, c, c_stride, rq);
  } else {
    store_kind(Q8_REQUANT_FP32, acc, col_term, rows, nr, c, c_stride, rq);
  }
}

Q8_AMX_FN void run(size_t mr, size_t nr, size_t k, const void *a, size_t a_stride,
                   q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                   const q8_requant_params *rq) {
  _Alignas(64) int32_t acc[Q8_AMX_MR][Q8_AMX_NR];
  const int8_t *block = packed;
  configure(mr, nr > 16);
  multiply(mr, nr > 16, k, a, a_stride, a_dtype == Q8_INT8, block + Q8_AMX_GROUP_BYTES, acc);
  Q8_AMX_RELEASE();
  store(acc, (const int32_t *)block, mr, nr, c, c_stride, rq);
}

/* Full 32-row tiles under one configuration, then the rest through run. */
Q8_AMX_FN void run_rows(size_t m, size_t nr, size_t k, const void *a, size_t a_stride,
                        q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                        const q8_requant_params *rq) {
  _Alignas(64) int32_t acc[Q8_AMX_MR][Q8_AMX_NR];
  const int8_t *block = packed;
  const uint8_t *a_row = a;
  unsigned char *c_row = c;
  const size_t full = m / Q8_AMX_MR * Q8_AMX_MR;
  if (full) {
    configure(Q8_AMX_MR, nr > 16);
    for (size_t r = 0; r < full; r += Q8_AMX_MR) {
      multiply(Q8_AMX_MR, nr > 16, k, a_row, a_stride, a_dtype == Q8_INT8,
               block + Q8_AMX_GROUP_BYTES, acc);
      store(acc, (const int32_t *)block, Q8_AMX_MR, nr, c_row, c_stride, rq);
      a_row += Q8_AMX_MR * a_stride;
      c_row += Q8_AMX_MR * c_stride;
    }
    Q8_AMX_RELEASE();
  }
  if (m > full) run(m - full, nr, k, a_row, a_stride, a_dtype, packed, c_row, c_stride, rq);
}

const q8_gemm_ukernel Q8_AMX_DESCRIPTOR = {
#ifdef Q8_AMX_EMULATE
    .name = "q8_gemm_x8s8_32x32c4__amx_emu",
#else
    .name = "q8_gemm_x8s8_32x32c4__amx",
#endif
    .mr = Q8_AMX_MR,
    .nr = Q8_AMX_NR,
    .kr = 4,
    .int8_a_offset = 128,
    .pack = q8_gemm_pack_nrkr,
    .run = run,
    .run_rows = run_rows,
};
