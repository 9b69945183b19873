// PNG files (libpng): read_png/write_png for exact 8-bit gray or RGB; read_png16/write_png16 for
// every bit depth, held as 16-bit samples, with the alpha channel when asked.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "cae/error.h"

namespace cae::data {

// One picture, HWC-interleaved bytes; c = 1 (gray) or 3 (RGB), or with alpha 2 (gray + alpha)
// or 4 (RGBA) where a function says so.
struct Image {
  int h = 0, w = 0, c = 1;
  std::vector<std::uint8_t> pixels;
};

// How an image file is read where its reader takes options (read_png16, read_image16, read_jpeg).
struct ReadOptions {
  bool keep_alpha = false;  // PNG: keep gray+alpha, RGBA and palette transparency as a channel
  // A header claiming more pixels (width × height) is refused before anything is allocated.
  std::uint64_t max_pixels = std::numeric_limits<std::uint64_t>::max();
  std::string limit_flag;  // the option that raises max_pixels, named in its error ("--max-pixels")
};

// An image refused for its size alone (above ReadOptions.max_pixels), told apart from a broken
// file so that a server can answer "too large" rather than "bad input".
class PixelLimitError : public Error {
 public:
  using Error::Error;
};

// Throws PixelLimitError naming path when w·h is above options.max_pixels (the message gives both
// and options.limit_flag). For the readers, once they know the header's size.
void check_pixel_limit(const std::string& path, std::uint64_t w, std::uint64_t h,
                       const ReadOptions& options);

// Requires a PNG of 8 bits per sample or fewer. Ensures gray gives c = 1, RGB and palette (any
// index depth, expanded) give c = 3, gray of 1, 2 or 4 bits is scaled to 8 (a 4-bit v becomes
// 17·v); the alpha channel of gray+alpha and RGBA is dropped, not composited, and tRNS
// transparency is ignored, unless options.keep_alpha keeps them as the last channel (c = 2 or 4).
// Throws cae::Error naming the file for a non-PNG, a truncated or corrupt file, zero size, a
// header above options.max_pixels, and for 16-bit samples (read_png16), naming the depth found.
Image read_png(const std::string& path, const ReadOptions& options = {});
// The same from a PNG file's bytes held in memory (an upload); errors name `what`.
Image read_png_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                     const ReadOptions& options = {});

// Requires h, w > 0, c in {1, 2, 3, 4} and pixels.size() == h·w·c. Ensures path holds the image
// as an 8-bit gray, gray + alpha, RGB or RGBA PNG, written atomically; throws cae::Error
// otherwise.
void write_png(const std::string& path, const Image& image);

// One picture with 16-bit samples, HWC-interleaved; c = 1 (gray) or 3 (RGB), or with alpha 2 or
// 4 where read so. bits: the file's own bit depth per sample (1 to 16; 8 for a JPEG).
struct Image16 {
  int h = 0, w = 0, c = 1, bits = 16;
  std::vector<std::uint16_t> pixels;
};

// Requires a PNG of any bit depth (1, 2, 4, 8 or 16). Ensures samples scaled to 16 bits exactly
// (an 8-bit v becomes 257·v, a 4-bit v 4369·v, ...), gray giving c = 1 and RGB or palette c = 3;
// the alpha channel dropped as read_png does, or with options.keep_alpha kept as the last
// channel (c = 2 or 4; a palette's tRNS becomes it). Throws cae::Error as read_png does, bit
// depth aside, and for a header above options.max_pixels.
Image16 read_png16(const std::string& path, const ReadOptions& options = {});
// The same from a PNG file's bytes held in memory; errors name `what`.
Image16 read_png16_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                         const ReadOptions& options = {});

// Requires h, w > 0, c in {1, 2, 3, 4} (gray, gray + alpha, RGB, RGBA) and h·w·c samples.
// Ensures path holds a 16-bit PNG of those channels, written atomically; throws cae::Error
// otherwise.
void write_png16(const std::string& path, const Image16& image);

// Ensures the bytes of the PNG file write_png (8-bit) or write_png16 (16-bit) would write, for
// callers that write several files together (FileBatch). Throws cae::Error naming `what` as the
// writers do.
std::vector<std::uint8_t> png_bytes(const Image& image, const std::string& what);
std::vector<std::uint8_t> png_bytes(const Image16& image, const std::string& what);

// The 8-bit image nearest to a 16-bit one: round(v·255/65535) per sample, so that an 8-bit
// PNG read through read_png16 comes back exactly.
Image to_8bit(const Image16& image);

}  // namespace cae::data
