// cae denoise: apply a model to image files of any size (in tiles) or to a whole IDX set.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cae/error.h"
#include "commands.h"
#include "data/idx.h"
#include "data/image_io.h"
#include "data/png_io.h"
#include "train/figures.h"
#include "train/tiling.h"

namespace cae::cli {

namespace {

struct DenoiseOptions {
  CommonOptions common;
  std::string model_path = "denoise", idx_in, out;
  std::vector<std::string> inputs;
  int overlap = -1, depth = 8, ensemble = 1;
};

std::string dims_text(int h, int w, int c) {
  return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

void check_shape(const std::string& what, int h, int w, int c, ops::Dims model) {
  if (h != model.h || w != model.w || c != model.c)
    throw Error(what + ": images are " + dims_text(h, w, c) + ", the model takes " +
                dims_text(model.h, model.w, model.c));
}

void denoise_idx(const nn::Model& model, ops::Backend backend,
                 const ops::ExecutorOptions& executor, const std::string& in,
                 const std::string& out) {
  const ops::Dims dims = model.input();
  const std::size_t image = dims.size();
  data::ImageSet set = data::read_idx_images(in);
  check_shape(in, set.h, set.w, set.c, dims);
  const int batch = std::min(set.n, nn::kInferenceChunk);  // as the API runs them
  auto exec = model.make_inference_executor(backend, batch, executor);
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
  model.require_blind(o.model_path);
  if (!o.idx_in.empty() && o.ensemble > 1)
    throw Error("denoise --ensemble: the symmetries' ensemble is for PNG/JPEG files, not --idx");
  if (!o.idx_in.empty())
    return denoise_idx(model, backend, o.common.executor_options(), o.idx_in, o.out);
  if (o.inputs.empty()) throw Error("denoise: give PNG/JPEG files or --idx FILE");
  const ops::Dims dims = model.input();
  // -o NAME.png writes the one input's result there; anything else is a folder of results.
  const bool to_file = lower_extension(o.out) == ".png";
  if (to_file && o.inputs.size() != 1)
    throw Error("-o " + o.out + " names one file, but " + std::to_string(o.inputs.size()) +
                " images are given: name a folder");
  if (to_file && std::filesystem::is_directory(o.out))
    throw Error("-o " + o.out + " names a file, but it is an existing folder");
  if (!to_file) std::filesystem::create_directories(o.out);
  train::TileOptions tiles;
  tiles.overlap = o.overlap;
  tiles.ensemble = o.ensemble;
  tiles.backend = backend;
  tiles.executor = o.common.executor_options();
  for (const auto& path : o.inputs) {
    data::Image img = data::read_image(path);
    if (!train::takes_colours(model, img.c))  // gray goes through a colour model
      throw Error(path + ": the image has " + std::to_string(img.c) +
                  " channel(s), the model takes " + std::to_string(dims.c));
    const ops::Dims image_dims{img.c, img.h, img.w};
    const std::size_t hw = std::size_t(img.h) * img.w;
    std::vector<float> x(image_dims.size());
    train::from_image(img, x.data());
    // An image of the model's size is one tile: the plain forward pass.
    const std::vector<float> y = train::denoise_photo(model, x.data(), image_dims, tiles);
    std::filesystem::path target = o.out;
    if (!to_file) {
      target = std::filesystem::path(o.out) / std::filesystem::path(path).filename();
      target.replace_extension(".png");
    }
    if (o.depth == 16) {
      data::Image16 wide;
      wide.h = img.h, wide.w = img.w, wide.c = img.c;
      wide.pixels.resize(y.size());
      for (std::size_t p = 0; p < hw; ++p)
        for (int c = 0; c < img.c; ++c)
          wide.pixels[p * img.c + c] =
              std::uint16_t(std::lround(std::clamp(y[c * hw + p], 0.f, 1.f) * 65535.f));
      data::write_png16(target.string(), wide);
    } else {
      data::write_png(target.string(), train::to_image(y.data(), image_dims));
    }
    std::fprintf(stderr, "%s (%dx%d) -> %s\n", path.c_str(), img.w, img.h, target.string().c_str());
  }
}

}  // namespace

void add_denoise_command(CLI::App& app) {
  auto o = std::make_shared<DenoiseOptions>();
  CLI::App* cmd = app.add_subcommand("denoise", "apply a model to PNG files or an IDX set");
  o->common.add(cmd);
  cmd->add_option("-m,--model", o->model_path,
                  "a blind model: a file, or a shipped model's name (default: denoise; cae models "
                  "lists them)");
  cmd->add_option("inputs", o->inputs,
                  "PNG (any depth) or JPEG files with the model's channels (or gray, for a colour "
                  "model), any size: larger "
                  "images are denoised in overlapping tiles of the model's size");
  cmd->add_option("--overlap", o->overlap,
                  "pixels neighbouring tiles share (default: a quarter of the tile)")
      ->check(at_least(0));
  add_ensemble_option(cmd, o->ensemble);
  cmd->add_option("--depth", o->depth, "bits per sample of the output PNGs: 8 or 16")
      ->check(one_of({8, 16}));
  cmd->add_option("--idx", o->idx_in, "an IDX image file to denoise as a whole");
  cmd->add_option("-o,--out", o->out,
                  "where to write: a .png file (one image), a folder (created; each image as "
                  "NAME.png), or the output IDX file with --idx")
      ->required();
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
