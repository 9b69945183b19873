// Nearest-neighbour resize with TensorFlow 1's index map, src = min(floor(dst * in / out), in - 1),
// run directly on the layouts oneDNN picks for activations. oneDNN's own resampling uses another
// map (4 -> 7 differs), so this kernel replaces it.
//
// Every layout it takes is viewed as [n][cb][h][w][ci] with ci contiguous: plain nchw is
// (cb = C, ci = 1), nhwc is (cb = 1, ci = C), blocked nChw16c is (cb = C/16 rounded up, ci = 16).
#pragma once

#include <cstddef>
#include <vector>

namespace cae::ops::dnnl_backend {

// A 4-D activation as [n][cb][h][w][ci]; strides in floats, ci has stride 1.
struct BlockedView {
  int n = 0, cb = 0, h = 0, w = 0, ci = 0;
  std::ptrdiff_t stride_n = 0, stride_cb = 0, stride_h = 0, stride_w = 0;
};

// One resize, its index maps precomputed so the hot loops only gather.
struct ResizePlan {
  BlockedView src, dst;
  std::vector<int> src_row, src_col;  // per dst row / column: the source row / column
};

// Requires src and dst to agree on n, cb and ci. Ensures the plan maps dst cells to src cells with
// the TF1 floor map.
ResizePlan make_resize_plan(const BlockedView& src, const BlockedView& dst);

// dst[n][cb][y][x][i] = src[n][cb][src_row[y]][src_col[x]][i] for every cell, padding lanes too.
void resize_forward(const ResizePlan& plan, const float* src, float* dst);

// Ensures diff_src (overwritten) holds, in each source cell, the sum of the diff_dst cells that
// read it; summation order is fixed, so results do not depend on the thread count.
void resize_backward(const ResizePlan& plan, const float* diff_dst, float* diff_src);

}  // namespace cae::ops::dnnl_backend
