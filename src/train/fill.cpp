#include "train/fill.h"

#include "cae/error.h"
#include "data/corrupt.h"

namespace cae::train {

Baseline fill_baseline(nn::FillMethod method) {
  return method == nn::FillMethod::telea ? Baseline::telea : Baseline::navier_stokes;
}

void apply_fill(const nn::Fill& fill, const float* damaged, float* out, int count, ops::Dims dims,
                const float* mask) {
  apply_baseline(fill_baseline(fill.method), float(fill.radius), damaged, out, count, dims, mask);
}

void require_damage_mask(const nn::Model& model, const data::Corruption& damage) {
  if (model.informed() && !damage.spatial())
    throw Error(
        "an informed model is given the damage mask, which only masks, lines, the "
        "crosshair or strokes make; the corruption '" +
        damage.describe() + "' has none");
}

InformedRun::InformedRun(const nn::Model& model, int count_max)
    : fill_(model.fill_settings()), dims_(model.output()) {
  if (!model.informed()) throw Error("InformedRun: the model is blind");
  input_.resize(std::size_t(count_max) * model.input().size());
  if (fill_) {
    filled_.resize(std::size_t(count_max) * dims_.size());
    output_.resize(filled_.size());
  }
}

const float* InformedRun::input(const float* damaged, const float* mask, int count) {
  const float* image = damaged;
  if (fill_) {
    apply_fill(*fill_, damaged, filled_.data(), count, dims_, mask);
    image = filled_.data();
  }
  data::with_mask_channel(image, mask, count, dims_, input_.data());
  return input_.data();
}

const float* InformedRun::output(const float* net_out, int count) {
  if (!fill_) return net_out;
  const std::size_t n = std::size_t(count) * dims_.size();
  for (std::size_t i = 0; i < n; ++i) output_[i] = net_out[i] + filled_[i];
  return output_.data();
}

}  // namespace cae::train
