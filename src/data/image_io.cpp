#include "data/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>

#include "cae/error.h"
#include "data/jpeg_io.h"

namespace cae::data {

Image read_image(const std::string& path) {
  unsigned char head[8] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the image file");
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const std::streamsize got = in.gcount();
  if (got >= 4 && head[0] == 0x89 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G')
    return to_8bit(read_png16(path));
  if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return read_jpeg(path);
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

bool has_image_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

}  // namespace cae::data
