#include "ops/dnnl/join_kernel.h"

#include <algorithm>

namespace cae::ops::dnnl_backend {
namespace {

// The ci floats of one cell (n, cb, h, w) of a view.
const float* cell(const BlockedView& v, const float* p, int n, int cb, int h, int w) {
  return p + n * v.stride_n + cb * v.stride_cb + h * v.stride_h + w * v.stride_w;
}
float* cell(const BlockedView& v, float* p, int n, int cb, int h, int w) {
  return p + n * v.stride_n + cb * v.stride_cb + h * v.stride_h + w * v.stride_w;
}

// Element-wise loops shorter than this stay on one thread: waking the team costs more.
constexpr std::size_t kThreaded = std::size_t(1) << 15;

}  // namespace

bool concat_fits(const BlockedView& x, const BlockedView& y, const BlockedView& z) {
  return x.n == z.n && y.n == z.n && x.h == z.h && y.h == z.h && x.w == z.w && y.w == z.w &&
         x.ci == z.ci && y.ci == z.ci && x.cb + y.cb == z.cb;
}

// Concat's block copies, either way: forward gathers x's and y's blocks into z, backward
// scatters dz's blocks back to dx and dy. One loop, so the two directions cannot disagree on
// which block goes where. One (image, channel block) of z per iteration: h * w cells of ci floats.
template <bool kScatter, class Z, class Part>
void copy_blocks(const ConcatPlan& p, Z* z, Part* x, Part* y) {
  const int blocks = p.z.n * p.z.cb;
#pragma omp parallel for if (std::size_t(blocks) * p.z.h * p.z.w * p.z.ci >= kThreaded)
  for (int nb = 0; nb < blocks; ++nb) {
    const int n = nb / p.z.cb, cb = nb % p.z.cb;
    const bool in_x = cb < p.x.cb;
    const BlockedView& v = in_x ? p.x : p.y;
    Part* part = in_x ? x : y;
    const int pb = in_x ? cb : cb - p.x.cb;
    for (int h = 0; h < p.z.h; ++h)
      for (int w = 0; w < p.z.w; ++w) {
        Z* zc = cell(p.z, z, n, cb, h, w);
        Part* pc = cell(v, part, n, pb, h, w);
        if constexpr (kScatter)
          std::copy_n(zc, p.z.ci, pc);
        else
          std::copy_n(pc, p.z.ci, zc);
      }
  }
}

void concat_forward(const ConcatPlan& p, const float* x, const float* y, float* z) {
  copy_blocks<false>(p, z, x, y);
}

void concat_backward(const ConcatPlan& p, const float* dz, float* dx, float* dy) {
  copy_blocks<true>(p, dz, dx, dy);
}

void add_forward(std::size_t n, float sign, const float* x, const float* y, float* z) {
#pragma omp parallel for simd if (n >= kThreaded)
  for (std::size_t i = 0; i < n; ++i) z[i] = y[i] + sign * x[i];
}

void add_backward(std::size_t n, float sign, const float* dz, float* dx, float* dy) {
#pragma omp parallel for simd if (n >= kThreaded)
  for (std::size_t i = 0; i < n; ++i) {
    dx[i] = sign * dz[i];
    dy[i] = dz[i];
  }
}

void accumulate(std::size_t n, const float* x, float* y) {
#pragma omp parallel for simd if (n >= kThreaded)
  for (std::size_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace cae::ops::dnnl_backend
