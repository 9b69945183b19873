// Image files beyond 8-bit PNG (16-bit PNG, JPEG), folder datasets with a working size, bad
// images refused with a clear message, and the commands end to end on the shipped RGB set
// (tests/data/shapes, made by tests/data/make_shapes.py) and on Fashion-MNIST when installed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "data/dataset.h"
#include "data/folder.h"
#include "data/image_io.h"
#include "data/jpeg_io.h"
#include "data/png_io.h"
#include "environment.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

const std::string kShapes = std::string(CAE_SOURCE_DIR) + "/tests/data/shapes";


using Result = test::CommandResult;
const auto& run = test::run_cae;

data::Image pattern(int h, int w, int c) {
  data::Image img;
  img.h = h, img.w = w, img.c = c;
  for (int i = 0; i < h * w * c; ++i) img.pixels.push_back(std::uint8_t((i * 37 + 11) % 256));
  return img;
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// A PNG of only a signature and an IHDR chunk (valid CRC) with the given fields.
std::vector<std::uint8_t> png_header(std::uint32_t w, std::uint32_t h, int depth, int color) {
  std::vector<std::uint8_t> b = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13};
  std::vector<std::uint8_t> chunk = {'I', 'H', 'D', 'R'};
  for (std::uint32_t v : {w, h})
    for (int s = 24; s >= 0; s -= 8) chunk.push_back(std::uint8_t(v >> s));
  chunk.insert(chunk.end(), {std::uint8_t(depth), std::uint8_t(color), 0, 0, 0});
  const std::uint32_t crc = std::uint32_t(::crc32(0, chunk.data(), uInt(chunk.size())));
  b.insert(b.end(), chunk.begin(), chunk.end());
  for (int s = 24; s >= 0; s -= 8) b.push_back(std::uint8_t(crc >> s));
  return b;
}

}  // namespace

TEST(Images, Png16RoundTripsAndRoundsTo8Bits) {
  const std::string dir = test::scratch_dir();
  data::Image16 img;
  img.h = 1, img.w = 5, img.c = 1;
  // 257·v is 8-bit v exactly; 25828 = 257·100 + 128 is 100.498 in 8-bit units.
  img.pixels = {0, 65535, 32896, 25828, 25829};
  data::write_png16(dir + "/g16.png", img);
  const data::Image16 back = data::read_png16(dir + "/g16.png");
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_EQ(back.c, 1);
  const data::Image eight = data::read_image(dir + "/g16.png");
  EXPECT_EQ(eight.pixels, (std::vector<std::uint8_t>{0, 255, 128, 100, 101}));

  data::Image16 rgb;
  rgb.h = 2, rgb.w = 3, rgb.c = 3;
  for (int i = 0; i < 18; ++i) rgb.pixels.push_back(std::uint16_t(i * 3641));
  data::write_png16(dir + "/rgb16.png", rgb);
  EXPECT_EQ(data::read_png16(dir + "/rgb16.png").pixels, rgb.pixels);
}

TEST(Images, EightBitPngsWidenExactly) {
  const std::string dir = test::scratch_dir();
  const data::Image img = pattern(3, 4, 3);
  data::write_png(dir + "/p.png", img);
  const data::Image16 wide = data::read_png16(dir + "/p.png");
  ASSERT_EQ(wide.pixels.size(), img.pixels.size());
  for (std::size_t i = 0; i < img.pixels.size(); ++i)
    EXPECT_EQ(wide.pixels[i], img.pixels[i] * 257) << i;
  EXPECT_EQ(data::read_image(dir + "/p.png").pixels, img.pixels);
}

TEST(Images, JpegRoundTripIsClose) {
  const std::string dir = test::scratch_dir();
  data::Image flat;
  flat.h = 16, flat.w = 24, flat.c = 3;
  for (int i = 0; i < 16 * 24; ++i) flat.pixels.insert(flat.pixels.end(), {200, 40, 90});
  data::write_jpeg(dir + "/flat.jpg", flat, 100);
  const data::Image back = data::read_image(dir + "/flat.jpg");
  ASSERT_EQ(back.h, 16);
  ASSERT_EQ(back.w, 24);
  ASSERT_EQ(back.c, 3);
  for (std::size_t i = 0; i < back.pixels.size(); ++i)
    ASSERT_NEAR(back.pixels[i], flat.pixels[i], 3) << i;  // YCbCr rounding only
  data::Image gray = pattern(8, 8, 1);
  std::fill(gray.pixels.begin(), gray.pixels.end(), 77);
  data::write_jpeg(dir + "/gray.jpg", gray, 95);
  const data::Image g = data::read_jpeg(dir + "/gray.jpg");
  EXPECT_EQ(g.c, 1);
  for (auto v : g.pixels) EXPECT_NEAR(v, 77, 1);
}

TEST(Images, BadImagesAreRefusedWithTheReason) {
  const std::string dir = test::scratch_dir();
  using test::error_of;
  data::write_png(dir + "/whole.png", pattern(16, 16, 3));
  auto bytes = read_file(dir + "/whole.png");
  write_bytes(dir + "/half.png", {bytes.begin(), bytes.begin() + bytes.size() / 2});
  EXPECT_THAT(error_of([&] { data::read_image(dir + "/half.png"); }),
              HasSubstr(dir + "/half.png: invalid PNG: truncated"));

  data::write_jpeg(dir + "/whole.jpg", pattern(16, 16, 3), 90);
  bytes = read_file(dir + "/whole.jpg");
  write_bytes(dir + "/half.jpg", {bytes.begin(), bytes.begin() + bytes.size() / 2});
  EXPECT_THAT(error_of([&] { data::read_image(dir + "/half.jpg"); }),
              HasSubstr(dir + "/half.jpg: invalid JPEG"));

  write_bytes(dir + "/zero.png", png_header(0, 5, 8, 2));
  EXPECT_THAT(error_of([&] { data::read_image(dir + "/zero.png"); }), HasSubstr("width is zero"));
  write_bytes(dir + "/depth.png", png_header(4, 4, 4, 2));  // RGB has no 4-bit form
  EXPECT_THAT(error_of([&] { data::read_image(dir + "/depth.png"); }),
              HasSubstr("Invalid color type/bit depth combination"));
  write_bytes(dir + "/text.png", {'h', 'e', 'l', 'l', 'o'});
  EXPECT_THAT(error_of([&] { data::read_image(dir + "/text.png"); }),
              HasSubstr("not a PNG or JPEG file"));
  write_bytes(dir + "/empty.jpg", {});
  EXPECT_THAT(error_of([&] { data::read_image(dir + "/empty.jpg"); }), HasSubstr("empty"));
  EXPECT_THAT(error_of([&] { data::write_jpeg(dir + "/bad.jpg", pattern(2, 2, 2)); }),
              HasSubstr("c = 1 or 3"));
}

TEST(Images, FitCropsTheCentreAndResizesFlatImagesFlat) {
  data::Image img;
  img.h = 4, img.w = 5, img.c = 1;
  for (int i = 0; i < 20; ++i) img.pixels.push_back(std::uint8_t(i));
  const data::Image crop = data::fit_image(img, 2, 3, data::Fit::crop, "x");
  // Rows 1..2, columns 1..3 of the 4×5 ramp.
  EXPECT_EQ(crop.pixels, (std::vector<std::uint8_t>{6, 7, 8, 11, 12, 13}));
  EXPECT_THAT(test::error_of([&] { data::fit_image(img, 6, 3, data::Fit::crop, "a.png"); }),
              HasSubstr("a.png: the image is 4x5, smaller than the working size 6x3"));
  data::Image flat = pattern(10, 14, 3);
  for (std::size_t i = 0; i < flat.pixels.size(); ++i) flat.pixels[i] = std::uint8_t(50 + i % 3);
  for (auto [h, w] : {std::pair{5, 7}, std::pair{20, 9}}) {
    const data::Image r = data::fit_image(flat, h, w, data::Fit::resize, "x");
    ASSERT_EQ(r.pixels.size(), std::size_t(h * w * 3));
    for (std::size_t i = 0; i < r.pixels.size(); ++i) ASSERT_EQ(r.pixels[i], 50 + i % 3);
  }
}

TEST(Images, ShippedFolderLoadsAsRgbWithATenthHeldOut) {
  const data::Dataset ds = data::load_dataset(kShapes, "");
  EXPECT_EQ(ds.train.n, 36);
  EXPECT_EQ(ds.test.n, 4);  // shape09, 19, 29, 39
  EXPECT_EQ(ds.train.c, 3);
  EXPECT_EQ(ds.train.h, 32);
  EXPECT_EQ(ds.test.w, 32);
  // shape07 is the one gray PNG: its channels come out equal.
  const data::Image gray = data::read_image(kShapes + "/shape07.png");
  ASSERT_EQ(gray.c, 1);
  const std::uint8_t* seventh = ds.train.image(7);
  for (int p = 0; p < 32 * 32; ++p) {
    ASSERT_EQ(seventh[3 * p], gray.pixels[p]);
    ASSERT_EQ(seventh[3 * p + 2], gray.pixels[p]);
  }
  data::FolderOptions small;
  small.h = 20, small.w = 24, small.fit = data::Fit::crop;
  const data::Dataset cropped = data::load_dataset(kShapes, "", small);
  EXPECT_EQ(cropped.train.h, 20);
  EXPECT_EQ(cropped.train.w, 24);
  // The crop of image 0 is its centre: row 6, column 4 onwards.
  const data::Image first = data::read_image(kShapes + "/shape00.png");
  EXPECT_EQ(cropped.train.image(0)[0], first.pixels[(6 * 32 + 4) * 3]);
}

TEST(Images, FolderSplitsAndSizeMismatches) {
  const std::string dir = test::scratch_dir();
  fs::create_directories(dir + "/split/train");
  fs::create_directories(dir + "/split/test");
  for (int i = 0; i < 3; ++i)
    data::write_png(dir + "/split/train/" + std::to_string(i) + ".png", pattern(6, 7, 1));
  data::write_jpeg(dir + "/split/test/t.JPG", pattern(6, 7, 1));
  const data::Dataset ds = data::load_dataset(dir + "/split", "");
  EXPECT_EQ(ds.train.n, 3);
  EXPECT_EQ(ds.test.n, 1);
  EXPECT_EQ(ds.train.c, 1);

  fs::create_directories(dir + "/mixed");
  data::write_png(dir + "/mixed/a.png", pattern(6, 7, 3));
  data::write_png(dir + "/mixed/b.png", pattern(8, 7, 3));
  EXPECT_THAT(test::error_of([&] { data::load_dataset(dir + "/mixed", ""); }),
              HasSubstr("a.png is 6x7 but " + dir + "/mixed/b.png is 8x7; give a working size"));
  data::FolderOptions size;
  size.h = size.w = 4;
  EXPECT_EQ(data::load_dataset(dir + "/mixed", "", size).train.h, 4);
  fs::create_directories(dir + "/one");
  data::write_png(dir + "/one/a.png", pattern(6, 7, 3));
  EXPECT_THAT(test::error_of([&] { data::load_dataset(dir + "/one", ""); }),
              HasSubstr("needs at least two images"));
}

TEST(Images, RgbFolderEndToEnd) {
  const std::string dir = test::scratch_dir();
  Result t = run("train --dataset " + kShapes + " --epochs 1 --batch 6 --threads 2 --masks 1 " +
                 "--out " + dir + "/run");
  ASSERT_EQ(t.status, 0) << t.output;
  Result info = run("info " + dir + "/run/model.cae");
  EXPECT_THAT(info.output, HasSubstr("input: 32x32x3"));
  EXPECT_THAT(info.output, HasSubstr("corruption: gaussian sigma=0.5 + masks count=1 min=4"));

  Result e = run("eval -m " + dir + "/run/model.cae --dataset " + kShapes + " --threads 2 " +
                 "--tune 4 --json " + dir + "/eval.json --csv " + dir + "/eval.csv");
  ASSERT_EQ(e.status, 0) << e.output;
  // Masks are spatial damage: the inpainters join the denoisers, scored inside the damage too.
  for (const char* method : {"noisy", "cae", "median (k=", "gaussian (sigma=", "nlm (h=",
                             "telea (r=", "navier-stokes (r=", "PSNR damage"})
    EXPECT_THAT(e.output, HasSubstr(method));
  const auto json = nlohmann::json::parse(std::ifstream(dir + "/eval.json"));
  EXPECT_EQ(json["images"], 4);
  EXPECT_EQ(json["methods"].size(), 7u);
  EXPECT_EQ(json["corruption"], "gaussian sigma=0.5 + masks count=1 min=4 max=8 value=0");
  std::ifstream csv(dir + "/eval.csv");
  int rows = 0;
  for (std::string line; std::getline(csv, line);) rows += !line.empty();
  EXPECT_EQ(rows, 1 + 4 * 7);

  // A picture larger than the model's 32×32 comes back whole, in tiles.
  data::Image big = pattern(48, 70, 3);
  data::write_jpeg(dir + "/big.jpg", big, 90);
  Result d = run("denoise -m " + dir + "/run/model.cae " + dir + "/big.jpg -o " + dir + "/out");
  ASSERT_EQ(d.status, 0) << d.output;
  const data::Image back = data::read_image(dir + "/out/big.png");
  EXPECT_EQ(back.h, 48);
  EXPECT_EQ(back.w, 70);
  EXPECT_EQ(back.c, 3);
  data::write_png(dir + "/gray.png", pattern(32, 32, 1));
  // A gray photo goes through the colour model as gray in every channel, and comes back gray.
  Result grey = run("denoise -m " + dir + "/run/model.cae " + dir + "/gray.png -o " + dir + "/o");
  ASSERT_EQ(grey.status, 0) << grey.output;
  EXPECT_EQ(data::read_image(dir + "/o/gray.png").c, 1);

  Result s = run("show -m " + dir + "/run/model.cae --dataset " + kShapes + " --count 4 -o " + dir +
                 "/fig.png --latent " + dir + "/latent.png --latent-count 2");
  ASSERT_EQ(s.status, 0) << s.output;
  const data::Image latent = data::read_png(dir + "/latent.png");
  EXPECT_EQ(latent.h, 2 * 96 + 3);  // two rows of 32·3 pixels, one gap of 3
  Result p = run("plot " + dir + "/run -o " + dir + "/loss.png");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_GT(data::read_png(dir + "/loss.png").w, 100);
}

TEST(Images, FashionMnistEndToEnd) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed";
  const std::string dir = test::scratch_dir();
  Result t =
      run("train --dataset fashion-mnist --epochs 1 --limit 400 --test-limit 50 "
          "--batch 50 --threads 2 --out " +
          dir + "/run");
  ASSERT_EQ(t.status, 0) << t.output;
  Result e = run("eval -m " + dir +
                 "/run/model.cae --dataset fashion-mnist --limit 50 --tune 10 "
                 "--threads 2 --speckle 0.3");
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_THAT(e.output,
              HasSubstr("50 images, corruption 'gaussian sigma=0.5 + speckle sigma=0.3'"));
}

// scripts/setup-data.sh installs the photos (test.sh runs it); each file of the split is listed
// with a free licence, and the set loads as one RGB dataset at a working size.
TEST(Images, PhotosDatasetIsTheInstalledSplitWithItsLicences) {
  const std::string dir = cae::data_dir_from_environment();  // as the cae program finds it
  const fs::path photos = fs::path(dir) / "photos";
  if (!fs::exists(photos / "LICENSES.md"))
    GTEST_SKIP() << "no photos in " << photos << " (scripts/setup-data.sh installs them)";
  std::ifstream in(photos / "LICENSES.md");
  const std::string licences((std::istreambuf_iterator<char>(in)), {});
  std::map<std::string, int> count;
  for (const char* split : {"train", "val", "test"})
    for (const std::string& file : data::list_images((photos / split).string())) {
      const std::string name = (fs::path(split) / fs::path(file).filename()).string();
      EXPECT_THAT(licences, ::testing::ContainsRegex(
                                "\\| " + name +
                                " \\| (CC0|public domain|CC-BY-4\\.0|CC-BY-SA-[34]\\.0|GPL-2\\+)"));
      ++count[split];
    }
  // python3-skimage's 8 / 2 / 2 and 39 wallpapers split by name (scripts/setup-data.sh).
  EXPECT_EQ(count["train"], 29);
  EXPECT_EQ(count["val"], 7);
  EXPECT_EQ(count["test"], 15);
  for (const char* kept : {"train/astronaut.png", "val/coffee.png", "val/gravel.png",
                           "test/chelsea.png", "test/retina.jpg"})
    EXPECT_TRUE(fs::exists(photos / kept)) << kept;
  data::FolderOptions size;
  size.h = size.w = 32;
  const data::Dataset ds = data::load_dataset("photos", dir, size);
  EXPECT_EQ(ds.train.n, 29);
  EXPECT_EQ(ds.val.n, 7);
  EXPECT_EQ(ds.test.n, 15);
  EXPECT_EQ(ds.train.c, 3);
  EXPECT_EQ(ds.test.h, 32);
}

TEST(Images, PhotosDatasetMissingSaysHowToInstallIt) {
  const std::string dir = test::scratch_dir();
  try {
    data::load_dataset("photos", dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("scripts/setup-data.sh"));
    EXPECT_THAT(e.what(), HasSubstr(dir + "/photos"));
  }
}
