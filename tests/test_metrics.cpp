// Image metrics against values worked by hand (the arithmetic is in the comments; the SSIM
// window weights are exp(-d²/4.5) / Σ_{d=-5..5} exp(-d²/4.5)).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "support.h"
#include "train/metrics.h"

using namespace cae;

TEST(Metrics, MseAndPsnr) {
  const std::vector<float> a = {0, 0, 0, 0}, b = {0.1f, 0.1f, 0.1f, 0.1f};
  EXPECT_NEAR(train::mse(a.data(), b.data(), 4), 0.01, 1e-8);
  EXPECT_NEAR(train::psnr(0.01), 20.0, 1e-12);
  const std::vector<float> c = {0, 1}, d = {0.5f, 0.5f};
  // MSE 0.25: 10 log10(4) = 6.0206 dB.
  EXPECT_NEAR(train::psnr(train::mse(c.data(), d.data(), 2)), 6.020600, 1e-6);
  EXPECT_NEAR(train::psnr(0.0), 100.0, 1e-12);  // capped, not infinite
}

TEST(Metrics, BinaryCrossEntropy) {
  const std::vector<float> p = {0.5f, 0.5f}, z = {1.f, 0.f};
  EXPECT_NEAR(train::image_bce(p.data(), z.data(), 2), std::log(2.0), 1e-7);
  const std::vector<float> q = {0.9f}, one = {1.f};
  EXPECT_NEAR(train::image_bce(q.data(), one.data(), 1), -std::log(0.9), 1e-7);
  const std::vector<float> zero = {0.f};  // clamped at 1e-7: -log(1e-7) = 16.118
  EXPECT_NEAR(train::image_bce(zero.data(), one.data(), 1), 16.118096, 1e-5);
}

TEST(Metrics, SsimWindowIsTheNormalisedGaussian) {
  // Σ exp(-d²/4.5) = 1 + 2(0.800737 + 0.411112 + 0.135335 + 0.028566 + 0.003866) = 3.759233.
  EXPECT_NEAR(train::ssim_window()[5], 1 / 3.759233, 1e-6);
  EXPECT_NEAR(train::ssim_window()[0], 0.003866 / 3.759233, 1e-7);
}

TEST(Metrics, SsimOfAnImageWithItselfIsOne) {
  const ops::Dims d{3, 14, 12};
  const auto x = test::random_floats(d.size(), 5, 0.f, 1.f);
  EXPECT_NEAR(train::ssim(x.data(), x.data(), d), 1.0, 1e-12);
}

TEST(Metrics, SsimOfConstantImages) {
  // Zero variance: SSIM = (2ab + C1) / (a² + b² + C1) = (0.25 + 1e-4) / (0.3125 + 1e-4).
  const ops::Dims d{1, 13, 12};
  std::vector<float> x(d.size(), 0.5f), y(d.size(), 0.25f);
  EXPECT_NEAR(train::ssim(x.data(), y.data(), d), 0.800064, 1e-6);
}

TEST(Metrics, SsimOfADotAgainstItsNegative) {
  // 11×11, x = 1 at the centre only, y = 1 − x. One window: mean_x = w0 = g5² = 0.0707622,
  // mean_y = 1 − w0, var_x = var_y = w0 − w0², cov = −var: SSIM = (2 mx my + C1)(−2 var + C2) /
  // ((mx² + my² + C1)(2 var + C2)) = −0.149461.
  const ops::Dims d{1, 11, 11};
  std::vector<float> x(d.size(), 0.f), y(d.size(), 1.f);
  x[5 * 11 + 5] = 1.f;
  y[5 * 11 + 5] = 0.f;
  EXPECT_NEAR(train::ssim(x.data(), y.data(), d), -0.1494615, 1e-6);
}

TEST(Metrics, SsimAveragesTheValidWindowsAndTheChannels) {
  // 11×12, x = 1 in the last column only, y = 0. Two windows: the first sees zeros (SSIM 1),
  // the second sees the column at its edge weight g10 = 0.00102838: mean m = g10, var m − m²,
  // SSIM = C1 C2 / ((m² + C1)(var + C2)) = 0.462082. Mean of the map: 0.731041.
  const ops::Dims d{1, 11, 12};
  std::vector<float> x(d.size(), 0.f), y(d.size(), 0.f);
  for (int r = 0; r < 11; ++r) x[r * 12 + 11] = 1.f;
  EXPECT_NEAR(train::ssim(x.data(), y.data(), d), 0.7310411, 1e-6);
  // Two channels, the second identical in x and y: (0.731041 + 1) / 2.
  const ops::Dims d2{2, 11, 12};
  std::vector<float> x2 = x, y2 = y;
  x2.insert(x2.end(), d.size(), 0.3f);
  y2.insert(y2.end(), d.size(), 0.3f);
  EXPECT_NEAR(train::ssim(x2.data(), y2.data(), d2), (0.7310411 + 1) / 2, 1e-6);
}

TEST(Metrics, SsimRejectsImagesSmallerThanTheWindow) {
  const ops::Dims d{1, 10, 20};
  std::vector<float> x(d.size(), 0.f);
  EXPECT_THAT(test::error_of([&] { train::ssim(x.data(), x.data(), d); }),
              ::testing::HasSubstr("at least 11x11"));
}
