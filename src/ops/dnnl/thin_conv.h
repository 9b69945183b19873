// Direct kernels for the two thin convolutions of an autoencoder: the first (1 channel in, a
// multiple of L out) and the last (a multiple of L in, 1 channel out). oneDNN runs them at
// 6-15% of the machine's rate (DESIGN.md §5) because its kernels block over channels and one side
// has a single channel; here the L channels of a block are the vector lanes and the single
// channel is a broadcast scalar or a horizontal sum.
//
// Layouts: the wide side is oneDNN's blocked nChw<L>c, dense: [n][c/L][h][w][L], with L the
// block width oneDNN uses on this CPU (16 on AVX-512, 8 on AVX2); the thin side is plain
// [n][h][w]. Weights are [kh][kw][c] (oneDNN's hwio for 1 -> c, ohwi for c -> 1), so the c of one
// tap is contiguous. Stride 1, any padding. Every sum runs in a fixed order for a fixed thread
// count and tier, so results are bitwise repeatable.
//
// Tiers (core/isa.h): AVX-512 code for 16-lane blocks, AVX2 and baseline code for 8-lane blocks.
// A plan names its tier; thin_conv_impl() reports it, so no step runs a slower tier unseen.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/isa.h"

namespace cae::ops::dnnl_backend {

struct ThinConvGeom {
  int n = 0;          // batch
  int c = 0;          // channels of the wide side, a multiple of lanes
  int lanes = 16;     // channels per block of the wide side's nChw<lanes>c: 8 or 16
  int h = 0, w = 0;   // input size
  int oh = 0, ow = 0; // output size: h + pad_top + pad_bottom - k + 1, likewise for w
  int k = 3;          // kernel size
  int pad_top = 0, pad_left = 0;
  bool relu = false;  // fused on the output; its gradient applied in the backward kernels
};

// Per-thread partial weight gradients, made once so the backward kernels allocate nothing.
struct ThinConvPlan {
  ThinConvGeom g;
  Isa isa = Isa::baseline;      // the tier whose code runs
  int threads = 1;              // the most threads a call uses (omp_get_max_threads() at build)
  std::vector<float> partials;  // threads * (k*k*c + c)
};

// The lanes (block width) of a tier's code: 16 for avx512, 8 below.
int thin_conv_lanes(Isa isa);

// The tier whose code runs `lanes`-wide blocks on this CPU (cpu_isa()), or nothing.
std::optional<Isa> thin_conv_tier(int lanes);

// The shapes the kernels take: stride 1, k = 3, c a positive multiple of lanes, lanes 8 or 16
// with code for it on this CPU, widths up to 512. Returns false (and the caller uses oneDNN)
// otherwise.
bool thin_conv_supported(const ThinConvGeom& g);

// Requires thin_conv_supported(g) and, when given, isa <= cpu_isa() with thin_conv_lanes(isa) ==
// g.lanes (tests run each tier this way); else throws cae::Error. Ensures a plan for
// thin_conv_tier(g.lanes) or isa, sized for omp_get_max_threads().
ThinConvPlan make_thin_conv_plan(const ThinConvGeom& g, std::optional<Isa> isa = std::nullopt);

// "cae:thin_conv:avx512" | "cae:thin_conv:avx2" | "cae:thin_conv:baseline".
std::string thin_conv_impl(const ThinConvPlan& plan);

// 1 -> c. y = act(conv(x, w) + b); b may be null.
void widen_forward(const ThinConvPlan& p, const float* x, const float* w, const float* b, float* y);
// 1 -> c, parameter gradients. dy is the gradient of y; with relu it is masked in place by y > 0
// (so widen_backward_data may follow on it). dw, db (db may be null) are overwritten.
void widen_backward_weights(ThinConvPlan& p, const float* x, const float* y, float* dy, float* dw,
                            float* db);
// 1 -> c, data gradient from the (masked) dy of widen_backward_weights: dx overwritten.
void widen_backward_data(const ThinConvPlan& p, const float* dy, const float* w, float* dx);

// c -> 1. y = act(conv(x, w) + b); b may be null.
void narrow_forward(const ThinConvPlan& p, const float* x, const float* w, const float* b, float* y);
// c -> 1, every gradient in one pass over x: dw, db (may be null) and dx (may be null) are
// overwritten; with relu, dy is masked by y > 0 on the fly (dy itself is not written).
void narrow_backward(ThinConvPlan& p, const float* x, const float* y, const float* dy,
                     const float* w, float* dx, float* dw, float* db);

}  // namespace cae::ops::dnnl_backend
