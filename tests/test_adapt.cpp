// Adapting a model to the photo it repairs: the clear crops against a naive scan of the mask,
// adaptation that never reads the pixels under the damage, is reproducible and lowers the loss on
// the photo, its refusals, and `cae eval --adapt` / `cae compare --adapt`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/patches.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/adapt.h"
#include "train/figures.h"
#include "train/fill.h"
#include "train/photo_eval.h"
#include "train/tiling.h"

using namespace cae;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// A picture whose pixel (y, x) holds y in its first channel and x in its second, so that a
// crop tells where it came from.
data::Image coordinates(int h, int w) {
  data::Image img;
  img.h = h, img.w = w, img.c = 3;
  img.pixels.resize(std::size_t(h) * w * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = &img.pixels[(std::size_t(y) * w + x) * 3];
      p[0] = std::uint8_t(y), p[1] = std::uint8_t(x), p[2] = std::uint8_t((x * 7 + y * 3) % 251);
    }
  return img;
}

// A mask with a few damaged spots, fixed.
std::vector<float> spots(int h, int w) {
  std::vector<float> mask(std::size_t(h) * w, 0.f);
  for (auto [y, x] : {std::pair{3, 4}, {10, 17}, {15, 2}, {21, 21}, {0, 12}})
    mask[std::size_t(y) * w + x] = 1;
  return mask;
}

bool window_clear(const std::vector<float>& mask, int w, int y0, int x0, int ch, int cw) {
  for (int y = y0; y < y0 + ch; ++y)
    for (int x = x0; x < x0 + cw; ++x)
      if (mask[std::size_t(y) * w + x] != 0) return false;
  return true;
}

data::Image photo(int h, int w, int c, int seed) { return test::textured_photo(h, w, c, seed); }

data::Corruption crosshair() {
  data::Corruption c;
  c.gaussian_sigma = 0;
  c.crosshair = true;
  c.line_thickness = 3;
  return c;
}

nn::Model informed_model(int side = 16) {
  nn::Model m(nn::parse_spec("conv 8 relu\nconv 8 relu\nconv channels"), {4, side, side},
              nn::LossKind::bce, true);
  m.init_glorot(11);
  return m;
}

train::AdaptOptions adapt_options(int steps) {
  train::AdaptOptions a;
  a.steps = steps;
  a.batch = 8;
  a.lr = 3e-3;
  a.seed = 5;
  a.training = crosshair();
  return a;
}

// The model's mean masked loss on `count` clear crops of the photo, damaged as in training:
// what adaptation lowers.
double loss_on_photo(const nn::Model& model, const train::DamagedPhoto& p,
                     const data::Corruption& training) {
  const int count = 32;
  const ops::Dims in = model.output();
  data::PatchOptions crops;
  crops.h = in.h, crops.w = in.w;
  const data::ClearCrops source(train::to_image(p.damaged.data(), p.dims), p.mask.data(), crops);
  std::vector<int> order(count);
  for (int i = 0; i < count; ++i) order[i] = i;
  std::vector<float> clean(count * in.size()), noisy(clean.size()), grad(clean.size());
  std::vector<float> mask(std::size_t(count) * in.h * in.w);
  data::to_nchw(source.draw(count, 99, 0, 0), order.data(), count, clean.data());
  data::corrupt(training, clean.data(), noisy.data(), count, in, 99, Stream::test_noise, 0, 0,
                mask.data());
  auto exec = model.make_executor(ops::Backend::dnnl, count, {});
  train::InformedRun run(model, count);
  exec->forward(run.input(noisy.data(), mask.data(), count));
  return nn::masked_loss_and_grad(model.loss(), run.output(exec->output(), count), clean.data(),
                                  mask.data(), count, in, grad.data());
}

}  // namespace

TEST(ClearCrops, EveryCropIsAWindowWithoutDamageAndEachSuchWindowIsDrawn) {
  const int h = 24, w = 26, ch = 6, cw = 7;
  const data::Image image = coordinates(h, w);
  const std::vector<float> mask = spots(h, w);
  data::PatchOptions options;
  options.h = ch, options.w = cw;
  const data::ClearCrops crops(image, mask.data(), options);
  std::set<std::pair<int, int>> clear;
  for (int y = 0; y + ch <= h; ++y)
    for (int x = 0; x + cw <= w; ++x)
      if (window_clear(mask, w, y, x, ch, cw)) clear.insert({y, x});
  ASSERT_GT(clear.size(), 10u);
  ASSERT_LT(clear.size(), std::size_t((h - ch + 1) * (w - cw + 1)));  // the spots rule some out
  EXPECT_EQ(crops.windows(), clear.size());

  const int count = 4000;
  const data::ImageSet set = crops.draw(count, 3, 1, 0);
  ASSERT_EQ(set.n, count);
  ASSERT_EQ(set.h, ch);
  ASSERT_EQ(set.w, cw);
  std::set<std::pair<int, int>> drawn;
  for (int p = 0; p < count; ++p) {
    const std::uint8_t* crop = set.pixels.data() + std::size_t(p) * set.image_size();
    const int y0 = crop[0], x0 = crop[1];
    ASSERT_TRUE(clear.count({y0, x0})) << "crop " << p << " at " << y0 << "," << x0;
    for (int y = 0; y < ch; ++y)
      for (int x = 0; x < cw; ++x)
        for (int k = 0; k < 3; ++k)
          ASSERT_EQ(crop[(y * cw + x) * 3 + k],
                    image.pixels[((std::size_t(y0) + y) * w + x0 + x) * 3 + k]);
    drawn.insert({y0, x0});
  }
  EXPECT_EQ(drawn, clear);  // each of ~100 windows, 4000 draws: none missed

  // Crop p comes from (seed, key, first + p) alone.
  const data::ImageSet again = crops.draw(count, 3, 1, 0);
  EXPECT_EQ(again.pixels, set.pixels);
  const data::ImageSet tail = crops.draw(5, 3, 1, 17);
  EXPECT_TRUE(std::equal(tail.pixels.begin(), tail.pixels.end(),
                         set.pixels.begin() + 17 * set.image_size()));
  EXPECT_NE(crops.draw(50, 3, 2, 0).pixels, crops.draw(50, 3, 1, 0).pixels);
  EXPECT_NE(crops.draw(50, 4, 1, 0).pixels, crops.draw(50, 3, 1, 0).pixels);
}

TEST(ClearCrops, NearKeepsTheClearWindowsWithDamageWithinReach) {
  const int h = 24, w = 26, ch = 6, cw = 7;
  const data::Image image = coordinates(h, w);
  const std::vector<float> mask = spots(h, w);
  data::PatchOptions options;
  options.h = ch, options.w = cw;
  for (int near : {1, 3}) {
    // Naively: a clear window whose frame of `near` pixels around it (inside the image) holds a
    // damaged pixel.
    std::set<std::pair<int, int>> wanted;
    for (int y = 0; y + ch <= h; ++y)
      for (int x = 0; x + cw <= w; ++x) {
        if (!window_clear(mask, w, y, x, ch, cw)) continue;
        const int y0 = std::max(0, y - near), x0 = std::max(0, x - near);
        const int y1 = std::min(h, y + ch + near), x1 = std::min(w, x + cw + near);
        if (!window_clear(mask, w, y0, x0, y1 - y0, x1 - x0)) wanted.insert({y, x});
      }
    ASSERT_GT(wanted.size(), 5u) << near;
    const data::ClearCrops crops(image, mask.data(), options, near);
    EXPECT_EQ(crops.windows(), wanted.size()) << near;
    EXPECT_LT(crops.windows(), data::ClearCrops(image, mask.data(), options).windows());
    const data::ImageSet set = crops.draw(3000, 5, 0, 0);
    std::set<std::pair<int, int>> drawn;
    for (int p = 0; p < set.n; ++p) {
      const std::uint8_t* crop = set.pixels.data() + std::size_t(p) * set.image_size();
      ASSERT_TRUE(wanted.count({crop[0], crop[1]})) << near << ": " << int(crop[0]) << ","
                                                    << int(crop[1]);
      drawn.insert({crop[0], crop[1]});
    }
    EXPECT_EQ(drawn, wanted) << near;
  }
  EXPECT_THAT(test::error_of([&] { data::ClearCrops(image, mask.data(), options, -1); }),
              HasSubstr("negative"));
}

TEST(ClearCrops, TurnedAndFlippedCropsStillHoldOnlyAClearWindow) {
  const int h = 24, w = 26, side = 6;
  const data::Image image = coordinates(h, w);
  const std::vector<float> mask = spots(h, w);
  data::PatchOptions options;
  options.h = options.w = side;
  options.augment.hflip = options.augment.vflip = options.augment.rot90 = true;
  const data::ClearCrops crops(image, mask.data(), options);
  const data::ImageSet set = crops.draw(500, 8, 0, 0);
  int moved = 0;
  for (int p = 0; p < set.n; ++p) {
    const std::uint8_t* crop = set.pixels.data() + std::size_t(p) * set.image_size();
    int y0 = h, x0 = w;
    std::set<std::pair<int, int>> seen;
    for (int i = 0; i < side * side; ++i) {
      y0 = std::min<int>(y0, crop[i * 3]), x0 = std::min<int>(x0, crop[i * 3 + 1]);
      seen.insert({crop[i * 3], crop[i * 3 + 1]});
    }
    // The crop's pixels are exactly one window's, and that window is clear.
    ASSERT_EQ(seen.size(), std::size_t(side * side));
    for (auto [y, x] : seen) ASSERT_TRUE(y < y0 + side && x < x0 + side);
    ASSERT_TRUE(window_clear(mask, w, y0, x0, side, side)) << y0 << "," << x0;
    moved += crop[0] != y0 || crop[1] != x0;
  }
  EXPECT_GT(moved, set.n / 2);  // most are turned or flipped
}

TEST(ClearCrops, RefusesZoomOblongTurnsAndAPhotoWithoutAClearWindow) {
  const data::Image image = coordinates(20, 20);
  std::vector<float> mask(400, 0.f);
  data::PatchOptions options;
  options.h = options.w = 8;
  options.augment.scale_min = 0.5f, options.augment.scale_max = 2;
  EXPECT_THAT(test::error_of([&] { data::ClearCrops(image, mask.data(), options); }),
              HasSubstr("zoom"));
  options.augment = {};
  options.augment.rot90 = true;
  options.w = 6;
  EXPECT_THAT(test::error_of([&] { data::ClearCrops(image, mask.data(), options); }),
              HasSubstr("square"));
  // A crosshair on rows and columns 9 and 10 leaves four 9x9 quadrants.
  for (int i = 0; i < 20; ++i)
    for (int line : {9, 10}) mask[line * 20 + i] = mask[i * 20 + line] = 1;
  options.h = options.w = 9;
  EXPECT_EQ(data::ClearCrops(image, mask.data(), options).windows(), 4u);
  options.h = options.w = 10;
  const data::ClearCrops crossed(image, mask.data(), options);
  EXPECT_EQ(crossed.windows(), 0u);
  EXPECT_THAT(test::error_of([&] { crossed.draw(1, 0, 0, 0); }), HasSubstr("free of damage"));
  options.h = options.w = 21;
  EXPECT_EQ(data::ClearCrops(image, mask.data(), options).windows(), 0u);
}

TEST(Adapt, NeverReadsThePixelsUnderTheDamageAndIsReproducible) {
  const nn::Model model = informed_model();
  const train::DamagedPhoto p = train::damage_photo(photo(40, 45, 3, 1), crosshair(), 2, 0, 0);
  const train::AdaptOptions options = adapt_options(4);
  const nn::Model adapted =
      train::adapt_to_photo(model, p.damaged.data(), p.mask.data(), p.dims, options, 0);
  EXPECT_NE(adapted.params(), model.params());
  bool recorded = false;
  for (const auto& [key, value] : adapted.meta())
    recorded |= key == "adapted" && value == train::describe_adapt(options);
  EXPECT_TRUE(recorded);
  EXPECT_EQ(train::describe_adapt(options), "4 steps, lr 0.003, batch 8");

  // Whatever lies under the damage (here the clean photo, there noise), the weights are the same.
  std::vector<float> other = p.damaged;
  const std::size_t hw = std::size_t(p.dims.h) * p.dims.w;
  const std::vector<float> noise = test::random_floats(other.size(), 4, 0.f, 1.f);
  int under = 0;
  for (int k = 0; k < p.dims.c; ++k)
    for (std::size_t i = 0; i < hw; ++i)
      if (p.mask[i] != 0) other[k * hw + i] = k == 0 ? p.clean[k * hw + i] : noise[k * hw + i];
  for (std::size_t i = 0; i < hw; ++i) under += p.mask[i] != 0;
  ASSERT_GT(under, 200);
  EXPECT_EQ(train::adapt_to_photo(model, other.data(), p.mask.data(), p.dims, options, 0).params(),
            adapted.params());
  // It does read the rest: one undamaged pixel changed, in the middle of a quadrant (in many
  // windows), changes them.
  const std::size_t outside = std::size_t(p.dims.h / 4) * p.dims.w + p.dims.w / 4;
  ASSERT_EQ(p.mask[outside], 0.f);
  other = p.damaged;
  other[outside] = 1 - other[outside];
  EXPECT_NE(train::adapt_to_photo(model, other.data(), p.mask.data(), p.dims, options, 0).params(),
            adapted.params());
  // The same arguments, the same weights; another photo key, others.
  EXPECT_EQ(
      train::adapt_to_photo(model, p.damaged.data(), p.mask.data(), p.dims, options, 0).params(),
      adapted.params());
  EXPECT_NE(
      train::adapt_to_photo(model, p.damaged.data(), p.mask.data(), p.dims, options, 1).params(),
      adapted.params());
}

TEST(Adapt, LowersTheLossOnThePhotosOwnCrops) {
  const nn::Model model = informed_model();
  const train::DamagedPhoto p = train::damage_photo(photo(48, 52, 3, 3), crosshair(), 2, 0, 0);
  const train::AdaptOptions options = adapt_options(60);
  const nn::Model adapted =
      train::adapt_to_photo(model, p.damaged.data(), p.mask.data(), p.dims, options, 0);
  const double before = loss_on_photo(model, p, options.training);
  const double after = loss_on_photo(adapted, p, options.training);
  EXPECT_LT(after, before * 0.95) << before << " -> " << after;
}

TEST(Adapt, RefusesNoiseDamageWithoutAMaskNoStepsAndNoClearWindow) {
  const nn::Model model = informed_model();
  data::Corruption noisy = crosshair();
  noisy.gaussian_sigma = 0.1f;
  EXPECT_THAT(test::error_of([&] { train::check_adaptable(noisy, "eval --adapt"); }),
              HasSubstr("eval --adapt: the damage"));
  EXPECT_THAT(test::error_of([&] { train::check_adaptable(data::Corruption{}, "x"); }),
              HasSubstr("no masks, lines, crosshair or strokes"));
  const train::DamagedPhoto p = train::damage_photo(photo(40, 45, 3, 1), crosshair(), 2, 0, 0);
  auto adapt = [&](const train::AdaptOptions& o, const train::DamagedPhoto& photo_) {
    return test::error_of([&] {
      train::adapt_to_photo(model, photo_.damaged.data(), photo_.mask.data(), photo_.dims, o, 0);
    });
  };
  EXPECT_THAT(adapt(adapt_options(0), p), HasSubstr("at least 1"));
  train::AdaptOptions blind_damage = adapt_options(2);
  blind_damage.training = data::Corruption{};
  EXPECT_THAT(adapt(blind_damage, p), HasSubstr("has no mask"));
  // 20x20 crossed by a 3-wide crosshair: no 16x16 window is clear.
  const train::DamagedPhoto small = train::damage_photo(photo(20, 20, 3, 1), crosshair(), 2, 0, 0);
  EXPECT_THAT(adapt(adapt_options(2), small), HasSubstr("nothing to adapt to"));
  const train::DamagedPhoto gray = train::damage_photo(photo(40, 45, 1, 1), crosshair(), 2, 0, 0);
  EXPECT_THAT(adapt(adapt_options(2), gray), HasSubstr("1 channels"));
}

TEST(Adapt, PhotoEvalScoresTheModelAdaptedToEachPhoto) {
  const std::vector<data::Image> test = {photo(40, 45, 3, 1), photo(44, 38, 3, 2)};
  const nn::Model model = informed_model();
  train::CompareOptions options;
  options.baselines = false;
  train::TileOptions tiles;
  const train::AdaptOptions adapt = adapt_options(3);
  const train::Comparison c = train::compare_photos({{"cae", &model}}, test, {"a", "b"}, {},
                                                    crosshair(), 6, options, tiles, &adapt);
  ASSERT_EQ(c.methods.size(), 3u);
  EXPECT_EQ(c.methods[2].name, "cae adapted");
  EXPECT_EQ(c.methods[2].setting, "3 steps, lr 0.003, batch 8");
  for (int i = 0; i < 2; ++i) {
    const train::DamagedPhoto p = train::damage_photo(test[i], crosshair(), 6, 0, i);
    const nn::Model adapted =
        train::adapt_to_photo(model, p.damaged.data(), p.mask.data(), p.dims, adapt, i);
    const auto out = train::denoise_tiled(adapted, p.damaged.data(), p.dims, tiles, p.mask.data());
    EXPECT_EQ(c.methods[2].per_image[i].psnr_region,
              train::score_image(out.data(), p.clean.data(), p.mask.data(), p.dims).psnr_region);
    EXPECT_NE(c.methods[2].per_image[i].psnr_region, c.methods[1].per_image[i].psnr_region);
  }
  data::Corruption noisy = crosshair();
  noisy.gaussian_sigma = 0.1f;
  EXPECT_THAT(test::error_of([&] {
                train::compare_photos({{"cae", &model}}, test, {"a", "b"}, {}, noisy, 6, options,
                                      tiles, &adapt);
              }),
              HasSubstr("adds noise"));
}

TEST(AdaptCli, EvalAndRepairAdaptAndRefuseBadValues) {
  const std::string dir = test::scratch_dir();
  fs::create_directories(dir + "/photos/test");
  data::write_png(dir + "/photos/test/a.png", photo(40, 45, 3, 1));
  data::write_png(dir + "/photos/test/b.png", photo(44, 38, 3, 2));
  nn::Model model = informed_model();
  model.meta().emplace_back("corruption", crosshair().describe());
  io::write_model_file(dir + "/m.cae", model.to_file());
  const std::string eval = "eval -m " + dir + "/m.cae --dataset " + dir + "/photos --threads 2 ";
  const auto e = test::run_cae(eval + "--no-baselines --adapt 3 --adapt-lr 0.002");
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_THAT(e.output, HasSubstr("cae adapted"));
  EXPECT_THAT(e.output, HasSubstr("3 steps, lr 0.002, batch 32"));
  const auto n = test::run_cae(eval + "--no-baselines --adapt 3 --adapt-near 4");
  ASSERT_EQ(n.status, 0) << n.output;
  EXPECT_THAT(n.output, HasSubstr("3 steps, lr 0.001, batch 32, crops within 4 px of the damage"));

  const auto r = test::run_cae("compare " + dir + "/photos/test/a.png -m " + dir +
                               "/m.cae --threads 2 --adapt 2 -o " + dir + "/fig.png");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cae adapted"));
  EXPECT_TRUE(fs::exists(dir + "/fig.png"));

  for (const std::string& bad : {eval + "--adapt -1", eval + "--adapt x",
                                 eval + "--adapt 3 --adapt-lr nan", eval + "--adapt 3 --adapt-lr 0",
                                 eval + "--adapt 3 --noise 0.1", eval + "--adapt 3 --size 16x16",
                                 eval + "--adapt 3 --adapt-near -1", eval + "--adapt-near 4"}) {
    const auto b = test::run_cae(bad);
    EXPECT_NE(b.status, 0) << bad;
    EXPECT_THAT(b.output, HasSubstr("cae: error: ")) << bad;
  }
}
