#include "ops/dnnl/thin_conv.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "cae/error.h"
#include "ops/dnnl/vec.h"

namespace cae::ops::dnnl_backend {
namespace {

constexpr int K = 3;         // the one kernel size compiled (the seed's); others go to oneDNN
constexpr int kMaxW = 512;   // widest row the stack buffers hold
// L, a template parameter below: the lanes, i.e. the channels of one nChw<L>c block (16 for the
// AVX-512 code, 8 for AVX2 and the baseline), one vector register of floats.

using std::size_t;

struct Range {
  int begin, end;
};

// Rows [begin, end) of thread tid out of nthr: a fixed split, so sums run in a fixed order.
Range share(int total, int tid, int nthr) {
  const int base = total / nthr, extra = total % nthr;
  const int begin = tid * base + std::min(tid, extra);
  return {begin, begin + base + (tid < extra ? 1 : 0)};
}

// Strides of the wide nChw<L>c side for an h x w image.
template <int L>
struct Wide {
  size_t cb, n;
  Wide(const ThinConvGeom& g, int h, int w) : cb(size_t(h) * w * L), n(cb * (g.c / L)) {}
};

// The kernels' bodies are always_inline so that each wrapper below compiles them for its own
// instruction set (vec.h).

// xpad[kh][j] = x[oy - pad_top + kh][j - pad_left], zero outside the image.
CAE_INLINE void padded_rows(const ThinConvGeom& g, const float* x_n, int oy, float* xpad, int wp) {
  for (int kh = 0; kh < K; ++kh) {
    float* row = xpad + kh * wp;
    std::fill(row, row + wp, 0.f);
    const int iy = oy - g.pad_top + kh;
    if (iy < 0 || iy >= g.h) continue;
    const float* src = x_n + size_t(iy) * g.w;
    for (int j = 0; j < wp; ++j) {
      const int ix = j - g.pad_left;
      if (ix >= 0 && ix < g.w) row[j] = src[ix];
    }
  }
}

// Accumulators are Vec<L> (vec.h), not arrays under `omp simd`: those the compiler kept on the
// stack (a third of every kernel's instructions were spills).

// Columns a kernel computes at once: independent FMA chains, enough to hide an FMA's latency.
constexpr int kCols = 8;

template <int L>
CAE_INLINE void widen_forward_rows(const ThinConvGeom& g, const float* x, const float* w,
                                   const float* b, float* y, Range rows) {
  const int wp = g.ow + K - 1;
  float xpad[K * (kMaxW + K + kCols)];
  const Wide<L> ys(g, g.oh, g.ow);
  for (int r = rows.begin; r < rows.end; ++r) {
    const int n = r / g.oh, oy = r % g.oh;
    padded_rows(g, x + size_t(n) * g.h * g.w, oy, xpad, wp + kCols);
    for (int cb = 0; cb < g.c / L; ++cb) {
      float* yr = y + n * ys.n + cb * ys.cb + size_t(oy) * g.ow * L;
      const float* wc = w + cb * L;
      const Vec<L> bias = b ? load<L>(b + cb * L) : Vec<L>{};
      // Columns past ow read zero padding and are dropped.
      for (int ox0 = 0; ox0 < g.ow; ox0 += kCols) {
        Vec<L> acc[kCols];
        for (int j = 0; j < kCols; ++j) acc[j] = bias;
        for (int kh = 0; kh < K; ++kh)
          for (int kw = 0; kw < K; ++kw) {
            const Vec<L> wv = load<L>(wc + (kh * K + kw) * g.c);
            const float* xs = xpad + kh * (wp + kCols) + ox0 + kw;
            for (int j = 0; j < kCols; ++j) acc[j] += wv * xs[j];
          }
        const int nb = std::min(kCols, g.ow - ox0);
        for (int j = 0; j < nb; ++j) store<L>(yr + (ox0 + j) * L, act<L>(acc[j], g.relu));
      }
    }
  }
}

template <int L>
CAE_INLINE void widen_backward_weights_rows(const ThinConvGeom& g, const float* x, const float* y,
                                            float* dy, float* pw, float* pb, Range rows) {
  const int wp = g.ow + K - 1;
  float xpad[K * (kMaxW + K)];
  const Wide<L> ys(g, g.oh, g.ow);
  for (int r = rows.begin; r < rows.end; ++r) {
    const int n = r / g.oh, oy = r % g.oh;
    padded_rows(g, x + size_t(n) * g.h * g.w, oy, xpad, wp);
    for (int cb = 0; cb < g.c / L; ++cb) {
      const size_t at = n * ys.n + cb * ys.cb + size_t(oy) * g.ow * L;
      float* dyr = dy + at;
      if (g.relu)
        for (int ox = 0; ox < g.ow; ++ox)
          store<L>(dyr + ox * L, where_positive<L>(load<L>(dyr + ox * L), load<L>(y + at + ox * L)));
      Vec<L> acc[K * K] = {}, bacc = {};
      for (int ox = 0; ox < g.ow; ++ox) {
        const Vec<L> d = load<L>(dyr + ox * L);
        bacc += d;
        for (int kh = 0; kh < K; ++kh)
          for (int kw = 0; kw < K; ++kw) acc[kh * K + kw] += d * xpad[kh * wp + ox + kw];
      }
      for (int t = 0; t < K * K; ++t) {
        float* p = pw + t * g.c + cb * L;
        store<L>(p, load<L>(p) + acc[t]);
      }
      store<L>(pb + cb * L, load<L>(pb + cb * L) + bacc);
    }
  }
}

template <int L>
CAE_INLINE void widen_backward_data_rows(const ThinConvGeom& g, const float* dy, const float* w,
                                         float* dx, Range rows) {
  const Wide<L> ys(g, g.oh, g.ow);
  for (int r = rows.begin; r < rows.end; ++r) {
    const int n = r / g.h, iy = r % g.h;
    for (int ix = 0; ix < g.w; ++ix) {
      Vec<L> acc = {};
      for (int kh = 0; kh < K; ++kh) {
        const int oy = iy + g.pad_top - kh;
        if (oy < 0 || oy >= g.oh) continue;
        for (int kw = 0; kw < K; ++kw) {
          const int ox = ix + g.pad_left - kw;
          if (ox < 0 || ox >= g.ow) continue;
          for (int cb = 0; cb < g.c / L; ++cb)
            acc += load<L>(w + (kh * K + kw) * g.c + cb * L) *
                   load<L>(dy + n * ys.n + cb * ys.cb + (size_t(oy) * g.ow + ox) * L);
        }
      }
      dx[(size_t(n) * g.h + iy) * g.w + ix] = lane_sum(acc);
    }
  }
}

// One output cell of c -> 1 with bounds checks: for the border columns.
template <int L>
CAE_INLINE float narrow_cell(const ThinConvGeom& g, const float* x_n, const float* w, size_t x_cb,
                             int oy, int ox) {
  Vec<L> acc = {};
  for (int kh = 0; kh < K; ++kh) {
    const int iy = oy - g.pad_top + kh;
    if (iy < 0 || iy >= g.h) continue;
    for (int kw = 0; kw < K; ++kw) {
      const int ix = ox - g.pad_left + kw;
      if (ix < 0 || ix >= g.w) continue;
      for (int cb = 0; cb < g.c / L; ++cb)
        acc += load<L>(w + (kh * K + kw) * g.c + cb * L) *
               load<L>(x_n + cb * x_cb + (size_t(iy) * g.w + ix) * L);
    }
  }
  return lane_sum(acc);
}

// Columns [ox0, ox0 + N) of output row oy, all taps inside the row: one accumulator each.
template <int L, int N>
CAE_INLINE void narrow_columns(const ThinConvGeom& g, const float* x_n, const float* w,
                               size_t x_cb, int oy, int ox0, float* cell) {
  Vec<L> acc[N] = {};
  for (int kh = 0; kh < K; ++kh) {
    const int iy = oy - g.pad_top + kh;
    if (iy < 0 || iy >= g.h) continue;
    for (int cb = 0; cb < g.c / L; ++cb) {
      const float* xrow = x_n + cb * x_cb + (size_t(iy) * g.w + ox0 - g.pad_left) * L;
      for (int kw = 0; kw < K; ++kw) {
        const Vec<L> wv = load<L>(w + (kh * K + kw) * g.c + cb * L);
        for (int j = 0; j < N; ++j) acc[j] += wv * load<L>(xrow + (j + kw) * L);
      }
    }
  }
  for (int j = 0; j < N; ++j) cell[ox0 + j] = lane_sum(acc[j]);
}

template <int L>
CAE_INLINE void narrow_forward_rows(const ThinConvGeom& g, const float* x, const float* w,
                                    const float* b, float* y, Range rows) {
  const Wide<L> xs(g, g.h, g.w);
  // Interior columns: every kw tap inside the row, so whole groups go without checks.
  const int lo = std::min(g.ow, g.pad_left);
  const int hi = std::max(lo, std::min(g.ow, g.w - K + 1 + g.pad_left));
  for (int r = rows.begin; r < rows.end; ++r) {
    const int n = r / g.oh, oy = r % g.oh;
    const float* x_n = x + n * xs.n;
    float* yr = y + (size_t(n) * g.oh + oy) * g.ow;
    float cell[kMaxW];
    for (int ox = 0; ox < lo; ++ox) cell[ox] = narrow_cell<L>(g, x_n, w, xs.cb, oy, ox);
    for (int ox = hi; ox < g.ow; ++ox) cell[ox] = narrow_cell<L>(g, x_n, w, xs.cb, oy, ox);
    int ox0 = lo;
    for (; ox0 + kCols <= hi; ox0 += kCols) narrow_columns<L, kCols>(g, x_n, w, xs.cb, oy, ox0, cell);
    for (; ox0 + 2 <= hi; ox0 += 2) narrow_columns<L, 2>(g, x_n, w, xs.cb, oy, ox0, cell);
    for (; ox0 < hi; ++ox0) cell[ox0] = narrow_cell<L>(g, x_n, w, xs.cb, oy, ox0);
    const float bias = b ? b[0] : 0.f;
    for (int ox = 0; ox < g.ow; ++ox) {
      const float v = cell[ox] + bias;
      yr[ox] = g.relu ? std::max(v, 0.f) : v;
    }
  }
}

// Over input rows (n, iy): dx of the row and its share of dw, reading x once. dpad[kh][j] holds
// the (masked) dy of output row iy + pad_top - kh at column j - (K - 1), zero outside. NB input
// columns at once (fewer on AVX2, whose 16 registers hold 9 weight sums and 2 NB vectors).
template <int L>
CAE_INLINE void narrow_backward_rows(const ThinConvGeom& g, const float* x, const float* y,
                                     const float* dy, const float* w, float* dx, float* pw,
                                     Range rows) {
  constexpr int NB = L >= 16 ? 4 : 2;
  const Wide<L> xs(g, g.h, g.w);
  const int wp = std::max(g.ow, g.w) + 2 * (K - 1) + NB;
  float dpad[K * (kMaxW + 2 * K + 4)];
  for (int r = rows.begin; r < rows.end; ++r) {
    const int n = r / g.h, iy = r % g.h;
    for (int kh = 0; kh < K; ++kh) {
      float* row = dpad + kh * wp;
      std::fill(row, row + wp, 0.f);
      const int oy = iy + g.pad_top - kh;
      if (oy < 0 || oy >= g.oh) continue;
      const size_t at = (size_t(n) * g.oh + oy) * g.ow;
      for (int ox = 0; ox < g.ow; ++ox)
        row[ox + K - 1] = g.relu && !(y[at + ox] > 0.f) ? 0.f : dy[at + ox];
    }
    for (int cb = 0; cb < g.c / L; ++cb) {
      const float* xr = x + n * xs.n + cb * xs.cb + size_t(iy) * g.w * L;
      float* dxr = dx ? dx + n * xs.n + cb * xs.cb + size_t(iy) * g.w * L : nullptr;
      Vec<L> acc[K * K] = {};
      // A column past w gets x = 0, so it adds nothing to dw, and its dx is not stored.
      for (int ix0 = 0; ix0 < g.w; ix0 += NB) {
        const int nb = std::min(NB, g.w - ix0);
        Vec<L> dxv[NB] = {}, xv[NB];
        for (int j = 0; j < NB; ++j) xv[j] = j < nb ? load<L>(xr + (ix0 + j) * L) : Vec<L>{};
        for (int kh = 0; kh < K; ++kh)
          for (int kw = 0; kw < K; ++kw) {
            // output column ox = ix + pad_left - kw sits at ox + K - 1 in dpad
            const float* d = dpad + kh * wp + ix0 + g.pad_left - kw + K - 1;
            const Vec<L> wv = load<L>(w + (kh * K + kw) * g.c + cb * L);
            for (int j = 0; j < NB; ++j) {
              dxv[j] += wv * d[j];
              acc[kh * K + kw] += xv[j] * d[j];
            }
          }
        if (dxr)
          for (int j = 0; j < nb; ++j) store<L>(dxr + (ix0 + j) * L, dxv[j]);
      }
      for (int t = 0; t < K * K; ++t) {
        float* p = pw + t * g.c + cb * L;
        store<L>(p, load<L>(p) + acc[t]);
      }
    }
  }
}

CAE_INLINE float narrow_bias_rows(const ThinConvGeom& g, const float* y, const float* dy,
                                  Range rows) {
  float s = 0.f;
  for (int r = rows.begin; r < rows.end; ++r) {
    const size_t at = size_t(r) * g.ow;
    for (int ox = 0; ox < g.ow; ++ox)
      s += g.relu && !(y[at + ox] > 0.f) ? 0.f : dy[at + ox];
  }
  return s;
}

// Each kernel once per tier: the AVX-512 code on 16-lane blocks, the AVX2 code and the baseline
// on 8-lane blocks. The bodies above are always_inline, so each wrapper compiles them for its
// own target; which one runs is the plan's (make_thin_conv_plan), never a silent choice.
#define CAE_TIERS(name, params, args)                                 \
  CAE_AVX512 void name##_avx512 params { name<16> args; }           \
  CAE_AVX2 void name##_avx2 params { name<8> args; }                \
  void name##_base params { name<8> args; }

CAE_TIERS(widen_forward_rows,
          (const ThinConvGeom& g, const float* x, const float* w, const float* b, float* y, Range r),
          (g, x, w, b, y, r))
CAE_TIERS(widen_backward_weights_rows,
          (const ThinConvGeom& g, const float* x, const float* y, float* dy, float* pw, float* pb,
           Range r),
          (g, x, y, dy, pw, pb, r))
CAE_TIERS(widen_backward_data_rows,
          (const ThinConvGeom& g, const float* dy, const float* w, float* dx, Range r),
          (g, dy, w, dx, r))
CAE_TIERS(narrow_forward_rows,
          (const ThinConvGeom& g, const float* x, const float* w, const float* b, float* y, Range r),
          (g, x, w, b, y, r))
CAE_TIERS(narrow_backward_rows,
          (const ThinConvGeom& g, const float* x, const float* y, const float* dy, const float* w,
           float* dx, float* pw, Range r),
          (g, x, y, dy, w, dx, pw, r))

// One tier's row kernels.
struct Kernels {
  decltype(&widen_forward_rows_base) widen_forward;
  decltype(&widen_backward_weights_rows_base) widen_backward_weights;
  decltype(&widen_backward_data_rows_base) widen_backward_data;
  decltype(&narrow_forward_rows_base) narrow_forward;
  decltype(&narrow_backward_rows_base) narrow_backward;
};

#define CAE_KERNELS(tier)                                                             \
  Kernels {                                                                           \
    widen_forward_rows_##tier, widen_backward_weights_rows_##tier,                    \
        widen_backward_data_rows_##tier, narrow_forward_rows_##tier,                  \
        narrow_backward_rows_##tier                                                   \
  }

const Kernels& kernels(Isa isa) {
  static const Kernels avx512 = CAE_KERNELS(avx512), avx2 = CAE_KERNELS(avx2),
                       base = CAE_KERNELS(base);
  return isa == Isa::avx512 ? avx512 : isa == Isa::avx2 ? avx2 : base;
}

int threads_for(const ThinConvPlan& p) { return std::max(1, std::min(omp_get_max_threads(), p.threads)); }

// Sums the per-thread partials in thread order into dw (k*k*c) and db (c, or 1 when c_out is 1).
void reduce_partials(const ThinConvPlan& p, int nthr, float* dw, float* db, int bias_size) {
  const size_t wsize = size_t(K) * K * p.g.c, stride = wsize + p.g.c;
  std::copy(p.partials.begin(), p.partials.begin() + wsize, dw);
  for (int t = 1; t < nthr; ++t)
    for (size_t i = 0; i < wsize; ++i) dw[i] += p.partials[t * stride + i];
  if (!db) return;
  for (int i = 0; i < bias_size; ++i) {
    float s = 0.f;
    for (int t = 0; t < nthr; ++t) s += p.partials[t * stride + wsize + i];
    db[i] = s;
  }
}

}  // namespace

int thin_conv_lanes(Isa isa) { return isa == Isa::avx512 ? 16 : 8; }

std::optional<Isa> thin_conv_tier(int lanes) {
  const Isa best = cpu_isa();
  if (lanes == 16 && best == Isa::avx512) return Isa::avx512;
  if (lanes == 8) return std::min(best, Isa::avx2);
  return std::nullopt;
}

bool thin_conv_supported(const ThinConvGeom& g) {
  return thin_conv_tier(g.lanes) && g.k == K && g.c > 0 && g.c % g.lanes == 0 && g.n > 0 && g.h > 0 && g.w > 0 && g.w <= kMaxW &&
         g.ow <= kMaxW && g.pad_top >= 0 && g.pad_top < K && g.pad_left >= 0 && g.pad_left < K &&
         g.oh >= 1 && g.ow >= 1 && g.oh <= g.h + K - 1 && g.ow <= g.w + K - 1;
}

ThinConvPlan make_thin_conv_plan(const ThinConvGeom& g, std::optional<Isa> isa) {
  if (!thin_conv_supported(g)) throw Error("thin conv: geometry outside the direct kernels");
  const Isa tier = isa ? *isa : *thin_conv_tier(g.lanes);
  if (tier > cpu_isa() || thin_conv_lanes(tier) != g.lanes)
    throw Error(std::string("thin conv: no ") + isa_name(tier) + " kernel for " +
                std::to_string(g.lanes) + "-lane blocks on this CPU (" + isa_description() + ")");
  ThinConvPlan p;
  p.g = g;
  p.isa = tier;
  p.threads = std::max(1, omp_get_max_threads());
  p.partials.assign(size_t(p.threads) * (size_t(K) * K * g.c + g.c), 0.f);
  return p;
}

void widen_forward(const ThinConvPlan& p, const float* x, const float* w, const float* b,
                   float* y) {
  const auto rows = kernels(p.isa).widen_forward;
#pragma omp parallel num_threads(threads_for(p))
  rows(p.g, x, w, b, y, share(p.g.n * p.g.oh, omp_get_thread_num(), omp_get_num_threads()));
}

void widen_backward_weights(ThinConvPlan& p, const float* x, const float* y, float* dy, float* dw,
                            float* db) {
  const auto rows = kernels(p.isa).widen_backward_weights;
  const size_t wsize = size_t(K) * K * p.g.c, stride = wsize + p.g.c;
  const int nthr = threads_for(p);
  int used = 1;
#pragma omp parallel num_threads(nthr)
  {
    const int tid = omp_get_thread_num();
    if (tid == 0) used = omp_get_num_threads();
    float* pw = p.partials.data() + tid * stride;
    std::fill(pw, pw + stride, 0.f);
    rows(p.g, x, y, dy, pw, pw + wsize, share(p.g.n * p.g.oh, tid, omp_get_num_threads()));
  }
  reduce_partials(p, used, dw, db, p.g.c);
}

void widen_backward_data(const ThinConvPlan& p, const float* dy, const float* w, float* dx) {
  const auto rows = kernels(p.isa).widen_backward_data;
#pragma omp parallel num_threads(threads_for(p))
  rows(p.g, dy, w, dx, share(p.g.n * p.g.h, omp_get_thread_num(), omp_get_num_threads()));
}

void narrow_forward(const ThinConvPlan& p, const float* x, const float* w, const float* b,
                    float* y) {
  const auto rows = kernels(p.isa).narrow_forward;
#pragma omp parallel num_threads(threads_for(p))
  rows(p.g, x, w, b, y, share(p.g.n * p.g.oh, omp_get_thread_num(), omp_get_num_threads()));
}

void narrow_backward(ThinConvPlan& p, const float* x, const float* y, const float* dy,
                     const float* w, float* dx, float* dw, float* db) {
  const auto rows = kernels(p.isa).narrow_backward;
  const size_t wsize = size_t(K) * K * p.g.c, stride = wsize + p.g.c;
  const int nthr = threads_for(p);
  int used = 1;
#pragma omp parallel num_threads(nthr)
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    if (tid == 0) used = nt;
    float* pw = p.partials.data() + tid * stride;
    std::fill(pw, pw + stride, 0.f);
    rows(p.g, x, y, dy, w, dx, pw, share(p.g.n * p.g.h, tid, nt));
    pw[wsize] = narrow_bias_rows(p.g, y, dy, share(p.g.n * p.g.oh, tid, nt));
  }
  reduce_partials(p, used, dw, db, 1);
}

std::string thin_conv_impl(const ThinConvPlan& p) {
  return std::string("cae:thin_conv:") + isa_name(p.isa);
}

}  // namespace cae::ops::dnnl_backend
