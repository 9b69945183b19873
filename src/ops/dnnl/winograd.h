// Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions for the 3x3 layers. oneDNN 2.6 has
// Winograd only for AVX-512, and on AVX2 its direct kernels run these layers near the machine's
// peak already, so only fewer multiplications make them faster: an M x M output tile from an
// (M+2) x (M+2) input tile costs (M+2)^2 multiplications per channel pair instead of 9 M^2:
// 2.25x fewer for M = 2, 4x for M = 4, for transforms that cost a fraction of that at 16-32
// channels. Written once on Vec<L> (vec.h): AVX2 code on 8-lane blocks, AVX-512 code on 16-lane
// ones. docs/performance.md has the measured tables that chose it, on both tiers.
//
// Each pass works on blocks of tiles that stay in cache: the block's input tiles are transformed
// (V = B^T d B), then (M+2)^2 small matrix products with the transformed weights (U = G g G^T)
// give M, and M is transformed back (Y = A^T M A) with the bias and ReLU, into the output:
//   forward        y = act(conv(x, w) + b)
//   backward data  dx = conv(dy, rot180(w)^T): the same pass with U built from flipped weights
//   backward wts   dU = sum over tiles of (A dY A^T) (.) V, then dw = G^T dU G; db = sum dy
// Activations are oneDNN's nChw8c (AVX2) or nChw16c (AVX-512), dense; weights are canonical
// OIHW [k][c][3][3]. 3x3, stride 1, 'same' padding (one cell each side), any size. Every sum
// runs in a fixed order for a fixed thread count, so results repeat bitwise. Rounding: F(2x2)
// differs from the direct sum by the transforms' reordering only (coefficients 0, +-1, +-1/2,
// exact in binary), within 1e-6 of the largest output; F(4x4)'s coefficients (4, 5, 1/6,
// 1/24, ...) round, within 1e-5.
#pragma once

#include <string>
#include <vector>

#include "core/isa.h"

namespace cae::ops::dnnl_backend {

struct WinogradGeom {
  int n = 0;         // batch
  int c = 0, k = 0;  // input and output channels, multiples of lanes
  int h = 0, w = 0;  // image size (the same in and out)
  bool relu = false; // forward only: fused on the output
  int tile = 2;      // M: outputs per tile side, 2 or 4
  int lanes = 8;     // channels per block of the activations' nChw<lanes>c: 8 (AVX2 code) or
                     // 16 (AVX-512 code)
};

// Scratch and transformed weights, made once so the passes allocate nothing.
struct WinogradPlan {
  WinogradGeom g;
  Isa isa = Isa::avx2;           // the tier whose code runs: avx2 for 8 lanes, avx512 for 16
  int threads = 1;               // the most threads a pass uses (omp_get_max_threads() at build)
  int block = 48;                // tiles per block
  // The transformed weights, (M+2)^2 x c x k, of the forward [0] and the backward data [1], and
  // the weights each was made from: made again only when those change.
  std::vector<float> u[2], u_from[2];
  std::vector<float> scratch;    // per thread: V, M (and dM) of one block of tiles
  std::vector<float> partials;   // per thread: (M+2)^2 x k x c weight-gradient sums
};

// The shapes the kernels take (tile 2 or 4, c, k multiples of lanes, both at most 512, sizes at
// least 2x2) with code for the lanes on this CPU (8: cpu_isa() at least avx2, 16: avx512).
bool winograd_supported(const WinogradGeom& g);

// Requires winograd_supported(g). Ensures a plan sized for omp_get_max_threads().
WinogradPlan make_winograd_plan(const WinogradGeom& g);

// "cae:winograd_4x3:avx2", "cae:winograd_2x3:avx512", ...
std::string winograd_impl(const WinogradPlan& plan);

// y (n x k x h x w, nChw<lanes>c) = act(conv(x (n x c x h x w), w (OIHW)) + b); b may be null.
void winograd_forward(WinogradPlan& p, const float* x, const float* w, const float* b, float* y);

// dx (c channels) = the gradient of the conv's input from dy (k channels; already masked by the
// activation's gradient). Overwrites dx.
void winograd_backward_data(WinogradPlan& p, const float* dy, const float* w, float* dx);

// dw (OIHW) and db (k; may be null) of the conv from x and dy (masked). Overwrites both.
void winograd_backward_weights(WinogradPlan& p, const float* x, const float* dy, float* dw,
                               float* db);

}  // namespace cae::ops::dnnl_backend
