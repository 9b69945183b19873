// Tiled denoising: where the tiles fall, how they are weighted, and that a pixel covered by one
// tile comes back exactly as that tile's own forward pass gives it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/fill.h"
#include "train/tiling.h"

using namespace cae;

namespace {

nn::Model small_model() {
  nn::Model m(nn::parse_spec(nn::preset_spec("seed")), ops::Dims{1, 12, 12}, nn::LossKind::bce);
  m.init_glorot(3);
  return m;
}

// The model's output image for one tile cut at (y0, x0) out of an h×w single-channel image.
std::vector<float> tile_output(const nn::Model& m, const std::vector<float>& image, int w, int y0,
                               int x0) {
  std::vector<float> tile(144), out(144);
  for (int r = 0; r < 12; ++r)
    for (int q = 0; q < 12; ++q) tile[r * 12 + q] = image[(y0 + r) * w + x0 + q];
  auto exec = m.make_executor(ops::Backend::ref, 1, {});
  exec->forward(tile.data());
  nn::output_to_image(m.loss(), exec->output(), out.data(), 144);
  return out;
}

}  // namespace

TEST(Tiling, StartsCoverTheAxisEvenly) {
  EXPECT_EQ(train::tile_starts(12, 12, 3), (std::vector<int>{0}));
  EXPECT_EQ(train::tile_starts(5, 12, 3), (std::vector<int>{0}));
  // (30 − 3) / (12 − 3) = 3 tiles from 0 to 18: 0, 9, 18.
  EXPECT_EQ(train::tile_starts(30, 12, 3), (std::vector<int>{0, 9, 18}));
  // (31 − 3) / 9 → 4 tiles spread over 0..19: 0, 6.33, 12.67, 19 rounded.
  EXPECT_EQ(train::tile_starts(31, 12, 3), (std::vector<int>{0, 6, 13, 19}));
  EXPECT_EQ(train::tile_starts(13, 12, 3), (std::vector<int>{0, 1}));
  EXPECT_THAT(test::error_of([] { train::tile_starts(30, 12, 12); }),
              ::testing::HasSubstr("overlap 12"));
}

TEST(Tiling, WeightsRampAcrossOverlapsAndSumToOne) {
  const std::vector<int> starts = {0, 9, 18};
  const auto w0 = train::tile_weights(starts, 0, 12), w1 = train::tile_weights(starts, 1, 12);
  const auto w2 = train::tile_weights(starts, 2, 12);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(w0[i], 1.f);
  for (int i = 3; i < 9; ++i) EXPECT_EQ(w1[i], 1.f);
  // Overlap of tiles 0 and 1: positions 9, 10, 11; sin²(π/2 (i + ½) / 3) rising in tile 1.
  EXPECT_NEAR(w1[0], 0.0669873, 1e-6);  // sin²(π/12)
  EXPECT_NEAR(w1[1], 0.5, 1e-6);        // sin²(π/4)
  EXPECT_NEAR(w1[2], 0.9330127, 1e-6);  // sin²(5π/12)
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(w0[9 + i] + w1[i], 1.f, 1e-6);
    EXPECT_NEAR(w1[9 + i] + w2[i], 1.f, 1e-6);
  }
  for (int i = 3; i < 12; ++i) EXPECT_EQ(w2[i], 1.f);
}

TEST(Tiling, OneTileImageIsThePlainForwardPass) {
  const nn::Model m = small_model();
  const auto image = test::random_floats(144, 4, 0.f, 1.f);
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  const auto tiled = train::denoise_tiled(m, image.data(), ops::Dims{1, 12, 12}, opt);
  EXPECT_EQ(tiled, tile_output(m, image, 12, 0, 0));
}

TEST(Tiling, PixelsOfOneTileAreThatTilesOutputExactly) {
  // 21×30 with tiles of 12 and overlap 3: rows start at 0, 9; columns at 0, 9, 18.
  const nn::Model m = small_model();
  const int h = 21, w = 30;
  const auto image = test::random_floats(h * w, 5, 0.f, 1.f);
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  opt.overlap = 3;
  opt.batch = 4;  // two batches, the second one padded
  const auto tiled = train::denoise_tiled(m, image.data(), ops::Dims{1, h, w}, opt);
  const std::vector<int> ys = {0, 9}, xs = {0, 9, 18};
  int exact = 0;
  for (std::size_t ky = 0; ky < ys.size(); ++ky)
    for (std::size_t kx = 0; kx < xs.size(); ++kx) {
      const auto own = tile_output(m, image, w, ys[ky], xs[kx]);
      for (int r = 0; r < 12; ++r)
        for (int q = 0; q < 12; ++q) {
          const int y = ys[ky] + r, x = xs[kx] + q;
          const bool shared_row = y >= 9 && y < 12,
                     shared_col = (x >= 9 && x < 12) || (x >= 18 && x < 21);
          if (shared_row || shared_col) continue;
          ASSERT_EQ(tiled[y * w + x], own[r * 12 + q]) << y << "," << x;
          ++exact;
        }
    }
  EXPECT_EQ(exact, (21 - 3) * (30 - 6));
  // In an overlap the result is a convex blend of the two tiles' outputs.
  const auto a = tile_output(m, image, w, 0, 0), b = tile_output(m, image, w, 0, 9);
  for (int r = 0; r < 9; ++r)
    for (int x = 9; x < 12; ++x) {
      const float lo = std::min(a[r * 12 + x], b[r * 12 + x - 9]);
      const float hi = std::max(a[r * 12 + x], b[r * 12 + x - 9]);
      EXPECT_GE(tiled[r * w + x], lo - 1e-6f);
      EXPECT_LE(tiled[r * w + x], hi + 1e-6f);
    }
}

TEST(Tiling, SmallImagesArePaddedAndCropped) {
  const nn::Model m = small_model();
  const auto image = test::random_floats(7 * 5, 6, 0.f, 1.f);
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  const auto out = train::denoise_tiled(m, image.data(), ops::Dims{1, 7, 5}, opt);
  ASSERT_EQ(out.size(), 35u);
  // The padded tile repeats the last row and column; its top-left 7×5 is the answer.
  std::vector<float> padded(144);
  for (int r = 0; r < 12; ++r)
    for (int q = 0; q < 12; ++q) padded[r * 12 + q] = image[std::min(r, 6) * 5 + std::min(q, 4)];
  const auto own = tile_output(m, padded, 12, 0, 0);
  for (int r = 0; r < 7; ++r)
    for (int q = 0; q < 5; ++q) EXPECT_EQ(out[r * 5 + q], own[r * 12 + q]);
  EXPECT_THAT(test::error_of([&] {
                train::denoise_tiled(m, image.data(), ops::Dims{3, 7, 5}, opt);
              }),
              ::testing::HasSubstr("3 channels, the model takes 1"));
}

namespace {

// An informed seed model: one image channel and the mask, tiles of 12×12.
nn::Model informed_model() {
  nn::Model m(nn::parse_spec(nn::preset_spec("seed")), ops::Dims{2, 12, 12}, nn::LossKind::bce,
              /*informed=*/true);
  m.init_glorot(4);
  return m;
}

// The permutation of an h×w plane under symmetry g, written out here apart from the tiler's:
// moved[i] = plane[P[i]], moved h×w, or w×h when g (4–7) transposes.
std::vector<int> symmetry(int g, int h, int w) {
  const bool t = g & 4;
  const int mh = t ? w : h, mw = t ? h : w;
  std::vector<int> p(std::size_t(h) * w);
  for (int r = 0; r < mh; ++r)
    for (int q = 0; q < mw; ++q) {
      const int r1 = g & 2 ? mh - 1 - r : r, q1 = g & 1 ? mw - 1 - q : q;  // undo the flips
      p[r * mw + q] = t ? q1 * w + r1 : r1 * w + q1;                       // then the transpose
    }
  return p;
}

}  // namespace

TEST(Tiling, InformedModelRunsOnlyTheTilesThatHoldDamage) {
  // 21×30, tiles of 12 with overlap 3: rows start at 0, 9; columns at 0, 9, 18. Damage at (2, 2),
  // in tile (0, 0) alone, and at (15, 25), in tile (1, 2) alone.
  const nn::Model m = informed_model();
  const int h = 21, w = 30;
  const auto image = test::random_floats(h * w, 7, 0.f, 1.f);
  std::vector<float> mask(h * w, 0.f);
  mask[2 * w + 2] = mask[15 * w + 25] = 1.f;
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  opt.overlap = 3;
  train::TileStats stats;
  const auto out = train::denoise_tiled(m, image.data(), ops::Dims{1, h, w}, opt, mask.data(),
                                        &stats);
  EXPECT_EQ(stats.tiles, 6);
  EXPECT_EQ(stats.tiles_run, 2);
  for (int p = 0; p < h * w; ++p)
    if (mask[p] == 0) {
      ASSERT_EQ(out[p], image[p]) << p;
    }
  // Each damaged pixel is its own tile's forward pass on the image and the mask.
  for (auto [y0, x0, y, x] : {std::array{0, 0, 2, 2}, std::array{9, 18, 15, 25}}) {
    std::vector<float> tile(2 * 144);
    for (int r = 0; r < 12; ++r)
      for (int q = 0; q < 12; ++q) {
        tile[r * 12 + q] = image[(y0 + r) * w + x0 + q];
        tile[144 + r * 12 + q] = mask[(y0 + r) * w + x0 + q];
      }
    auto exec = m.make_executor(ops::Backend::ref, 1, {});
    exec->forward(tile.data());
    float own = 0;
    nn::output_to_image(m.loss(), exec->output() + (y - y0) * 12 + (x - x0), &own, 1);
    EXPECT_EQ(out[y * w + x], own) << y << "," << x;
    EXPECT_NE(own, image[y * w + x]);
  }
}

// An informed repair runs in windows (groups of the tiles that touch the damage, each filled on
// its own with a margin): against the whole photo done the plain way here (the whole photo's
// fill; every tile that holds damage run on its own, in row-major order; the blend; the
// undamaged pixels kept), bit for bit, with damage in many places: dots far apart, a diagonal
// stroke across many tiles, a run along an edge, a corner, two dots whose tiles only touch.
TEST(Tiling, InformedWindowsEqualTheWholePhotoDoneThePlainWay) {
  const int h = 90, w = 131, t = 16;
  nn::Model m(nn::parse_spec("conv 6 relu\nconv channels"), ops::Dims{3 + 1, t, t},
              nn::LossKind::mse, true);
  m.init_glorot(4);
  m.set_fill("navier-stokes r=3");
  const ops::Dims d{3, h, w};
  const std::size_t plane = std::size_t(h) * w;
  const auto image = test::random_floats(d.size(), 9, 0.f, 1.f);
  std::vector<float> mask(plane, 0.f);
  auto mark = [&](int y, int x) { mask[std::size_t(y) * w + x] = 1.f; };
  mark(5, 5), mark(70, 20), mark(40, 125);                 // dots
  for (int x = 30; x < 100; ++x) mark(20 + x / 3, x);      // a stroke
  for (int x = 50; x < 60; ++x) mark(h - 1, x);            // along the bottom edge
  mark(0, w - 1), mark(1, w - 1), mark(0, w - 2);          // the top right corner
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  opt.overlap = 4;
  opt.batch = 5;  // several batches, each mixing windows
  train::TileStats stats;
  const auto out = train::denoise_tiled(m, image.data(), d, opt, mask.data(), &stats);

  std::vector<float> filled(d.size());
  train::apply_fill(*m.fill_settings(), image.data(), filled.data(), 1, d, mask.data());
  const std::vector<int> ys = train::tile_starts(h, t, 4), xs = train::tile_starts(w, t, 4);
  std::vector<float> sum(d.size(), 0.f), weight(plane, 0.f);
  int run = 0;
  auto exec = m.make_executor(ops::Backend::ref, 1, {});
  for (int i = 0; i < int(ys.size()); ++i)
    for (int j = 0; j < int(xs.size()); ++j) {
      std::vector<float> tile(4 * t * t), y(3 * t * t), shifted(3 * t * t);
      bool damaged = false;
      for (int r = 0; r < t; ++r)
        for (int q = 0; q < t; ++q) {
          const std::size_t p = std::size_t(ys[i] + r) * w + xs[j] + q;
          for (int c = 0; c < 3; ++c) tile[c * t * t + r * t + q] = filled[c * plane + p];
          tile[3 * t * t + r * t + q] = mask[p];
          damaged = damaged || mask[p] != 0;
        }
      if (!damaged) continue;
      ++run;
      exec->forward(tile.data());
      for (int k = 0; k < 3 * t * t; ++k) shifted[k] = exec->output()[k] + tile[k];
      nn::output_to_image(m.loss(), shifted.data(), y.data(), y.size());
      const auto wy = train::tile_weights(ys, i, t), wx = train::tile_weights(xs, j, t);
      for (int r = 0; r < t; ++r)
        for (int q = 0; q < t; ++q) {
          const std::size_t p = std::size_t(ys[i] + r) * w + xs[j] + q;
          weight[p] += wy[r] * wx[q];
          for (int c = 0; c < 3; ++c) sum[c * plane + p] += wy[r] * wx[q] * y[c * t * t + r * t + q];
        }
    }
  EXPECT_EQ(stats.tiles, int(ys.size() * xs.size()));
  EXPECT_EQ(stats.tiles_run, run);
  std::size_t differ = 0, changed = 0;
  for (std::size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) {
      const float want = mask[p] != 0 ? sum[c * plane + p] / weight[p] : image[c * plane + p];
      differ += out[c * plane + p] != want;
      changed += out[c * plane + p] != image[c * plane + p];
    }
  EXPECT_EQ(differ, 0u);
  EXPECT_GT(changed, 100u);
}

TEST(Tiling, SelfEnsembleIsTheMeanOfTheRepairsOfTheTurnedImage) {
  // Not square, several tiles, and informed: each symmetry moves the image and its mask, the
  // transposing ones onto a 30×21 grid of other tiles.
  const nn::Model m = informed_model();
  const int h = 21, w = 30;
  const auto image = test::random_floats(h * w, 8, 0.f, 1.f);
  std::vector<float> mask(h * w, 0.f);
  for (int p = 0; p < h * w; p += 7) mask[p] = 1.f;
  train::TileOptions opt;
  opt.backend = ops::Backend::ref;
  opt.overlap = 3;
  for (int n : {2, 4, 8}) {
    std::vector<float> expected(h * w, 0.f);
    for (int g = 0; g < n; ++g) {
      const std::vector<int> p = symmetry(g, h, w);
      std::vector<float> moved(h * w), moved_mask(h * w);
      for (int i = 0; i < h * w; ++i) moved[i] = image[p[i]], moved_mask[i] = mask[p[i]];
      const ops::Dims gd = g & 4 ? ops::Dims{1, w, h} : ops::Dims{1, h, w};
      const auto out = train::denoise_tiled(m, moved.data(), gd, opt, moved_mask.data());
      for (int i = 0; i < h * w; ++i) expected[p[i]] += out[i] / float(n);
    }
    train::TileOptions ens = opt;
    ens.ensemble = n;
    train::TileStats stats;
    const auto got = train::denoise_tiled(m, image.data(), ops::Dims{1, h, w}, ens, mask.data(),
                                          &stats);
    EXPECT_EQ(stats.tiles, n * 6);
    for (int i = 0; i < h * w; ++i)
      ASSERT_NEAR(got[i], expected[i], 2e-6f) << "ensemble " << n << " pixel " << i;
    if (n == 8) {
      const auto single = train::denoise_tiled(m, image.data(), ops::Dims{1, h, w}, opt,
                                               mask.data());
      EXPECT_NE(got, single) << "the symmetries' repairs differ, so their mean is no one of them";
    }
  }
  for (int bad : {0, 3, 16}) {
    train::TileOptions ens = opt;
    ens.ensemble = bad;
    EXPECT_THAT(test::error_of([&] {
                  train::denoise_tiled(m, image.data(), ops::Dims{1, h, w}, ens, mask.data());
                }),
                ::testing::HasSubstr("it must be 1, 2, 4 or 8"));
  }
}
