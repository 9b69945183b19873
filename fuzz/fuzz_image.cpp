// Any image file (src/data/image_io.cpp, issue 4): PNG of every bit depth or JPEG, told apart by
// the signature. Built only when src/data/image_io.cpp exists (cmake/fuzz.cmake).
#include <cstdint>
#include <cstdlib>

#include "cae/error.h"
#include "data/image_io.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static cae::fuzz::MemFile file;
  try {
    const cae::data::Image image = cae::data::read_image(file.hold(data, size));
    if (image.h <= 0 || image.w <= 0 || (image.c != 1 && image.c != 3) ||
        image.pixels.size() != std::size_t(image.h) * image.w * image.c)
      std::abort();
  } catch (const cae::Error&) {
  }
  return 0;
}
