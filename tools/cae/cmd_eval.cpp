// cae eval: a model against the noisy input and the classical baselines on a test set.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cae/error.h"
#include "eval_command.h"
#include "train/fill.h"
#include "train/photo_eval.h"

namespace cae::cli {

namespace {

// Whole photos of any size: the folder's test images (the first --limit), baselines tuned on
// its val/ images when it has them.
train::Comparison evaluate_photos(const EvalOptions& o, const std::string& dir,
                                  const nn::Model& model, train::CompareOptions options,
                                  std::FILE* log) {
  train::PhotoSplit split = train::photo_split(dir);
  if (o.limit > 0 && std::size_t(o.limit) < split.test.size()) split.test.resize(o.limit);
  const int channels = model.output().c;
  const std::vector<data::Image> test = train::read_photos(split.test, channels);
  const std::vector<data::Image> val = train::read_photos(split.val, channels);
  std::vector<std::string> names;
  for (const std::string& f : split.test)
    names.push_back(std::filesystem::path(f).filename().string());
  const data::Corruption corruption = o.corruption.apply(model_corruption(model));
  train::require_damage_mask(model, corruption);  // before the line that speaks of the run
  if (log)
    std::fprintf(log, "evaluating %s on %zu whole test photos of %s (%zu validation photos)\n",
                 o.model_path.c_str(), test.size(), dir.c_str(), val.size());
  options.executor = o.common.executor_options();
  train::TileOptions tiles;
  tiles.backend = options.backend;
  tiles.executor = options.executor;
  tiles.ensemble = o.ensemble;
  const train::AdaptOptions adapt =
      o.adapt.options(model, options.backend, options.executor, o.seed);
  return train::compare_photos({{"cae", &model}}, test, names, val, corruption, o.seed, options,
                               tiles, adapt.on() ? &adapt : nullptr);
}

// An MNIST, IDX, paired or --size folder test set: images of one shape.
train::Comparison evaluate_set(const EvalOptions& o, const nn::Model& model,
                               const data::Dataset* given, train::CompareOptions options,
                               std::FILE* log) {
  // It also checks --adapt-near (no executor is built from it).
  if (o.adapt.options(model, options.backend, options.executor, o.seed).on())
    throw Error("eval --adapt: adapting to a photo needs whole photos, a folder without --size");
  if (o.ensemble > 1)
    throw Error("eval --ensemble: the symmetries' ensemble repairs whole photos, a folder "
                "without --size");
  data::Dataset ds = given ? *given : o.data.load();
  data::truncate(ds, 0, o.limit);
  if (ds.paired()) options.targets = &ds.test_targets;
  const data::Corruption corruption = o.corruption.apply(model_corruption(model));
  train::require_damage_mask(model, corruption);
  if (log)
    std::fprintf(log, "evaluating %s on %d test images of %s\n", o.model_path.c_str(), ds.test.n,
                 ds.name.c_str());
  options.executor = o.common.executor_options();
  return train::compare({{"cae", &model}}, ds.test, corruption, o.seed, options);
}

}  // namespace

train::Comparison run_evaluation(const EvalOptions& o, const nn::Model* given_model,
                                 const data::Dataset* given, std::FILE* log) {
  train::CompareOptions options;
  options.backend = o.common.apply();
  options.baselines = !o.no_baselines;
  options.tune_images = o.tune;
  const nn::Model model = given_model ? *given_model : load_model(o.model_path);
  const std::string photos = given ? "" : o.data.photo_folder();
  const train::Comparison c = photos.empty() ? evaluate_set(o, model, given, options, log)
                                             : evaluate_photos(o, photos, model, options, log);
  if (!o.json.empty()) write_text(o.json, train::comparison_json(c));
  if (!o.csv.empty()) write_text(o.csv, train::comparison_csv(c));
  return c;
}

namespace {

void run(const EvalOptions& o) {
  const train::Comparison c = run_evaluation(o, nullptr, nullptr, stderr);
  std::printf("%s", train::comparison_table(c).c_str());
  for (const std::string* f : {&o.json, &o.csv})
    if (!f->empty()) std::fprintf(stderr, "wrote %s\n", f->c_str());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "score a model against the noisy input and the classical baselines (median, Gaussian, NLM; "
      "cv::inpaint Telea and Navier-Stokes for masks, lines and the crosshair); image folders "
      "without --size are scored whole, each photo at its own size");
  add_eval_options(cmd, *o);
  cmd->final_callback([o] { run(*o); });
}

void add_eval_options(CLI::App* cmd, EvalOptions& options, bool model_required) {
  EvalOptions* o = &options;
  o->common.add(cmd);
  o->data.add(cmd);
  o->corruption.add(cmd);
  CLI::Option* model = cmd->add_option("-m,--model", o->model_path, "model file");
  if (model_required) model->required();
  cmd->add_option("--seed", o->seed, "seed of the test damage (default 0)");
  cmd->add_option("--limit", o->limit, "use only the first N test images")
      ->check(at_least(0));
  cmd->add_option("--tune", o->tune,
                  "baseline parameters are picked by PSNR on the first N images (default 100): "
                  "of the folder's val/ photos when it has them, else of the test images")
      ->check(in_range(1, 1000000));
  o->adapt.add(cmd);
  add_ensemble_option(cmd, o->ensemble);
  cmd->add_flag("--no-baselines", o->no_baselines, "score only the noisy input and the model");
  cmd->add_option("--json", o->json, "write the table as JSON here");
  cmd->add_option("--csv", o->csv, "write per-image scores as CSV here");
}

}  // namespace cae::cli
