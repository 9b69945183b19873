// IDX reader (src/data/idx.cpp): each input is read as an image file and as a label file, both
// as it is and wrapped in gzip, so the header checks are fuzzed behind the gzip path too (a
// mutated .gz seed mostly dies at the CRC). A file that reads must keep read_idx_images' contract.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cae/error.h"
#include "data/idx.h"
#include "fuzz_input.h"

namespace {

// A whole gzip member of bytes (level 1: the content matters, not the ratio).
std::vector<std::uint8_t> gzip(const std::uint8_t* bytes, std::size_t size) {
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<std::uint8_t> out(deflateBound(&z, uLong(size)) + 32);
  z.next_in = const_cast<Bytef*>(bytes);
  z.avail_in = uInt(size);
  z.next_out = out.data();
  z.avail_out = uInt(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void read_both(const std::string& path) {
  try {
    const cae::data::ImageSet set = cae::data::read_idx_images(path);
    if (set.n <= 0 || set.h <= 0 || set.w <= 0 || set.c <= 0 ||
        set.pixels.size() != std::size_t(set.n) * set.image_size())
      std::abort();  // the reader broke its contract
  } catch (const cae::Error&) {
  }
  try {
    if (cae::data::read_idx_labels(path).empty()) std::abort();
  } catch (const cae::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static cae::fuzz::MemFile file;
  read_both(file.hold(data, size));
  const std::vector<std::uint8_t> packed = gzip(data, size);
  read_both(file.hold(packed.data(), packed.size()));
  return 0;
}
