#include "ops/dnnl/resize_kernel.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cae/error.h"

namespace cae::ops::dnnl_backend {
namespace {

std::vector<int> floor_map(int in, int out) {
  std::vector<int> map(out);
  for (int o = 0; o < out; ++o)
    map[o] = int(std::min<std::int64_t>(std::int64_t(o) * in / out, in - 1));
  return map;
}

// CI > 0 fixes the inner block at compile time (16 and 8 are oneDNN's blocks) so the copy
// unrolls into whole vectors; CI == 0 reads it from the view.
template <int CI>
void forward_impl(const ResizePlan& p, const float* src, float* dst) {
  const BlockedView& s = p.src;
  const BlockedView& d = p.dst;
  const int ci = CI > 0 ? CI : d.ci;
#pragma omp parallel for collapse(3) schedule(static)
  for (int n = 0; n < d.n; ++n)
    for (int cb = 0; cb < d.cb; ++cb)
      for (int y = 0; y < d.h; ++y) {
        const float* src_row = src + n * s.stride_n + cb * s.stride_cb + p.src_row[y] * s.stride_h;
        float* dst_row = dst + n * d.stride_n + cb * d.stride_cb + y * d.stride_h;
        for (int x = 0; x < d.w; ++x) {
          const float* from = src_row + p.src_col[x] * s.stride_w;
          float* to = dst_row + x * d.stride_w;
#pragma omp simd
          for (int i = 0; i < ci; ++i) to[i] = from[i];
        }
      }
}

// Parallel over (n, cb) only: each source cell then belongs to one thread and receives its
// contributions in a fixed order.
template <int CI>
void backward_impl(const ResizePlan& p, const float* diff_dst, float* diff_src) {
  const BlockedView& s = p.src;
  const BlockedView& d = p.dst;
  const int ci = CI > 0 ? CI : d.ci;
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < d.n; ++n)
    for (int cb = 0; cb < d.cb; ++cb) {
      float* src_plane = diff_src + n * s.stride_n + cb * s.stride_cb;
      const float* dst_plane = diff_dst + n * d.stride_n + cb * d.stride_cb;
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x) {
          float* to = src_plane + y * s.stride_h + x * s.stride_w;
#pragma omp simd
          for (int i = 0; i < ci; ++i) to[i] = 0.f;
        }
      for (int y = 0; y < d.h; ++y) {
        float* src_row = src_plane + p.src_row[y] * s.stride_h;
        const float* dst_row = dst_plane + y * d.stride_h;
        for (int x = 0; x < d.w; ++x) {
          float* to = src_row + p.src_col[x] * s.stride_w;
          const float* from = dst_row + x * d.stride_w;
#pragma omp simd
          for (int i = 0; i < ci; ++i) to[i] += from[i];
        }
      }
    }
}

}  // namespace

ResizePlan make_resize_plan(const BlockedView& src, const BlockedView& dst) {
  if (src.n != dst.n || src.cb != dst.cb || src.ci != dst.ci)
    throw Error("resize: source and destination layouts differ (n, cb, ci = " +
                std::to_string(src.n) + ", " + std::to_string(src.cb) + ", " +
                std::to_string(src.ci) + " vs " + std::to_string(dst.n) + ", " +
                std::to_string(dst.cb) + ", " + std::to_string(dst.ci) + ")");
  if (src.h <= 0 || src.w <= 0 || dst.h <= 0 || dst.w <= 0)
    throw Error("resize: empty spatial size");
  return {src, dst, floor_map(src.h, dst.h), floor_map(src.w, dst.w)};
}

void resize_forward(const ResizePlan& plan, const float* src, float* dst) {
  switch (plan.dst.ci) {
    case 16:
      return forward_impl<16>(plan, src, dst);
    case 8:
      return forward_impl<8>(plan, src, dst);
    case 1:
      return forward_impl<1>(plan, src, dst);
    default:
      return forward_impl<0>(plan, src, dst);
  }
}

void resize_backward(const ResizePlan& plan, const float* diff_dst, float* diff_src) {
  switch (plan.dst.ci) {
    case 16:
      return backward_impl<16>(plan, diff_dst, diff_src);
    case 8:
      return backward_impl<8>(plan, diff_dst, diff_src);
    case 1:
      return backward_impl<1>(plan, diff_dst, diff_src);
    default:
      return backward_impl<0>(plan, diff_dst, diff_src);
  }
}

}  // namespace cae::ops::dnnl_backend
