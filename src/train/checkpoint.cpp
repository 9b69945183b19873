#include "train/checkpoint.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "cae/error.h"
#include "core/text.h"
#include "io/model_file.h"

namespace cae::train {

namespace {

std::string config_value(const TrainConfig& c, const std::string& key) {
  std::ostringstream s;
  s << std::setprecision(9);
  if (key == "batch") s << c.batch;
  else if (key == "seed") s << c.seed;
  else if (key == "optimizer") s << nn::optimizer_name(c.optimizer.kind);
  else if (key == "lr") s << c.optimizer.lr;
  else if (key == "momentum") s << c.optimizer.momentum;
  else if (key == "corruption") s << c.corruption.describe();
  return s.str();
}

const char* const kRunKeys[] = {"batch", "seed", "optimizer", "lr", "momentum", "corruption"};

// Patch training's settings, "" when off (a checkpoint without the key).
std::string patches_text(const data::PatchOptions& p) {
  if (!p.on()) return "";
  return std::to_string(p.h) + "x" + std::to_string(p.w) +
         " per_epoch=" + std::to_string(p.per_epoch) +
         " augment=" + data::format_augment(p.augment);
}

// "loss=L epoch=E", L the shortest text that reads back as exactly the loss.
std::string format_best_val(const BestVal& best) {
  return "loss=" + exact_text(best.loss) + " epoch=" + std::to_string(best.epoch);
}

BestVal parse_best_val(const std::string& path, const std::string& text) {
  std::istringstream words(text);
  std::string loss, epoch;
  words >> loss >> epoch;
  char* end = nullptr;
  BestVal best;
  if (loss.rfind("loss=", 0) == 0 && epoch.rfind("epoch=", 0) == 0) {
    best.loss = std::strtod(loss.c_str() + 5, &end);
    if (*end == '\0') {
      best.epoch = std::atoi(epoch.c_str() + 6);
      if (best.epoch >= 1) return best;
    }
  }
  throw Error(path + ": meta 'best_val' is '" + text + "', expected 'loss=L epoch=E'");
}

}  // namespace

namespace {

const char kValColumns[] = ",val_loss,val_bce,val_psnr_noisy,val_psnr_output";

}  // namespace

std::string history_csv(const std::vector<EpochStats>& history) {
  const bool val =
      std::any_of(history.begin(), history.end(), [](const EpochStats& e) { return e.validated; });
  std::ostringstream s;
  s << "epoch,train_loss,test_loss,test_bce,test_psnr_noisy,test_psnr_output,seconds,"
       "images_per_second"
    << (val ? kValColumns : "") << '\n';
  s << std::setprecision(8);
  for (const auto& e : history) {
    s << e.epoch << ',' << e.train_loss << ',' << e.test.loss << ',' << e.test.bce << ','
      << e.test.psnr_noisy << ',' << e.test.psnr_output << ',' << e.seconds << ','
      << e.images_per_second;
    if (val)
      s << ',' << e.val.loss << ',' << e.val.bce << ',' << e.val.psnr_noisy << ','
        << e.val.psnr_output;
    s << '\n';
  }
  return s.str();
}

std::vector<EpochStats> parse_history(const std::string& csv) {
  std::vector<EpochStats> rows;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  const bool val = line.find(kValColumns) != std::string::npos;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EpochStats e;
    char comma;
    std::istringstream f(line);
    f >> e.epoch >> comma >> e.train_loss >> comma >> e.test.loss >> comma >> e.test.bce >>
        comma >> e.test.psnr_noisy >> comma >> e.test.psnr_output >> comma >> e.seconds >>
        comma >> e.images_per_second;
    if (val) {
      f >> comma >> e.val.loss >> comma >> e.val.bce >> comma >> e.val.psnr_noisy >> comma >>
          e.val.psnr_output;
      e.validated = true;
    }
    if (!f) throw Error("checkpoint: history row '" + line + "' is malformed");
    rows.push_back(e);
  }
  return rows;
}

void write_checkpoint(const std::string& path, const nn::Model& model, ops::Executor& exec,
                      nn::Optimizer& opt, const TrainConfig& config, const Checkpoint& state) {
  const int epoch = state.epoch;
  nn::Model snapshot = model;
  snapshot.params() = exec.to_canonical(exec.params());
  io::ModelFile file = snapshot.to_file();
  file.kind = "checkpoint";
  file.set_meta("epoch", std::to_string(epoch));
  file.set_meta("optimizer_steps", std::to_string(opt.steps()));
  for (const char* key : kRunKeys) file.set_meta(key, config_value(config, key));
  // A constant schedule and a run without patches or validation write nothing of theirs, so
  // such a run's checkpoint stays as it always was.
  if (config.patches.on()) file.set_meta("patches", patches_text(config.patches));
  if (!config.lr_schedule.is_constant()) {
    file.set_meta("lr_schedule", format_lr_schedule(config.lr_schedule));
    file.set_meta("lr_state", format_lr_state(state.lr_state));
  }
  if (state.best_val.epoch > 0) file.set_meta("best_val", format_best_val(state.best_val));
  // Every random draw is keyed by (seed, purpose, epoch, position): the seed and the epoch are
  // the whole generator state.
  file.set_meta("rng", "xoshiro256** streams keyed by seed and epoch; next epoch " +
                           std::to_string(epoch + 1));
  file.set_meta("history", history_csv(state.history));
  const auto names = opt.slot_names();
  for (std::size_t s = 0; s < names.size(); ++s) {
    auto tensors = exec.to_canonical(opt.slots()[s]);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      io::NamedTensor t;
      t.name = std::string(nn::optimizer_name(config.optimizer.kind)) + "." + names[s] + "." +
               model.param_name(i);
      const auto& shape = model.param_infos()[i].shape;
      t.shape.assign(shape.begin(), shape.end());
      t.data = std::move(tensors[i]);
      file.tensors.push_back(std::move(t));
    }
  }
  io::write_model_file(path, file);
}

Checkpoint read_checkpoint(const std::string& path, nn::Model& model, ops::Executor& exec,
                           nn::Optimizer& opt, const TrainConfig& config) {
  io::ModelFile file = io::read_model_file(path);
  if (file.kind != "checkpoint")
    throw Error(path + ": expected a checkpoint, found a file of kind '" + file.kind + "'");
  if (file.spec != model.arch().text)
    throw Error(path + ": the checkpoint's architecture differs from this run's");
  nn::Model saved = nn::Model::from_file(file, path);
  if (!(saved.input() == model.input()) || saved.loss() != model.loss() ||
      saved.informed() != model.informed())
    throw Error(path + ": the checkpoint was trained on another input shape or loss, or " +
                (saved.informed() ? "informed of the damage mask" : "blind to the damage mask"));
  if (saved.fill() != model.fill())
    throw Error(path + ": the checkpoint's fill is '" + saved.fill() + "', this run asks for '" +
                model.fill() + "' (resume needs the same settings)");
  for (const char* key : kRunKeys) {
    const std::string& was = file.meta_value(key);
    const std::string now = config_value(config, key);
    if (was != now)
      throw Error(path + ": the checkpoint was trained with " + key + " " + was +
                  ", this run asks for " + now + " (resume needs the same settings)");
  }
  const std::string* patches = file.find_meta("patches");
  const std::string patches_was = patches ? *patches : "",
                    patches_now = patches_text(config.patches);
  if (patches_was != patches_now)
    throw Error(path + ": the checkpoint was trained with patches '" + patches_was +
                "', this run asks for '" + patches_now + "' (resume needs the same settings)");
  const std::string* schedule = file.find_meta("lr_schedule");
  const std::string was = schedule ? *schedule : "constant";
  const std::string now = format_lr_schedule(config.lr_schedule);
  if (was != now)
    throw Error(path + ": the checkpoint was trained with lr_schedule '" + was +
                "', this run asks for '" + now + "' (resume needs the same settings)");
  model.params() = saved.params();
  exec.from_canonical(model.params(), exec.params());
  const auto names = opt.slot_names();
  for (std::size_t s = 0; s < names.size(); ++s) {
    std::vector<std::vector<float>> tensors;
    for (std::size_t i = 0; i < model.param_infos().size(); ++i) {
      const std::string name = std::string(nn::optimizer_name(config.optimizer.kind)) + "." +
                               names[s] + "." + model.param_name(i);
      const io::NamedTensor& t = file.tensor(name);
      if (t.data.size() != model.params()[i].size())
        throw Error(path + ": tensor '" + name + "' has the wrong size");
      tensors.push_back(t.data);
    }
    exec.from_canonical(tensors, opt.slots()[s]);
  }
  Checkpoint cp;
  try {
    cp.epoch = std::stoi(file.meta_value("epoch"));
    opt.set_steps(std::stoll(file.meta_value("optimizer_steps")));
  } catch (const std::logic_error&) {
    throw Error(path + ": meta 'epoch' or 'optimizer_steps' is not a number");
  }
  cp.history = parse_history(file.meta_value("history"));
  if (const std::string* best = file.find_meta("best_val"))
    cp.best_val = parse_best_val(path, *best);
  cp.lr_state = initial_lr_state(config.optimizer.lr);
  if (!config.lr_schedule.is_constant()) {
    try {
      cp.lr_state = parse_lr_state(file.meta_value("lr_state"));
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    }
  }
  return cp;
}

}  // namespace cae::train
