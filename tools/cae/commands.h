// The cae subcommands. Each add_*_command registers one subcommand on the app with its options
// and a callback that runs it; the callbacks throw cae::Error and main() reports it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "data/dataset.h"
#include "nn/model.h"
#include "ops/ops.h"

namespace cae::cli {

void add_train_command(CLI::App& app);
void add_denoise_command(CLI::App& app);
void add_show_command(CLI::App& app);
void add_info_command(CLI::App& app);

// Options several commands share.
struct CommonOptions {
  int threads = 0;
  std::string backend = "dnnl";
  void add(CLI::App* cmd);
  // Sets the thread count; returns the backend.
  ops::Backend apply() const;
};

struct DataOptions {
  std::string dataset = "mnist";
  std::string data_dir;
  void add(CLI::App* cmd);
  data::Dataset load() const;
};

nn::Model load_model(const std::string& path);
std::string read_text(const std::string& path);
// Atomic (temporary file, fsync, rename).
void write_text(const std::string& path, const std::string& text);

}  // namespace cae::cli
