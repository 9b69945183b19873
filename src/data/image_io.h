// Any image file cae reads: PNG (every bit depth) or JPEG, told apart by their signatures.
#pragma once

#include <string>

#include "data/png_io.h"

namespace cae::data {

// Requires a PNG (1 to 16 bits per sample, gray, RGB, palette, alpha dropped) or a JPEG (gray or
// colour). Ensures an 8-bit image with c = 1 or 3; 16-bit samples are rounded to 8 bits. Throws
// cae::Error naming the file for any other content, a truncated or corrupt file, zero size.
Image read_image(const std::string& path);

// True when the name ends in .png, .jpg or .jpeg (any case).
bool has_image_extension(const std::string& path);

}  // namespace cae::data
