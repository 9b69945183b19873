// The cae command: parses arguments, calls the library, prints. The only code that exits.
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "train/figures.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace cae;

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

  void on_start(int first_epoch, int epochs, int batches) override {
    first_epoch_ = first_epoch;
    epochs_ = epochs;
    batches_ = batches;
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
                 epochs_, std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 batch, batches, loss, ips, format_duration(elapsed / done * (total - done)).c_str());
  }

  void on_epoch(const train::EpochStats& e) override {
    if (tty_) std::fputc('\r', stderr);
    std::fprintf(stderr,
                 "epoch %d/%d  train loss %.5f  test loss %.5f  PSNR noisy %.2f dB -> output "
                 "%.2f dB  %.0f img/s  %.1f s\x1b[K\n",
                 e.epoch, epochs_, e.train_loss, e.test.loss, e.test.psnr_noisy, e.test.psnr_output,
                 e.images_per_second, e.seconds);
  }

 private:
  bool tty_;
  int first_epoch_ = 1, epochs_ = 1, batches_ = 1;
  std::chrono::steady_clock::time_point start_;
};

std::string read_text(const std::string& path) {
  auto bytes = read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

nn::Model load_model(const std::string& path) {
  return nn::Model::from_file(io::read_model_file(path), path);
}

data::Corruption model_corruption(const nn::Model& model, float noise_override) {
  data::Corruption c;
  if (noise_override >= 0) {
    c.gaussian_sigma = noise_override;
    return c;
  }
  for (const auto& [key, value] : model.meta())
    if (key == "corruption" && value.rfind("gaussian sigma=", 0) == 0)
      c.gaussian_sigma = std::stof(value.substr(15));
  return c;
}

nlohmann::json eval_json(const train::EvalStats& s) {
  return {{"images", s.images},         {"loss", s.loss},
          {"bce", s.bce},               {"mse_noisy", s.mse_noisy},
          {"mse_output", s.mse_output}, {"psnr_noisy_db", s.psnr_noisy},
          {"psnr_output_db", s.psnr_output}};
}

struct Common {
  int threads = 0;
  std::string backend = "dnnl";
  void add(CLI::App* app) {
    app->add_option("--threads", threads, "worker threads (default: all cores)")
        ->check(CLI::Range(1, 1024));
    app->add_option("--backend", backend, "kernels: dnnl (oneDNN) or ref (naive reference)")
        ->check(CLI::IsMember({"dnnl", "ref"}));
  }
  void apply() const {
    omp_set_num_threads(threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency())));
  }
};

struct DataOptions {
  std::string dataset = "mnist";
  std::string data_dir;
  void add(CLI::App* app) {
    app->add_option("--dataset", dataset,
                    "mnist, fashion-mnist, or a directory of IDX files (train-/t10k-images-idx3-ubyte[.gz])");
    app->add_option("--data", data_dir, "data directory (default: $CAE_DATA or ~/.local/share/cae)");
  }
  data::Dataset load() const { return data::load_dataset(dataset, data::data_dir(data_dir)); }
};

int run_train(const Common& common, const DataOptions& data_opt, const std::string& preset,
              const std::string& spec_arg, train::TrainConfig config, const std::string& loss,
              int limit, int test_limit) {
  common.apply();
  config.backend = ops::parse_backend(common.backend);
  std::string spec_text;
  if (spec_arg.empty()) {
    spec_text = nn::preset_spec(preset);
  } else if (spec_arg[0] == '@') {
    spec_text = read_text(spec_arg.substr(1));
  } else {
    spec_text = spec_arg;
  }
  data::Dataset ds = data_opt.load();
  data::truncate(ds.train, limit);
  data::truncate(ds.test, test_limit);
  nn::Model model(nn::parse_spec(spec_text), ds.dims(), nn::parse_loss(loss));
  model.init_glorot(config.seed);
  std::fprintf(stderr, "training on %s: %d train / %d test images of %dx%dx%d, %d epochs, batch %d, %s backend, %d threads\n",
               ds.name.c_str(), ds.train.n, ds.test.n, ds.train.h, ds.train.w, ds.train.c,
               config.epochs, config.batch, ops::backend_name(config.backend), omp_get_max_threads());
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
      {"loss", loss},
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
  return 0;
}

int run_denoise(const Common& common, const std::string& model_path,
                const std::vector<std::string>& inputs, const std::string& idx_in,
                const std::string& out) {
  common.apply();
  const ops::Backend backend = ops::parse_backend(common.backend);
  nn::Model model = load_model(model_path);
  const ops::Dims dims = model.input();
  const std::size_t image = dims.size();
  const int max_batch = 200;
  if (!idx_in.empty()) {
    data::ImageSet set = data::read_idx_images(idx_in);
    if (set.h != dims.h || set.w != dims.w || set.c != dims.c)
      throw Error(idx_in + ": images are " + std::to_string(set.h) + "x" + std::to_string(set.w) +
                  "x" + std::to_string(set.c) + ", the model takes " + std::to_string(dims.h) + "x" +
                  std::to_string(dims.w) + "x" + std::to_string(dims.c));
    const int batch = std::min(set.n, max_batch);
    auto exec = model.make_executor(backend, batch);
    std::vector<float> x(batch * image), y(batch * image);
    std::vector<int> idx(batch);
    data::ImageSet result = set;
    for (int first = 0; first < set.n; first += batch) {
      const int count = std::min(batch, set.n - first);
      for (int b = 0; b < count; ++b) idx[b] = first + b;
      data::to_nchw(set, idx.data(), count, x.data());
      std::fill(x.begin() + count * image, x.end(), 0.f);
      exec->forward(x.data());
      nn::output_to_image(model.loss(), exec->output(), y.data(), count * image);
      for (int b = 0; b < count; ++b) {
        data::Image img = train::to_image(y.data() + b * image, dims);
        std::copy(img.pixels.begin(), img.pixels.end(),
                  result.pixels.begin() + std::size_t(first + b) * image);
      }
    }
    data::write_idx_images(out, result);
    std::fprintf(stderr, "denoised %d images into %s\n", set.n, out.c_str());
    return 0;
  }
  if (inputs.empty()) throw Error("denoise: give PNG files or --idx FILE");
  fs::create_directories(out);
  auto exec = model.make_executor(backend, 1);
  std::vector<float> x(image), y(image);
  for (const auto& path : inputs) {
    data::Image img = data::read_png(path);
    if (img.h != dims.h || img.w != dims.w || img.c != dims.c)
      throw Error(path + ": image is " + std::to_string(img.h) + "x" + std::to_string(img.w) + "x" +
                  std::to_string(img.c) + ", the model takes " + std::to_string(dims.h) + "x" +
                  std::to_string(dims.w) + "x" + std::to_string(dims.c));
    train::from_image(img, x.data());
    exec->forward(x.data());
    nn::output_to_image(model.loss(), exec->output(), y.data(), image);
    const std::string target = (fs::path(out) / fs::path(path).filename()).string();
    data::write_png(target, train::to_image(y.data(), dims));
    std::fprintf(stderr, "%s -> %s\n", path.c_str(), target.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cae: convolutional autoencoders for image denoising and reconstruction"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cae ") + "0.1.0");

  Common common;
  DataOptions data_opt;

  // train
  CLI::App* train_cmd = app.add_subcommand("train", "train a model on an image dataset");
  train::TrainConfig config;
  config.out_dir = "runs/seed";
  std::string preset = "seed", spec, loss = "bce", optimizer = "adam";
  int limit = 0, test_limit = 0;
  common.add(train_cmd);
  data_opt.add(train_cmd);
  train_cmd->add_option("--preset", preset, "built-in architecture: seed, seed-tconv");
  train_cmd->add_option("--spec", spec, "architecture spec text, or @FILE (overrides --preset)");
  train_cmd->add_option("--epochs", config.epochs, "epochs (default 100)")->check(CLI::Range(1, 1000000));
  train_cmd->add_option("--batch", config.batch, "batch size (default 200)")->check(CLI::Range(1, 65536));
  train_cmd->add_option("--lr", config.optimizer.lr, "learning rate (default 0.001)")->check(CLI::PositiveNumber);
  train_cmd->add_option("--optimizer", optimizer, "adam (TF1 form) or sgd (with momentum)")
      ->check(CLI::IsMember({"adam", "sgd"}));
  train_cmd->add_option("--momentum", config.optimizer.momentum, "sgd momentum (default 0.9)")
      ->check(CLI::Range(0.0, 1.0));
  train_cmd->add_option("--loss", loss, "bce (sigmoid cross-entropy on logits) or mse")
      ->check(CLI::IsMember({"bce", "mse"}));
  train_cmd->add_option("--noise", config.corruption.gaussian_sigma,
                        "Gaussian noise sigma, clipped to [0,1] (default 0.5)")
      ->check(CLI::Range(0.0, 100.0));
  train_cmd->add_option("--seed", config.seed, "seed of every random draw (default 0)");
  train_cmd->add_option("--out", config.out_dir, "output directory (default runs/seed)");
  train_cmd->add_flag("--resume", config.resume, "continue from OUT/checkpoint.cae");
  train_cmd->add_option("--limit", limit, "use only the first N training images")->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--test-limit", test_limit, "use only the first N test images")->check(CLI::NonNegativeNumber);

  // denoise
  CLI::App* denoise_cmd = app.add_subcommand("denoise", "apply a model to PNG files or an IDX set");
  std::string model_path, idx_in, out;
  std::vector<std::string> inputs;
  common.add(denoise_cmd);
  denoise_cmd->add_option("-m,--model", model_path, "model file")->required();
  denoise_cmd->add_option("inputs", inputs, "PNG files (8-bit gray or RGB, the model's size)");
  denoise_cmd->add_option("--idx", idx_in, "an IDX image file to denoise as a whole");
  denoise_cmd->add_option("-o,--out", out, "output directory for PNGs, or output IDX file with --idx")
      ->required();

  // show
  CLI::App* show_cmd = app.add_subcommand("show", "write the figure: rows noisy / reconstructed / clean");
  int count = 10, scale = 3;
  float show_noise = -1;
  std::uint64_t show_seed = 0;
  std::string figure = "figure.png";
  common.add(show_cmd);
  data_opt.add(show_cmd);
  show_cmd->add_option("-m,--model", model_path, "model file")->required();
  show_cmd->add_option("--count", count, "test images in the figure (default 10)")->check(CLI::Range(1, 1000));
  show_cmd->add_option("--scale", scale, "pixel magnification (default 3)")->check(CLI::Range(1, 32));
  show_cmd->add_option("--noise", show_noise, "noise sigma (default: what the model was trained for)");
  show_cmd->add_option("--seed", show_seed, "seed of the test noise (default 0)");
  show_cmd->add_option("-o,--out", figure, "PNG to write (default figure.png)");

  // info
  CLI::App* info_cmd = app.add_subcommand("info", "describe a model or checkpoint file");
  info_cmd->add_option("model", model_path, "model file")->required();

  // presets
  CLI::App* presets_cmd = app.add_subcommand("presets", "print the built-in architecture specs");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (*train_cmd) {
      config.optimizer.kind = nn::parse_optimizer(optimizer);
      return run_train(common, data_opt, preset, spec, config, loss, limit, test_limit);
    }
    if (*denoise_cmd) return run_denoise(common, model_path, inputs, idx_in, out);
    if (*show_cmd) {
      common.apply();
      nn::Model model = load_model(model_path);
      data::Dataset ds = data_opt.load();
      data::Image img = train::denoising_figure(model, ops::parse_backend(common.backend), ds.test,
                                                model_corruption(model, show_noise), show_seed,
                                                count, scale);
      data::write_png(figure, img);
      std::fprintf(stderr, "wrote %s (%dx%d)\n", figure.c_str(), img.w, img.h);
      return 0;
    }
    if (*info_cmd) {
      io::ModelFile file = io::read_model_file(model_path);
      nn::Model model = nn::Model::from_file(file, model_path);
      std::size_t params = 0;
      for (const auto& p : model.params()) params += p.size();
      std::printf("kind: %s\ninput: %dx%dx%d\nloss: %s\nparameters: %zu\n", file.kind.c_str(),
                  model.input().h, model.input().w, model.input().c, nn::loss_name(model.loss()),
                  params);
      for (const auto& [key, value] : file.meta)
        if (key != "history") std::printf("%s: %s\n", key.c_str(), value.c_str());
      std::printf("spec:\n%s", file.spec.c_str());
      return 0;
    }
    if (*presets_cmd) {
      for (const auto& name : nn::preset_names())
        std::printf("# %s\n%s\n", name.c_str(), nn::preset_spec(name).c_str());
      return 0;
    }
  } catch (const cae::Error& e) {
    std::fprintf(stderr, "cae: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cae: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
