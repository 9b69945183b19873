// Repairing a user's photo where their mask says it is damaged: the informed model (adapted to
// the photo first, when asked) runs over the tiles that touch the mask, and every pixel the mask
// leaves alone comes back exactly as given. The CLI (cae repair), the embedding API
// (cae::Autoencoder::repair) and the Python module all call repair_samples, so they agree bit
// for bit; compare_photos (cae eval) repairs each damaged test photo the way repair_planes does
// (both through denoise_tiled's windows, tests/test_repair.cpp), so the scores it reports
// describe what users get.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "nn/model.h"
#include "ops/ops.h"
#include "train/adapt.h"
#include "train/tiling.h"

namespace cae::train {

// The largest photo cae repair reads unless told otherwise (--max-megapixels): a repair holds
// about 70 bytes per pixel (samples, floats, the fill, the blend), so 50 megapixels take about
// 3.5 GB. The limit is checked from the file's header, before its pixels are allocated.
inline constexpr double kDefaultMaxMegapixels = 50;

struct RepairOptions {
  TileOptions tiles;
  // With adapt.on(), a copy of the model is first adapted to the photo (adapt_to_photo, key 0)
  // on its undamaged part; adapt.training must be the damage the model learnt (its meta).
  AdaptOptions adapt;
};

// What a repair did.
struct RepairReport {
  std::size_t damaged = 0;  // pixels the mask marks
  TileStats tiles;          // the tiles of the photo, and those that ran (they touch the mask)
  bool adapted = false;
};

// Requires an informed model, image: d.c×d.h×d.w CHW floats in [0, 1] with d.c ==
// model.output().c, mask: d.h×d.w floats, 1 = damaged, 0 = kept. Ensures the repair: the model
// adapted to the photo when options.adapt.on(), then denoise_tiled; pixels outside the mask are
// image's, bit for bit. A mask with no damage gives image back and runs nothing. *report, when
// given, says what ran. Throws cae::Error for a blind model, a channel mismatch, or an
// adaptation that cannot run (adapt_to_photo: no undamaged window).
std::vector<float> repair_planes(const nn::Model& model, const float* image, ops::Dims d,
                                 const float* mask, const RepairOptions& options,
                                 RepairReport* report = nullptr);

// A photo's samples as a file or an array holds them: h·w pixels, row-major, each c interleaved
// samples (HWC). c = 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGB, alpha); alpha is passed
// through untouched. Samples run from 0 to 255 (uint8), 65535 (uint16) or 1 (float).
template <class T>
struct Samples {
  std::span<const T> values;
  int h = 0, w = 0, c = 0;
};

// Requires photo.values.size() == h·w·c and mask.size() == h·w (non-zero = damaged), and an
// informed model whose images have photo's colour channels, or 3 for a gray photo (repaired as
// R = G = B, its gray the mean of the three repaired). Ensures h·w·c samples of the same type:
// each damaged pixel's colour the repair of repair_planes (samples scaled to [0, 1], the repair
// scaled back and rounded to the nearest integer sample), every other sample photo's own.
// Throws cae::Error, before any work, for a blind model, a colour photo for a gray model, sizes
// that disagree (both given), a sample outside its range or not finite; and as repair_planes.
std::vector<std::uint8_t> repair_samples(const nn::Model& model, Samples<std::uint8_t> photo,
                                         std::span<const std::uint8_t> mask,
                                         const RepairOptions& options,
                                         RepairReport* report = nullptr);
std::vector<std::uint16_t> repair_samples(const nn::Model& model, Samples<std::uint16_t> photo,
                                          std::span<const std::uint8_t> mask,
                                          const RepairOptions& options,
                                          RepairReport* report = nullptr);
std::vector<float> repair_samples(const nn::Model& model, Samples<float> photo,
                                  std::span<const std::uint8_t> mask,
                                  const RepairOptions& options, RepairReport* report = nullptr);

}  // namespace cae::train
