#include "nn/optimizer.h"

#include <cmath>

#include "cae/error.h"

namespace cae::nn {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "adam") return OptimizerKind::adam;
  if (name == "sgd") return OptimizerKind::sgd;
  throw Error("unknown optimizer '" + name + "' (expected 'adam' or 'sgd')");
}

const char* optimizer_name(OptimizerKind kind) {
  return kind == OptimizerKind::adam ? "adam" : "sgd";
}

Optimizer::Optimizer(const OptimizerConfig& config, std::size_t n) : config_(config) {
  slots_.assign(config.kind == OptimizerKind::adam ? 2 : 1, std::vector<float>(n, 0.f));
}

std::vector<std::string> Optimizer::slot_names() const {
  if (config_.kind == OptimizerKind::adam) return {"m", "v"};
  return {"accumulator"};
}

void Optimizer::step(std::span<float> params, std::span<const float> grads) {
  const std::size_t n = slots_[0].size();
  if (params.size() != n || grads.size() != n)
    throw Error("optimizer step: expected " + std::to_string(n) + " parameters and gradients, got " +
                std::to_string(params.size()) + " and " + std::to_string(grads.size()));
  ++t_;
  float* p = params.data();
  const float* g = grads.data();
  if (config_.kind == OptimizerKind::adam) {
    const double b1 = config_.beta1, b2 = config_.beta2;
    const float lr_t = float(config_.lr * std::sqrt(1.0 - std::pow(b2, double(t_))) /
                             (1.0 - std::pow(b1, double(t_))));
    const float fb1 = config_.beta1, fb2 = config_.beta2, eps = config_.epsilon;
    float* m = slots_[0].data();
    float* v = slots_[1].data();
#pragma omp parallel for simd schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
      m[i] = fb1 * m[i] + (1.f - fb1) * g[i];
      v[i] = fb2 * v[i] + (1.f - fb2) * g[i] * g[i];
      p[i] -= lr_t * m[i] / (std::sqrt(v[i]) + eps);
    }
  } else {
    const float lr = config_.lr, mu = config_.momentum;
    float* a = slots_[0].data();
#pragma omp parallel for simd schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = mu * a[i] + g[i];
      p[i] -= lr * a[i];
    }
  }
}

}  // namespace cae::nn
