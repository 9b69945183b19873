#include "train/gradient_sum.h"

#include <algorithm>

#include "cae/error.h"

namespace cae::train {

GradientSum::GradientSum(std::size_t size) : size_(size) {
  if (size == 0) throw Error("GradientSum: empty gradient buffer");
}

void GradientSum::add(std::span<const float> grads) {
  if (grads.size() != size_)
    throw Error("GradientSum::add: " + std::to_string(grads.size()) + " gradients, expected " +
                std::to_string(size_));
  std::vector<float> leaf;
  if (!spare_.empty()) {
    leaf = std::move(spare_.back());
    spare_.pop_back();
  }
  leaf.assign(grads.begin(), grads.end());
  levels_.push_back({0, std::move(leaf)});
  // Two subtrees of the same height become one (the older on the left).
  while (levels_.size() >= 2 && levels_[levels_.size() - 2].level == levels_.back().level) {
    Node newer = std::move(levels_.back());
    levels_.pop_back();
    Node& older = levels_.back();
    for (std::size_t i = 0; i < size_; ++i) older.sum[i] += newer.sum[i];
    ++older.level;
    spare_.push_back(std::move(newer.sum));
  }
}

void GradientSum::fold_into(std::span<float> range, std::size_t offset) const {
  if (offset + range.size() > size_)
    throw Error("GradientSum::fold_into: range past the gradient buffer");
  // The last pass joins the youngest subtree first, then each older one.
  for (auto node = levels_.rbegin(); node != levels_.rend(); ++node) {
    const float* s = node->sum.data() + offset;
    for (std::size_t i = 0; i < range.size(); ++i) range[i] = s[i] + range[i];
  }
}

}  // namespace cae::train
