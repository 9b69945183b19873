// Pictures of what a model does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/corrupt.h"
#include "data/idx.h"
#include "data/png_io.h"
#include "nn/model.h"
#include "ops/ops.h"
#include "train/photo_eval.h"

namespace cae::train {

// Bytes of an NCHW float image in [0, 1] (rounded, clamped), as an HWC Image.
data::Image to_image(const float* nchw, ops::Dims dims);
// The NCHW floats (byte / 255) of an HWC Image.
void from_image(const data::Image& image, float* nchw);

// The tutorial's figure: rows noisy / reconstructed / clean for the first `count` images of set,
// noise drawn as evaluate() draws it (fixed per image by seed), each pixel drawn scale×scale.
data::Image denoising_figure(const nn::Model& model, ops::Backend backend,
                             const ops::ExecutorOptions& options, const data::ImageSet& set,
                             const data::Corruption& corruption, std::uint64_t seed, int count,
                             int scale);

// The encoder's codes: for each of the first `count` images of set (damaged as evaluate() damages
// them), a row of the model input (scale× magnified) then every channel of the latent activation
// (the first op whose output is the smallest in h·w: 4×4×16 for the seed on 28×28), each map
// magnified to the input's height. A channel's maps share one gray scale from 0 (black) to its
// largest value over the shown images (white), so rows compare. Throws cae::Error on bad counts.
data::Image latent_figure(const nn::Model& model, ops::Backend backend,
                          const ops::ExecutorOptions& options, const data::ImageSet& set,
                          const data::Corruption& corruption, std::uint64_t seed, int count,
                          int scale);

// Models side by side: rows noisy / each model's output / clean for the first `count` images,
// then a last row with each model's answer to a flat mid-gray image, its deviation from its own
// mean magnified `gain` times around mid-gray, where a checkerboard artefact stands out. Requires
// models sharing the set's shape.
data::Image comparison_figure(const std::vector<const nn::Model*>& models, ops::Backend backend,
                              const ops::ExecutorOptions& options, const data::ImageSet& set,
                              const data::Corruption& corruption, std::uint64_t seed, int count,
                              int scale, float gain);

// The figure of one repaired photo (`cae repair`): a top row damaged | cae | Telea | original at
// the photo's size, and below it the same four zoomed `zoom`× (nearest neighbour) on the window
// of (h/zoom)×(w/zoom) pixels centred on the damage (the mask's centroid, kept inside the
// photo), so that every panel is h×w. Each panel has a white strip of `label_height(w)` pixels
// above it with its name and, on the top row, the PSNR inside the damage; the panels are 2·zoom
// pixels apart. Requires zoom 1 to 32; throws cae::Error otherwise.
data::Image repair_figure(const PhotoRepair& repair, int zoom);
// The label strip's height over a panel w pixels wide.
int label_height(int w);

// Requires gnuplot on PATH (Debian gnuplot-nox) and history of at least one epoch. Ensures
// png_path holds the loss curves of a run (train and test loss per epoch, left axis) with the
// test PSNR of the output (right axis), written atomically. Throws cae::Error carrying gnuplot's
// message when it is missing or fails.
void plot_losses(const std::string& losses_csv, const std::string& png_path,
                 const std::string& title);

}  // namespace cae::train
