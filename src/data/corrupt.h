// Corruption models: what damage the autoencoder learns to undo. Each image's damage comes from
// its own random stream, keyed by the caller, so results do not depend on threads or batching.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/rng.h"

namespace cae::data {

struct Corruption {
  float gaussian_sigma = 0.5f;  // clip(x + sigma N(0,1), 0, 1); 0 disables it
  std::string describe() const;  // stored in model files, e.g. "gaussian sigma=0.5"
};

// Requires clean and noisy of count*image_size floats (may not alias). Image b's noise comes
// from make_rng(seed, stream, key, first_index + b).
void corrupt(const Corruption& c, const float* clean, float* noisy, int count,
             std::size_t image_size, std::uint64_t seed, Stream stream, std::uint64_t key,
             std::uint64_t first_index);

}  // namespace cae::data
