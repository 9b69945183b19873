// The sum of a batch's micro-batch gradients, taken pairwise in a fixed binary tree over the
// passes' order, so that the sum does not depend on how the batch is split across processes.
//
// Why a tree: Adam divides each gradient by its own running magnitude, so where a weight's
// gradient is near its rounding error (a sum that almost cancels) a change in the last bits
// becomes a change of the step itself, of up to the learning rate. One process summing four
// passes in a row, ((g0 + g1) + g2) + g3, and two ranks summing two each and then each other's,
// (g0 + g1) + (g2 + g3), round differently, and that was enough to move a weight by 3e-4 in six
// steps. In a tree, each rank's passes form a subtree: two ranks (any allreduce adds their two
// partial sums in one commutative addition) reach one process's sum bit for bit whenever the
// passes per rank are a power of two, as the seed's defaults are (4 passes of 50, or 2 per rank).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace cae::train {

class GradientSum {
 public:
  // Requires size > 0: the length of the gradient buffer.
  explicit GradientSum(std::size_t size);

  // Forgets the passes added so far (a new batch).
  void clear() { levels_.clear(); }

  // Requires grads.size() == size. Adds a pass that is not the batch's last one.
  void add(std::span<const float> grads);

  // Requires offset + range.size() <= size. Makes range, the [offset, offset + size) part of the
  // batch's last pass, the tree's sum of all passes there, in place. May be called range by
  // range while the last pass's backward runs, or once for the whole buffer: the same values.
  void fold_into(std::span<float> range, std::size_t offset) const;

 private:
  struct Node {
    int level;                 // the subtree holds 2^level passes
    std::vector<float> sum;
  };
  std::size_t size_;
  std::vector<Node> levels_;   // a binary counter: levels strictly decreasing from the front
  std::vector<std::vector<float>> spare_;  // buffers kept for the next batch
};

}  // namespace cae::train
