// A run's state between epochs: checkpoint.cae (weights, optimizer state, epoch, the settings a
// resume must repeat, the history) and the history's CSV text (losses.csv).
#pragma once

#include <string>
#include <vector>

#include "nn/model.h"
#include "nn/optimizer.h"
#include "ops/ops.h"
#include "train/trainer.h"

namespace cae::train {

// The CSV text of a run's history (header + one row per epoch); the validation columns
// (val_loss, val_bce, val_psnr_noisy, val_psnr_output) follow the others when a row is validated.
std::string history_csv(const std::vector<EpochStats>& history);
// Requires history_csv's text (losses.csv, a checkpoint's meta "history"). Ensures its rows (the
// stats it does not hold are 0; validated when it has the validation columns); throws
// cae::Error on a malformed row.
std::vector<EpochStats> parse_history(const std::string& csv);

// A run's state after an epoch, besides weights and optimizer.
struct Checkpoint {
  int epoch = 0;  // the last completed epoch
  LrState lr_state;  // the schedule's state after that epoch
  BestVal best_val;  // with a validation split
  std::vector<EpochStats> history;
};

// Ensures path holds, atomically, model with exec's parameters, opt's state, state's epoch, the
// settings of config a resume must repeat (meta "patches" only for patch training), the
// schedule's state (meta "lr_schedule" and "lr_state", only when the schedule is not constant),
// the best validation loss (meta "best_val", only once there is one) and the history.
void write_checkpoint(const std::string& path, const nn::Model& model, ops::Executor& exec,
                      nn::Optimizer& opt, const TrainConfig& config, const Checkpoint& state);

// Requires a checkpoint of model's architecture, input and loss, written with config's batch,
// seed, optimizer, learning rate, momentum, corruption, patches and lr schedule (none in the
// checkpoint: constant). Ensures model, exec and opt hold its state and returns its epoch, the
// schedule's state, the best validation loss and history; throws cae::Error naming what differs
// otherwise.
Checkpoint read_checkpoint(const std::string& path, nn::Model& model, ops::Executor& exec,
                           nn::Optimizer& opt, const TrainConfig& config);

}  // namespace cae::train
