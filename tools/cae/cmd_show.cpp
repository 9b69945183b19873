// cae show: the tutorial's figure (noisy / reconstructed / clean), and the latent codes.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "data/png_io.h"
#include "train/figures.h"

namespace cae::cli {

namespace {

struct ShowOptions {
  CommonOptions common;
  DataOptions data;
  CorruptionOptions corruption;
  std::string model_path, figure = "figure.png", latent;
  int count = 10, scale = 3, latent_count = 4;
  std::uint64_t seed = 0;
};

void run(const ShowOptions& o) {
  const ops::Backend backend = o.common.apply();
  nn::Model model = load_model(o.model_path);
  model.require_blind(o.model_path);  // cae show draws blind repairs only
  data::Dataset ds = o.data.load();
  const data::Corruption corruption = o.corruption.apply(model_corruption(model));
  const ops::ExecutorOptions executor = o.common.executor_options();
  data::Image img = train::denoising_figure(model, backend, executor, ds.test, corruption, o.seed,
                                            o.count, o.scale);
  data::write_png(o.figure, img);
  std::fprintf(stderr, "wrote %s (%dx%d)\n", o.figure.c_str(), img.w, img.h);
  if (!o.latent.empty()) {
    data::Image codes = train::latent_figure(model, backend, executor, ds.test, corruption, o.seed,
                                             o.latent_count, o.scale);
    data::write_png(o.latent, codes);
    std::fprintf(stderr, "wrote %s (%dx%d)\n", o.latent.c_str(), codes.w, codes.h);
  }
}

}  // namespace

void add_show_command(CLI::App& app) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* cmd =
      app.add_subcommand("show", "write the figure: rows noisy / reconstructed / clean");
  o->common.add(cmd);
  o->data.add(cmd);
  o->corruption.add(cmd);
  cmd->add_option("-m,--model", o->model_path, "model file")->required();
  cmd->add_option("--count", o->count, "test images in the figure (default 10)")
      ->check(in_range(1, 1000));
  cmd->add_option("--scale", o->scale, "pixel magnification (default 3)")->check(in_range(1, 32));
  cmd->add_option("--seed", o->seed, "seed of the test damage (default 0)");
  cmd->add_option("-o,--out", o->figure, "PNG to write (default figure.png)");
  cmd->add_option("--latent", o->latent,
                  "also write the latent codes of the first images to this PNG");
  cmd->add_option("--latent-count", o->latent_count, "images in the latent figure (default 4)")
      ->check(in_range(1, 100));
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
