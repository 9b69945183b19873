// Model file reader (src/io/model_file.cpp), then the model built from it (src/nn/model.cpp, as
// `cae info` does). Each input is decoded as it is, and again with its length field and CRC-32
// patched to match, so that mutations reach the body parser instead of dying at the checksum.
// Properties: a file that decodes re-encodes to exactly the same bytes (the format has one
// encoding of each file), and building a model never allocates beyond what the file holds.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "cae/error.h"
#include "io/model_file.h"
#include "nn/model.h"

namespace {

void decode(std::span<const std::uint8_t> bytes) {
  cae::io::ModelFile file;
  try {
    file = cae::io::decode_model_file(bytes, "fuzz.cae");
  } catch (const cae::Error&) {
    return;
  }
  const std::vector<std::uint8_t> again = cae::io::encode_model_file(file);
  if (again.size() != bytes.size() || std::memcmp(again.data(), bytes.data(), bytes.size()) != 0)
    std::abort();  // decode accepted something encode would not write
  try {
    (void)cae::nn::Model::from_file(file, "fuzz.cae");
  } catch (const cae::Error&) {
  }
}

void put_le(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = std::uint8_t(v >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  decode({data, size});
  // Header: magic (8), version (4), total length (8) at offset 12; CRC-32 in the last 4 bytes.
  if (size >= 24) {
    std::vector<std::uint8_t> fixed(data, data + size);
    put_le(fixed.data() + 12, size, 8);
    put_le(fixed.data() + size - 4, crc32_z(0, fixed.data(), size - 4), 4);
    decode(fixed);
  }
  return 0;
}
