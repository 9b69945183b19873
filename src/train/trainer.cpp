#include "train/trainer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "io/model_file.h"
#include "train/fused_epoch.h"
#include "train/gradient_sum.h"

namespace cae::train {

int default_micro_batch(int share) {
  for (int d = std::min(share, 50); d >= 16; --d)
    if (share % d == 0) return d;
  return share;
}

namespace {

using Clock = std::chrono::steady_clock;

// The first piece of training state holding a NaN or Inf ("weights", "optimizer state"), or
// nullptr when all is finite.
const char* non_finite_state(ops::Executor& exec, nn::Optimizer& opt) {
  auto finite = [](std::span<const float> values) {
    for (float x : values)
      if (!std::isfinite(x)) return false;
    return true;
  };
  if (!finite(exec.params())) return "weights";
  for (const auto& slot : opt.slots())
    if (!finite(slot)) return "optimizer state";
  return nullptr;
}

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

}  // namespace

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

namespace {

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

// What EvalStats' means are made of, over some of the test images, so that ranks can add their
// shares.
struct EvalSums {
  enum { images, loss, bce, se_noisy, se_output, psnr_noisy, psnr_output, count };
  std::array<double, count> v{};
};

// targets: what the model is to output for each test image (the images themselves unless the
// data is paired).
EvalSums evaluate_sums(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                       const data::ImageSet& targets, int begin, int end,
                       const data::Corruption& corruption, std::uint64_t seed) {
  const int batch = exec.desc().batch;
  const std::size_t image = model.input().size();
  std::vector<float> clean(batch * image), noisy(batch * image), image_out(batch * image);
  const bool paired = &targets != &test;
  std::vector<float> input(paired ? batch * image : 0);
  std::vector<int> indices(batch);
  EvalSums sums;
  auto& v = sums.v;
  for (int first = begin; first < end; first += batch) {
    const int count = std::min(batch, end - first);
    for (int b = 0; b < count; ++b) indices[b] = first + b;
    data::to_nchw(targets, indices.data(), count, clean.data());
    if (paired) data::to_nchw(test, indices.data(), count, input.data());
    data::corrupt(corruption, paired ? input.data() : clean.data(), noisy.data(), count,
                  model.input(), seed, Stream::test_noise, 0, std::uint64_t(first));
    std::fill(noisy.begin() + count * image, noisy.end(), 0.f);  // padding of the last batch
    exec.forward(noisy.data());
    const float* out = exec.output();
    const std::size_t n = count * image;
    v[EvalSums::loss] +=
        nn::loss_and_grad(model.loss(), out, clean.data(), n, nullptr) * double(n);
    nn::output_to_image(model.loss(), out, image_out.data(), n);
    v[EvalSums::bce] += image_bce(image_out.data(), clean.data(), n);
    for (int b = 0; b < count; ++b) {
      double se_noisy = 0, se_out = 0;
      for (std::size_t i = b * image; i < (b + 1) * image; ++i) {
        const double dn = noisy[i] - clean[i], dout = image_out[i] - clean[i];
        se_noisy += dn * dn;
        se_out += dout * dout;
      }
      v[EvalSums::se_noisy] += se_noisy;
      v[EvalSums::se_output] += se_out;
      v[EvalSums::psnr_noisy] += psnr(se_noisy / double(image));
      v[EvalSums::psnr_output] += psnr(se_out / double(image));
    }
    v[EvalSums::images] += count;
  }
  return sums;
}

EvalStats eval_stats(const EvalSums& sums, std::size_t image) {
  const auto& v = sums.v;
  EvalStats st;
  st.images = int(v[EvalSums::images]);
  const double elements = v[EvalSums::images] * double(image);
  st.loss = v[EvalSums::loss] / elements;
  st.bce = v[EvalSums::bce] / elements;
  st.mse_noisy = v[EvalSums::se_noisy] / elements;
  st.mse_output = v[EvalSums::se_output] / elements;
  st.psnr_noisy = v[EvalSums::psnr_noisy] / v[EvalSums::images];
  st.psnr_output = v[EvalSums::psnr_output] / v[EvalSums::images];
  return st;
}

void broadcast_floats(dist::Communicator& comm, std::span<float> data) {
  comm.broadcast(std::as_writable_bytes(data));
}

// Ranks must agree on what they train, or their collective calls stop matching: the same data
// sizes, and the same parameter layout, as they add gradients element by element in it (oneDNN
// picks blocked layouts by CPU, so hosts with different instruction sets may differ). A flat
// buffer made from canonical tensors that hold their own index shows the layout.
void check_ranks_agree(const nn::Model& model, ops::Executor& exec, const data::Dataset& data,
                       dist::Communicator& comm) {
  std::vector<std::vector<float>> probe = model.params();
  std::uint32_t index = 0;
  for (auto& tensor : probe)
    for (float& x : tensor) x = float(++index % 16777216u);  // exact in a float
  std::vector<float> flat(exec.params().size());
  exec.from_canonical(probe, flat);
  std::uint64_t layout = 1469598103934665603ull ^ flat.size();  // FNV-1a over the floats' bits
  for (float x : flat) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    layout = (layout ^ bits) * 1099511628211ull;
  }
  const std::uint64_t mine[3] = {std::uint64_t(data.train.n), std::uint64_t(data.test.n), layout};
  std::uint64_t rank0[3] = {mine[0], mine[1], mine[2]};
  comm.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(rank0)));
  const std::string who = "rank " + std::to_string(comm.rank());
  for (int k = 0; k < 2; ++k)
    if (mine[k] != rank0[k])
      throw Error(who + " has " + std::to_string(mine[k]) + (k ? " test" : " training") +
                  " images, rank 0 has " + std::to_string(rank0[k]) +
                  ": every host needs the same dataset");
  if (mine[2] != rank0[2])
    throw Error(who + " lays out the parameters unlike rank 0 (hosts with different CPUs?); "
                "data-parallel training needs the same layout on every rank: try --backend ref");
}

// Makes every rank hold rank 0's parameters and optimizer state. Ranks that add the same sums
// take the same steps, but an MPI sum over more than two ranks need not round alike on each:
// sharing once an epoch keeps them from drifting apart, and rank 0's copy is the one saved.
void share_weights(dist::Communicator& comm, ops::Executor& exec, nn::Optimizer& opt) {
  broadcast_floats(comm, exec.params());
  for (auto& slot : opt.slots()) broadcast_floats(comm, slot);
}

// Makes every rank hold rank 0's parameters, optimizer state, position and history.
void share_state(dist::Communicator& comm, ops::Executor& exec, nn::Optimizer& opt,
                 int& first_epoch, std::vector<EpochStats>& history) {
  share_weights(comm, exec, opt);
  std::int64_t counters[3] = {first_epoch, opt.steps(), 0};
  std::string csv = history_csv(history);
  counters[2] = std::int64_t(csv.size());
  comm.broadcast(std::as_writable_bytes(std::span<std::int64_t>(counters)));
  first_epoch = int(counters[0]);
  opt.set_steps(counters[1]);
  csv.resize(std::size_t(counters[2]));
  comm.broadcast(std::as_writable_bytes(std::span<char>(csv)));
  if (comm.rank() != 0) history = parse_history(csv);
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
  return eval_stats(evaluate_sums(model, exec, test, test, 0, test.n, corruption, seed),
                    model.input().size());
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
  data::check_dataset(data);
  dist::LocalCommunicator alone;
  dist::Communicator& comm = config.comm ? *config.comm : alone;
  const int ranks = comm.size(), rank = comm.rank();
  const bool writer = rank == 0;  // rank 0 alone writes files
  if (config.batch % ranks != 0)
    throw Error("batch size " + std::to_string(config.batch) + " does not split evenly across " +
                std::to_string(ranks) + " ranks: use a multiple of " + std::to_string(ranks));
  if (writer) std::filesystem::create_directories(config.out_dir);
  const std::string checkpoint_path = config.out_dir + "/checkpoint.cae";
  // A run resumed with no epoch left writes no checkpoint or losses.csv to clean up after.
  if (writer)
    for (const char* name : {"/checkpoint.cae", "/losses.csv", "/model.cae"})
      remove_stale_temporaries(config.out_dir + name);

  // Each rank runs its shard of every batch: images [rank, rank + 1) * local_batch of it.
  const int local_batch = config.batch / ranks;
  const int micro = config.micro_batch > 0 ? config.micro_batch : default_micro_batch(local_batch);
  if (micro > local_batch || local_batch % micro != 0)
    throw Error("micro-batch " + std::to_string(micro) + " does not divide the " +
                std::to_string(local_batch) + " images of a batch" +
                (ranks > 1 ? " that each rank runs" : "") + ": use a divisor of " +
                std::to_string(local_batch));
  const int micro_steps = local_batch / micro;
  auto exec = model.make_executor(config.backend, micro);
  nn::Optimizer opt(config.optimizer, exec->params().size());
  std::vector<EpochStats> history;
  int first_epoch = 1;
  if (config.resume && writer) {
    if (!std::filesystem::exists(checkpoint_path))
      throw Error("--resume: no checkpoint at " + checkpoint_path);
    Checkpoint cp = read_checkpoint(checkpoint_path, model, *exec, opt, config);
    history = cp.history;
    first_epoch = cp.epoch + 1;
  }
  if (ranks > 1) {
    check_ranks_agree(model, *exec, data, comm);
    share_state(comm, *exec, opt, first_epoch, history);
  }

  const int batch = config.batch;
  const int batches = data.train.n / batch;
  const std::size_t image = model.input().size();
  const std::size_t n = std::size_t(micro) * image;
  std::vector<float> clean(n), noisy(n), d_out(n);
  // Paired data: the images go in (damaged as set), their targets are what the loss compares with.
  std::vector<float> input(data.paired() ? n : 0);
  // Each pass's gradient is of its micro-batch's mean loss; scaled by 1/(ranks * micro_steps),
  // they add up to the gradient of the whole batch's mean loss.
  const float shard_weight = 1.f / float(ranks * micro_steps);
  // The earlier passes of a batch, summed in the tree that makes ranks agree (gradient_sum.h).
  GradientSum earlier(exec->grads().size());
  double batch_loss = 0;      // summed across ranks: the whole batch's mean loss
  std::size_t announced = 0;  // floats of grads() handed to comm during this backward()
  bool last_pass = true;      // of the micro-batches of the current batch
  if (ranks > 1 && config.overlap_grads)
    exec->set_grads_ready([&](std::span<float> ready) {
      // Earlier passes only add up in grad_sum; in the last one a range is final once the
      // earlier passes' sum is added to it.
      if (!last_pass) return;
      earlier.fold_into(ready, std::size_t(ready.data() - exec->grads().data()));
      comm.start_sum(ready);
      announced += ready.size();
    });
  progress.on_start(first_epoch, config.epochs, batches);

  for (int epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const auto t0 = Clock::now();
    Rng shuffle_rng = make_rng(config.seed, Stream::shuffle, std::uint64_t(epoch));
    const std::vector<int> order = permutation(data.train.n, shuffle_rng);
    double loss_sum = 0;
    double train_seconds = 0;
    // A backend that runs whole steps on its device (cuda) takes the epoch's batches itself.
    StepTotals fused;
    // (Not across ranks: a fused epoch has no place to sum gradients.)
    // (Nor for paired data: a fused epoch reads the images alone.)
    const bool fused_epoch = ranks == 1 && micro_steps == 1 && !data.paired() &&
                             run_fused_epoch(*exec, opt, model, data.train, order, config, epoch,
                                             progress, checkpoint_path, fused);
    if (fused_epoch) {
      loss_sum = fused.loss_sum;
      train_seconds = fused.seconds;
    }
    for (int b = 0; b < batches && !fused_epoch; ++b) {
      const auto step_start = Clock::now();
      double loss = 0;  // the mean over this rank's share, then (ranks > 1) the whole batch's
      std::span<float> grads;
      earlier.clear();
      for (int u = 0; u < micro_steps; ++u) {
        // Noise is keyed by the image's place in the whole batch, so it depends on neither ranks
        // nor micro-batches.
        const std::size_t first = std::size_t(b) * batch + std::size_t(rank) * local_batch +
                                  std::size_t(u) * micro;
        data::to_nchw(data.train_clean(), order.data() + first, micro, clean.data());
        if (data.paired()) data::to_nchw(data.train, order.data() + first, micro, input.data());
        data::corrupt(config.corruption, data.paired() ? input.data() : clean.data(), noisy.data(),
                      micro, model.input(), config.seed, Stream::train_noise,
                      std::uint64_t(epoch), first);
        exec->forward(noisy.data());
        const double pass_loss =
            nn::loss_and_grad(model.loss(), exec->output(), clean.data(), n, d_out.data());
        if (!std::isfinite(pass_loss))
          throw Error("training diverged: the loss is " + std::to_string(pass_loss) +
                      " at epoch " + std::to_string(epoch) + ", step " + std::to_string(b + 1) +
                      "; the last good checkpoint is " + checkpoint_path);
        loss += pass_loss / micro_steps;
        if (shard_weight != 1.f)
          for (float& g : d_out) g *= shard_weight;
        last_pass = u + 1 == micro_steps;
        if (last_pass && ranks > 1) {
          batch_loss = loss / ranks;
          comm.start_sum(std::span<double>(&batch_loss, 1));
          announced = 0;
        }
        exec->backward(d_out.data(), nullptr);
        // Taken once: a device backend copies its gradients to the host on each grads() call.
        grads = exec->grads();
        if (!last_pass)
          earlier.add(grads);
        else if (announced == 0)  // not folded range by range while backward() ran
          earlier.fold_into(grads, 0);
      }
      if (ranks > 1) {
        // Without the overlap, or on a backend that announces no ranges, sum everything now.
        if (announced == 0) comm.start_sum(grads);
        comm.wait();
        if (announced != 0 && announced != grads.size())
          throw Error("the " + std::string(ops::backend_name(config.backend)) +
                      " backend handed " + std::to_string(announced) + " of " +
                      std::to_string(grads.size()) +
                      " gradient values to the gradient sums during backward()");
        loss = batch_loss;
      }
      opt.step(exec->params(), grads);
      loss_sum += loss;
      train_seconds += seconds_since(step_start);
      progress.on_batch(epoch, b + 1, batches, loss, double(b + 1) * batch / train_seconds);
    }
    EpochStats st;
    st.epoch = epoch;
    st.train_loss = loss_sum / batches;
    st.images_per_second = double(batches) * batch / train_seconds;
    if (ranks > 1) share_weights(comm, *exec, opt);
    {
      // Each rank scores its share of the test images; the sums add up to the whole set's.
      const int begin = int(std::int64_t(data.test.n) * rank / ranks);
      const int end = int(std::int64_t(data.test.n) * (rank + 1) / ranks);
      EvalSums sums = evaluate_sums(model, *exec, data.test, data.test_clean(), begin, end,
                                    config.corruption, config.seed);
      comm.sum(std::span<double>(sums.v));
      st.test = eval_stats(sums, image);
    }
    if (!std::isfinite(st.test.loss))
      throw Error("training diverged: the test loss is not finite after epoch " +
                  std::to_string(epoch) + "; the last good checkpoint is " + checkpoint_path);
    // A finite loss does not prove finite weights: ReLU and max pooling can drop a NaN before it
    // reaches the loss. One pass over the state per epoch costs little next to the epoch and
    // keeps a poisoned state out of the checkpoint.
    if (const char* what = non_finite_state(*exec, opt))
      throw Error("training diverged: the " + std::string(what) + " hold NaN or Inf after epoch " +
                  std::to_string(epoch) + ", step " + std::to_string(batches) +
                  "; the last good checkpoint is " + checkpoint_path);
    st.seconds = seconds_since(t0);
    history.push_back(st);
    if (writer) {
      write_checkpoint(checkpoint_path, model, *exec, opt, config, epoch, history);
      const std::string csv = history_csv(history);
      write_file_atomic(config.out_dir + "/losses.csv",
                        {reinterpret_cast<const std::uint8_t*>(csv.data()), csv.size()});
    }
    progress.on_epoch(st);
  }
  model.params() = exec->to_canonical(exec->params());
  model.meta().emplace_back("corruption", config.corruption.describe());
  model.meta().emplace_back("epochs", std::to_string(config.epochs));
  if (writer) io::write_model_file(config.out_dir + "/model.cae", model.to_file());
  return history;
}

}  // namespace cae::train
