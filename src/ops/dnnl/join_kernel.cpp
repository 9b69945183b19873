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

// One (image, channel block) of z per iteration: a copy of h * w cells of ci floats.
void concat_forward(const ConcatPlan& p, const float* x, const float* y, float* z) {
  const int blocks = p.z.n * p.z.cb;
#pragma omp parallel for if (std::size_t(blocks) * p.z.h * p.z.w * p.z.ci >= kThreaded)
  for (int nb = 0; nb < blocks; ++nb) {
    const int n = nb / p.z.cb, cb = nb % p.z.cb;
    const bool from_x = cb < p.x.cb;
    const BlockedView& v = from_x ? p.x : p.y;
    const float* src = from_x ? x : y;
    const int sb = from_x ? cb : cb - p.x.cb;
    for (int h = 0; h < p.z.h; ++h)
      for (int w = 0; w < p.z.w; ++w)
        std::copy_n(cell(v, src, n, sb, h, w), p.z.ci, cell(p.z, z, n, cb, h, w));
  }
}

void concat_backward(const ConcatPlan& p, const float* dz, float* dx, float* dy) {
  const int blocks = p.z.n * p.z.cb;
#pragma omp parallel for if (std::size_t(blocks) * p.z.h * p.z.w * p.z.ci >= kThreaded)
  for (int nb = 0; nb < blocks; ++nb) {
    const int n = nb / p.z.cb, cb = nb % p.z.cb;
    const bool to_x = cb < p.x.cb;
    const BlockedView& v = to_x ? p.x : p.y;
    float* dst = to_x ? dx : dy;
    const int db = to_x ? cb : cb - p.x.cb;
    for (int h = 0; h < p.z.h; ++h)
      for (int w = 0; w < p.z.w; ++w)
        std::copy_n(cell(p.z, dz, n, cb, h, w), p.z.ci, cell(v, dst, n, db, h, w));
  }
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
