// cae eval: a model against the noisy input and the classical baselines on a test set.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "train/compare.h"

namespace cae::cli {

namespace {

struct EvalOptions {
  CommonOptions common;
  DataOptions data;
  CorruptionOptions corruption;
  std::string model_path, json, csv;
  std::uint64_t seed = 0;
  int limit = 0, tune = 100;
  bool no_baselines = false;
};

void run(const EvalOptions& o) {
  train::CompareOptions options;
  options.backend = o.common.apply();
  options.baselines = !o.no_baselines;
  options.tune_images = o.tune;
  nn::Model model = load_model(o.model_path);
  data::Dataset ds = o.data.load();
  data::truncate(ds.test, o.limit);
  const data::Corruption corruption = o.corruption.apply(model_corruption(model));
  std::fprintf(stderr, "evaluating %s on %d test images of %s\n", o.model_path.c_str(), ds.test.n,
               ds.name.c_str());
  const train::Comparison c =
      train::compare({{"cae", &model}}, ds.test, corruption, o.seed, options);
  std::printf("%s", train::comparison_table(c).c_str());
  if (!o.json.empty()) write_text(o.json, train::comparison_json(c));
  if (!o.csv.empty()) write_text(o.csv, train::comparison_csv(c));
  for (const std::string* f : {&o.json, &o.csv})
    if (!f->empty()) std::fprintf(stderr, "wrote %s\n", f->c_str());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "score a model against the noisy input and median / Gaussian / NLM baselines");
  o->common.add(cmd);
  o->data.add(cmd);
  o->corruption.add(cmd);
  cmd->add_option("-m,--model", o->model_path, "model file")->required();
  cmd->add_option("--seed", o->seed, "seed of the test damage (default 0)");
  cmd->add_option("--limit", o->limit, "use only the first N test images")
      ->check(at_least(0));
  cmd->add_option("--tune", o->tune,
                  "baseline parameters are picked by PSNR on the first N images (default 100)")
      ->check(in_range(1, 1000000));
  cmd->add_flag("--no-baselines", o->no_baselines, "score only the noisy input and the model");
  cmd->add_option("--json", o->json, "write the table as JSON here");
  cmd->add_option("--csv", o->csv, "write per-image scores as CSV here");
  cmd->final_callback([o] { run(*o); });
}

}  // namespace cae::cli
