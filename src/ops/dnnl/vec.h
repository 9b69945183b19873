// One vector register of L floats, in GCC's (and clang's) vector extensions, for the backend's
// own kernels (thin_conv, winograd). A kernel written once on Vec<L> compiles to AVX-512, AVX2
// or SSE registers inside each tier's wrapper: only the wrappers carry a target attribute, and
// everything they call is always_inline. Products and sums contract to fused multiply-adds
// where the target has them.
#pragma once

#include <cstring>

// The vector types only ever pass between always_inline functions of one tier's wrapper; GCC's
// note that their ABI differs between tiers does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace cae::ops::dnnl_backend {

#define CAE_INLINE [[gnu::always_inline]] inline
#define CAE_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#define CAE_AVX2 __attribute__((target("avx2,fma")))

template <int L>
struct VecOf {
  typedef float type __attribute__((vector_size(4 * L)));
  typedef int mask __attribute__((vector_size(4 * L)));
};
template <int L>
using Vec = typename VecOf<L>::type;

template <int L>
CAE_INLINE Vec<L> load(const float* p) {
  Vec<L> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <int L>
CAE_INLINE void store(float* p, Vec<L> v) {
  std::memcpy(p, &v, sizeof v);
}
template <int L>
CAE_INLINE Vec<L> splat(float s) {
  return Vec<L>{} + s;
}
// v where keep > 0, else 0 (keep = v: max(v, 0) with NaN kept, as std::max(v, 0.f) keeps it).
template <int L>
CAE_INLINE Vec<L> where_positive(Vec<L> v, Vec<L> keep) {
  using M = typename VecOf<L>::mask;
  return (Vec<L>)((M)v & ~(M)(keep <= Vec<L>{}));
}
template <int L>
CAE_INLINE Vec<L> act(Vec<L> v, bool relu) {
  return relu ? where_positive<L>(v, v) : v;
}

// The sum of a vector's lanes, by halves.
CAE_INLINE float lane_sum(Vec<2> v) { return v[0] + v[1]; }
CAE_INLINE float lane_sum(Vec<4> v) {
  return lane_sum(Vec<2>(__builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3)));
}
CAE_INLINE float lane_sum(Vec<8> v) {
  return lane_sum(Vec<4>(__builtin_shufflevector(v, v, 0, 1, 2, 3) +
                         __builtin_shufflevector(v, v, 4, 5, 6, 7)));
}
CAE_INLINE float lane_sum(Vec<16> v) {
  return lane_sum(Vec<8>(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                         __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)));
}

}  // namespace cae::ops::dnnl_backend
