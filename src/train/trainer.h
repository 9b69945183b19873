// The training loop: shuffled epochs of (corrupted, clean) batches, one optimizer step per batch,
// a test (and validation) evaluation, a CSV row and an atomic checkpoint after every epoch, and
// resume from that checkpoint to the same weights an uninterrupted run reaches. Patch training
// draws each epoch's images as crops of whole images (data/patches.h) and then runs the same
// steps, so resume and data-parallel equivalence hold for it as they do for fixed-size data.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/patches.h"
#include "dist/communicator.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "ops/ops.h"
#include "train/evaluation.h"
#include "train/lr_schedule.h"

namespace cae::train {

struct TrainConfig {
  int epochs = 100;
  int batch = 200;
  // Images per forward/backward pass: each batch (each rank's share of it) runs as passes of
  // micro_batch images, their gradients summed before the one optimizer step, so the step is
  // the whole batch's up to float summation order, with the executor's activation memory of
  // micro_batch images. Must divide the share. 0: default_micro_batch(share).
  int micro_batch = 0;
  nn::OptimizerConfig optimizer;  // Adam, lr 1e-3
  // The lr of each epoch from optimizer.lr (lr_schedule.h); constant by default. Plateau reads
  // the validation loss when the data has a validation split, else the test loss.
  LrSchedule lr_schedule;
  data::Corruption corruption;    // Gaussian, sigma 0.5
  std::uint64_t seed = 0;
  ops::Backend backend = ops::Backend::dnnl;
  // How the backend builds the run's executors (training, and inference for scoring): the
  // caller's, as the edge read them (executor_options_from_environment() for the cae program and
  // the Python module); the library's defaults (the fixed kernel rules) otherwise.
  ops::ExecutorOptions executor{};
  // Patch training, for data of whole images (data::Dataset::whole()): each epoch's images are
  // crops drawn anew from the training images (data/patches.h), the model's input their size;
  // validation and test score whole images through the tiler. Off (h = w = 0) by default.
  data::PatchOptions patches;
  // With a validation split: stop once the validation loss has not improved on its best for
  // this many epochs; 0: never. (best.cae, the lowest validation loss's model, is kept anyway.)
  int patience = 0;
  // Stop before an epoch that would end past this many seconds of this process's run (judged by
  // the last epoch's length; the first epoch always runs); 0: no limit. For jobs with a time
  // budget: the epochs then depend on the machine's speed, each epoch's weights still on nothing
  // else (the model file records the epochs trained).
  double time_limit_seconds = 0;
  std::string out_dir;  // checkpoint.cae, model.cae, losses.csv (best.cae) go here
  bool resume = false;  // continue from out_dir/checkpoint.cae
  // Data-parallel training (docs/distributed.md): the ranks of comm split every batch of `batch`
  // images evenly, add their gradients, and take the same optimizer step; rank 0 alone writes
  // files. Null: one process. Not owned.
  dist::Communicator* comm = nullptr;
  // Start summing each layer's gradients as backward() finishes it; false: after backward().
  bool overlap_grads = true;
};

// The micro-batch of a run that names none, for a rank's share of a batch. On the host backends
// the largest divisor of share from 16 to 50, else share itself: passes of 50 run the seed
// 1.1-1.2x faster than one pass of 200 on the reference machine (their activations stay in
// cache) and hold a quarter of the activations; below 16, oneDNN's kernels lose more than that.
// On cuda the whole share, one pass a batch: the fused device steps (fused_epoch.h) need that.
int default_micro_batch(int share, ops::Backend backend = ops::Backend::dnnl);

// The micro-batch the run takes: config.micro_batch, else default_micro_batch of its share.
int micro_batch_of(const TrainConfig& config, int ranks);

// Whether train() offers each epoch to the backend's fused steps (fused_epoch.h): one pass a
// batch, one process (a fused epoch has no place to sum gradients) and inputs that are the
// damaged images alone (host_inputs: targets, or an informed model's mask channel, are made on
// the host).
bool offers_fused_epochs(const TrainConfig& config, int ranks, bool host_inputs);

// The images each epoch draws its batches from: the epoch's patches when config.patches is on
// (data/patches.h's count), else data.train's.
int epoch_images(const TrainConfig& config, const data::Dataset& data);

// Requires nothing. Ensures train() can start this run on this data with `ranks` ranks (see
// train() for what it refuses) and returns its micro-batch; throws cae::Error saying why not.
// For callers that want to refuse a run before saying anything about it.
int check_run(const nn::Model& model, const data::Dataset& data, const TrainConfig& config,
              int ranks);

// The validation loss's best so far, which best.cae holds and --patience counts from; recorded in
// checkpoints, exactly, so that a resumed run takes the same decisions.
struct BestVal {
  double loss = std::numeric_limits<double>::infinity();
  int epoch = 0;  // 0: none yet
};

// True when patience > 0 and `epoch` is at least patience epochs past best.epoch.
bool patience_spent(int patience, const BestVal& best, int epoch);

struct EpochStats {
  int epoch = 0;  // 1-based
  double train_loss = 0;  // mean of the epoch's batch losses
  EvalStats test;
  bool validated = false;  // the run has a validation split, scored in val
  EvalStats val;
  double seconds = 0;
  double images_per_second = 0;  // training steps only
  double lr = 0;  // the epoch's learning rate (0 in rows read back from a history's CSV)
};

// What the loop reports; the CLI draws it. Defaults ignore everything.
class Progress {
 public:
  virtual ~Progress() = default;
  virtual void on_start(int /*first_epoch*/, int /*epochs*/, int /*batches_per_epoch*/) {}
  virtual void on_batch(int /*epoch*/, int /*batch*/, int /*batches*/, double /*loss*/,
                        double /*images_per_second*/) {}
  virtual void on_epoch(const EpochStats&) {}
  // How the training executor's conv kernels were chosen (dnnl backend; ops::kernel_choice_line),
  // and the milliseconds spent measuring them (0: fixed rules, or every choice cached).
  virtual void on_kernels(const std::string& /*line*/, double /*measuring_ms*/) {}
};

// Trains model in place on data.train, or on each epoch's patches of data.train_whole (the
// tutorial's way: n / batch full batches per epoch, the remainder of the shuffled order unused;
// for paired data, from each image to its target), evaluates on the test (and validation) split
// after each epoch (evaluation.h), writes checkpoint.cae (checkpoint.h), losses.csv, best.cae
// (with a validation split: whenever its loss is the lowest so far) and finally model.cae into
// config.out_dir; stops early once config.patience is spent. Returns every epoch's stats,
// resumed history included. Throws cae::Error on divergence (NaN/Inf loss, naming epoch and
// step; the last checkpoint stays), on a checkpoint that does not match the run, and on data
// that does not fit the run (patch training without whole images, an image smaller than the
// patch, patience without a validation split), and on a schedule whose floor is not below
// config.optimizer.lr (check_lr_schedule).
std::vector<EpochStats> train(nn::Model& model, const data::Dataset& data,
                              const TrainConfig& config, Progress& progress);

}  // namespace cae::train
