// The Winograd transforms of winograd.cpp, F(2x2, 3x3) and F(4x4, 3x3): the 1-D transforms on
// vectors of channels and the kernel's transform and its gradient. Included by winograd.cpp only.
#pragma once

#include <cstddef>

#include "ops/dnnl/vec.h"

namespace cae::ops::dnnl_backend::winograd_math {

using std::size_t;

// F(M x M, 3 x 3): M x M outputs per tile from A x A inputs, P = A^2 products per channel pair.
template <int M>
struct Size {
  static constexpr int A = M + 2, P = A * A;
  // Tiles per block: V and M of a block (2 P planes of block x channels) stay in L2, about
  // 200 KB at 32 channels; a multiple of the products' 6 rows.
  static constexpr int block = M == 2 ? 48 : 24;
};

// The 1-D transforms, on vectors of 8 channels (the 2-D ones apply them to columns, then rows).
// F(2, 3), points 0, 1, -1:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1],
//   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
// F(4, 3), points 0, 1, -1, 2, -2 (Lavin and Gray, 2016):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//          0 4 0 -5 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
// Written out rather than as products by the matrices: a product by 0 is not free in IEEE
// arithmetic, and these forms share their partial sums.

// r = B^T d.
template <int M, int L>
CAE_INLINE void input_1d(const Vec<L>* d, Vec<L>* r) {
  if constexpr (M == 2) {
    r[0] = d[0] - d[2];
    r[1] = d[1] + d[2];
    r[2] = d[2] - d[1];
    r[3] = d[1] - d[3];
  } else {
    const Vec<L> t0 = d[4] - 4.f * d[2], t1 = d[3] - 4.f * d[1];
    const Vec<L> t2 = d[4] - d[2], t3 = 2.f * (d[3] - d[1]);
    r[0] = 4.f * d[0] + (d[4] - 5.f * d[2]);
    r[1] = t0 + t1;
    r[2] = t0 - t1;
    r[3] = t2 + t3;
    r[4] = t2 - t3;
    r[5] = 4.f * d[1] + (d[5] - 5.f * d[3]);
  }
}

// o = A^T m.
template <int M, int L>
CAE_INLINE void output_1d(const Vec<L>* m, Vec<L>* o) {
  if constexpr (M == 2) {
    o[0] = (m[0] + m[1]) + m[2];
    o[1] = (m[1] - m[2]) - m[3];
  } else {
    const Vec<L> s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = (m[0] + s12) + s34;
    o[1] = 2.f * d34 + d12;
    o[2] = 4.f * s34 + s12;
    o[3] = (8.f * d34 + d12) + m[5];
  }
}

// m = A y: the gradient of o = A^T m.
template <int M, int L>
CAE_INLINE void gradient_1d(const Vec<L>* y, Vec<L>* m) {
  if constexpr (M == 2) {
    m[0] = y[0];
    m[1] = y[0] + y[1];
    m[2] = y[0] - y[1];
    m[3] = -y[1];
  } else {
    const Vec<L> e = y[0] + y[2], o = y[1] + y[3];
    const Vec<L> e4 = 4.f * y[2] + y[0], o4 = 8.f * y[3] + (y[1] + y[1]);
    m[0] = y[0];
    m[1] = e + o;
    m[2] = e - o;
    m[3] = e4 + o4;
    m[4] = e4 - o4;
    m[5] = y[3];
  }
}

// u = G g, scalars (the kernels are transformed once per pass).
template <int M>
void kernel_1d(const float* g, float* u) {
  if constexpr (M == 2) {
    u[0] = g[0];
    u[1] = 0.5f * (g[0] + g[1] + g[2]);
    u[2] = 0.5f * (g[0] - g[1] + g[2]);
    u[3] = g[2];
  } else {
    constexpr float sixth = 1.f / 6.f, twelfth = 1.f / 12.f, twentyfourth = 1.f / 24.f;
    u[0] = 0.25f * g[0];
    u[1] = -sixth * (g[0] + g[1] + g[2]);
    u[2] = -sixth * (g[0] - g[1] + g[2]);
    u[3] = twentyfourth * g[0] + twelfth * g[1] + sixth * g[2];
    u[4] = twentyfourth * g[0] - twelfth * g[1] + sixth * g[2];
    u[5] = g[2];
  }
}

// g = G^T u: the gradient of u = G g.
template <int M>
void kernel_gradient_1d(const float* u, float* g) {
  if constexpr (M == 2) {
    g[0] = u[0] + 0.5f * (u[1] + u[2]);
    g[1] = 0.5f * (u[1] - u[2]);
    g[2] = 0.5f * (u[1] + u[2]) + u[3];
  } else {
    constexpr float sixth = 1.f / 6.f, twelfth = 1.f / 12.f, twentyfourth = 1.f / 24.f;
    g[0] = 0.25f * u[0] - sixth * (u[1] + u[2]) + twentyfourth * (u[3] + u[4]);
    g[1] = sixth * (u[2] - u[1]) + twelfth * (u[3] - u[4]);
    g[2] = sixth * (u[3] + u[4] - u[1] - u[2]) + u[5];
  }
}

// U[xi] = G g G^T of one 3x3 kernel g (row-major), the P positions xi = A i + j `stride` apart.
template <int M>
void transform_kernel(const float* g, float* u, size_t stride) {
  constexpr int A = Size<M>::A;
  float cols[A][3];
  for (int q = 0; q < 3; ++q) {
    const float col[3] = {g[q], g[3 + q], g[6 + q]};
    float out[A];
    kernel_1d<M>(col, out);
    for (int i = 0; i < A; ++i) cols[i][q] = out[i];
  }
  for (int i = 0; i < A; ++i) {
    float out[A];
    kernel_1d<M>(cols[i], out);
    for (int j = 0; j < A; ++j) u[(i * A + j) * stride] = out[j];
  }
}

// dw (3x3) = G^T du G of one A x A gradient du (positions `stride` apart).
template <int M>
void transform_kernel_gradient(const float* du, size_t stride, float* dw) {
  constexpr int A = Size<M>::A;
  float rows[3][A];
  for (int j = 0; j < A; ++j) {
    float col[A], out[3];
    for (int i = 0; i < A; ++i) col[i] = du[(i * A + j) * stride];
    kernel_gradient_1d<M>(col, out);
    for (int p = 0; p < 3; ++p) rows[p][j] = out[p];
  }
  for (int p = 0; p < 3; ++p) kernel_gradient_1d<M>(rows[p], dw + p * 3);
}

}  // namespace cae::ops::dnnl_backend::winograd_math
