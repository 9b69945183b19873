#include "data/png_io.h"

#include <png.h>

#include <bit>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "cae/error.h"
#include "core/atomic_file.h"

// libpng reports errors by longjmp (it is C, built without exception support, so a C++ throw
// must not cross it). The pattern here: every C++ object libpng's work touches is owned by the
// frame that calls setjmp and is declared before it; the helpers that call into libpng hold no
// object with a destructor while they do; the setjmp branch turns the saved message into a
// cae::Error.

namespace cae::data {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

// Shared by reader and writer: where libpng's error message lands before the longjmp.
struct PngState {
  const std::uint8_t* in = nullptr;  // reader: the whole file
  std::size_t in_size = 0, in_pos = 0;
  std::vector<std::uint8_t>* out = nullptr;  // writer: the encoded bytes
  char message[512] = "";                    // plain chars: longjmp must skip no destructor
  char warning[256] = "";
};

void on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  // libpng often says why in a warning just before a generic error ("Image width is zero in
  // IHDR", then "Invalid IHDR data"), so the last warning goes into the message.
  std::snprintf(state->message, sizeof state->message, "%s%s%s%s",
                message ? message : "unknown error", state->warning[0] ? " (" : "", state->warning,
                state->warning[0] ? ")" : "");
  png_longjmp(png, 1);
}

// The library never prints; warnings (bad ancillary chunk CRC, ...) do not stop the decode.
void on_warning(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(state->warning, sizeof state->warning, "%s", message ? message : "");
}

void on_read(png_structp png, png_bytep dst, png_size_t n) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  if (state->in_size - state->in_pos < n) png_error(png, "truncated file: unexpected end of data");
  std::memcpy(dst, state->in + state->in_pos, n);
  state->in_pos += n;
}

void on_write(png_structp png, png_bytep src, png_size_t n) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    state->out->insert(state->out->end(), src, src + n);
  } catch (...) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory while encoding");  // outside the catch: it longjmps
}

void on_flush(png_structp) {}

struct ReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct WriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteGuard() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// Deflate never expands data by more than 1032:1, so the raw scanlines of an honest PNG fit in
// this many bytes; a header claiming more is forged, and is refused before allocating for it.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// Reads the header, sets the transforms, sizes image and rows. 8-bit Pixel: depths up to 8, the
// lower ones scaled to 8 bits; 16-bit Pixel: every depth, scaled to 16 bits; either with the
// alpha channel kept when options ask. May longjmp; may throw.
template <class Img>
void start_decode(const std::string& path, png_structp png, png_infop info, std::size_t file_size,
                  const ReadOptions& options, Img& image, std::vector<png_bytep>& rows) {
  using Pixel = typename decltype(image.pixels)::value_type;
  constexpr bool wide = sizeof(Pixel) == 2;
  const bool keep_alpha = options.keep_alpha;
  png_read_info(png, info);
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  check_pixel_limit(path, width, height, options);

  int channels = 0;
  int bits_per_pixel = 0;  // as stored, to bound the raw data size
  switch (color_type) {
    case PNG_COLOR_TYPE_PALETTE: {
      // The palette index may be 1, 2, 4 or 8 bits; the palette entries are always 8-bit RGB.
      // Expansion turns a tRNS chunk into an alpha channel, which is then dropped like any other
      // unless the caller keeps alpha.
      const bool alpha = keep_alpha && png_get_valid(png, info, PNG_INFO_tRNS);
      png_set_palette_to_rgb(png);
      if (alpha)
        png_set_tRNS_to_alpha(png);
      else
        png_set_strip_alpha(png);
      channels = alpha ? 4 : 3;
      bits_per_pixel = bit_depth;
      break;
    }
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_GRAY_ALPHA:
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
      const bool rgb = color_type & PNG_COLOR_MASK_COLOR;
      const bool alpha = color_type & PNG_COLOR_MASK_ALPHA;
      if (bit_depth > 8 && !wide)
        fail(path, "unsupported PNG bit depth " + std::to_string(bit_depth) + " (" +
                       (rgb ? "RGB" : "gray") + (alpha ? "+alpha" : "") +
                       "), expected 8 bits per channel or fewer");
      if (bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
      if (alpha && !keep_alpha) png_set_strip_alpha(png);
      // tRNS on gray or RGB (one colour transparent) stays ignored: such files are rare, and a
      // mask painted with it would say so in a channel of its own.
      channels = (rgb ? 3 : 1) + (alpha && keep_alpha ? 1 : 0);
      bits_per_pixel = bit_depth * ((rgb ? 3 : 1) + (alpha ? 1 : 0));
      break;
    }
    default:
      fail(path, "unsupported PNG color type " + std::to_string(color_type));
  }
  if constexpr (wide) {
    // Scales every depth to 16 bits by bit replication (exact: 8-bit v becomes 257 v); samples
    // come big-endian, and are swapped to the host's order.
    png_set_expand_16(png);
    if constexpr (std::endian::native == std::endian::little) png_set_swap(png);
  }
  if (width == 0 || height == 0)  // libpng already refuses these; keep the contract local
    fail(path, "PNG size " + std::to_string(width) + "×" + std::to_string(height) +
                   ", expected width and height > 0");
  const std::uint64_t raw_bytes =
      std::uint64_t(height) * (1 + (std::uint64_t(width) * bits_per_pixel + 7) / 8);
  if (raw_bytes > kMaxDeflateRatio * file_size + 1024)
    fail(path, "PNG header says " + std::to_string(width) + "×" + std::to_string(height) +
                   " pixels, more than a " + std::to_string(file_size) + "-byte file can hold");
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const std::size_t row_bytes = png_get_rowbytes(png, info);
  const std::size_t row_samples = std::size_t(width) * channels;
  if (row_bytes != row_samples * sizeof(Pixel))
    fail(path, "PNG decodes to " + std::to_string(row_bytes) + " bytes per row, expected " +
                   std::to_string(row_samples * sizeof(Pixel)));

  image.h = int(height);
  image.w = int(width);
  image.c = channels;
  if constexpr (wide) image.bits = color_type == PNG_COLOR_TYPE_PALETTE ? 8 : bit_depth;
  image.pixels.resize(std::size_t(height) * row_samples);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y)
    rows[y] = reinterpret_cast<png_bytep>(image.pixels.data() + y * row_samples);
}

template <class Img>
Img decode_png(std::span<const std::uint8_t> bytes, const std::string& path,
               const ReadOptions& options) {
  if (bytes.size() < 8 || png_sig_cmp(bytes.data(), 0, 8) != 0) {
    std::string found;
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i) {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%02x", bytes[i]);
      if (i) found += ' ';
      found += hex;
    }
    fail(path, "not a PNG file: expected the signature 89 50 4e 47 0d 0a 1a 0a, found " +
                   (found.empty() ? std::string("an empty file") : found));
  }
  // libpng refuses a size beyond PNG's 2^31 - 1 only as "PNG unsigned integer out of range";
  // say which field and what it claims (IHDR is always the first chunk: width at 16, height 20).
  if (bytes.size() >= 24 && std::memcmp(bytes.data() + 12, "IHDR", 4) == 0)
    for (const auto& [offset, field] : {std::pair{16, "width"}, std::pair{20, "height"}}) {
      const std::uint8_t* b = bytes.data() + offset;
      const std::uint32_t v = std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 |
                              std::uint32_t(b[2]) << 8 | b[3];
      if (v > 0x7fffffffu)
        fail(path, std::string("PNG header says ") + field + " " + std::to_string(v) +
                       ", more than PNG's limit of 2147483647");
    }

  PngState state;
  state.in = bytes.data();
  state.in_size = bytes.size();
  Img image;
  std::vector<png_bytep> rows;
  ReadGuard guard;
  guard.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
  if (!guard.png) fail(path, "cannot create a PNG reader (out of memory)");
  guard.info = png_create_info_struct(guard.png);
  if (!guard.info) fail(path, "cannot create a PNG reader (out of memory)");
  png_set_read_fn(guard.png, &state, on_read);

  if (setjmp(png_jmpbuf(guard.png))) fail(path, std::string("invalid PNG: ") + state.message);
  start_decode(path, guard.png, guard.info, bytes.size(), options, image, rows);
  png_read_image(guard.png, rows.data());
  // Reads up to IEND: a file cut after its pixel data, or a bad CRC there, is still an error.
  png_read_end(guard.png, nullptr);
  return image;
}

constexpr int kColorTypes[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGB_ALPHA};

template <class Img>
std::vector<std::uint8_t> encode_png(const std::string& path, const Img& image) {
  using Pixel = typename decltype(image.pixels)::value_type;
  const int depth = 8 * int(sizeof(Pixel));
  if (image.h <= 0 || image.w <= 0 || image.c < 1 || image.c > 4)
    fail(path, "cannot write a PNG of " + std::to_string(image.h) + "×" + std::to_string(image.w) +
                   "×" + std::to_string(image.c) + ": expected h, w > 0 and c = 1 to 4");
  const std::size_t row_samples = std::size_t(image.w) * image.c;
  if (image.pixels.size() != std::size_t(image.h) * row_samples)
    fail(path, "cannot write a PNG of " + std::to_string(image.h) + "×" + std::to_string(image.w) +
                   "×" + std::to_string(image.c) + ": expected " +
                   std::to_string(std::size_t(image.h) * row_samples) +
                   (depth == 8 ? " bytes of pixels, found " : " samples, found ") +
                   std::to_string(image.pixels.size()));

  std::vector<std::uint8_t> encoded;
  PngState state;
  state.out = &encoded;
  WriteGuard guard;
  guard.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
  if (!guard.png) fail(path, "cannot create a PNG writer (out of memory)");
  guard.info = png_create_info_struct(guard.png);
  if (!guard.info) fail(path, "cannot create a PNG writer (out of memory)");
  png_set_write_fn(guard.png, &state, on_write, on_flush);

  if (setjmp(png_jmpbuf(guard.png))) fail(path, std::string("cannot encode PNG: ") + state.message);
  png_set_IHDR(guard.png, guard.info, png_uint_32(image.w), png_uint_32(image.h), depth,
               kColorTypes[image.c - 1], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  // zlib level 2 with the Up filter on every row: a 12-megapixel photo encodes 4-5x faster than
  // libpng's default (level 6, every filter tried per row), at files about a quarter larger
  // (docs/repair.md, "How long it takes", measures it). A repair writes whole photos.
  png_set_compression_level(guard.png, 2);
  png_set_filter(guard.png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
  png_write_info(guard.png, guard.info);
  if (depth == 16 && std::endian::native == std::endian::little) png_set_swap(guard.png);
  for (int y = 0; y < image.h; ++y)
    png_write_row(guard.png,
                  reinterpret_cast<png_const_bytep>(image.pixels.data() + y * row_samples));
  png_write_end(guard.png, nullptr);
  return encoded;
}

}  // namespace

void check_pixel_limit(const std::string& path, std::uint64_t w, std::uint64_t h,
                       const ReadOptions& options) {
  if (w * h <= options.max_pixels) return;
  throw PixelLimitError(path + ": the image is " + std::to_string(w) + "×" + std::to_string(h) +
                        " = " + std::to_string(w * h) + " pixels, above the limit of " +
                        std::to_string(options.max_pixels) +
                        (options.limit_flag.empty()
                             ? std::string()
                             : " (raise it with " + options.limit_flag + ")"));
}

Image read_png(const std::string& path, const ReadOptions& options) {
  return decode_png<Image>(read_file(path), path, options);
}

Image read_png_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                     const ReadOptions& options) {
  return decode_png<Image>(bytes, what, options);
}

void write_png(const std::string& path, const Image& image) {
  write_file_atomic(path, encode_png(path, image));
}

std::vector<std::uint8_t> png_bytes(const Image& image, const std::string& what) {
  return encode_png(what, image);
}

std::vector<std::uint8_t> png_bytes(const Image16& image, const std::string& what) {
  return encode_png(what, image);
}

Image16 read_png16(const std::string& path, const ReadOptions& options) {
  return decode_png<Image16>(read_file(path), path, options);
}

Image16 read_png16_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                         const ReadOptions& options) {
  return decode_png<Image16>(bytes, what, options);
}

void write_png16(const std::string& path, const Image16& image) {
  write_file_atomic(path, encode_png(path, image));
}

Image to_8bit(const Image16& image) {
  Image out;
  out.h = image.h;
  out.w = image.w;
  out.c = image.c;
  out.pixels.resize(image.pixels.size());
  for (std::size_t i = 0; i < image.pixels.size(); ++i)
    out.pixels[i] = std::uint8_t((std::uint32_t(image.pixels[i]) * 255 + 32767) / 65535);
  return out;
}

}  // namespace cae::data
