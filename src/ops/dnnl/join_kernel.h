// The joins of skip connections (concat along channels, add, sub) on the layouts oneDNN picks for
// activations, and the sum of a skip's gradient into the chain's. Every kernel overwrites its
// outputs, except accumulate, which adds.
#pragma once

#include <cstddef>

#include "ops/dnnl/resize_kernel.h"

namespace cae::ops::dnnl_backend {

// z = [x ; y] along channels, each viewed as [n][cb][h][w][ci]. Requires the same n, h, w and
// ci, and z.cb == x.cb + y.cb: x's channel count a whole number of blocks, so y's blocks start
// on a block of z.
struct ConcatPlan {
  BlockedView x, y, z;
};

// Whether concat_forward can run on these views (see ConcatPlan).
bool concat_fits(const BlockedView& x, const BlockedView& y, const BlockedView& z);

void concat_forward(const ConcatPlan& plan, const float* x, const float* y, float* z);
// dx and dy are the blocks of dz that came from x and from y.
void concat_backward(const ConcatPlan& plan, const float* dz, float* dx, float* dy);

// Over n floats of one layout: add z = x + y, sub z = y - x (sign = -1: z = y + sign * x).
void add_forward(std::size_t n, float sign, const float* x, const float* y, float* z);
// dx = sign * dz, dy = dz.
void add_backward(std::size_t n, float sign, const float* dz, float* dx, float* dy);
// y += x: a skip's gradient into the chain's, same layout.
void accumulate(std::size_t n, const float* x, float* y);

}  // namespace cae::ops::dnnl_backend
