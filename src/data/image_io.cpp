#include "data/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cae/error.h"
#include "data/jpeg_io.h"

namespace cae::data {

ImageFormat image_format(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw Error(path + ": a folder, not an image file");
  unsigned char head[8] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the image file");
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const std::streamsize got = in.gcount();
  if (got >= 4 && head[0] == 0x89 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G')
    return ImageFormat::png;
  if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return ImageFormat::jpeg;
  if (got == 0) throw Error(path + ": not an image: the file is empty");
  std::string found;
  for (std::streamsize i = 0; i < got; ++i) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%02x", head[i]);
    if (i) found += ' ';
    found += hex;
  }
  throw Error(path + ": not a PNG or JPEG file (expected the signature 89 50 4e 47 or ff d8 ff, " +
              "found " + found + ")");
}

int image_bits(const std::string& path) {
  if (image_format(path) == ImageFormat::jpeg) return 8;
  // IHDR is the first chunk: its bit depth at byte 24, its colour type at 25 (3: palette).
  unsigned char head[26] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (in.gcount() < 26) return 8;  // truncated: the decoder says so, naming what is missing
  return head[25] == 3 ? 8 : head[24];
}

Image read_image(const std::string& path, const ReadOptions& options) {
  if (image_format(path) == ImageFormat::jpeg) return read_jpeg(path, options);
  // Depths up to 8 decode to bytes directly (the same values as through 16 bits, faster).
  return image_bits(path) <= 8 ? read_png(path, options) : to_8bit(read_png16(path, options));
}

Image16 read_image16(const std::string& path, const ReadOptions& options) {
  if (image_format(path) == ImageFormat::png) return read_png16(path, options);
  const Image jpeg = read_jpeg(path, options);
  Image16 wide;
  wide.h = jpeg.h, wide.w = jpeg.w, wide.c = jpeg.c, wide.bits = 8;
  wide.pixels.resize(jpeg.pixels.size());
  for (std::size_t i = 0; i < jpeg.pixels.size(); ++i)
    wide.pixels[i] = std::uint16_t(257 * jpeg.pixels[i]);
  return wide;
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
