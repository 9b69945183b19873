#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "io/model_file.h"

namespace cae::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sigmoid cross-entropy of an image p against the clean image z (both in [0,1]), the number the
// tutorial reports, for models whose output is not logits.
double image_bce(const float* p, const float* z, std::size_t n) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double q = std::clamp(double(p[i]), 1e-7, 1 - 1e-7);
    sum -= z[i] * std::log(q) + (1 - z[i]) * std::log1p(-q);
  }
  return sum;
}

double psnr(double mse) { return 10.0 * std::log10(1.0 / std::max(mse, 1e-10)); }

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

std::vector<EpochStats> parse_history(const std::string& csv) {
  std::vector<EpochStats> rows;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EpochStats e;
    char comma;
    std::istringstream f(line);
    f >> e.epoch >> comma >> e.train_loss >> comma >> e.test.loss >> comma >> e.test.bce >>
        comma >> e.test.psnr_noisy >> comma >> e.test.psnr_output >> comma >> e.seconds >>
        comma >> e.images_per_second;
    if (!f) throw Error("checkpoint: history row '" + line + "' is malformed");
    rows.push_back(e);
  }
  return rows;
}

struct Checkpoint {
  int epoch = 0;
  std::vector<EpochStats> history;
};

void write_checkpoint(const std::string& path, const nn::Model& model, ops::Executor& exec,
                      nn::Optimizer& opt, const TrainConfig& config, int epoch,
                      const std::vector<EpochStats>& history) {
  nn::Model snapshot = model;
  snapshot.params() = exec.to_canonical(exec.params());
  io::ModelFile file = snapshot.to_file();
  file.kind = "checkpoint";
  file.set_meta("epoch", std::to_string(epoch));
  file.set_meta("optimizer_steps", std::to_string(opt.steps()));
  for (const char* key : kRunKeys) file.set_meta(key, config_value(config, key));
  // Every random draw is keyed by (seed, purpose, epoch, position): the seed and the epoch are
  // the whole generator state.
  file.set_meta("rng", "xoshiro256** streams keyed by seed and epoch; next epoch " +
                           std::to_string(epoch + 1));
  file.set_meta("history", history_csv(history));
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
  if (!(saved.input() == model.input()) || saved.loss() != model.loss())
    throw Error(path + ": the checkpoint was trained on another input shape or loss");
  for (const char* key : kRunKeys) {
    const std::string& was = file.meta_value(key);
    const std::string now = config_value(config, key);
    if (was != now)
      throw Error(path + ": the checkpoint was trained with " + key + " " + was +
                  ", this run asks for " + now + " (resume needs the same settings)");
  }
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
  return cp;
}

}  // namespace

std::string history_csv(const std::vector<EpochStats>& history) {
  std::ostringstream s;
  s << "epoch,train_loss,test_loss,test_bce,test_psnr_noisy,test_psnr_output,seconds,"
       "images_per_second\n";
  s << std::setprecision(8);
  for (const auto& e : history)
    s << e.epoch << ',' << e.train_loss << ',' << e.test.loss << ',' << e.test.bce << ','
      << e.test.psnr_noisy << ',' << e.test.psnr_output << ',' << e.seconds << ','
      << e.images_per_second << '\n';
  return s.str();
}

EvalStats evaluate(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed) {
  const int batch = exec.desc().batch;
  const std::size_t image = model.input().size();
  std::vector<float> clean(batch * image), noisy(batch * image), image_out(batch * image);
  std::vector<int> indices(batch);
  EvalStats st;
  double loss_sum = 0, bce_sum = 0;
  for (int first = 0; first < test.n; first += batch) {
    const int count = std::min(batch, test.n - first);
    for (int b = 0; b < count; ++b) indices[b] = first + b;
    data::to_nchw(test, indices.data(), count, clean.data());
    data::corrupt(corruption, clean.data(), noisy.data(), count, image, seed,
                  Stream::test_noise, 0, std::uint64_t(first));
    std::fill(noisy.begin() + count * image, noisy.end(), 0.f);  // padding of the last batch
    exec.forward(noisy.data());
    const float* out = exec.output();
    const std::size_t n = count * image;
    loss_sum += nn::loss_and_grad(model.loss(), out, clean.data(), n, nullptr) * double(n);
    nn::output_to_image(model.loss(), out, image_out.data(), n);
    bce_sum += image_bce(image_out.data(), clean.data(), n);
    for (int b = 0; b < count; ++b) {
      double se_noisy = 0, se_out = 0;
      for (std::size_t i = b * image; i < (b + 1) * image; ++i) {
        const double dn = noisy[i] - clean[i], dout = image_out[i] - clean[i];
        se_noisy += dn * dn;
        se_out += dout * dout;
      }
      st.mse_noisy += se_noisy;
      st.mse_output += se_out;
      st.psnr_noisy += psnr(se_noisy / double(image));
      st.psnr_output += psnr(se_out / double(image));
    }
    st.images += count;
  }
  const double elements = double(st.images) * double(image);
  st.loss = loss_sum / elements;
  st.bce = bce_sum / elements;
  st.mse_noisy /= elements;
  st.mse_output /= elements;
  st.psnr_noisy /= st.images;
  st.psnr_output /= st.images;
  return st;
}

std::vector<EpochStats> train(nn::Model& model, const data::Dataset& data,
                              const TrainConfig& config, Progress& progress) {
  if (!(data.dims() == model.input()))
    throw Error("the data's images (" + std::to_string(data.train.h) + "x" +
                std::to_string(data.train.w) + "x" + std::to_string(data.train.c) +
                ") do not match the model's input");
  if (config.batch < 1 || config.batch > data.train.n)
    throw Error("batch size " + std::to_string(config.batch) + " needs 1 to " +
                std::to_string(data.train.n) + " training images");
  if (config.epochs < 1) throw Error("epochs must be at least 1");
  std::filesystem::create_directories(config.out_dir);
  const std::string checkpoint_path = config.out_dir + "/checkpoint.cae";

  auto exec = model.make_executor(config.backend, config.batch);
  nn::Optimizer opt(config.optimizer, exec->params().size());
  std::vector<EpochStats> history;
  int first_epoch = 1;
  if (config.resume) {
    if (!std::filesystem::exists(checkpoint_path))
      throw Error("--resume: no checkpoint at " + checkpoint_path);
    Checkpoint cp = read_checkpoint(checkpoint_path, model, *exec, opt, config);
    history = cp.history;
    first_epoch = cp.epoch + 1;
  }

  const int batch = config.batch;
  const int batches = data.train.n / batch;
  const std::size_t image = model.input().size();
  const std::size_t n = std::size_t(batch) * image;
  std::vector<float> clean(n), noisy(n), d_out(n);
  progress.on_start(first_epoch, config.epochs, batches);

  for (int epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const auto t0 = Clock::now();
    Rng shuffle_rng = make_rng(config.seed, Stream::shuffle, std::uint64_t(epoch));
    const std::vector<int> order = permutation(data.train.n, shuffle_rng);
    double loss_sum = 0;
    double train_seconds = 0;
    for (int b = 0; b < batches; ++b) {
      const auto step_start = Clock::now();
      const int* idx = order.data() + std::size_t(b) * batch;
      data::to_nchw(data.train, idx, batch, clean.data());
      data::corrupt(config.corruption, clean.data(), noisy.data(), batch, image, config.seed,
                    Stream::train_noise, std::uint64_t(epoch), std::uint64_t(b) * batch);
      exec->forward(noisy.data());
      const double loss = nn::loss_and_grad(model.loss(), exec->output(), clean.data(), n,
                                            d_out.data());
      if (!std::isfinite(loss))
        throw Error("training diverged: the loss is " + std::to_string(loss) + " at epoch " +
                    std::to_string(epoch) + ", step " + std::to_string(b + 1) +
                    "; the last good checkpoint is " + checkpoint_path);
      exec->backward(d_out.data(), nullptr);
      opt.step(exec->params(), exec->grads());
      loss_sum += loss;
      train_seconds += seconds_since(step_start);
      progress.on_batch(epoch, b + 1, batches, loss, double(b + 1) * batch / train_seconds);
    }
    EpochStats st;
    st.epoch = epoch;
    st.train_loss = loss_sum / batches;
    st.images_per_second = double(batches) * batch / train_seconds;
    st.test = evaluate(model, *exec, data.test, config.corruption, config.seed);
    if (!std::isfinite(st.test.loss))
      throw Error("training diverged: the test loss is not finite after epoch " +
                  std::to_string(epoch) + "; the last good checkpoint is " + checkpoint_path);
    st.seconds = seconds_since(t0);
    history.push_back(st);
    write_checkpoint(checkpoint_path, model, *exec, opt, config, epoch, history);
    const std::string csv = history_csv(history);
    write_file_atomic(config.out_dir + "/losses.csv",
                      {reinterpret_cast<const std::uint8_t*>(csv.data()), csv.size()});
    progress.on_epoch(st);
  }
  model.params() = exec->to_canonical(exec->params());
  model.meta().emplace_back("corruption", config.corruption.describe());
  model.meta().emplace_back("epochs", std::to_string(config.epochs));
  io::write_model_file(config.out_dir + "/model.cae", model.to_file());
  return history;
}

}  // namespace cae::train
