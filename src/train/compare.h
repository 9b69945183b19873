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
#include "train/baselines.h"

namespace cae::train {

struct Scores {
  double mse = 0, psnr = 0, ssim = 0, bce = 0;  // per image, or means over images
  // Inside the damage only (masks, lines, crosshair: metrics.h's masked_mse / masked_ssim);
  // NaN for noise corruptions and for an image whose mask is empty. Means skip the NaNs.
  double psnr_region = 0, ssim_region = 0;
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
  bool region = false;  // the corruption is spatial: region scores are reported
  // Where baseline parameters were chosen: "test" (the first tune_images test images) or "val"
  // (tune_images validation images, damaged from their own stream).
  std::string tuned_on = "test";
  std::vector<std::string> image_names;  // per image, for the CSV; empty: their indices
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
  ops::ExecutorOptions executor{};  // how backend builds the models' executors
  // Paired data: the clean image each test image is scored against (one per image, of its
  // shape), the test images being damaged as given. Null: the test images are the clean ones.
  const data::ImageSet* targets = nullptr;
};

// Requires models whose output has test's image shape (an informed model's input has the mask
// channel too), h and w >= 11 (SSIM's window). Ensures every test image is damaged once, as
// evaluate() damages it (stream test_noise, keyed by seed and the image's index), and scored
// against its clean self for the noisy input, each model's output image (an informed model given
// the damage mask) and, with options.baselines, each baseline at its best grid setting: median,
// Gaussian and NLM always, the inpainters too when the corruption is spatial. Region scores
// when it is. Throws cae::Error on a shape mismatch, or for an informed model when the
// corruption marks nothing (require_damage_mask: noise alone).
Comparison compare(const std::vector<NamedModel>& models, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed,
                   const CompareOptions& options);

// The baselines compare() runs for a corruption: median, gaussian, nlm, then telea and
// navier_stokes when it is spatial.
std::vector<Baseline> baselines_for(const data::Corruption& corruption);

// Requires out and clean of dims, mask null or one h×w plane. Ensures the image's scores, the
// region ones from the mask (NaN without one).
Scores score_image(const float* out, const float* clean, const float* mask, ops::Dims dims);
// Ensures m.mean holds the means of m.per_image (region means over the images that have one).
void take_means(Method& m);
// Requires mask (h·w) for an inpainter. Ensures the score a baseline's parameter is tuned by,
// for one output image: PSNR inside the damage for an inpainter (it changes nothing else), NaN
// when there is none; whole-image PSNR otherwise.
double tuning_score(Baseline kind, const float* out, const float* clean, const float* mask,
                    ops::Dims dims);

// A fixed-width text table: one row per method, columns MSE, PSNR, SSIM, BCE, and with region
// scores PSNR and SSIM inside the damage; a last line says where baselines were tuned.
std::string comparison_table(const Comparison& c);
// {"corruption", "seed", "images", "tune_images", "tuned_on", "methods": [{name, setting, mse,
// psnr_db, ssim, bce[, psnr_db_region, ssim_region]}]} (region keys when c.region)
std::string comparison_json(const Comparison& c);
// One row per (image, method): image,method,mse,psnr_db,ssim,bce[,psnr_db_region,ssim_region];
// image is the file name when c.image_names has them, else the index.
std::string comparison_csv(const Comparison& c);

}  // namespace cae::train
