// IDX files (the MNIST container, http://yann.lecun.com/exdb/mnist/): a big-endian header
// (magic 00 00 <type> <ndims>, then ndims uint32 sizes) followed by the row-major payload.
// Only the unsigned-byte type (0x08) is supported. Readers accept the raw file or its gzip
// (detected by the 1f 8b magic, not the name) and treat the input as hostile: every size is
// checked against the data actually present before anything is allocated for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cae::data {

// n images of h×w×c bytes; each image HWC-interleaved; images contiguous.
struct ImageSet {
  int n = 0, h = 0, w = 0, c = 1;
  std::vector<std::uint8_t> pixels;
  std::size_t image_size() const { return std::size_t(h) * w * c; }
  const std::uint8_t* image(int i) const { return pixels.data() + std::size_t(i) * image_size(); }
};

// Requires an IDX ubyte file of 3 dims (n, h, w; gives c = 1) or 4 dims (n, h, w, c), raw or
// gzip. Ensures every dimension > 0 and pixels.size() == n·h·w·c; throws cae::Error naming
// the file, the expected and the found value on a bad magic, zero dimension, truncation,
// trailing bytes or gzip corruption.
ImageSet read_idx_images(const std::string& path);

// Requires an IDX ubyte file of 1 dim (n), raw or gzip. Ensures n > 0 labels are returned;
// throws cae::Error as read_idx_images does.
std::vector<std::uint8_t> read_idx_labels(const std::string& path);

// Requires n, h, w, c > 0 and pixels.size() == n·h·w·c. Ensures path holds a raw IDX file
// (3 dims if c == 1, else 4) that read_idx_images reads back as set, written atomically;
// throws cae::Error otherwise, leaving any previous file untouched.
void write_idx_images(const std::string& path, const ImageSet& set);

}  // namespace cae::data
