// cae train: the training loop with a console progress display and metrics.json.
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cae/error.h"
#include "data/folder.h"
#include "nn/spec.h"
#include "train_command.h"

namespace cae::cli {

namespace {

// A validator that runs parse on the option's text and reports its cae::Error's message.
template <class Parse>
CLI::Validator text_check(Parse parse) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        try {
          parse(text);
        } catch (const Error& e) {
          return e.what();
        }
        return {};
      },
      "");
}

std::string format_duration(double seconds) {
  long s = std::lround(std::max(seconds, 0.0));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A live bar on a terminal; one line per epoch otherwise (logs, CI).
class ConsoleProgress : public train::Progress {
 public:
  ConsoleProgress() : tty_(::isatty(2)) {}

  void on_start(int first_epoch, int epochs, int /*batches*/) override {
    first_epoch_ = first_epoch;
    epochs_ = epochs;
    start_ = std::chrono::steady_clock::now();
    if (first_epoch > 1) std::fprintf(stderr, "resuming at epoch %d of %d\n", first_epoch, epochs);
  }

  void on_batch(int epoch, int batch, int batches, double loss, double ips) override {
    if (!tty_) return;
    const double done = double(epoch - first_epoch_) * batches + batch;
    const double total = double(epochs_ - first_epoch_ + 1) * batches;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int width = 24, filled = int(width * batch / batches);
    std::fprintf(stderr, "\repoch %d/%d [%s%s] %d/%d loss %.4f %6.0f img/s ETA %s \x1b[K", epoch,
                 epochs_, std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), batch, batches, loss, ips,
                 format_duration(elapsed / done * (total - done)).c_str());
  }

  void on_kernels(const std::string& line, double) override {
    std::fprintf(stderr, "conv kernels %s\n", line.c_str());
  }

  void on_epoch(const train::EpochStats& e) override {
    char val[64] = "";
    if (e.validated) std::snprintf(val, sizeof val, "  val loss %.5f", e.val.loss);
    std::fprintf(stderr,
                 "%sepoch %d/%d  train loss %.5f%s  test loss %.5f  PSNR noisy %.2f dB -> output "
                 "%.2f dB  %.0f img/s  %.1f s%s\n",
                 tty_ ? "\r" : "", e.epoch, epochs_, e.train_loss, val, e.test.loss,
                 e.test.psnr_noisy, e.test.psnr_output, e.images_per_second, e.seconds,
                 tty_ ? "\x1b[K" : "");
  }

 private:
  bool tty_;
  int first_epoch_ = 1, epochs_ = 1;
  std::chrono::steady_clock::time_point start_;
};

nlohmann::json eval_json(const train::EvalStats& s) {
  return {{"images", s.images},         {"loss", s.loss},
          {"bce", s.bce},               {"mse_noisy", s.mse_noisy},
          {"mse_output", s.mse_output}, {"psnr_noisy_db", s.psnr_noisy},
          {"psnr_output_db", s.psnr_output}};
}

// Under mpirun, a rank that dies makes the runtime stop the others with SIGTERM. Rank 0 then says
// what that means for the run before it goes (async-signal-safe calls only in the handler).
char terminated_message[1024];
std::size_t terminated_length = 0;

extern "C" void on_terminate(int) {
  [[maybe_unused]] const ssize_t written = ::write(2, terminated_message, terminated_length);
  ::_exit(128 + SIGTERM);
}

void explain_termination(const std::string& out_dir) {
  const int n = std::snprintf(
      terminated_message, sizeof terminated_message,
      "\ncae: error: rank 0 was stopped by the MPI runtime: another rank failed or the job was "
      "interrupted (mpirun says which). Completed epochs are saved in %s/checkpoint.cae; "
      "continue with --resume, with any number of ranks.\n",
      out_dir.c_str());
  terminated_length = std::min<std::size_t>(std::max(n, 0), sizeof terminated_message - 1);
  std::signal(SIGTERM, on_terminate);
}

// Hands the loop's reports on, noting the epoch this run started at.
class StartNoting : public train::Progress {
 public:
  explicit StartNoting(train::Progress& next) : next_(next) {}
  int first_epoch() const { return first_epoch_; }
  void on_start(int first_epoch, int epochs, int batches) override {
    first_epoch_ = first_epoch;
    next_.on_start(first_epoch, epochs, batches);
  }
  void on_batch(int epoch, int batch, int batches, double loss, double ips) override {
    next_.on_batch(epoch, batch, batches, loss, ips);
  }
  void on_epoch(const train::EpochStats& e) override { next_.on_epoch(e); }
  void on_kernels(const std::string& line, double measuring_ms) override {
    kernels_ = line;
    measuring_ms_ = measuring_ms;
    next_.on_kernels(line, measuring_ms);
  }
  const std::string& kernels() const { return kernels_; }
  double measuring_ms() const { return measuring_ms_; }

 private:
  train::Progress& next_;
  int first_epoch_ = 1;
  std::string kernels_;
  double measuring_ms_ = 0;
};

// The patch options the flags give; --augment and --patches-per-epoch need --patch.
data::PatchOptions patch_options(const TrainOptions& o) {
  data::PatchOptions p;
  if (o.patch.empty()) {
    if (o.augment != "none" || o.patches_per_epoch > 0)
      throw Error(std::string(o.patches_per_epoch > 0 ? "--patches-per-epoch" : "--augment") +
                  " needs --patch (it applies to patch training)");
    return p;
  }
  data::parse_size(o.patch, p.h, p.w);
  p.augment = data::parse_augment(o.augment);
  p.per_epoch = o.patches_per_epoch;
  return p;
}

// "60000 train / 10000 test images of 28x28x1", or for patch training "512 patches of 64x64x3
// an epoch from 7 train images (hflip), 2 val / 3 test images whole".
std::string data_summary(const data::Dataset& ds, const train::TrainConfig& config,
                         ops::Dims input) {
  const std::string shape =
      std::to_string(input.h) + "x" + std::to_string(input.w) + "x" + std::to_string(input.c);
  const std::string val = ds.has_val() ? std::to_string(ds.val_count()) + " val / " : std::string();
  if (!config.patches.on())
    return std::to_string(ds.train.n) + " train / " + val + std::to_string(ds.test.n) +
           " test images of " + shape + (ds.paired() ? " with targets" : "");
  return std::to_string(train::epoch_images(config, ds)) + " patches of " + shape +
         " an epoch from " + std::to_string(ds.train_count()) + " train images (augment " +
         data::format_augment(config.patches.augment) + "), " + val +
         std::to_string(ds.test_count()) + " test images whole";
}

// metrics.json's patch and validation entries, only for runs that have them.
void add_patch_and_val_metrics(nlohmann::json& metrics, const data::Dataset& ds,
                               const train::TrainConfig& config,
                               const std::vector<train::EpochStats>& history) {
  if (config.patches.on()) {
    metrics["patch"] = std::to_string(config.patches.h) + "x" + std::to_string(config.patches.w);
    metrics["patches_per_epoch"] = train::epoch_images(config, ds);
    metrics["augment"] = data::format_augment(config.patches.augment);
  }
  if (!ds.has_val()) return;
  const auto best =
      std::min_element(history.begin(), history.end(),
                       [](const auto& a, const auto& b) { return a.val.loss < b.val.loss; });
  metrics["val_images"] = ds.val_count();
  metrics["val"] = eval_json(history.back().val);
  metrics["best_epoch"] = best->epoch;
  metrics["best_val_loss"] = best->val.loss;
  metrics["patience"] = config.patience;
  metrics["stopped_early"] = history.back().epoch < config.epochs;
}

}  // namespace

TrainOutcome run_training(TrainOptions& o, dist::Communicator& comm, train::Progress& progress,
                          const data::Dataset* given, TrainLog log) {
  train::TrainConfig& config = o.config;
  config.comm = &comm;
  config.overlap_grads = !o.sync_grads;
  const bool lead = comm.rank() == 0;
  config.backend = o.common.apply();
  config.corruption = o.corruption.apply(config.corruption);
  config.optimizer.kind = nn::parse_optimizer(o.optimizer);
  config.lr_schedule = train::parse_lr_schedule(o.lr_schedule);
  config.time_limit_seconds = o.time_limit_minutes * 60;
  std::string spec_text;
  if (o.spec.empty())
    spec_text = nn::preset_spec(o.preset);
  else if (o.spec[0] == '@')
    spec_text = read_text(o.spec.substr(1));
  else
    spec_text = o.spec;
  config.patches = patch_options(o);
  data::Dataset ds = given ? *given : o.data.load(config.patches);
  data::truncate(ds, o.limit, o.test_limit);
  ops::Dims input = config.patches.on()
                        ? ops::Dims{ds.channels(), config.patches.h, config.patches.w}
                        : ds.dims();
  if (o.informed) ++input.c;  // the mask's channel
  nn::Model model(nn::parse_spec(spec_text), input, nn::parse_loss(o.loss), o.informed);
  if (!o.fill.empty()) model.set_fill(o.fill);
  model.init_glorot(config.seed);
  train::check_run(model, ds, config, comm.size());  // before the header line speaks of it
  if (lead && log.lines)
    std::fprintf(stderr, "training on %s: %s%s, %d epochs, batch %d, %s backend, %d threads%s\n",
                 ds.name.c_str(), data_summary(ds, config, model.output()).c_str(),
                 o.informed ? ", the damage mask as input too" : "", config.epochs, config.batch,
                 ops::backend_name(config.backend), omp_get_max_threads(),
                 comm.size() > 1 ? (" x " + std::to_string(comm.size()) + " ranks").c_str() : "");
  // After the header line, before the first executor: a bad CAE_WINOGRAD ends the run there.
  config.executor = o.common.executor_options();
  StartNoting noting(progress);
  const auto t0 = std::chrono::steady_clock::now();
  TrainOutcome outcome;
  outcome.history = train::train(model, ds, config, noting);
  const auto& history = outcome.history;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!lead) return outcome;
  // Where this run's training steps spent their time (rank 0; a rank's blocked time also counts
  // the once-an-epoch broadcast and test sums).
  const long steps_per_epoch = train::epoch_images(config, ds) / config.batch;
  double train_seconds = 0;
  long steps = 0;
  for (const auto& e : history)
    if (e.epoch >= noting.first_epoch()) {
      train_seconds += double(steps_per_epoch) * config.batch / e.images_per_second;
      steps += steps_per_epoch;
    }
  auto ms_per_step = [&](double seconds) { return steps > 0 ? 1e3 * seconds / steps : 0.0; };
  if (comm.size() > 1 && log.lines)
    std::fprintf(stderr,
                 "%d ranks: %.2f ms per step, of which %.2f ms blocked in communication (rank 0, "
                 "gradient sums %s)\n",
                 comm.size(), ms_per_step(train_seconds), ms_per_step(comm.blocked_seconds()),
                 config.overlap_grads ? "overlapping backward" : "after backward");
  const auto& last = history.back();
  nlohmann::json metrics = {
      {"dataset", ds.name},
      {"train_images", ds.train_count()},
      {"test_images", ds.test_count()},
      {"epochs", config.epochs},
      {"epochs_trained", history.back().epoch},
      {"time_limit_minutes", config.time_limit_seconds / 60},
      {"batch", config.batch},
      {"micro_batch", train::micro_batch_of(config, comm.size())},
      {"lr", config.optimizer.lr},
      {"optimizer", nn::optimizer_name(config.optimizer.kind)},
      {"loss", o.loss},
      {"paired_targets", ds.paired()},
      {"corruption", config.corruption.describe()},
      {"seed", config.seed},
      {"threads", omp_get_max_threads()},
      {"backend", ops::backend_name(config.backend)},
      {"final_train_loss", last.train_loss},
      {"test", eval_json(last.test)},
      {"psnr_gain_db", last.test.psnr_output - last.test.psnr_noisy},
      {"train_images_per_second", last.images_per_second},
      {"ranks", comm.size()},
      {"ms_per_step", ms_per_step(train_seconds)},
      {"ms_blocked_in_communication_per_step", ms_per_step(comm.blocked_seconds())},
      {"wall_seconds_this_run", wall},
      {"conv_kernels", noting.kernels()},
      {"kernel_measuring_ms", noting.measuring_ms()},
  };
  // A schedule's name and the last epoch's lr (losses.csv keeps its columns: scripts read it).
  if (!config.lr_schedule.is_constant()) {
    metrics["lr_schedule"] = train::format_lr_schedule(config.lr_schedule);
    metrics["final_lr"] = last.lr;
  }
  add_patch_and_val_metrics(metrics, ds, config, history);
  outcome.metrics_json = metrics.dump(2) + "\n";
  write_text(config.out_dir + "/metrics.json", outcome.metrics_json);
  if (log.json) std::printf("%s", outcome.metrics_json.c_str());
  if (log.lines)
    std::fprintf(stderr, "wrote %s/{model.cae,%scheckpoint.cae,losses.csv,metrics.json}\n",
                 config.out_dir.c_str(), ds.has_val() ? "best.cae," : "");
  return outcome;
}

std::unique_ptr<train::Progress> make_console_progress() {
  return std::make_unique<ConsoleProgress>();
}

namespace {

void run(TrainOptions& o) {
  // Under mpirun this process is one rank of a data-parallel job; otherwise the only one.
  std::unique_ptr<dist::Communicator> comm = dist::make_world_communicator();
  if (comm->rank() == 0 && comm->size() > 1) explain_termination(o.config.out_dir);
  std::unique_ptr<train::Progress> console = make_console_progress();
  train::Progress silent;
  try {
    run_training(o, *comm, comm->rank() == 0 ? *console : silent);
  } catch (const std::exception& e) {
    if (comm->size() == 1) throw;
    // The other ranks may wait in a collective for this one: end the whole job, saying why.
    std::fprintf(stderr, "cae: error: rank %d of %d: %s\n", comm->rank(), comm->size(), e.what());
    std::fflush(stderr);
    comm->abort(1);
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "train a model on an image dataset");
  add_train_options(cmd, *o);
  cmd->final_callback([o] { run(*o); });
}

void add_train_options(CLI::App* cmd, TrainOptions& options) {
  TrainOptions* o = &options;
  o->common.add(cmd);
  o->data.add(cmd);
  cmd->add_option("--preset", o->preset, "built-in architecture ('cae presets' prints them)")
      ->check(one_of(nn::preset_names()));
  cmd->add_option("--spec", o->spec, "architecture spec text, or @FILE (overrides --preset)");
  cmd->add_option("--epochs", o->config.epochs, "epochs (default 100)")
      ->check(in_range(1, 1000000));
  cmd->add_option("--batch", o->config.batch, "batch size (default 200)")
      ->check(in_range(1, 65536));
  cmd->add_option("--micro-batch", o->config.micro_batch,
                  "run each batch as passes of N images with their gradients summed: the same "
                  "steps (N divides the batch; default: its largest divisor from 16 to 50, else "
                  "the whole batch; on cuda the whole batch, for the fused device steps)")
      ->check(in_range(1, 65536));
  cmd->add_option("--lr", o->config.optimizer.lr, "learning rate (default 0.001)")
      ->check(above(0.0));
  cmd->add_option("--lr-schedule", o->lr_schedule,
                  "the lr per epoch: constant (default), 'step every=N gamma=G', "
                  "'cosine min=M' or 'plateau factor=F patience=P min=M' (on the validation "
                  "loss, or the test loss when there is no validation split)")
      ->check(text_check([](const std::string& text) { train::parse_lr_schedule(text); }));
  cmd->add_option("--optimizer", o->optimizer, "adam (TF1 form) or sgd (with momentum)")
      ->check(one_of({"adam", "sgd"}));
  cmd->add_option("--momentum", o->config.optimizer.momentum, "sgd momentum (default 0.9)")
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--loss", o->loss, "bce (sigmoid cross-entropy on logits) or mse")
      ->check(one_of({"bce", "mse"}));
  o->corruption.add(cmd);  // --noise (default 0.5), --masks, ... (corruption_options.cpp)
  cmd->add_option("--seed", o->config.seed, "seed of every random draw (default 0)");
  cmd->add_option("--out", o->config.out_dir, "output directory (default runs/seed)");
  cmd->add_flag("--resume", o->config.resume, "continue from OUT/checkpoint.cae");
  cmd->add_option("--patch", o->patch,
                  "train on random HxW (or NxN) crops of the images, drawn anew each epoch; "
                  "image folders then keep their images whole, and validation and test score "
                  "whole images through the tiler (default: off)")
      ->check(text_check([](const std::string& text) {
        int h, w;
        data::parse_size(text, h, w);
      }));
  cmd->add_option("--augment", o->augment,
                  "with --patch: random flips, quarter turns and zoom of each crop, none "
                  "(default) or a comma-separated subset of hflip,vflip,rot90,scale=MIN-MAX "
                  "(rot90: square patches only; scale: a window of patch/s pixels resized to "
                  "the patch, s log-uniform in [MIN, MAX], 1/8 to 8)")
      ->check(text_check([](const std::string& text) { data::parse_augment(text); }));
  cmd->add_option("--patches-per-epoch", o->patches_per_epoch,
                  "with --patch: crops per epoch (default: enough to cover the training images' "
                  "area once, rounded up to whole batches)")
      ->check(at_least(1));
  cmd->add_option("--patience", o->config.patience,
                  "with a validation split (DIR/val): stop after N epochs without a lower "
                  "validation loss (default 0: never); best.cae is kept either way")
      ->check(at_least(0));
  cmd->add_option("--time-limit", o->time_limit_minutes,
                  "stop before an epoch that would end past this many minutes (judged by the last "
                  "epoch's length; default 0: no limit); the epochs trained are in model.cae")
      ->check(in_range(0.0, 525600.0));  // up to a year
  cmd->add_option("--limit", o->limit,
                  "use only the first N training images (and N validation images)")
      ->check(at_least(0));
  cmd->add_option("--test-limit", o->test_limit, "use only the first N test images")
      ->check(at_least(0));
  cmd->add_flag("--informed", o->informed,
                "give the model the damage mask (masks, lines, crosshair) as an extra input "
                "channel, as cv::inpaint is given it; the repair keeps the undamaged pixels");
  cmd->add_option("--fill", o->fill,
                  "with --informed and --loss mse: let cv::inpaint repair the damage first and "
                  "train the net to correct its repair: 'telea' or 'navier-stokes', optionally "
                  "with ' r=R' (radius, default 3)");
  cmd->add_flag("--sync-grads", o->sync_grads,
                "under mpirun: sum gradients after backward instead of during it (to measure)");
}

}  // namespace cae::cli
