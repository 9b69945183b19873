// Optimizers over one flat parameter buffer (any layout: the update is element-wise).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cae::nn {

enum class OptimizerKind { adam, sgd };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // adam (TF1 defaults)
  float momentum = 0.9f;                                // sgd
};

OptimizerKind parse_optimizer(const std::string& name);  // "adam" | "sgd"; throws otherwise
const char* optimizer_name(OptimizerKind kind);

class Optimizer {
 public:
  // Ensures zeroed state for n parameters.
  Optimizer(const OptimizerConfig& config, std::size_t n);

  // Requires params.size() == grads.size() == n. One update:
  //   adam (TF1): lr_t = lr sqrt(1-b2^t)/(1-b1^t); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
  //               p -= lr_t m / (sqrt(v) + eps)
  //   sgd (TF1 MomentumOptimizer): a = momentum a + g; p -= lr a
  void step(std::span<float> params, std::span<const float> grads);

  // State slots, in the parameters' layout: adam {m, v}, sgd {accumulator}.
  std::vector<std::vector<float>>& slots() { return slots_; }
  std::vector<std::string> slot_names() const;
  std::int64_t steps() const { return t_; }
  void set_steps(std::int64_t t) { t_ = t; }
  const OptimizerConfig& config() const { return config_; }
  // Ensures the following steps take lr (a schedule's lr of the epoch, lr_schedule.h).
  void set_lr(float lr) { config_.lr = lr; }

 private:
  OptimizerConfig config_;
  std::vector<std::vector<float>> slots_;
  std::int64_t t_ = 0;
};

}  // namespace cae::nn
