// IDX reader/writer: round trips, gzip, and hostile files. Expected bytes are written out by hand
// here (big-endian header, row-major payload), not produced by the code under test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include "cae/error.h"
#include "data/idx.h"
#include "support.h"

namespace {

using cae::data::ImageSet;
using ::testing::HasSubstr;
using cae::test::error_of;
using Bytes = std::vector<std::uint8_t>;

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
}

// magic 00 00 08 <ndims>, the sizes, then payload_bytes bytes of i % 251.
Bytes idx_file(const std::vector<std::uint32_t>& dims, std::size_t payload_bytes,
               std::uint8_t type = 0x08) {
  Bytes out = {0, 0, type, std::uint8_t(dims.size())};
  for (std::uint32_t d : dims) put_u32(out, d);
  for (std::size_t i = 0; i < payload_bytes; ++i) out.push_back(std::uint8_t(i % 251));
  return out;
}

std::string write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  EXPECT_TRUE(out.good()) << path;
  return path;
}

Bytes read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// Writes bytes as one gzip member (mode "ab" appends another member).
std::string write_gzip(const std::string& path, const Bytes& bytes, const char* mode = "wb") {
  gzFile gz = gzopen(path.c_str(), mode);
  EXPECT_NE(gz, nullptr) << path;
  if (!bytes.empty()) {
    EXPECT_EQ(gzwrite(gz, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  }
  EXPECT_EQ(gzclose(gz), Z_OK);
  return path;
}


std::string images_error(const std::string& path) {
  return error_of([&] { cae::data::read_idx_images(path); });
}

TEST(Idx, ReadsHandMadeImageFile) {
  const std::string dir = cae::test::scratch_dir();
  // 2 images of 3×4: byte i of the payload is i % 251.
  const std::string path = write_raw(dir + "/images", idx_file({2, 3, 4}, 24));
  ImageSet set = cae::data::read_idx_images(path);
  EXPECT_EQ(set.n, 2);
  EXPECT_EQ(set.h, 3);
  EXPECT_EQ(set.w, 4);
  EXPECT_EQ(set.c, 1);
  ASSERT_EQ(set.pixels.size(), 24u);
  EXPECT_EQ(set.image_size(), 12u);
  // image 1, row 2, column 3 is payload byte 12 + 2·4 + 3 = 23.
  EXPECT_EQ(set.image(1)[2 * 4 + 3], 23);
  EXPECT_EQ(set.image(0)[0], 0);
}

TEST(Idx, ReadsFourDimensionalFile) {
  const std::string dir = cae::test::scratch_dir();
  const std::string path = write_raw(dir + "/rgb", idx_file({2, 2, 3, 3}, 36));
  ImageSet set = cae::data::read_idx_images(path);
  EXPECT_EQ(set.n, 2);
  EXPECT_EQ(set.h, 2);
  EXPECT_EQ(set.w, 3);
  EXPECT_EQ(set.c, 3);
  // image 1, row 1, column 2, channel 1: 18 + (1·3 + 2)·3 + 1 = 34.
  EXPECT_EQ(set.image(1)[(1 * 3 + 2) * 3 + 1], 34);
}

TEST(Idx, WriteProducesTheIdxLayout) {
  const std::string dir = cae::test::scratch_dir();
  ImageSet set;
  set.n = 3, set.h = 2, set.w = 5, set.c = 1;
  for (int i = 0; i < 30; ++i) set.pixels.push_back(std::uint8_t(7 * i));
  cae::data::write_idx_images(dir + "/out", set);
  const Bytes bytes = read_raw(dir + "/out");
  ASSERT_EQ(bytes.size(), 16u + 30u);
  const Bytes header = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 5};
  EXPECT_EQ(Bytes(bytes.begin(), bytes.begin() + 16), header);
  EXPECT_EQ(Bytes(bytes.begin() + 16, bytes.end()), set.pixels);

  ImageSet back = cae::data::read_idx_images(dir + "/out");
  EXPECT_EQ(back.n, 3);
  EXPECT_EQ(back.h, 2);
  EXPECT_EQ(back.w, 5);
  EXPECT_EQ(back.c, 1);
  EXPECT_EQ(back.pixels, set.pixels);
}

TEST(Idx, RoundTripWithChannelsWritesFourDims) {
  const std::string dir = cae::test::scratch_dir();
  ImageSet set;
  set.n = 2, set.h = 3, set.w = 1, set.c = 3;
  for (int i = 0; i < 18; ++i) set.pixels.push_back(std::uint8_t(255 - i));
  cae::data::write_idx_images(dir + "/rgb", set);
  const Bytes bytes = read_raw(dir + "/rgb");
  ASSERT_EQ(bytes.size(), 20u + 18u);
  const Bytes header = {0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 3};
  EXPECT_EQ(Bytes(bytes.begin(), bytes.begin() + 20), header);
  ImageSet back = cae::data::read_idx_images(dir + "/rgb");
  EXPECT_EQ(back.c, 3);
  EXPECT_EQ(back.pixels, set.pixels);
}

TEST(Idx, WriteOverwritesAndLeavesNoTemporary) {
  const std::string dir = cae::test::scratch_dir();
  ImageSet set;
  set.n = 1, set.h = 1, set.w = 2, set.pixels = {1, 2};
  cae::data::write_idx_images(dir + "/f", set);
  set.pixels = {9, 8};
  cae::data::write_idx_images(dir + "/f", set);
  EXPECT_EQ(cae::data::read_idx_images(dir + "/f").pixels, (Bytes{9, 8}));
  const auto files = std::distance(std::filesystem::directory_iterator(dir),
                                   std::filesystem::directory_iterator());
  EXPECT_EQ(files, 1);
}

TEST(Idx, WriteRejectsInconsistentSets) {
  const std::string dir = cae::test::scratch_dir();
  ImageSet set;
  set.n = 2, set.h = 2, set.w = 2, set.pixels = Bytes(7);
  EXPECT_THAT(error_of([&] { cae::data::write_idx_images(dir + "/bad", set); }),
              HasSubstr("needs 8 bytes of pixels, found 7"));
  set.n = 0, set.pixels.clear();
  EXPECT_THAT(error_of([&] { cae::data::write_idx_images(dir + "/bad", set); }),
              HasSubstr("expected every dimension > 0"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad"));
}

TEST(Idx, ReadsGzipDetectedByContentNotName) {
  const std::string dir = cae::test::scratch_dir();
  const Bytes file = idx_file({4, 5, 6}, 120);
  // A gzip file without .gz, and a raw file with .gz: the magic decides.
  ImageSet a = cae::data::read_idx_images(write_gzip(dir + "/images-idx3-ubyte", file));
  ImageSet b = cae::data::read_idx_images(write_raw(dir + "/raw.gz", file));
  EXPECT_EQ(a.n, 4);
  EXPECT_EQ(a.h, 5);
  EXPECT_EQ(a.w, 6);
  ASSERT_EQ(a.pixels.size(), 120u);
  EXPECT_EQ(a.pixels, Bytes(file.begin() + 16, file.end()));
  EXPECT_EQ(b.pixels, a.pixels);
}

TEST(Idx, ReadsLargerGzipAcrossBufferGrowth) {
  // Over 1 MiB of pixels, so the decompression buffer has to grow at least once.
  const std::string dir = cae::test::scratch_dir();
  const Bytes file = idx_file({1500, 28, 28}, 1500 * 784);
  ImageSet set = cae::data::read_idx_images(write_gzip(dir + "/big.gz", file));
  EXPECT_EQ(set.n, 1500);
  EXPECT_EQ(set.pixels, Bytes(file.begin() + 16, file.end()));
}

TEST(Idx, ReadsMultiMemberGzip) {
  const std::string dir = cae::test::scratch_dir();
  const Bytes file = idx_file({3, 2, 2}, 12);
  const std::string path = dir + "/two-members.gz";
  write_gzip(path, Bytes(file.begin(), file.begin() + 10));
  write_gzip(path, Bytes(file.begin() + 10, file.end()), "ab");
  ImageSet set = cae::data::read_idx_images(path);
  EXPECT_EQ(set.n, 3);
  EXPECT_EQ(set.pixels, Bytes(file.begin() + 16, file.end()));
}

TEST(Idx, ReadsLabelsRawAndGzip) {
  const std::string dir = cae::test::scratch_dir();
  const Bytes file = {0, 0, 8, 1, 0, 0, 0, 5, 3, 1, 4, 1, 5};
  EXPECT_EQ(cae::data::read_idx_labels(write_raw(dir + "/labels", file)), (Bytes{3, 1, 4, 1, 5}));
  EXPECT_EQ(cae::data::read_idx_labels(write_gzip(dir + "/labels.gz", file)),
            (Bytes{3, 1, 4, 1, 5}));
}

TEST(Idx, LabelsAndImagesRejectEachOther) {
  const std::string dir = cae::test::scratch_dir();
  const std::string labels = write_raw(dir + "/labels", {0, 0, 8, 1, 0, 0, 0, 1, 7});
  const std::string images = write_raw(dir + "/images", idx_file({1, 1, 1}, 1));
  EXPECT_THAT(images_error(labels), HasSubstr("IDX file has 1 dimensions (magic 0x00000801)"));
  EXPECT_THAT(error_of([&] { cae::data::read_idx_labels(images); }),
              HasSubstr("has 3 dimensions (magic 0x00000803), expected 1"));
}

TEST(Idx, TruncatedPayloadNamesFileClaimAndSize) {
  const std::string dir = cae::test::scratch_dir();
  const std::string path =
      write_raw(dir + "/train-images-idx3-ubyte", idx_file({10, 28, 28}, 1000));
  const std::string message = images_error(path);
  EXPECT_THAT(message, HasSubstr(path + ": truncated"));
  EXPECT_THAT(message, HasSubstr("header says 10×28×28 = 7840 bytes of pixels, file has 1000"));
}

TEST(Idx, TruncatedHeader) {
  const std::string dir = cae::test::scratch_dir();
  EXPECT_THAT(images_error(write_raw(dir + "/empty", {})),
              HasSubstr("truncated: an IDX header needs at least 4 bytes, file has 0"));
  // Magic for 3 dims, then only one of the three sizes.
  EXPECT_THAT(images_error(write_raw(dir + "/short", {0, 0, 8, 3, 0, 0, 0, 9})),
              HasSubstr("truncated: the IDX header needs 16 bytes, file has 8"));
  EXPECT_THAT(images_error(write_gzip(dir + "/short.gz", {0, 0, 8})),
              HasSubstr("decompressed data has 3"));
}

TEST(Idx, ForgedHugeCountIsRefusedWithoutTryingIt) {
  const std::string dir = cae::test::scratch_dir();
  // 2e9 images of 28×28 would be 1.5 TB; the file holds 100 bytes of pixels.
  const Bytes file = idx_file({2000000000u, 28, 28}, 100);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(
      images_error(write_raw(dir + "/forged", file)),
      HasSubstr("header says 2000000000×28×28 = 1568000000000 bytes of pixels, file has 100"));
  EXPECT_THAT(images_error(write_gzip(dir + "/forged.gz", file)),
              HasSubstr("= 1568000000000 bytes of pixels, decompressed data has 100"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(Idx, DimensionProductOverflowIsRefused) {
  const std::string dir = cae::test::scratch_dir();
  const std::uint32_t big = 0x7fffffffu;  // (2^31 - 1)^4 does not fit in 64 bits
  const std::string path = write_raw(dir + "/overflow", idx_file({big, big, big, big}, 8));
  EXPECT_THAT(images_error(path), HasSubstr("more than 2^64 bytes of pixels"));
  EXPECT_THAT(images_error(write_raw(dir + "/too-big", idx_file({0x80000000u, 1, 1}, 8))),
              HasSubstr("dimension 0 is 2147483648, expected at most 2147483647"));
}

TEST(Idx, BadMagicAndType) {
  const std::string dir = cae::test::scratch_dir();
  Bytes zip = {'P', 'K', 3, 4, 0, 0, 0, 0};
  EXPECT_THAT(images_error(write_raw(dir + "/zip", zip)),
              HasSubstr("not an IDX file: magic 0x504b0304, expected 0x00000803 or 0x00000804"));
  EXPECT_THAT(images_error(write_raw(dir + "/float", idx_file({1, 1, 1}, 4, 0x0D))),
              HasSubstr("IDX element type 0x0d (float32), expected 0x08 (unsigned byte)"));
}

TEST(Idx, TrailingBytesAreRejected) {
  const std::string dir = cae::test::scratch_dir();
  const Bytes file = idx_file({2, 2, 2}, 8 + 5);
  EXPECT_THAT(images_error(write_raw(dir + "/raw", file)),
              HasSubstr("5 trailing bytes: header says 2×2×2 = 8 bytes of pixels, file has 13"));
  EXPECT_THAT(
      images_error(write_gzip(dir + "/inside.gz", file)),
      HasSubstr(
          "5 trailing bytes: header says 2×2×2 = 8 bytes of pixels, decompressed data is longer"));
  // Garbage after a complete gzip stream (not another gzip member).
  const std::string path = write_gzip(dir + "/after.gz", idx_file({2, 2, 2}, 8));
  Bytes gz = read_raw(path);
  gz.push_back('x');
  EXPECT_THAT(images_error(write_raw(path, gz)),
              HasSubstr("trailing bytes after the end of the gzip stream (byte 0x78"));
}

TEST(Idx, ZeroDimensionIsRejected) {
  const std::string dir = cae::test::scratch_dir();
  EXPECT_THAT(images_error(write_raw(dir + "/zero", idx_file({5, 0, 28}, 0))),
              HasSubstr("dimension 1 is 0 (header says 5×0×28), expected every dimension > 0"));
  EXPECT_THAT(error_of([&] {
                cae::data::read_idx_labels(write_raw(dir + "/l", {0, 0, 8, 1, 0, 0, 0, 0}));
              }),
              HasSubstr("dimension 0 is 0"));
}

TEST(Idx, GzipCorruptionIsDetected) {
  const std::string dir = cae::test::scratch_dir();
  const std::string path = write_gzip(dir + "/good.gz", idx_file({4, 8, 8}, 256));
  const Bytes gz = read_raw(path);
  ASSERT_GT(gz.size(), 30u);

  // The gzip trailer is CRC-32 then length (RFC 1952); a wrong CRC must not pass silently.
  Bytes bad_crc = gz;
  bad_crc[gz.size() - 8] ^= 0xff;
  EXPECT_THAT(images_error(write_raw(dir + "/crc.gz", bad_crc)), HasSubstr("incorrect data check"));

  // Byte 10 starts the deflate data (no FNAME: gzopen writes a 10-byte header);
  // 0x07 = final block of reserved type 3.
  Bytes bad_block = gz;
  bad_block[10] = 0x07;
  EXPECT_THAT(images_error(write_raw(dir + "/block.gz", bad_block)),
              HasSubstr("corrupt gzip data after 0 decompressed bytes: invalid block type"));

  // Cut inside the compressed data, and cut just the 4-byte length of the trailer: both are
  // truncations even though the second one already yields every pixel.
  EXPECT_THAT(images_error(write_raw(dir + "/cut.gz", Bytes(gz.begin(), gz.begin() + 20))),
              HasSubstr("truncated gzip stream"));
  EXPECT_THAT(images_error(write_raw(dir + "/cut-trailer.gz", Bytes(gz.begin(), gz.end() - 4))),
              HasSubstr("truncated gzip stream"));
}

TEST(Idx, MissingFileAndDirectory) {
  const std::string dir = cae::test::scratch_dir();
  EXPECT_THAT(images_error(dir + "/nope"), HasSubstr(dir + "/nope: cannot open"));
  EXPECT_THAT(images_error(dir), HasSubstr("not a regular file"));
}

// The real data sets, when installed (scripts/setup-data.sh). Labels checked against the
// published order of the files (and Python's gzip module).
TEST(Idx, RealMnist) {
  const std::string dir = cae::test::mnist_dir();
  if (dir.empty()) GTEST_SKIP() << "MNIST not installed; run scripts/setup-data.sh";
  ImageSet train = cae::data::read_idx_images(dir + "/train-images-idx3-ubyte");
  EXPECT_EQ(train.n, 60000);
  EXPECT_EQ(train.h, 28);
  EXPECT_EQ(train.w, 28);
  EXPECT_EQ(train.c, 1);
  // Sum of the first training digit's pixels (a 5), computed with Python.
  EXPECT_EQ(std::accumulate(train.image(0), train.image(0) + 784, 0), 27525);
  const Bytes train_labels = cae::data::read_idx_labels(dir + "/train-labels-idx1-ubyte");
  ASSERT_EQ(train_labels.size(), 60000u);
  EXPECT_EQ(Bytes(train_labels.begin(), train_labels.begin() + 5), (Bytes{5, 0, 4, 1, 9}));
  ImageSet test = cae::data::read_idx_images(dir + "/t10k-images-idx3-ubyte");
  EXPECT_EQ(test.n, 10000);
  EXPECT_EQ(test.h, 28);
  EXPECT_EQ(test.w, 28);
  const Bytes test_labels = cae::data::read_idx_labels(dir + "/t10k-labels-idx1-ubyte");
  ASSERT_EQ(test_labels.size(), 10000u);
  EXPECT_EQ(Bytes(test_labels.begin(), test_labels.begin() + 5), (Bytes{7, 2, 1, 0, 4}));
}

TEST(Idx, RealFashionMnistGzip) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/train-labels-idx1-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (Debian package dataset-fashion-mnist)";
  ImageSet train = cae::data::read_idx_images(dir + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(train.n, 60000);
  EXPECT_EQ(train.h, 28);
  EXPECT_EQ(train.w, 28);
  EXPECT_EQ(train.pixels.size(), 47040000u);
  const Bytes train_labels = cae::data::read_idx_labels(dir + "/train-labels-idx1-ubyte.gz");
  ASSERT_EQ(train_labels.size(), 60000u);
  EXPECT_EQ(Bytes(train_labels.begin(), train_labels.begin() + 5), (Bytes{9, 0, 0, 3, 0}));
  EXPECT_EQ(cae::data::read_idx_images(dir + "/t10k-images-idx3-ubyte.gz").n, 10000);
  const Bytes test_labels = cae::data::read_idx_labels(dir + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(test_labels.size(), 10000u);
  EXPECT_EQ(Bytes(test_labels.begin(), test_labels.begin() + 5), (Bytes{9, 2, 1, 1, 6}));
}

}  // namespace
