// An informed model's fill: a classical inpainter (cv::inpaint, train/baselines.h) that repairs
// the damage first, so that the net only corrects its repair. The net's input is the fill with
// the mask as its last channel, and its output is added to the fill: a net whose output is zero
// repairs exactly as the inpainter does, and training starts from there (residual learning, as
// the DnCNN-like preset learns the noise rather than the image). Model files say so in meta
// "fill" ("navier-stokes r=3"); models without it are informed of the mask only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nn/model.h"
#include "ops/ops.h"
#include "train/baselines.h"

namespace cae::train {

struct Fill {
  Baseline kind = Baseline::navier_stokes;  // telea or navier_stokes
  float radius = 3;                         // cv::inpaint's inpaintRadius, pixels
};

// "telea" or "navier-stokes", optionally followed by " r=R" (a whole number from 1 to 64;
// 3 when left out). Throws cae::Error naming what it could not read.
Fill parse_fill(const std::string& text);
// "navier-stokes r=3": parse_fill(describe_fill(f)) gives f back.
std::string describe_fill(const Fill& fill);

// The fill a model records (nn::Model::fill), or none. Throws cae::Error naming `what` when the
// meta cannot be read or is set on a model that cannot have one (blind, or not mse: the output
// added to the fill must be an image, not bce's logits).
std::optional<Fill> model_fill(const nn::Model& model, const std::string& what);
// Throws cae::Error when `model` cannot take a fill, for the same reasons.
void check_fill_model(const nn::Model& model, const std::string& what);

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
  std::optional<Fill> fill_;
  ops::Dims dims_;
  std::vector<float> filled_, input_, output_;
};

}  // namespace cae::train
