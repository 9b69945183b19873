#include <omp.h>

#include <algorithm>
#include <thread>

#include "commands.h"
#include "core/atomic_file.h"
#include "io/model_file.h"

namespace cae::cli {

void CommonOptions::add(CLI::App* cmd) {
  cmd->add_option("--threads", threads, "worker threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--backend", backend, "kernels: dnnl (oneDNN) or ref (naive reference)")
      ->check(CLI::IsMember({"dnnl", "ref"}));
}

ops::Backend CommonOptions::apply() const {
  omp_set_num_threads(threads > 0 ? threads
                                  : int(std::max(1u, std::thread::hardware_concurrency())));
  return ops::parse_backend(backend);
}

void DataOptions::add(CLI::App* cmd) {
  cmd->add_option("--dataset", dataset,
                  "mnist, fashion-mnist, or a directory of IDX files "
                  "(train-/t10k-images-idx3-ubyte[.gz])");
  cmd->add_option("--data", data_dir, "data directory (default: $CAE_DATA or ~/.local/share/cae)");
}

data::Dataset DataOptions::load() const {
  return data::load_dataset(dataset, data::data_dir(data_dir));
}

nn::Model load_model(const std::string& path) {
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
