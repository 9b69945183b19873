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

// The CSV text of a run's history (header + one row per epoch).
std::string history_csv(const std::vector<EpochStats>& history);
// Requires history_csv's text (losses.csv, a checkpoint's meta "history"). Ensures its rows (the
// test stats it does not hold are 0); throws cae::Error on a malformed row.
std::vector<EpochStats> parse_history(const std::string& csv);

struct Checkpoint {
  int epoch = 0;  // the last completed epoch
  LrState lr_state;  // the schedule's state after that epoch
  std::vector<EpochStats> history;
};

// Ensures path holds, atomically, model with exec's parameters, opt's state, the epoch, the
// settings of config a resume must repeat, the schedule's state after the epoch (meta
// "lr_schedule" and "lr_state", only when the schedule is not constant) and history.
void write_checkpoint(const std::string& path, const nn::Model& model, ops::Executor& exec,
                      nn::Optimizer& opt, const TrainConfig& config, int epoch,
                      const LrState& lr_state, const std::vector<EpochStats>& history);

// Requires a checkpoint of model's architecture, input and loss, written with config's batch,
// seed, optimizer, learning rate, momentum, corruption and lr schedule (none in the checkpoint:
// constant). Ensures model, exec and opt hold its state and returns its epoch, the schedule's
// state and history; throws cae::Error naming what differs otherwise.
Checkpoint read_checkpoint(const std::string& path, nn::Model& model, ops::Executor& exec,
                           nn::Optimizer& opt, const TrainConfig& config);

}  // namespace cae::train
