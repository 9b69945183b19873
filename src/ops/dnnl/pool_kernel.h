// Max pooling with the ref backend's semantics (the first maximum of each window in row-major
// order wins; padding cells take no part), run directly on the layouts oneDNN picks for
// activations (BlockedView, resize_kernel.h), in place of oneDNN's pooling primitives where
// ExecutorOptions::own_maxpool chooses ours.
//
// Forward writes the max and, per output value, the window position that won (one byte: ky *
// kernel + kx). Backward hands each pooled gradient to that position, so it reads the pooled
// gradient and the bytes only, never the input. Where the pool applies the ReLU of the conv
// before (relu_by_pool_rewrite), forward marks the windows whose max is not > 0 (kMasked), and
// backward passes them nothing: the ReLU backward that oneDNN's path runs as a step of its own
// is folded in. Where the windows tile the input exactly (stride == kernel, as in the seed's 2x2
// pools), backward writes each input cell once, the zeros included; elsewhere it clears each
// image plane first and adds the windows' shares in a fixed order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/isa.h"
#include "ops/dnnl/resize_kernel.h"

namespace cae::ops::dnnl_backend {

// The window position of a masked output: backward gives its window no gradient.
inline constexpr std::uint8_t kMasked = 255;

struct PoolPlan {
  BlockedView src, dst;
  int kernel = 0, stride = 0, pad_top = 0, pad_left = 0;
  bool relu_mask = false;   // forward marks windows whose max is not > 0 (the ReLU before)
  bool tiles = false;       // the windows cover every input cell exactly once
  Isa isa = Isa::baseline;  // the tier the kernels run on: the CPU's, under the cap
  int lanes = 4;            // the vector width of that tier's kernel for this layout
};

// Whether our kernel takes this pool: a kernel of at most 15 x 15 (positions fit a byte below
// kMasked), pads below the kernel, at least one input cell in every window.
bool pool_kernel_fits(int kernel, int stride, int pad_top, int pad_left, int in_h, int in_w,
                      int out_h, int out_w);

// Requires src and dst to agree on n, cb and ci, and pool_kernel_fits (throws cae::Error
// otherwise). Runs on the tier of cpu_isa() (core/isa.h): 16 lanes where ci is a multiple of 16
// on AVX-512, else 8 where ci is a multiple of 8 on AVX2 or above, else 4 with a scalar rest.
PoolPlan make_pool_plan(const BlockedView& src, const BlockedView& dst, int kernel, int stride,
                        int pad_top, int pad_left, bool relu_mask);

// The bytes of the window positions forward writes: one per dst value, padding lanes included,
// packed as [n][cb][h][w][ci].
std::size_t pool_positions_bytes(const PoolPlan& plan);

// dst = the max of each window, positions = where it was (kMasked where relu_mask and the max is
// not > 0).
void maxpool_forward(const PoolPlan& plan, const float* src, float* dst, std::uint8_t* positions);

// diff_src (overwritten, in plan.src's layout) = each window's diff_dst at the position forward
// chose, 0 elsewhere; summation order is fixed, so results do not depend on the thread count.
void maxpool_backward(const PoolPlan& plan, const float* diff_dst, const std::uint8_t* positions,
                      float* diff_src);

}  // namespace cae::ops::dnnl_backend
