// PNG reader (src/data/png_io.cpp, libpng underneath): any bytes in, an image or a cae::Error
// out, never a crash, a leak through libpng's longjmp, or an allocation beyond what the file can
// hold. A PNG that reads must keep read_png's contract.
#include <cstdint>
#include <cstdlib>

#include "cae/error.h"
#include "data/png_io.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static cae::fuzz::MemFile file;
  try {
    const cae::data::Image image = cae::data::read_png(file.hold(data, size));
    if (image.h <= 0 || image.w <= 0 || (image.c != 1 && image.c != 3) ||
        image.pixels.size() != std::size_t(image.h) * image.w * image.c)
      std::abort();
  } catch (const cae::Error&) {
  }
  return 0;
}
