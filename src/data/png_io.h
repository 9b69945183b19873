// PNG files for looking at images: 8-bit gray or RGB in, 8-bit gray or RGB out (libpng).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cae::data {

// One picture, HWC-interleaved bytes; c = 1 (gray) or 3 (RGB).
struct Image {
  int h = 0, w = 0, c = 1;
  std::vector<std::uint8_t> pixels;
};

// Requires an 8-bit PNG. Ensures gray gives c = 1, RGB and palette (any index depth, expanded)
// give c = 3; the alpha channel of gray+alpha and RGBA is dropped, not composited, and tRNS
// transparency is ignored. Throws cae::Error naming the file for a non-PNG, a truncated or
// corrupt file, zero size, and for gray/RGB bit depths other than 8 (16-bit is not supported
// yet), naming the depth found.
Image read_png(const std::string& path);

// Requires h, w > 0, c in {1, 3} and pixels.size() == h·w·c. Ensures path holds the image as an
// 8-bit gray or RGB PNG, written atomically; throws cae::Error otherwise.
void write_png(const std::string& path, const Image& image);

}  // namespace cae::data
