// Photos: the inpainting baselines, scores inside the damage against loops written here, whole-
// photo evaluation of blind and informed models on a folder of different sizes, the repair
// figure's layout, and `cae eval` / `cae compare` on such a folder, bad input included.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/corrupt.h"
#include "data/image_io.h"
#include "data/jpeg_io.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/baselines.h"
#include "train/compare.h"
#include "train/figures.h"
#include "train/metrics.h"
#include "train/photo_eval.h"
#include "train/tiling.h"

using namespace cae;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

data::Image photo(int h, int w, int c, int seed) { return test::textured_photo(h, w, c, seed); }

data::Corruption crosshair(int thickness = 3) {
  data::Corruption c;
  c.gaussian_sigma = 0;
  c.crosshair = true;
  c.line_thickness = thickness;
  return c;
}

nn::Model tiny_model(int channels, bool informed, int side = 16) {
  nn::Model m(nn::parse_spec("conv 6 relu\nconv channels"), {channels + informed, side, side},
              nn::LossKind::bce, informed);
  m.init_glorot(informed ? 7 : 5);
  return m;
}

// SSIM at one pixel from its 11×11 window directly: Gaussian-weighted means, variances and
// covariance, as Wang et al. define them.
double ssim_at(const float* x, const float* y, int w, int cy, int cx) {
  const double* g = train::ssim_window();
  double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
  for (int i = -5; i <= 5; ++i)
    for (int j = -5; j <= 5; ++j) {
      const double k = g[i + 5] * g[j + 5];
      const double a = x[(cy + i) * w + cx + j], b = y[(cy + i) * w + cx + j];
      mx += k * a, my += k * b, xx += k * a * a, yy += k * b * b, xy += k * a * b;
    }
  const double c1 = 1e-4, c2 = 9e-4;
  return (2 * mx * my + c1) * (2 * (xy - mx * my) + c2) /
         ((mx * mx + my * my + c1) * (xx - mx * mx + yy - my * my + c2));
}

}  // namespace

TEST(Inpaint, FillsOnlyTheMaskAndTeleaDiffersFromNavierStokes) {
  const ops::Dims d{3, 24, 31};
  std::vector<float> clean(d.size()), damaged(d.size()), mask(d.h * d.w);
  train::from_image(photo(d.h, d.w, d.c, 1), clean.data());
  data::Corruption c = crosshair();
  c.gaussian_sigma = 0.05f;  // off the byte grid, so "unchanged" is a real check
  data::corrupt(c, clean.data(), damaged.data(), 1, d, 3, Stream::test_noise, 0, 0, mask.data());
  std::vector<float> telea(d.size()), ns(d.size());
  train::apply_baseline(train::Baseline::telea, 3, damaged.data(), telea.data(), 1, d, mask.data());
  train::apply_baseline(train::Baseline::navier_stokes, 3, damaged.data(), ns.data(), 1, d,
                        mask.data());
  const std::size_t hw = std::size_t(d.h) * d.w;
  int inside = 0, differ = 0;
  for (int k = 0; k < d.c; ++k)
    for (std::size_t p = 0; p < hw; ++p) {
      if (mask[p] == 0) {
        ASSERT_EQ(telea[k * hw + p], damaged[k * hw + p]);
        ASSERT_EQ(ns[k * hw + p], damaged[k * hw + p]);
      } else {
        ++inside;
        differ += telea[k * hw + p] != ns[k * hw + p];
        EXPECT_NE(telea[k * hw + p], 1.f);  // the white line is gone
      }
    }
  EXPECT_GT(inside, 0);
  EXPECT_GT(differ, inside / 10);
  // Repair brings the damage closer to the original.
  EXPECT_LT(train::masked_mse(telea.data(), clean.data(), mask.data(), d),
            train::masked_mse(damaged.data(), clean.data(), mask.data(), d) / 4);

  std::vector<float> flat(d.size(), 0.4f), flat_damaged(d.size()), out(d.size());
  data::corrupt(crosshair(), flat.data(), flat_damaged.data(), 1, d, 3, Stream::test_noise, 0, 0,
                mask.data());
  // A flat image stays flat, though a white crosshair crosses its edges (which cv::inpaint alone
  // lets bleed in). Telea's own gradient term moves it by up to 2 levels in OpenCV 4.6.
  for (auto kind : {train::Baseline::telea, train::Baseline::navier_stokes}) {
    train::apply_baseline(kind, 5, flat_damaged.data(), out.data(), 1, d, mask.data());
    const float tolerance = kind == train::Baseline::telea ? 2.5f / 255 : 1e-6f;
    for (float v : out) ASSERT_NEAR(v, std::round(0.4f * 255) / 255, tolerance) << int(kind);
  }
  EXPECT_THAT(test::error_of([&] {
                train::apply_baseline(train::Baseline::telea, 3, damaged.data(), out.data(), 1, d);
              }),
              HasSubstr("telea: needs the damage mask"));
  EXPECT_EQ(train::baselines_for(data::Corruption{}).size(), 3u);
  EXPECT_EQ(train::baselines_for(crosshair()).size(), 5u);
}

// A large photo's damage is inpainted piece by piece, each piece on a crop of its own; the result
// is the whole photo's bit for bit: pieces near each other (one pixel further than the pieces'
// reach, and one pixel nearer), pieces at the edges and in a corner, a long stroke, dots, gray
// and colour, every radius of the grid.
TEST(Inpaint, PiecewiseEqualsTheWholePhotoBitForBit) {
  for (int c : {1, 3}) {
    const ops::Dims d{c, 560, 590};
    std::vector<float> clean(d.size()), damaged(d.size()), mask(std::size_t(d.h) * d.w, 0.f);
    train::from_image(photo(d.h, d.w, d.c, 3 + c), clean.data());
    auto mark = [&](int y, int x) {
      if (y < 0 || x < 0 || y >= d.h || x >= d.w) return;
      mask[std::size_t(y) * d.w + x] = 1;
    };
    for (int x = 100; x < 300; ++x) mark(200 + x / 7, x), mark(201 + x / 7, x);  // a stroke
    for (int y = 0; y < 9; ++y) mark(y, 400), mark(y, 401);  // at the top edge
    for (int y = 550; y < 560; ++y)
      for (int x = 580; x < 590; ++x) mark(y, x);  // in a corner
    for (int k = 0; k < 40; ++k) mark(300 + 13 * (k % 7), 350 + 11 * k);  // dots
    for (int gap : {5, 6, 11, 12, 13}) mark(480, 40 + 9 * gap), mark(480, 40 + 10 * gap);
    std::copy(clean.begin(), clean.end(), damaged.begin());
    for (std::size_t p = 0; p < mask.size(); ++p)
      if (mask[p] > 0)
        for (int ch = 0; ch < c; ++ch) damaged[ch * mask.size() + p] = ch == 0 ? 1.f : 0.f;
    for (auto kind : {train::Baseline::telea, train::Baseline::navier_stokes})
      for (float r : train::baseline_grid(kind)) {
        std::vector<float> pieces(d.size()), whole(d.size());
        train::apply_baseline(kind, r, damaged.data(), pieces.data(), 1, d, mask.data());
        train::inpaint_whole(kind, r, damaged.data(), whole.data(), d, mask.data());
        std::size_t differ = 0;
        for (std::size_t i = 0; i < whole.size(); ++i) differ += pieces[i] != whole[i];
        EXPECT_EQ(differ, 0u) << train::baseline_name(kind) << " r=" << r << " c=" << c;
        EXPECT_NE(whole, damaged);
      }
  }
}

TEST(RegionScores, MatchLoopsOverTheMaskedPixels) {
  const ops::Dims d{2, 19, 23};
  const auto x = test::random_floats(d.size(), 1, 0.f, 1.f);
  const auto y = test::random_floats(d.size(), 2, 0.f, 1.f);
  std::vector<float> mask(d.h * d.w, 0.f);
  for (int r = 0; r < d.h; ++r)
    for (int q = 0; q < d.w; ++q) mask[r * d.w + q] = (r == 9 || q == 2 || q == 3) ? 1.f : 0.f;
  const std::size_t hw = std::size_t(d.h) * d.w;
  double se = 0;
  int n = 0;
  for (std::size_t p = 0; p < hw; ++p)
    if (mask[p] == 1)
      for (int k = 0; k < d.c; ++k, ++n) se += std::pow(double(x[k * hw + p]) - y[k * hw + p], 2);
  EXPECT_NEAR(train::masked_mse(x.data(), y.data(), mask.data(), d), se / n, 1e-12);

  double total = 0;
  for (int k = 0; k < d.c; ++k) {
    double sum = 0;
    int count = 0;
    for (int r = 5; r < d.h - 5; ++r)
      for (int q = 5; q < d.w - 5; ++q)  // columns 2 and 3 have no whole window: only row 9
        if (mask[r * d.w + q] == 1)
          sum += ssim_at(x.data() + k * hw, y.data() + k * hw, d.w, r, q), ++count;
    EXPECT_EQ(count, d.w - 10);
    total += sum / count;
  }
  EXPECT_NEAR(train::masked_ssim(x.data(), y.data(), mask.data(), d), total / d.c, 1e-9);

  // The whole image as the region is ssim() itself; an empty region has no score.
  const std::vector<float> all(hw, 1.f), none(hw, 0.f);
  EXPECT_NEAR(train::masked_ssim(x.data(), y.data(), all.data(), d),
              train::ssim(x.data(), y.data(), d), 1e-12);
  EXPECT_TRUE(std::isnan(train::masked_mse(x.data(), y.data(), none.data(), d)));
  EXPECT_TRUE(std::isnan(train::masked_ssim(x.data(), y.data(), none.data(), d)));
}

TEST(Tiling, AnInformedModelGetsTheMaskAsItsLastChannel) {
  const nn::Model m = tiny_model(3, true);
  const ops::Dims d{3, 16, 16};
  std::vector<float> clean(d.size()), damaged(d.size()), mask(256), x(4 * 256);
  train::from_image(photo(16, 16, 3, 2), clean.data());
  data::corrupt(crosshair(1), clean.data(), damaged.data(), 1, d, 0, Stream::test_noise, 0, 0,
                mask.data());
  data::with_mask_channel(damaged.data(), mask.data(), 1, d, x.data());
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  const auto tiled = train::denoise_tiled(m, damaged.data(), d, opt, mask.data());
  auto exec = m.make_inference_executor(ops::Backend::ref, 1, {});
  exec->forward(x.data());
  std::vector<float> own(d.size());
  nn::output_to_image(m.loss(), exec->output(), own.data(), own.size());
  data::keep_undamaged(damaged.data(), mask.data(), 1, d, own.data());
  // One tile: the plain forward pass, mask included, the undamaged pixels kept as given.
  EXPECT_EQ(tiled, own);
  for (std::size_t k = 0; k < tiled.size(); ++k)
    if (mask[k % 256] == 0.f) {
      ASSERT_EQ(tiled[k], damaged[k]) << k;
    }
  // Larger than a tile: the mask tiles with the image, so the result depends on it.
  const ops::Dims big{3, 29, 40};
  std::vector<float> img(big.size()), bad(big.size()), m1(29 * 40), m0(29 * 40, 0.f);
  train::from_image(photo(29, 40, 3, 3), img.data());
  data::corrupt(crosshair(), img.data(), bad.data(), 1, big, 0, Stream::test_noise, 0, 0,
                m1.data());
  EXPECT_NE(train::denoise_tiled(m, bad.data(), big, opt, m1.data()),
            train::denoise_tiled(m, bad.data(), big, opt, m0.data()));
  EXPECT_THAT(test::error_of([&] { train::denoise_tiled(m, bad.data(), big, opt); }),
              HasSubstr("informed and needs the damage mask"));
}

TEST(PhotoEval, WholePhotosOfDifferentSizesBlindAndInformed) {
  const std::vector<data::Image> test = {photo(20, 33, 3, 1), photo(41, 27, 3, 2)};
  const std::vector<data::Image> val = {photo(30, 30, 3, 3)};
  const nn::Model blind = tiny_model(3, false), informed = tiny_model(3, true);
  train::CompareOptions options;
  options.backend = ops::Backend::ref;
  train::TileOptions tiles;
  tiles.backend = ops::Backend::ref;
  const data::Corruption damage = crosshair();
  const train::Comparison c =
      train::compare_photos({{"blind", &blind}, {"informed", &informed}}, test, {"a.png", "b.png"},
                            val, damage, 4, options, tiles);
  EXPECT_EQ(c.images, 2);
  EXPECT_TRUE(c.region);
  EXPECT_EQ(c.tuned_on, "val");
  EXPECT_EQ(c.tune_images, 1);
  std::vector<std::string> names;
  for (const auto& m : c.methods) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"noisy", "blind", "informed", "median", "gaussian",
                                             "nlm", "telea", "navier-stokes"}));
  // Each photo damaged once at its own size, from its own keyed stream, and scored whole.
  for (int i = 0; i < 2; ++i) {
    const train::DamagedPhoto p = train::damage_photo(test[i], damage, 4, 0, i);
    EXPECT_EQ(p.dims.h, test[i].h);
    const train::Scores noisy =
        train::score_image(p.damaged.data(), p.clean.data(), p.mask.data(), p.dims);
    EXPECT_EQ(c.methods[0].per_image[i].psnr, noisy.psnr);
    EXPECT_EQ(c.methods[0].per_image[i].psnr_region, noisy.psnr_region);
    const auto out = train::denoise_tiled(informed, p.damaged.data(), p.dims, tiles, p.mask.data());
    EXPECT_EQ(c.methods[2].per_image[i].ssim_region,
              train::masked_ssim(out.data(), p.clean.data(), p.mask.data(), p.dims));
  }
  // The inpainter's radius was tuned on the validation photo, by PSNR inside the damage.
  const train::DamagedPhoto v = train::damage_photo(val[0], damage, 4, train::kValKey, 0);
  double best = -1e300;
  std::string setting;
  for (float r : train::baseline_grid(train::Baseline::telea)) {
    std::vector<float> out(v.dims.size());
    train::apply_baseline(train::Baseline::telea, r, v.damaged.data(), out.data(), 1, v.dims,
                          v.mask.data());
    const double p =
        train::psnr(train::masked_mse(out.data(), v.clean.data(), v.mask.data(), v.dims));
    if (p > best) best = p, setting = train::baseline_setting(train::Baseline::telea, r);
  }
  EXPECT_EQ(c.methods[6].setting, setting);
  EXPECT_GT(c.methods[6].mean.psnr_region, c.methods[0].mean.psnr_region + 3);
  const std::string table = train::comparison_table(c);
  EXPECT_THAT(table, HasSubstr("PSNR damage"));
  EXPECT_THAT(table, HasSubstr("tuned on 1 validation image(s)"));
  EXPECT_THAT(train::comparison_csv(c), HasSubstr("\nb.png,telea,"));

  // Noise only: no inpainters and no region scores; without val, tuning is on the test photos.
  const train::Comparison noise = train::compare_photos({{"blind", &blind}}, test, {"a", "b"}, {},
                                                        data::Corruption{}, 4, options, tiles);
  EXPECT_FALSE(noise.region);
  EXPECT_EQ(noise.methods.size(), 5u);
  EXPECT_EQ(noise.tuned_on, "test");
  EXPECT_THAT(train::comparison_table(noise), Not(HasSubstr("damage")));
  EXPECT_THAT(train::comparison_json(noise), Not(HasSubstr("region")));
}

// Photos all of the model's size: the whole-photo path gives what the one-shape path gives.
TEST(PhotoEval, PhotosOfOneSizeScoreAsAnImageSet) {
  const nn::Model blind = tiny_model(1, false);
  std::vector<data::Image> photos;
  data::ImageSet set;
  set.n = 3, set.h = 16, set.w = 16, set.c = 1;
  for (int i = 0; i < 3; ++i) {
    photos.push_back(photo(16, 16, 1, i));
    set.pixels.insert(set.pixels.end(), photos.back().pixels.begin(), photos.back().pixels.end());
  }
  data::Corruption damage = crosshair(1);
  damage.gaussian_sigma = 0.1f;
  train::CompareOptions options;
  options.backend = ops::Backend::ref;
  options.tune_images = 2;
  train::TileOptions tiles;
  tiles.backend = ops::Backend::ref;
  const auto whole = train::compare_photos({{"cae", &blind}}, photos, {"0", "1", "2"}, {}, damage,
                                           9, options, tiles);
  const auto one_shape = train::compare({{"cae", &blind}}, set, damage, 9, options);
  ASSERT_EQ(whole.methods.size(), one_shape.methods.size());
  for (std::size_t m = 0; m < whole.methods.size(); ++m) {
    EXPECT_EQ(whole.methods[m].setting, one_shape.methods[m].setting) << whole.methods[m].name;
    EXPECT_NEAR(whole.methods[m].mean.psnr, one_shape.methods[m].mean.psnr, 1e-4);
    EXPECT_NEAR(whole.methods[m].mean.psnr_region, one_shape.methods[m].mean.psnr_region, 1e-4);
  }
}

TEST(RepairFigure, FourPanelsAboveTheirZoomedCrops) {
  const nn::Model blind = tiny_model(3, false);
  train::TileOptions tiles;
  tiles.backend = ops::Backend::ref;
  const data::Image original = photo(40, 52, 3, 4);
  const train::PhotoRepair r = train::repair_photo(blind, original, crosshair(), 0, tiles);
  const int zoom = 4, strip = train::label_height(52);
  const data::Image fig = train::repair_figure(r, zoom);
  EXPECT_EQ(fig.w, 4 * 52 + 3 * 2 * zoom);
  EXPECT_EQ(fig.h, 2 * (40 + strip) + 2 * zoom);
  EXPECT_EQ(fig.c, 3);
  // The top row's last panel is the original, below its label strip.
  const int x0 = 3 * (52 + 2 * zoom);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 52; ++x)
      for (int k = 0; k < 3; ++k)
        ASSERT_EQ(fig.pixels[(std::size_t(y + strip) * fig.w + x0 + x) * 3 + k],
                  original.pixels[(std::size_t(y) * 52 + x) * 3 + k])
            << "at " << y << "," << x;
  EXPECT_GT(r.telea.psnr_region, r.damaged.psnr_region);
  // A blind model runs every tile; an informed one only those the crosshair crosses.
  EXPECT_EQ(r.tiles.tiles_run, r.tiles.tiles);
  const train::PhotoRepair informed =
      train::repair_photo(tiny_model(3, true), original, crosshair(), 0, tiles);
  EXPECT_EQ(informed.tiles.tiles, r.tiles.tiles);
  EXPECT_GT(informed.tiles.tiles_run, 0);
  EXPECT_LT(informed.tiles.tiles_run, informed.tiles.tiles);
  EXPECT_THAT(
      test::error_of([&] { train::repair_photo(blind, original, data::Corruption{}, 0, tiles); }),
      HasSubstr("no masks, lines, crosshair or strokes"));
}

TEST(PhotoEvalCli, EvalAndRepairOnAFolderOfDifferentSizes) {
  const std::string dir = test::scratch_dir();
  fs::create_directories(dir + "/photos/test");
  fs::create_directories(dir + "/photos/val");
  data::write_png(dir + "/photos/test/a.png", photo(20, 33, 3, 1));
  data::write_jpeg(dir + "/photos/test/b.jpg", photo(41, 27, 3, 2), 95);
  data::write_png(dir + "/photos/test/gray.png", photo(25, 25, 1, 3));
  data::write_png(dir + "/photos/val/v.png", photo(30, 30, 3, 3));
  for (bool informed : {false, true}) {
    const std::string model = dir + (informed ? "/informed.cae" : "/blind.cae");
    io::write_model_file(model, tiny_model(3, informed).to_file());
    const auto e = test::run_cae("eval -m " + model + " --dataset " + dir +
                                 "/photos --crosshair --line-thickness 3 --noise 0 --threads 2 "
                                 "--json " +
                                 dir + "/e.json --csv " + dir + "/e.csv");
    ASSERT_EQ(e.status, 0) << e.output;
    EXPECT_THAT(e.output, HasSubstr("3 whole test photos"));
    EXPECT_THAT(e.output, HasSubstr("telea (r="));
    EXPECT_THAT(e.output, HasSubstr("navier-stokes (r="));
    EXPECT_THAT(e.output, HasSubstr("tuned on 1 validation image(s)"));
    const auto json = nlohmann::json::parse(std::ifstream(dir + "/e.json"));
    EXPECT_EQ(json["images"], 3);
    EXPECT_EQ(json["tuned_on"], "val");
    EXPECT_TRUE(json["methods"][1]["psnr_db_region"].is_number());
    std::ifstream csv(dir + "/e.csv");
    std::string header;
    std::getline(csv, header);
    EXPECT_EQ(header, "image,method,mse,psnr_db,ssim,bce,psnr_db_region,ssim_region");
  }

  const auto r =
      test::run_cae("compare " + dir + "/photos/test/b.jpg -m " + dir +
                    "/informed.cae --crosshair --noise 0 --threads 2 -o " + dir + "/fig.png");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PSNR inside the damage"));
  const data::Image fig = data::read_png(dir + "/fig.png");
  EXPECT_EQ(fig.w, 4 * 27 + 3 * 8);
  EXPECT_EQ(fig.h, 2 * (41 + train::label_height(27)) + 8);

  // Bad input: one clear line naming the file.
  const auto missing = test::run_cae("compare " + dir + "/nope.png -m " + dir + "/blind.cae");
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.output, HasSubstr("cae: error: "));
  EXPECT_THAT(missing.output, HasSubstr(dir + "/nope.png"));
  std::ofstream(dir + "/photos/test/c.png") << "not a png at all";
  const auto corrupt = test::run_cae("eval -m " + dir + "/blind.cae --dataset " + dir +
                                     "/photos --crosshair --threads 2");
  EXPECT_EQ(corrupt.status, 1);
  EXPECT_THAT(corrupt.output, HasSubstr("cae: error: " + dir + "/photos/test/c.png"));
  const auto noise =
      test::run_cae("compare " + dir + "/photos/val/v.png -m " + dir + "/blind.cae --noise 0.1");
  EXPECT_EQ(noise.status, 1);
  EXPECT_THAT(noise.output, HasSubstr("no masks, lines, crosshair or strokes"));
}
