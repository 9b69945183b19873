// The cae subcommands. Each add_*_command registers one subcommand on the app with its options
// and a callback that runs it; the callbacks throw cae::Error and main() reports it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/patches.h"
#include "environment.h"
#include "nn/model.h"
#include "ops/ops.h"
#include "train/adapt.h"
#include "usage.h"

namespace cae::cli {

void add_train_command(CLI::App& app);
void add_denoise_command(CLI::App& app);
void add_show_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_checkerboard_command(CLI::App& app);
void add_repair_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_models_command(CLI::App& app);
void add_serve_command(CLI::App& app);
// Registers every subcommand above, in the order --help lists them (all_commands.cpp).
void add_all_commands(CLI::App& app);

// Options several commands share.
struct CommonOptions {
  int threads = 0;
  std::string backend = "dnnl";
  std::string device = "cpu";  // cuda: the cuda backend, whatever --backend says
  std::string precision;       // f32 | bf16; empty: $CAE_PRECISION, else f32
  void add(CLI::App* cmd);
  // The executor options the environment gives (executor_options_from_environment), with
  // --precision over $CAE_PRECISION. Throws cae::Error for a bad variable, or a precision the
  // backend cannot run here (ops::precision_unavailable_reason).
  ops::ExecutorOptions executor_options() const;
  // Sets the thread count; returns the backend. Throws cae::Error saying why when the backend
  // cannot run here (no GPU, or built without CUDA).
  ops::Backend apply() const;
  // The backend --backend and --device name.
  ops::Backend chosen_backend() const;
};

struct DataOptions {
  std::string dataset = "mnist";
  std::string data_dir;
  std::string size, fit = "resize";  // folder datasets: working size HxW, resize or crop
  void add(CLI::App* cmd);
  // Loads the dataset; with patches on, image folders keep their images whole (training images
  // at least the patch size). Throws cae::Error when --size is given with patches.
  data::Dataset load(const data::PatchOptions& patches = {}) const;
  // The image folder whose photos are evaluated whole, each at its own size: that of 'photos'
  // or of a folder of images, when no --size is given; "" otherwise (MNIST, IDX, --size).
  std::string photo_folder() const;
};

// --corruption TEXT and one flag per model (corruption_options.cpp); flags override the text,
// and both override the base (the default for training, the model's own for eval and show).
struct CorruptionOptions {
  std::string text;
  float noise = -1, speckle = -1, salt_pepper = -1, mask_value = -1, line_value = -1;
  int masks = -1, mask_min = -1, mask_max = -1, lines = -1, thickness = -1, jitter = -1;
  int strokes = -1, stroke_min = -1, stroke_max = -1;
  float stroke_value = -1;
  bool crosshair = false;
  void add(CLI::App* cmd);
  data::Corruption apply(data::Corruption base) const;
};

// The corruption a model file says it was trained for (meta "corruption"), else the default.
using train::model_corruption;

// --adapt STEPS, --adapt-lr LR and --adapt-near PX of cae eval and cae repair (common.cpp):
// adapting the model to each photo before its repair (train/adapt.h).
struct AdaptFlags {
  int steps = 0;
  double lr = 1e-3;
  int near = 0;
  void add(CLI::App* cmd);
  // Ensures the adaptation of `model` (to the damage it was trained for) on backend, built with
  // executor, with the damage's seed; off (on() false) when steps is 0. Throws cae::Error for
  // --adapt-near without --adapt.
  train::AdaptOptions options(const nn::Model& model, ops::Backend backend,
                              const ops::ExecutorOptions& executor, std::uint64_t seed) const;
};

// --ensemble N of cae eval, repair and denoise: each photo repaired under the first N of the
// eight symmetries of the square and the repairs averaged (train/tiling.h, TileOptions).
void add_ensemble_option(CLI::App* cmd, int& ensemble);

// A model file, or a shipped model by name (io::resolve_model; or in $CAE_MODELS only, when set:
// models_folder_from_environment()).
nn::Model load_model(const std::string& what);
// The extension of path's file name, lower case, with its dot ("" when it has none).
std::string lower_extension(const std::string& path);
std::string read_text(const std::string& path);
// Atomic (temporary file, fsync, rename).
void write_text(const std::string& path, const std::string& text);

}  // namespace cae::cli
