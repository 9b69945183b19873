// Pictures of what a model does.
#pragma once

#include <cstdint>

#include "data/corrupt.h"
#include "data/idx.h"
#include "data/png_io.h"
#include "nn/model.h"
#include "ops/ops.h"

namespace cae::train {

// Bytes of an NCHW float image in [0, 1] (rounded, clamped), as an HWC Image.
data::Image to_image(const float* nchw, ops::Dims dims);
// The NCHW floats (byte / 255) of an HWC Image.
void from_image(const data::Image& image, float* nchw);

// The tutorial's figure: rows noisy / reconstructed / clean for the first `count` images of set,
// noise drawn as evaluate() draws it (fixed per image by seed), each pixel drawn scale×scale.
data::Image denoising_figure(const nn::Model& model, ops::Backend backend,
                             const data::ImageSet& set, const data::Corruption& corruption,
                             std::uint64_t seed, int count, int scale);

}  // namespace cae::train
