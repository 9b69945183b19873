#include <omp.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <thread>

#include "cae/error.h"
#include "commands.h"
#include "core/atomic_file.h"
#include "data/folder.h"
#include "io/model_file.h"
#include "io/model_store.h"

namespace cae::cli {

void CommonOptions::add(CLI::App* cmd) {
  cmd->add_option("--threads", threads, "worker threads (default: all cores)")
      ->check(in_range(1, 1024));
  cmd->add_option("--backend", backend,
                  "kernels: dnnl (oneDNN), ref (naive reference) or cuda (cuDNN on the GPU)")
      ->check(one_of({"dnnl", "ref", "cuda"}));
  cmd->add_option("--device", device,
                  "cpu (the --backend kernels) or cuda (same as --backend cuda)")
      ->check(one_of({"cpu", "cuda"}));
  cmd->add_option("--precision", precision,
                  "the convolutions' arithmetic: f32 (default) or bf16 (CPUs with AVX512_BF16; "
                  "default: $CAE_PRECISION, else f32)")
      ->check(one_of({"f32", "bf16"}));
}

ops::ExecutorOptions CommonOptions::executor_options() const {
  ops::ExecutorOptions options = executor_options_from_environment();
  if (!precision.empty()) options.precision = ops::parse_precision(precision, "--precision");
  // Said before a server starts, as apply() says it of the backend.
  const std::string why = ops::precision_unavailable_reason(chosen_backend(), options.precision);
  if (!why.empty()) throw Error(why);
  return options;
}

ops::Backend CommonOptions::chosen_backend() const {
  return ops::parse_backend(device == "cuda" ? "cuda" : backend);
}

ops::Backend CommonOptions::apply() const {
  omp_set_num_threads(threads > 0 ? threads
                                  : int(std::max(1u, std::thread::hardware_concurrency())));
  const ops::Backend chosen = chosen_backend();
  // Said before any data is read, rather than after a minute of loading.
  if (const std::string why = ops::backend_unavailable_reason(chosen); !why.empty())
    throw Error(std::string(ops::backend_name(chosen)) + " backend: " + why);
  return chosen;
}

void DataOptions::add(CLI::App* cmd) {
  cmd->add_option("--dataset", dataset,
                  "mnist, fashion-mnist, photos (scripts/setup-data.sh), a directory of IDX files "
                  "(train-/t10k-images-idx3-ubyte[.gz]) or a folder of PNG/JPEG images");
  cmd->add_option("--data", data_dir, "data directory (default: $CAE_DATA or ~/.local/share/cae)");
  cmd->add_option("--size", size, "image folders: working size HxW (default: the images' own)");
  cmd->add_option("--fit", fit, "image folders: resize (default) or crop (centred) to --size")
      ->check(one_of({"resize", "crop"}));
}

data::Dataset DataOptions::load(const data::PatchOptions& patches) const {
  data::FolderOptions folder;
  if (!size.empty() && patches.on())
    throw Error("--size " + size +
                " with --patch: patch training keeps the images whole and "
                "crops patches of them (leave out --size)");
  if (!size.empty()) data::parse_size(size, folder.h, folder.w);
  folder.fit = data::parse_fit(fit);
  folder.whole = patches.on();
  folder.min_h = patches.h;
  folder.min_w = patches.w;
  return data::load_dataset(dataset, data_dir.empty() ? data_dir_from_environment() : data_dir,
                            folder);
}

std::string DataOptions::photo_folder() const {
  if (!size.empty() || dataset == "mnist" || dataset == "fashion-mnist") return "";
  const std::string dir =
      dataset != "photos" ? dataset
                          : (data_dir.empty() ? data_dir_from_environment() : data_dir) + "/photos";
  // test/ (with or without train/ and val/) or images directly in the folder.
  const bool images = !data::list_images(dir).empty() || !data::list_images(dir + "/test").empty();
  return images ? dir : "";
}

void AdaptFlags::add(CLI::App* cmd) {
  cmd->add_option("--adapt", steps,
                  "before repairing a photo, train a copy of the model STEPS steps on crops of "
                  "the photo's undamaged part (default 0: off; docs/evaluation.md, \"Adapting "
                  "to the photo\"); needs masks, lines, the crosshair or strokes without noise")
      ->check(in_range(0, 1000000));
  cmd->add_option("--adapt-lr", lr,
                  "Adam's learning rate of --adapt at its first step (default "
                  "1e-3, decayed by a half cosine to 0)")
      ->check(in_range(1e-9, 1.0));
  cmd->add_option("--adapt-near", near,
                  "draw --adapt's crops only from windows within PX pixels of the damage "
                  "(default 0: from anywhere the photo is undamaged)")
      ->check(in_range(0, 1000000));
}

train::AdaptOptions AdaptFlags::options(const nn::Model& model, ops::Backend backend,
                                        const ops::ExecutorOptions& executor,
                                        std::uint64_t seed) const {
  if (near > 0 && steps == 0) throw Error("--adapt-near needs --adapt STEPS");
  train::AdaptOptions a;
  a.steps = steps;
  a.lr = lr;
  a.near = near;
  a.seed = seed;
  a.backend = backend;
  a.executor = executor;
  a.training = model_corruption(model);
  return a;
}

void add_ensemble_option(CLI::App* cmd, int& ensemble) {
  cmd->add_option("--ensemble", ensemble,
                  "average the repairs of the photo flipped and turned: 1 (default: off), 2 "
                  "(and flipped left-right), 4 (all flips) or 8 (the flips of it and of its "
                  "transpose); N times the work")
      ->check(one_of({1, 2, 4, 8}));
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return ext;
}

nn::Model load_model(const std::string& what) {
  const std::string path = io::resolve_model(what, models_folder_from_environment());
  return nn::Model::from_file(io::read_model_file(path), path);
}

std::string read_text(const std::string& path) {
  auto bytes = read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

}  // namespace cae::cli
