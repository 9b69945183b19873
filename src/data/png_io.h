// PNG files (libpng): read_png/write_png for exact 8-bit gray or RGB; read_png16/write_png16 for
// every bit depth, held as 16-bit samples.
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

// One picture with 16-bit samples, HWC-interleaved; c = 1 (gray) or 3 (RGB).
struct Image16 {
  int h = 0, w = 0, c = 1;
  std::vector<std::uint16_t> pixels;
};

// Requires a PNG of any bit depth (1, 2, 4, 8 or 16). Ensures samples scaled to 16 bits exactly
// (an 8-bit v becomes 257·v, a 4-bit v 4369·v, ...), gray giving c = 1 and RGB or palette c = 3,
// alpha dropped as read_png does. Throws cae::Error as read_png does, bit depth aside.
Image16 read_png16(const std::string& path);

// Requires h, w > 0, c in {1, 3} and h·w·c samples. Ensures path holds a 16-bit gray or RGB
// PNG, written atomically; throws cae::Error otherwise.
void write_png16(const std::string& path, const Image16& image);

// The 8-bit image nearest to a 16-bit one: round(v·255/65535) per sample, so that an 8-bit
// PNG read through read_png16 comes back exactly.
Image to_8bit(const Image16& image);

}  // namespace cae::data
