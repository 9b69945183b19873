// cae show: the tutorial's figure.
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
  std::string model_path, figure = "figure.png";
  int count = 10, scale = 3;
  float noise = -1;
  std::uint64_t seed = 0;
};

// The corruption the model file says it was trained for, unless --noise overrides it.
data::Corruption corruption_for(const nn::Model& model, float noise_override) {
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

void run(const ShowOptions& o) {
  const ops::Backend backend = o.common.apply();
  nn::Model model = load_model(o.model_path);
  data::Dataset ds = o.data.load();
  data::Image img = train::denoising_figure(model, backend, ds.test,
                                            corruption_for(model, o.noise), o.seed, o.count,
                                            o.scale);
  data::write_png(o.figure, img);
  std::fprintf(stderr, "wrote %s (%dx%d)\n", o.figure.c_str(), img.w, img.h);
}

}  // namespace

void add_show_command(CLI::App& app) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* cmd =
      app.add_subcommand("show", "write the figure: rows noisy / reconstructed / clean");
  o->common.add(cmd);
  o->data.add(cmd);
  cmd->add_option("-m,--model", o->model_path, "model file")->required();
  cmd->add_option("--count", o->count, "test images in the figure (default 10)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--scale", o->scale, "pixel magnification (default 3)")
      ->check(CLI::Range(1, 32));
  cmd->add_option("--noise", o->noise, "noise sigma (default: what the model was trained for)");
  cmd->add_option("--seed", o->seed, "seed of the test noise (default 0)");
  cmd->add_option("-o,--out", o->figure, "PNG to write (default figure.png)");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
