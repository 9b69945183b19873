// Central finite differences against an executor's backward(), on any backend: Caffe's checker
// (test_gradient_check_util.hpp), which skips the elements whose perturbation crosses a kink.
// Shared by the ref backend's own gradient tests and the tests generated from the op table.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "support.h"

namespace cae::test {

// Which side of every kink the net is on: the relu masks (an element-wise relu or a fused one)
// and, for every pool output, the position in its channel of the input cell it copied (found by
// value, so the test needs no window geometry). The net is smooth between two points with the
// same pattern.
inline std::vector<long> kink_pattern(ops::Executor& ex, const std::vector<float>& x) {
  const ops::NetDesc& net = ex.desc();
  std::vector<long> pattern;
  std::vector<float> before = x, after;
  for (int k = 0; k < int(net.ops.size()); ++k) {
    const ops::OpDesc& op = net.ops[k];
    after.resize(std::size_t(net.batch) * op.out.size());
    ex.read_activation(k, after.data());
    if (op.kind == ops::OpKind::relu || op.act == ops::Activation::relu)
      for (float v : after) pattern.push_back(v > 0.f);
    if (op.kind == ops::OpKind::maxpool) {
      const std::size_t in_area = std::size_t(op.in.h) * op.in.w;
      const std::size_t out_area = std::size_t(op.out.h) * op.out.w;
      for (std::size_t channel = 0; channel < std::size_t(net.batch) * op.in.c; ++channel) {
        std::map<float, long> first_at;  // emplace keeps the first position of a value
        for (std::size_t i = 0; i < in_area; ++i)
          first_at.emplace(before[channel * in_area + i], long(i));
        for (std::size_t i = 0; i < out_area; ++i) {
          const auto found = first_at.find(after[channel * out_area + i]);
          pattern.push_back(found == first_at.end() ? -1 : found->second);
        }
      }
    }
    before = after;
  }
  return pattern;
}

struct GradCheckResult {
  int checked = 0, skipped = 0;
  double worst = 0;  // largest |numeric - analytic| / scale among the checked
  std::vector<std::string> failures;
};

struct GradCheckOptions {
  double tolerance = 2e-3;  // of |numeric - analytic| / max(|numeric|, |analytic|, 0.1)
  // At most this many elements of the input and of the parameters each, evenly spaced (0: all):
  // a wide conv has thousands of weights, and a sample of them finds a wrong kernel as surely.
  std::size_t max_per_tensor = 0;
};

// Central differences (step 1e-2) of L = sum(g ⊙ output), accumulated in double, against
// backward() for the input's and the parameters' elements (in the backend's own parameter
// layout: a padded cell has numeric and analytic 0). A batchnorm's running statistics are not
// read by a training forward: their slots carry the batch's statistics, and are left out.
inline GradCheckResult check_gradients(ops::Executor& ex, std::uint64_t seed,
                                       const GradCheckOptions& options = {}) {
  constexpr float step = 1e-2f;
  constexpr double scale_floor = 0.1;
  const ops::NetDesc& net = ex.desc();
  std::vector<float> x = random_floats(std::size_t(net.batch) * net.input.size(), seed);
  const std::vector<float> g =
      random_floats(std::size_t(net.batch) * net.output().size(), seed + 1);
  const std::vector<float> p = random_floats(ex.params().size(), seed + 2, -0.5f, 0.5f);
  std::copy(p.begin(), p.end(), ex.params().begin());

  std::vector<float> dx(x.size());
  ex.forward(x.data());
  ex.backward(g.data(), dx.data());
  const std::vector<float> dparams(ex.grads().begin(), ex.grads().end());
  ex.forward(x.data());  // backward() may have written over activations (Executor's contract)
  const std::vector<long> base_pattern = kink_pattern(ex, x);

  GradCheckResult result;
  // Perturbs *value (an input or parameter the next forward reads) and compares with analytic.
  const auto check = [&](float* value, double analytic, const std::string& what) {
    const float original = *value;
    double loss[2];
    bool kink = false;
    const float shifted[2] = {original + step, original - step};
    for (int side = 0; side < 2; ++side) {
      *value = shifted[side];
      ex.forward(x.data());
      const float* y = ex.output();
      double sum = 0;
      for (std::size_t i = 0; i < g.size(); ++i) sum += double(g[i]) * y[i];
      loss[side] = sum;
      kink = kink || kink_pattern(ex, x) != base_pattern;
    }
    *value = original;
    if (kink) {
      ++result.skipped;
      return;
    }
    ++result.checked;
    const double numeric = (loss[0] - loss[1]) / (double(shifted[0]) - double(shifted[1]));
    const double scale = std::max({std::abs(numeric), std::abs(analytic), scale_floor});
    const double error = std::abs(numeric - analytic) / scale;
    result.worst = std::max(result.worst, error);
    if (error > options.tolerance && result.failures.size() < 10)
      result.failures.push_back(what + ": numeric " + std::to_string(numeric) + ", analytic " +
                                std::to_string(analytic));
  };
  // The elements to check, in order: all, or a random sample (an even stride would alias with
  // a blocked layout's channel order, and see only a few channels).
  const auto chosen = [&](std::size_t n) {
    std::vector<std::size_t> at(n);
    std::iota(at.begin(), at.end(), std::size_t(0));
    if (options.max_per_tensor && n > options.max_per_tensor) {
      std::shuffle(at.begin(), at.end(), std::mt19937_64(seed + n));
      at.resize(options.max_per_tensor);
      std::sort(at.begin(), at.end());
    }
    return at;
  };
  for (std::size_t i : chosen(x.size())) check(&x[i], dx[i], "d input[" + std::to_string(i) + "]");
  std::vector<bool> statistic(dparams.size(), false);
  for (const auto& range : ex.statistics_ranges())
    std::fill_n(statistic.begin() + std::ptrdiff_t(range.offset), range.size, true);
  for (std::size_t i : chosen(dparams.size()))
    if (!statistic[i]) check(&ex.params()[i], dparams[i], "d param[" + std::to_string(i) + "]");
  return result;
}

}  // namespace cae::test
