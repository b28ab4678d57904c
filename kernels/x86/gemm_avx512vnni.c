/* AVX-512 VNNI int8 GEMM micro-kernel (vpdpbusd: u8 activations x s8 weights).
 *
 * Tile: MR = 8 rows x NR = 32 columns (NV = 2 vectors of 16), KR = 4, the
 * common packed layout (q8_gemm_pack_nrkr). Per K group of 4: NV weight
 * vectors are loaded once, each row broadcasts its 4 activation bytes
 * (vpbroadcastd from memory: a load-port-only uop) and issues NV vpdpbusd into
 * MR x NV = 16 accumulators: enough independent chains for two 512-bit ports
 * of latency 5 (Sapphire Rapids) and for Zen 4 (one zmm per cycle, latency 4),
 * leaving registers free; 8 x 32 also divides the usual power-of-two shapes.
 *
 * int8 activations are read as A + 128 (int8_a_offset = 128). The flip is not
 * applied to each broadcast: that is one more vector ALU op per row per K
 * group, competing with vpdpbusd for the vector ports (ports 0/5 on Intel; on
 * Zen 4 it measured ~10% slower). Instead each row is flipped 64 bytes at a
 * time (one xor per 16 K groups) into a small ring buffer on the stack that
 * the broadcasts read, AHEAD slots ahead of use, so the stores trickle between
 * the vpdpbusd. The last slot is loaded with a byte mask: bytes past k are 0,
 * 0x80 after the flip, and meet the zero padding of the packed weights.
 * uint8 activations are broadcast straight from A, the partial last group
 * through a masked load. A is never read past k bytes per row.
 *
 * The tile of C is prefetched for writing when the tile starts: otherwise its
 * stores miss at the end of the tile and wait in the store queue for their
 * lines, and (stores committing in order) the next tile's ring stores queue
 * behind them (measured: int8 activations, int32 output, 84% -> 91% of peak).
 *
 * Tiles of 4 rows and more prefetch the packed weights 8 KiB ahead, past the
 * end of the tile into the next column tile's block (which follows it in
 * memory). With 16 vpdpbusd per 128 weight bytes the out-of-order window
 * reaches only ~1.5 KiB ahead in the weight stream, less than an L3 miss
 * takes to arrive, so at M = 4..8 with weights in L3 (4096x4096) the loads
 * waited on misses: measured on Zen 4, 8x4096x4096 went from 0.71 to 0.64 ms
 * (with the plan's huge pages); 2, 4, 16 and 32 KiB ahead and non-temporal
 * hints measured no better. Fewer rows (the K-split path) do little work per
 * byte, their window reaches far enough, and the prefetches only took load
 * slots: 1x3072x768 26 -> 32 us, so they have none. Where the weights sit in
 * L2 (large M) the prefetches hit and cost little (1024^3 unchanged). The
 * conv's K-range tiles have none (see tile_ranges).
 *
 * Few rows (mr * NV < 12: tiles of up to 5 rows, e.g. batch-1 GEMV and the
 * 5-row border tiles of a 7x7 conv) split K over S independent accumulator
 * sets so that enough vpdpbusd chains cover its latency (see Q8_VNNI_S).
 *
 * Every mr in 1..MR has its own fully unrolled function per activation type
 * and per width (NV vectors, or one for nr <= 16), so row and column tails
 * run at full speed and each gets its own register allocation. (A 1x1 conv
 * with 16 output channels, 112x112x32:16, took 81 us with the full-width tile
 * and takes 53 us with the narrow one.)
 * run_rows runs a chunk of many row tiles on one column tile in one call (the
 * blocked driver uses it for small k, e.g. 1x1 convs of 16-64 channels): the
 * requantization constants are set up once, the mode and output layout are
 * chosen once, and where output rows are back to back (16 or 32 output
 * channels) a pack of 64 output bytes is one store. 112x112x32:16 (fp32,
 * int8 out): 60 -> 40 us; 112x112x16:96 184 -> 161 us. run_rows_k_ranges
 * is the same over K ranges, for the kernel-row windows of the conv
 * (q8_conv_windows: one call per output line and column tile); on the
 * MobileNetV2 stem, 105 us with run_k_ranges per tile, 95 us with it.
 * Compiled for AVX-512 through function attributes only: the file builds with
 * a plain `cc -std=c17 -O2`, and dispatch calls it only where AVX-512 VNNI is
 * usable. */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "kernels/x86/requant_avx512.h"
#include "q8/kernels.h"

/* The tile (the code is generic in MR and NV; the descriptor's name is not). */
#define Q8_VNNI_MR 8
#define Q8_VNNI_NV 2
#define Q8_VNNI_NR (16 * Q8_VNNI_NV)
/* Rows of a K-range tile (run_k_ranges, k_ranges_mr): see tile_ranges. */
#define Q8_VNNI_RANGES_MR 14
/* int8 ring: SLOTS slots of 64 bytes per row, flipped AHEAD slots early. */
#define Q8_VNNI_AHEAD 2
#define Q8_VNNI_SLOTS 4
#define Q8_VNNI_RING (64 * Q8_VNNI_SLOTS)
#define Q8_VNNI_SMAX 4
/* Tiles with one accumulator set (S = 1) prefetch the weights this many
 * bytes ahead of use (see the file comment). */
#define Q8_VNNI_PREFETCH 8192
/* K groups from which run_rows's full tiles take the asm K loop (dot8_rows):
 * below, its accumulator loads and stores cost more than it saves. */
#define Q8_VNNI_ASM_GROUPS 16
/* accumulate_u8's IN_ROWS for the asm K loop (dot8_rows). */
#define Q8_VNNI_IN_ROWS_ASM 2

#define Q8_VNNI_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,prfchw"
#define Q8_VNNI_INLINE static inline __attribute__((always_inline, target(Q8_VNNI_TARGET)))
#define Q8_VNNI_FN static __attribute__((noinline, target(Q8_VNNI_TARGET)))

typedef struct vnni_acc {
  __m512i v[Q8_VNNI_SMAX][Q8_VNNI_RANGES_MR][Q8_VNNI_NV];
} vnni_acc;
/* dot8_rows's asm stores row m, vector v of set 0 at byte 128 m + 64 v. */
_Static_assert(sizeof(((vnni_acc *)0)->v[0][0]) == 128, "vnni_acc rows are two vectors");

Q8_VNNI_INLINE __m512i bcast4(const uint8_t *p) {
  int32_t x;
  memcpy(&x, p, sizeof x);
  return _mm512_set1_epi32(x);
}

/* acc += a . w through inline asm, whose "+v" ties the accumulator to one
 * register: with the intrinsic, in the row loop of run_rows GCC 12 moved
 * every accumulator to a scratch register and back around each vpdpbusd
 * (two extra moves per vpdpbusd, in 8x16 tiles at k = 32 a third of the
 * loop). The K-split tiles (S > 1: 1-5 rows, and the one-vector ones) take
 * it too: there GCC copied each accumulator between two registers once per
 * vpdpbusd, on the chain the sets exist to shorten (Zen 5, alternating
 * processes, 8 pairs, median time ratio: 2x768x768 1.33, 3x1024x1024 1.29,
 * 4x768x768 and 5x3072x768 1.05; 8-row tiles and convs level).
 * dpbusd_tied_mem lets the weights stay a memory operand, for one row only:
 * with more rows GCC folds the same weight load into each row's vpdpbusd
 * (2x768x768 1.33x slower than loading it once). */
Q8_VNNI_INLINE void dpbusd_tied(__m512i *acc, __m512i a, __m512i w) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(*acc) : "v"(a), "v"(w));
}
Q8_VNNI_INLINE void dpbusd_tied_mem(__m512i *acc, __m512i a, __m512i w) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(*acc) : "v"(a), "vm"(w));
}

/* Pieces of dot8_rows's asm: one row's broadcast from ADDR and its
 * vpdpbusd into accumulators C0 (and C1), the store of accumulator C to acc
 * at OFF, and the loop's tail. NV = 2: weights in zmm16-17, broadcast in
 * zmm18; NV = 1: zmm8, zmm9. */
#define Q8_VNNI_ROW_NV2(ADDR, C0, C1)                  \
  "vpbroadcastd " ADDR ", %%zmm18\n\t"                 \
  "vpdpbusd %%zmm16, %%zmm18, %%zmm" #C0 "\n\t"        \
  "vpdpbusd %%zmm17, %%zmm18, %%zmm" #C1 "\n\t"
#define Q8_VNNI_ROW_NV1(ADDR, C0)                      \
  "vpbroadcastd " ADDR ", %%zmm9\n\t"                  \
  "vpdpbusd %%zmm8, %%zmm9, %%zmm" #C0 "\n\t"
#define Q8_VNNI_STORE_ACC(C, OFF) "vmovdqu64 %%zmm" #C ", " #OFF "(%[acc])\n\t"
#define Q8_VNNI_LOOP_TAIL \
  "add $128, %[w]\n\tadd $4, %[a]\n\tadd $4, %[a4]\n\tdec %[n]\n\tjnz 1b\n\t"
/* Row addresses: a + {0,1,2,3} x as, then a4 = a + 4 x as the same. */
#define Q8_VNNI_A0 "(%[a])"
#define Q8_VNNI_A1 "(%[a],%[as])"
#define Q8_VNNI_A2 "(%[a],%[as],2)"
#define Q8_VNNI_A3 "(%[a],%[as3])"
#define Q8_VNNI_A4 "(%[a4])"
#define Q8_VNNI_A5 "(%[a4],%[as])"
#define Q8_VNNI_A6 "(%[a4],%[as],2)"
#define Q8_VNNI_A7 "(%[a4],%[as3])"

/* The K loop of a full 8-row tile inside run_rows (S = 1, uint8 A, weights
 * in L1) in asm, the accumulators in fixed registers and stored to acc after
 * it: with intrinsics (or one asm per vpdpbusd) GCC 12 kept one or more
 * of the 8 x NV accumulators on the stack across this loop, a store and a
 * reload per K group on its chain (14x14x384:96 at half of peak), and an asm
 * holding them all as operands exceeds GCC's 30. The accumulators start from
 * the column terms at the head of packed and are stored to acc at the end.
 * Rows are addressed as a + {0,1,2,3} x as and a4 + {0,1,2,3} x as. ng >= 1;
 * returns the weights past the ng groups. It reads A and the weights through
 * its pointers, hence the "memory" clobber. */
Q8_VNNI_INLINE const int8_t *dot8_rows(const int NV, vnni_acc *acc, const uint8_t *a, size_t as,
                                       const int8_t *packed, size_t ng) {
  const int8_t *ct = packed, *w = packed + Q8_VNNI_NR * 4;
  const uint8_t *a4 = a + 4 * as;
  const size_t as3 = 3 * as;
  size_t n = ng;
  if (NV == 2) { /* row m: zmm 2m (columns 0-15) and zmm 2m+1 (16-31) */
    __asm__ volatile(
        "vmovdqu64 (%[ct]), %%zmm0\n\t"
        "vmovdqu64 64(%[ct]), %%zmm1\n\t"
        "vmovdqa64 %%zmm0, %%zmm2\n\tvmovdqa64 %%zmm1, %%zmm3\n\t"
        "vmovdqa64 %%zmm0, %%zmm4\n\tvmovdqa64 %%zmm1, %%zmm5\n\t"
        "vmovdqa64 %%zmm0, %%zmm6\n\tvmovdqa64 %%zmm1, %%zmm7\n\t"
        "vmovdqa64 %%zmm0, %%zmm8\n\tvmovdqa64 %%zmm1, %%zmm9\n\t"
        "vmovdqa64 %%zmm0, %%zmm10\n\tvmovdqa64 %%zmm1, %%zmm11\n\t"
        "vmovdqa64 %%zmm0, %%zmm12\n\tvmovdqa64 %%zmm1, %%zmm13\n\t"
        "vmovdqa64 %%zmm0, %%zmm14\n\tvmovdqa64 %%zmm1, %%zmm15\n\t"
        "1:\n\t"
        "vmovdqu64 (%[w]), %%zmm16\n\t"
        "vmovdqu64 64(%[w]), %%zmm17\n\t"
        Q8_VNNI_ROW_NV2(Q8_VNNI_A0, 0, 1) Q8_VNNI_ROW_NV2(Q8_VNNI_A1, 2, 3)
        Q8_VNNI_ROW_NV2(Q8_VNNI_A2, 4, 5) Q8_VNNI_ROW_NV2(Q8_VNNI_A3, 6, 7)
        Q8_VNNI_ROW_NV2(Q8_VNNI_A4, 8, 9) Q8_VNNI_ROW_NV2(Q8_VNNI_A5, 10, 11)
        Q8_VNNI_ROW_NV2(Q8_VNNI_A6, 12, 13) Q8_VNNI_ROW_NV2(Q8_VNNI_A7, 14, 15)
        Q8_VNNI_LOOP_TAIL
        Q8_VNNI_STORE_ACC(0, 0) Q8_VNNI_STORE_ACC(1, 64) Q8_VNNI_STORE_ACC(2, 128)
        Q8_VNNI_STORE_ACC(3, 192) Q8_VNNI_STORE_ACC(4, 256) Q8_VNNI_STORE_ACC(5, 320)
        Q8_VNNI_STORE_ACC(6, 384) Q8_VNNI_STORE_ACC(7, 448) Q8_VNNI_STORE_ACC(8, 512)
        Q8_VNNI_STORE_ACC(9, 576) Q8_VNNI_STORE_ACC(10, 640) Q8_VNNI_STORE_ACC(11, 704)
        Q8_VNNI_STORE_ACC(12, 768) Q8_VNNI_STORE_ACC(13, 832) Q8_VNNI_STORE_ACC(14, 896)
        Q8_VNNI_STORE_ACC(15, 960)
        : [w] "+r"(w), [a] "+r"(a), [a4] "+r"(a4), [n] "+r"(n), "=m"(*acc)
        : [acc] "r"(acc->v[0]), [ct] "r"(ct), [as] "r"(as), [as3] "r"(as3)
        : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9",
          "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18",
          "cc", "memory");
  } else { /* row m: zmm m; acc keeps its NV = 2 layout (row stride 128) */
    __asm__ volatile(
        "vmovdqu64 (%[ct]), %%zmm0\n\t"
        "vmovdqa64 %%zmm0, %%zmm1\n\tvmovdqa64 %%zmm0, %%zmm2\n\t"
        "vmovdqa64 %%zmm0, %%zmm3\n\tvmovdqa64 %%zmm0, %%zmm4\n\t"
        "vmovdqa64 %%zmm0, %%zmm5\n\tvmovdqa64 %%zmm0, %%zmm6\n\t"
        "vmovdqa64 %%zmm0, %%zmm7\n\t"
        "1:\n\t"
        "vmovdqu64 (%[w]), %%zmm8\n\t"
        Q8_VNNI_ROW_NV1(Q8_VNNI_A0, 0) Q8_VNNI_ROW_NV1(Q8_VNNI_A1, 1)
        Q8_VNNI_ROW_NV1(Q8_VNNI_A2, 2) Q8_VNNI_ROW_NV1(Q8_VNNI_A3, 3)
        Q8_VNNI_ROW_NV1(Q8_VNNI_A4, 4) Q8_VNNI_ROW_NV1(Q8_VNNI_A5, 5)
        Q8_VNNI_ROW_NV1(Q8_VNNI_A6, 6) Q8_VNNI_ROW_NV1(Q8_VNNI_A7, 7)
        Q8_VNNI_LOOP_TAIL
        Q8_VNNI_STORE_ACC(0, 0) Q8_VNNI_STORE_ACC(1, 128) Q8_VNNI_STORE_ACC(2, 256)
        Q8_VNNI_STORE_ACC(3, 384) Q8_VNNI_STORE_ACC(4, 512) Q8_VNNI_STORE_ACC(5, 640)
        Q8_VNNI_STORE_ACC(6, 768) Q8_VNNI_STORE_ACC(7, 896)
        : [w] "+r"(w), [a] "+r"(a), [a4] "+r"(a4), [n] "+r"(n), "=m"(*acc)
        : [acc] "r"(acc->v[0]), [ct] "r"(ct), [as] "r"(as), [as3] "r"(as3)
        : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "cc",
          "memory");
  }
  return w;
}

/* acc += K groups [0, ng) of rows a (stride as) times the packed weights w;
 * group g goes to accumulator set g % S. Returns w past the groups.
 * IN_ROWS: inside run_rows's row loop, vpdpbusd through dpbusd_tied.
 * PREFETCH: the weights Q8_VNNI_PREFETCH bytes ahead (one set only; not in
 * run_rows, where the weights are in L1 after the first tile, nor in the
 * conv's K-range tiles, see tile_ranges). */
Q8_VNNI_INLINE const int8_t *dot_groups_in(const int MR, const int NV, const int S,
                                           const int IN_ROWS, const int PREFETCH, vnni_acc *acc,
                                           const uint8_t *a, size_t as, const int8_t *w,
                                           size_t ng) {
  size_t g = 0;
  for (; g + S <= ng; g += S) {
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) {
      __m512i wv[Q8_VNNI_NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        if (PREFETCH && S == 1) _mm_prefetch((const char *)w + Q8_VNNI_PREFETCH + 64 * v, _MM_HINT_T0);
        wv[v] = _mm512_loadu_si512(w + 64 * v);
      }
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        const __m512i av = bcast4(a + m * as + 4 * (g + s));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          if (MR == 1 && (IN_ROWS || S > 1)) {
            dpbusd_tied_mem(&acc->v[s][m][v], av, wv[v]);
          } else if (IN_ROWS || S > 1) {
            dpbusd_tied(&acc->v[s][m][v], av, wv[v]);
          } else {
            acc->v[s][m][v] = _mm512_dpbusd_epi32(acc->v[s][m][v], av, wv[v]);
          }
        }
      }
      w += Q8_VNNI_NR * 4;
    }
  }
  for (; g < ng; ++g) {
    __m512i wv[Q8_VNNI_NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w + 64 * v);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i av = bcast4(a + m * as + 4 * g);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc->v[0][m][v] = _mm512_dpbusd_epi32(acc->v[0][m][v], av, wv[v]);
      }
    }
    w += Q8_VNNI_NR * 4;
  }
  return w;
}

/* The single-tile form: prefetches the weights ahead (see the file comment). */
Q8_VNNI_INLINE const int8_t *dot_groups(const int MR, const int NV, const int S, vnni_acc *acc,
                                        const uint8_t *a, size_t as, const int8_t *w,
                                        size_t ng) {
  return dot_groups_in(MR, NV, S, 0, 1, acc, a, as, w, ng);
}

/* Flips (xor 0x80) 64 bytes of each of MR rows into the ring slot dst (rows
 * Q8_VNNI_RING bytes apart). left < 64: only `left` bytes remain in A; the
 * rest of the slot becomes 0x80 (zero, flipped) and meets zero weights. */
Q8_VNNI_INLINE void flip_slot(const int MR, uint8_t *dst, const uint8_t *src, size_t a_stride,
                              size_t left) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  if (left >= 64) {
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      _mm512_store_si512(dst + m * Q8_VNNI_RING,
                         _mm512_xor_si512(_mm512_loadu_si512(src + m * a_stride), flip));
    }
  } else {
    const __mmask64 mk = (__mmask64)((1ull << left) - 1u);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      _mm512_store_si512(dst + m * Q8_VNNI_RING,
                         _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, src + m * a_stride), flip));
    }
  }
}

/* Prefetches the tile of C for writing (the tile's lines would otherwise be
 * read for ownership only when the results are stored, and those stores would
 * sit in the store queue ahead of the next tile's ring stores). */
Q8_VNNI_INLINE void prefetch_c(const int MR, unsigned char *c, size_t c_stride, size_t bytes) {
  /* A row is at most 128 bytes (32 int32), so at most 3 lines: its first
   * byte, its 65th and its last reach each (a repeated line costs one load
   * slot; a loop over the lines cost 12 % of a 8x16 tile at k = 32). */
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    const unsigned char *row = c + m * c_stride;
    __builtin_prefetch(row, 1, 3);
    if (bytes > 64) __builtin_prefetch(row + 64, 1, 3);
    __builtin_prefetch(row + bytes - 1, 1, 3);
  }
}

Q8_VNNI_INLINE void init_acc(const int MR, const int NV, const int S, vnni_acc *acc,
                             const int8_t *packed) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m512i ct = _mm512_loadu_si512(packed + 64 * v);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      acc->v[0][m][v] = ct;
#pragma GCC unroll 4
      for (int s = 1; s < S; ++s) acc->v[s][m][v] = _mm512_setzero_si512();
    }
  }
}

/* What the requantizing store needs per column tile: set up once per tile,
 * or once per run of row tiles (run_rows). */
typedef struct vnni_rq {
  q8_rq512 p[Q8_VNNI_NV];
  __m512i zp16, qmin8, order;
  __m512 fhi;
} vnni_rq;

Q8_VNNI_INLINE void rq_setup(const int NV, vnni_rq *r, const q8_requant_params *rq, size_t nr) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    q8_rq512_init(&r->p[v], rq, (size_t)v * 16, q8_rq512_lane_mask(nr, v));
  }
  r->zp16 = _mm512_set1_epi16((short)rq->zero_point);
  r->qmin8 = _mm512_set1_epi8((char)rq->qmin);
  r->fhi = _mm512_set1_ps((float)(rq->qmax - rq->zero_point));
  /* Dword j * 4 + i of the result is dword i * 4 + j of the packs' output. */
  r->order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
}

/* fp32 without its upper clamp (q8_requant_params.fp32_clamp_free): a MODE
 * of store_requantized beside q8_requant_mode's, for the run_rows paths. */
#define Q8_VNNI_FP32_FREE 16

/* One vector of accumulators requantized in MODE with the constants of p. */
Q8_VNNI_INLINE __m512i requant_vector(const int MODE, const q8_rq512 *p, __m512i acc,
                                      __m512 fhi) {
  if (MODE == Q8_REQUANT_GEMMLOWP) return q8_rq512_gemmlowp(p, acc);
  if (MODE == Q8_REQUANT_SINGLE) return q8_rq512_single(p, acc);
  if (MODE == Q8_VNNI_FP32_FREE) return q8_rq512_fp32_unclamped(acc, p->scale);
  return q8_rq512_fp32_upper(acc, p->scale, fhi);
}

/* Four requantized vectors narrowed to 64 bytes in vector order. */
Q8_VNNI_INLINE __m512i pack_ordered(const int MODE, const int U8, const vnni_rq *r,
                                    const __m512i z[4]) {
  return _mm512_permutexvar_epi32(
      r->order, q8_rq512_pack4(z[0], z[1], z[2], z[3],
                               MODE == Q8_REQUANT_FP32 || MODE == Q8_VNNI_FP32_FREE, r->zp16,
                               r->qmin8, U8 ? Q8_UINT8 : Q8_INT8));
}

/* Index of rq's mode in the per-mode tables (gemmlowp, single, fp32, fp32
 * clamp-free). */
static int mode_index(const q8_requant_params *rq) {
  return rq->mode == Q8_REQUANT_GEMMLOWP ? 0
         : rq->mode == Q8_REQUANT_SINGLE ? 1
         : rq->fp32_clamp_free           ? 3
                                         : 2;
}

/* Output layouts of a tile: rows of any width (masked stores), rows of the
 * full 16 * NV columns, or full rows back to back (c_stride = 16 * NV, as in
 * a 1x1 conv with 16 or 32 output channels), where the 64 bytes of a pack
 * are one store. */
#define Q8_VNNI_ROWS_ANY 0
#define Q8_VNNI_ROWS_FULL 1
#define Q8_VNNI_ROWS_CONTIGUOUS 2

/* Requantizes and stores the tile: four vectors at a time narrowed by
 * q8_rq512_pack4 (two rows of 32 columns, or four rows of 16) and put back in
 * order by one permute, cheaper than a vpmovdb per vector; one instance per
 * mode and output type. 8x32 at k = 16, fp32 int8 output: 169 cycles per
 * tile with vpmovdb and the mode chosen per row, 135 now. */
Q8_VNNI_INLINE void store_requantized(const int MR, const int NV, const q8_requant_mode MODE,
                                      const int U8, const int LAYOUT, const vnni_rq *r,
                                      vnni_acc *acc, size_t nr, unsigned char *c,
                                      size_t c_stride) {
  const int rows_per_pack = 4 / NV;
#pragma GCC unroll 16
  for (int m = 0; m < MR; m += rows_per_pack) {
    __m512i z[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      /* Vector i is row m + i / NV, vector i % NV; past the last row, repeat
       * row m (computed, not stored). */
      const int row = m + i / NV < MR ? m + i / NV : m, v = i % NV;
      z[i] = requant_vector(MODE, &r->p[v], acc->v[0][row][v], r->fhi);
    }
    const __m512i b = pack_ordered(MODE, U8, r, z);
    if (LAYOUT == Q8_VNNI_ROWS_CONTIGUOUS && MR % rows_per_pack == 0) {
      _mm512_storeu_si512(c + m * c_stride, b);
    } else if (NV == 2) {
      const __mmask32 cols = LAYOUT == Q8_VNNI_ROWS_FULL || nr >= 32
                                 ? 0xFFFFFFFFu
                                 : (__mmask32)((1u << nr) - 1u);
      _mm256_mask_storeu_epi8(c + m * c_stride, cols, _mm512_castsi512_si256(b));
      if (m + 1 < MR) {
        _mm256_mask_storeu_epi8(c + (m + 1) * c_stride, cols, _mm512_extracti64x4_epi64(b, 1));
      }
    } else {
      const __mmask16 cols = LAYOUT == Q8_VNNI_ROWS_FULL ? 0xFFFF : q8_rq512_lane_mask(nr, 0);
      _mm_mask_storeu_epi8(c + m * c_stride, cols, _mm512_castsi512_si128(b));
      if (m + 1 < MR) {
        _mm_mask_storeu_epi8(c + (m + 1) * c_stride, cols, _mm512_extracti32x4_epi32(b, 1));
      }
      if (m + 2 < MR) {
        _mm_mask_storeu_epi8(c + (m + 2) * c_stride, cols, _mm512_extracti32x4_epi32(b, 2));
      }
      if (m + 3 < MR) {
        _mm_mask_storeu_epi8(c + (m + 3) * c_stride, cols, _mm512_extracti32x4_epi32(b, 3));
      }
    }
  }
}

Q8_VNNI_INLINE void store_int32(const int MR, const int NV, vnni_acc *acc, size_t nr,
                                unsigned char *c, size_t c_stride) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __mmask16 lanes = q8_rq512_lane_mask(nr, v);
    if (lanes == 0) break;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      void *dst = c + m * c_stride + 64 * v;
      if (lanes == 0xFFFF) {
        _mm512_storeu_si512(dst, acc->v[0][m][v]);
      } else {
        _mm512_mask_storeu_epi32(dst, lanes, acc->v[0][m][v]);
      }
    }
  }
}

/* The requantizing store for rq's mode and output type: one loop each, so
 * that nothing is decided per row. */
Q8_VNNI_INLINE void store_mode(const int MR, const int NV, const vnni_rq *r, vnni_acc *acc,
                               size_t nr, unsigned char *c, size_t c_stride,
                               const q8_requant_params *rq) {
#define Q8_VNNI_STORE_MODE(MODE)                                                         \
  if (rq->out_dtype == Q8_UINT8) {                                                       \
    store_requantized(MR, NV, MODE, 1, Q8_VNNI_ROWS_ANY, r, acc, nr, c, c_stride);                        \
  } else {                                                                               \
    store_requantized(MR, NV, MODE, 0, Q8_VNNI_ROWS_ANY, r, acc, nr, c, c_stride);                        \
  }                                                                                      \
  break;
  switch (rq->mode) {
    case Q8_REQUANT_GEMMLOWP: Q8_VNNI_STORE_MODE(Q8_REQUANT_GEMMLOWP)
    case Q8_REQUANT_SINGLE: Q8_VNNI_STORE_MODE(Q8_REQUANT_SINGLE)
    case Q8_REQUANT_FP32:
    default: Q8_VNNI_STORE_MODE(Q8_REQUANT_FP32)
  }
#undef Q8_VNNI_STORE_MODE
}

/* Sums the K-split sets and writes the mr x nr tile (int32 or requantized). */
Q8_VNNI_INLINE void finish(const int MR, const int NV, const int S, vnni_acc *acc, size_t nr,
                           unsigned char *c, size_t c_stride, const q8_requant_params *rq) {
#pragma GCC unroll 4
  for (int s = 1; s < S; ++s) {
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc->v[0][m][v] = _mm512_add_epi32(acc->v[0][m][v], acc->v[s][m][v]);
      }
    }
  }
  if (rq == NULL) {
    store_int32(MR, NV, acc, nr, c, c_stride);
    return;
  }
  vnni_rq r;
  rq_setup(NV, &r, rq, nr);
  store_mode(MR, NV, &r, acc, nr, c, c_stride, rq);
}

/* uint8 activations: broadcast straight from A. */
Q8_VNNI_INLINE void accumulate_u8(const int MR, const int NV, const int S, const int IN_ROWS,
                                  vnni_acc *acc, size_t k, const uint8_t *a,
                                  size_t a_stride, const int8_t *packed) {
  const size_t full = k / 4;
  const int8_t *w;
  if (IN_ROWS == Q8_VNNI_IN_ROWS_ASM && MR == Q8_VNNI_MR && S == 1 && full > 0) {
    w = dot8_rows(NV, acc, a, a_stride, packed, full);
  } else {
    init_acc(MR, NV, S, acc, packed);
    w = dot_groups_in(MR, NV, S, IN_ROWS, !IN_ROWS, acc, a, a_stride, packed + Q8_VNNI_NR * 4,
                      full);
  }
  const size_t rest = k % 4;
  if (rest) {
    const __mmask16 mk = (__mmask16)((1u << rest) - 1u);
    __m512i wv[Q8_VNNI_NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w + 64 * v);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i av =
          _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(mk, a + m * a_stride + 4 * full));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc->v[0][m][v] = _mm512_dpbusd_epi32(acc->v[0][m][v], av, wv[v]);
      }
    }
  }
}

/* uint8 activations over K ranges (no col_adjust): the ranges' groups in turn. */
Q8_VNNI_INLINE void accumulate_ranges(const int MR, const int NV, vnni_acc *acc,
                                      const q8_k_range *ranges, size_t nranges,
                                      const uint8_t *a, size_t a_stride, const int8_t *packed) {
  init_acc(MR, NV, 1, acc, packed);
  const int8_t *w = packed + Q8_VNNI_NR * 4;
  for (size_t r = 0; r < nranges; ++r) {
    dot_groups_in(MR, NV, 1, 1, 0, acc, a + ranges[r].a_offset, a_stride,
                  w + ranges[r].begin / 4 * (Q8_VNNI_NR * 4), ranges[r].len / 4);
  }
}

Q8_VNNI_INLINE void tile_u8(const int MR, const int NV, const int S, size_t nr, size_t k,
                            const uint8_t *a, size_t a_stride, const int8_t *packed,
                            unsigned char *c, size_t c_stride, const q8_requant_params *rq) {
  vnni_acc acc;
  prefetch_c(MR, c, c_stride, rq ? nr : nr * sizeof(int32_t));
  accumulate_u8(MR, NV, S, 0, &acc, k, a, a_stride, packed);
  finish(MR, NV, S, &acc, nr, c, c_stride, rq);
}

/* int8 activations: A + 128 through the ring. Slot j holds bytes
 * [64 j, 64 j + 64) of every row (K groups 16 j .. 16 j + 15). */
Q8_VNNI_INLINE void tile_s8(const int MR, const int NV, const int S, size_t nr, size_t k,
                            const uint8_t *a, size_t a_stride, const int8_t *packed,
                            unsigned char *c, size_t c_stride, const q8_requant_params *rq) {
  vnni_acc acc;
  prefetch_c(MR, c, c_stride, rq ? nr : nr * sizeof(int32_t));
  init_acc(MR, NV, S, &acc, packed);
  _Alignas(64) uint8_t ring[Q8_VNNI_MR * Q8_VNNI_RING];
  const size_t slots = (k + 63) / 64;
  for (size_t j = 0; j < Q8_VNNI_AHEAD && j < slots; ++j) {
    flip_slot(MR, ring + 64 * j, a + 64 * j, a_stride, k - 64 * j);
  }
  const int8_t *w = packed + Q8_VNNI_NR * 4;
  size_t j = 0;
  for (; j + 1 < slots; ++j) {
    const size_t ahead = j + Q8_VNNI_AHEAD;
    if (ahead < slots) {
      flip_slot(MR, ring + 64 * (ahead % Q8_VNNI_SLOTS), a + 64 * ahead, a_stride,
                k - 64 * ahead);
    }
    w = dot_groups(MR, NV, S, &acc, ring + 64 * (j % Q8_VNNI_SLOTS), Q8_VNNI_RING, w, 16);
  }
  /* The last slot holds 1..64 bytes: only its (k - 64 j + 3) / 4 groups. */
  dot_groups(MR, NV, S, &acc, ring + 64 * (j % Q8_VNNI_SLOTS), Q8_VNNI_RING, w,
             (k - 64 * j + 3) / 4);
  finish(MR, NV, S, &acc, nr, c, c_stride, rq);
}

/* uint8 activations over K ranges (run_k_ranges): the indirect conv's tiles
 * whose rows all read padding at some taps skip those taps' K groups, and
 * col_adjust puts back what col_term assumed they contribute. No weight
 * prefetch: the conv driver runs a column tile's weights for tile after
 * tile, so they are in L1 or L2 already and the two prefetches per K group
 * only took load slots from the broadcasts. Zen 5, u8 in, s8 out, minimum
 * and median of 6 alternating runs: 56x56x64:64 3x3 284.9/291.2 ->
 * 278.4/283.3 us, 56x56x128:128 3x3 s2 284.3/287.9 -> 273.5/283.1; the other
 * 3x3 layers of ResNet-50 0-2 % faster (7x7x512:512 237.8 -> 233.0),
 * 14x14x256:256 level.
 * Up to Q8_VNNI_RANGES_MR = 14 rows (k_ranges_mr), not MR: these tiles keep
 * no A panel, and 14 x 2 accumulators, the 2 weight vectors and the
 * broadcast still fit the 32 registers (GCC keeps them all there; 2 row
 * offsets are reloaded from the stack per K group). The conv then cuts a
 * 28-pixel line into 2 tiles instead of 4 and a 14-pixel one into 1 instead
 * of 2, halving each tile's setup and store per output. Zen 5, u8 in, s8
 * out, median of 4-5 alternating runs: 28x28x128:128 258.8 -> 252.1 us,
 * 56x56x64:64 268.8 -> 265.0, 14x14x256:256 264.7 -> 253.4, 56x56x128:128
 * s2 262.6 -> 254.5, 28x28x256:256 s2 258.2 -> 249.1. */
Q8_VNNI_INLINE void tile_ranges(const int MR, const int NV, const int S, size_t nr,
                                const q8_k_range *ranges, size_t nranges, const uint8_t *a,
                                size_t a_stride, const int8_t *packed, const int32_t *col_adjust,
                                unsigned char *c, size_t c_stride, const q8_requant_params *rq) {
  vnni_acc acc;
  prefetch_c(MR, c, c_stride, rq ? nr : nr * sizeof(int32_t));
  init_acc(MR, NV, S, &acc, packed);
  if (col_adjust) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      /* Masked: col_adjust has only nr entries. */
      const __m512i adj = _mm512_maskz_loadu_epi32(q8_rq512_lane_mask(nr, v), col_adjust + 16 * v);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc.v[0][m][v] = _mm512_add_epi32(acc.v[0][m][v], adj);
    }
  }
  const int8_t *w = packed + Q8_VNNI_NR * 4;
  for (size_t r = 0; r < nranges; ++r) {
    dot_groups_in(MR, NV, S, 0, 0, &acc, a + ranges[r].a_offset, a_stride,
                  w + ranges[r].begin / 4 * (Q8_VNNI_NR * 4), ranges[r].len / 4);
  }
  finish(MR, NV, S, &acc, nr, c, c_stride, rq);
}

/* K-split sets for few chains: at least 12 independent ones where registers
 * allow. 10 chains (5 rows x 2 vectors) in one set left the tile 7 % below the
 * 8-row rate on Zen 5; two sets: 4x96x4608 5.03 -> 4.66 us, 5x96x4608 6.14 ->
 * 6.05, 3x3 7x7x512:512 (35 of its 49 rows in 5-row tiles) 263 -> 248 us.
 * From 6 rows up two sets spill (6x96x4608 7.0 -> 9.9 us, 7 rows 8.0 -> 14.0). */
#define Q8_VNNI_S(mr, nv) ((mr) * (nv) >= 12 ? 1 : ((mr) * (nv) >= 4 ? 2 : 4))

typedef void (*tile_fn)(size_t nr, size_t k, const uint8_t *a, size_t a_stride,
                        const int8_t *packed, unsigned char *c, size_t c_stride,
                        const q8_requant_params *rq);

/* Per row count R: the full tile (NV vectors) and the one-vector tile for
 * nr <= 16 (a 16-column tail, or N <= 16 such as a 1x1 conv with 16 output
 * channels), which would otherwise spend half its vpdpbusd on the zero
 * padding of the packed block. */
#define Q8_VNNI_TILE_FNS(R)                                                              \
  Q8_VNNI_FN void u8_##R(size_t nr, size_t k, const uint8_t *a, size_t a_stride,         \
                         const int8_t *packed, unsigned char *c, size_t c_stride,        \
                         const q8_requant_params *rq) {                                  \
    tile_u8(R, Q8_VNNI_NV, Q8_VNNI_S(R, Q8_VNNI_NV), nr, k, a, a_stride, packed, c,      \
            c_stride, rq);                                                               \
  }                                                                                      \
  Q8_VNNI_FN void s8_##R(size_t nr, size_t k, const uint8_t *a, size_t a_stride,         \
                         const int8_t *packed, unsigned char *c, size_t c_stride,        \
                         const q8_requant_params *rq) {                                  \
    tile_s8(R, Q8_VNNI_NV, Q8_VNNI_S(R, Q8_VNNI_NV), nr, k, a, a_stride, packed, c,      \
            c_stride, rq);                                                               \
  }                                                                                      \
  Q8_VNNI_FN void u8_##R##_narrow(size_t nr, size_t k, const uint8_t *a, size_t a_stride, \
                                  const int8_t *packed, unsigned char *c, size_t c_stride, \
                                  const q8_requant_params *rq) {                         \
    tile_u8(R, 1, Q8_VNNI_S(R, 1), nr, k, a, a_stride, packed, c, c_stride, rq);         \
  }                                                                                      \
  Q8_VNNI_FN void s8_##R##_narrow(size_t nr, size_t k, const uint8_t *a, size_t a_stride, \
                                  const int8_t *packed, unsigned char *c, size_t c_stride, \
                                  const q8_requant_params *rq) {                         \
    tile_s8(R, 1, Q8_VNNI_S(R, 1), nr, k, a, a_stride, packed, c, c_stride, rq);         \
  }

typedef void (*ranges_fn)(size_t nr, const q8_k_range *ranges, size_t nranges, const uint8_t *a,
                          size_t a_stride, const int8_t *packed, const int32_t *col_adjust,
                          unsigned char *c, size_t c_stride, const q8_requant_params *rq);

#define Q8_VNNI_RANGE_FNS(R)                                                             \
  Q8_VNNI_FN void ranges_##R(size_t nr, const q8_k_range *ranges, size_t nranges,        \
                             const uint8_t *a, size_t a_stride, const int8_t *packed,    \
                             const int32_t *col_adjust, unsigned char *c, size_t c_stride, \
                             const q8_requant_params *rq) {                              \
    tile_ranges(R, Q8_VNNI_NV, Q8_VNNI_S(R, Q8_VNNI_NV), nr, ranges, nranges, a,         \
                a_stride, packed, col_adjust, c, c_stride, rq);                          \
  }                                                                                      \
  Q8_VNNI_FN void ranges_##R##_narrow(size_t nr, const q8_k_range *ranges, size_t nranges, \
                                      const uint8_t *a, size_t a_stride,                 \
                                      const int8_t *packed, const int32_t *col_adjust,   \
                                      unsigned char *c, size_t c_stride,                 \
                                      const q8_requant_params *rq) {                     \
    tile_ranges(R, 1, Q8_VNNI_S(R, 1), nr, ranges, nranges, a, a_stride, packed,         \
                col_adjust, c, c_stride, rq);                                            \
  }

#if Q8_VNNI_MR != 8 || Q8_VNNI_NV != 2
#error "the tile functions below are written out for 8 x 32"
#endif
Q8_VNNI_TILE_FNS(1)
Q8_VNNI_TILE_FNS(2)
Q8_VNNI_TILE_FNS(3)
Q8_VNNI_TILE_FNS(4)
Q8_VNNI_TILE_FNS(5)
Q8_VNNI_TILE_FNS(6)
Q8_VNNI_TILE_FNS(7)
Q8_VNNI_TILE_FNS(8)
Q8_VNNI_RANGE_FNS(1)
Q8_VNNI_RANGE_FNS(2)
Q8_VNNI_RANGE_FNS(3)
Q8_VNNI_RANGE_FNS(4)
Q8_VNNI_RANGE_FNS(5)
Q8_VNNI_RANGE_FNS(6)
Q8_VNNI_RANGE_FNS(7)
Q8_VNNI_RANGE_FNS(8)
Q8_VNNI_RANGE_FNS(9)
Q8_VNNI_RANGE_FNS(10)
Q8_VNNI_RANGE_FNS(11)
Q8_VNNI_RANGE_FNS(12)
Q8_VNNI_RANGE_FNS(13)
Q8_VNNI_RANGE_FNS(14)

/* [mr - 1][0: uint8, 1: int8][0: nr <= 16, 1: full] */
#define Q8_VNNI_ROW(R) {{u8_##R##_narrow, u8_##R}, {s8_##R##_narrow, s8_##R}}
static const tile_fn tiles[Q8_VNNI_MR][2][2] = {
    Q8_VNNI_ROW(1), Q8_VNNI_ROW(2), Q8_VNNI_ROW(3), Q8_VNNI_ROW(4),
    Q8_VNNI_ROW(5), Q8_VNNI_ROW(6), Q8_VNNI_ROW(7), Q8_VNNI_ROW(8),
};

/* [mr - 1][0: nr <= 16, 1: full] */
#define Q8_VNNI_RANGES(R) {ranges_##R##_narrow, ranges_##R}
static const ranges_fn range_tiles[Q8_VNNI_RANGES_MR][2] = {
    Q8_VNNI_RANGES(1),  Q8_VNNI_RANGES(2),  Q8_VNNI_RANGES(3),  Q8_VNNI_RANGES(4),
    Q8_VNNI_RANGES(5),  Q8_VNNI_RANGES(6),  Q8_VNNI_RANGES(7),  Q8_VNNI_RANGES(8),
    Q8_VNNI_RANGES(9),  Q8_VNNI_RANGES(10), Q8_VNNI_RANGES(11), Q8_VNNI_RANGES(12),
    Q8_VNNI_RANGES(13), Q8_VNNI_RANGES(14),
};

static void run_k_ranges(size_t mr, size_t nr, const q8_k_range *ranges, size_t nranges,
                         const void *a, size_t a_stride, q8_dtype a_dtype, const void *packed,
                         const int32_t *col_adjust, void *c, size_t c_stride,
                         const q8_requant_params *rq) {
  (void)a_dtype; /* uint8, the only type read as is */
  range_tiles[mr - 1][nr > 16](nr, ranges, nranges, a, a_stride, packed, col_adjust, c, c_stride,
                               rq);
}

static void run(size_t mr, size_t nr, size_t k, const void *a, size_t a_stride, q8_dtype a_dtype,
                const void *packed, void *c, size_t c_stride, const q8_requant_params *rq) {
  tiles[mr - 1][a_dtype == Q8_INT8][nr > 16](nr, k, a, a_stride, packed, c, c_stride, rq);
}

/* run_rows: m rows of uint8 A as full 8-row tiles with the requantization set
 * up once for the run (constants stay in registers, no call and no mode
 * switch per tile), then the row tail through the tile table. The weight
 * prefetch of the single tiles is left out: the driver hands this a column
 * tile's weights for many row tiles in a row, so after the first they sit in
 * L1. KIND is a q8_requant_mode, or Q8_VNNI_INT32 for int32 output. */
#define Q8_VNNI_INT32 (-1)
/* The full row tiles of run_rows with output layout LAYOUT; returns the rows
 * left over (fewer than MR). */
Q8_VNNI_INLINE size_t rows_full_tiles(const int NV, const int KIND, const int U8,
                                      const int LAYOUT, const int ASM, vnni_rq *r, size_t m,
                                      size_t nr, size_t k, const q8_k_range *ranges, size_t nranges,
                                      const uint8_t **a_io, size_t a_stride,
                                      const int8_t *packed, unsigned char **c_io,
                                      size_t c_stride) {
  const uint8_t *a = *a_io;
  unsigned char *c = *c_io;
  for (; m >= Q8_VNNI_MR; m -= Q8_VNNI_MR) {
    vnni_acc acc;
    if (LAYOUT == Q8_VNNI_ROWS_CONTIGUOUS) {
      /* The tile's 8 rows are 8 * nr bytes in a row: its lines, and its last byte. */
#pragma GCC unroll 4
      for (int i = 0; i < Q8_VNNI_MR * 16 * NV / 64; ++i) __builtin_prefetch(c + 64 * i, 1, 3);
      __builtin_prefetch(c + Q8_VNNI_MR * 16 * NV - 1, 1, 3);
    } else {
      prefetch_c(Q8_VNNI_MR, c, c_stride, KIND == Q8_VNNI_INT32 ? nr * sizeof(int32_t) : nr);
    }
    if (ranges) {
      accumulate_ranges(Q8_VNNI_MR, NV, &acc, ranges, nranges, a, a_stride, packed);
    } else {
      accumulate_u8(Q8_VNNI_MR, NV, 1, ASM ? Q8_VNNI_IN_ROWS_ASM : 1, &acc, k, a, a_stride,
                    packed);
    }
    if (KIND == Q8_VNNI_INT32) {
      store_int32(Q8_VNNI_MR, NV, &acc, nr, c, c_stride);
    } else {
      /* The constants are reloaded here, once per tile: held in registers
       * across the K loop, they pushed accumulators onto the stack in it
       * (GCC 12, 8x32: a store and reload per vpdpbusd pair, 14x14x384:96
       * ran at half of peak). */
      __asm__ volatile("" : "+m"(*r));
      store_requantized(Q8_VNNI_MR, NV, (q8_requant_mode)KIND, U8, LAYOUT, r, &acc, nr, c,
                        c_stride);
    }
    a += Q8_VNNI_MR * a_stride;
    c += Q8_VNNI_MR * c_stride;
  }
  *a_io = a;
  *c_io = c;
  return m;
}

Q8_VNNI_INLINE void rows_u8(const int NV, const int KIND, const int U8, size_t m, size_t nr,
                            size_t k, const q8_k_range *ranges, size_t nranges,
                            const uint8_t *a, size_t a_stride, const int8_t *packed,
                            unsigned char *c, size_t c_stride, const q8_requant_params *rq) {
  vnni_rq r;
  if (KIND != Q8_VNNI_INT32) rq_setup(NV, &r, rq, nr);
  /* Each variant is its own loop nest, so the asm one's accumulators in
   * memory do not change how GCC allocates the other's. */
  const int layout = KIND != Q8_VNNI_INT32 && nr == 16u * NV
                         ? (c_stride == nr ? Q8_VNNI_ROWS_CONTIGUOUS : Q8_VNNI_ROWS_FULL)
                         : Q8_VNNI_ROWS_ANY;
#define Q8_VNNI_FULL_TILES(LAYOUT, ASM)                                                     \
  rows_full_tiles(NV, KIND, U8, LAYOUT, ASM, &r, m, nr, k, ranges, nranges, &a, a_stride, \
                  packed, &c, c_stride)
#define Q8_VNNI_FULL_TILES_ANY_LAYOUT(ASM)                                                  \
  (layout == Q8_VNNI_ROWS_CONTIGUOUS ? Q8_VNNI_FULL_TILES(Q8_VNNI_ROWS_CONTIGUOUS, ASM)      \
   : layout == Q8_VNNI_ROWS_FULL     ? Q8_VNNI_FULL_TILES(Q8_VNNI_ROWS_FULL, ASM)            \
                                     : Q8_VNNI_FULL_TILES(Q8_VNNI_ROWS_ANY, ASM))
  m = ranges == NULL && k / 4 >= Q8_VNNI_ASM_GROUPS ? Q8_VNNI_FULL_TILES_ANY_LAYOUT(1)
                                                     : Q8_VNNI_FULL_TILES_ANY_LAYOUT(0);
#undef Q8_VNNI_FULL_TILES_ANY_LAYOUT
#undef Q8_VNNI_FULL_TILES
  if (m == 0) return;
  if (ranges) {
    range_tiles[m - 1][NV == 2](nr, ranges, nranges, a, a_stride, packed, NULL, c, c_stride, rq);
  } else {
    tiles[m - 1][0][NV == 2](nr, k, a, a_stride, packed, c, c_stride, rq);
  }
}

/* ranges NULL: depth k; else the K ranges of run_k_ranges (k unused). */
typedef void (*rows_fn)(size_t m, size_t nr, size_t k, const q8_k_range *ranges,
                        size_t nranges, const uint8_t *a, size_t a_stride,
                        const int8_t *packed, unsigned char *c, size_t c_stride,
                        const q8_requant_params *rq);

#define Q8_VNNI_ROWS_FN(NAME, NV, KIND, U8)                                              \
  Q8_VNNI_FN void NAME(size_t m, size_t nr, size_t k, const q8_k_range *ranges,          \
                       size_t nranges, const uint8_t *a, size_t a_stride,                \
                       const int8_t *packed, unsigned char *c, size_t c_stride,          \
                       const q8_requant_params *rq) {                                    \
    rows_u8(NV, KIND, U8, m, nr, k, ranges, nranges, a, a_stride, packed, c, c_stride, rq); \
  }
#define Q8_VNNI_ROWS_FNS(NV)                                                             \
  Q8_VNNI_ROWS_FN(rows_i32_##NV, NV, Q8_VNNI_INT32, 0)                                   \
  Q8_VNNI_ROWS_FN(rows_gemmlowp_s8_##NV, NV, Q8_REQUANT_GEMMLOWP, 0)                     \
  Q8_VNNI_ROWS_FN(rows_gemmlowp_u8_##NV, NV, Q8_REQUANT_GEMMLOWP, 1)                     \
  Q8_VNNI_ROWS_FN(rows_single_s8_##NV, NV, Q8_REQUANT_SINGLE, 0)                         \
  Q8_VNNI_ROWS_FN(rows_single_u8_##NV, NV, Q8_REQUANT_SINGLE, 1)                         \
  Q8_VNNI_ROWS_FN(rows_fp32_s8_##NV, NV, Q8_REQUANT_FP32, 0)                             \
  Q8_VNNI_ROWS_FN(rows_fp32_u8_##NV, NV, Q8_REQUANT_FP32, 1)                             \
  Q8_VNNI_ROWS_FN(rows_fp32free_s8_##NV, NV, Q8_VNNI_FP32_FREE, 0)                       \
  Q8_VNNI_ROWS_FN(rows_fp32free_u8_##NV, NV, Q8_VNNI_FP32_FREE, 1)
Q8_VNNI_ROWS_FNS(1)
Q8_VNNI_ROWS_FNS(2)

/* [0: nr <= 16, 1: full][mode: gemmlowp, single, fp32, fp32 clamp-free]
 * [0: int8 out, 1: uint8 out] */
static const rows_fn rows_requantized[2][4][2] = {
    {{rows_gemmlowp_s8_1, rows_gemmlowp_u8_1},
     {rows_single_s8_1, rows_single_u8_1},
     {rows_fp32_s8_1, rows_fp32_u8_1},
     {rows_fp32free_s8_1, rows_fp32free_u8_1}},
    {{rows_gemmlowp_s8_2, rows_gemmlowp_u8_2},
     {rows_single_s8_2, rows_single_u8_2},
     {rows_fp32_s8_2, rows_fp32_u8_2},
     {rows_fp32free_s8_2, rows_fp32free_u8_2}},
};

static rows_fn rows_choose(size_t nr, const q8_requant_params *rq) {
  const int wide = nr > 16;
  if (rq == NULL) return wide ? rows_i32_2 : rows_i32_1;
  return rows_requantized[wide][mode_index(rq)][rq->out_dtype == Q8_UINT8];
}

static void run_rows(size_t m, size_t nr, size_t k, const void *a, size_t a_stride,
                     q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                     const q8_requant_params *rq) {
  if (a_dtype == Q8_INT8) { /* through the flipping tiles (drivers flip A first) */
    for (size_t i = 0; i < m; i += Q8_VNNI_MR) {
      run(m - i < Q8_VNNI_MR ? m - i : Q8_VNNI_MR, nr, k, (const uint8_t *)a + i * a_stride,
          a_stride, a_dtype, packed, (unsigned char *)c + i * c_stride, c_stride, rq);
    }
    return;
  }
  rows_choose(nr, rq)(m, nr, k, NULL, 0, a, a_stride, packed, c, c_stride, rq);
}

static void run_rows_k_ranges(size_t m, size_t nr, const q8_k_range *ranges, size_t nranges,
                              const void *a, size_t a_stride, q8_dtype a_dtype,
                              const void *packed, void *c, size_t c_stride,
                              const q8_requant_params *rq) {
  (void)a_dtype; /* uint8, the only type read as is */
  rows_choose(nr, rq)(m, nr, 0, ranges, nranges, a, a_stride, packed, c, c_stride, rq);
}

/* run_cols: one row tile over n columns, the column tiles in turn, so that
 * the driver's per-tile work (parameter offsets, two indirect calls) is not
 * paid per 32 columns. One row of uint8 A (the batch-1 GEMV) takes cols_1:
 * two column tiles at a time, each accumulated as u8_1 does (S sets), their
 * 64 requantized outputs narrowed by one q8_rq512_pack4 and stored at once (a
 * single row of one tile fills half a pack, and u8_1 computes the other half
 * for nothing). Every other case runs the tile functions per column tile.
 * Zen 5, the blocked driver with and without run_cols in alternating batches
 * of one process, uint8 A, int8 out, median: 1x1024x64 0.592 -> 0.517 us,
 * 1x256x256 0.491 -> 0.461, 1x768x768 0.5-2 % faster, 4x1024x64 3 %; shapes
 * whose weights come from L3 level. */

/* A one-row column tile's sum over its S accumulator sets, vector v. */
Q8_VNNI_INLINE __m512i row_sum(const int S, const vnni_acc *acc, int v) {
  __m512i sum = acc->v[0][0][v];
#pragma GCC unroll 4
  for (int s = 1; s < S; ++s) sum = _mm512_add_epi32(sum, acc->v[s][0][v]);
  return sum;
}

/* One column tile of one row: its two vectors of sums. Not inlined: inlined
 * twice into cols_1, GCC scheduled the K loop differently and 1x768x768 ran
 * 25-50 % slower than through u8_1 per tile. Its K loop goes through
 * dpbusd_tied_mem (S = 4 sets): with the intrinsic GCC copied the 8
 * accumulators to other registers and back in every iteration (28
 * instructions for 8 vpdpbusd, now 16). Zen 5, alternating processes, 10
 * pairs, median time ratio: 1x256x256 1.047, 1x768x768 1.016, 1x3072x768
 * 1.002. */
Q8_VNNI_FN void row_tile_sum(size_t k, const uint8_t *a, const int8_t *packed, __m512i *sum) {
  vnni_acc acc;
  accumulate_u8(1, Q8_VNNI_NV, Q8_VNNI_S(1, Q8_VNNI_NV), 0, &acc, k, a, 0, packed);
  sum[0] = row_sum(Q8_VNNI_S(1, Q8_VNNI_NV), &acc, 0);
  sum[1] = row_sum(Q8_VNNI_S(1, Q8_VNNI_NV), &acc, 1);
}

Q8_VNNI_INLINE void cols_1(const int KIND, const int U8, size_t n, size_t k, const uint8_t *a,
                           const int8_t *packed, unsigned char *c, const q8_requant_params *rq) {
  const size_t block = q8_gemm_block_bytes(Q8_VNNI_NR, 4, k);
  size_t j = 0;
  for (; j + 2 * Q8_VNNI_NR <= n; j += 2 * Q8_VNNI_NR) {
    __m512i sum[4];
#pragma GCC unroll 2
    for (int t = 0; t < 2; ++t) {
      row_tile_sum(k, a, packed, sum + 2 * t);
      packed += block;
    }
    if (KIND == Q8_VNNI_INT32) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) _mm512_storeu_si512(c + 4 * (j + 16 * i), sum[i]);
      continue;
    }
    /* Set up after the K loops (the empty asm hides that rq is the same
     * pointer): per-tensor constants hoisted out of the column loop would
     * hold registers across the K loops. Each tile's rq_setup, its columns
     * as the parameters at its first column. */
    const q8_requant_params *p = rq;
    __asm__("" : "+r"(p));
    vnni_rq r[2];
    q8_requant_params at[2];
    __m512i z[4];
#pragma GCC unroll 2
    for (int t = 0; t < 2; ++t) {
      rq_setup(Q8_VNNI_NV, &r[t], q8_requant_params_at(p, j + (size_t)t * Q8_VNNI_NR, &at[t]),
               Q8_VNNI_NR);
      z[2 * t] = requant_vector(KIND, &r[t].p[0], sum[2 * t], r[t].fhi);
      z[2 * t + 1] = requant_vector(KIND, &r[t].p[1], sum[2 * t + 1], r[t].fhi);
    }
    _mm512_storeu_si512(c + j, pack_ordered(KIND, U8, &r[0], z));
  }
  const size_t esize = KIND == Q8_VNNI_INT32 ? sizeof(int32_t) : 1;
  q8_requant_params rq_tile;
  for (; j < n; j += Q8_VNNI_NR, packed += block) {
    const size_t nr = n - j < Q8_VNNI_NR ? n - j : Q8_VNNI_NR;
    tiles[0][0][nr > 16](nr, k, a, 0, packed, c + j * esize, 0,
                         q8_requant_params_at(rq, j, &rq_tile));
  }
}

typedef void (*cols_fn)(size_t n, size_t k, const uint8_t *a, const int8_t *packed,
                        unsigned char *c, const q8_requant_params *rq);

#define Q8_VNNI_COLS_FN(NAME, KIND, U8)                                                  \
  Q8_VNNI_FN void NAME(size_t n, size_t k, const uint8_t *a, const int8_t *packed,       \
                       unsigned char *c, const q8_requant_params *rq) {                  \
    cols_1(KIND, U8, n, k, a, packed, c, rq);                                            \
  }
Q8_VNNI_COLS_FN(cols_i32, Q8_VNNI_INT32, 0)
Q8_VNNI_COLS_FN(cols_gemmlowp_s8, Q8_REQUANT_GEMMLOWP, 0)
Q8_VNNI_COLS_FN(cols_gemmlowp_u8, Q8_REQUANT_GEMMLOWP, 1)
Q8_VNNI_COLS_FN(cols_single_s8, Q8_REQUANT_SINGLE, 0)
Q8_VNNI_COLS_FN(cols_single_u8, Q8_REQUANT_SINGLE, 1)
Q8_VNNI_COLS_FN(cols_fp32_s8, Q8_REQUANT_FP32, 0)
Q8_VNNI_COLS_FN(cols_fp32_u8, Q8_REQUANT_FP32, 1)
Q8_VNNI_COLS_FN(cols_fp32free_s8, Q8_VNNI_FP32_FREE, 0)
Q8_VNNI_COLS_FN(cols_fp32free_u8, Q8_VNNI_FP32_FREE, 1)

/* [mode: gemmlowp, single, fp32, fp32 clamp-free][0: int8 out, 1: uint8 out] */
static const cols_fn cols_requantized[4][2] = {
    {cols_gemmlowp_s8, cols_gemmlowp_u8},
    {cols_single_s8, cols_single_u8},
    {cols_fp32_s8, cols_fp32_u8},
    {cols_fp32free_s8, cols_fp32free_u8},
};

static void run_cols(size_t mr, size_t n, size_t k, const void *a, size_t a_stride,
                     q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                     const q8_requant_params *rq) {
  if (mr == 1 && a_dtype == Q8_UINT8) {
    const cols_fn fn =
        rq == NULL ? cols_i32 : cols_requantized[mode_index(rq)][rq->out_dtype == Q8_UINT8];
    fn(n, k, a, packed, c, rq);
    return;
  }
  const size_t block = q8_gemm_block_bytes(Q8_VNNI_NR, 4, k), esize = rq ? 1 : sizeof(int32_t);
  q8_requant_params rq_tile;
  for (size_t j = 0; j < n; j += Q8_VNNI_NR) {
    const size_t nr = n - j < Q8_VNNI_NR ? n - j : Q8_VNNI_NR;
    run(mr, nr, k, a, a_stride, a_dtype, (const int8_t *)packed + j / Q8_VNNI_NR * block,
        (unsigned char *)c + j * esize, c_stride, q8_requant_params_at(rq, j, &rq_tile));
  }
}

const q8_gemm_ukernel q8_gemm_x8s8_8x32c4__avx512vnni = {
    .name = "q8_gemm_x8s8_8x32c4__avx512vnni",
    .mr = Q8_VNNI_MR,
    .nr = Q8_VNNI_NR,
    .kr = 4,
    .int8_a_offset = 128,
    .pack = q8_gemm_pack_nrkr,
    .run = run,
    .run_k_ranges = run_k_ranges,
    .run_rows = run_rows,
    .run_rows_k_ranges = run_rows_k_ranges,
    .run_cols = run_cols,
    .k_ranges_mr = Q8_VNNI_RANGES_MR,
};
