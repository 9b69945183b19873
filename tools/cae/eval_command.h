// cae eval's options and its run, shared by the cae program (cmd_eval.cpp) and the Python
// module's cae.evaluate() (python/train.cpp): the same options, defaults, checks and table.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>

#include "commands.h"
#include "train/compare.h"

namespace cae::cli {

struct EvalOptions {
  CommonOptions common;
  DataOptions data;
  CorruptionOptions corruption;
  std::string model_path, json, csv;
  std::uint64_t seed = 0;
  int limit = 0, tune = 100, ensemble = 1;
  AdaptFlags adapt;
  bool no_baselines = false;
};

// Registers every option of `cae eval` on cmd, parsing into o (which must outlive the parse);
// with model_required, -m/--model must be given.
void add_eval_options(CLI::App* cmd, EvalOptions& o, bool model_required = true);

// Requires options as add_eval_options parsed them. Ensures the comparison cae eval prints, of
// `model` (else the file -m names) on `given`'s test set (else the dataset the options name),
// damaged as the options say (else as the model was trained), and the --json and --csv files
// written; with a log, a line saying what is evaluated before the work. Throws cae::Error on
// any failure.
train::Comparison run_evaluation(const EvalOptions& o, const nn::Model* model = nullptr,
                                 const data::Dataset* given = nullptr, std::FILE* log = nullptr);

}  // namespace cae::cli
