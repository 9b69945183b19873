#include "train/adapt.h"

#include <cmath>
#include <numbers>
#include <optional>
#include <sstream>

#include "cae/error.h"
#include "core/text.h"
#include "data/patches.h"
#include "nn/loss.h"
#include "nn/optimizer.h"
#include "train/batch_statistics.h"
#include "train/figures.h"
#include "train/fill.h"

namespace cae::train {

std::string describe_adapt(const AdaptOptions& options) {
  std::ostringstream s;
  s << options.steps << " steps, lr " << exact_text(options.lr) << ", batch " << options.batch;
  if (options.near > 0) s << ", crops within " << options.near << " px of the damage";
  return s.str();
}

data::Corruption model_corruption(const nn::Model& model) {
  for (const auto& [key, value] : model.meta())
    if (key == "corruption") return data::parse_corruption(value);
  return data::Corruption{};
}

void check_adaptable(const data::Corruption& damage, const std::string& what) {
  if (!damage.spatial())
    throw Error(what + ": the damage '" + damage.describe() +
                "' has no masks, lines, crosshair or strokes: adapting to a photo learns from the "
                "pixels its mask leaves undamaged");
  if (damage.noisy())
    throw Error(what + ": the damage '" + damage.describe() +
                "' adds noise, so the photo's undamaged pixels are no clean examples to adapt to");
}

nn::Model adapt_to_photo(const nn::Model& model, const float* damaged, const float* mask,
                         ops::Dims d, const AdaptOptions& options, std::uint64_t key) {
  const data::Corruption& training = options.training;
  if (options.steps < 1 || options.batch < 1)
    throw Error("adapt: steps and batch must be at least 1");
  if (!training.spatial() && model.informed())
    throw Error("adapt: the model is informed, but the damage it learnt ('" + training.describe() +
                "') has no mask to give it");
  const ops::Dims in = model.output();  // the crop: the model's input less an informed mask
  if (d.c != in.c)
    throw Error("adapt: the photo has " + std::to_string(d.c) + " channels, the model repairs " +
                std::to_string(in.c));
  data::PatchOptions crops;
  crops.h = in.h;
  crops.w = in.w;
  crops.augment.hflip = crops.augment.vflip = true;
  crops.augment.rot90 = in.h == in.w;
  const data::ClearCrops source(to_image(damaged, d), mask, crops, options.near);
  if (source.windows() == 0)
    throw Error("adapt: no " + std::to_string(in.h) + "x" + std::to_string(in.w) +
                " window of the " + std::to_string(d.h) + "x" + std::to_string(d.w) +
                " photo is free of damage" +
                (options.near > 0 ? " and within " + std::to_string(options.near) +
                                        " px of it"
                                  : std::string()) +
                ", so there is nothing to adapt to");

  const int batch = options.batch;
  auto exec = model.make_executor(options.backend, batch, options.executor);
  nn::OptimizerConfig adam;
  adam.lr = float(options.lr);
  nn::Optimizer opt(adam, exec->params().size());
  const std::vector<ops::Executor::FlatRange> statistics = exec->statistics_ranges();
  const std::size_t n = std::size_t(batch) * in.size();
  std::vector<float> clean(n), noisy(n), d_out(n), crop_mask;
  std::optional<InformedRun> informed;
  if (model.informed()) {
    crop_mask.resize(std::size_t(batch) * in.h * in.w);
    informed.emplace(model, batch);
  }
  std::vector<int> order(batch);
  for (int b = 0; b < batch; ++b) order[b] = b;
  for (int s = 0; s < options.steps; ++s) {
    const std::uint64_t first = std::uint64_t(s) * std::uint64_t(batch);
    data::to_nchw(source.draw(batch, options.seed, key, first), order.data(), batch, clean.data());
    data::corrupt(training, clean.data(), noisy.data(), batch, in, options.seed,
                  Stream::adapt_noise, key, first, informed ? crop_mask.data() : nullptr);
    // A half cosine from lr to 0: the last steps settle rather than stop mid-stride.
    opt.set_lr(float(options.lr * 0.5 * (1 + std::cos(std::numbers::pi * s / options.steps))));
    exec->forward(informed ? informed->input(noisy.data(), crop_mask.data(), batch) : noisy.data());
    const double loss =
        informed ? nn::masked_loss_and_grad(model.loss(), informed->output(exec->output(), batch),
                                            clean.data(), crop_mask.data(), batch, in, d_out.data())
                 : nn::loss_and_grad(model.loss(), exec->output(), clean.data(), n, d_out.data());
    if (!std::isfinite(loss))
      throw Error("adapt: the loss is " + std::to_string(loss) + " at step " +
                  std::to_string(s + 1) + "; try a lower --adapt-lr");
    exec->backward(d_out.data(), nullptr);
    const std::span<float> grads = exec->grads();
    const std::span<float> params = exec->params();
    fold_batch_statistics(statistics, params, grads, 1);
    opt.step(params, grads);
  }
  nn::Model adapted = model;
  adapted.params() = exec->to_canonical(exec->params());
  auto& meta = adapted.meta();
  std::erase_if(meta, [](const auto& kv) { return kv.first == "adapted"; });
  meta.emplace_back("adapted", describe_adapt(options));
  return adapted;
}

}  // namespace cae::train
