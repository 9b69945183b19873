// Losses on the network's output, in canonical NCHW, averaged over every element of the batch.
#pragma once

#include <cstddef>
#include <string>

#include "core/isa.h"
#include "ops/ops.h"

namespace cae::nn {

enum class LossKind {
  bce,  // sigmoid cross-entropy with logits: the net outputs logits, the image is sigmoid(out)
  mse,  // mean squared error: the net outputs the image itself
};

LossKind parse_loss(const std::string& name);  // "bce" | "mse"; throws otherwise
const char* loss_name(LossKind kind);

// Requires n > 0. Ensures the mean loss over n elements is returned and, when grad is not null,
// grad[i] = d loss / d out[i] (already divided by n). Runs the code of tier cpu_isa(), or of
// `isa` (tests run every tier; isa > cpu_isa() throws cae::Error).
double loss_and_grad(LossKind kind, const float* out, const float* target, std::size_t n,
                     float* grad);
double loss_and_grad(LossKind kind, const float* out, const float* target, std::size_t n,
                     float* grad, Isa isa);

// The loss of an informed model (nn::Model::informed), whose repair keeps the undamaged pixels
// of its input: the mean over the elements (every channel) of the pixels the mask marks, out
// and target being count NCHW images of dims and mask count h×w planes of 0 and 1. grad, when
// not null, is d loss / d out: zero outside the mask, so nothing is learnt about pixels that are
// thrown away. No damaged pixel: 0 and a zero gradient. Plain loops: a mask covers a tenth of a
// patch or less, and the convolutions dwarf it.
double masked_loss_and_grad(LossKind kind, const float* out, const float* target,
                            const float* mask, int count, ops::Dims dims, float* grad);

// The image a network output stands for: sigmoid(out) for bce, clamp(out, 0, 1) for mse.
void output_to_image(LossKind kind, const float* out, float* image, std::size_t n);
void output_to_image(LossKind kind, const float* out, float* image, std::size_t n, Isa isa);

}  // namespace cae::nn
