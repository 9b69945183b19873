// `cae eval`: the noisy input, one or more models and the classical baselines scored on the same
// damaged test images, per image and on average.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/corrupt.h"
#include "data/idx.h"
#include "nn/model.h"
#include "ops/ops.h"

namespace cae::train {

struct Scores {
  double mse = 0, psnr = 0, ssim = 0, bce = 0;  // per image, or means over images
};

struct Method {
  std::string name;     // "noisy", a model's name, "median", "gaussian", "nlm"
  std::string setting;  // the chosen parameter of a baseline ("k=3"), else ""
  Scores mean;
  std::vector<Scores> per_image;
};

struct Comparison {
  std::string corruption;  // Corruption::describe()
  std::uint64_t seed = 0;
  int images = 0, tune_images = 0;
  std::vector<Method> methods;
};

struct NamedModel {
  std::string name;
  const nn::Model* model = nullptr;
};

struct CompareOptions {
  bool baselines = true;
  int tune_images = 100;  // baseline parameters are chosen by mean PSNR on this many images
  int batch = 200;
  ops::Backend backend = ops::Backend::dnnl;
  // Paired data: the clean image each test image is scored against (one per image, of its
  // shape), the test images being damaged as given. Null: the test images are the clean ones.
  const data::ImageSet* targets = nullptr;
};

// Requires models sharing test's image shape, h and w >= 11 (SSIM's window). Ensures every test
// image is damaged once, as evaluate() damages it (stream test_noise, keyed by seed and the
// image's index), and scored against its clean self for the noisy input, each model's output
// image and, with options.baselines, each baseline at its best grid setting. Throws cae::Error on
// a shape mismatch.
Comparison compare(const std::vector<NamedModel>& models, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed,
                   const CompareOptions& options);

// A fixed-width text table: one row per method, columns MSE, PSNR, SSIM, BCE.
std::string comparison_table(const Comparison& c);
// {"corruption", "seed", "images", "tune_images", "methods": [{name, setting, mse, psnr_db,
// ssim, bce}]}
std::string comparison_json(const Comparison& c);
// One row per (image, method): image,method,mse,psnr_db,ssim,bce.
std::string comparison_csv(const Comparison& c);

}  // namespace cae::train
