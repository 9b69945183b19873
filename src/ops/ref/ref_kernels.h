// The naive kernels behind the ref backend: one forward/backward pair of plain loops per op, in
// canonical layouts (activations NCHW, conv weights OIHW, tconv weights IOHW). They are the
// oracle the fast kernels are tested against, so every loop is the textbook formula; sums run in
// double so that the oracle is more accurate than what it judges.
//
// Shapes: N = batch, C/H/W = op.in, O/P/Q = op.out (channels / height / width), K = op.kernel.
// Every kernel overwrites its outputs (never accumulates into them) and requires the OpDesc to
// have passed check_net_desc().
#pragma once

#include <cstddef>

#include "ops/ops.h"

namespace cae::ops::ref {

// y[N][O][P][Q] = b[O] + sum_{c,ky,kx} x[N][C][H][W] at (p*s - pad_top + ky, q*s - pad_left + kx)
//   * w[O][C][K][K]; out-of-range input cells read as zero. b may be null. No activation.
void conv_forward(const OpDesc& op, int batch, const float* x, const float* w, const float* b,
                  float* y);
// dx[N][C][H][W] = d(sum dy ⊙ y)/dx for conv_forward, given dy[N][O][P][Q] and w[O][C][K][K].
void conv_backward_data(const OpDesc& op, int batch, const float* dy, const float* w, float* dx);
// dw[O][C][K][K] and db[O] (db may be null) from x[N][C][H][W] and dy[N][O][P][Q].
void conv_backward_weights(const OpDesc& op, int batch, const float* x, const float* dy, float* dw,
                           float* db);

// Transposed conv (PyTorch / ONNX ConvTranspose): y[N][O][P][Q] = b[O] + the scatter
// y[n][o][h*s - pad_top + ky][w*s - pad_left + kx] += x[n][c][h][w] * w[C][O][K][K] over
// in-range targets. b may be null. No activation.
void tconv_forward(const OpDesc& op, int batch, const float* x, const float* w, const float* b,
                   float* y);
// dx[N][C][H][W] from dy[N][O][P][Q] and w[C][O][K][K] (a plain conv of dy).
void tconv_backward_data(const OpDesc& op, int batch, const float* dy, const float* w, float* dx);
// dw[C][O][K][K] and db[O] (db may be null) from x[N][C][H][W] and dy[N][O][P][Q].
void tconv_backward_weights(const OpDesc& op, int batch, const float* x, const float* dy, float* dw,
                            float* db);

// y[N][C][P][Q] = max over the in-range cells of the K×K window at (p*s - pad_top,
// q*s - pad_left); padded cells never win.
void maxpool_forward(const OpDesc& op, int batch, const float* x, float* y);
// dx[N][C][H][W]: each dy goes to its window's argmax in x (the first maximum in row-major scan
// order on ties), summed where windows overlap.
void maxpool_backward(const OpDesc& op, int batch, const float* x, const float* dy, float* dx);

// Nearest resize, TF1 map: source index of destination index dst on an axis of in -> out cells.
int resize_source(int dst, int in, int out);
// y[N][C][P][Q] = x[n][c][resize_source(p, H, P)][resize_source(q, W, Q)].
void resize_forward(const OpDesc& op, int batch, const float* x, float* y);
// dx[N][C][H][W] = sum of the dy cells whose source is that cell.
void resize_backward(const OpDesc& op, int batch, const float* dy, float* dx);

// Element-wise over n values; the backward passes take the forward output y, not its input.
// relu: y = max(x, 0), dx = dy * [y > 0].
void relu_forward(std::size_t n, const float* x, float* y);
void relu_backward(std::size_t n, const float* y, const float* dy, float* dx);
// sigmoid: y = 1 / (1 + exp(-x)), dx = dy * y * (1 - y).
void sigmoid_forward(std::size_t n, const float* x, float* y);
void sigmoid_backward(std::size_t n, const float* y, const float* dy, float* dx);
#ifdef CAE_TOY_OP
// y = tanh(x); dx = dy (1 - y^2), from the output.
void tanh_forward(std::size_t n, const float* x, float* y);
void tanh_backward(std::size_t n, const float* y, const float* dy, float* dx);
#endif

// Joins of x[N][C][H][W] (the previous op's output) and y[N][D][H][W] (an earlier activation).
// concat: z[N][C+D][H][W] = [x ; y] per image, x's channels first; backward splits dz back.
void concat_forward(const OpDesc& op, int batch, const float* x, const float* y, float* z);
void concat_backward(const OpDesc& op, int batch, const float* dz, float* dx, float* dy);
// add: z = x + y; sub: z = y - x. Over n values; backward dx = ±dz, dy = dz.
void add_forward(std::size_t n, const float* x, const float* y, float* z);
void sub_forward(std::size_t n, const float* x, const float* y, float* z);
void add_backward(std::size_t n, const float* dz, float* dx, float* dy);
void sub_backward(std::size_t n, const float* dz, float* dx, float* dy);

// Batch normalisation with the batch's statistics, over x[N][C][H][W] (op.in == op.out):
// mean[c] and var[c] (biased) over N, H, W; y = scale[c] (x - mean[c]) / sqrt(var[c] + eps)
// + shift[c], eps = kBatchNormEpsilon. No activation. Writes mean and var.
void batchnorm_forward(const OpDesc& op, int batch, const float* x, const float* scale,
                       const float* shift, float* y, float* mean, float* var);
// dx, dscale[C] and dshift[C] of batchnorm_forward (the statistics' own dependence on x
// included) from x, dy, scale and the forward's mean and var.
void batchnorm_backward(const OpDesc& op, int batch, const float* x, const float* dy,
                        const float* scale, const float* mean, const float* var, float* dx,
                        float* dscale, float* dshift);


}  // namespace cae::ops::ref
