#include "nn/loss.h"

#include <algorithm>
#include <cmath>

#include "cae/error.h"

namespace cae::nn {

LossKind parse_loss(const std::string& name) {
  if (name == "bce") return LossKind::bce;
  if (name == "mse") return LossKind::mse;
  throw Error("unknown loss '" + name + "' (expected 'bce' or 'mse')");
}

const char* loss_name(LossKind kind) { return kind == LossKind::bce ? "bce" : "mse"; }

double loss_and_grad(LossKind kind, const float* out, const float* target, std::size_t n,
                     float* grad) {
  const double inv_n = 1.0 / double(n);
  const float scale = float(inv_n);
  double sum = 0.0;
  if (kind == LossKind::bce) {
    // Stable form (TF sigmoid_cross_entropy_with_logits): max(x,0) - x z + log1p(exp(-|x|)).
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
      const float x = out[i], z = target[i];
      const float e = std::exp(-std::fabs(x));
      sum += double(std::max(x, 0.f) - x * z + std::log1p(e));
      if (grad) {
        const float sig = x >= 0 ? 1.f / (1.f + e) : e / (1.f + e);
        grad[i] = (sig - z) * scale;
      }
    }
  } else {
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
      const float d = out[i] - target[i];
      sum += double(d) * d;
      if (grad) grad[i] = 2.f * d * scale;
    }
  }
  return sum * inv_n;
}

void output_to_image(LossKind kind, const float* out, float* image, std::size_t n) {
  if (kind == LossKind::bce) {
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) image[i] = 1.f / (1.f + std::exp(-out[i]));
  } else {
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) image[i] = std::clamp(out[i], 0.f, 1.f);
  }
}

}  // namespace cae::nn
