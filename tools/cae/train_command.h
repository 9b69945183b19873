// cae train's options and its run, shared by the cae program (cmd_train.cpp) and the Python
// module's cae.train() (python/train.cpp): one parser, so that both take the same options with
// the same defaults and the same checks, and one run, so that both give the same weights.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "dist/communicator.h"
#include "train/trainer.h"

namespace cae::cli {

struct TrainOptions {
  CommonOptions common;
  DataOptions data;
  CorruptionOptions corruption;
  train::TrainConfig config;
  std::string preset = "seed", spec, loss = "bce", optimizer = "adam";
  std::string lr_schedule = "constant";  // --lr-schedule text (train/lr_schedule.h)
  std::string patch, augment = "none";   // --patch HxW|N, --augment (data/patches.h)
  int patches_per_epoch = 0;             // 0: data/patches.h's default
  int limit = 0, test_limit = 0;
  bool sync_grads = false;
  bool informed = false;  // --informed: the damage mask is an input channel (nn::Model::informed)
  std::string fill;       // --fill: the inpainter an informed model corrects (train/fill.h)
  double time_limit_minutes = 0;  // --time-limit (TrainConfig::time_limit_seconds)
  TrainOptions() { config.out_dir = "runs/seed"; }
};

// Registers every option of `cae train` on cmd, parsing into o (which must outlive the parse).
void add_train_options(CLI::App* cmd, TrainOptions& o);

// What a run says besides its files.
struct TrainLog {
  bool lines = true;  // rank 0: the start line and the end's summary on stderr
  bool json = true;   // rank 0: metrics.json's text on stdout too
};

struct TrainOutcome {
  std::vector<train::EpochStats> history;  // every epoch, resumed ones included
  std::string metrics_json;                // what metrics.json holds (rank 0)
};

// Requires options as add_train_options parsed them. Ensures one rank's part of the run (the
// whole run for a single-process comm): the model built from the preset or spec, trained on
// `given` (or, when null, the dataset the options name), its files and metrics.json written by
// rank 0, progress told what the loop reports. Throws cae::Error on any failure; an exception
// thrown by progress stops the run where it is, leaving the last epoch's checkpoint.
TrainOutcome run_training(TrainOptions& o, dist::Communicator& comm, train::Progress& progress,
                          const data::Dataset* given = nullptr, TrainLog log = {});

// The CLI's progress display: a live bar on a terminal, one line per epoch otherwise.
std::unique_ptr<train::Progress> make_console_progress();

}  // namespace cae::cli
