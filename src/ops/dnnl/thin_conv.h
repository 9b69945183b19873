// Direct kernels for the two thin convolutions of an autoencoder: the first (1 channel in, a
// multiple of 16 out) and the last (a multiple of 16 in, 1 channel out). oneDNN runs them at
// 6-15% of the machine's rate (DESIGN.md §5) because its kernels block over channels and one side
// has a single channel; here the 16 channels of a block are the vector lanes and the single
// channel is a broadcast scalar or a horizontal sum.
//
// Layouts: the wide side is oneDNN's nChw16c, dense: [n][c/16][h][w][16]; the thin side is plain
// [n][h][w]. Weights are [kh][kw][c] (oneDNN's hwio for 1 -> c, ohwi for c -> 1), so the c of one
// tap is contiguous. Stride 1, any padding. Every sum runs in a fixed order for a fixed thread
// count, so results are bitwise repeatable.
#pragma once

#include <vector>

namespace cae::ops::dnnl_backend {

struct ThinConvGeom {
  int n = 0;          // batch
  int c = 0;          // channels of the wide side, a multiple of 16
  int h = 0, w = 0;   // input size
  int oh = 0, ow = 0; // output size: h + pad_top + pad_bottom - k + 1, likewise for w
  int k = 3;          // kernel size
  int pad_top = 0, pad_left = 0;
  bool relu = false;  // fused on the output; its gradient applied in the backward kernels
};

// Per-thread partial weight gradients, made once so the backward kernels allocate nothing.
struct ThinConvPlan {
  ThinConvGeom g;
  int threads = 1;              // the most threads a call uses (omp_get_max_threads() at build)
  std::vector<float> partials;  // threads * (k*k*c + c)
};

// The shapes the kernels take: stride 1, c a positive multiple of 16, k in [1, 7], widths up to
// 1024. Returns false (and the caller uses oneDNN) otherwise.
bool thin_conv_supported(const ThinConvGeom& g);

// Requires thin_conv_supported(g). Ensures a plan sized for omp_get_max_threads().
ThinConvPlan make_thin_conv_plan(const ThinConvGeom& g);

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
