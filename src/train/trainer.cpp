#include "train/trainer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <sstream>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "io/model_file.h"
#include "ops/dnnl/kernel_choice.h"
#include "train/batch_statistics.h"
#include "train/checkpoint.h"
#include "train/evaluation.h"
#include "train/fill.h"
#include "train/fused_epoch.h"
#include "train/gradient_sum.h"

namespace cae::train {

int default_micro_batch(int share, ops::Backend backend) {
  if (backend == ops::Backend::cuda) return share;
  for (int d = std::min(share, 50); d >= 16; --d)
    if (share % d == 0) return d;
  return share;
}

int micro_batch_of(const TrainConfig& config, int ranks) {
  return config.micro_batch > 0 ? config.micro_batch
                                : default_micro_batch(config.batch / ranks, config.backend);
}

bool offers_fused_epochs(const TrainConfig& config, int ranks, bool host_inputs) {
  return ranks == 1 && micro_batch_of(config, ranks) == config.batch && !host_inputs;
}

int epoch_images(const TrainConfig& config, const data::Dataset& data) {
  return config.patches.on()
             ? data::patches_per_epoch(data.train_whole, config.patches, config.batch)
             : data.train.n;
}

bool patience_spent(int patience, const BestVal& best, int epoch) {
  return patience > 0 && epoch - best.epoch >= patience;
}

namespace {

// Requires nothing. Ensures the data and the model fit the run's patches: whole images and a
// model of the patch size for patch training, images of the model's input otherwise.
void check_patches(const nn::Model& model, const data::Dataset& data, const TrainConfig& config) {
  const data::PatchOptions& p = config.patches;
  if (p.on() != data.whole())
    throw Error(p.on() ? "patch training needs images kept whole (a folder of images, such as "
                         "--dataset photos or DIR), and " +
                             data.name + " has none"
                       : data.name +
                             " holds whole images of any size: train on patches of them "
                             "(--patch N)");
  const ops::Dims dims = p.on() ? ops::Dims{data.channels(), p.h, p.w} : data.dims();
  if (!(dims == model.output()))  // an informed model's input adds the mask's channel
    throw Error(std::string(p.on() ? "the patches (" : "the data's images (") +
                std::to_string(dims.h) + "x" + std::to_string(dims.w) + "x" +
                std::to_string(dims.c) + ") do not match the model's " +
                (model.informed() ? "output" : "input"));
  if (p.on()) data::check_patch_sources(data.train_whole, p);
}

}  // namespace

int check_run(const nn::Model& model, const data::Dataset& data, const TrainConfig& config,
              int ranks) {
  check_patches(model, data, config);
  require_damage_mask(model, config.corruption);
  if (model.informed() && data.paired())
    throw Error("an informed model learns from damage cae makes, not from given targets");
  const int images = epoch_images(config, data);
  const char* what = config.patches.on() ? " patches per epoch" : " training images";
  if (config.batch < 1 || config.batch > images)
    throw Error("batch size " + std::to_string(config.batch) + " needs 1 to " +
                std::to_string(images) + what);
  if (config.patience < 0) throw Error("patience must be 0 (off) or more");
  if (config.patience > 0 && !data.has_val())
    throw Error("patience " + std::to_string(config.patience) +
                " needs a validation split (an image folder's val/), and " + data.name +
                " has none");
  if (config.epochs < 1) throw Error("epochs must be at least 1");
  check_lr_schedule(config.lr_schedule, config.optimizer.lr);
  data::check_dataset(data);
  if (config.batch % ranks != 0)
    throw Error("batch size " + std::to_string(config.batch) + " does not split evenly across " +
                std::to_string(ranks) + " ranks: use a multiple of " + std::to_string(ranks));
  const int local_batch = config.batch / ranks;
  const int micro = micro_batch_of(config, ranks);
  if (micro > local_batch || local_batch % micro != 0)
    throw Error("micro-batch " + std::to_string(micro) + " does not divide the " +
                std::to_string(local_batch) + " images of a batch" +
                (ranks > 1 ? " that each rank runs" : "") + ": use a divisor of " +
                std::to_string(local_batch));
  return micro;
}

namespace {

using Clock = std::chrono::steady_clock;

// The first piece of training state holding a NaN or Inf ("weights", "optimizer state"), or
// nullptr when all is finite.
const char* non_finite_state(ops::Executor& exec, nn::Optimizer& opt) {
  auto finite = [](std::span<const float> values) {
    for (float x : values)
      if (!std::isfinite(x)) return false;
    return true;
  };
  if (!finite(exec.params())) return "weights";
  for (const auto& slot : opt.slots())
    if (!finite(slot)) return "optimizer state";
  return nullptr;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}


void broadcast_floats(dist::Communicator& comm, std::span<float> data) {
  comm.broadcast(std::as_writable_bytes(data));
}

// Ranks must agree on what they train, or their collective calls stop matching: the same data
// sizes, and the same parameter layout, as they add gradients element by element in it (oneDNN
// picks blocked layouts by CPU, so hosts with different instruction sets may differ). A flat
// buffer made from canonical tensors that hold their own index shows the layout.
void check_ranks_agree(const nn::Model& model, ops::Executor& exec, const data::Dataset& data,
                       dist::Communicator& comm) {
  std::vector<std::vector<float>> probe = model.params();
  std::uint32_t index = 0;
  for (auto& tensor : probe)
    for (float& x : tensor) x = float(++index % 16777216u);  // exact in a float
  std::vector<float> flat(exec.params().size());
  exec.from_canonical(probe, flat);
  std::uint64_t layout = 1469598103934665603ull ^ flat.size();  // FNV-1a over the floats' bits
  for (float x : flat) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    layout = (layout ^ bits) * 1099511628211ull;
  }
  const std::uint64_t mine[4] = {std::uint64_t(data.train_count()),
                                 std::uint64_t(data.test_count()), std::uint64_t(data.val_count()),
                                 layout};
  std::uint64_t rank0[4] = {mine[0], mine[1], mine[2], mine[3]};
  comm.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(rank0)));
  const std::string who = "rank " + std::to_string(comm.rank());
  const char* const splits[3] = {" training", " test", " validation"};
  for (int k = 0; k < 3; ++k)
    if (mine[k] != rank0[k])
      throw Error(who + " has " + std::to_string(mine[k]) + splits[k] + " images, rank 0 has " +
                  std::to_string(rank0[k]) + ": every host needs the same dataset");
  if (mine[3] != rank0[3])
    throw Error(who + " lays out the parameters unlike rank 0 (hosts with different CPUs?); "
                "data-parallel training needs the same layout on every rank: try --backend ref");
}

// Makes every rank hold rank 0's parameters and optimizer state. Ranks that add the same sums
// take the same steps, but an MPI sum over more than two ranks need not round alike on each:
// sharing once an epoch keeps them from drifting apart, and rank 0's copy is the one saved.
void share_weights(dist::Communicator& comm, ops::Executor& exec, nn::Optimizer& opt) {
  broadcast_floats(comm, exec.params());
  for (auto& slot : opt.slots()) broadcast_floats(comm, slot);
}

// What the epochs of one run share: its parts, and its state between epochs.
struct Run {
  nn::Model& model;
  const data::Dataset& data;
  const TrainConfig& config;
  ops::Executor& exec;
  nn::Optimizer& opt;
  dist::Communicator& comm;
  std::string checkpoint_path;
  Checkpoint state;  // after the last completed epoch
};

// Makes every rank hold rank 0's parameters, optimizer state, position, schedule state, best
// validation loss and history.
void share_state(Run& run) {
  dist::Communicator& comm = run.comm;
  Checkpoint& state = run.state;
  share_weights(comm, run.exec, run.opt);
  double values[5] = {state.lr_state.best, double(state.lr_state.since), state.lr_state.lr,
                      state.best_val.loss, double(state.best_val.epoch)};
  comm.broadcast(std::as_writable_bytes(std::span<double>(values)));
  state.lr_state = {values[0], int(values[1]), values[2]};
  state.best_val = {values[3], int(values[4])};
  std::int64_t counters[3] = {state.epoch, run.opt.steps(), 0};
  std::string csv = history_csv(state.history);
  counters[2] = std::int64_t(csv.size());
  comm.broadcast(std::as_writable_bytes(std::span<std::int64_t>(counters)));
  state.epoch = int(counters[0]);
  run.opt.set_steps(counters[1]);
  csv.resize(std::size_t(counters[2]));
  comm.broadcast(std::as_writable_bytes(std::span<char>(csv)));
  if (comm.rank() != 0) state.history = parse_history(csv);
}

// One optimizer step of a whole batch. Each rank runs its share of the batch (images
// [rank, rank + 1) * share of it) as passes of `micro` images; the passes' gradients are summed
// in the tree that makes ranks agree (gradient_sum.h), then across ranks (during the last pass's
// backward where the backend announces finished ranges), and the optimizer steps.
class BatchStep {
 public:
  // data: what the steps draw from (run.data, or an epoch's patches of it).
  BatchStep(Run& run, const data::Dataset& data, int micro)
      : run_(run),
        data_(data),
        micro_(micro),
        passes_(run.config.batch / run.comm.size() / micro),
        earlier_(run.exec.grads().size()),
        statistics_(run.exec.statistics_ranges()) {
    const nn::Model& model = run.model;
    const TrainConfig& config = run.config;
    ops::Executor& exec = run.exec;
    dist::Communicator& comm = run.comm;
    const std::size_t n = std::size_t(micro) * model.output().size();  // of images
    clean_.resize(n);
    noisy_.resize(n);
    d_out_.resize(n);
    if (data.paired()) input_.resize(n);
    if (model.informed()) {
      mask_.resize(std::size_t(micro) * model.output().h * model.output().w);
      informed_.emplace(model, micro);
    }
    if (comm.size() > 1 && config.overlap_grads)
      exec.set_grads_ready([this](std::span<float> ready) {
        // Earlier passes only add up in `earlier_`; in the last one a range is final once the
        // earlier passes' sum is added to it.
        if (!last_pass_) return;
        earlier_.fold_into(ready, std::size_t(ready.data() - run_.exec.grads().data()));
        run_.comm.start_sum(ready);
        announced_ += ready.size();
      });
  }

  // Requires order the epoch's shuffled indices. Ensures the step of batch b taken; returns the
  // whole batch's mean loss.
  double run(int epoch, int b, const std::vector<int>& order) {
    double loss = 0;  // the mean over this rank's share, then (ranks > 1) the whole batch's
    std::span<float> grads;
    earlier_.clear();
    for (int u = 0; u < passes_; ++u) {
      last_pass_ = u + 1 == passes_;
      loss += pass(epoch, b, u, order) / passes_;
      if (last_pass_ && run_.comm.size() > 1) {
        batch_loss_ = loss / run_.comm.size();
        run_.comm.start_sum(std::span<double>(&batch_loss_, 1));
        announced_ = 0;
      }
      run_.exec.backward(d_out_.data(), nullptr);
      // Taken once: a device backend copies its gradients to the host on each grads() call.
      grads = run_.exec.grads();
      if (!last_pass_)
        earlier_.add(grads);
      else if (announced_ == 0)  // not folded range by range while backward() ran
        earlier_.fold_into(grads, 0);
    }
    if (run_.comm.size() > 1) {
      // Without the overlap, or on a backend that announces no ranges, sum everything now.
      if (announced_ == 0) run_.comm.start_sum(grads);
      run_.comm.wait();
      if (announced_ != 0 && announced_ != grads.size())
        throw Error("the " + std::string(ops::backend_name(run_.config.backend)) +
                    " backend handed " + std::to_string(announced_) + " of " +
                    std::to_string(grads.size()) +
                    " gradient values to the gradient sums during backward()");
      loss = batch_loss_;
    }
    const std::span<float> params = run_.exec.params();
    fold_batch_statistics(statistics_, params, grads, run_.comm.size() * passes_);
    run_.opt.step(params, grads);
    return loss;
  }

 private:
  // Forward and loss of pass u of batch b; leaves the loss gradient, scaled for the sum, in
  // d_out_ and returns the pass's mean loss.
  double pass(int epoch, int b, int u, const std::vector<int>& order) {
    // Noise is keyed by the image's place in the whole batch, so it depends on neither ranks nor
    // micro-batches.
    const std::size_t first =
        std::size_t(b) * run_.config.batch +
        std::size_t(run_.comm.rank()) * (run_.config.batch / run_.comm.size()) +
        std::size_t(u) * micro_;
    // Paired data: the images go in (damaged as set), their targets are what the loss sees.
    data::to_nchw(data_.train_clean(), order.data() + first, micro_, clean_.data());
    if (data_.paired()) data::to_nchw(data_.train, order.data() + first, micro_, input_.data());
    const ops::Dims image = run_.model.output();
    const bool informed = run_.model.informed();
    data::corrupt(run_.config.corruption, data_.paired() ? input_.data() : clean_.data(),
                  noisy_.data(), micro_, image, run_.config.seed, Stream::train_noise,
                  std::uint64_t(epoch), first, informed ? mask_.data() : nullptr);
    run_.exec.forward(informed ? informed_->input(noisy_.data(), mask_.data(), micro_)
                               : noisy_.data());
    // An informed repair keeps the undamaged pixels: its loss is over the damaged ones. With a
    // fill, the net's output is added to it; the loss's gradient is the same for both.
    const double loss = informed
                            ? nn::masked_loss_and_grad(
                                  run_.model.loss(), informed_->output(run_.exec.output(), micro_),
                                  clean_.data(), mask_.data(), micro_, image, d_out_.data())
                            : nn::loss_and_grad(run_.model.loss(), run_.exec.output(),
                                                clean_.data(), clean_.size(), d_out_.data());
    if (!std::isfinite(loss))
      throw Error("training diverged: the loss is " + std::to_string(loss) + " at epoch " +
                  std::to_string(epoch) + ", step " + std::to_string(b + 1) +
                  "; the last good checkpoint is " + run_.checkpoint_path);
    // Each pass's gradient is of its micro-batch's mean loss; scaled by 1/(ranks * passes), they
    // add up to the gradient of the whole batch's mean loss.
    const float weight = 1.f / float(run_.comm.size() * passes_);
    if (weight != 1.f)
      for (float& g : d_out_) g *= weight;
    return loss;
  }

  Run& run_;
  const data::Dataset& data_;
  const int micro_, passes_;
  GradientSum earlier_;                                     // the earlier passes of a batch
  const std::vector<ops::Executor::FlatRange> statistics_;  // batchnorm's running statistics
  std::vector<float> clean_, noisy_, d_out_, input_;
  std::vector<float> mask_;              // an informed model's damage mask
  std::optional<InformedRun> informed_;  // and its input and output
  double batch_loss_ = 0;     // summed across ranks: the whole batch's mean loss
  std::size_t announced_ = 0;  // floats of grads() handed to comm during this backward()
  bool last_pass_ = true;      // of the passes of the current batch
};

// The scores of the current weights on the validation (val) or test split: each rank scores its
// share of the images, and the sums are added across ranks. Whole images go through the tiler,
// images of one size through exec in batches.
EvalStats score(const Run& run, ops::Executor& exec, bool val) {
  const data::Dataset& data = run.data;
  const TrainConfig& config = run.config;
  const int n = val ? data.val_count() : data.test_count();
  const int ranks = run.comm.size(), rank = run.comm.rank();
  const int begin = int(std::int64_t(n) * rank / ranks),
            end = int(std::int64_t(n) * (rank + 1) / ranks);
  const Stream stream = val ? Stream::val_noise : Stream::test_noise;
  EvalSums sums = data.whole()
                      ? evaluate_whole_sums(run.model, exec, val ? data.val_whole : data.test_whole,
                                            begin, end, config.corruption, config.seed, stream)
                      : evaluate_sums(run.model, exec, val ? data.val : data.test,
                                      val ? data.val : data.test_clean(), begin, end,
                                      config.corruption, config.seed, stream);
  run.comm.sum(std::span<double>(sums.v));
  return eval_stats(sums);
}

// The model a run hands back, with the current weights: the model file's content.
nn::Model finished_model(const Run& run) {
  nn::Model model = run.model;
  const TrainConfig& config = run.config;
  model.params() = run.exec.to_canonical(run.exec.params());
  model.meta().emplace_back("corruption", config.corruption.describe());
  // The epochs trained: config.epochs, or fewer where patience or the time limit stopped it.
  model.meta().emplace_back("epochs", std::to_string(run.state.epoch));
  // Only a schedule that is not constant, only patches when on: a plain run's model file stays
  // as it always was.
  if (!config.lr_schedule.is_constant())
    model.meta().emplace_back("lr_schedule", format_lr_schedule(config.lr_schedule));
  if (config.patches.on())
    model.meta().emplace_back("augment", data::format_augment(config.patches.augment));
  return model;
}

// A diverged run stops here, naming what is not finite and the last good checkpoint.
void check_finite(const Run& run, const EpochStats& st, int batches) {
  const std::string after = " after epoch " + std::to_string(st.epoch);
  for (const auto& [split, stats] : {std::pair{"test", &st.test}, {"validation", &st.val}})
    if (!std::isfinite(stats->loss))
      throw Error("training diverged: the " + std::string(split) + " loss is not finite" + after +
                  "; the last good checkpoint is " + run.checkpoint_path);
  // A finite loss does not prove finite weights: ReLU and max pooling can drop a NaN before it
  // reaches the loss. One pass over the state per epoch costs little next to the epoch and
  // keeps a poisoned state out of the checkpoint.
  if (const char* what = non_finite_state(run.exec, run.opt))
    throw Error("training diverged: the " + std::string(what) + " hold NaN or Inf" + after +
                ", step " + std::to_string(batches) + "; the last good checkpoint is " +
                run.checkpoint_path);
}

// The end of an epoch: the test (and validation) scores, checks that the state is finite, the
// schedule's and the best validation loss's turn, and rank 0's checkpoint, losses.csv and
// best.cae.
EpochStats end_epoch(Run& run, int epoch, const StepTotals& steps, int batches,
                     Clock::time_point t0) {
  const TrainConfig& config = run.config;
  const data::Dataset& data = run.data;
  EpochStats st;
  st.epoch = epoch;
  st.train_loss = steps.loss_sum / batches;
  st.images_per_second = double(batches) * config.batch / steps.seconds;
  if (run.comm.size() > 1) share_weights(run.comm, run.exec, run.opt);
  // A batchnorm normalises by the running statistics at inference: the folded net does. The
  // tiler's batches are the training executor's.
  std::unique_ptr<ops::Executor> inference;
  if (run.model.has_batch_norm() || data.whole()) {
    nn::Model now = run.model;
    now.params() = run.exec.to_canonical(run.exec.params());
    inference = now.make_inference_executor(config.backend, run.exec.desc().batch, config.executor);
  }
  ops::Executor& scorer = inference ? *inference : run.exec;
  st.test = score(run, scorer, false);
  st.validated = data.has_val();
  if (st.validated) st.val = score(run, scorer, true);
  check_finite(run, st, batches);
  st.seconds = seconds_since(t0);
  st.lr = run.opt.config().lr;
  Checkpoint& state = run.state;
  state.epoch = epoch;
  state.history.push_back(st);
  // Every rank sees the same summed losses, so every rank's schedule takes the same turn.
  end_lr_epoch(config.lr_schedule, st.validated ? st.val.loss : st.test.loss, state.lr_state);
  const bool best = st.validated && st.val.loss < state.best_val.loss;
  if (best) state.best_val = {st.val.loss, epoch};
  if (run.comm.rank() == 0) {
    if (best) {
      nn::Model model = finished_model(run);
      model.meta().emplace_back("best_epoch", std::to_string(epoch));
      io::write_model_file(config.out_dir + "/best.cae", model.to_file());
    }
    write_checkpoint(run.checkpoint_path, run.model, run.exec, run.opt, config, state);
    const std::string csv = history_csv(state.history);
    write_file_atomic(config.out_dir + "/losses.csv",
                      {reinterpret_cast<const std::uint8_t*>(csv.data()), csv.size()});
  }
  return st;
}

// Whether an epoch that would end `seconds` into the run passes config's time limit; rank 0's
// clock decides for every rank, so that all stop together.
bool out_of_time(const TrainConfig& config, dist::Communicator& comm, double seconds) {
  if (config.time_limit_seconds <= 0) return false;
  std::uint8_t out = seconds > config.time_limit_seconds;
  comm.broadcast(std::as_writable_bytes(std::span<std::uint8_t>(&out, 1)));
  return out != 0;
}

}  // namespace

std::vector<EpochStats> train(nn::Model& model, const data::Dataset& data,
                              const TrainConfig& config, Progress& progress) {
  dist::LocalCommunicator alone;
  dist::Communicator& comm = config.comm ? *config.comm : alone;
  const int micro = check_run(model, data, config, comm.size());
  const bool writer = comm.rank() == 0;  // rank 0 alone writes files
  if (writer) {
    std::filesystem::create_directories(config.out_dir);
    // A run resumed with no epoch left writes no checkpoint or losses.csv to clean up after.
    for (const char* name : {"/checkpoint.cae", "/losses.csv", "/model.cae", "/best.cae"})
      remove_stale_temporaries(config.out_dir + name);
  }
  auto exec = model.make_executor(config.backend, micro, config.executor);
  if (config.backend == ops::Backend::dnnl) {
    const ops::KernelChoice choice = ops::dnnl_kernel_choice(*exec);
    progress.on_kernels(ops::kernel_choice_line(choice), choice.measuring_ms);
  }
  nn::Optimizer opt(config.optimizer, exec->params().size());
  Run run{model, data, config, *exec, opt, comm, config.out_dir + "/checkpoint.cae", {}};
  run.state.lr_state = initial_lr_state(config.optimizer.lr);
  if (config.resume && writer) {
    if (!std::filesystem::exists(run.checkpoint_path))
      throw Error("--resume: no checkpoint at " + run.checkpoint_path);
    run.state = read_checkpoint(run.checkpoint_path, model, *exec, opt, config);
  }
  if (comm.size() > 1) {
    check_ranks_agree(model, *exec, data, comm);
    share_state(run);
  }
  // Patch training trains each epoch on that epoch's patches, the same on every rank.
  data::Dataset patches;
  const data::Dataset& steps_data = config.patches.on() ? patches : data;
  BatchStep step(run, steps_data, micro);
  const int batches = epoch_images(config, data) / config.batch;
  progress.on_start(run.state.epoch + 1, config.epochs, batches);

  const auto started = Clock::now();
  double last_epoch_seconds = 0;
  for (int epoch = run.state.epoch + 1;
       epoch <= config.epochs && !patience_spent(config.patience, run.state.best_val, epoch - 1) &&
       !(last_epoch_seconds > 0 &&  // every run trains an epoch
         out_of_time(config, comm, seconds_since(started) + last_epoch_seconds));
       ++epoch) {
    const auto t0 = Clock::now();
    opt.set_lr(float(lr_of_epoch(config.lr_schedule, config.optimizer.lr, epoch, config.epochs,
                                 run.state.lr_state)));
    if (config.patches.on())
      patches.train = data::draw_patches(data.train_whole, config.patches,
                                         epoch_images(config, data), config.seed, epoch);
    Rng shuffle_rng = make_rng(config.seed, Stream::shuffle, std::uint64_t(epoch));
    const std::vector<int> order = permutation(steps_data.train.n, shuffle_rng);
    StepTotals steps;
    // A backend that runs whole steps on its device (cuda) takes the epoch's batches itself.
    const bool host_inputs = steps_data.paired() || model.informed();
    const bool fused = offers_fused_epochs(config, comm.size(), host_inputs) &&
                       run_fused_epoch(*exec, opt, model, steps_data.train, order, config, epoch,
                                       progress, run.checkpoint_path, steps);
    for (int b = 0; b < batches && !fused; ++b) {
      const auto start = Clock::now();
      const double loss = step.run(epoch, b, order);
      steps.loss_sum += loss;
      steps.seconds += seconds_since(start);
      progress.on_batch(epoch, b + 1, batches, loss, double(b + 1) * config.batch / steps.seconds);
    }
    progress.on_epoch(end_epoch(run, epoch, steps, batches, t0));
    last_epoch_seconds = seconds_since(t0);
  }
  model = finished_model(run);
  if (writer) io::write_model_file(config.out_dir + "/model.cae", model.to_file());
  return run.state.history;
}

}  // namespace cae::train
