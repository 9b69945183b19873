// The running statistics of batch normalisation, moved once per optimizer step.
//
// Each pass's backward() leaves its batch mean and unbiased variance in the gradient slots of
// the running statistics (ops::Executor::statistics_ranges). Summed like gradients, across a
// batch's micro-batches in the gradient tree and across ranks by the communicator, they reach
// the step as the sum of `passes` statistics: their mean is what the step moves the running
// statistics toward, so one process and any number of ranks of the same batch agree bit for bit.
// The normalisation itself uses each micro-batch's own statistics (with micro-batches of 50 of a
// batch of 200, the statistics of 50 images, as PyTorch's gradient accumulation does).
#pragma once

#include <span>
#include <vector>

#include "ops/ops.h"

namespace cae::train {

// Requires params and grads of one executor, ranges its statistics_ranges(), grads holding there
// the sum of `passes` batch statistics. Ensures running = (1 - m) running + m sum / passes with
// m = ops::kBatchNormMomentum in params, and those grads zero, so that the optimizer step leaves
// the running statistics as they are (Adam and SGD move a parameter whose gradient was always
// zero by exactly nothing).
void fold_batch_statistics(const std::vector<ops::Executor::FlatRange>& ranges,
                           std::span<float> params, std::span<float> grads, int passes);

}  // namespace cae::train
