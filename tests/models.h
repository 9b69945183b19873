// Models for the tests that compare an engine path with another computation (the API, the ONNX
// export): random but reproducible weights, the engine's image, and the comparison.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/model.h"
#include "support.h"

namespace cae::test {

// Glorot weights and, unlike init_glorot, non-zero biases so that the bias path is exercised.
inline nn::Model random_model(const std::string& spec, ops::Dims input, nn::LossKind loss,
                              std::uint64_t seed) {
  nn::Model model(nn::parse_spec(spec), input, loss);
  model.init_glorot(seed);
  for (std::size_t i = 0; i < model.param_infos().size(); ++i)
    if (model.param_infos()[i].name == "bias")
      model.params()[i] = random_floats(model.params()[i].size(), seed + 100 + i, -0.3f, 0.3f);
  return model;
}

// The engine's image (the loss's output map applied) for count NCHW inputs on one backend.
inline std::vector<float> model_images(const nn::Model& model, ops::Backend backend,
                                       const std::vector<float>& x, int count) {
  auto exec = model.make_executor(backend, count);
  exec->forward(x.data());
  std::vector<float> y(std::size_t(count) * model.output().size());
  nn::output_to_image(model.loss(), exec->output(), y.data(), y.size());
  return y;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace cae::test
