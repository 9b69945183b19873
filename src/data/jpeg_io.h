// JPEG files (libjpeg): baseline and progressive, gray or colour, 8 bits per sample.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "data/png_io.h"

namespace cae::data {

// Requires a JPEG file of gray (1 component) or YCbCr/RGB (3 components). Ensures gray gives
// c = 1 and colour c = 3 (RGB). Throws cae::Error naming the file for a non-JPEG, a truncated
// or corrupt file, CMYK or other component counts, a header claiming more pixels than the file
// can hold, and one above options.max_pixels (options.keep_alpha does not apply).
Image read_jpeg(const std::string& path, const ReadOptions& options = {});
// The same from a JPEG file's bytes held in memory (an upload); errors name `what`.
Image read_jpeg_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                      const ReadOptions& options = {});

// Requires h, w > 0, c in {1, 3}, h·w·c pixels and quality in [1, 100]. Ensures path holds the
// image as a baseline JPEG, written atomically; throws cae::Error otherwise.
void write_jpeg(const std::string& path, const Image& image, int quality = 95);

}  // namespace cae::data
