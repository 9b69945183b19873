// An informed model's fill: a classical inpainter (cv::inpaint, train/baselines.h) that repairs
// the damage first, so that the net only corrects its repair. The net's input is the fill with
// the mask as its last channel, and its output is added to the fill: a net whose output is zero
// repairs exactly as the inpainter does, and training starts from there (residual learning, as
// the DnCNN-like preset learns the noise rather than the image). The model holds its fill
// (nn/fill.h: the text in model files, which models can take one); models without one are
// informed of the mask only.
#pragma once

#include <optional>
#include <vector>

#include "data/corrupt.h"
#include "nn/fill.h"
#include "nn/model.h"
#include "ops/ops.h"
#include "train/baselines.h"

namespace cae::train {

// The baseline that runs a fill's inpainter: Baseline::telea or Baseline::navier_stokes.
Baseline fill_baseline(nn::FillMethod method);
// Requires damaged and out of count·dims.size() NCHW floats, mask of count h×w planes (1 =
// damaged). Ensures out holds the fill's repair of the damaged images (apply_baseline of its
// inpainter and radius).
void apply_fill(const nn::Fill& fill, const float* damaged, float* out, int count, ops::Dims dims,
                const float* mask);

// Requires nothing. Throws cae::Error when `model` is informed and `damage` marks nothing (no
// masks, lines, crosshair or strokes; noise alone): the model would be given an all-zero mask and hand
// back its input unchanged. For every path that damages images for a model: training
// (check_run) and evaluation (compare, compare_photos).
void require_damage_mask(const nn::Model& model, const data::Corruption& damage);

// The input and output of an informed model over count images of the model's output dims, for
// callers that hold the damaged images and their masks: the trainer, evaluation, compare().
class InformedRun {
 public:
  // Requires an informed model and count_max >= 1.
  InformedRun(const nn::Model& model, int count_max);
  // Requires damaged: count NCHW images, mask: count h×w planes (1 = damaged). Ensures the
  // model's input for them (the fill's images or the damaged ones, then the mask plane); with a
  // fill, remembers the fill for output().
  const float* input(const float* damaged, const float* mask, int count);
  // Requires the net's output for the last input() call. Ensures the output as the model's
  // loss reads it: the net's output plus the fill with a fill, the net's output itself without.
  const float* output(const float* net_out, int count);
  bool has_fill() const { return fill_.has_value(); }

 private:
  std::optional<nn::Fill> fill_;
  ops::Dims dims_;
  std::vector<float> filled_, input_, output_;
};

}  // namespace cae::train
