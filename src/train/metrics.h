// Image quality metrics, each for one image of floats in [0, 1] (NCHW, as the model sees it).
#pragma once

#include <cstddef>

#include "ops/ops.h"

namespace cae::train {

// Requires n > 0. Ensures the mean of (a - b)² over n elements.
double mse(const float* a, const float* b, std::size_t n);

// Ensures 10·log10(1 / mse) in dB (peak 1), capped at 100 dB for mse below 1e-10.
double psnr(double mse);

// Requires n > 0. Ensures the mean sigmoid cross-entropy −[z log p + (1 − z) log(1 − p)] of
// the image p against the clean image z, with p clamped to [1e-7, 1 − 1e-7].
double image_bce(const float* p, const float* z, std::size_t n);

// SSIM (Wang et al. 2004) with the usual settings: an 11×11 Gaussian window of σ 1.5
// (normalised to sum 1), K1 = 0.01, K2 = 0.03, dynamic range 1, population (not sample)
// statistics. Ensures the mean of the SSIM map over the positions where the window lies wholly
// inside the image (MATLAB's 'valid', which scikit-image's gaussian_weights=True also reports),
// averaged over channels. Requires h, w >= 11; throws cae::Error otherwise.
double ssim(const float* x, const float* y, ops::Dims dims);

// Scores inside a region of the image, e.g. the damage that masks, lines or a crosshair made:
// mask is one h×w plane (values > 0.5 mark the region, as data::corrupt writes its mask).
//
// Ensures the mean of (a − b)² over the region's pixels, every channel; NaN for an empty region.
double masked_mse(const float* a, const float* b, const float* mask, ops::Dims dims);
// Ensures the mean of ssim()'s map over the region's pixels whose 11×11 window lies wholly
// inside the image (the map at a pixel is that of the window centred on it; pixels within 5 of
// the border have none), averaged over channels; NaN when no region pixel has a window.
// Requires h, w >= 11; throws cae::Error otherwise.
double masked_ssim(const float* x, const float* y, const float* mask, ops::Dims dims);

// The strength of a 2-pixel-period pattern, the checkerboard artefact of strided transposed
// convolutions: the mean over every 2×2 block (all offsets, all channels) of
// |x00 − x01 − x10 + x11| / 4. Zero on any image that is constant along rows or columns, 1 on
// a 0/1 checkerboard. Requires h, w >= 2.
double checkerboard(const float* x, ops::Dims dims);

// The 11 weights of the 1-D window (the 2-D window is their outer product).
const double* ssim_window();

}  // namespace cae::train
