// Highway GEMM micro-kernel q8_gemm_x8s8_8x16c2__hwy: the portable fallback
// for any CPU without a hand-written path (see "GEMM micro-kernels" in
// include/q8/kernels.h for the contract and the packed layout).
//
// Tile: MR = 8 rows, NR = 16 channels, KR = 2, common layout (q8_gemm_pack_nrkr),
// int8_a_offset = 0 (A is read as is). NR is fixed whatever the vector width:
// each target covers the 16 channels with 16 / L vectors of L int32 lanes
// (L capped at 16: 1 vector on AVX-512, 2 on AVX2, 4 on SSE4/NEON, run-time
// on SVE/RVV), see Block below for the register blocking.
//
// Exactness: activations (int8 or uint8) and weights are widened to int16 and
// multiplied with ReorderWidenMulAccumulate (x86: pmaddwd), which forms the
// exact int32 sum of each pair of int16 products. |a * w| <= 255 * 128, so a
// pair sum never leaves int16 x int16 -> int32 range, and the sum over the
// whole depth is at most 255 * 128 * Q8_GEMM_MAX_K < 2^31 in magnitude: no
// partial sum overflows. col_term is added with a wrapping vector add, which
// gives the contract's result modulo 2^32. No saturating int16 arithmetic.
//
// A is first widened to int16 in a stack buffer, one chunk of depth at a time
// (kChunk pairs per row), reading exactly k bytes per row; each pair of int16
// is then broadcast as one 32-bit lane. Rows beyond mr are never read or
// computed (the row count is a template parameter).
//
// Epilogue: int32 rows are copied out; requantized output goes through
// q8_hwy_requantize (kernels/hwy/quantize.cc, the same dispatch target), one
// call per tile, so its bit-exact math is shared rather than copied.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/hwy/gemm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "q8/kernels.h"

#ifndef Q8_HWY_GEMM_TILE
#define Q8_HWY_GEMM_TILE
namespace q8 {
namespace gemm {
constexpr size_t kMR = 8;
constexpr size_t kNR = 16;
constexpr size_t kKR = 2;
// Pairs of A per row widened at a time: 8 rows x 256 x 4 bytes = 8 KiB of stack.
constexpr size_t kChunk = 256;
}  // namespace gemm
}  // namespace q8
#endif

HWY_BEFORE_NAMESPACE();
namespace q8 {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using gemm::kChunk;
using gemm::kKR;
using gemm::kMR;
using gemm::kNR;

// Sum over the packed depth for one tile, in the reference's order of
// wrapping: exact partial sums, then + col_term modulo 2^32.
// acc: kMR x kNR int32 (row stride kNR); rows [0, mr) are written.
template <typename TA>
void ScalarTile(size_t mr, size_t k, const uint8_t* a, size_t a_stride, const int8_t* packed,
                int32_t* acc) {
  const int8_t* w = packed + kNR * sizeof(int32_t);
  for (size_t r = 0; r < mr; ++r) {
    const TA* row = reinterpret_cast<const TA*>(a + r * a_stride);
    int32_t sum[kNR] = {};
    for (size_t p = 0; p < k; ++p) {
      const int32_t x = row[p];
      const int8_t* wp = w + p / kKR * kNR * kKR + p % kKR;  // channel j at wp[j * kKR]
      for (size_t j = 0; j < kNR; ++j) sum[j] += x * wp[j * kKR];
    }
    for (size_t j = 0; j < kNR; ++j) {
      int32_t col_term;
      memcpy(&col_term, packed + j * sizeof(int32_t), sizeof(int32_t));
      acc[r * kNR + j] = static_cast<int32_t>(static_cast<uint32_t>(sum[j]) +
                                              static_cast<uint32_t>(col_term));
    }
  }
}

#if HWY_TARGET != HWY_SCALAR

// At most kNR int32 lanes, so that the lane count divides kNR (lane counts are
// powers of two on every Highway target).
using D32 = hn::CappedTag<int32_t, kNR>;
using D16 = hn::Repartition<int16_t, D32>;  // 2 L lanes: one pair per int32 lane
using D8 = hn::Rebind<int8_t, D16>;         // 2 L bytes of packed weights
using V32 = hn::Vec<D32>;

// Widens `bytes` activations (int8 or uint8) to int16 at dst, then a zero if
// bytes is odd. Reads exactly `bytes` bytes of src; writes up to the next
// multiple of 2 L int16 (dst has room: kChunk pairs, a multiple of L).
template <typename TA>
HWY_INLINE void WidenRow(const uint8_t* src, size_t bytes, int16_t* dst) {
  const D16 d16;
  const hn::Rebind<TA, D16> da;
  const size_t step = hn::Lanes(d16);
  const TA* s = reinterpret_cast<const TA*>(src);
  size_t i = 0;
  for (; i + step <= bytes; i += step) {
    hn::StoreU(hn::PromoteTo(d16, hn::LoadU(da, s + i)), d16, dst + i);
  }
  if (i < bytes) {  // also the odd last byte, paired with a zero
    HWY_ALIGN TA tail[2 * kNR] = {};  // 2 L <= 2 kNR
    memcpy(tail, s + i, bytes - i);
    hn::StoreU(hn::PromoteTo(d16, hn::LoadU(da, tail)), d16, dst + i);
  }
}

// The int16 pair at p in every 32-bit lane (one broadcast load).
HWY_INLINE hn::Vec<D16> Pair(D16 d16, const int16_t* p) {
  int32_t bits;
  memcpy(&bits, p, sizeof(bits));
  return hn::BitCast(d16, hn::Set(D32(), bits));
}

// Register blocking: 8 accumulator slots (each a pair of vectors; x86 leaves
// the second unused). Slot i holds row i / kV, channel vector i % kV, where
// kV = kNR / L channel vectors are kept per row: kV = 1 on AVX-512 (8 rows),
// 2 on AVX2 (4 rows per pass), 4 on 128-bit targets (2 rows per pass). One
// broadcast of A then feeds kV multiplies. Scalable targets (SVE, RVV) have no
// compile-time L: they use kV = 1 and walk the channel vectors at run time.
#define Q8_SLOTS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
constexpr size_t kSlots = 8;

#if HWY_HAVE_SCALABLE
constexpr size_t kVecs = 1;
#else
constexpr size_t kVecs = kNR / hn::MaxLanes(D32());
static_assert(kVecs >= 1 && kVecs <= 4 && kNR % hn::MaxLanes(D32()) == 0, "lane count");
#endif

// ReorderWidenMulAccumulate leaves the pair sums spread over two accumulators
// in a target-specific order until RearrangeToOddPlusEven. On the x86 SIMD
// targets (pmaddwd) each lane already holds its pair sum and the second
// accumulator is unused, so there the accumulators start from and end in acc
// directly; besides saving work this keeps GCC from carrying an accumulator
// through the stack (AVX2 ran at half speed). Elsewhere they start at zero.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
constexpr bool kInPlace = true;
#else
constexpr bool kInPlace = false;
#endif

// acc[r][c..] += sum_g a[r][g] . w[g][c..] over pairs [0, pairs) of the
// current chunk, for kRows rows x kV channel vectors (kRows * kV <= kSlots).
// abuf: widened rows (stride kChunk pairs); w: packed pairs of channel c.
template <size_t kRows, size_t kV>
HWY_INLINE void Block(size_t pairs, const int16_t* abuf, const int8_t* w, int32_t* acc) {
  static_assert(kRows * kV <= kSlots, "too many accumulators");
  const D32 d32;
  const D16 d16;
  const D8 d8;
  const size_t lanes = hn::Lanes(d32);
#define Q8_DECL(I)                                                                    \
  V32 s##I = kInPlace && kRows * kV > (I) ? hn::LoadU(d32, acc + (I) / kV * kNR + (I) % kV * lanes) \
                                          : hn::Zero(d32);                          \
  V32 t##I = hn::Zero(d32);
  Q8_SLOTS(Q8_DECL)
#undef Q8_DECL
  for (size_t g = 0; g < pairs; ++g) {
    const int8_t* wg = w + g * kNR * kKR;
    const auto w0 = hn::PromoteTo(d16, hn::LoadU(d8, wg));
    const auto w1 = kV > 1 ? hn::PromoteTo(d16, hn::LoadU(d8, wg + 1 * lanes * kKR)) : w0;
    const auto w2 = kV > 2 ? hn::PromoteTo(d16, hn::LoadU(d8, wg + 2 * lanes * kKR)) : w0;
    const auto w3 = kV > 3 ? hn::PromoteTo(d16, hn::LoadU(d8, wg + 3 * lanes * kKR)) : w0;
#define Q8_STEP(I)                                                                  \
  if (kRows * kV > (I)) {                                                           \
    constexpr size_t kR = (I) / kV, kC = (I) % kV;                                  \
    const auto wv = kC == 0 ? w0 : kC == 1 ? w1 : kC == 2 ? w2 : w3;                \
    s##I = hn::ReorderWidenMulAccumulate(d32, Pair(d16, abuf + (kR * kChunk + g) * kKR), wv, \
                                         s##I, t##I);                               \
  }
    Q8_SLOTS(Q8_STEP)
#undef Q8_STEP
  }
#define Q8_FINISH(I)                                                                \
  if (kRows * kV > (I)) {                                                           \
    int32_t* p = acc + (I) / kV * kNR + (I) % kV * lanes;                           \
    hn::StoreU(kInPlace ? s##I                                                      \
                        : hn::Add(hn::LoadU(d32, p), hn::RearrangeToOddPlusEven(s##I, t##I)), \
               d32, p);                                                             \
  }
  Q8_SLOTS(Q8_FINISH)
#undef Q8_FINISH
#define Q8_UNUSED(I) (void)s##I; (void)t##I;
  Q8_SLOTS(Q8_UNUSED)
#undef Q8_UNUSED
}

// All kRows rows of the tile, kSlots / kVecs rows per pass.
template <size_t kRows, size_t kR0 = 0>
HWY_INLINE void Passes(size_t pairs, const int16_t* abuf, const int8_t* w, int32_t* acc) {
  constexpr size_t kPass = kSlots / kVecs;
  if constexpr (kR0 < kRows) {
    constexpr size_t kN = kRows - kR0 < kPass ? kRows - kR0 : kPass;
    const D32 d32;
    // kVecs == 1 on scalable targets: one call per channel vector.
    for (size_t c = 0; c < kNR; c += kVecs * hn::Lanes(d32)) {
      Block<kN, kVecs>(pairs, abuf + kR0 * kChunk * kKR, w + c * kKR, acc + kR0 * kNR + c);
    }
    Passes<kRows, kR0 + kPass>(pairs, abuf, w, acc);
  }
}

template <size_t kRows, typename TA>
HWY_INLINE void VectorTile(size_t k, const uint8_t* a, size_t a_stride, const int8_t* packed,
                           int32_t* acc) {
  const int8_t* w = packed + kNR * sizeof(int32_t);
  // Accumulators start at col_term: all additions wrap, the order is free.
  for (size_t r = 0; r < kRows; ++r) memcpy(acc + r * kNR, packed, kNR * sizeof(int32_t));
  HWY_ALIGN int16_t abuf[kMR * kChunk * kKR];
  const size_t pairs_total = (k + kKR - 1) / kKR;
  for (size_t g0 = 0; g0 < pairs_total; g0 += kChunk) {
    const size_t pairs = pairs_total - g0 < kChunk ? pairs_total - g0 : kChunk;
    const size_t p0 = g0 * kKR;
    const size_t bytes = k - p0 < pairs * kKR ? k - p0 : pairs * kKR;
    for (size_t r = 0; r < kRows; ++r) {
      WidenRow<TA>(a + r * a_stride + p0, bytes, abuf + r * kChunk * kKR);
    }
    Passes<kRows>(pairs, abuf, w + g0 * kNR * kKR, acc);
  }
}

template <typename TA>
HWY_INLINE void VectorTileRows(size_t mr, size_t k, const uint8_t* a, size_t a_stride,
                               const int8_t* packed, int32_t* acc) {
  switch (mr) {
    case 1: VectorTile<1, TA>(k, a, a_stride, packed, acc); break;
    case 2: VectorTile<2, TA>(k, a, a_stride, packed, acc); break;
    case 3: VectorTile<3, TA>(k, a, a_stride, packed, acc); break;
    case 4: VectorTile<4, TA>(k, a, a_stride, packed, acc); break;
    case 5: VectorTile<5, TA>(k, a, a_stride, packed, acc); break;
    case 6: VectorTile<6, TA>(k, a, a_stride, packed, acc); break;
    case 7: VectorTile<7, TA>(k, a, a_stride, packed, acc); break;
    default: VectorTile<8, TA>(k, a, a_stride, packed, acc); break;
  }
}
#undef Q8_SLOTS

#endif  // HWY_TARGET != HWY_SCALAR

// acc (kMR x kNR, row stride kNR) = col_term + A' W for rows [0, mr).
void GemmTile(size_t mr, size_t k, const void* a, size_t a_stride, q8_dtype a_dtype,
              const void* packed, int32_t* acc) {
  const uint8_t* a8 = static_cast<const uint8_t*>(a);
  const int8_t* w = static_cast<const int8_t*>(packed);
#if HWY_TARGET != HWY_SCALAR
  if (kNR % hn::Lanes(D32()) == 0) {
    if (a_dtype == Q8_UINT8) {
      VectorTileRows<uint8_t>(mr, k, a8, a_stride, w, acc);
    } else {
      VectorTileRows<int8_t>(mr, k, a8, a_stride, w, acc);
    }
    return;
  }
#endif
  // One-lane targets (and, defensively, any lane count that does not divide kNR).
  if (a_dtype == Q8_UINT8) {
    ScalarTile<uint8_t>(mr, k, a8, a_stride, w, acc);
  } else {
    ScalarTile<int8_t>(mr, k, a8, a_stride, w, acc);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q8
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace q8 {

HWY_EXPORT(GemmTile);

namespace {

void GemmRun(size_t mr, size_t nr, size_t k, const void* a, size_t a_stride, q8_dtype a_dtype,
             const void* packed, void* c, size_t c_stride, const q8_requant_params* rq) {
  using gemm::kMR;
  using gemm::kNR;
  int32_t acc[kMR * kNR];
  HWY_DYNAMIC_DISPATCH(GemmTile)(mr, k, a, a_stride, a_dtype, packed, acc);
  unsigned char* out = static_cast<unsigned char*>(c);
  if (rq == nullptr) {
    for (size_t r = 0; r < mr; ++r) memcpy(out + r * c_stride, acc + r * kNR, nr * sizeof(int32_t));
    return;
  }
  // Requantize the mr x nr values as one contiguous array whose element i has
  // channel i % nr: rows packed to stride nr (in place, front to back), and a
  // per-channel rq narrowed to the nr channels of this tile.
  if (nr != kNR) {
    for (size_t r = 1; r < mr; ++r) memmove(acc + r * nr, acc + r * kNR, nr * sizeof(int32_t));
  }
  q8_requant_params tile = *rq;
  if (tile.channels != 1) tile.channels = nr;
  unsigned char q[kMR * kNR];
  q8_hwy_requantize(acc, mr * nr, 1, &tile, q);
  for (size_t r = 0; r < mr; ++r) memcpy(out + r * c_stride, q + r * nr, nr);
}

}  // namespace
}  // namespace q8

extern "C" {
extern const q8_gemm_ukernel q8_gemm_x8s8_8x16c2__hwy;
const q8_gemm_ukernel q8_gemm_x8s8_8x16c2__hwy = {
    "q8_gemm_x8s8_8x16c2__hwy",
    q8::gemm::kMR,
    q8::gemm::kNR,
    q8::gemm::kKR,
    0,
    q8_gemm_pack_nrkr,
    q8::GemmRun,
    0,
    nullptr, /* no A panel: it reads A as is */
    nullptr,
    nullptr,
    nullptr, /* no run_k_ranges: the indirect conv multiplies every tap */
    nullptr, /* no run_rows */
    nullptr, /* no run_rows_k_ranges */
    nullptr, /* no run_cols */
    0,       /* k_ranges_mr: no run_k_ranges */
};
}  // extern "C"
#endif  // HWY_ONCE
