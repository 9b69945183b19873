#include "data/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cae/error.h"
#include "data/jpeg_io.h"

namespace cae::data {

namespace {

// The format by the signature at the start of head (the file's first bytes, 8 are enough).
ImageFormat format_of(std::span<const std::uint8_t> head, const std::string& what) {
  const std::size_t got = head.size();
  if (got >= 4 && head[0] == 0x89 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G')
    return ImageFormat::png;
  if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return ImageFormat::jpeg;
  if (got == 0) throw Error(what + ": not an image: the file is empty");
  std::string found;
  for (std::size_t i = 0; i < std::min<std::size_t>(got, 8); ++i) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%02x", head[i]);
    if (i) found += ' ';
    found += hex;
  }
  throw Error(what + ": not a PNG or JPEG file (expected the signature 89 50 4e 47 or ff d8 ff, " +
              "found " + found + ")");
}

// The bits per sample a PNG's header says (head: at least its first 26 bytes, else 8).
int png_bits_of(std::span<const std::uint8_t> head) {
  // IHDR is the first chunk: its bit depth at byte 24, its colour type at 25 (3: palette).
  if (head.size() < 26) return 8;  // truncated: the decoder says so, naming what is missing
  return head[25] == 3 ? 8 : head[24];
}

}  // namespace

ImageFormat image_format(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw Error(path + ": a folder, not an image file");
  std::uint8_t head[8] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the image file");
  in.read(reinterpret_cast<char*>(head), sizeof head);
  return format_of({head, std::size_t(in.gcount())}, path);
}

ImageFormat image_format(std::span<const std::uint8_t> bytes, const std::string& what) {
  return format_of(bytes, what);
}

int image_bits(std::span<const std::uint8_t> bytes, const std::string& what) {
  return format_of(bytes, what) == ImageFormat::jpeg ? 8 : png_bits_of(bytes);
}

int image_bits(const std::string& path) {
  if (image_format(path) == ImageFormat::jpeg) return 8;
  std::uint8_t head[26] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof head);
  return png_bits_of({head, std::size_t(in.gcount())});
}

Image read_image(const std::string& path, const ReadOptions& options) {
  if (image_format(path) == ImageFormat::jpeg) return read_jpeg(path, options);
  // Depths up to 8 decode to bytes directly (the same values as through 16 bits, faster).
  return image_bits(path) <= 8 ? read_png(path, options) : to_8bit(read_png16(path, options));
}

Image read_image_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                       const ReadOptions& options) {
  if (format_of(bytes, what) == ImageFormat::jpeg) return read_jpeg_bytes(bytes, what, options);
  return png_bits_of(bytes) <= 8 ? read_png_bytes(bytes, what, options)
                                 : to_8bit(read_png16_bytes(bytes, what, options));
}

namespace {

Image16 widen(const Image& jpeg) {
  Image16 wide;
  wide.h = jpeg.h, wide.w = jpeg.w, wide.c = jpeg.c, wide.bits = 8;
  wide.pixels.resize(jpeg.pixels.size());
  for (std::size_t i = 0; i < jpeg.pixels.size(); ++i)
    wide.pixels[i] = std::uint16_t(257 * jpeg.pixels[i]);
  return wide;
}

}  // namespace

Image16 read_image16(const std::string& path, const ReadOptions& options) {
  if (image_format(path) == ImageFormat::png) return read_png16(path, options);
  return widen(read_jpeg(path, options));
}

Image16 read_image16_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                           const ReadOptions& options) {
  if (format_of(bytes, what) == ImageFormat::png) return read_png16_bytes(bytes, what, options);
  return widen(read_jpeg_bytes(bytes, what, options));
}

bool has_image_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

}  // namespace cae::data
