#include "ops/dnnl/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "cae/error.h"
#include "core/isa.h"
#include "ops/dnnl/vec.h"
#include "ops/dnnl/winograd_transforms.h"

namespace cae::ops::dnnl_backend {
namespace {

using std::size_t;
using namespace winograd_math;

constexpr int kMaxChannels = 512;

// Tiles: M x M outputs each, th x tw per image, numbered (n, ty, tx) row-major.
template <int M>
struct Tiles {
  int h, w, th, tw;
  long per_image, total;
  Tiles(int n, int h_, int w_)
      : h(h_), w(w_), th((h_ + M - 1) / M), tw((w_ + M - 1) / M), per_image(long(th) * tw),
        total(per_image * n) {}
};

// The tiles of a block, walked in order without divisions: image n, the first input row y0
// and column x0 of the tile's A x A cells (its outputs are rows y0 + 1 .. y0 + M, likewise).
template <int M>
struct TileWalk {
  static constexpr int A = Size<M>::A;
  const Tiles<M>& T;
  int n, ty, tx;
  TileWalk(const Tiles<M>& tiles, long t)
      : T(tiles), n(int(t / tiles.per_image)), ty(int(t % tiles.per_image / tiles.tw)),
        tx(int(t % tiles.tw)) {}
  int y0() const { return M * ty - 1; }
  int x0() const { return M * tx - 1; }
  // Whether all A x A input cells lie inside the image.
  bool interior() const { return ty > 0 && tx > 0 && y0() + A <= T.h && x0() + A <= T.w; }
  void next() {
    if (++tx < T.tw) return;
    tx = 0;
    if (++ty < T.th) return;
    ty = 0;
    ++n;
  }
};

// [begin, end) of thread tid's share of `total` items: a fixed split, so sums run in a fixed order.
std::pair<long, long> share(long total, int tid, int nthr) {
  const long base = total / nthr, extra = total % nthr;
  const long begin = tid * base + std::min<long>(tid, extra);
  return {begin, begin + base + (tid < extra ? 1 : 0)};
}

// The distance between the P positions' planes of V, M or dM for nt tiles of ch channels:
// padded by one cache line, so that the P streams do not all land in the same cache sets.
size_t plane_stride(int nt, int ch) { return size_t(nt) * ch + 16; }

// V[xi][i][c] = B^T d B of tile t0 + i's A x A input cells (zero outside the image), for every
// channel of the nChw<L>c image set x (channels c); planes plane_stride(nt, c) apart. One
// channel block at a time: its tiles read A rows of one plane, streams the prefetchers follow.
template <int M, int L>
CAE_INLINE void input_transform(const float* x, int c, const Tiles<M>& T, long t0, int nt,
                                float* V) {
  constexpr int A = Size<M>::A;
  const int cbs = c / L;
  const size_t plane = size_t(T.h) * T.w * L, pos = plane_stride(nt, c), row = size_t(T.w) * L;
  for (int cb = 0; cb < cbs; ++cb) {
    TileWalk<M> at(T, t0);
    for (int i = 0; i < nt; ++i, at.next()) {
      const int y0 = at.y0(), x0 = at.x0();
      const float* base = x + (size_t(at.n) * cbs + cb) * plane;
      const bool interior = at.interior();
      Vec<L> t[A][A];
      for (int b = 0; b < A; ++b) {
        Vec<L> d[A];
        const bool col_in = x0 + b >= 0 && x0 + b < T.w;
        for (int a = 0; a < A; ++a)
          d[a] = interior || (col_in && y0 + a >= 0 && y0 + a < T.h)
                     ? load<L>(base + (y0 + a) * row + (x0 + b) * L)
                     : Vec<L>{};
        Vec<L> r[A];
        input_1d<M, L>(d, r);
        for (int a = 0; a < A; ++a) t[a][b] = r[a];
      }
      float* out = V + size_t(i) * c + cb * L;
      for (int a = 0; a < A; ++a) {
        Vec<L> r[A];
        input_1d<M, L>(t[a], r);
        for (int b = 0; b < A; ++b) store<L>(out + (a * A + b) * pos, r[b]);
      }
    }
  }
}

// dM[xi][i][k] = A dY A^T of tile t0 + i's M x M output gradients (zero outside the image), for
// the nChw<L>c gradients dy (channels k).
template <int M, int L>
CAE_INLINE void gradient_transform(const float* dy, int k, const Tiles<M>& T, long t0, int nt,
                                   float* dM) {
  constexpr int A = Size<M>::A;
  const int kbs = k / L;
  const size_t plane = size_t(T.h) * T.w * L, pos = plane_stride(nt, k), row = size_t(T.w) * L;
  for (int kb = 0; kb < kbs; ++kb) {
    TileWalk<M> at(T, t0);
    for (int i = 0; i < nt; ++i, at.next()) {
      const int y = at.y0() + 1, x = at.x0() + 1;  // the tile's first output cell
      const float* base = dy + (size_t(at.n) * kbs + kb) * plane + y * row + x * L;
      Vec<L> t[A][M];
      for (int s = 0; s < M; ++s) {
        Vec<L> d[M];
        for (int r = 0; r < M; ++r)
          d[r] = y + r < T.h && x + s < T.w ? load<L>(base + r * row + s * L) : Vec<L>{};
        Vec<L> m[A];
        gradient_1d<M, L>(d, m);
        for (int a = 0; a < A; ++a) t[a][s] = m[a];
      }
      float* out = dM + size_t(i) * k + kb * L;
      for (int a = 0; a < A; ++a) {
        Vec<L> m[A];
        gradient_1d<M, L>(t[a], m);
        for (int b = 0; b < A; ++b) store<L>(out + (a * A + b) * pos, m[b]);
      }
    }
  }
}

// y's tile t0 + i (its M x M outputs inside the image) = A^T M A + b, then ReLU when asked, for
// every channel of k; M[xi][i][k].
template <int M, int L>
CAE_INLINE void output_transform(const float* Mx, int k, const Tiles<M>& T, long t0, int nt,
                                 const float* bias, bool relu, float* y) {
  constexpr int A = Size<M>::A;
  const int kbs = k / L;
  const size_t plane = size_t(T.h) * T.w * L, pos = plane_stride(nt, k), row = size_t(T.w) * L;
  TileWalk<M> at(T, t0);
  for (int i = 0; i < nt; ++i, at.next()) {
    const int y0 = at.y0() + 1, x0 = at.x0() + 1;
    for (int kb = 0; kb < kbs; ++kb) {
      const float* src = Mx + size_t(i) * k + kb * L;
      Vec<L> s[M][A];
      for (int b = 0; b < A; ++b) {
        Vec<L> m[A], o[M];
        for (int a = 0; a < A; ++a) m[a] = load<L>(src + (a * A + b) * pos);
        output_1d<M, L>(m, o);
        for (int r = 0; r < M; ++r) s[r][b] = o[r];
      }
      const Vec<L> bv = bias ? load<L>(bias + kb * L) : Vec<L>{};
      float* base = y + (size_t(at.n) * kbs + kb) * plane + y0 * row + x0 * L;
      for (int r = 0; r < M; ++r) {
        if (y0 + r >= T.h) break;
        Vec<L> o[M];
        output_1d<M, L>(s[r], o);
        for (int q = 0; q < M && x0 + q < T.w; ++q)
          store<L>(base + r * row + q * L, act<L>(o[q] + bv, relu));
      }
    }
  }
}

// C[r][0 .. L NV) (+)= sum_j A(r, j) B[j][0 .. L NV) for r < R, with A(r, j) = A[r rs + j js]
// (so A may be read transposed), B rows `ldb` apart, C rows `ldc` apart.
template <int L, int R, int NV, bool Add>
CAE_INLINE void gemm_tile(const float* A, size_t rs, size_t js, const float* B, size_t ldb,
                          float* C, size_t ldc, int inner) {
  Vec<L> acc[R][NV] = {};
  for (int j = 0; j < inner; ++j) {
    Vec<L> b[NV];
    for (int v = 0; v < NV; ++v) b[v] = load<L>(B + size_t(j) * ldb + v * L);
    for (int r = 0; r < R; ++r) {
      const Vec<L> a = splat<L>(A[size_t(r) * rs + size_t(j) * js]);
      for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      float* out = C + size_t(r) * ldc + v * L;
      store<L>(out, Add ? load<L>(out) + acc[r][v] : acc[r][v]);
    }
}

// Rows [i, i + rest), rest < 6, of one column block.
template <int L, int NV, bool Add>
CAE_INLINE void gemm_rest(int rest, const float* A, size_t rs, size_t js, const float* B,
                          size_t ldb, float* C, size_t ldc, int inner) {
  switch (rest) {
    case 5: gemm_tile<L, 5, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 4: gemm_tile<L, 4, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 3: gemm_tile<L, 3, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 2: gemm_tile<L, 2, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 1: gemm_tile<L, 1, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
  }
}

// C (rows x cols, rows ldc apart) = or += A (rows x inner, A(r, j) = A[r rs + j js]) times B
// (inner x cols, rows ldb apart); cols a multiple of L. Blocks of 6 rows x 2 vectors keep 12
// accumulators in registers.
template <int L, bool Add>
CAE_INLINE void gemm(const float* A, size_t rs, size_t js, const float* B, size_t ldb, float* C,
                     size_t ldc, int rows, int cols, int inner) {
  int k0 = 0;
  for (; k0 + 2 * L <= cols; k0 += 2 * L) {
    int i = 0;
    for (; i + 6 <= rows; i += 6)
      gemm_tile<L, 6, 2, Add>(A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
    gemm_rest<L, 2, Add>(rows - i, A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
  }
  for (; k0 < cols; k0 += L) {
    int i = 0;
    for (; i + 6 <= rows; i += 6)
      gemm_tile<L, 6, 1, Add>(A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
    gemm_rest<L, 1, Add>(rows - i, A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
  }
}

// One block of tiles of a conv: out (cout channels) from in (cin) and the transformed weights
// u[xi][cin][cout], with bias and ReLU, through V and Mx (the thread's scratch).
template <int M, int L>
CAE_INLINE void conv_block(const float* in, int cin, int cout, const Tiles<M>& T, long t0, int nt,
                           const float* u, const float* bias, bool relu, float* out, float* V,
                           float* Mx) {
  input_transform<M, L>(in, cin, T, t0, nt, V);
  const size_t vpos = plane_stride(nt, cin), mpos = plane_stride(nt, cout);
  for (int xi = 0; xi < Size<M>::P; ++xi)
    gemm<L, false>(V + xi * vpos, cin, 1, u + size_t(xi) * cin * cout, cout, Mx + xi * mpos, cout,
                   nt, cout, cin);
  output_transform<M, L>(Mx, cout, T, t0, nt, bias, relu, out);
}

// One block of tiles of the weight gradient: dU[xi] (k x c) += dM[xi]^T V[xi].
template <int M, int L>
CAE_INLINE void weight_gradient_block(const float* x, const float* dy, int c, int k,
                                      const Tiles<M>& T, long t0, int nt, float* V, float* dM,
                                      float* dU) {
  input_transform<M, L>(x, c, T, t0, nt, V);
  gradient_transform<M, L>(dy, k, T, t0, nt, dM);
  const size_t vpos = plane_stride(nt, c), mpos = plane_stride(nt, k);
  for (int xi = 0; xi < Size<M>::P; ++xi)
    gemm<L, true>(dM + xi * mpos, 1, k, V + xi * vpos, c, dU + size_t(xi) * k * c, c, k, c, nt);
}

// db[k] = the sum of dy over images and cells, per image in a fixed order.
template <int L>
CAE_INLINE void bias_gradient(const WinogradGeom& g, const float* dy, float* db) {
  const size_t plane = size_t(g.h) * g.w;
  const int kbs = g.k / L;
  for (int kb = 0; kb < kbs; ++kb) {
    Vec<L> total = {};
    for (int n = 0; n < g.n; ++n) {
      const float* base = dy + (size_t(n) * kbs + kb) * plane * L;
      Vec<L> acc = {};
      for (size_t q = 0; q < plane; ++q) acc += load<L>(base + q * L);
      total += acc;
    }
    store<L>(db + kb * L, total);
  }
}

// Each kernel once per tier and tile size: the AVX-512 code on 16-lane blocks, the AVX2 code on
// 8-lane blocks. Only these wrappers carry a target (vec.h).
struct Kernels {
  void (*conv_block)(const float*, int, int, const void*, long, int, const float*, const float*,
                     bool, float*, float*, float*);
  void (*weight_gradient_block)(const float*, const float*, int, int, const void*, long, int,
                                float*, float*, float*);
  void (*bias_gradient)(const WinogradGeom&, const float*, float*);
};

#define CAE_WINOGRAD_TIER(attr, tier, M, L)                                                   \
  attr void conv_block_##tier##_##M(const float* in, int cin, int cout, const void* T, long t0, \
                                    int nt, const float* u, const float* bias, bool relu,     \
                                    float* out, float* V, float* Mx) {                        \
    conv_block<M, L>(in, cin, cout, *static_cast<const Tiles<M>*>(T), t0, nt, u, bias, relu,  \
                     out, V, Mx);                                                             \
  }                                                                                           \
  attr void weight_gradient_block_##tier##_##M(const float* x, const float* dy, int c, int k, \
                                               const void* T, long t0, int nt, float* V,      \
                                               float* dM, float* dU) {                        \
    weight_gradient_block<M, L>(x, dy, c, k, *static_cast<const Tiles<M>*>(T), t0, nt, V, dM, \
                                dU);                                                          \
  }                                                                                           \
  attr void bias_gradient_##tier##_##M(const WinogradGeom& g, const float* dy, float* db) {   \
    bias_gradient<L>(g, dy, db);                                                              \
  }

CAE_WINOGRAD_TIER(CAE_AVX2, avx2, 2, 8)
CAE_WINOGRAD_TIER(CAE_AVX2, avx2, 4, 8)
CAE_WINOGRAD_TIER(CAE_AVX512, avx512, 2, 16)
CAE_WINOGRAD_TIER(CAE_AVX512, avx512, 4, 16)

const Kernels& kernels(Isa isa, int tile) {
#define CAE_KERNELS(tier, M) \
  Kernels { conv_block_##tier##_##M, weight_gradient_block_##tier##_##M, bias_gradient_##tier##_##M }
  static const Kernels table[2][2] = {{CAE_KERNELS(avx2, 2), CAE_KERNELS(avx2, 4)},
                                      {CAE_KERNELS(avx512, 2), CAE_KERNELS(avx512, 4)}};
#undef CAE_KERNELS
  return table[isa == Isa::avx512][tile == 4];
}

// out = conv of in (cin channels) with the transformed weights u[xi][cin][cout], bias and ReLU:
// forward and backward data alike. Tiles are split over the threads; each block of tiles goes
// through V and M in the thread's scratch.
template <int M>
void transformed_conv(WinogradPlan& p, const float* in, int cin, int cout, const float* u,
                      const float* bias, bool relu, float* out) {
  const Tiles<M> T(p.g.n, p.g.h, p.g.w);
  const auto block_fn = kernels(p.isa, M).conv_block;
  const int block = p.block;
  const long blocks = (T.total + block - 1) / block;
  const size_t per_thread = p.scratch.size() / size_t(p.threads);
  const int nthr = std::max(1, std::min(omp_get_max_threads(), p.threads));
#pragma omp parallel num_threads(nthr)
  {
    const int tid = omp_get_thread_num();
    float* V = p.scratch.data() + size_t(tid) * per_thread;
    float* Mx = V + per_thread / 2;
    const auto [b0, b1] = share(blocks, tid, omp_get_num_threads());
    for (long b = b0; b < b1; ++b) {
      const long t0 = b * block;
      const int nt = int(std::min<long>(block, T.total - t0));
      block_fn(in, cin, cout, &T, t0, nt, u, bias, relu, out, V, Mx);
    }
  }
}

// Per-thread dU[xi][k][c] partial sums over the thread's tiles, then their sum in thread order
// into the first thread's buffer; returns it.
template <int M>
const float* weight_gradient_sums(WinogradPlan& p, const float* x, const float* dy) {
  const int c = p.g.c, k = p.g.k;
  const Tiles<M> T(p.g.n, p.g.h, p.g.w);
  const auto block_fn = kernels(p.isa, M).weight_gradient_block;
  const int block = p.block;
  const long blocks = (T.total + block - 1) / block;
  const size_t per_thread = p.scratch.size() / size_t(p.threads);
  const size_t du_size = size_t(Size<M>::P) * k * c;
  const int nthr = std::max(1, std::min(omp_get_max_threads(), p.threads));
  int used = 1;
#pragma omp parallel num_threads(nthr)
  {
    const int tid = omp_get_thread_num();
    if (tid == 0) used = omp_get_num_threads();
    float* V = p.scratch.data() + size_t(tid) * per_thread;
    float* dM = V + per_thread / 2;
    float* dU = p.partials.data() + size_t(tid) * du_size;
    std::fill(dU, dU + du_size, 0.f);
    const auto [b0, b1] = share(blocks, tid, omp_get_num_threads());
    for (long b = b0; b < b1; ++b) {
      const long t0 = b * block;
      const int nt = int(std::min<long>(block, T.total - t0));
      block_fn(x, dy, c, k, &T, t0, nt, V, dM, dU);
    }
  }
  float* total = p.partials.data();
  for (int t = 1; t < used; ++t) {
    const float* part = p.partials.data() + size_t(t) * du_size;
    for (size_t i = 0; i < du_size; ++i) total[i] += part[i];
  }
  return total;
}

// Whether the transformed weights p.u[pass] (0: forward, 1: backward data) were made from w; if
// not, remembers w as the weights they are about to be made from. The transform costs more
// than a whole batch-1 pass, and the weights change only between training steps.
bool weights_unchanged(WinogradPlan& p, const float* w, int pass) {
  const size_t n = size_t(p.g.k) * p.g.c * 9;
  std::vector<float>& from = p.u_from[pass];
  if (from.size() == n && std::equal(w, w + n, from.begin())) return true;
  from.assign(w, w + n);
  return false;
}

template <int M>
void forward(WinogradPlan& p, const float* x, const float* w, const float* b, float* y) {
  const int c = p.g.c, k = p.g.k;
  // U[xi][c][k] from w[k][c][3][3].
  float* u = p.u[0].data();
  if (!weights_unchanged(p, w, 0))
    for (int kk = 0; kk < k; ++kk)
      for (int cc = 0; cc < c; ++cc)
        transform_kernel<M>(w + (size_t(kk) * c + cc) * 9, u + size_t(cc) * k + kk,
                            size_t(c) * k);
  transformed_conv<M>(p, x, c, k, u, b, p.g.relu, y);
}

template <int M>
void backward_data(WinogradPlan& p, const float* dy, const float* w, float* dx) {
  const int c = p.g.c, k = p.g.k;
  // The input gradient is the conv of dy with each kernel turned by 180 degrees and the channel
  // roles swapped: U[xi][k][c] from rot180(w[k][c]).
  float turned[9];
  float* u = p.u[1].data();
  if (!weights_unchanged(p, w, 1))
    for (int kk = 0; kk < k; ++kk)
      for (int cc = 0; cc < c; ++cc) {
        const float* g = w + (size_t(kk) * c + cc) * 9;
        for (int i = 0; i < 9; ++i) turned[i] = g[8 - i];
        transform_kernel<M>(turned, u + size_t(kk) * c + cc, size_t(c) * k);
      }
  transformed_conv<M>(p, dy, k, c, u, nullptr, false, dx);
}

template <int M>
void backward_weights(WinogradPlan& p, const float* x, const float* dy, float* dw, float* db) {
  const int c = p.g.c, k = p.g.k;
  const float* du = weight_gradient_sums<M>(p, x, dy);
  for (int kk = 0; kk < k; ++kk)
    for (int cc = 0; cc < c; ++cc)
      transform_kernel_gradient<M>(du + size_t(kk) * c + cc, size_t(k) * c,
                                   dw + (size_t(kk) * c + cc) * 9);
  if (db) kernels(p.isa, M).bias_gradient(p.g, dy, db);
}

template <int M>
void size_plan(WinogradPlan& p) {
  const WinogradGeom& g = p.g;
  // As many blocks as the largest size needs, rounded up to a multiple of the threads, and
  // the tiles spread evenly over them: at batch 1 (49 tiles of a 28x28 map) every thread gets
  // the same share, where full blocks left one thread a block behind the other.
  const long tiles = Tiles<M>(g.n, g.h, g.w).total;
  long blocks = (tiles + Size<M>::block - 1) / Size<M>::block;
  blocks = (blocks + p.threads - 1) / p.threads * p.threads;
  p.block = int(std::max<long>(1, (tiles + blocks - 1) / blocks));
  const size_t P = Size<M>::P;
  for (std::vector<float>& u : p.u) u.assign(P * g.c * g.k, 0.f);
  // Per thread: V, then M (or dM), each P planes of a block of the larger channel count.
  p.scratch.assign(size_t(p.threads) * 2 * P * plane_stride(Size<M>::block, std::max(g.c, g.k)),
                   0.f);
  p.partials.assign(size_t(p.threads) * P * g.c * g.k, 0.f);
}

}  // namespace

bool winograd_supported(const WinogradGeom& g) {
  const bool tier = g.lanes == 16 ? cpu_isa() >= Isa::avx512
                                  : g.lanes == 8 && cpu_isa() >= Isa::avx2;
  return tier && (g.tile == 2 || g.tile == 4) && g.n > 0 && g.c > 0 && g.k > 0 &&
         g.c % g.lanes == 0 && g.k % g.lanes == 0 && g.c <= kMaxChannels &&
         g.k <= kMaxChannels && g.h >= 2 && g.w >= 2;
}

WinogradPlan make_winograd_plan(const WinogradGeom& g) {
  if (!winograd_supported(g))
    throw Error("winograd: geometry outside the kernels, or no code for " +
                std::to_string(g.lanes) + "-lane blocks here (" + isa_description() + ")");
  WinogradPlan p;
  p.g = g;
  p.isa = g.lanes == 16 ? Isa::avx512 : Isa::avx2;
  p.threads = std::max(1, omp_get_max_threads());
  if (g.tile == 2)
    size_plan<2>(p);
  else
    size_plan<4>(p);
  return p;
}

std::string winograd_impl(const WinogradPlan& p) {
  return "cae:winograd_" + std::to_string(p.g.tile) + "x3:" + isa_name(p.isa);
}

void winograd_forward(WinogradPlan& p, const float* x, const float* w, const float* b, float* y) {
  (p.g.tile == 2 ? forward<2> : forward<4>)(p, x, w, b, y);
}

void winograd_backward_data(WinogradPlan& p, const float* dy, const float* w, float* dx) {
  (p.g.tile == 2 ? backward_data<2> : backward_data<4>)(p, dy, w, dx);
}

void winograd_backward_weights(WinogradPlan& p, const float* x, const float* dy, float* dw,
                               float* db) {
  (p.g.tile == 2 ? backward_weights<2> : backward_weights<4>)(p, x, dy, dw, db);
}

}  // namespace cae::ops::dnnl_backend
