// Evaluation on whole photos, each at its own size: the test images of a folder are damaged once,
// repaired by models through the tiler and by the classical baselines, and scored; baseline
// parameters are tuned on the folder's validation photos when it has them. Also the repair of
// one photo that `cae repair` draws.
//
// The photos are read here, not through data::load_image_folder, which fits every image to one
// working size; the split rule below is the folder loader's (data/folder.h), plus val/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/corrupt.h"
#include "data/png_io.h"
#include "ops/ops.h"
#include "train/adapt.h"
#include "train/compare.h"
#include "train/tiling.h"

namespace cae::train {

// The photo files evaluation uses. With DIR/test: test is DIR/test's images and val DIR/val's
// (empty without that folder). Otherwise the images of DIR sorted by name, every tenth (the
// 10th, 20th, ...) being test, or the last one when there are fewer than ten; no val.
struct PhotoSplit {
  std::vector<std::string> test, val;
};
// Throws cae::Error naming dir when it holds no test image.
PhotoSplit photo_split(const std::string& dir);

// Requires channels 1 or 3. Ensures each file read at its own size with that many channels (a
// gray image repeated to R = G = B). Throws cae::Error naming the file when it cannot be read,
// is colour for a gray model, or is smaller than 11x11 (the SSIM window).
std::vector<data::Image> read_photos(const std::vector<std::string>& files, int channels);

// One photo with its damage: NCHW floats of dims, and the h×w damage mask (1 = damaged).
struct DamagedPhoto {
  ops::Dims dims;
  std::vector<float> clean, damaged, mask;
};

// Ensures the photo damaged as data::corrupt damages image `index` of stream (seed, test_noise,
// key): key 0 for test photos (as compare() keys its test images), kValKey for validation ones.
DamagedPhoto damage_photo(const data::Image& photo, const data::Corruption& corruption,
                          std::uint64_t seed, std::uint64_t key, std::uint64_t index);
inline constexpr std::uint64_t kValKey = 1;

// Requires models whose output has the photos' channels (informed ones are given the mask), and
// photos of at least 11x11. With adapt, each model is also scored adapted to each test photo
// (adapt_to_photo, key the photo's index) as a method named after it plus " adapted". Ensures the
// comparison compare() makes, each test photo at its own size, damaged once (damage_photo, key 0,
// index i), models run through denoise_tiled, baselines on the whole photo; baseline parameters
// chosen by tuning_score on the first options.tune_images of val (damaged with kValKey) when val is
// not empty, else of test, and the comparison says which. names are the test photos' (the CSV's
// image column). Throws cae::Error on a channel mismatch, no test photo, or an informed model
// with a corruption that marks nothing (require_damage_mask).
Comparison compare_photos(const std::vector<NamedModel>& models,
                          const std::vector<data::Image>& test,
                          const std::vector<std::string>& names,
                          const std::vector<data::Image>& val, const data::Corruption& corruption,
                          std::uint64_t seed, const CompareOptions& options,
                          const TileOptions& tiles, const AdaptOptions* adapt = nullptr);

// One photo repaired by a model (adapted to it when asked) and by cv::inpaint Telea, for the
// figure a person looks at.
struct PhotoRepair {
  DamagedPhoto photo;
  std::vector<float> model_out, telea_out;
  bool adapted = false;    // model_out is the adapted model's
  float telea_radius = 0;  // the grid radius with the best PSNR inside the damage on this photo
  TileStats tiles;         // the model's tiles, and those run (an informed model's damaged ones)
  Scores damaged, model, telea;
};

// Requires a spatial corruption (Telea needs a mask) and a model whose output has the photo's
// channels. Ensures the photo damaged as damage_photo(…, key 0, index 0) and both repairs with
// their scores; with adapt, the model's repair is that of the model adapted to the photo (key 0).
// Throws cae::Error otherwise.
PhotoRepair repair_photo(const nn::Model& model, const data::Image& photo,
                         const data::Corruption& corruption, std::uint64_t seed,
                         const TileOptions& tiles, const AdaptOptions* adapt = nullptr);

}  // namespace cae::train
