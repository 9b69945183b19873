// Masks a user gives: which pixels of their photo to repair. A mask file is an image of the
// photo's size, read with these conventions (docs/repair.md, "Masks"):
//   - PNG, gray or colour (any depth, palettes too): a pixel is damaged where any sample is not
//     zero, so white (or any colour) on black marks the damage;
//   - PNG with an alpha channel (gray + alpha, RGBA, a palette with transparency): the alpha
//     channel says it, damaged where alpha is not zero (a stroke painted on a transparent
//     layer); an alpha channel that is opaque everywhere says nothing, and the colour decides;
//   - JPEG: damaged where any sample is at least 128, since JPEG's compression leaves small
//     non-zero values around every edge of a black-and-white drawing.
// The damage can also be found in the photo itself, drawn in a known colour (mask_from_color),
// and grown by a few pixels to cover a drawing's antialiased edge (grow_mask).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/png_io.h"

namespace cae::data {

// One byte per pixel, row-major: 1 = damaged (to repair), 0 = kept as it is.
struct Mask {
  int h = 0, w = 0;
  std::vector<std::uint8_t> pixels;
  // Ensures the number of damaged pixels.
  std::size_t damaged() const;
};

// Requires a PNG or JPEG file. Ensures its mask by the conventions above. Throws cae::Error
// naming the file when it cannot be read or is above options.max_pixels (options.keep_alpha is
// set here).
Mask read_mask(const std::string& path, ReadOptions options);
// The same from a mask file's bytes held in memory (an upload); errors name `what`.
Mask read_mask_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                     ReadOptions options);

// A colour and how far a sample may be from it, in 8-bit units: "255,0,0" or "255,0,0:40".
struct MaskColor {
  int r = 0, g = 0, b = 0, tolerance = 0;
};
// Throws cae::Error naming the text unless it is R,G,B or R,G,B:T with each number 0 to 255.
MaskColor parse_mask_color(const std::string& text);

// Requires a photo as read_image or read_image16 read it (c = 1 to 4; alpha, when c is 2 or 4,
// not compared). Ensures the pixels whose every colour sample is within color.tolerance of
// color's (in 8-bit units: |v − 257·r| ≤ 257·tolerance for 16-bit samples); a gray pixel of
// value v is compared as the colour (v, v, v).
Mask mask_from_color(const Image& photo, const MaskColor& color);
Mask mask_from_color(const Image16& photo, const MaskColor& color);

// Requires radius >= 0. Ensures every pixel within `radius` pixels (Euclidean, of pixel
// centres) of a damaged pixel is damaged too; radius 0 leaves the mask as it is.
void grow_mask(Mask& mask, int radius);

// Requires masks of one size. Ensures `into` damaged wherever either is.
void add_mask(Mask& into, const Mask& other);

}  // namespace cae::data
