#include "train/batch_statistics.h"

namespace cae::train {

void fold_batch_statistics(const std::vector<ops::Executor::FlatRange>& ranges,
                           std::span<float> params, std::span<float> grads, int passes) {
  const float m = ops::kBatchNormMomentum, keep = 1.f - m, per_pass = 1.f / float(passes);
  for (const ops::Executor::FlatRange& range : ranges)
    for (std::size_t i = range.offset; i < range.offset + range.size; ++i) {
      params[i] = keep * params[i] + m * (grads[i] * per_pass);
      grads[i] = 0.f;
    }
}

}  // namespace cae::train
