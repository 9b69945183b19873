#include "ops/dnnl/pool_kernel.h"

#include <omp.h>

#include <algorithm>
#include <string>

#include "cae/error.h"
#include "ops/dnnl/vec.h"

namespace cae::ops::dnnl_backend {
namespace {

template <int L>
using Lanes = typename VecOf<L>::mask;  // L int32 lanes: compare results and window positions
template <int L>
struct BytesOf {
  typedef std::uint8_t type __attribute__((vector_size(L)));  // one byte a lane
};

template <int L>
CAE_INLINE Lanes<L> splat_int(int s) {
  return Lanes<L>{} + s;
}
// Lane i's byte within its 32-bit word: shifts of 0, 8, 16, 24, repeated.
template <int L>
CAE_INLINE Lanes<L> byte_shifts() {
  Lanes<L> s{};
  for (int i = 0; i < L; ++i) s[i] = 8 * (i % 4);
  return s;
}

// Bytes to lanes and back. AVX-512 converts in one instruction each way (vpmovzxbd, vpmovdb).
// GCC 12 scalarises those conversions for the narrower vectors, so there each 32-bit word of
// four bytes is spread over four lanes by variable shifts, and gathered back by shifts and ORs.
template <int L>
CAE_INLINE Lanes<L> load_positions(const std::uint8_t* p) {
  if constexpr (L == 16) {
    typename BytesOf<L>::type b;
    std::memcpy(&b, p, sizeof b);
    return __builtin_convertvector(b, Lanes<L>);
  } else {
    typedef long long Quads __attribute__((vector_size(16)));
    long long bytes = 0;
    std::memcpy(&bytes, p, L);
    const Lanes<4> words = (Lanes<4>)Quads{bytes, 0};
    Lanes<L> spread;
    if constexpr (L == 8)
      spread = __builtin_shufflevector(words, words, 0, 0, 0, 0, 1, 1, 1, 1);
    else
      spread = __builtin_shufflevector(words, words, 0, 0, 0, 0);
    return (spread >> byte_shifts<L>()) & 0xff;
  }
}
// The low byte of each lane.
template <int L>
CAE_INLINE void store_positions(std::uint8_t* p, Lanes<L> v) {
  if constexpr (L == 16) {
    const auto b = __builtin_convertvector(v, typename BytesOf<L>::type);
    std::memcpy(p, &b, sizeof b);
  } else {
    Lanes<L> s = v << byte_shifts<L>();
    if constexpr (L == 8) {
      s |= __builtin_shufflevector(s, s, 1, 0, 3, 2, 5, 4, 7, 6);
      s |= __builtin_shufflevector(s, s, 2, 3, 0, 1, 6, 7, 4, 5);
      const std::int32_t words[2] = {s[0], s[4]};
      std::memcpy(p, words, 8);
    } else {
      s |= __builtin_shufflevector(s, s, 1, 0, 3, 2);
      s |= __builtin_shufflevector(s, s, 2, 3, 0, 1);
      const std::int32_t word = s[0];
      std::memcpy(p, &word, 4);
    }
  }
}

// Each window position k (and kMasked) as a vector of L lanes, built once per call: a splat
// inside the window loops compiled lane by lane.
template <int L>
struct PositionTable {
  Lanes<L> at[kMasked + 1];
  CAE_INLINE explicit PositionTable(int count) {
    for (int k = 0; k < count; ++k) at[k] = splat_int<L>(k);
    at[kMasked] = splat_int<L>(kMasked);
  }
};

// The in-range part [lo, hi) of a window starting at `start` on an axis of `size` cells.
struct Span {
  int lo, hi;
};
CAE_INLINE Span window_span(int start, int kernel, int size) {
  return {std::max(0, -start), std::min(kernel, size - start)};
}

// Output row r of the flattened (n, cb, y) range: its image, its channel block, and the input
// rows its windows take.
struct PoolRow {
  int n, cb, y;
  int y0;   // the input row of the windows' first row (negative in a pad)
  Span ys;  // the window rows inside the input
};
CAE_INLINE PoolRow pool_row(const PoolPlan& p, long r) {
  const BlockedView& d = p.dst;
  const int y = int(r % d.h), y0 = y * p.stride - p.pad_top;
  return {int(r / d.h / d.cb), int(r / d.h % d.cb), y, y0, window_span(y0, p.kernel, p.src.h)};
}

// Where input cell (h, w) lies in its image plane, in floats.
CAE_INLINE std::ptrdiff_t cell_offset(const BlockedView& v, int h, int w) {
  return std::ptrdiff_t(h) * v.stride_h + std::ptrdiff_t(w) * v.stride_w;
}

// Each output x of a row, in order, to any(x); but where `whole` (a 2x2 kernel, one vector of
// channels per cell, both window rows inside the input), the run of windows that lie wholly
// inside the input (x0 = x * stride - pad_left >= 0, x0 + 2 <= width) to run(xa, count) at once.
template <class Any, class WholeRun>
CAE_INLINE void each_output_of_row(const PoolPlan& p, bool whole, Any any, WholeRun run) {
  const int out_w = p.dst.w;
  int x = 0;
  if (whole) {
    const int xa = std::min(out_w, (p.pad_left + p.stride - 1) / p.stride);
    const int last = p.src.w - 2 + p.pad_left;  // x * stride <= last
    const int xb = last < 0 ? xa : std::max(xa, std::min(out_w, last / p.stride + 1));
    for (; x < xa; ++x) any(x);
    if (xb > xa) run(xa, xb - xa);
    x = std::max(x, xb);
  }
  for (; x < out_w; ++x) any(x);
}

// The seed's pools: a run of whole 2x2 windows on one vector of channels per cell (ci == L),
// rows c0 and c1 of the input, windows `step` floats apart. The same comparisons in the same
// order as the general loop below.
template <int L>
CAE_INLINE void forward_2x2_run(const float* c0, const float* c1, std::ptrdiff_t sw,
                                std::ptrdiff_t step, float* out, std::ptrdiff_t out_step,
                                std::uint8_t* pos, int count, bool relu,
                                const PositionTable<L>& position) {
  const Lanes<L> at1 = position.at[1], at2 = position.at[2], at3 = position.at[3];
  const Lanes<L> masked = position.at[kMasked];
  for (int x = 0; x < count; ++x, c0 += step, c1 += step, out += out_step, pos += L) {
    Vec<L> best = load<L>(c0);
    Lanes<L> at = position.at[0];
    auto take = [&](const float* c, Lanes<L> here) {
      const Vec<L> v = load<L>(c);
      const Lanes<L> wins = v > best;
      best = wins ? v : best;
      at = wins ? here : at;
    };
    take(c0 + sw, at1);
    take(c1, at2);
    take(c1 + sw, at3);
    if (relu) at = best > Vec<L>{} ? at : masked;
    store<L>(out, best);
    store_positions<L>(pos, at);
  }
}

// Backward of such a run, for windows that tile the input: each of the four cells written once.
template <int L>
CAE_INLINE void backward_2x2_run(float* c0, float* c1, std::ptrdiff_t sw, std::ptrdiff_t step,
                                 const float* dy, std::ptrdiff_t dy_step, const std::uint8_t* pos,
                                 int count, const PositionTable<L>& position) {
  const Lanes<L> at0 = position.at[0], at1 = position.at[1], at2 = position.at[2],
                 at3 = position.at[3];
  for (int x = 0; x < count; ++x, c0 += step, c1 += step, dy += dy_step, pos += L) {
    const Vec<L> g = load<L>(dy);
    const Lanes<L> at = load_positions<L>(pos);
    store<L>(c0, at == at0 ? g : Vec<L>{});
    store<L>(c0 + sw, at == at1 ? g : Vec<L>{});
    store<L>(c1, at == at2 ? g : Vec<L>{});
    store<L>(c1 + sw, at == at3 ? g : Vec<L>{});
  }
}

// Output rows [r0, r1) of the flattened (n, cb, y) range.
template <int L>
CAE_INLINE void forward_rows(const PoolPlan& p, const float* src, float* dst,
                             std::uint8_t* positions, long r0, long r1) {
  const BlockedView& s = p.src;
  const BlockedView& d = p.dst;
  const int k = p.kernel, ci = d.ci;
  const PositionTable<L> position(ci >= L ? k * k : 0);
  for (long r = r0; r < r1; ++r) {
    const PoolRow row = pool_row(p, r);
    const int y0 = row.y0;
    const Span ys = row.ys;
    const float* plane = src + row.n * s.stride_n + row.cb * s.stride_cb;
    float* dst_row = dst + row.n * d.stride_n + row.cb * d.stride_cb + row.y * d.stride_h;
    std::uint8_t* pos_row = positions + std::size_t(r) * d.w * ci;
    // Any window: its in-range cells, strictly greater wins (a later tie does not; the first
    // cell compares with itself).
    auto forward_any = [&](int x) {
      const int x0 = x * p.stride - p.pad_left;
      const Span xs = window_span(x0, k, s.w);
      auto cell = [&](int ky, int kx) { return plane + cell_offset(s, y0 + ky, x0 + kx); };
      float* out = dst_row + x * d.stride_w;
      std::uint8_t* pos = pos_row + std::size_t(x) * ci;
      int i = 0;
      for (; i + L <= ci; i += L) {
        Vec<L> best = load<L>(cell(ys.lo, xs.lo) + i);
        Lanes<L> at = position.at[ys.lo * k + xs.lo];
        for (int ky = ys.lo; ky < ys.hi; ++ky)
          for (int kx = xs.lo; kx < xs.hi; ++kx) {
            const Vec<L> v = load<L>(cell(ky, kx) + i);
            const Lanes<L> wins = v > best;
            best = wins ? v : best;
            at = wins ? position.at[ky * k + kx] : at;
          }
        if (p.relu_mask) at = best > Vec<L>{} ? at : position.at[kMasked];
        store<L>(out + i, best);
        store_positions<L>(pos + i, at);
      }
      for (; i < ci; ++i) {
        float best = cell(ys.lo, xs.lo)[i];
        int at = ys.lo * k + xs.lo;
        for (int ky = ys.lo; ky < ys.hi; ++ky)
          for (int kx = xs.lo; kx < xs.hi; ++kx)
            if (const float v = cell(ky, kx)[i]; v > best) best = v, at = ky * k + kx;
        if (p.relu_mask && !(best > 0.f)) at = kMasked;
        out[i] = best;
        pos[i] = std::uint8_t(at);
      }
    };
    each_output_of_row(
        p, k == 2 && ci == L && ys.hi - ys.lo == 2, forward_any, [&](int xa, int count) {
          const float* c0 = plane + cell_offset(s, y0, xa * p.stride - p.pad_left);
          forward_2x2_run<L>(c0, c0 + s.stride_h, s.stride_w, p.stride * s.stride_w,
                             dst_row + xa * d.stride_w, d.stride_w, pos_row + std::size_t(xa) * ci,
                             count, p.relu_mask, position);
        });
  }
}

// Output rows [r0, r1) of the flattened (n, cb, y) range, for windows that tile the input: each
// input cell of the rows these windows cover is written once.
template <int L>
CAE_INLINE void backward_rows(const PoolPlan& p, const float* diff_dst,
                              const std::uint8_t* positions, float* diff_src, long r0, long r1) {
  const BlockedView& s = p.src;
  const BlockedView& d = p.dst;
  const int k = p.kernel, ci = d.ci;
  const PositionTable<L> position(ci >= L ? k * k : 0);
  for (long r = r0; r < r1; ++r) {
    const PoolRow row = pool_row(p, r);
    const int y0 = row.y0;
    const Span ys = row.ys;
    float* plane = diff_src + row.n * s.stride_n + row.cb * s.stride_cb;
    const float* dy_row = diff_dst + row.n * d.stride_n + row.cb * d.stride_cb + row.y * d.stride_h;
    const std::uint8_t* pos_row = positions + std::size_t(r) * d.w * ci;
    auto backward_any = [&](int x) {
      const int x0 = x * p.stride - p.pad_left;
      const Span xs = window_span(x0, k, s.w);
      auto cell = [&](int ky, int kx) { return plane + cell_offset(s, y0 + ky, x0 + kx); };
      const float* g_at = dy_row + x * d.stride_w;
      const std::uint8_t* pos = pos_row + std::size_t(x) * ci;
      int i = 0;
      for (; i + L <= ci; i += L) {
        const Vec<L> g = load<L>(g_at + i);
        const Lanes<L> at = load_positions<L>(pos + i);
        for (int ky = ys.lo; ky < ys.hi; ++ky)
          for (int kx = xs.lo; kx < xs.hi; ++kx)
            store<L>(cell(ky, kx) + i, at == position.at[ky * k + kx] ? g : Vec<L>{});
      }
      for (; i < ci; ++i)
        for (int ky = ys.lo; ky < ys.hi; ++ky)
          for (int kx = xs.lo; kx < xs.hi; ++kx)
            cell(ky, kx)[i] = pos[i] == ky * k + kx ? g_at[i] : 0.f;
    };
    each_output_of_row(p, k == 2 && ci == L && ys.hi - ys.lo == 2, backward_any,
                       [&](int xa, int count) {
                         float* c0 = plane + cell_offset(s, y0, xa * p.stride - p.pad_left);
                         backward_2x2_run<L>(c0, c0 + s.stride_h, s.stride_w, p.stride * s.stride_w,
                                             dy_row + xa * d.stride_w, d.stride_w,
                                             pos_row + std::size_t(xa) * ci, count, position);
                       });
  }
}

// Image planes [q0, q1) of the flattened (n, cb) range, for windows that overlap or leave cells
// out: the plane is cleared, then each window adds its share, in output order.
template <int L>
CAE_INLINE void backward_planes(const PoolPlan& p, const float* diff_dst,
                                const std::uint8_t* positions, float* diff_src, long q0, long q1) {
  const BlockedView& s = p.src;
  const BlockedView& d = p.dst;
  const int k = p.kernel, ci = d.ci;
  const PositionTable<L> position(ci >= L ? k * k : 0);
  for (long q = q0; q < q1; ++q) {
    const int cb = int(q % d.cb), n = int(q / d.cb);
    float* plane = diff_src + n * s.stride_n + cb * s.stride_cb;
    for (int h = 0; h < s.h; ++h)
      for (int w = 0; w < s.w; ++w) std::fill_n(plane + h * s.stride_h + w * s.stride_w, ci, 0.f);
    for (int y = 0; y < d.h; ++y) {
      const PoolRow row = pool_row(p, q * d.h + y);
      const int y0 = row.y0;
      const Span ys = row.ys;
      const float* dy_row = diff_dst + n * d.stride_n + cb * d.stride_cb + y * d.stride_h;
      const std::uint8_t* pos_row = positions + (std::size_t(q) * d.h + y) * d.w * ci;
      for (int x = 0; x < d.w; ++x) {
        const int x0 = x * p.stride - p.pad_left;
        const Span xs = window_span(x0, k, s.w);
        auto cell = [&](int ky, int kx) { return plane + cell_offset(s, y0 + ky, x0 + kx); };
        const float* g_at = dy_row + x * d.stride_w;
        const std::uint8_t* pos = pos_row + std::size_t(x) * ci;
        int i = 0;
        for (; i + L <= ci; i += L) {
          const Vec<L> g = load<L>(g_at + i);
          const Lanes<L> at = load_positions<L>(pos + i);
          for (int ky = ys.lo; ky < ys.hi; ++ky)
            for (int kx = xs.lo; kx < xs.hi; ++kx) {
              float* c = cell(ky, kx) + i;
              store<L>(c, load<L>(c) + (at == position.at[ky * k + kx] ? g : Vec<L>{}));
            }
        }
        for (; i < ci; ++i)
          if (pos[i] != kMasked) cell(pos[i] / k, pos[i] % k)[i] += g_at[i];
      }
    }
  }
}

// Each kernel once per vector width, compiled for the tier that has it: 16 lanes AVX-512, 8
// lanes AVX2, 4 lanes the baseline (SSE2). The bodies are always_inline, so each wrapper compiles
// them for its own target; which one runs is the plan's, never a silent choice.
#define CAE_POOL_TIERS(name, params, args)            \
  CAE_AVX512 void name##_16 params { name<16> args; } \
  CAE_AVX2 void name##_8 params { name<8> args; }     \
  void name##_4 params { name<4> args; }

CAE_POOL_TIERS(forward_rows,
               (const PoolPlan& p, const float* src, float* dst, std::uint8_t* pos, long a, long b),
               (p, src, dst, pos, a, b))
CAE_POOL_TIERS(backward_rows,
               (const PoolPlan& p, const float* dy, const std::uint8_t* pos, float* dx, long a,
                long b),
               (p, dy, pos, dx, a, b))
CAE_POOL_TIERS(backward_planes,
               (const PoolPlan& p, const float* dy, const std::uint8_t* pos, float* dx, long a,
                long b),
               (p, dy, pos, dx, a, b))

// Splits [0, count) into one contiguous block per thread, in thread order.
template <class Body>
void parallel_blocks(long count, Body body) {
#pragma omp parallel
  {
    const long t = omp_get_thread_num(), nt = omp_get_num_threads();
    const long lo = count * t / nt, hi = count * (t + 1) / nt;
    if (lo < hi) body(lo, hi);
  }
}

}  // namespace

bool pool_kernel_fits(int kernel, int stride, int pad_top, int pad_left, int in_h, int in_w,
                      int out_h, int out_w) {
  return kernel >= 1 && kernel * kernel <= kMasked && stride >= 1 && pad_top >= 0 &&
         pad_left >= 0 && pad_top < kernel && pad_left < kernel && out_h >= 1 && out_w >= 1 &&
         (out_h - 1) * stride - pad_top < in_h && (out_w - 1) * stride - pad_left < in_w;
}

PoolPlan make_pool_plan(const BlockedView& src, const BlockedView& dst, int kernel, int stride,
                        int pad_top, int pad_left, bool relu_mask) {
  if (src.n != dst.n || src.cb != dst.cb || src.ci != dst.ci)
    throw Error("max-pool kernel: source and destination layouts differ (n, cb, ci = " +
                std::to_string(src.n) + ", " + std::to_string(src.cb) + ", " +
                std::to_string(src.ci) + " vs " + std::to_string(dst.n) + ", " +
                std::to_string(dst.cb) + ", " + std::to_string(dst.ci) + ")");
  if (!pool_kernel_fits(kernel, stride, pad_top, pad_left, src.h, src.w, dst.h, dst.w))
    throw Error("max-pool kernel: a window of " + std::to_string(kernel) + ", stride " +
                std::to_string(stride) + " and pads " + std::to_string(pad_top) + "," +
                std::to_string(pad_left) + " does not fit " + std::to_string(src.h) + "x" +
                std::to_string(src.w) + " -> " + std::to_string(dst.h) + "x" +
                std::to_string(dst.w));
  PoolPlan p{src, dst, kernel, stride, pad_top, pad_left, relu_mask};
  p.tiles =
      stride == kernel && dst.h * stride - pad_top >= src.h && dst.w * stride - pad_left >= src.w;
  p.isa = cpu_isa();
  p.lanes = p.isa == Isa::avx512 && dst.ci % 16 == 0 ? 16
            : p.isa >= Isa::avx2 && dst.ci % 8 == 0  ? 8
                                                     : 4;
  return p;
}

std::size_t pool_positions_bytes(const PoolPlan& plan) {
  const BlockedView& d = plan.dst;
  return std::size_t(d.n) * d.cb * d.h * d.w * d.ci;
}

void maxpool_forward(const PoolPlan& plan, const float* src, float* dst, std::uint8_t* positions) {
  const auto rows = plan.lanes == 16  ? forward_rows_16
                    : plan.lanes == 8 ? forward_rows_8
                                      : forward_rows_4;
  parallel_blocks(long(plan.dst.n) * plan.dst.cb * plan.dst.h,
                  [&](long a, long b) { rows(plan, src, dst, positions, a, b); });
}

void maxpool_backward(const PoolPlan& plan, const float* diff_dst, const std::uint8_t* positions,
                      float* diff_src) {
  if (plan.tiles) {
    const auto rows = plan.lanes == 16  ? backward_rows_16
                      : plan.lanes == 8 ? backward_rows_8
                                        : backward_rows_4;
    parallel_blocks(long(plan.dst.n) * plan.dst.cb * plan.dst.h,
                    [&](long a, long b) { rows(plan, diff_dst, positions, diff_src, a, b); });
  } else {
    const auto planes = plan.lanes == 16  ? backward_planes_16
                        : plan.lanes == 8 ? backward_planes_8
                                          : backward_planes_4;
    parallel_blocks(long(plan.dst.n) * plan.dst.cb,
                    [&](long a, long b) { planes(plan, diff_dst, positions, diff_src, a, b); });
  }
}

}  // namespace cae::ops::dnnl_backend
