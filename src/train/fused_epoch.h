// Training epochs through the executor's fused steps (ops.h, Executor::fused_begin): a backend
// on a device runs noise, forward, loss, backward and Adam there, while the host prepares the
// next batch. The trainer hands an epoch here first and runs its own loop when this declines.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "ops/ops.h"
#include "train/trainer.h"

namespace cae::train {

struct StepTotals {
  double loss_sum = 0;  // sum of the batches' mean losses
  double seconds = 0;   // wall time of the steps
};

// Requires exec built for model at config.batch images and opt the run's optimizer over
// exec->params(); order the epoch's shuffled image indices. When the backend has fused steps and
// the run allows them (Adam, one process), runs the epoch's n / batch batches through them (the
// noise keyed as the host's would be: seed, epoch, image position) and returns true with opt's
// state and step count advanced; otherwise returns false having done nothing. Each batch is
// reported to progress one step late (a step's loss is read when the next one is queued).
// Throws cae::Error naming the epoch and step when a loss is not finite.
bool run_fused_epoch(ops::Executor& exec, nn::Optimizer& opt, const nn::Model& model,
                     const data::ImageSet& train, const std::vector<int>& order,
                     const TrainConfig& config, int epoch, Progress& progress,
                     const std::string& checkpoint_path, StepTotals& totals);

}  // namespace cae::train
