// cae checkerboard: the tutorial's point about transposed convolutions, measured. Trains `seed`
// (nearest-neighbour resize + conv decoder) and `seed-tconv` (strided transposed convs) with the
// same data, seed, corruption and epochs, then scores both on the same damaged test images and
// draws them side by side with each model's answer to a flat gray image magnified, where a
// checkerboard pattern shows.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "commands.h"
#include "data/png_io.h"
#include "nn/spec.h"
#include "train/compare.h"
#include "train/figures.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace cae::cli {

namespace {

struct CheckerboardOptions {
  CommonOptions common;
  DataOptions data;
  CorruptionOptions corruption;
  train::TrainConfig config;
  int limit = 0, test_limit = 1000, count = 8, scale = 3;
  float gain = 8;
};

class EpochLines : public train::Progress {
 public:
  explicit EpochLines(std::string name) : name_(std::move(name)) {}
  void on_epoch(const train::EpochStats& e) override {
    std::fprintf(stderr, "%s: epoch %d  train loss %.5f  test loss %.5f  PSNR %.2f dB  %.1f s\n",
                 name_.c_str(), e.epoch, e.train_loss, e.test.loss, e.test.psnr_output, e.seconds);
  }

 private:
  std::string name_;
};

// Mean checkerboard measure of a model's outputs on the first n damaged test images, and of its
// answer to a flat mid-gray image.
std::pair<double, double> artefacts(const nn::Model& model, ops::Backend backend,
                                    const ops::ExecutorOptions& executor,
                                    const data::ImageSet& test, const data::Corruption& corruption,
                                    std::uint64_t seed, int n) {
  const ops::Dims d = model.input();
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> clean(n * d.size()), noisy(n * d.size()), out(n * d.size());
  data::to_nchw(test, idx.data(), n, clean.data());
  data::corrupt(corruption, clean.data(), noisy.data(), n, d, seed, Stream::test_noise, 0, 0);
  auto exec = model.make_inference_executor(backend, n, executor);
  exec->forward(noisy.data());
  nn::output_to_image(model.loss(), exec->output(), out.data(), out.size());
  double on_test = 0;
  for (int b = 0; b < n; ++b) on_test += train::checkerboard(out.data() + b * d.size(), d) / n;
  std::vector<float> flat(d.size(), 0.5f), flat_out(d.size());
  auto one = model.make_inference_executor(backend, 1, executor);
  one->forward(flat.data());
  nn::output_to_image(model.loss(), one->output(), flat_out.data(), flat_out.size());
  return {on_test, train::checkerboard(flat_out.data(), d)};
}

void run(CheckerboardOptions& o) {
  train::TrainConfig config = o.config;
  config.backend = o.common.apply();
  config.corruption = o.corruption.apply(config.corruption);
  const std::string out_dir = config.out_dir;
  data::Dataset ds = o.data.load();
  data::truncate(ds.train, o.limit);
  data::truncate(ds.test, o.test_limit);
  config.executor = o.common.executor_options();
  std::vector<std::unique_ptr<nn::Model>> models;
  const std::vector<std::string> presets = {"seed", "seed-tconv"};
  for (const std::string& preset : presets) {
    auto model = std::make_unique<nn::Model>(nn::parse_spec(nn::preset_spec(preset)), ds.dims(),
                                             nn::LossKind::bce);
    model->init_glorot(config.seed);
    config.out_dir = out_dir + "/" + preset;
    EpochLines progress(preset);
    train::train(*model, ds, config, progress);
    models.push_back(std::move(model));
  }
  train::CompareOptions options;
  options.backend = config.backend;
  options.executor = config.executor;
  options.baselines = false;
  const train::Comparison c =
      train::compare({{"seed", models[0].get()}, {"seed-tconv", models[1].get()}}, ds.test,
                     config.corruption, config.seed, options);
  const int n = std::min(ds.test.n, 200);
  nlohmann::json j = nlohmann::json::parse(train::comparison_json(c));
  j["epochs"] = config.epochs;
  j["train_images"] = ds.train.n;
  std::string table = train::comparison_table(c);
  char line[200];
  std::snprintf(line, sizeof line,
                "checkerboard measure (mean |x00 - x01 - x10 + x11| / 4; clean test images: "
                "%.5f)\n",
                [&] {
                  std::vector<int> idx(n);
                  std::iota(idx.begin(), idx.end(), 0);
                  const ops::Dims d = ds.dims();
                  std::vector<float> clean(n * d.size());
                  data::to_nchw(ds.test, idx.data(), n, clean.data());
                  double sum = 0;
                  for (int b = 0; b < n; ++b)
                    sum += train::checkerboard(clean.data() + b * d.size(), d) / n;
                  return sum;
                }());
  table += line;
  for (std::size_t m = 0; m < models.size(); ++m) {
    const auto [on_test, on_flat] = artefacts(*models[m], config.backend, config.executor, ds.test,
                                              config.corruption, config.seed, n);
    std::snprintf(line, sizeof line, "  %-12s outputs %.5f   flat gray input %.6f\n",
                  presets[m].c_str(), on_test, on_flat);
    table += line;
    j["checkerboard"][presets[m]] = {{"test_outputs", on_test}, {"flat_gray_input", on_flat}};
  }
  std::printf("%s", table.c_str());
  write_text(out_dir + "/checkerboard.txt", table);
  write_text(out_dir + "/checkerboard.json", j.dump(2) + "\n");
  const data::Image fig =
      train::comparison_figure({models[0].get(), models[1].get()}, config.backend, config.executor,
                               ds.test, config.corruption, config.seed, o.count, o.scale, o.gain);
  data::write_png(out_dir + "/checkerboard.png", fig);
  std::fprintf(stderr, "wrote %s/{checkerboard.txt,checkerboard.json,checkerboard.png}\n",
               out_dir.c_str());
}

}  // namespace

void add_checkerboard_command(CLI::App& app) {
  auto o = std::make_shared<CheckerboardOptions>();
  o->config.epochs = 5;
  o->config.out_dir = "runs/checkerboard";
  CLI::App* cmd = app.add_subcommand(
      "checkerboard", "train seed and seed-tconv alike, compare them and draw the artefacts");
  o->common.add(cmd);
  o->data.add(cmd);
  o->corruption.add(cmd);
  cmd->add_option("--epochs", o->config.epochs, "epochs for each model (default 5)")
      ->check(in_range(1, 1000000));
  cmd->add_option("--batch", o->config.batch, "batch size (default 200)")
      ->check(in_range(1, 65536));
  cmd->add_option("--seed", o->config.seed, "seed of every random draw (default 0)");
  cmd->add_option("--limit", o->limit, "use only the first N training images")
      ->check(at_least(0));
  cmd->add_option("--test-limit", o->test_limit, "test images scored (default 1000; 0 = all)")
      ->check(at_least(0));
  cmd->add_option("--count", o->count, "images in the figure (default 8)")
      ->check(in_range(1, 100));
  cmd->add_option("--scale", o->scale, "pixel magnification (default 3)")->check(in_range(1, 32));
  cmd->add_option("--gain", o->gain, "magnification of the flat-input answer (default 8)")
      ->check(in_range(1.0, 1000.0));
  cmd->add_option("--out", o->config.out_dir, "output directory (default runs/checkerboard)");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
