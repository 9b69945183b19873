// cae train: the training loop with a console progress display and metrics.json.
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "nn/spec.h"
#include "train/trainer.h"

namespace cae::cli {

namespace {

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

  void on_epoch(const train::EpochStats& e) override {
    std::fprintf(stderr,
                 "%sepoch %d/%d  train loss %.5f  test loss %.5f  PSNR noisy %.2f dB -> output "
                 "%.2f dB  %.0f img/s  %.1f s%s\n",
                 tty_ ? "\r" : "", e.epoch, epochs_, e.train_loss, e.test.loss, e.test.psnr_noisy,
                 e.test.psnr_output, e.images_per_second, e.seconds, tty_ ? "\x1b[K" : "");
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

struct TrainOptions {
  CommonOptions common;
  DataOptions data;
  train::TrainConfig config;
  std::string preset = "seed", spec, loss = "bce", optimizer = "adam";
  int limit = 0, test_limit = 0;
};

void run(TrainOptions& o) {
  train::TrainConfig& config = o.config;
  config.backend = o.common.apply();
  config.optimizer.kind = nn::parse_optimizer(o.optimizer);
  std::string spec_text;
  if (o.spec.empty())
    spec_text = nn::preset_spec(o.preset);
  else if (o.spec[0] == '@')
    spec_text = read_text(o.spec.substr(1));
  else
    spec_text = o.spec;
  data::Dataset ds = o.data.load();
  data::truncate(ds.train, o.limit);
  data::truncate(ds.test, o.test_limit);
  nn::Model model(nn::parse_spec(spec_text), ds.dims(), nn::parse_loss(o.loss));
  model.init_glorot(config.seed);
  std::fprintf(stderr,
               "training on %s: %d train / %d test images of %dx%dx%d, %d epochs, batch %d, %s "
               "backend, %d threads\n",
               ds.name.c_str(), ds.train.n, ds.test.n, ds.train.h, ds.train.w, ds.train.c,
               config.epochs, config.batch, ops::backend_name(config.backend),
               omp_get_max_threads());
  ConsoleProgress progress;
  const auto t0 = std::chrono::steady_clock::now();
  auto history = train::train(model, ds, config, progress);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& last = history.back();
  nlohmann::json metrics = {
      {"dataset", ds.name},
      {"train_images", ds.train.n},
      {"test_images", ds.test.n},
      {"epochs", config.epochs},
      {"batch", config.batch},
      {"lr", config.optimizer.lr},
      {"optimizer", nn::optimizer_name(config.optimizer.kind)},
      {"loss", o.loss},
      {"corruption", config.corruption.describe()},
      {"seed", config.seed},
      {"threads", omp_get_max_threads()},
      {"backend", ops::backend_name(config.backend)},
      {"final_train_loss", last.train_loss},
      {"test", eval_json(last.test)},
      {"psnr_gain_db", last.test.psnr_output - last.test.psnr_noisy},
      {"train_images_per_second", last.images_per_second},
      {"wall_seconds_this_run", wall},
  };
  write_text(config.out_dir + "/metrics.json", metrics.dump(2) + "\n");
  std::printf("%s\n", metrics.dump(2).c_str());
  std::fprintf(stderr, "wrote %s/{model.cae,checkpoint.cae,losses.csv,metrics.json}\n",
               config.out_dir.c_str());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  o->config.out_dir = "runs/seed";
  CLI::App* cmd = app.add_subcommand("train", "train a model on an image dataset");
  o->common.add(cmd);
  o->data.add(cmd);
  cmd->add_option("--preset", o->preset, "built-in architecture: seed, seed-tconv");
  cmd->add_option("--spec", o->spec, "architecture spec text, or @FILE (overrides --preset)");
  cmd->add_option("--epochs", o->config.epochs, "epochs (default 100)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--batch", o->config.batch, "batch size (default 200)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--lr", o->config.optimizer.lr, "learning rate (default 0.001)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--optimizer", o->optimizer, "adam (TF1 form) or sgd (with momentum)")
      ->check(CLI::IsMember({"adam", "sgd"}));
  cmd->add_option("--momentum", o->config.optimizer.momentum, "sgd momentum (default 0.9)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--loss", o->loss, "bce (sigmoid cross-entropy on logits) or mse")
      ->check(CLI::IsMember({"bce", "mse"}));
  cmd->add_option("--noise", o->config.corruption.gaussian_sigma,
                  "Gaussian noise sigma, clipped to [0,1] (default 0.5)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--seed", o->config.seed, "seed of every random draw (default 0)");
  cmd->add_option("--out", o->config.out_dir, "output directory (default runs/seed)");
  cmd->add_flag("--resume", o->config.resume, "continue from OUT/checkpoint.cae");
  cmd->add_option("--limit", o->limit, "use only the first N training images")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--test-limit", o->test_limit, "use only the first N test images")
      ->check(CLI::NonNegativeNumber);
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
