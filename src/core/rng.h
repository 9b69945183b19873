// Random numbers that are reproducible everywhere: xoshiro256** seeded through splitmix64, with
// our own normal and uniform transforms (std:: distributions differ between standard libraries).
// Streams are derived from (seed, purpose, index...) keys, so every image's noise is a pure
// function of the run's seed and its position: resuming needs only the seed and the epoch, and
// the result does not depend on the number of threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace cae {

class Rng {
 public:
  // Ensures a stream fully determined by the key words.
  explicit Rng(std::initializer_list<std::uint64_t> key);

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits.
  float uniform();
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (Box-Muller on two uniforms; both values are used).
  float normal();
  // Uniform integer in [0, n), n > 0, without modulo bias.
  std::uint64_t below(std::uint64_t n);

 private:
  std::uint64_t s_[4];
  float spare_ = 0.f;
  bool has_spare_ = false;
};

// Stream purposes, so that the same (seed, index) never feeds two uses.
// patches: the crops of a patch-training epoch (data/patches.h); val_noise: the damage of the
// validation images, as test_noise is the test images'; adapt and adapt_noise: the crops of a
// photo a model adapts to and their damage (train/adapt.h).
enum class Stream : std::uint64_t {
  init = 1,
  shuffle = 2,
  train_noise = 3,
  test_noise = 4,
  figure = 5,
  patches = 6,
  val_noise = 7,
  adapt = 8,
  adapt_noise = 9
};

inline Rng make_rng(std::uint64_t seed, Stream purpose, std::uint64_t a = 0, std::uint64_t b = 0) {
  return Rng({seed, static_cast<std::uint64_t>(purpose), a, b});
}

// A permutation of 0..n-1 (Fisher-Yates).
std::vector<int> permutation(int n, Rng& rng);

}  // namespace cae
