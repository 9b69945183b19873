// The vectorised sigmoid cross-entropy (src/nn/loss.cpp computes exp and log1p as polynomials)
// against the definition evaluated in double with the C library, element by element over the
// whole range of logits, including the extremes where the stable form matters.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cae/error.h"
#include "core/isa.h"
#include "nn/loss.h"
#include "support.h"

namespace cae::nn {
namespace {

double bce_exact(double x, double z) {
  return std::max(x, 0.0) - x * z + std::log1p(std::exp(-std::fabs(x)));
}
double sigmoid_exact(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<float> logits() {
  std::vector<float> x;
  for (float v = -100.f; v <= 100.f; v += 0.0173f) x.push_back(v);
  for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 87.f, -87.f, 88.5f, -88.5f, 1e4f,
                  -1e4f})
    x.push_back(v);
  return x;
}

// Each tier's code (core/isa.h) where the CPU and CAE_MAX_ISA allow it; the others are skipped
// by name. The baseline has no fused multiply-add: it is the tier where cancellation shows.
class LossAccuracy : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (GetParam() > cpu_isa())
      GTEST_SKIP() << "the " << isa_name(GetParam()) << " code cannot run here: "
                   << isa_description();
  }
};

TEST_P(LossAccuracy, EachElementMatchesTheDefinitionInDouble) {
  const Isa isa = GetParam();
  const std::vector<float> x = logits();
  const auto z = test::random_floats(x.size(), 5, 0.f, 1.f);
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    // One element at a time, so each loss term is checked on its own (once: it is the same code
    // whatever the thread count).
    for (std::size_t i = 0; threads == 1 && i < x.size(); ++i) {
      float g = 0;
      const double loss = loss_and_grad(LossKind::bce, &x[i], &z[i], 1, &g, isa);
      const double want = bce_exact(x[i], z[i]);
      ASSERT_NEAR(loss, want, 3e-7 * std::max(1.0, std::fabs(want))) << "x=" << x[i];
      ASSERT_NEAR(g, sigmoid_exact(x[i]) - z[i], 3e-7) << "x=" << x[i];
    }
    // And the mean over a whole buffer, with the 1/n scale of the gradient.
    std::vector<float> grad(x.size());
    const double mean =
        loss_and_grad(LossKind::bce, x.data(), z.data(), x.size(), grad.data(), isa);
    double want = 0;
    for (std::size_t i = 0; i < x.size(); ++i) want += bce_exact(x[i], z[i]);
    want /= double(x.size());
    EXPECT_NEAR(mean, want, 1e-6 * want);
    for (std::size_t i = 0; i < x.size(); i += 97)
      EXPECT_NEAR(grad[i] * double(x.size()), sigmoid_exact(x[i]) - z[i], 1e-6);
  }
}

TEST_P(LossAccuracy, SigmoidImageMatchesAndNonFiniteLogitsStayVisible) {
  const Isa isa = GetParam();
  const std::vector<float> x = logits();
  std::vector<float> image(x.size());
  output_to_image(LossKind::bce, x.data(), image.data(), x.size(), isa);
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(image[i], sigmoid_exact(x[i]), 2e-7) << "x=" << x[i];
  // The trainer stops on a non-finite loss; the fast path must not hide one.
  const float bad[2] = {std::numeric_limits<float>::quiet_NaN(), 0.f}, target[2] = {0.5f, 0.5f};
  EXPECT_FALSE(std::isfinite(loss_and_grad(LossKind::bce, bad, target, 2, nullptr, isa)));
}

INSTANTIATE_TEST_SUITE_P(Tiers, LossAccuracy,
                         ::testing::Values(Isa::baseline, Isa::avx2, Isa::avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(LossTiers, CodeAboveTheCpusTierIsRefused) {
  if (cpu_isa() == Isa::avx512) GTEST_SKIP() << "every tier runs here";
  const float x = 1.f, z = 0.5f;
  EXPECT_THROW(loss_and_grad(LossKind::bce, &x, &z, 1, nullptr, Isa::avx512), Error);
}

}  // namespace
}  // namespace cae::nn
