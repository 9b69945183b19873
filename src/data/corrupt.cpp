#include "data/corrupt.h"

#include <algorithm>
#include <sstream>

namespace cae::data {

std::string Corruption::describe() const {
  std::ostringstream s;
  s << "gaussian sigma=" << gaussian_sigma;
  return s.str();
}

void corrupt(const Corruption& c, const float* clean, float* noisy, int count,
             std::size_t image_size, std::uint64_t seed, Stream stream, std::uint64_t key,
             std::uint64_t first_index) {
  const float sigma = c.gaussian_sigma;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < count; ++b) {
    const float* src = clean + std::size_t(b) * image_size;
    float* dst = noisy + std::size_t(b) * image_size;
    if (sigma == 0.f) {
      std::copy(src, src + image_size, dst);
      continue;
    }
    Rng rng = make_rng(seed, stream, key, first_index + std::uint64_t(b));
    for (std::size_t i = 0; i < image_size; ++i)
      dst[i] = std::clamp(src[i] + sigma * rng.normal(), 0.f, 1.f);
  }
}

}  // namespace cae::data
