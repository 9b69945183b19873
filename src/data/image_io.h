// Any image file cae reads: PNG (every bit depth) or JPEG, told apart by their signatures.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "data/png_io.h"

namespace cae::data {

enum class ImageFormat { png, jpeg };
// Ensures the format of the file by its signature (not its name). Throws cae::Error naming the
// file when it cannot be opened, is a folder or empty, or is neither PNG nor JPEG.
ImageFormat image_format(const std::string& path);

// The same for a file's bytes held in memory (an upload), `what` naming it in errors: the
// *_bytes readers below decode exactly as the path ones decode the same bytes from a file.
ImageFormat image_format(std::span<const std::uint8_t> bytes, const std::string& what);

// Requires a PNG (1 to 16 bits per sample, gray, RGB, palette, alpha dropped unless
// options.keep_alpha) or a JPEG (gray or colour). Ensures an 8-bit image with c = 1 or 3 (2 or 4
// with alpha kept); 16-bit samples are rounded to 8 bits (to_8bit), lower depths scaled up
// exactly. Throws cae::Error naming the file for any other content, a truncated or corrupt file,
// zero size, or a size above options.max_pixels.
Image read_image(const std::string& path, const ReadOptions& options = {});
Image read_image_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                       const ReadOptions& options = {});

// Ensures the bits per sample the file stores: a PNG's header depth (1, 2, 4, 8 or 16; 8 for a
// palette, whose entries are 8-bit), 8 for a JPEG. Reads only the header; throws as image_format.
int image_bits(const std::string& path);
int image_bits(std::span<const std::uint8_t> bytes, const std::string& what);

// Requires a PNG (any depth) or a JPEG. Ensures its samples as the file holds them (Image16:
// a PNG's bits and alpha as read_png16 reads them with options; a JPEG's 8-bit samples widened
// exactly to 257·v, bits 8). Throws cae::Error naming the file as read_image does, and for an
// image above options.max_pixels, before decoding it.
Image16 read_image16(const std::string& path, const ReadOptions& options);
Image16 read_image16_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                           const ReadOptions& options);

// True when the name ends in .png, .jpg or .jpeg (any case).
bool has_image_extension(const std::string& path);

}  // namespace cae::data
