// PNG reader/writer and make_grid. Reference files are encoded here with libpng directly, and
// written files are checked with libpng's independent simplified decoder (png_image).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cae/error.h"
#include "data/grid.h"
#include "data/png_io.h"
#include "support.h"

namespace {

using cae::data::Image;
using ::testing::HasSubstr;
using cae::test::error_of;
using Bytes = std::vector<std::uint8_t>;


Bytes read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::string write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  EXPECT_TRUE(out.good()) << path;
  return path;
}

// What the reference encoder writes.
struct PngSpec {
  int width = 0, height = 0, bit_depth = 8, color_type = PNG_COLOR_TYPE_GRAY;
  bool interlaced = false;
  std::vector<png_color> palette;
  Bytes trns;               // palette alpha entries
  std::vector<Bytes> rows;  // packed as the PNG stores them (big-endian for 16-bit)
};

// Encodes spec with plain libpng; returns false on a libpng error.
bool encode_reference(const std::string& path, PngSpec& spec) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) png_set_PLTE(png, info, spec.palette.data(), int(spec.palette.size()));
  if (!spec.trns.empty()) png_set_tRNS(png, info, spec.trns.data(), int(spec.trns.size()), nullptr);
  png_write_info(png, info);
  std::vector<png_bytep> rows;
  for (Bytes& row : spec.rows) rows.push_back(row.data());
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::fclose(file) == 0;
}

// Decodes path with libpng's simplified API into 8-bit gray (c = 1) or RGB (c = 3).
Bytes decode_reference(const std::string& path, int c, int* h, int* w) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return {};
  image.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Bytes pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return {};
  *h = int(image.height);
  *w = int(image.width);
  return pixels;
}

Image pattern_image(int h, int w, int c) {
  Image image;
  image.h = h, image.w = w, image.c = c;
  for (int i = 0; i < h * w * c; ++i) image.pixels.push_back(std::uint8_t((i * 37 + 11) % 256));
  return image;
}

std::uint8_t& at(Image& image, int y, int x, int ch = 0) {
  return image.pixels[(std::size_t(y) * image.w + x) * image.c + ch];
}

// One PNG chunk: length, type, data, CRC-32 over type and data.
void put_chunk(Bytes& out, const char* type, const Bytes& data) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(std::uint8_t(data.size() >> s));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  const std::uint32_t crc = std::uint32_t(crc32(0, body.data(), uInt(body.size())));
  for (int s = 24; s >= 0; s -= 8) out.push_back(std::uint8_t(crc >> s));
}

// A hand-assembled gray PNG whose IHDR claims width × height, with a tiny valid IDAT.
Bytes forged_png(std::uint32_t width, std::uint32_t height) {
  Bytes out = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  Bytes ihdr;
  for (std::uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(std::uint8_t(v >> s));
  ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});  // 8-bit gray, deflate, adaptive filter, no interlace
  put_chunk(out, "IHDR", ihdr);
  Bytes scanline = {0, 0};  // filter byte + one pixel
  Bytes idat(64);
  uLongf idat_size = idat.size();
  compress(idat.data(), &idat_size, scanline.data(), scanline.size());
  idat.resize(idat_size);
  put_chunk(out, "IDAT", idat);
  put_chunk(out, "IEND", {});
  return out;
}

TEST(Png, GrayRoundTrip) {
  const std::string path = cae::test::scratch_dir() + "/gray.png";
  const Image image = pattern_image(7, 5, 1);
  cae::data::write_png(path, image);
  int h = 0, w = 0;
  EXPECT_EQ(decode_reference(path, 1, &h, &w), image.pixels);
  EXPECT_EQ(h, 7);
  EXPECT_EQ(w, 5);
  const Image back = cae::data::read_png(path);
  EXPECT_EQ(back.h, 7);
  EXPECT_EQ(back.w, 5);
  EXPECT_EQ(back.c, 1);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST(Png, RgbRoundTrip) {
  const std::string path = cae::test::scratch_dir() + "/rgb.png";
  const Image image = pattern_image(4, 9, 3);
  cae::data::write_png(path, image);
  int h = 0, w = 0;
  EXPECT_EQ(decode_reference(path, 3, &h, &w), image.pixels);
  const Image back = cae::data::read_png(path);
  EXPECT_EQ(back.h, 4);
  EXPECT_EQ(back.w, 9);
  EXPECT_EQ(back.c, 3);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST(Png, WriteRejectsBadImages) {
  const std::string path = cae::test::scratch_dir() + "/bad.png";
  Image five_channels = pattern_image(2, 2, 5);
  EXPECT_THAT(error_of([&] { cae::data::write_png(path, five_channels); }),
              HasSubstr("expected h, w > 0 and c = 1 to 4"));
  Image short_pixels = pattern_image(2, 2, 3);
  short_pixels.pixels.pop_back();
  EXPECT_THAT(error_of([&] { cae::data::write_png(path, short_pixels); }),
              HasSubstr("expected 12 bytes of pixels, found 11"));
}

TEST(Png, PaletteExpandsToRgbAndDropsTransparency) {
  const std::string path = cae::test::scratch_dir() + "/palette.png";
  PngSpec spec;
  spec.width = 3, spec.height = 1, spec.bit_depth = 2, spec.color_type = PNG_COLOR_TYPE_PALETTE;
  spec.palette = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
  spec.trns = {0, 128};           // entry 0 transparent, 1 half
  spec.rows = {{0b10'01'00'00}};  // indices 2, 1, 0 packed MSB first
  ASSERT_TRUE(encode_reference(path, spec));
  const Image image = cae::data::read_png(path);
  EXPECT_EQ(image.c, 3);
  EXPECT_EQ(image.w, 3);
  EXPECT_EQ(image.pixels, (Bytes{1, 2, 3, 200, 100, 0, 10, 20, 30}));
}

TEST(Png, AlphaIsDropped) {
  const std::string dir = cae::test::scratch_dir();
  PngSpec rgba;
  rgba.width = 2, rgba.height = 1, rgba.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
  rgba.rows = {{9, 8, 7, 0, 60, 50, 40, 255}};
  ASSERT_TRUE(encode_reference(dir + "/rgba.png", rgba));
  const Image rgb = cae::data::read_png(dir + "/rgba.png");
  EXPECT_EQ(rgb.c, 3);
  EXPECT_EQ(rgb.pixels, (Bytes{9, 8, 7, 60, 50, 40}));

  PngSpec gray_alpha;
  gray_alpha.width = 3, gray_alpha.height = 1, gray_alpha.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  gray_alpha.rows = {{5, 0, 6, 100, 7, 255}};
  ASSERT_TRUE(encode_reference(dir + "/ga.png", gray_alpha));
  const Image gray = cae::data::read_png(dir + "/ga.png");
  EXPECT_EQ(gray.c, 1);
  EXPECT_EQ(gray.pixels, (Bytes{5, 6, 7}));
}

TEST(Png, ReadsInterlacedFiles) {
  const std::string path = cae::test::scratch_dir() + "/adam7.png";
  const Image image = pattern_image(11, 13, 3);
  PngSpec spec;
  spec.width = 13, spec.height = 11, spec.color_type = PNG_COLOR_TYPE_RGB, spec.interlaced = true;
  for (int y = 0; y < 11; ++y)
    spec.rows.emplace_back(image.pixels.begin() + y * 39, image.pixels.begin() + (y + 1) * 39);
  ASSERT_TRUE(encode_reference(path, spec));
  EXPECT_EQ(cae::data::read_png(path).pixels, image.pixels);
}

TEST(Png, SixteenBitIsRejectedWithItsDepth) {
  const std::string path = cae::test::scratch_dir() + "/deep.png";
  PngSpec spec;
  spec.width = 2, spec.height = 2, spec.bit_depth = 16, spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.rows = {{0, 1, 2, 3}, {4, 5, 6, 7}};
  ASSERT_TRUE(encode_reference(path, spec));
  const std::string message = error_of([&] { cae::data::read_png(path); });
  EXPECT_THAT(message, HasSubstr(path + ": unsupported PNG bit depth 16 (gray)"));
  EXPECT_THAT(message, HasSubstr("expected 8"));

  PngSpec rgb16 = spec;
  rgb16.color_type = PNG_COLOR_TYPE_RGB;
  rgb16.rows = {Bytes(12, 1), Bytes(12, 2)};
  ASSERT_TRUE(encode_reference(path, rgb16));
  EXPECT_THAT(error_of([&] { cae::data::read_png(path); }), HasSubstr("bit depth 16 (RGB)"));
}

// Gray of 1, 2 or 4 bits is scaled to 8 exactly (v · 255 / (2^bits − 1)), as read_png16 then
// to_8bit give it, and read_image reads such files through read_png.
TEST(Png, LowGrayBitDepthIsScaledToEightBits) {
  const std::string dir = cae::test::scratch_dir();
  PngSpec spec;
  spec.width = 2, spec.height = 1, spec.bit_depth = 4, spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.rows = {{0x3c}};  // 3 and 12
  ASSERT_TRUE(encode_reference(dir + "/4bit.png", spec));
  EXPECT_EQ(cae::data::read_png(dir + "/4bit.png").pixels, (Bytes{3 * 17, 12 * 17}));
  spec.bit_depth = 1, spec.width = 8, spec.rows = {{0b1010'0001}};
  ASSERT_TRUE(encode_reference(dir + "/1bit.png", spec));
  EXPECT_EQ(cae::data::read_png(dir + "/1bit.png").pixels, (Bytes{255, 0, 255, 0, 0, 0, 0, 255}));
  for (const char* name : {"/4bit.png", "/1bit.png"})
    EXPECT_EQ(cae::data::read_png(dir + name).pixels,
              cae::data::to_8bit(cae::data::read_png16(dir + name)).pixels);
}

TEST(Png, TruncatedFilesAreErrors) {
  const std::string dir = cae::test::scratch_dir();
  cae::data::write_png(dir + "/whole.png", pattern_image(16, 16, 3));
  const Bytes whole = read_raw(dir + "/whole.png");
  ASSERT_GT(whole.size(), 100u);
  // Cut inside the pixel data; and cut only the 12-byte IEND chunk.
  const std::string half =
      write_raw(dir + "/half.png", Bytes(whole.begin(), whole.begin() + whole.size() / 2));
  const std::string message = error_of([&] { cae::data::read_png(half); });
  EXPECT_THAT(message, HasSubstr(half + ": invalid PNG"));
  EXPECT_THAT(message, HasSubstr("truncated"));
  const std::string no_end = write_raw(dir + "/no-end.png", Bytes(whole.begin(), whole.end() - 12));
  EXPECT_THAT(error_of([&] { cae::data::read_png(no_end); }), HasSubstr("truncated"));
  // Signature only.
  const std::string sig = write_raw(dir + "/sig.png", Bytes(whole.begin(), whole.begin() + 8));
  EXPECT_THAT(error_of([&] { cae::data::read_png(sig); }), HasSubstr("truncated"));
}

TEST(Png, CorruptPixelDataIsAnError) {
  const std::string dir = cae::test::scratch_dir();
  cae::data::write_png(dir + "/whole.png", pattern_image(8, 8, 1));
  const Bytes bytes = read_raw(dir + "/whole.png");
  // Signature (8) + IHDR chunk (25), then IDAT: length (4), type (4), data, CRC (4).
  ASSERT_EQ(Bytes(bytes.begin() + 37, bytes.begin() + 41), (Bytes{'I', 'D', 'A', 'T'}));
  const std::size_t idat_size = std::size_t(bytes[33]) << 24 | std::size_t(bytes[34]) << 16 |
                                std::size_t(bytes[35]) << 8 | bytes[36];
  ASSERT_LT(41 + idat_size + 4, bytes.size());

  Bytes bad_zlib = bytes;  // byte 41 is the zlib header (CMF): a bad window size
  bad_zlib[41] = 0xf8;
  const std::string zlib_path = write_raw(dir + "/zlib.png", bad_zlib);
  EXPECT_THAT(error_of([&] { cae::data::read_png(zlib_path); }), HasSubstr("invalid PNG: IDAT"));

  Bytes bad_crc = bytes;
  bad_crc[41 + idat_size] ^= 0x01;
  const std::string crc_path = write_raw(dir + "/crc.png", bad_crc);
  EXPECT_THAT(error_of([&] { cae::data::read_png(crc_path); }),
              HasSubstr("invalid PNG: IDAT: CRC error"));
}

TEST(Png, NotAPngFile) {
  const std::string dir = cae::test::scratch_dir();
  const std::string text = write_raw(dir + "/text.png", {'h', 'e', 'l', 'l', 'o', '\n', 0, 0, 0});
  EXPECT_THAT(error_of([&] { cae::data::read_png(text); }),
              HasSubstr(text + ": not a PNG file: expected the signature 89 50 4e 47 0d 0a 1a 0a, "
                               "found 68 65 6c 6c 6f 0a 00 00"));
  const std::string empty = write_raw(dir + "/empty.png", {});
  EXPECT_THAT(error_of([&] { cae::data::read_png(empty); }), HasSubstr("found an empty file"));
  EXPECT_THAT(error_of([&] { cae::data::read_png(dir + "/missing.png"); }),
              HasSubstr("missing.png"));
}

TEST(Png, ForgedHeadersAreRejected) {
  const std::string dir = cae::test::scratch_dir();
  // The hand-assembled file itself is valid at 1×1, so the rejections below are about the sizes.
  const Image one = cae::data::read_png(write_raw(dir + "/one.png", forged_png(1, 1)));
  EXPECT_EQ(one.pixels, (Bytes{0}));
  EXPECT_THAT(error_of([&] { cae::data::read_png(write_raw(dir + "/w0.png", forged_png(0, 1))); }),
              HasSubstr("width is zero"));
  EXPECT_THAT(error_of([&] {
                cae::data::read_png(write_raw(dir + "/big.png", forged_png(900000, 900000)));
              }),
              HasSubstr("900000×900000 pixels, more than a"));
}

TEST(Grid, GeometryAndGapColour) {
  // 2 rows × 3 columns of 4×5 gray cells, gap 2: (2·4 + 2) × (3·5 + 2·2) = 10 × 19.
  std::vector<std::vector<Image>> rows(2);
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < 3; ++k) {
      Image cell;
      cell.h = 4, cell.w = 5, cell.c = 1;
      cell.pixels.assign(20, std::uint8_t(10 * (3 * r + k)));
      cell.pixels[0] = 200 + std::uint8_t(3 * r + k);  // mark the top-left corner
      rows[r].push_back(cell);
    }
  Image grid = cae::data::make_grid(rows, 2, 77);
  EXPECT_EQ(grid.h, 10);
  EXPECT_EQ(grid.w, 19);
  EXPECT_EQ(grid.c, 1);
  ASSERT_EQ(grid.pixels.size(), 190u);
  // Cell (r, k) starts at y = 6r, x = 7k.
  EXPECT_EQ(at(grid, 0, 0), 200);
  EXPECT_EQ(at(grid, 0, 7), 201);
  EXPECT_EQ(at(grid, 6, 14), 205);
  EXPECT_EQ(at(grid, 9, 18), 50);  // last pixel of cell (1, 2)
  EXPECT_EQ(at(grid, 3, 4), 0);    // inside cell (0, 0)
  EXPECT_EQ(at(grid, 0, 5), 77);   // vertical gap
  EXPECT_EQ(at(grid, 9, 13), 77);
  EXPECT_EQ(at(grid, 4, 0), 77);  // horizontal gap
  EXPECT_EQ(at(grid, 5, 18), 77);
  int background = 0;
  for (std::uint8_t v : grid.pixels) background += v == 77;
  EXPECT_EQ(background, 190 - 6 * 20);
}

TEST(Grid, MixedGrayAndRgbBecomesRgb) {
  Image gray = pattern_image(2, 2, 1);
  Image rgb = pattern_image(2, 3, 3);
  Image grid = cae::data::make_grid({{gray, rgb}}, 1, 9);
  EXPECT_EQ(grid.c, 3);
  EXPECT_EQ(grid.h, 2);
  EXPECT_EQ(grid.w, 2 + 1 + 3);
  for (int ch = 0; ch < 3; ++ch) {
    EXPECT_EQ(at(grid, 1, 1, ch), at(gray, 1, 1));
    EXPECT_EQ(at(grid, 1, 2, ch), 9);  // gap
    EXPECT_EQ(at(grid, 1, 5, ch), at(rgb, 1, 2, ch));
  }
}

TEST(Grid, RaggedRowsAndWidths) {
  // Column 0 is as wide as its widest image; row 1 has no second cell.
  Image narrow = pattern_image(3, 2, 1), wide = pattern_image(3, 4, 1),
        last = pattern_image(3, 1, 1);
  Image grid = cae::data::make_grid({{narrow, last}, {wide}}, 0, 255);
  EXPECT_EQ(grid.h, 6);
  EXPECT_EQ(grid.w, 4 + 1);
  EXPECT_EQ(at(grid, 0, 1), at(narrow, 0, 1));
  EXPECT_EQ(at(grid, 0, 2), 255);  // right of the narrow image
  EXPECT_EQ(at(grid, 2, 4), at(last, 2, 0));
  EXPECT_EQ(at(grid, 5, 3), at(wide, 2, 3));
  EXPECT_EQ(at(grid, 5, 4), 255);  // the missing cell
}

TEST(Grid, RejectsBadInput) {
  Image a = pattern_image(3, 3, 1), b = pattern_image(4, 3, 1);
  EXPECT_THAT(error_of([&] {
                cae::data::make_grid({{a}, {a, b}});
              }),
              HasSubstr("row 1, column 1 has height 4, expected 3"));
  EXPECT_THAT(error_of([&] { cae::data::make_grid({{}, {}}); }), HasSubstr("no images"));
  Image two = pattern_image(3, 3, 2);
  EXPECT_THAT(error_of([&] { cae::data::make_grid({{a, two}}); }), HasSubstr("c = 1 or 3"));
  EXPECT_THAT(error_of([&] { cae::data::make_grid({{a}}, -1); }), HasSubstr("gap -1"));
}

TEST(Grid, WritesAsPng) {
  const std::string path = cae::test::scratch_dir() + "/grid.png";
  Image grid = cae::data::make_grid({{pattern_image(5, 5, 1), pattern_image(5, 5, 3)}});
  cae::data::write_png(path, grid);
  Image back = cae::data::read_png(path);
  EXPECT_EQ(back.w, 12);
  EXPECT_EQ(back.pixels, grid.pixels);
}

}  // namespace
