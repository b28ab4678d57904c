// Highway kernels for quantize, dequantize and requantize, behind the extern "C"
// functions declared at the end of include/q8/kernels.h.
//
// Contract: bit-identical to kernels/ref/quantize.c and kernels/ref/requantize.c
// for every input. Each kernel therefore mirrors the reference step by step:
// the same float operations in the same order (one multiply or divide, no FMA,
// clamp in float before rounding) and, for the fixed-point modes, integer
// identities that are exact over the whole int32 range (proved where used).
//
// Layout: the channel of element i is (i / inner) % channels. Per-tensor
// parameters are broadcast once; per-channel ones are supplied per vector by
// ChannelLanes. Tails (count % lanes) run the same vector code on a padded
// stack copy, so every element takes the same arithmetic path and no load or
// store leaves the caller's arrays.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/hwy/quantize.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "q8/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q8 {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Every kernel works on vectors of int32/float lanes; 8-bit data is promoted
// or demoted to the same lane count.
using D32 = hn::ScalableTag<int32_t>;
using DF = hn::Rebind<float, D32>;
using V32 = hn::Vec<D32>;
using VF = hn::Vec<DF>;

// Largest lane count of this target for 32-bit lanes: sizes stack buffers.
constexpr size_t kMaxLanes = HWY_LANES(int32_t);

// ---------------------------------------------------------------------------
// Per-channel parameter lanes.
//
// For the vector starting at element i, lane k needs the parameters of channel
// ((i + k) / inner) % channels. Three strategies, cheapest first:
//  - table: the pattern repeats every period = inner * channels elements; when
//    that is short, one period plus one vector of wrap-around is expanded once
//    and each vector loads its lanes at offset i % period;
//  - direct (inner == 1, many channels): lanes are consecutive channels, read
//    straight from the caller's arrays except where a vector wraps around;
//  - runs: anything else fills the lanes run by run (inner > 1 with a long
//    period), which is the slow but simple path.
// `b` may be NULL, meaning all zeros (a NULL zero_point array).
template <typename TA, typename TB>
class ChannelLanes {
 public:
  ChannelLanes(const TA* a, const TB* b, size_t channels, size_t inner, size_t count,
               size_t lanes)
      : a_(a), b_(b), channels_(channels), inner_(inner), lanes_(lanes) {
    for (size_t k = 0; k < kMaxLanes; ++k) {
      lane_b_[k] = TB(0);  // stays zero for the direct path when b is NULL
    }
    // inner and channels are bounded first so that the product cannot wrap.
    if (inner <= kTable && channels <= kTable && inner * channels + lanes <= kTable &&
        inner * channels <= count) {
      mode_ = Mode::kTable;
      period_ = inner * channels;
      size_t c = 0, pos = 0;
      for (size_t k = 0; k < period_ + lanes; ++k) {
        table_a_[k] = a[c];
        table_b_[k] = b ? b[c] : TB(0);
        if (++pos == inner) {
          pos = 0;
          if (++c == channels) c = 0;
        }
      }
    } else if (inner == 1) {
      mode_ = Mode::kDirect;
    } else {
      mode_ = Mode::kRuns;
    }
  }

  // Lane parameters for the next `lanes` elements, then advances past them.
  HWY_INLINE void Next(const TA** pa, const TB** pb) {
    if (mode_ == Mode::kTable) {
      *pa = table_a_ + offset_;
      *pb = table_b_ + offset_;
      offset_ += lanes_;
      if (offset_ >= period_) offset_ %= period_;
      return;
    }
    if (mode_ == Mode::kDirect && channel_ + lanes_ <= channels_) {
      *pa = a_ + channel_;
      *pb = b_ ? b_ + channel_ : lane_b_;
      channel_ += lanes_;
      if (channel_ == channels_) channel_ = 0;
      return;
    }
    FillRuns();
    *pa = lane_a_;
    *pb = lane_b_;
  }

 private:
  enum class Mode { kTable, kDirect, kRuns };
  // Entries per parameter in the table: 2 x 4 KiB of stack at most.
  static constexpr size_t kTable = 1024;

  void FillRuns() {
    size_t k = 0;
    while (k < lanes_) {
      const size_t left = lanes_ - k;
      const size_t run = inner_ - pos_ < left ? inner_ - pos_ : left;
      const TA va = a_[channel_];
      const TB vb = b_ ? b_[channel_] : TB(0);
      for (size_t j = 0; j < run; ++j) {
        lane_a_[k + j] = va;
        lane_b_[k + j] = vb;
      }
      k += run;
      pos_ += run;
      if (pos_ == inner_) {
        pos_ = 0;
        if (++channel_ == channels_) channel_ = 0;
      }
    }
  }

  const TA* a_;
  const TB* b_;
  size_t channels_, inner_, lanes_;
  Mode mode_;
  size_t period_ = 0, offset_ = 0;  // table
  size_t channel_ = 0, pos_ = 0;    // direct and runs: channel of the next element
  HWY_ALIGN TA lane_a_[kMaxLanes];
  HWY_ALIGN TB lane_b_[kMaxLanes];
  HWY_ALIGN TA table_a_[kTable];
  HWY_ALIGN TB table_b_[kTable];
};

// Drives `op` over count elements: op.Apply(in, out, pa, pb) computes Lanes(d)
// elements with parameter vectors pa (TA lanes) and pb (TB lanes).
template <class Op>
HWY_INLINE void Run(const Op& op, const typename Op::In* in, size_t count, size_t inner,
                    size_t channels, const typename Op::TA* a, const typename Op::TB* b,
                    typename Op::Out* out) {
  using In = typename Op::In;
  using Out = typename Op::Out;
  using TA = typename Op::TA;
  using TB = typename Op::TB;
  const D32 d;
  const hn::Rebind<TA, D32> da;
  const hn::Rebind<TB, D32> db;
  const size_t lanes = hn::Lanes(d);
  if (count == 0) return;

  // The tail runs through the same Apply on a zero-padded copy (zeros are
  // valid input for every op), then only the real elements are copied out.
  HWY_ALIGN In tail_in[kMaxLanes] = {};
  HWY_ALIGN Out tail_out[kMaxLanes];
  const size_t full = count - count % lanes;
  const size_t rest = count - full;
  if (rest != 0) memcpy(tail_in, in + full, rest * sizeof(In));

  if (channels == 1) {
    const auto pa = hn::Set(da, a[0]);
    const auto pb = hn::Set(db, b ? b[0] : TB(0));
    for (size_t i = 0; i < full; i += lanes) op.Apply(in + i, out + i, pa, pb);
    if (rest != 0) op.Apply(tail_in, tail_out, pa, pb);
  } else {
    ChannelLanes<TA, TB> params(a, b, channels, inner, count, lanes);
    const TA* pa;
    const TB* pb;
    for (size_t i = 0; i < full; i += lanes) {
      params.Next(&pa, &pb);
      op.Apply(in + i, out + i, hn::LoadU(da, pa), hn::LoadU(db, pb));
    }
    if (rest != 0) {
      params.Next(&pa, &pb);
      op.Apply(tail_in, tail_out, hn::LoadU(da, pa), hn::LoadU(db, pb));
    }
  }
  if (rest != 0) memcpy(out + full, tail_out, rest * sizeof(Out));
}

// Narrows clamped int32 lanes (already within Out's range) and stores them.
template <typename Out>
HWY_INLINE void StoreNarrow(V32 v, Out* out) {
  const hn::Rebind<Out, D32> d8;
  hn::StoreU(hn::DemoteTo(d8, v), d8, out);
}

// round_half_to_even(v) as int32 for |v| <= 2^22 in the default rounding mode:
// adding 1.5 * 2^23 leaves no fraction bits, so the addition itself rounds
// (ties to even), and the integer is the difference of the bit patterns (both
// sums lie in [2^23, 2^24), where consecutive integers are consecutive floats).
// Highway's Round is not used: its EMU128 version rounds 0.49999997 up.
HWY_INLINE V32 RoundHalfEvenToInt(VF v) {
  const DF df;
  const D32 d;
  const VF magic = hn::Set(df, 12582912.0f);
  return hn::Sub(hn::BitCast(d, hn::Add(v, magic)), hn::BitCast(d, magic));
}

// roundf(v) (half away from zero) as int32 for |v| < 2^23: v - trunc(v) is
// exact, and its magnitude decides whether to step away from zero. (Adding
// 0.5 before truncating would round 0.49999997 up.)
HWY_INLINE V32 RoundHalfAwayToInt(VF v) {
  const DF df;
  const D32 d;
  const VF t = hn::Trunc(v);
  const VF frac = hn::Abs(hn::Sub(v, t));
  const VF step = hn::CopySignToAbs(hn::Set(df, 1.0f), v);
  const VF r = hn::Add(t, hn::IfThenElseZero(hn::Ge(frac, hn::Set(df, 0.5f)), step));
  return hn::ConvertTo(d, r);  // integral and small: exact
}

// ---------------------------------------------------------------------------
// quantize: clamp(round(x / scale) + zp) exactly as q8_ref_quantize_one.
template <typename OutT, q8_rounding kRounding, q8_scale_op kScaleOp>
struct QuantizeOp {
  using In = float;
  using Out = OutT;
  using TA = float;    // scale
  using TB = int32_t;  // zero point

  HWY_INLINE void Apply(const float* x, Out* out, VF scale, V32 zp) const {
    const D32 d;
    const DF df;
    const VF vx = hn::LoadU(df, x);
    // One float operation, as the reference: x / scale, or x * (1.0f / scale)
    // with the reciprocal itself rounded to float first.
    VF v = kScaleOp == Q8_SCALE_RECIPROCAL ? hn::Mul(vx, hn::Div(hn::Set(df, 1.0f), scale))
                                           : hn::Div(vx, scale);
    // NaN input -> zero point: a zero here rounds to 0. (A NaN v without a NaN
    // x, 0 * inf from a reciprocal that overflowed, also maps to the zero point.)
    v = hn::IfThenZeroElse(hn::IsNaN(v), v);
    const int32_t qmin = hwy::IsSigned<OutT>() ? -128 : 0;
    const int32_t qmax = hwy::IsSigned<OutT>() ? 127 : 255;
    // Bounds min - zp and max - zp are small integers: exact in float.
    const VF lo = hn::ConvertTo(df, hn::Sub(hn::Set(d, qmin), zp));
    const VF hi = hn::ConvertTo(df, hn::Sub(hn::Set(d, qmax), zp));
    v = hn::Min(hn::Max(v, lo), hi);  // also turns +-inf and huge values into bounds
    const V32 r = kRounding == Q8_ROUND_HALF_AWAY ? RoundHalfAwayToInt(v) : RoundHalfEvenToInt(v);
    StoreNarrow(hn::Add(r, zp), out);
  }
};

// dequantize: (float)(q - zp) * scale; q - zp is exact in int32 and in float.
template <typename InT>
struct DequantizeOp {
  using In = InT;
  using Out = float;
  using TA = float;    // scale
  using TB = int32_t;  // zero point

  HWY_INLINE void Apply(const InT* q, float* out, VF scale, V32 zp) const {
    const D32 d;
    const DF df;
    const hn::Rebind<InT, D32> d8;
    const V32 v = hn::PromoteTo(d, hn::LoadU(d8, q));
    hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(v, zp)), scale), df, out);
  }
};

// ---------------------------------------------------------------------------
// Requantization building blocks (int32 lanes, exact for all int32 inputs).

// x * 2^left saturated to int32, left in [0, 30] (the reference saturates the
// int64 product). |x| <= (2^31 - 1) >> left is exactly the no-overflow range.
HWY_INLINE V32 SaturatingShiftLeft(V32 x, V32 left) {
  const D32 d;
  const V32 limit = hn::Shr(hn::Set(d, INT32_MAX), left);  // 2^(31-left) - 1
  const V32 shifted = hn::Shl(x, left);  // wraps where replaced below
  const V32 r = hn::IfThenElse(hn::Gt(x, limit), hn::Set(d, INT32_MAX), shifted);
  // ~limit == -2^(31-left) == INT32_MIN >> left.
  return hn::IfThenElse(hn::Lt(x, hn::Not(limit)), hn::Set(d, INT32_MIN), r);
}

// floor((a * b + add) / 2^31) per lane, add in {0, 2^30}. The product is exact
// in int64 (|a * b| <= 2^62) and the sum cannot overflow. The result fits in
// int32 except for a == b == INT32_MIN (2^31 + 0), whose low half wraps to
// INT32_MIN; no other a, b gives INT32_MIN (the smallest product,
// INT32_MIN * INT32_MAX, gives -2^31 + 1), so the caller maps INT32_MIN to
// INT32_MAX, which is exactly gemmlowp's saturation.
HWY_INLINE V32 MulShiftRight31(V32 a, V32 b, V32 add) {
  const D32 d;
#if HWY_TARGET == HWY_SCALAR
  // One lane: no wider vector to repartition into, so use int64 directly.
  // The sum is < 2^63, and the unsigned shift keeps the wrap defined.
  const int64_t sum = static_cast<int64_t>(hn::GetLane(a)) * hn::GetLane(b) + hn::GetLane(add);
  return hn::Set(d, static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum) >> 31)));
#else
  const hn::RepartitionToWide<D32> d64;
  const hn::RebindToUnsigned<decltype(d64)> du64;
  // MulEven multiplies lanes 0, 2, ..; moving odd lanes down gives the rest.
  const auto even = hn::BitCast(du64, hn::MulEven(a, b));
  const auto odd = hn::BitCast(du64, hn::MulEven(hn::Shuffle2301(a), hn::Shuffle2301(b)));
  // add >= 0: zero-extend its even and odd 32-bit lanes to 64 bits.
  const auto add64 = hn::BitCast(du64, add);
  const auto add_even = hn::And(add64, hn::Set(du64, 0xFFFFFFFFull));
  const auto add_odd = hn::ShiftRight<32>(add64);
  // Unsigned wrap-around addition equals the exact signed sum here.
  const auto sum_even = hn::Add(even, add_even);
  const auto sum_odd = hn::Add(odd, add_odd);
  // Bits 31..62 of each sum are the result (the arithmetic and logical shifts
  // agree on them): in the low half of sum_even >> 31 and in the high half of
  // sum_odd << 1.
  return hn::OddEven(hn::BitCast(d, hn::ShiftLeft<1>(sum_odd)),
                     hn::BitCast(d, hn::ShiftRight<31>(sum_even)));
#endif
}

HWY_INLINE V32 SaturateMin(V32 q) {
  const D32 d;
  return hn::IfThenElse(hn::Eq(q, hn::Set(d, INT32_MIN)), hn::Set(d, INT32_MAX), q);
}

// gemmlowp RoundingDivideByPOT(x, e), e in [0, 31]: ties away from zero. Same
// mask/remainder/threshold as the reference, all within int32: mask and
// remainder are at most 2^31 - 1, and the +1 cannot overflow (e == 0 has a
// zero mask, otherwise x >> e <= 2^30).
HWY_INLINE V32 RoundingDivideByPOT(V32 x, V32 e) {
  const D32 d;
  const hn::RebindToUnsigned<D32> du;
  const auto mask = hn::Sub(hn::Shl(hn::Set(du, 1u), hn::BitCast(du, e)), hn::Set(du, 1u));
  const V32 remainder = hn::BitCast(d, hn::And(hn::BitCast(du, x), mask));
  // VecFromMask is -1 where true: threshold = (mask >> 1) + (x < 0).
  const V32 threshold = hn::Sub(hn::BitCast(d, hn::ShiftRight<1>(mask)),
                                hn::VecFromMask(d, hn::Lt(x, hn::Zero(d))));
  return hn::Sub(hn::Shr(x, e), hn::VecFromMask(d, hn::Gt(remainder, threshold)));
}

// Common tail: clamp to [qmin - zp, qmax - zp], then add zp (cannot wrap).
struct RequantClamp {
  int32_t zp, lo, hi;
  HWY_INLINE V32 operator()(V32 v) const {
    const D32 d;
    return hn::Add(hn::Min(hn::Max(v, hn::Set(d, lo)), hn::Set(d, hi)), hn::Set(d, zp));
  }
};

// kLeft: whether some shift is positive. Without one the saturating left
// shift is the identity and is skipped (the usual case: multipliers < 1).
template <typename OutT, bool kLeft>
struct RequantGemmlowpOp {
  using In = int32_t;
  using Out = OutT;
  using TA = int32_t;  // multiplier
  using TB = int32_t;  // shift
  RequantClamp clamp;

  HWY_INLINE void Apply(const int32_t* acc, Out* out, V32 multiplier, V32 shift) const {
    const D32 d;
    const V32 right = hn::Max(hn::Neg(shift), hn::Zero(d));
    V32 x = hn::LoadU(d, acc);
    if (kLeft) x = SaturatingShiftLeft(x, hn::Max(shift, hn::Zero(d)));
    // SaturatingRoundingDoublingHighMul: the reference's nudge (2^30, or
    // 1 - 2^30 for negative products) followed by truncating division by 2^31
    // equals floor((ab + 2^30) / 2^31) for both signs.
    const V32 high = SaturateMin(MulShiftRight31(x, multiplier, hn::Set(d, 1 << 30)));
    StoreNarrow(clamp(RoundingDivideByPOT(high, right)), out);
  }
};

// single: floor((acc * m + 2^(s-1)) / 2^s), s = 31 - shift in [1, 62].
//  - shift <= 0 (s = 31 + t, t = -shift in [0, 31]): with q = floor(acc*m / 2^31)
//    (exact floors compose), the result is floor((q + 2^(t-1)) / 2^t) for t >= 1,
//    computed without overflow as (q >> t) + bit t-1 of q; for t == 0 it is
//    floor((acc*m + 2^30) / 2^31) directly.
//  - shift > 0: floor((acc * 2^shift * m + 2^30) / 2^31). acc * 2^shift is
//    saturated to int32 first; that changes the value only when |acc * 2^shift|
//    >= 2^31, where (multiplier in [2^30, 2^31) per the contract) the result
//    has magnitude >= 2^30 - 1 either way and clamps to the same bound; a zero
//    multiplier gives 0 either way.
template <typename OutT, bool kLeft>
struct RequantSingleOp {
  using In = int32_t;
  using Out = OutT;
  using TA = int32_t;  // multiplier
  using TB = int32_t;  // shift
  RequantClamp clamp;

  HWY_INLINE void Apply(const int32_t* acc, Out* out, V32 multiplier, V32 shift) const {
    const D32 d;
    const hn::RebindToUnsigned<D32> du;
    const V32 right = hn::Max(hn::Neg(shift), hn::Zero(d));
    V32 x = hn::LoadU(d, acc);
    if (kLeft) x = SaturatingShiftLeft(x, hn::Max(shift, hn::Zero(d)));
    // Rounding term 2^30 only where t == 0 (shift >= 0).
    const V32 add = hn::IfThenElseZero(hn::Gt(shift, hn::Set(d, -1)), hn::Set(d, 1 << 30));
    const V32 q = SaturateMin(MulShiftRight31(x, multiplier, add));
    // Bit t-1 of q is bit t of q << 1; for t == 0 that bit is 0.
    const auto round_bit = hn::And(hn::Shr(hn::ShiftLeft<1>(hn::BitCast(du, q)), hn::BitCast(du, right)),
                                   hn::Set(du, 1u));
    StoreNarrow(clamp(hn::Add(hn::Shr(q, right), hn::BitCast(d, round_bit))), out);
  }
};

// fp32: float(acc) (round to nearest even), one float multiply, clamp in
// float to [qmin - zp, qmax - zp], round half to even, + zp.
template <typename OutT>
struct RequantFp32Op {
  using In = int32_t;
  using Out = OutT;
  using TA = float;    // scale
  using TB = int32_t;  // unused
  RequantClamp clamp;

  HWY_INLINE void Apply(const int32_t* acc, Out* out, VF scale, V32 /*unused*/) const {
    const D32 d;
    const DF df;
    VF v = hn::Mul(hn::ConvertTo(df, hn::LoadU(d, acc)), scale);
    v = hn::Min(hn::Max(v, hn::Set(df, static_cast<float>(clamp.lo))),
                hn::Set(df, static_cast<float>(clamp.hi)));
    StoreNarrow(hn::Add(RoundHalfEvenToInt(v), hn::Set(d, clamp.zp)), out);
  }
};

// ---------------------------------------------------------------------------
// Per-target entry points (exported below for dynamic dispatch).

template <typename OutT, q8_rounding kRounding, q8_scale_op kScaleOp>
HWY_INLINE void QuantizeAs(const float* x, size_t count, size_t inner, const q8_quant_params* p,
                           void* out) {
  Run(QuantizeOp<OutT, kRounding, kScaleOp>(), x, count, inner, p->channels, p->scale,
      p->zero_point, static_cast<OutT*>(out));
}

template <typename OutT>
HWY_INLINE void QuantizeTo(const float* x, size_t count, size_t inner, const q8_quant_params* p,
                           q8_rounding rounding, q8_scale_op scale_op, void* out) {
  if (rounding == Q8_ROUND_HALF_AWAY) {
    if (scale_op == Q8_SCALE_RECIPROCAL) {
      QuantizeAs<OutT, Q8_ROUND_HALF_AWAY, Q8_SCALE_RECIPROCAL>(x, count, inner, p, out);
    } else {
      QuantizeAs<OutT, Q8_ROUND_HALF_AWAY, Q8_SCALE_DIVIDE>(x, count, inner, p, out);
    }
  } else {
    if (scale_op == Q8_SCALE_RECIPROCAL) {
      QuantizeAs<OutT, Q8_ROUND_HALF_EVEN, Q8_SCALE_RECIPROCAL>(x, count, inner, p, out);
    } else {
      QuantizeAs<OutT, Q8_ROUND_HALF_EVEN, Q8_SCALE_DIVIDE>(x, count, inner, p, out);
    }
  }
}

void QuantizeImpl(const float* x, size_t count, size_t inner, const q8_quant_params* p,
                  q8_rounding rounding, q8_scale_op scale_op, void* out) {
  if (p->dtype == Q8_UINT8) {
    QuantizeTo<uint8_t>(x, count, inner, p, rounding, scale_op, out);
  } else {
    QuantizeTo<int8_t>(x, count, inner, p, rounding, scale_op, out);
  }
}

void DequantizeImpl(const void* q, size_t count, size_t inner, const q8_quant_params* p,
                    float* out) {
  if (p->dtype == Q8_UINT8) {
    Run(DequantizeOp<uint8_t>(), static_cast<const uint8_t*>(q), count, inner, p->channels,
        p->scale, p->zero_point, out);
  } else {
    Run(DequantizeOp<int8_t>(), static_cast<const int8_t*>(q), count, inner, p->channels,
        p->scale, p->zero_point, out);
  }
}

template <typename OutT>
HWY_INLINE void RequantizeTo(const int32_t* acc, size_t count, size_t inner,
                             const q8_requant_params* p, OutT* out) {
  const RequantClamp clamp{p->zero_point, p->qmin - p->zero_point, p->qmax - p->zero_point};
  bool left = false;
  if (p->mode == Q8_REQUANT_GEMMLOWP || p->mode == Q8_REQUANT_SINGLE) {
    for (size_t c = 0; c < p->channels; ++c) left |= p->shift[c] > 0;
  }
  switch (p->mode) {
    case Q8_REQUANT_GEMMLOWP:
      if (left) {
        Run(RequantGemmlowpOp<OutT, true>{clamp}, acc, count, inner, p->channels, p->multiplier,
            p->shift, out);
      } else {
        Run(RequantGemmlowpOp<OutT, false>{clamp}, acc, count, inner, p->channels,
            p->multiplier, p->shift, out);
      }
      break;
    case Q8_REQUANT_SINGLE:
      if (left) {
        Run(RequantSingleOp<OutT, true>{clamp}, acc, count, inner, p->channels, p->multiplier,
            p->shift, out);
      } else {
        Run(RequantSingleOp<OutT, false>{clamp}, acc, count, inner, p->channels, p->multiplier,
            p->shift, out);
      }
      break;
    case Q8_REQUANT_FP32:
    default:  // as the reference
      Run(RequantFp32Op<OutT>{clamp}, acc, count, inner, p->channels, p->scale,
          static_cast<const int32_t*>(nullptr), out);
      break;
  }
}

void RequantizeImpl(const int32_t* acc, size_t count, size_t inner, const q8_requant_params* p,
                    void* out) {
  if (p->out_dtype == Q8_UINT8) {
    RequantizeTo(acc, count, inner, p, static_cast<uint8_t*>(out));
  } else {
    RequantizeTo(acc, count, inner, p, static_cast<int8_t*>(out));
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q8
HWY_AFTER_NAMESPACE();

// ---------------------------------------------------------------------------
// Dispatch and the C interface (compiled once).
#if HWY_ONCE
namespace q8 {

HWY_EXPORT(QuantizeImpl);
HWY_EXPORT(DequantizeImpl);
HWY_EXPORT(RequantizeImpl);

namespace {

// The target forced by q8_hwy_force_target, or 0.
int64_t g_forced = 0;

// Targets compiled into this file that the CPU supports, ignoring any force.
int64_t AvailableTargets() {
  if (g_forced == 0) return hwy::SupportedTargets() & HWY_TARGETS;
  hwy::SetSupportedTargetsForTest(0);
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  hwy::SetSupportedTargetsForTest(g_forced);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return targets;
}

// HWY_DYNAMIC_DISPATCH names the table in the namespace of HWY_EXPORT.
void Quantize(const float* x, size_t count, size_t inner, const q8_quant_params* p,
              q8_rounding rounding, q8_scale_op scale_op, void* out) {
  HWY_DYNAMIC_DISPATCH(QuantizeImpl)(x, count, inner, p, rounding, scale_op, out);
}
void Dequantize(const void* q, size_t count, size_t inner, const q8_quant_params* p, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeImpl)(q, count, inner, p, out);
}
void Requantize(const int32_t* acc, size_t count, size_t inner, const q8_requant_params* p,
                void* out) {
  HWY_DYNAMIC_DISPATCH(RequantizeImpl)(acc, count, inner, p, out);
}

}  // namespace
}  // namespace q8

extern "C" {

void q8_hwy_quantize(const float* x, size_t count, size_t inner, const q8_quant_params* p,
                     q8_rounding rounding, q8_scale_op scale_op, void* out) {
  q8::Quantize(x, count, inner, p, rounding, scale_op, out);
}

void q8_hwy_dequantize(const void* q, size_t count, size_t inner, const q8_quant_params* p,
                       float* out) {
  q8::Dequantize(q, count, inner, p, out);
}

void q8_hwy_requantize(const int32_t* acc, size_t count, size_t inner,
                       const q8_requant_params* p, void* out) {
  q8::Requantize(acc, count, inner, p, out);
}

const char* q8_hwy_target(void) {
  // Dispatch takes the best (lowest-bit) supported target compiled in.
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(targets != 0 ? (targets & -targets) : HWY_STATIC_TARGET);
}

size_t q8_hwy_supported_targets(const char** names, size_t max) {
  size_t n = 0;
  for (int64_t t = q8::AvailableTargets(); t != 0; t &= t - 1) {
    if (n < max) names[n] = hwy::TargetName(t & -t);
    ++n;
  }
  return n;
}

int q8_hwy_force_target(const char* name) {
  int64_t target = 0;
  if (name != nullptr) {
    for (int64_t t = q8::AvailableTargets(); t != 0; t &= t - 1) {
      if (strcmp(hwy::TargetName(t & -t), name) == 0) target = t & -t;
    }
    if (target == 0) return -1;
  }
  q8::g_forced = target;
  hwy::SetSupportedTargetsForTest(target);  // 0 ends the mock
  // Re-point the dispatch tables now rather than relying on lazy re-init.
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return 0;
}

}  // extern "C"
#endif  // HWY_ONCE
