// Corruption models: the statistics of each kind of damage, clipping, determinism per image,
// and the text form stored in model files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "data/corrupt.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

data::Corruption off() {
  data::Corruption c;
  c.gaussian_sigma = 0;
  return c;
}

std::vector<float> run(const data::Corruption& c, const std::vector<float>& clean, int count,
                       ops::Dims d, std::uint64_t seed = 7, std::uint64_t first = 0) {
  std::vector<float> noisy(clean.size());
  data::corrupt(c, clean.data(), noisy.data(), count, d, seed, Stream::train_noise, 3, first);
  return noisy;
}

struct Moments {
  double mean = 0, var = 0;
};

Moments moments(const std::vector<float>& x) {
  Moments m;
  for (float v : x) m.mean += v;
  m.mean /= double(x.size());
  for (float v : x) m.var += (v - m.mean) * (v - m.mean);
  m.var /= double(x.size());
  return m;
}

}  // namespace

TEST(Corrupt, GaussianIsTheKeyedStreamClippedPerElement) {
  // The historical rule, worked here from the stream directly: clip(x + sigma N, 0, 1).
  const ops::Dims d{1, 5, 4};
  std::vector<float> clean = test::random_floats(2 * d.size(), 1, 0.f, 1.f);
  data::Corruption c;
  c.gaussian_sigma = 0.3f;
  const auto noisy = run(c, clean, 2, d, 11, 40);
  for (int b = 0; b < 2; ++b) {
    Rng rng = make_rng(11, Stream::train_noise, 3, 40 + b);
    for (std::size_t i = 0; i < d.size(); ++i) {
      const std::size_t k = b * d.size() + i;
      EXPECT_EQ(noisy[k], std::clamp(clean[k] + 0.3f * rng.normal(), 0.f, 1.f)) << k;
    }
  }
}

// A range of sigma: each image's level drawn first from its own stream, uniform in [sigma, max],
// then its noise; the text round-trips and a max below sigma is refused.
TEST(Corrupt, AGaussianRangeDrawsEachImagesSigmaFirst) {
  const ops::Dims d{1, 6, 5};
  std::vector<float> clean = test::random_floats(3 * d.size(), 2, 0.f, 1.f);
  data::Corruption c = data::parse_corruption("gaussian sigma=0.02 max=0.2");
  EXPECT_EQ(c.describe(), "gaussian sigma=0.02 max=0.2");
  EXPECT_TRUE(c.noisy());
  const auto noisy = run(c, clean, 3, d, 11, 40);
  for (int b = 0; b < 3; ++b) {
    Rng rng = make_rng(11, Stream::train_noise, 3, 40 + b);
    const float sigma = 0.02f + (0.2f - 0.02f) * rng.uniform();
    EXPECT_GE(sigma, 0.02f);
    EXPECT_LE(sigma, 0.2f);
    for (std::size_t i = 0; i < d.size(); ++i) {
      const std::size_t k = b * d.size() + i;
      EXPECT_EQ(noisy[k], std::clamp(clean[k] + sigma * rng.normal(), 0.f, 1.f)) << k;
    }
  }
  // From 0: an image may draw almost no noise at all, and the model is still noise.
  const data::Corruption zero = data::parse_corruption("gaussian sigma=0 max=0.196");
  EXPECT_EQ(zero.describe(), "gaussian sigma=0 max=0.196");
  EXPECT_TRUE(zero.noisy());
  EXPECT_FALSE(zero.spatial());
  // The spread of levels: over many images the noise's variance is that of a uniform sigma.
  std::vector<float> flat(200 * 100, 0.5f);
  const auto many = run(zero, flat, 200, {1, 10, 10}, 5, 0);
  const Moments m = moments(many);
  EXPECT_NEAR(m.var, 0.196 * 0.196 / 3, 0.0015);  // E[sigma^2] for sigma ~ U(0, 0.196)
  EXPECT_THAT(test::error_of([] { data::parse_corruption("gaussian sigma=0.3 max=0.1").validate(); }),
              HasSubstr("gaussian max must be 0 (a fixed sigma) or >= sigma"));
}

TEST(Corrupt, GaussianMeanAndVariance) {
  const ops::Dims d{1, 100, 100};
  std::vector<float> clean(d.size(), 0.5f);
  data::Corruption c;
  c.gaussian_sigma = 0.1f;  // clipping at 5 sigma touches ~6e-7 of the draws
  const Moments m = moments(run(c, clean, 1, d));
  // 10^4 draws: the mean's standard error is 0.001, the variance's about 1.4e-4.
  EXPECT_NEAR(m.mean, 0.5, 0.004);
  EXPECT_NEAR(m.var, 0.01, 0.0006);
}

TEST(Corrupt, GaussianClipsToTheUnitInterval) {
  const ops::Dims d{1, 100, 100};
  std::vector<float> clean(d.size(), 0.f);
  data::Corruption c;
  c.gaussian_sigma = 0.5f;
  const auto noisy = run(c, clean, 1, d);
  int zeros = 0;
  for (float v : noisy) {
    ASSERT_GE(v, 0.f);
    ASSERT_LE(v, 1.f);
    zeros += v == 0.f;
  }
  // Half of N(0, 0.25) is negative and clips to exactly 0.
  EXPECT_NEAR(zeros / double(d.size()), 0.5, 0.02);
  // Mean of clip(0.5 Z, 0, 1) = 0.5 (phi(0) - phi(2)) + P(Z > 2) = 0.5 (0.39894 - 0.05399) +
  // 0.02275 = 0.19523.
  EXPECT_NEAR(moments(noisy).mean, 0.19523, 0.006);
}

TEST(Corrupt, SpeckleScalesWithTheSignal) {
  const ops::Dims d{1, 100, 100};
  std::vector<float> clean(d.size(), 0.5f);
  clean[0] = 0.f;
  data::Corruption c = off();
  c.speckle_sigma = 0.2f;
  auto noisy = run(c, clean, 1, d);
  EXPECT_EQ(noisy[0], 0.f);  // no signal, no speckle
  noisy.erase(noisy.begin());
  const Moments m = moments(noisy);
  EXPECT_NEAR(m.mean, 0.5, 0.004);
  EXPECT_NEAR(m.var, 0.01, 0.0006);  // (0.5 * 0.2)^2
}

TEST(Corrupt, SaltAndPepperHitsTheFractionOfWholePixels) {
  const ops::Dims d{3, 100, 100};
  std::vector<float> clean(d.size(), 0.5f);
  data::Corruption c = off();
  c.salt_pepper = 0.2f;
  const auto noisy = run(c, clean, 1, d);
  const std::size_t hw = 100 * 100;
  int salt = 0, pepper = 0;
  for (std::size_t p = 0; p < hw; ++p) {
    const float v = noisy[p];
    ASSERT_TRUE(v == 0.5f || v == 0.f || v == 1.f) << v;
    ASSERT_EQ(noisy[hw + p], v) << "every channel of a pixel changes together";
    ASSERT_EQ(noisy[2 * hw + p], v);
    salt += v == 1.f;
    pepper += v == 0.f;
  }
  // 10^4 pixels: the hit fraction's standard error is 0.004.
  EXPECT_NEAR((salt + pepper) / double(hw), 0.2, 0.016);
  EXPECT_NEAR(salt / double(salt + pepper), 0.5, 0.05);
}

TEST(Corrupt, OneMaskCoversExactlyItsRectangle) {
  const ops::Dims d{2, 20, 20};
  std::vector<float> clean(d.size(), 0.5f);
  data::Corruption c = off();
  c.masks = 1;
  c.mask_min = c.mask_max = 5;
  c.mask_value = 0.f;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const auto noisy = run(c, clean, 1, d, seed);
    int count = 0, y0 = 99, y1 = -1, x0 = 99, x1 = -1;
    for (int y = 0; y < 20; ++y)
      for (int x = 0; x < 20; ++x) {
        const float v = noisy[y * 20 + x];
        ASSERT_EQ(noisy[400 + y * 20 + x], v);
        if (v == 0.f) {
          ++count;
          y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
        } else {
          ASSERT_EQ(v, 0.5f);
        }
      }
    EXPECT_EQ(count, 25) << "masked fraction 25/400";
    EXPECT_EQ(y1 - y0, 4);
    EXPECT_EQ(x1 - x0, 4);
  }
}

TEST(Corrupt, ManyMasksCoverTheExpectedFraction) {
  // Side lengths uniform in [2, 4]: mean area E[h] E[w] = 9. Four rectangles on 32x32 overlap
  // little, so the masked fraction over 4000 images lies a little below 4 * 9 / 1024 = 0.0352.
  const ops::Dims d{1, 32, 32};
  const int n = 4000;
  std::vector<float> clean(n * d.size(), 1.f);
  data::Corruption c = off();
  c.masks = 4;
  c.mask_min = 2, c.mask_max = 4;
  const auto noisy = run(c, clean, n, d);
  const double fraction = std::count(noisy.begin(), noisy.end(), 0.f) / double(noisy.size());
  EXPECT_LT(fraction, 0.0352);
  EXPECT_GT(fraction, 0.030);
}

TEST(Corrupt, CrosshairWithoutJitterCrossesTheCentre) {
  const ops::Dims d{1, 9, 9};
  std::vector<float> clean(d.size(), 0.f);
  data::Corruption c = off();
  c.crosshair = true;
  c.crosshair_jitter = 0;
  c.line_value = 0.75f;
  const auto noisy = run(c, clean, 1, d);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 9; ++x)
      EXPECT_EQ(noisy[y * 9 + x], (y == 4 || x == 4) ? 0.75f : 0.f) << y << "," << x;
}

TEST(Corrupt, CrosshairJitterAndThicknessStayInRange) {
  const ops::Dims d{1, 16, 16};
  std::vector<float> clean(d.size(), 0.f);
  data::Corruption c = off();
  c.crosshair = true;
  c.crosshair_jitter = 2;
  c.line_thickness = 2;
  std::vector<int> rows_seen(16, 0);
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const auto noisy = run(c, clean, 1, d, seed);
    // A full row set to 1 is the horizontal band; the centre band starts at (16 - 2) / 2 = 7.
    std::vector<int> full_rows;
    for (int y = 0; y < 16; ++y)
      if (std::all_of(noisy.begin() + y * 16, noisy.begin() + y * 16 + 16,
                      [](float v) { return v == 1.f; }))
        full_rows.push_back(y);
    ASSERT_EQ(full_rows.size(), 2u);
    ASSERT_EQ(full_rows[1], full_rows[0] + 1);
    ASSERT_GE(full_rows[0], 5);
    ASSERT_LE(full_rows[0], 9);
    ++rows_seen[full_rows[0]];
  }
  for (int y = 5; y <= 9; ++y) EXPECT_GT(rows_seen[y], 20) << "offset " << y - 7;
}

TEST(Corrupt, LinesSpanTheImage) {
  const ops::Dims d{1, 12, 10};
  std::vector<float> clean(d.size(), 0.f);
  data::Corruption c = off();
  c.lines = 1;
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    const auto noisy = run(c, clean, 1, d, seed);
    const auto ones = std::count(noisy.begin(), noisy.end(), 1.f);
    EXPECT_TRUE(ones == 10 || ones == 12) << ones;  // one full row or one full column
  }
}

TEST(Corrupt, EachImageDependsOnlyOnItsOwnIndex) {
  const ops::Dims d{3, 8, 8};
  std::vector<float> clean = test::random_floats(5 * d.size(), 2, 0.f, 1.f);
  data::Corruption c = data::parse_corruption(
      "gaussian sigma=0.2 + speckle sigma=0.1 + salt-pepper fraction=0.05 + masks count=2 + "
      "lines count=1 + crosshair");
  const auto all = run(c, clean, 5, d, 9, 100);
  std::vector<float> third(clean.begin() + 2 * d.size(), clean.begin() + 3 * d.size());
  const auto alone = run(c, third, 1, d, 9, 102);
  EXPECT_TRUE(std::equal(alone.begin(), alone.end(), all.begin() + 2 * d.size()));
  const auto other_seed = run(c, third, 1, d, 10, 102);
  EXPECT_FALSE(std::equal(alone.begin(), alone.end(), other_seed.begin()));
}

// The mask marks exactly the pixels that masks, lines and the crosshair covered, and asking for
// it changes no draw. On a clean image of 0.5 with noise of sigma 0.05, only the damage (0 for
// masks, 1 for lines) can give a sample of exactly 0 or 1 (noise would need 10 sigma).
TEST(Corrupt, TheMaskMarksThePixelsMasksLinesAndTheCrosshairCovered) {
  const ops::Dims d{3, 24, 20};
  const int n = 6, hw = 24 * 20;
  const std::vector<float> random = test::random_floats(n * d.size(), 4, 0.f, 1.f);
  const data::Corruption all = data::parse_corruption(
      "gaussian sigma=0.1 + salt-pepper fraction=0.05 + masks count=2 + lines count=1 + "
      "crosshair");
  std::vector<float> plain(random.size()), with_mask(random.size()), mask(n * hw);
  data::corrupt(all, random.data(), plain.data(), n, d, 5, Stream::test_noise, 0, 10);
  data::corrupt(all, random.data(), with_mask.data(), n, d, 5, Stream::test_noise, 0, 10,
                mask.data());
  EXPECT_EQ(plain, with_mask) << "the mask changes no draw";

  const data::Corruption c = data::parse_corruption(
      "gaussian sigma=0.05 + masks count=2 min=3 max=6 value=0 + lines count=1 thickness=2 "
      "value=1 + crosshair thickness=3");
  const std::vector<float> clean(n * d.size(), 0.5f);
  std::vector<float> noisy(clean.size());
  std::fill(mask.begin(), mask.end(), -1.f);
  data::corrupt(c, clean.data(), noisy.data(), n, d, 5, Stream::test_noise, 0, 10, mask.data());
  int covered = 0;
  for (int b = 0; b < n; ++b)
    for (int p = 0; p < hw; ++p) {
      const float m = mask[std::size_t(b) * hw + p];
      ASSERT_TRUE(m == 0.f || m == 1.f) << m;
      for (int ch = 0; ch < 3; ++ch) {
        const float v = noisy[(std::size_t(b) * 3 + ch) * hw + p];
        ASSERT_EQ(m == 1.f, v == 0.f || v == 1.f) << "image " << b << " pixel " << p;
      }
      covered += m == 1.f;
    }
  EXPECT_GT(covered, n * (24 + 20) * 3 / 2) << "the crosshair alone covers more than this";
}

TEST(Corrupt, TheMaskChannelFollowsEachImagesPlanes) {
  const ops::Dims d{2, 3, 4};
  const std::vector<float> noisy = test::random_floats(3 * d.size(), 1, 0.f, 1.f);
  const std::vector<float> mask = test::random_floats(3 * 12, 2, 0.f, 1.f);
  std::vector<float> out(3 * 36);
  data::with_mask_channel(noisy.data(), mask.data(), 3, d, out.data());
  for (int b = 0; b < 3; ++b)
    for (int ch = 0; ch < 3; ++ch)
      for (int p = 0; p < 12; ++p)
        EXPECT_EQ(out[(b * 3 + ch) * 12 + p],
                  ch < 2 ? noisy[(b * 2 + ch) * 12 + p] : mask[b * 12 + p]);
}

TEST(Corrupt, KeepUndamagedRestoresEveryPixelOutsideTheMask) {
  const ops::Dims d{3, 4, 5};
  const std::vector<float> damaged = test::random_floats(2 * d.size(), 1, 0.f, 1.f);
  const std::vector<float> repair = test::random_floats(2 * d.size(), 2, 0.f, 1.f);
  std::vector<float> mask(2 * 20, 0.f);
  mask[3] = mask[20 + 7] = mask[20 + 19] = 1.f;
  std::vector<float> out = repair;
  data::keep_undamaged(damaged.data(), mask.data(), 2, d, out.data());
  for (int b = 0; b < 2; ++b)
    for (int ch = 0; ch < 3; ++ch)
      for (int p = 0; p < 20; ++p) {
        const std::size_t i = (std::size_t(b) * 3 + ch) * 20 + p;
        EXPECT_EQ(out[i], mask[b * 20 + p] == 1.f ? repair[i] : damaged[i]) << b << ch << p;
      }
}

TEST(Corrupt, DescribeKeepsTheHistoricalGaussianText) {
  EXPECT_EQ(data::Corruption{}.describe(), "gaussian sigma=0.5");
  EXPECT_EQ(off().describe(), "gaussian sigma=0");
  data::Corruption c;
  c.gaussian_sigma = 0.3f;
  EXPECT_EQ(c.describe(), "gaussian sigma=0.3");
}

TEST(Corrupt, TextRoundTrips) {
  data::Corruption c;
  c.gaussian_sigma = 0.25f;
  c.speckle_sigma = 0.1f;
  c.salt_pepper = 0.05f;
  c.masks = 3, c.mask_min = 2, c.mask_max = 6, c.mask_value = 1.f;
  c.lines = 2, c.crosshair = true, c.line_thickness = 2, c.crosshair_jitter = 3;
  c.line_value = 0.5f;
  const std::string text = c.describe();
  EXPECT_EQ(text,
            "gaussian sigma=0.25 + speckle sigma=0.1 + salt-pepper fraction=0.05 + masks count=3 "
            "min=2 max=6 value=1 + lines count=2 thickness=2 value=0.5 + crosshair thickness=2 "
            "jitter=3 value=0.5");
  const data::Corruption back = data::parse_corruption(text);
  EXPECT_EQ(back.describe(), text);
  EXPECT_EQ(back.masks, 3);
  EXPECT_EQ(back.crosshair_jitter, 3);
  EXPECT_EQ(data::parse_corruption("gaussian sigma=0.5").describe(), "gaussian sigma=0.5");
  EXPECT_EQ(data::parse_corruption("none").describe(), "gaussian sigma=0");
  EXPECT_EQ(data::parse_corruption("masks").masks, 1);
  EXPECT_EQ(data::parse_corruption("masks").gaussian_sigma, 0.f);
}

TEST(Corrupt, BadTextIsRejectedWithTheReason) {
  using test::error_of;
  EXPECT_THAT(error_of([] { data::parse_corruption("gausian sigma=0.5"); }),
              HasSubstr("unknown model 'gausian'"));
  EXPECT_THAT(error_of([] { data::parse_corruption("gaussian sigma=abc"); }),
              HasSubstr("sigma=abc is not a number"));
  EXPECT_THAT(error_of([] { data::parse_corruption("masks count=1.5"); }),
              HasSubstr("not a whole number"));
  EXPECT_THAT(error_of([] { data::parse_corruption("masks size=3"); }),
              HasSubstr("unknown key 'size'"));
  EXPECT_THAT(error_of([] { data::parse_corruption("masks min=5 max=3"); }),
              HasSubstr("masks max must be >= min (5), found 3"));
  EXPECT_THAT(error_of([] { data::parse_corruption("salt-pepper fraction=1.5"); }),
              HasSubstr("salt-pepper fraction must be in [0, 1], found 1.5"));
  EXPECT_THAT(error_of([] { data::parse_corruption("gaussian + gaussian"); }),
              HasSubstr("appears twice"));
  EXPECT_THAT(error_of([] { data::parse_corruption(""); }), HasSubstr("empty"));
}

namespace {

// The pixels (y, x) of image 0's first channel that hold exactly value.
std::vector<std::pair<int, int>> pixels_of(const std::vector<float>& image, ops::Dims d,
                                           float value) {
  std::vector<std::pair<int, int>> out;
  for (int y = 0; y < d.h; ++y)
    for (int x = 0; x < d.w; ++x)
      if (image[std::size_t(y) * d.w + x] == value) out.emplace_back(y, x);
  return out;
}

// The width of a set of pixels: over directions a degree apart, the least extent of their
// centres across the direction, plus the one pixel the centres stand for. A straight band of
// width w measures w up to the grid's rounding.
double caliper_width(const std::vector<std::pair<int, int>>& pixels) {
  double least = 1e9;
  for (int degree = 0; degree < 180; ++degree) {
    const double a = degree * std::numbers::pi / 180, ny = std::cos(a), nx = -std::sin(a);
    double lo = 1e9, hi = -1e9;
    for (const auto& [y, x] : pixels) {
      const double v = y * ny + x * nx;
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
    least = std::min(least, hi - lo + 1);
  }
  return least;
}

bool touches_border(const std::vector<std::pair<int, int>>& pixels, ops::Dims d) {
  return std::any_of(pixels.begin(), pixels.end(), [&](const auto& p) {
    return p.first == 0 || p.second == 0 || p.first == d.h - 1 || p.second == d.w - 1;
  });
}

}  // namespace

TEST(Corrupt, StrokesTextRoundTrips) {
  const data::Corruption named = data::parse_corruption("strokes");
  EXPECT_EQ(named.strokes, 1);
  EXPECT_EQ(named.describe(), "strokes count=1 min=4 max=8 vertices=5 length=16 value=1");
  EXPECT_TRUE(named.spatial());
  const std::string text =
      "gaussian sigma=0.1 + masks count=2 min=4 max=8 value=0 + crosshair thickness=3 jitter=2 "
      "value=1 + strokes count=4 min=5 max=30 vertices=3 length=40 value=0.25";
  const data::Corruption c = data::parse_corruption(text);
  EXPECT_EQ(c.describe(), text);
  EXPECT_EQ(c.strokes, 4);
  EXPECT_EQ(c.stroke_min, 5);
  EXPECT_EQ(c.stroke_max, 30);
  EXPECT_EQ(c.stroke_vertices, 3);
  EXPECT_EQ(c.stroke_length, 40);
  EXPECT_EQ(c.stroke_value, 0.25f);
  EXPECT_EQ(data::parse_corruption("strokes count=0").describe(), "gaussian sigma=0");
  EXPECT_FALSE(data::parse_corruption("strokes count=0").spatial());
}

TEST(Corrupt, BadStrokesAreRejectedWithTheReason) {
  using test::error_of;
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes count=-1"); }),
              HasSubstr("strokes count must be >= 0, found -1"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes min=0"); }),
              HasSubstr("strokes min must be >= 1, found 0"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes min=9 max=3"); }),
              HasSubstr("strokes max must be >= min (9), found 3"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes vertices=0"); }),
              HasSubstr("strokes vertices must be >= 1, found 0"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes length=0"); }),
              HasSubstr("strokes length must be >= 1, found 0"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes value=1.5"); }),
              HasSubstr("strokes value must be in [0, 1], found 1.5"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes width=3"); }),
              HasSubstr("unknown key 'width'"));
  EXPECT_THAT(error_of([] { data::parse_corruption("strokes count=2.5"); }),
              HasSubstr("not a whole number"));
  data::Corruption c = off();
  c.strokes = 1, c.stroke_min = 0;
  EXPECT_THAT(error_of([&] { c.validate(); }), HasSubstr("strokes min must be >= 1"));
}

// The mask marks exactly the pixels a stroke changed when its value differs from the image, in
// every channel, whatever the value.
TEST(Corrupt, TheMaskIsExactlyThePixelsStrokesPainted) {
  const ops::Dims d{3, 40, 36};
  const int n = 8, hw = 40 * 36;
  const std::vector<float> clean(n * d.size(), 0.5f);
  for (const char* text : {"strokes count=3 min=2 max=7 value=1", "strokes count=2 value=0",
                           "strokes count=1 min=1 max=1 vertices=1 value=0.75"}) {
    const data::Corruption c = data::parse_corruption(text);
    std::vector<float> noisy(clean.size()), mask(n * hw, -1.f);
    data::corrupt(c, clean.data(), noisy.data(), n, d, 3, Stream::train_noise, 0, 0, mask.data());
    int painted = 0;
    for (int b = 0; b < n; ++b)
      for (int p = 0; p < hw; ++p) {
        const float m = mask[std::size_t(b) * hw + p];
        ASSERT_TRUE(m == 0.f || m == 1.f) << m;
        for (int ch = 0; ch < 3; ++ch) {
          const float v = noisy[(std::size_t(b) * 3 + ch) * hw + p];
          ASSERT_EQ(v, m == 1.f ? c.stroke_value : 0.5f)
              << text << " image " << b << " pixel " << p;
        }
        painted += m == 1.f;
      }
    EXPECT_GT(painted, 0) << text;
  }
}

// Each stroke's width, measured across its one segment, lies in [min, max] up to the grid's
// rounding: the caliper width of a band of fixed width w measured w - 0.3 to w + 1.1 over 300
// strokes of each w from 2 to 12. Both ends of the range are drawn.
TEST(Corrupt, StrokeWidthsStayInTheirRange) {
  const ops::Dims d{1, 64, 64};
  const std::vector<float> clean(d.size(), 0.f);
  data::Corruption c = data::parse_corruption("strokes min=3 max=9 vertices=2 length=20");
  double narrowest = 1e9, widest = 0;
  int inside = 0;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const auto painted = pixels_of(run(c, clean, 1, d, seed), d, 1.f);
    ASSERT_FALSE(painted.empty()) << "the start lies inside and is at least 3 px wide";
    if (touches_border(painted, d)) continue;  // clipped: its width is not the whole band's
    ++inside;
    const double width = caliper_width(painted);
    ASSERT_GE(width, 3 - 0.5) << "seed " << seed;
    ASSERT_LE(width, 9 + 1.25) << "seed " << seed;
    narrowest = std::min(narrowest, width), widest = std::max(widest, width);
  }
  EXPECT_GT(inside, 150);
  EXPECT_LT(narrowest, 4.1);
  EXPECT_GT(widest, 8.7);
}

// A stroke is one connected band: its segments meet at round joints.
TEST(Corrupt, AStrokeAwayFromTheBorderIsOneConnectedBand) {
  const ops::Dims d{1, 96, 96};
  const std::vector<float> clean(d.size(), 0.f);
  const data::Corruption c = data::parse_corruption("strokes min=1 max=4 vertices=6 length=12");
  int checked = 0;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    const auto image = run(c, clean, 1, d, seed);
    const auto painted = pixels_of(image, d, 1.f);
    if (painted.empty() || touches_border(painted, d)) continue;
    ++checked;
    // Flood fill (8-neighbours) from the first painted pixel reaches every painted one.
    std::vector<char> seen(d.size(), 0);
    std::vector<std::pair<int, int>> todo{painted[0]};
    seen[std::size_t(painted[0].first) * d.w + painted[0].second] = 1;
    std::size_t reached = 0;
    while (!todo.empty()) {
      const auto [y, x] = todo.back();
      todo.pop_back();
      ++reached;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int ny = y + dy, nx = x + dx;
          if (ny < 0 || nx < 0 || ny >= d.h || nx >= d.w) continue;
          const std::size_t p = std::size_t(ny) * d.w + nx;
          if (seen[p] || image[p] != 1.f) continue;
          seen[p] = 1;
          todo.emplace_back(ny, nx);
        }
    }
    EXPECT_EQ(reached, painted.size()) << "seed " << seed;
  }
  EXPECT_GT(checked, 50);
}

// A stroke that runs off the image is cut there, not wrapped to the other side: one straight
// segment covers a band whose rows and columns are each one unbroken run.
TEST(Corrupt, AStrokeAtTheBorderIsClippedNotWrapped) {
  const ops::Dims d{1, 24, 24};
  const std::vector<float> clean(d.size(), 0.f);
  const data::Corruption c = data::parse_corruption("strokes min=3 max=5 vertices=2 length=30");
  int at_border = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const auto painted = pixels_of(run(c, clean, 1, d, seed), d, 1.f);
    at_border += touches_border(painted, d);
    std::vector<int> rows(d.h, 0), columns(d.w, 0);
    for (const auto& [y, x] : painted) rows[y] = columns[x] = 1;
    for (const auto* used : {&rows, &columns}) {
      const auto first = std::find(used->begin(), used->end(), 1);
      const auto last = std::find(used->rbegin(), used->rend(), 1).base();
      EXPECT_TRUE(std::all_of(first, last, [](int u) { return u == 1; })) << "seed " << seed;
    }
  }
  EXPECT_GT(at_border, 100) << "30 px segments in a 24 px image mostly reach its edge";
}

// Strokes come from the image's own stream, after every other model: the same seed and index
// give the same strokes in any batch, and adding strokes leaves every other pixel as it was.
TEST(Corrupt, StrokesDependOnlyOnTheImageAndChangeNoOtherDamage) {
  const ops::Dims d{3, 20, 24};
  const std::vector<float> clean = test::random_floats(5 * d.size(), 6, 0.2f, 0.8f);
  const data::Corruption c = data::parse_corruption("strokes count=3 min=2 max=5");
  const auto all = run(c, clean, 5, d, 9, 100);
  const std::vector<float> third(clean.begin() + 2 * d.size(), clean.begin() + 3 * d.size());
  const auto alone = run(c, third, 1, d, 9, 102);
  EXPECT_TRUE(std::equal(alone.begin(), alone.end(), all.begin() + 2 * d.size()));
  EXPECT_NE(alone, run(c, third, 1, d, 10, 102));
  EXPECT_EQ(alone, run(c, third, 1, d, 9, 102));

  // The strokes paint 1: wherever the run with them is not 1, it matches the run without them.
  const data::Corruption without = data::parse_corruption(
      "gaussian sigma=0.05 + masks count=2 + lines count=1 thickness=2 value=0 + crosshair "
      "value=0");
  data::Corruption with = without;
  with.strokes = 2;
  const auto a = run(without, clean, 5, d, 4), b = run(with, clean, 5, d, 4);
  int painted = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (b[i] == 1.f && a[i] != 1.f) {
      ++painted;
      continue;
    }
    ASSERT_EQ(a[i], b[i]) << i;
  }
  EXPECT_GT(painted, 0);
}
