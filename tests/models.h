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

// Glorot weights and, unlike init_glorot, non-zero biases so that the bias path is exercised;
// a batchnorm's scale, shift and running statistics random too, so that folding it is. input is
// the net's: an informed model's has the mask's channel too.
inline nn::Model random_model(const std::string& spec, ops::Dims input, nn::LossKind loss,
                              std::uint64_t seed, bool informed = false) {
  nn::Model model(nn::parse_spec(spec), input, loss, informed);
  model.init_glorot(seed);
  for (std::size_t i = 0; i < model.param_infos().size(); ++i) {
    const ops::ParamInfo& info = model.param_infos()[i];
    const bool norm = model.arch().layers[info.op].kind == ops::OpKind::batchnorm;
    const std::size_t n = model.params()[i].size();
    if (info.name == "bias" || info.name == "running_mean")
      model.params()[i] = random_floats(n, seed + 100 + i, -0.3f, 0.3f);
    else if (info.name == "running_var" || (norm && info.name == "weight"))
      model.params()[i] = random_floats(n, seed + 100 + i, 0.5f, 2.f);
  }
  return model;
}

// The engine's image (the loss's output map applied) for count NCHW inputs on one backend, as
// inference computes it (a batchnorm folded, by its running statistics).
inline std::vector<float> model_images(const nn::Model& model, ops::Backend backend,
                                       const std::vector<float>& x, int count) {
  auto exec = model.make_inference_executor(backend, count, {});
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
