#include "ops/dnnl/winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "cae/error.h"
#include "core/isa.h"

namespace cae::ops::dnnl_backend {
namespace {

using std::size_t;
using v8 = __m256;

constexpr int L = 8;           // lanes: the channels of one nChw8c block
constexpr int kBlock = 48;     // most tiles per block: V and M stay in L2 (~200 KB at 32 ch)
constexpr int kMaxChannels = 512;

#define CAE_AVX2 __attribute__((target("avx2,fma")))
#define CAE_INLINE [[gnu::always_inline]] inline

// Tiles: 2x2 outputs each, th x tw per image, numbered (n, ty, tx) row-major.
struct Tiles {
  int h, w, th, tw;
  long per_image, total;
  Tiles(int n, int h_, int w_)
      : h(h_), w(w_), th((h_ + 1) / 2), tw((w_ + 1) / 2), per_image(long(th) * tw),
        total(per_image * n) {}
};

// [begin, end) of thread tid's share of `total` items: a fixed split, so sums run in a fixed order.
std::pair<long, long> share(long total, int tid, int nthr) {
  const long base = total / nthr, extra = total % nthr;
  const long begin = tid * base + std::min<long>(tid, extra);
  return {begin, begin + base + (tid < extra ? 1 : 0)};
}

// U[xi][a][b] = G g G^T of one 3x3 kernel g (row-major), written with stride `stride` between
// the 16 positions xi = 4 i + j. G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
void transform_kernel(const float* g, float* u, size_t stride) {
  float t[4][3];
  for (int q = 0; q < 3; ++q) {
    const float g0 = g[q], g1 = g[3 + q], g2 = g[6 + q];
    t[0][q] = g0;
    t[1][q] = 0.5f * (g0 + g1 + g2);
    t[2][q] = 0.5f * (g0 - g1 + g2);
    t[3][q] = g2;
  }
  for (int i = 0; i < 4; ++i) {
    const float a = t[i][0], b = t[i][1], c = t[i][2];
    u[(i * 4 + 0) * stride] = a;
    u[(i * 4 + 1) * stride] = 0.5f * (a + b + c);
    u[(i * 4 + 2) * stride] = 0.5f * (a - b + c);
    u[(i * 4 + 3) * stride] = c;
  }
}

// dw (3x3) = G^T du G of one 4x4 gradient du[xi] (stride between positions).
void transform_kernel_gradient(const float* du, size_t stride, float* dw) {
  float t[3][4];
  for (int j = 0; j < 4; ++j) {
    const float d0 = du[(0 * 4 + j) * stride], d1 = du[(1 * 4 + j) * stride],
                d2 = du[(2 * 4 + j) * stride], d3 = du[(3 * 4 + j) * stride];
    t[0][j] = d0 + 0.5f * (d1 + d2);
    t[1][j] = 0.5f * (d1 - d2);
    t[2][j] = 0.5f * (d1 + d2) + d3;
  }
  for (int p = 0; p < 3; ++p) {
    const float d0 = t[p][0], d1 = t[p][1], d2 = t[p][2], d3 = t[p][3];
    dw[p * 3 + 0] = d0 + 0.5f * (d1 + d2);
    dw[p * 3 + 1] = 0.5f * (d1 - d2);
    dw[p * 3 + 2] = 0.5f * (d1 + d2) + d3;
  }
}

// The tiles of a block, walked in order without divisions: image n, the first input row y0
// and column x0 of the tile's 4x4 cells (its outputs are rows y0 + 1, y0 + 2 and likewise).
struct TileWalk {
  const Tiles& T;
  int n, ty, tx;
  TileWalk(const Tiles& tiles, long t)
      : T(tiles), n(int(t / tiles.per_image)), ty(int(t % tiles.per_image / tiles.tw)),
        tx(int(t % tiles.tw)) {}
  int y0() const { return 2 * ty - 1; }
  int x0() const { return 2 * tx - 1; }
  // Whether all 4x4 input cells lie inside the image.
  bool interior() const { return ty > 0 && tx > 0 && 2 * ty + 2 < T.h && 2 * tx + 2 < T.w; }
  void next() {
    if (++tx < T.tw) return;
    tx = 0;
    if (++ty < T.th) return;
    ty = 0;
    ++n;
  }
};

// The distance between the 16 positions' planes of V, M or dM for nt tiles of ch channels:
// padded by one cache line, so that the 16 streams do not all land in the same cache sets.
size_t plane_stride(int nt, int ch) { return size_t(nt) * ch + 16; }

// The 4x4 cells of one tile and one channel block, vertical transform first:
// t[a][b] = (B^T d)[a][b], then V[a][b] = (t B)[a][b], stored at out + (4 a + b) * pos.
// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
template <class Load>
CAE_INLINE CAE_AVX2 void transform_cells(Load load, float* out, size_t pos) {
  v8 t[4][4];
  for (int b = 0; b < 4; ++b) {
    const v8 d0 = load(0, b), d1 = load(1, b), d2 = load(2, b), d3 = load(3, b);
    t[0][b] = _mm256_sub_ps(d0, d2);
    t[1][b] = _mm256_add_ps(d1, d2);
    t[2][b] = _mm256_sub_ps(d2, d1);
    t[3][b] = _mm256_sub_ps(d1, d3);
  }
  for (int a = 0; a < 4; ++a) {
    _mm256_storeu_ps(out + (a * 4 + 0) * pos, _mm256_sub_ps(t[a][0], t[a][2]));
    _mm256_storeu_ps(out + (a * 4 + 1) * pos, _mm256_add_ps(t[a][1], t[a][2]));
    _mm256_storeu_ps(out + (a * 4 + 2) * pos, _mm256_sub_ps(t[a][2], t[a][1]));
    _mm256_storeu_ps(out + (a * 4 + 3) * pos, _mm256_sub_ps(t[a][1], t[a][3]));
  }
}

// V[xi][i][c] = B^T d B of tile t0 + i's 4x4 input cells (zero outside the image), for every
// channel of the nChw8c image set x (channels c); planes plane_stride(nt, c) apart.
CAE_AVX2 void input_transform(const float* x, int c, const Tiles& T, long t0, int nt, float* V) {
  const int cbs = c / L;
  const size_t plane = size_t(T.h) * T.w * L, pos = plane_stride(nt, c), row = size_t(T.w) * L;
  const v8 zero = _mm256_setzero_ps();
  // One channel block at a time: its tiles read 4 rows of one plane, streams the prefetchers
  // follow.
  for (int cb = 0; cb < cbs; ++cb) {
    TileWalk at(T, t0);
    for (int i = 0; i < nt; ++i, at.next()) {
      const int y0 = at.y0(), x0 = at.x0();
      const float* base = x + (size_t(at.n) * cbs + cb) * plane;
      float* out = V + size_t(i) * c + cb * L;
      if (at.interior()) {
        const float* p = base + size_t(y0) * row + size_t(x0) * L;
        transform_cells([&](int a, int b) CAE_AVX2 { return _mm256_loadu_ps(p + a * row + b * L); },
                        out, pos);
      } else {
        transform_cells(
            [&](int a, int b) CAE_AVX2 {
              const bool in = y0 + a >= 0 && y0 + a < T.h && x0 + b >= 0 && x0 + b < T.w;
              return in ? _mm256_loadu_ps(base + (size_t(y0 + a) * T.w + x0 + b) * L) : zero;
            },
            out, pos);
      }
    }
  }
}

// dM[xi][i][k] = A dY A^T of tile t0 + i's 2x2 output gradients (zero outside the image), for
// the nChw8c gradients dy (channels k). A = [1 0; 1 1; 1 -1; 0 -1].
CAE_AVX2 void gradient_transform(const float* dy, int k, const Tiles& T, long t0, int nt,
                                 float* dM) {
  const int kbs = k / L;
  const size_t plane = size_t(T.h) * T.w * L, pos = plane_stride(nt, k);
  const v8 zero = _mm256_setzero_ps();
  TileWalk at(T, t0);
  for (int i = 0; i < nt; ++i, at.next()) {
    const int y = at.y0() + 1, x = at.x0() + 1;  // the tile's first output cell
    const bool in[2][2] = {{true, x + 1 < T.w}, {y + 1 < T.h, y + 1 < T.h && x + 1 < T.w}};
    for (int kb = 0; kb < kbs; ++kb) {
      const float* base = dy + (size_t(at.n) * kbs + kb) * plane + (size_t(y) * T.w + x) * L;
      v8 d[2][2];
      for (int r = 0; r < 2; ++r)
        for (int s = 0; s < 2; ++s)
          d[r][s] = in[r][s] ? _mm256_loadu_ps(base + (size_t(r) * T.w + s) * L) : zero;
      v8 t[4][2];
      for (int s = 0; s < 2; ++s) {
        t[0][s] = d[0][s];
        t[1][s] = _mm256_add_ps(d[0][s], d[1][s]);
        t[2][s] = _mm256_sub_ps(d[0][s], d[1][s]);
        t[3][s] = _mm256_sub_ps(zero, d[1][s]);
      }
      float* out = dM + size_t(i) * k + kb * L;
      for (int a = 0; a < 4; ++a) {
        _mm256_storeu_ps(out + (a * 4 + 0) * pos, t[a][0]);
        _mm256_storeu_ps(out + (a * 4 + 1) * pos, _mm256_add_ps(t[a][0], t[a][1]));
        _mm256_storeu_ps(out + (a * 4 + 2) * pos, _mm256_sub_ps(t[a][0], t[a][1]));
        _mm256_storeu_ps(out + (a * 4 + 3) * pos, _mm256_sub_ps(zero, t[a][1]));
      }
    }
  }
}

// y's tile t0 + i (2x2 outputs, those inside the image) = A^T M A + b, then ReLU when asked,
// for every channel of k; M[xi][i][k]. A^T = [1 1 1 0; 0 1 -1 -1].
CAE_AVX2 void output_transform(const float* M, int k, const Tiles& T, long t0, int nt,
                               const float* bias, bool relu, float* y) {
  const int kbs = k / L;
  const size_t plane = size_t(T.h) * T.w * L, pos = plane_stride(nt, k);
  const v8 zero = _mm256_setzero_ps();
  TileWalk at(T, t0);
  for (int i = 0; i < nt; ++i, at.next()) {
    const int y0 = at.y0() + 1, x0 = at.x0() + 1;
    const bool in[2][2] = {{true, x0 + 1 < T.w}, {y0 + 1 < T.h, y0 + 1 < T.h && x0 + 1 < T.w}};
    for (int kb = 0; kb < kbs; ++kb) {
      const float* src = M + size_t(i) * k + kb * L;
      // (A^T m)[r][b] for each column b, then the columns.
      v8 s[2][4];
      for (int b = 0; b < 4; ++b) {
        const v8 m0 = _mm256_loadu_ps(src + (0 + b) * pos), m1 = _mm256_loadu_ps(src + (4 + b) * pos),
                 m2 = _mm256_loadu_ps(src + (8 + b) * pos), m3 = _mm256_loadu_ps(src + (12 + b) * pos);
        s[0][b] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[1][b] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      const v8 bv = bias ? _mm256_loadu_ps(bias + kb * L) : zero;
      float* base = y + (size_t(at.n) * kbs + kb) * plane + (size_t(y0) * T.w + x0) * L;
      for (int r = 0; r < 2; ++r) {
        v8 o0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]), bv);
        v8 o1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]), bv);
        if (relu) {
          o0 = _mm256_max_ps(o0, zero);
          o1 = _mm256_max_ps(o1, zero);
        }
        if (in[r][0]) _mm256_storeu_ps(base + size_t(r) * T.w * L, o0);
        if (in[r][1]) _mm256_storeu_ps(base + (size_t(r) * T.w + 1) * L, o1);
      }
    }
  }
}

// C[r][0 .. 8 NV) (+)= sum_j A(r, j) B[j][0 .. 8 NV) for r < R, with A(r, j) = A[r rs + j js]
// (so A may be read transposed), B rows `ldb` apart, C rows `ldc` apart.
template <int R, int NV, bool Add>
CAE_INLINE CAE_AVX2 void gemm_tile(const float* A, size_t rs, size_t js, const float* B,
                                   size_t ldb, float* C, size_t ldc, int inner) {
  v8 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int j = 0; j < inner; ++j) {
    v8 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(B + size_t(j) * ldb + v * L);
    for (int r = 0; r < R; ++r) {
      const v8 a = _mm256_broadcast_ss(A + size_t(r) * rs + size_t(j) * js);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      float* out = C + size_t(r) * ldc + v * L;
      _mm256_storeu_ps(out, Add ? _mm256_add_ps(_mm256_loadu_ps(out), acc[r][v]) : acc[r][v]);
    }
}

// Rows [i, i + rest), rest < 6, of one column block.
template <int NV, bool Add>
CAE_INLINE CAE_AVX2 void gemm_rest(int rest, const float* A, size_t rs, size_t js,
                                   const float* B, size_t ldb, float* C, size_t ldc, int inner) {
  switch (rest) {
    case 5: gemm_tile<5, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 4: gemm_tile<4, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 3: gemm_tile<3, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 2: gemm_tile<2, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
    case 1: gemm_tile<1, NV, Add>(A, rs, js, B, ldb, C, ldc, inner); break;
  }
}

// C (rows x cols, rows ldc apart) = or += A (rows x inner, A(r, j) = A[r rs + j js]) times B
// (inner x cols, rows ldb apart); cols a multiple of 8. Blocks of 6 rows x 16 columns keep 12
// accumulators in registers.
template <bool Add>
CAE_AVX2 void gemm(const float* A, size_t rs, size_t js, const float* B, size_t ldb, float* C,
                   size_t ldc, int rows, int cols, int inner) {
  int k0 = 0;
  for (; k0 + 16 <= cols; k0 += 16) {
    int i = 0;
    for (; i + 6 <= rows; i += 6)
      gemm_tile<6, 2, Add>(A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
    gemm_rest<2, Add>(rows - i, A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
  }
  for (; k0 < cols; k0 += 8) {
    int i = 0;
    for (; i + 6 <= rows; i += 6)
      gemm_tile<6, 1, Add>(A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
    gemm_rest<1, Add>(rows - i, A + i * rs, rs, js, B + k0, ldb, C + i * ldc + k0, ldc, inner);
  }
}

// out = conv of in (cin channels) with the transformed weights U[xi][cin][cout], bias and ReLU:
// forward and backward data alike. Tiles are split over the threads; each block of tiles goes
// through V and M in the thread's scratch.
CAE_AVX2 void transformed_conv(WinogradPlan& p, const float* in, int cin, int cout,
                               const float* bias, bool relu, float* out) {
  const Tiles T(p.g.n, p.g.h, p.g.w);
  const int block = p.block;
  const long blocks = (T.total + block - 1) / block;
  const size_t per_thread = p.scratch.size() / size_t(p.threads);
  const int nthr = std::max(1, std::min(omp_get_max_threads(), p.threads));
#pragma omp parallel num_threads(nthr)
  {
    const int tid = omp_get_thread_num();
    float* V = p.scratch.data() + size_t(tid) * per_thread;
    float* M = V + per_thread / 2;
    const auto [b0, b1] = share(blocks, tid, omp_get_num_threads());
    for (long b = b0; b < b1; ++b) {
      const long t0 = b * block;
      const int nt = int(std::min<long>(block, T.total - t0));
      input_transform(in, cin, T, t0, nt, V);
      const size_t vpos = plane_stride(nt, cin), mpos = plane_stride(nt, cout);
      for (int xi = 0; xi < 16; ++xi)
        gemm<false>(V + xi * vpos, cin, 1, p.u.data() + size_t(xi) * cin * cout, cout,
                    M + xi * mpos, cout, nt, cout, cin);
      output_transform(M, cout, T, t0, nt, bias, relu, out);
    }
  }
}

// Per-thread dU[xi][k][c] partial sums over the thread's tiles, then their sum in thread order
// into the first thread's buffer; returns it.
CAE_AVX2 const float* weight_gradient_sums(WinogradPlan& p, const float* x, const float* dy) {
  const int c = p.g.c, k = p.g.k;
  const Tiles T(p.g.n, p.g.h, p.g.w);
  const int block = p.block;
  const long blocks = (T.total + block - 1) / block;
  const size_t per_thread = p.scratch.size() / size_t(p.threads);
  const size_t du_size = size_t(16) * k * c;
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
      input_transform(x, c, T, t0, nt, V);
      gradient_transform(dy, k, T, t0, nt, dM);
      // dU[xi] (k x c) += dM[xi]^T (k x nt, read transposed) V[xi] (nt x c).
      const size_t vpos = plane_stride(nt, c), mpos = plane_stride(nt, k);
      for (int xi = 0; xi < 16; ++xi)
        gemm<true>(dM + xi * mpos, 1, k, V + xi * vpos, c, dU + size_t(xi) * k * c, c, k, c, nt);
    }
  }
  float* total = p.partials.data();
  for (int t = 1; t < used; ++t) {
    const float* part = p.partials.data() + size_t(t) * du_size;
    for (size_t i = 0; i < du_size; ++i) total[i] += part[i];
  }
  return total;
}

// db[k] = the sum of dy over images and cells, per image in a fixed order.
CAE_AVX2 void bias_gradient(const WinogradGeom& g, const float* dy, float* db) {
  const size_t plane = size_t(g.h) * g.w;
  const int kbs = g.k / L;
  for (int kb = 0; kb < kbs; ++kb) {
    v8 total = _mm256_setzero_ps();
    for (int n = 0; n < g.n; ++n) {
      const float* base = dy + (size_t(n) * kbs + kb) * plane * L;
      v8 acc = _mm256_setzero_ps();
      for (size_t q = 0; q < plane; ++q) acc = _mm256_add_ps(acc, _mm256_loadu_ps(base + q * L));
      total = _mm256_add_ps(total, acc);
    }
    _mm256_storeu_ps(db + kb * L, total);
  }
}

}  // namespace

bool winograd_supported(const WinogradGeom& g) {
  return cpu_isa() >= Isa::avx2 && g.n > 0 && g.c > 0 && g.k > 0 && g.c % L == 0 &&
         g.k % L == 0 && g.c <= kMaxChannels && g.k <= kMaxChannels && g.h >= 2 && g.w >= 2;
}

WinogradPlan make_winograd_plan(const WinogradGeom& g) {
  if (!winograd_supported(g))
    throw Error("winograd: geometry outside the kernels, or no AVX2 here (" + isa_description() +
                ")");
  WinogradPlan p;
  p.g = g;
  p.threads = std::max(1, omp_get_max_threads());
  // Small images (batch 1) have few tiles: blocks small enough that every thread gets some,
  // in multiples of the products' 6 rows.
  const long tiles = Tiles(g.n, g.h, g.w).total;
  p.block = int(std::clamp<long>((tiles + p.threads - 1) / p.threads, 6, kBlock) + 5) / 6 * 6;
  p.block = std::min(p.block, kBlock);
  p.u.assign(size_t(16) * g.c * g.k, 0.f);
  // Per thread: V, then M (or dM), each 16 planes of a block of the larger channel count.
  p.scratch.assign(size_t(p.threads) * 2 * 16 * plane_stride(kBlock, std::max(g.c, g.k)), 0.f);
  p.partials.assign(size_t(p.threads) * 16 * g.c * g.k, 0.f);
  return p;
}

std::string winograd_impl() { return "cae:winograd_2x3:avx2"; }

void winograd_forward(WinogradPlan& p, const float* x, const float* w, const float* b, float* y) {
  const int c = p.g.c, k = p.g.k;
  // U[xi][c][k] from w[k][c][3][3].
  for (int kk = 0; kk < k; ++kk)
    for (int cc = 0; cc < c; ++cc)
      transform_kernel(w + (size_t(kk) * c + cc) * 9, p.u.data() + size_t(cc) * k + kk,
                       size_t(c) * k);
  transformed_conv(p, x, c, k, b, p.g.relu, y);
}

void winograd_backward_data(WinogradPlan& p, const float* dy, const float* w, float* dx) {
  const int c = p.g.c, k = p.g.k;
  // The input gradient is the conv of dy with each kernel turned by 180 degrees and the channel
  // roles swapped: U[xi][k][c] from rot180(w[k][c]).
  float turned[9];
  for (int kk = 0; kk < k; ++kk)
    for (int cc = 0; cc < c; ++cc) {
      const float* g = w + (size_t(kk) * c + cc) * 9;
      for (int i = 0; i < 9; ++i) turned[i] = g[8 - i];
      transform_kernel(turned, p.u.data() + size_t(kk) * c + cc, size_t(c) * k);
    }
  transformed_conv(p, dy, k, c, nullptr, false, dx);
}

void winograd_backward_weights(WinogradPlan& p, const float* x, const float* dy, float* dw,
                               float* db) {
  const int c = p.g.c, k = p.g.k;
  const float* du = weight_gradient_sums(p, x, dy);
  for (int kk = 0; kk < k; ++kk)
    for (int cc = 0; cc < c; ++cc)
      transform_kernel_gradient(du + size_t(kk) * c + cc, size_t(k) * c,
                                dw + (size_t(kk) * c + cc) * 9);
  if (db) bias_gradient(p.g, dy, db);
}

}  // namespace cae::ops::dnnl_backend
