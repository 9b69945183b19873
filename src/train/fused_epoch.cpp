#include "train/fused_epoch.h"

#include <chrono>
#include <cmath>

#include "cae/error.h"
#include "core/rng.h"
#include "data/corrupt.h"
#include "dist/communicator.h"

namespace cae::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Plain Gaussian noise is drawn on the device; anything else the host draws and uploads.
bool gaussian_only(const data::Corruption& c) {
  data::Corruption gaussian;
  gaussian.gaussian_sigma = c.gaussian_sigma;
  return c.describe() == gaussian.describe();
}

}  // namespace

bool run_fused_epoch(ops::Executor& exec, nn::Optimizer& opt, const nn::Model& model,
                     const data::ImageSet& train, const std::vector<int>& order,
                     const TrainConfig& config, int epoch, Progress& progress,
                     const std::string& checkpoint_path, StepTotals& totals) {
  const nn::OptimizerConfig& oc = config.optimizer;
  if (oc.kind != nn::OptimizerKind::adam || (config.comm && config.comm->size() > 1)) return false;
  ops::FusedStepConfig fc;
  fc.bce = model.loss() == nn::LossKind::bce;
  fc.noise_sigma = config.corruption.gaussian_sigma;
  fc.lr = opt.config().lr;  // the epoch's, from the schedule
  fc.beta1 = oc.beta1;
  fc.beta2 = oc.beta2;
  fc.epsilon = oc.epsilon;
  auto& slots = opt.slots();
  if (!exec.fused_begin(fc, slots[0], slots[1], opt.steps())) return false;

  const int batch = config.batch, batches = train.n / batch;
  const ops::Dims dims = model.input();
  const bool device_noise = gaussian_only(config.corruption);
  std::vector<float> clean(std::size_t(batch) * dims.size());
  std::vector<float> noisy(device_noise ? 0 : clean.size());
  int diverged_at = 0;  // 1-based step whose loss was not finite
  double diverged_loss = 0;
  auto report = [&](int step, double loss) {
    if (!std::isfinite(loss) && !diverged_at) {
      diverged_at = step + 1;
      diverged_loss = loss;
    }
    totals.loss_sum += loss;
    progress.on_batch(epoch, step + 1, batches, loss, double(step + 1) * batch / totals.seconds);
  };
  for (int b = 0; b < batches && !diverged_at; ++b) {
    const auto t0 = Clock::now();
    const std::uint64_t first = std::uint64_t(b) * batch;
    data::to_nchw(train, order.data() + first, batch, clean.data());
    const ops::NoiseKey key{config.seed, std::uint64_t(Stream::train_noise), std::uint64_t(epoch),
                            first};
    if (!device_noise)
      data::corrupt(config.corruption, clean.data(), noisy.data(), batch, dims, config.seed,
                    Stream::train_noise, std::uint64_t(epoch), first);
    const double previous =
        exec.fused_step(clean.data(), device_noise ? nullptr : noisy.data(), key);
    totals.seconds += seconds_since(t0);
    if (b > 0) report(b - 1, previous);
  }
  const auto t0 = Clock::now();
  const double last = exec.fused_end(slots[0], slots[1]);
  totals.seconds += seconds_since(t0);
  if (!diverged_at) {
    opt.set_steps(opt.steps() + batches);
    report(batches - 1, last);
  }
  if (diverged_at)
    throw Error("training diverged: the loss is " + std::to_string(diverged_loss) + " at epoch " +
                std::to_string(epoch) + ", step " + std::to_string(diverged_at) +
                "; the last good checkpoint is " + checkpoint_path);
  return true;
}

}  // namespace cae::train
