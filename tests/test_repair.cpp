// Repairing a user's own photo: the mask conventions against pixels written here, growing a mask
// against a scan of the disc, the repair's undamaged pixels bit for bit at every sample type,
// only the tiles that touch the mask run (counted against the tile grid), the repair equal to
// what cae eval scores, and `cae repair` on files and folders, equal to the embedding API bit
// for bit, with its bad inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cae/cae.h"
#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/jpeg_io.h"
#include "data/mask.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/compare.h"
#include "train/figures.h"
#include "train/photo_eval.h"
#include "train/repair.h"
#include "train/tiling.h"

using namespace cae;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// A small informed model (tiles of side×side); with fill, an mse net correcting Navier–Stokes.
nn::Model informed_model(int channels, int side = 16, bool fill = false) {
  nn::Model m(nn::parse_spec("conv 6 relu\nconv channels"), {channels + 1, side, side},
              fill ? nn::LossKind::mse : nn::LossKind::bce, true);
  m.init_glorot(11);
  if (fill) m.set_fill("navier-stokes r=3");
  data::Corruption c;
  c.gaussian_sigma = 0;
  c.masks = 1;
  m.meta().emplace_back("corruption", c.describe());
  return m;
}

nn::Model blind_model(int channels, int side = 16) {
  nn::Model m(nn::parse_spec("conv 6 relu\nconv channels"), {channels, side, side},
              nn::LossKind::bce);
  m.init_glorot(5);
  return m;
}

data::Image gray(int h, int w, std::uint8_t v) {
  data::Image img;
  img.h = h, img.w = w, img.c = 1;
  img.pixels.assign(std::size_t(h) * w, v);
  return img;
}

// A mask of h×w with a stroke: a filled disc and a diagonal line, fixed.
data::Mask stroke_mask(int h, int w) {
  data::Mask m;
  m.h = h, m.w = w;
  m.pixels.assign(std::size_t(h) * w, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int dy = y - h / 3, dx = x - w / 3;
      if (dy * dy + dx * dx <= 16 || std::abs(y * w / h - x) <= 1) m.pixels[std::size_t(y) * w + x] = 1;
    }
  return m;
}

std::vector<float> as_floats(const data::Mask& m) {
  return std::vector<float>(m.pixels.begin(), m.pixels.end());
}

}  // namespace

// ---- Masks ----

TEST(Mask, GrayAndColourPngsMarkEveryNonZeroPixel) {
  const std::string dir = test::scratch_dir();
  data::Image g = gray(5, 7, 0);
  g.pixels[3] = 1;   // the faintest non-zero
  g.pixels[20] = 255;
  data::write_png(dir + "/g.png", g);
  const data::Mask mg = data::read_mask(dir + "/g.png", {});
  ASSERT_EQ(mg.w, 7);
  ASSERT_EQ(mg.h, 5);
  for (std::size_t p = 0; p < mg.pixels.size(); ++p) EXPECT_EQ(mg.pixels[p], p == 3 || p == 20) << p;

  data::Image rgb;
  rgb.h = 4, rgb.w = 4, rgb.c = 3;
  rgb.pixels.assign(48, 0);
  rgb.pixels[5 * 3 + 2] = 9;  // pixel 5, blue only
  data::write_png(dir + "/c.png", rgb);
  const data::Mask mc = data::read_mask(dir + "/c.png", {});
  EXPECT_EQ(mc.damaged(), 1u);
  EXPECT_EQ(mc.pixels[5], 1);

  data::Image16 wide;
  wide.h = 3, wide.w = 3, wide.c = 1;
  wide.pixels.assign(9, 0);
  wide.pixels[4] = 1;  // 1/65535: still non-zero
  data::write_png16(dir + "/w.png", wide);
  const data::Mask mw = data::read_mask(dir + "/w.png", {});
  EXPECT_EQ(mw.damaged(), 1u);
  EXPECT_EQ(mw.pixels[4], 1);
}

TEST(Mask, AnAlphaChannelDecidesUnlessItIsOpaqueEverywhere) {
  const std::string dir = test::scratch_dir();
  data::Image rgba;
  rgba.h = 3, rgba.w = 4, rgba.c = 4;
  rgba.pixels.assign(48, 255);  // white, opaque
  for (int p = 0; p < 12; ++p) rgba.pixels[p * 4 + 3] = p == 2 || p == 7 ? 200 : 0;
  data::write_png(dir + "/a.png", rgba);
  const data::Mask ma = data::read_mask(dir + "/a.png", {});
  for (int p = 0; p < 12; ++p) EXPECT_EQ(ma.pixels[p], p == 2 || p == 7) << p;

  // Opaque everywhere: the alpha says nothing, the colour decides (black = keep).
  for (int p = 0; p < 12; ++p) {
    rgba.pixels[p * 4 + 3] = 255;
    for (int k = 0; k < 3; ++k) rgba.pixels[p * 4 + k] = p == 9 ? 255 : 0;
  }
  data::write_png(dir + "/o.png", rgba);
  const data::Mask mo = data::read_mask(dir + "/o.png", {});
  for (int p = 0; p < 12; ++p) EXPECT_EQ(mo.pixels[p], p == 9) << p;

  data::Image ga;
  ga.h = 2, ga.w = 3, ga.c = 2;
  ga.pixels = {0, 0, 0, 255, 50, 0, 0, 0, 0, 0, 0, 1};  // (gray, alpha) per pixel
  data::write_png(dir + "/ga.png", ga);
  const data::Mask mga = data::read_mask(dir + "/ga.png", {});
  EXPECT_EQ(mga.pixels, (std::vector<std::uint8_t>{0, 1, 0, 0, 0, 1}));
}

TEST(Mask, JpegMasksCountFromHalfSoCompressionRingingIsNotDamage) {
  const std::string dir = test::scratch_dir();
  data::Image img = gray(32, 32, 0);
  for (int y = 8; y < 24; ++y)
    for (int x = 12; x < 20; ++x) img.pixels[y * 32 + x] = 255;
  data::write_jpeg(dir + "/m.jpg", img, 60);
  const data::Image back = data::read_jpeg(dir + "/m.jpg");
  const data::Mask m = data::read_mask(dir + "/m.jpg", {});
  bool ringing = false;
  for (std::size_t p = 0; p < m.pixels.size(); ++p) {
    EXPECT_EQ(m.pixels[p], back.pixels[p] >= 128) << p;
    ringing = ringing || (back.pixels[p] > 0 && back.pixels[p] < 128);
  }
  EXPECT_TRUE(ringing) << "quality 60 should leave small values near the edges";
  EXPECT_EQ(m.damaged(), 16u * 8u);
}

TEST(Mask, ColourMatchesWithinTheToleranceOnEveryChannel) {
  data::Image16 photo;
  photo.h = 1, photo.w = 5, photo.c = 3;
  const int px[5][3] = {{255, 0, 0}, {250, 5, 0}, {249, 0, 0}, {255, 0, 6}, {0, 0, 0}};
  for (int p = 0; p < 5; ++p)
    for (int k = 0; k < 3; ++k) photo.pixels.push_back(std::uint16_t(257 * px[p][k]));
  const data::Mask exact = data::mask_from_color(photo, data::parse_mask_color("255,0,0"));
  EXPECT_EQ(exact.pixels, (std::vector<std::uint8_t>{1, 0, 0, 0, 0}));
  const data::Mask near = data::mask_from_color(photo, data::parse_mask_color("255,0,0:5"));
  EXPECT_EQ(near.pixels, (std::vector<std::uint8_t>{1, 1, 0, 0, 0}));

  data::Image16 g;  // gray v is the colour (v, v, v)
  g.h = 1, g.w = 3, g.c = 1, g.pixels = {257 * 255, 257 * 254, 0};
  EXPECT_EQ(data::mask_from_color(g, data::parse_mask_color("255,255,255")).pixels,
            (std::vector<std::uint8_t>{1, 0, 0}));
  EXPECT_EQ(data::mask_from_color(g, data::parse_mask_color("255,0,0:10")).damaged(), 0u);

  for (const std::string bad : {"", "255", "255,0", "256,0,0", "-1,0,0", "1,2,3:", "1,2,3:300",
                                "1,2,3,4", "a,b,c", "1, 2, 3"})
    EXPECT_THAT(test::error_of([&] { data::parse_mask_color(bad); }),
                HasSubstr("expected R,G,B or R,G,B:TOLERANCE"))
        << bad;
}

TEST(Mask, GrowingTakesEveryPixelWithinTheRadius) {
  for (int radius : {0, 1, 2, 5}) {
    data::Mask m;
    m.h = 23, m.w = 31;
    m.pixels.assign(std::size_t(m.h) * m.w, 0);
    const std::vector<float> r = test::random_floats(m.pixels.size(), radius + 3, 0.f, 1.f);
    for (std::size_t p = 0; p < r.size(); ++p) m.pixels[p] = r[p] > 0.985f;
    m.pixels[0] = 1;  // at the corner: the disc is cut by the edge, not wrapped
    const data::Mask before = m;
    data::grow_mask(m, radius);
    for (int y = 0; y < m.h; ++y)
      for (int x = 0; x < m.w; ++x) {
        bool near = false;
        for (int v = 0; v < m.h && !near; ++v)
          for (int u = 0; u < m.w && !near; ++u)
            near = before.pixels[v * m.w + u] && (v - y) * (v - y) + (u - x) * (u - x) <= radius * radius;
        EXPECT_EQ(m.pixels[y * m.w + x], near) << "radius " << radius << " at " << y << "," << x;
      }
  }
}

// ---- The repair ----

TEST(Repair, UndamagedSamplesAndAlphaComeBackBitForBit) {
  const nn::Model model = informed_model(3);
  const int h = 37, w = 45;
  const data::Mask mask = stroke_mask(h, w);
  const data::Image rgb = test::textured_photo(h, w, 3, 4);
  train::RepairOptions options;
  // RGBA bytes: alpha and every undamaged sample unchanged, the damage changed.
  std::vector<std::uint8_t> rgba;
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p) {
    for (int k = 0; k < 3; ++k) rgba.push_back(rgb.pixels[p * 3 + k]);
    rgba.push_back(std::uint8_t(p * 7));
  }
  train::RepairReport report;
  const auto out8 = train::repair_samples(model, {rgba, h, w, 4}, mask.pixels, options, &report);
  ASSERT_EQ(out8.size(), rgba.size());
  EXPECT_EQ(report.damaged, mask.damaged());
  std::size_t changed = 0;
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p) {
    EXPECT_EQ(out8[p * 4 + 3], rgba[p * 4 + 3]);
    for (int k = 0; k < 3; ++k) {
      if (!mask.pixels[p]) {
        EXPECT_EQ(out8[p * 4 + k], rgba[p * 4 + k]);
      }
      changed += out8[p * 4 + k] != rgba[p * 4 + k];
    }
  }
  EXPECT_GT(changed, mask.damaged());  // the net's output is not the input

  // The damaged pixels are the float repair rounded, as the CLI writes them.
  std::vector<float> planes(3 * std::size_t(h) * w);
  train::from_image(rgb, planes.data());
  const std::vector<float> m = as_floats(mask);
  const std::vector<float> floats =
      train::repair_planes(model, planes.data(), {3, h, w}, m.data(), options);
  const data::Image rounded = train::to_image(floats.data(), {3, h, w});
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(out8[p * 4 + k], rounded.pixels[p * 3 + k]);

  // 16-bit samples: undamaged exact, damaged the repair of v / 65535.
  std::vector<std::uint16_t> wide(rgb.pixels.size());
  for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = std::uint16_t(rgb.pixels[i] * 257 + i % 200);
  const auto out16 = train::repair_samples(model, {wide, h, w, 3}, mask.pixels, options);
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p)
    for (int k = 0; k < 3; ++k)
      if (!mask.pixels[p]) {
        EXPECT_EQ(out16[p * 3 + k], wide[p * 3 + k]);
      } else {
        EXPECT_NEAR(out16[p * 3 + k], rounded.pixels[p * 3 + k] * 257.0, 257.0 * 3);
      }

  // Floats: undamaged exact (not rounded through bytes).
  std::vector<float> fl(rgb.pixels.size());
  for (std::size_t i = 0; i < fl.size(); ++i) fl[i] = rgb.pixels[i] / 255.f + 1e-4f * (i % 3);
  const auto outf = train::repair_samples(model, {fl, h, w, 3}, mask.pixels, options);
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p)
    for (int k = 0; k < 3; ++k)
      if (!mask.pixels[p]) {
        EXPECT_EQ(outf[p * 3 + k], fl[p * 3 + k]);
      }
}

TEST(Repair, AGrayPhotoIsRepairedByAColourModelAsItsMean) {
  const nn::Model model = informed_model(3);
  const int h = 20, w = 26;
  const data::Mask mask = stroke_mask(h, w);
  const data::Image g = test::textured_photo(h, w, 1, 2);
  const auto out = train::repair_samples(model, {g.pixels, h, w, 1}, mask.pixels, {});
  std::vector<float> planes(3 * std::size_t(h) * w);
  for (int k = 0; k < 3; ++k)
    for (std::size_t p = 0; p < std::size_t(h) * w; ++p)
      planes[k * h * w + p] = data::byte_to_float(g.pixels[p]);
  const std::vector<float> m = as_floats(mask);
  const std::vector<float> rgb = train::repair_planes(model, planes.data(), {3, h, w}, m.data(), {});
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p) {
    const float mean = (rgb[p] + rgb[h * w + p] + rgb[2 * h * w + p]) / 3.f;
    EXPECT_EQ(out[p], mask.pixels[p] ? std::uint8_t(std::lround(std::clamp(mean, 0.f, 1.f) * 255))
                                     : g.pixels[p]);
  }
  // A colour photo for a gray model is refused, as is a blind model.
  const data::Image c = test::textured_photo(h, w, 3, 2);
  EXPECT_THAT(test::error_of([&] {
                train::repair_samples(informed_model(1), {c.pixels, h, w, 3}, mask.pixels, {});
              }),
              HasSubstr("a colour photo, the model repairs gray images"));
  EXPECT_THAT(test::error_of([&] {
                train::repair_samples(blind_model(3), {c.pixels, h, w, 3}, mask.pixels, {});
              }),
              HasSubstr("the model is blind"));
  EXPECT_THAT(test::error_of([&] {
                train::repair_samples(model, {c.pixels, h, w, 3},
                                      std::span(mask.pixels).first(10), {});
              }),
              HasSubstr("the mask has 10 values"));
}

TEST(Repair, OnlyTheTilesThatTouchTheMaskRun) {
  const nn::Model model = informed_model(3, 16);
  const int h = 150, w = 211;
  data::Mask mask;
  mask.h = h, mask.w = w;
  mask.pixels.assign(std::size_t(h) * w, 0);
  for (int x = 30; x < 90; ++x) mask.pixels[std::size_t(100) * w + x] = 1;  // one short scratch
  mask.pixels[std::size_t(5) * w + 200] = 1;                                 // and a dot
  const data::Image photo = test::textured_photo(h, w, 3, 8);
  train::RepairReport report;
  const auto out = train::repair_samples(model, {photo.pixels, h, w, 3}, mask.pixels, {}, &report);
  // The tiles of the grid (tile 16, overlap 4) that hold a damaged pixel, counted here.
  const std::vector<int> ys = train::tile_starts(h, 16, 4), xs = train::tile_starts(w, 16, 4);
  int touching = 0;
  for (int y0 : ys)
    for (int x0 : xs) {
      bool hit = false;
      for (int y = y0; y < y0 + 16; ++y)
        for (int x = x0; x < x0 + 16; ++x) hit = hit || mask.pixels[std::size_t(y) * w + x];
      touching += hit;
    }
  EXPECT_EQ(report.tiles.tiles, int(ys.size() * xs.size()));
  EXPECT_EQ(report.tiles.tiles_run, touching);
  EXPECT_LT(touching, report.tiles.tiles / 10);

  // No damage at all: the photo back as it is, nothing run.
  const std::vector<std::uint8_t> none(std::size_t(h) * w, 0);
  train::RepairReport idle;
  EXPECT_EQ(train::repair_samples(model, {photo.pixels, h, w, 3}, none, {}, &idle), photo.pixels);
  EXPECT_EQ(idle.damaged, 0u);
  EXPECT_EQ(idle.tiles.tiles_run, 0);
}

// The scores cae eval prints are those of the repair users get: a photo damaged as eval damages
// its first test photo, repaired through repair_planes with that damage's mask, scores exactly
// as eval's row, plain and adapted, with and without a fill.
TEST(Repair, EqualsWhatEvalScoresForTheSameDamage) {
  const data::Image photo = test::textured_photo(40, 52, 3, 6);
  data::Corruption damage;
  damage.gaussian_sigma = 0;
  damage.crosshair = true;
  damage.line_thickness = 3;
  for (bool fill : {false, true}) {
    const nn::Model model = informed_model(3, 16, fill);
    train::AdaptOptions adapt;
    adapt.steps = 2;
    adapt.batch = 4;
    adapt.training = train::model_corruption(model);
    train::CompareOptions compare;
    compare.baselines = false;
    const train::Comparison c = train::compare_photos({{"cae", &model}}, {photo}, {"p"}, {}, damage,
                                                      9, compare, {}, &adapt);
    const train::DamagedPhoto p = train::damage_photo(photo, damage, 9, 0, 0);
    train::RepairOptions options;
    const std::vector<float> plain =
        train::repair_planes(model, p.damaged.data(), p.dims, p.mask.data(), options);
    options.adapt = adapt;
    const std::vector<float> adapted =
        train::repair_planes(model, p.damaged.data(), p.dims, p.mask.data(), options);
    const train::Scores s = train::score_image(plain.data(), p.clean.data(), p.mask.data(), p.dims);
    const train::Scores a =
        train::score_image(adapted.data(), p.clean.data(), p.mask.data(), p.dims);
    ASSERT_EQ(c.methods.size(), 3u);
    EXPECT_EQ(c.methods[1].name, "cae");
    EXPECT_EQ(s.psnr_region, c.methods[1].per_image[0].psnr_region) << fill;
    EXPECT_EQ(s.mse, c.methods[1].per_image[0].mse) << fill;
    EXPECT_EQ(c.methods[2].name, "cae adapted");
    EXPECT_EQ(a.psnr_region, c.methods[2].per_image[0].psnr_region) << fill;
    EXPECT_NE(a.mse, s.mse) << "the adaptation changed nothing";
  }
}

// ---- cae repair ----

namespace {

struct Files {
  std::string dir, model, blind;
};

Files write_files() {
  Files f;
  f.dir = test::scratch_dir();
  f.model = f.dir + "/inpaint.cae";
  f.blind = f.dir + "/blind.cae";
  io::write_model_file(f.model, informed_model(3).to_file());
  io::write_model_file(f.blind, blind_model(3).to_file());
  return f;
}

data::Image mask_image(const data::Mask& m) {
  data::Image img = gray(m.h, m.w, 0);
  for (std::size_t p = 0; p < m.pixels.size(); ++p) img.pixels[p] = m.pixels[p] ? 255 : 0;
  return img;
}

}  // namespace

TEST(RepairCli, WritesTheSameBitsAsTheApiAndKeepsDepthAndChannels) {
  const Files f = write_files();
  const int h = 33, w = 47;
  const data::Mask mask = stroke_mask(h, w);
  data::write_png(f.dir + "/mask.png", mask_image(mask));
  const data::Image photo = test::textured_photo(h, w, 3, 1);
  data::write_png(f.dir + "/photo.png", photo);

  const auto r = test::run_cae("repair " + f.dir + "/photo.png --mask " + f.dir +
                               "/mask.png -m " + f.model + " --threads 2 -o " + f.dir + "/out.png");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(std::to_string(mask.damaged()) + " damaged pixels"));
  const data::Image out = data::read_png(f.dir + "/out.png");
  const Autoencoder api = Autoencoder::load(f.model);
  EXPECT_TRUE(api.informed());
  RepairReport report;
  const std::vector<std::uint8_t> expected =
      api.repair(photo.pixels, h, w, 3, mask.pixels, {}, &report);
  EXPECT_EQ(out.pixels, expected);
  EXPECT_EQ(report.damaged_pixels, mask.damaged());
  EXPECT_THAT(r.output, HasSubstr(std::to_string(report.tiles_run) + " of " +
                                  std::to_string(report.tiles) + " tiles run"));
  EXPECT_THAT(test::error_of([&] { api.denoise(std::span<const float>(), 1); }),
              HasSubstr("the model is informed"));

  // 16-bit RGBA in, 16-bit RGBA out; the alpha and the undamaged samples as they were.
  data::Image16 wide;
  wide.h = h, wide.w = w, wide.c = 4;
  for (std::size_t p = 0; p < std::size_t(h) * w; ++p) {
    for (int k = 0; k < 3; ++k) wide.pixels.push_back(std::uint16_t(photo.pixels[p * 3 + k] * 257 + 3));
    wide.pixels.push_back(std::uint16_t(p * 11));
  }
  data::write_png16(f.dir + "/wide.png", wide);
  const auto r16 = test::run_cae("repair " + f.dir + "/wide.png --mask " + f.dir +
                                 "/mask.png -m " + f.model + " -o " + f.dir + "/wide-out.png");
  ASSERT_EQ(r16.status, 0) << r16.output;
  data::ReadOptions keep;
  keep.keep_alpha = true;
  const data::Image16 back = data::read_png16(f.dir + "/wide-out.png", keep);
  EXPECT_EQ(back.bits, 16);
  EXPECT_EQ(back.c, 4);
  EXPECT_EQ(back.pixels, api.repair(std::span<const std::uint16_t>(wide.pixels), h, w, 4,
                                    mask.pixels));

  // A gray JPEG with a colour model: an 8-bit gray PNG out.
  const data::Image g = test::textured_photo(h, w, 1, 3);
  data::write_jpeg(f.dir + "/gray.jpg", g, 90);
  const auto rg = test::run_cae("repair " + f.dir + "/gray.jpg --mask " + f.dir +
                                "/mask.png -m " + f.model + " -o " + f.dir + "/gray-out.png");
  ASSERT_EQ(rg.status, 0) << rg.output;
  const data::Image gout = data::read_png(f.dir + "/gray-out.png");
  EXPECT_EQ(gout.c, 1);
  EXPECT_EQ(gout.pixels, api.repair(data::read_jpeg(f.dir + "/gray.jpg").pixels, h, w, 1, mask.pixels));
}

TEST(RepairCli, MaskColourGrowAndFolders) {
  const Files f = write_files();
  const int h = 30, w = 40;
  // Damage drawn in the photo in pure red; grown by 1 it takes the neighbours too.
  data::Image photo = test::textured_photo(h, w, 3, 5);
  data::Mask drawn;
  drawn.h = h, drawn.w = w;
  drawn.pixels.assign(std::size_t(h) * w, 0);
  for (int x = 5; x < 35; ++x) {
    drawn.pixels[std::size_t(15) * w + x] = 1;
    photo.pixels[(std::size_t(15) * w + x) * 3 + 0] = 255;
    photo.pixels[(std::size_t(15) * w + x) * 3 + 1] = 0;
    photo.pixels[(std::size_t(15) * w + x) * 3 + 2] = 0;
  }
  data::write_png(f.dir + "/red.png", photo);
  data::Mask grown = drawn;
  data::grow_mask(grown, 1);
  const Autoencoder api = Autoencoder::load(f.model);
  const auto r = test::run_cae("repair " + f.dir + "/red.png --mask-color 255,0,0 --grow 1 -m " +
                               f.model + " -o " + f.dir + "/red-out.png");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(std::to_string(grown.damaged()) + " damaged pixels"));
  EXPECT_EQ(data::read_png(f.dir + "/red-out.png").pixels,
            api.repair(photo.pixels, h, w, 3, grown.pixels));

  // A folder of photos, one mask for all of them (the same watermark), into a folder.
  fs::create_directories(f.dir + "/in");
  fs::create_directories(f.dir + "/masks");
  const data::Mask mask = stroke_mask(h, w);
  for (int i = 0; i < 3; ++i)
    data::write_png(f.dir + "/in/p" + std::to_string(i) + ".png", test::textured_photo(h, w, 3, 20 + i));
  data::write_png(f.dir + "/mask.png", mask_image(mask));
  const auto all = test::run_cae("repair " + f.dir + "/in --mask " + f.dir + "/mask.png -m " +
                                 f.model + " -o " + f.dir + "/out");
  ASSERT_EQ(all.status, 0) << all.output;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "/p" + std::to_string(i) + ".png";
    EXPECT_EQ(data::read_png(f.dir + "/out" + name).pixels,
              api.repair(data::read_png(f.dir + "/in" + name).pixels, h, w, 3, mask.pixels))
        << name;
  }
  // A folder of masks matched by name: p1 gets its own (a JPEG), the others theirs.
  data::Mask other = stroke_mask(h, w);
  std::reverse(other.pixels.begin(), other.pixels.end());
  data::write_png(f.dir + "/masks/p0.png", mask_image(mask));
  data::write_jpeg(f.dir + "/masks/p1.jpg", mask_image(other), 100);
  data::write_png(f.dir + "/masks/p2.png", mask_image(other));
  const auto matched = test::run_cae("repair " + f.dir + "/in --mask " + f.dir + "/masks -m " +
                                     f.model + " -o " + f.dir + "/out2");
  ASSERT_EQ(matched.status, 0) << matched.output;
  const data::Mask jpeg_mask = data::read_mask(f.dir + "/masks/p1.jpg", {});
  EXPECT_EQ(jpeg_mask.pixels, other.pixels);  // quality 100 of black and white keeps the halves
  EXPECT_EQ(data::read_png(f.dir + "/out2/p0.png").pixels,
            api.repair(data::read_png(f.dir + "/in/p0.png").pixels, h, w, 3, mask.pixels));
  EXPECT_EQ(data::read_png(f.dir + "/out2/p1.png").pixels,
            api.repair(data::read_png(f.dir + "/in/p1.png").pixels, h, w, 3, other.pixels));
}

TEST(RepairCli, BadInputIsOneErrorNamingTheFileAndWritesNothing) {
  const Files f = write_files();
  const int h = 24, w = 30;
  data::write_png(f.dir + "/photo.png", test::textured_photo(h, w, 3, 1));
  data::write_png(f.dir + "/mask.png", mask_image(stroke_mask(h, w)));
  data::write_png(f.dir + "/small.png", mask_image(stroke_mask(h - 1, w)));
  data::write_png(f.dir + "/empty.png", gray(h, w, 0));
  std::ofstream(f.dir + "/junk.png") << "not an image";
  fs::create_directories(f.dir + "/folder.png");
  const std::string base = "repair " + f.dir + "/photo.png -m " + f.model + " ";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {base + "--mask " + f.dir + "/small.png -o " + f.dir + "/o1.png",
       f.dir + "/small.png: the mask is 30×23, the photo " + f.dir + "/photo.png is 30×24"},
      {base + "--mask " + f.dir + "/junk.png -o " + f.dir + "/o2.png",
       f.dir + "/junk.png: not a PNG or JPEG file"},
      {"repair " + f.dir + "/junk.png -m " + f.model + " --mask " + f.dir + "/mask.png -o " +
           f.dir + "/o3.png",
       f.dir + "/junk.png: not a PNG or JPEG file"},
      {base + "--mask " + f.dir + "/nope.png -o " + f.dir + "/o4.png",
       f.dir + "/nope.png: no such mask file or folder"},
      {base + "--mask " + f.dir + "/mask.png --max-megapixels 0.0001 -o " + f.dir + "/o5.png",
       f.dir + "/photo.png: the image is 30×24 = 720 pixels, above the limit of 100 (raise it "
               "with --max-megapixels)"},
      {"repair " + f.dir + "/photo.png -m " + f.blind + " --mask " + f.dir + "/mask.png -o " +
           f.dir + "/o6.png",
       f.blind + ": the model is blind"},
      {base + "--mask " + f.dir + "/mask.png -o " + f.dir + "/folder.png",
       "-o " + f.dir + "/folder.png names a file, but it is an existing folder"},
      {base + "-o " + f.dir + "/o7.png", "say where the damage is: --mask"},
      {base + "--mask " + f.dir + "/mask.png -o " + f.dir + "/o8.jpg", "repairs are written as PNG"},
      {base + "--mask " + f.dir + "/mask.png -o " + f.dir + "/photo.png",
       "would replace the photo itself"},
      {base + "--mask-color 1,2 -o " + f.dir + "/o9.png", "mask colour '1,2'"},
      {"denoise " + f.dir + "/photo.png -m " + f.model + " -o " + f.dir + "/o10",
       f.model + ": the model is informed"},
  };
  for (const Case& c : cases) {
    const auto r = test::run_cae(c.args);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("cae: error: ")) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(r.output.find("cae: error:"), r.output.rfind("cae: error:")) << r.output;
  }
  for (int i = 1; i <= 9; ++i) EXPECT_FALSE(fs::exists(f.dir + "/o" + std::to_string(i) + ".png")) << i;
  EXPECT_FALSE(fs::exists(f.dir + "/o10"));

  // A mask with no damage: the photo copied unchanged, with a warning.
  const auto none = test::run_cae(base + "--mask " + f.dir + "/empty.png -o " + f.dir + "/same.png");
  ASSERT_EQ(none.status, 0) << none.output;
  EXPECT_THAT(none.output, HasSubstr("cae: warning: " + f.dir + "/photo.png: the mask marks no damage"));
  EXPECT_EQ(data::read_png(f.dir + "/same.png").pixels, data::read_png(f.dir + "/photo.png").pixels);

  // A folder where the third photo is corrupt: nothing is written, not even the first two.
  fs::create_directories(f.dir + "/in");
  for (const char* name : {"a.png", "b.png"}) fs::copy_file(f.dir + "/photo.png", f.dir + "/in/" + name);
  std::ofstream(f.dir + "/in/c.png") << "\x89PNG truncated";
  const auto partial = test::run_cae("repair " + f.dir + "/in --mask " + f.dir + "/mask.png -m " +
                                     f.model + " -o " + f.dir + "/out");
  EXPECT_EQ(partial.status, 1) << partial.output;
  EXPECT_THAT(partial.output, HasSubstr("cae: error: " + f.dir + "/in/c.png"));
  EXPECT_FALSE(fs::exists(f.dir + "/out")) << "the folder this run made is removed again";
  // Into a folder that exists: it keeps what it had, and gains nothing.
  fs::create_directories(f.dir + "/kept");
  std::ofstream(f.dir + "/kept/a.png") << "the user's own file";
  const auto kept = test::run_cae("repair " + f.dir + "/in --mask " + f.dir + "/mask.png -m " +
                                  f.model + " -o " + f.dir + "/kept");
  EXPECT_EQ(kept.status, 1);
  EXPECT_EQ(test::run_shell("cat " + f.dir + "/kept/a.png").output, "the user's own file");
  EXPECT_EQ(std::distance(fs::directory_iterator(f.dir + "/kept"), fs::directory_iterator()), 1);
  // A folder of masks without one for a photo: named before anything runs.
  fs::create_directories(f.dir + "/masks");
  data::write_png(f.dir + "/masks/a.png", mask_image(stroke_mask(h, w)));
  const auto unmatched = test::run_cae("repair " + f.dir + "/in --mask " + f.dir + "/masks -m " +
                                       f.model + " -o " + f.dir + "/out");
  EXPECT_THAT(unmatched.output, HasSubstr("cae: error: " + f.dir + "/in/b.png: no mask for it in " +
                                          f.dir + "/masks (looked for b.png, b.jpg or b.jpeg)"));
}

// The shipped models (src/io/model_store.h): $CAE_MODELS is the only folder searched, so a scratch folder
// holding inpaint.cae and denoise.cae stands in for the shipped ones; `cae repair` and `cae
// denoise` use them without -m, `cae models` lists them, and the API opens them by name.
TEST(ShippedModels, FoundByNameWithoutMInTheCliAndTheApi) {
  const Files f = write_files();
  const std::string shelf = f.dir + "/shelf";
  std::filesystem::create_directories(shelf);
  std::filesystem::copy_file(f.model, shelf + "/inpaint.cae");
  std::filesystem::copy_file(f.blind, shelf + "/denoise.cae");
  const int h = 21, w = 30;
  const data::Mask mask = stroke_mask(h, w);
  data::write_png(f.dir + "/mask.png", mask_image(mask));
  const data::Image photo = test::textured_photo(h, w, 3, 2);
  data::write_png(f.dir + "/photo.png", photo);
  const std::string env = "CAE_MODELS=" + shelf + " ";

  const auto listed = test::run_shell(env + CAE_EXE + " models");
  ASSERT_EQ(listed.status, 0) << listed.output;
  EXPECT_THAT(listed.output, HasSubstr("inpaint    repair: fills what a mask marks"));
  EXPECT_THAT(listed.output, HasSubstr("denoise    denoise: removes noise"));
  EXPECT_THAT(listed.output, HasSubstr(shelf + "/inpaint.cae"));

  const auto r = test::run_shell(env + CAE_EXE + " repair " + f.dir + "/photo.png --mask " +
                                 f.dir + "/mask.png --threads 2 -o " + f.dir + "/out.png");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::vector<std::uint8_t> expected =
      Autoencoder::load(f.model).repair(photo.pixels, h, w, 3, mask.pixels, {});
  EXPECT_EQ(data::read_png(f.dir + "/out.png").pixels, expected);
  const auto d = test::run_shell(env + CAE_EXE + " denoise " + f.dir + "/photo.png -o " + f.dir +
                                 "/clean.png");
  ASSERT_EQ(d.status, 0) << d.output;
  const data::Image clean = data::read_png(f.dir + "/clean.png");  // -o NAME.png: that file
  EXPECT_EQ(clean.c, 3);
  EXPECT_EQ(clean.h, h);
  // A gray photo through the colour denoiser: gray out, the mean of its run on the gray in RGB.
  data::Image grey = gray(h, w, 0);
  for (std::size_t p = 0; p < grey.pixels.size(); ++p) grey.pixels[p] = photo.pixels[p * 3];
  data::Image as_rgb = photo;
  for (std::size_t p = 0; p < grey.pixels.size(); ++p)
    for (int c = 0; c < 3; ++c) as_rgb.pixels[p * 3 + c] = grey.pixels[p];
  data::write_png(f.dir + "/grey.png", grey);
  data::write_png(f.dir + "/as-rgb.png", as_rgb);
  ASSERT_EQ(test::run_shell(env + CAE_EXE + " denoise " + f.dir + "/grey.png -o " + f.dir +
                            "/grey-clean.png").status, 0);
  ASSERT_EQ(test::run_shell(env + CAE_EXE + " denoise " + f.dir + "/as-rgb.png -o " + f.dir +
                            "/rgb-out").status, 0);
  const data::Image grey_out = data::read_png(f.dir + "/grey-clean.png");
  const data::Image rgb_out = data::read_png(f.dir + "/rgb-out/as-rgb.png");
  ASSERT_EQ(grey_out.c, 1);
  int off = 0;  // the mean of the three 8-bit channels against the mean of three floats
  for (std::size_t p = 0; p < grey_out.pixels.size(); ++p) {
    const double mean = (rgb_out.pixels[3 * p] + rgb_out.pixels[3 * p + 1] +
                         rgb_out.pixels[3 * p + 2]) / 3.0;
    off = std::max(off, int(std::lround(std::abs(grey_out.pixels[p] - mean) * 2)));
  }
  EXPECT_LE(off, 2) << "within a pixel level";
  const auto two = test::run_shell(env + CAE_EXE + " denoise " + f.dir + "/grey.png " + f.dir +
                                   "/photo.png -o " + f.dir + "/both.png");
  EXPECT_EQ(two.status, 1);
  EXPECT_THAT(two.output, HasSubstr("names one file, but 2 images are given: name a folder"));

  // By name in the API, from the same folder.
  ASSERT_EQ(setenv("CAE_MODELS", shelf.c_str(), 1), 0);
  const std::vector<ShippedModel> all = Autoencoder::shipped_models();
  ASSERT_GE(all.size(), 2u);
  EXPECT_EQ(all[0].name, "denoise");
  EXPECT_EQ(all[0].path, shelf + "/denoise.cae");
  EXPECT_EQ(Autoencoder::load_shipped("inpaint").repair(photo.pixels, h, w, 3, mask.pixels, {}),
            expected);
  EXPECT_THAT(test::error_of([] { Autoencoder::load_shipped("no-such-model"); }),
              HasSubstr("no shipped model of that name (shipped: denoise, inpaint"));
  EXPECT_THAT(test::error_of([] { Autoencoder::load_shipped("../inpaint"); }),
              HasSubstr("is not a model name"));
  unsetenv("CAE_MODELS");

  // A name that is neither a file nor a shipped model is one clear error naming both.
  const auto bad = test::run_shell(env + CAE_EXE + " repair " + f.dir + "/photo.png --mask " +
                                   f.dir + "/mask.png -m nonesuch -o " + f.dir + "/x.png");
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.output, HasSubstr("cae: error: nonesuch: no such model file, and no shipped "
                                    "model of that name"));
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/x.png"));
}
