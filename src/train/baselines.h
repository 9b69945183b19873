// Classical denoisers cae is measured against (OpenCV): median filter, Gaussian blur and
// non-local means. Each has one strength parameter; `cae eval` picks it from a small grid by
// PSNR on the first images, so every baseline gets its best setting for the damage at hand.
#pragma once

#include <string>
#include <vector>

#include "ops/ops.h"

namespace cae::train {

enum class Baseline {
  median,    // median of the k×k neighbourhood (k odd), on 8-bit samples
  gaussian,  // Gaussian blur of σ pixels (kernel 2·ceil(3σ)+1), on floats
  nlm,       // OpenCV fastNlMeansDenoising[Colored], filter strength h in 8-bit units,
             // template 7×7, search 21×21, on 8-bit samples
};

const char* baseline_name(Baseline kind);  // "median", "gaussian", "nlm"
// The parameter as text: "k=3", "sigma=1", "h=30".
std::string baseline_setting(Baseline kind, float param);
// The grid the parameter is chosen from.
std::vector<float> baseline_grid(Baseline kind);

// Requires noisy and out of count·dims.size() NCHW floats in [0, 1], dims.c in {1, 3}, a
// parameter from the kind's grid (or like it). Ensures out holds the filtered images in [0, 1].
void apply_baseline(Baseline kind, float param, const float* noisy, float* out, int count,
                    ops::Dims dims);

}  // namespace cae::train
