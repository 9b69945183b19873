// Contact sheets: many small images tiled into one picture (e.g. clean / noisy / denoised rows).
#pragma once

#include <cstdint>
#include <vector>

#include "data/png_io.h"

namespace cae::data {

// Tile images into one picture: rows[r][k] is placed at row r, column k; all images must share h
// and c (throw otherwise); gap pixels of `gap` width filled with `background`. Gray images in a
// grid with an RGB image are expanded to RGB.
//
// Requires at least one image, every image with h, w > 0, c in {1, 3} and h·w·c pixels, the same
// h throughout, and gap >= 0. Ensures gaps lie only between cells (no outer border); column k is
// as wide as its widest image, a narrower image sits at the cell's left and a row shorter than
// the longest leaves its missing cells as background. The result is gray if every image is gray,
// else RGB (gray images and the background replicated to R = G = B). Throws cae::Error otherwise.
Image make_grid(const std::vector<std::vector<Image>>& rows, int gap = 2,
                std::uint8_t background = 255);

}  // namespace cae::data
