// cae denoise: apply a model to PNG files or to a whole IDX set.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cae/error.h"
#include "commands.h"
#include "data/idx.h"
#include "data/png_io.h"
#include "train/figures.h"

namespace cae::cli {

namespace {

struct DenoiseOptions {
  CommonOptions common;
  std::string model_path, idx_in, out;
  std::vector<std::string> inputs;
};

std::string dims_text(int h, int w, int c) {
  return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

void check_shape(const std::string& what, int h, int w, int c, ops::Dims model) {
  if (h != model.h || w != model.w || c != model.c)
    throw Error(what + ": images are " + dims_text(h, w, c) + ", the model takes " +
                dims_text(model.h, model.w, model.c));
}

void denoise_idx(const nn::Model& model, ops::Backend backend, const std::string& in,
                 const std::string& out) {
  const ops::Dims dims = model.input();
  const std::size_t image = dims.size();
  data::ImageSet set = data::read_idx_images(in);
  check_shape(in, set.h, set.w, set.c, dims);
  const int batch = std::min(set.n, 200);
  auto exec = model.make_executor(backend, batch);
  std::vector<float> x(batch * image), y(batch * image);
  std::vector<int> idx(batch);
  data::ImageSet result = set;
  for (int first = 0; first < set.n; first += batch) {
    const int count = std::min(batch, set.n - first);
    for (int b = 0; b < count; ++b) idx[b] = first + b;
    data::to_nchw(set, idx.data(), count, x.data());
    std::fill(x.begin() + count * image, x.end(), 0.f);  // padding of the last batch
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
}

void run(const DenoiseOptions& o) {
  const ops::Backend backend = o.common.apply();
  nn::Model model = load_model(o.model_path);
  if (!o.idx_in.empty()) return denoise_idx(model, backend, o.idx_in, o.out);
  if (o.inputs.empty()) throw Error("denoise: give PNG files or --idx FILE");
  const ops::Dims dims = model.input();
  std::filesystem::create_directories(o.out);
  auto exec = model.make_executor(backend, 1);
  std::vector<float> x(dims.size()), y(dims.size());
  for (const auto& path : o.inputs) {
    data::Image img = data::read_png(path);
    check_shape(path, img.h, img.w, img.c, dims);
    train::from_image(img, x.data());
    exec->forward(x.data());
    nn::output_to_image(model.loss(), exec->output(), y.data(), dims.size());
    const std::string target =
        (std::filesystem::path(o.out) / std::filesystem::path(path).filename()).string();
    data::write_png(target, train::to_image(y.data(), dims));
    std::fprintf(stderr, "%s -> %s\n", path.c_str(), target.c_str());
  }
}

}  // namespace

void add_denoise_command(CLI::App& app) {
  auto o = std::make_shared<DenoiseOptions>();
  CLI::App* cmd = app.add_subcommand("denoise", "apply a model to PNG files or an IDX set");
  o->common.add(cmd);
  cmd->add_option("-m,--model", o->model_path, "model file")->required();
  cmd->add_option("inputs", o->inputs, "PNG files (8-bit gray or RGB, the model's size)");
  cmd->add_option("--idx", o->idx_in, "an IDX image file to denoise as a whole");
  cmd->add_option("-o,--out", o->out, "output directory for PNGs, or output IDX file with --idx")
      ->required();
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
