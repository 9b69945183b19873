#include "data/jpeg_io.h"

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "cae/error.h"
#include "core/atomic_file.h"

// libjpeg reports errors through error_exit, which must not return; as with libpng (see
// png_io.cpp) it longjmps back to the frame that owns every object the decode touches, and that
// frame turns the saved message into a cae::Error.

namespace cae::data {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

struct ErrorState {
  jpeg_error_mgr mgr;  // first: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "";
};

void on_error(j_common_ptr cinfo) {
  auto* state = reinterpret_cast<ErrorState*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, state->message);
  std::longjmp(state->jump, 1);
}

// The library never prints; corrupt-data warnings turn into errors, since a damaged image
// decoded with grey blocks would silently poison a dataset.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

struct DecompressGuard {
  jpeg_decompress_struct cinfo{};
  bool created = false;
  ~DecompressGuard() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// libjpeg's malloc'ed output buffer (jpeg_mem_dest), freed on every path.
struct MemoryDestination {
  unsigned char* data = nullptr;
  unsigned long size = 0;
  ~MemoryDestination() { std::free(data); }
};

struct CompressGuard {
  jpeg_compress_struct cinfo{};
  bool created = false;
  ~CompressGuard() {
    if (created) jpeg_destroy_compress(&cinfo);
  }
};

// A JPEG compresses 8×8 blocks; even a flat block takes a few bits, so a header claiming more
// pixels than this many per byte of file is forged and is refused before allocating for it.
constexpr std::uint64_t kMaxPixelsPerByte = 4096;

// Reads the header and sizes the image. May longjmp; may throw.
void start_decode(const std::string& path, jpeg_decompress_struct& cinfo, std::size_t file_size,
                  const ReadOptions& options, Image& image) {
  jpeg_read_header(&cinfo, TRUE);
  check_pixel_limit(path, cinfo.image_width, cinfo.image_height, options);
  if (cinfo.num_components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (cinfo.num_components == 3) {
    cinfo.out_color_space = JCS_RGB;
  } else {
    fail(path, "unsupported JPEG with " + std::to_string(cinfo.num_components) +
                   " components (CMYK?), expected 1 (gray) or 3 (colour)");
  }
  if (cinfo.image_width == 0 || cinfo.image_height == 0)
    fail(path, "JPEG size 0, expected width and height > 0");
  if (std::uint64_t(cinfo.image_width) * cinfo.image_height > kMaxPixelsPerByte * file_size)
    fail(path, "JPEG header says " + std::to_string(cinfo.image_width) + "×" +
                   std::to_string(cinfo.image_height) + " pixels, more than a " +
                   std::to_string(file_size) + "-byte file can hold");
  jpeg_start_decompress(&cinfo);
  image.h = int(cinfo.output_height);
  image.w = int(cinfo.output_width);
  image.c = cinfo.output_components;
  image.pixels.resize(std::size_t(image.h) * image.w * image.c);
}

}  // namespace

Image read_jpeg(const std::string& path, const ReadOptions& options) {
  return read_jpeg_bytes(read_file(path), path, options);
}

Image read_jpeg_bytes(std::span<const std::uint8_t> bytes, const std::string& path,
                      const ReadOptions& options) {
  if (bytes.size() < 3 || bytes[0] != 0xff || bytes[1] != 0xd8 || bytes[2] != 0xff)
    fail(path, "not a JPEG file: expected the signature ff d8 ff");
  Image image;
  ErrorState errors;
  DecompressGuard guard;
  guard.cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = on_error;
  errors.mgr.emit_message = on_message;
  if (setjmp(errors.jump)) fail(path, std::string("invalid JPEG: ") + errors.message);
  jpeg_create_decompress(&guard.cinfo);
  guard.created = true;
  jpeg_mem_src(&guard.cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  start_decode(path, guard.cinfo, bytes.size(), options, image);
  const std::size_t row_bytes = std::size_t(image.w) * image.c;
  while (guard.cinfo.output_scanline < guard.cinfo.output_height) {
    JSAMPROW row = image.pixels.data() + guard.cinfo.output_scanline * row_bytes;
    jpeg_read_scanlines(&guard.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&guard.cinfo);
  return image;
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  if (image.h <= 0 || image.w <= 0 || (image.c != 1 && image.c != 3) ||
      image.pixels.size() != std::size_t(image.h) * image.w * image.c)
    fail(path, "cannot write a JPEG of " + std::to_string(image.h) + "×" + std::to_string(image.w) +
                   "×" + std::to_string(image.c) +
                   ": expected h, w > 0, c = 1 or 3 and h·w·c pixels");
  if (quality < 1 || quality > 100)
    fail(path, "JPEG quality " + std::to_string(quality) + ", expected 1 to 100");
  MemoryDestination dest;
  ErrorState errors;
  CompressGuard guard;
  guard.cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = on_error;
  errors.mgr.emit_message = on_message;
  if (setjmp(errors.jump)) fail(path, std::string("cannot encode JPEG: ") + errors.message);
  jpeg_create_compress(&guard.cinfo);
  guard.created = true;
  jpeg_mem_dest(&guard.cinfo, &dest.data, &dest.size);
  guard.cinfo.image_width = JDIMENSION(image.w);
  guard.cinfo.image_height = JDIMENSION(image.h);
  guard.cinfo.input_components = image.c;
  guard.cinfo.in_color_space = image.c == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&guard.cinfo);
  jpeg_set_quality(&guard.cinfo, quality, TRUE);
  jpeg_start_compress(&guard.cinfo, TRUE);
  const std::size_t row_bytes = std::size_t(image.w) * image.c;
  while (guard.cinfo.next_scanline < guard.cinfo.image_height) {
    JSAMPROW row =
        const_cast<JSAMPROW>(image.pixels.data() + guard.cinfo.next_scanline * row_bytes);
    jpeg_write_scanlines(&guard.cinfo, &row, 1);
  }
  jpeg_finish_compress(&guard.cinfo);
  write_file_atomic(path, {dest.data, std::size_t(dest.size)});
}

}  // namespace cae::data
