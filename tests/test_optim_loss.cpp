// Optimizers against hand-computed steps, losses against their definitions and by finite
// differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cae/error.h"
#include "nn/loss.h"
#include "nn/optimizer.h"
#include "support.h"

using namespace cae;

TEST(Adam, MatchesHandComputedTf1Steps) {
  // p0 = 1, gradients 0.5, -0.25, 1.0, lr 0.1, β1 0.9, β2 0.999. Worked from DESIGN.md §2:
  // step 1: m = 0.05, v = 0.00025, lr_t = 0.1·sqrt(0.001)/0.1 = 0.0316228,
  //         p = 1 - 0.0316228·0.05 / (0.0158114 + 1e-8) = 0.90000006.
  nn::OptimizerConfig cfg;
  cfg.lr = 0.1f;
  nn::Optimizer adam(cfg, 1);
  std::vector<float> p{1.f}, g{0.5f};
  const double expected[] = {0.9000000632455132, 0.8733663743517929, 0.8075552324958426};
  const float grads[] = {0.5f, -0.25f, 1.0f};
  for (int t = 0; t < 3; ++t) {
    g[0] = grads[t];
    adam.step(p, g);
    EXPECT_NEAR(p[0], expected[t], 2e-7) << "step " << t + 1;
  }
  EXPECT_EQ(adam.steps(), 3);
}

TEST(Adam, EpsilonSitsOutsideTheBiasCorrection) {
  // With ε = 0.1 TF1's form (ε added to sqrt(v), not to sqrt(v̂)) differs from the paper's:
  // step 1: 1 - 0.0316228·0.05 / (0.0158114 + 0.1) = 0.98634729.
  nn::OptimizerConfig cfg;
  cfg.lr = 0.1f;
  cfg.epsilon = 0.1f;
  nn::Optimizer adam(cfg, 1);
  std::vector<float> p{1.f}, g{0.5f};
  const double expected[] = {0.9863472940504185, 0.982347709936244, 0.964848714717913};
  const float grads[] = {0.5f, -0.25f, 1.0f};
  for (int t = 0; t < 3; ++t) {
    g[0] = grads[t];
    adam.step(p, g);
    EXPECT_NEAR(p[0], expected[t], 2e-7) << "step " << t + 1;
  }
}

TEST(Sgd, MomentumAccumulates) {
  nn::OptimizerConfig cfg;
  cfg.kind = nn::OptimizerKind::sgd;
  cfg.lr = 0.5f;
  cfg.momentum = 0.9f;
  nn::Optimizer sgd(cfg, 2);
  std::vector<float> p{1.f, -1.f}, g{1.f, 2.f};
  sgd.step(p, g);  // a = g; p -= 0.5 a
  EXPECT_FLOAT_EQ(p[0], 0.5f);
  EXPECT_FLOAT_EQ(p[1], -2.f);
  g = {-1.f, 0.f};
  sgd.step(p, g);  // a = 0.9 a + g = (-0.1, 1.8)
  EXPECT_FLOAT_EQ(p[0], 0.55f);
  EXPECT_FLOAT_EQ(p[1], -2.9f);
}

TEST(Optimizer, RefusesMismatchedSizes) {
  nn::Optimizer adam({}, 3);
  std::vector<float> p(3), g(2);
  EXPECT_THROW(adam.step(p, g), cae::Error);
}

TEST(Loss, BceMatchesTheDefinition) {
  const std::vector<float> x{-3.f, -0.5f, 0.f, 0.7f, 4.f}, z{0.f, 1.f, 0.3f, 0.9f, 1.f};
  double expected = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-double(x[i])));
    expected += -(z[i] * std::log(s) + (1 - z[i]) * std::log(1 - s));
  }
  expected /= double(x.size());
  std::vector<float> grad(x.size());
  EXPECT_NEAR(nn::loss_and_grad(nn::LossKind::bce, x.data(), z.data(), x.size(), grad.data()),
              expected, 1e-6);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-double(x[i])));
    EXPECT_NEAR(grad[i], (s - z[i]) / double(x.size()), 1e-7);
  }
}

TEST(Loss, BceIsStableForLargeLogits) {
  const std::vector<float> x{100.f, -100.f, 100.f}, z{1.f, 1.f, 0.f};
  std::vector<float> grad(3);
  const double loss = nn::loss_and_grad(nn::LossKind::bce, x.data(), z.data(), 3, grad.data());
  EXPECT_NEAR(loss, (0.0 + 100.0 + 100.0) / 3, 1e-4);
  EXPECT_NEAR(grad[0], 0.f, 1e-7);
  EXPECT_NEAR(grad[1], -1.f / 3, 1e-7);
  EXPECT_NEAR(grad[2], 1.f / 3, 1e-7);
}

TEST(Loss, GradientsMatchFiniteDifferences) {
  for (auto kind : {nn::LossKind::bce, nn::LossKind::mse}) {
    auto x = test::random_floats(50, 1, -3.f, 3.f);
    auto z = test::random_floats(50, 2, 0.f, 1.f);
    std::vector<float> grad(50);
    nn::loss_and_grad(kind, x.data(), z.data(), 50, grad.data());
    for (std::size_t i = 0; i < 50; ++i) {
      const float h = 1e-2f;
      auto xp = x, xm = x;
      xp[i] += h;
      xm[i] -= h;
      const double fd = (nn::loss_and_grad(kind, xp.data(), z.data(), 50, nullptr) -
                         nn::loss_and_grad(kind, xm.data(), z.data(), 50, nullptr)) /
                        (2 * h);
      EXPECT_NEAR(grad[i], fd, 1e-4 * std::max(1.0, std::fabs(fd))) << nn::loss_name(kind) << i;
    }
  }
}

TEST(Loss, MseAndImages) {
  const std::vector<float> out{0.5f, -0.2f, 1.5f}, target{0.f, 0.f, 1.f};
  EXPECT_NEAR(nn::loss_and_grad(nn::LossKind::mse, out.data(), target.data(), 3, nullptr),
              (0.25 + 0.04 + 0.25) / 3, 1e-7);
  std::vector<float> img(3);
  nn::output_to_image(nn::LossKind::mse, out.data(), img.data(), 3);
  EXPECT_EQ(img, (std::vector<float>{0.5f, 0.f, 1.f}));
  nn::output_to_image(nn::LossKind::bce, out.data(), img.data(), 3);
  EXPECT_NEAR(img[0], 1 / (1 + std::exp(-0.5)), 1e-7);
  EXPECT_THROW(nn::parse_loss("l1"), cae::Error);
}

// The damaged-region loss is the whole loss of the damaged elements alone (every channel of a
// marked pixel), its gradient zero elsewhere, and matches finite differences.
TEST(Loss, MaskedLossIsTheLossOfTheDamagedElementsAlone) {
  const ops::Dims d{2, 3, 4};
  const int count = 2, n = count * 24;
  std::vector<float> mask(count * 12, 0.f);
  for (int p : {1, 5, 6, 13, 23}) mask[p] = 1.f;
  for (auto kind : {nn::LossKind::bce, nn::LossKind::mse}) {
    const auto x = test::random_floats(n, 1, -3.f, 3.f);
    const auto z = test::random_floats(n, 2, 0.f, 1.f);
    std::vector<float> xs, zs;  // the damaged elements, gathered
    for (int b = 0; b < count; ++b)
      for (int ch = 0; ch < 2; ++ch)
        for (int p = 0; p < 12; ++p)
          if (mask[b * 12 + p] == 1.f) {
            xs.push_back(x[(b * 2 + ch) * 12 + p]);
            zs.push_back(z[(b * 2 + ch) * 12 + p]);
          }
    ASSERT_EQ(xs.size(), 10u);
    std::vector<float> grad(n, 7.f);
    const double loss =
        nn::masked_loss_and_grad(kind, x.data(), z.data(), mask.data(), count, d, grad.data());
    EXPECT_NEAR(loss, nn::loss_and_grad(kind, xs.data(), zs.data(), xs.size(), nullptr), 1e-6);
    for (int i = 0; i < n; ++i) {
      const bool inside = mask[(i / 24) * 12 + i % 12] == 1.f;
      if (!inside) {
        EXPECT_EQ(grad[i], 0.f) << i;
        continue;
      }
      const float h = 1e-2f;
      auto xp = x, xm = x;
      xp[i] += h;
      xm[i] -= h;
      const double fd =
          (nn::masked_loss_and_grad(kind, xp.data(), z.data(), mask.data(), count, d, nullptr) -
           nn::masked_loss_and_grad(kind, xm.data(), z.data(), mask.data(), count, d, nullptr)) /
          (2 * h);
      EXPECT_NEAR(grad[i], fd, 1e-4 * std::max(1.0, std::fabs(fd))) << nn::loss_name(kind) << i;
    }
  }
  const std::vector<float> none(count * 12, 0.f), x(n, 1.f);
  std::vector<float> grad(n, 7.f);
  EXPECT_EQ(nn::masked_loss_and_grad(nn::LossKind::mse, x.data(), x.data(), none.data(), count, d,
                                     grad.data()),
            0.0);
  EXPECT_EQ(grad, std::vector<float>(n, 0.f));
}
