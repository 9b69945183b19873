// The cae embedding API: load a trained model file and run it from any C++20 program. Needs
// nothing but the C++ standard library; every failure is a cae::Error (cae/error.h) whose what()
// names the file or argument and the expected and found values.
//
// Layouts. Float images are planar NCHW, values in [0, 1]: image i, channel c, row y, column x
// at ((i * C + c) * H + y) * W + x. Byte images are interleaved HWC, as PNG and IDX files and
// most image libraries hold them: ((i * H + y) * W + x) * C + c, value = round(255 * float).
// Latent codes are NCHW floats of latent_shape().
//
// Threads. One Autoencoder may be shared between threads: calls on it run one at a time. The
// kernels use OpenMP; OMP_NUM_THREADS (or omp_set_num_threads) sets how many threads they use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cae/error.h"

namespace cae {

// Ensures the version of the cae library, e.g. "0.1.0".
std::string version();

// The shape of one image or one latent code.
struct Shape {
  int channels = 0, height = 0, width = 0;
  // Ensures the number of values in one image or code: channels * height * width.
  std::size_t size() const { return std::size_t(channels) * height * width; }
  bool operator==(const Shape&) const = default;
};

class Autoencoder {
 public:
  // Requires path to name a cae model file (or a training checkpoint: its current weights).
  // Ensures a model ready to run; throws cae::Error naming the file when it cannot be read, is
  // not a cae model, is corrupt, or holds an architecture this version does not know.
  static Autoencoder load(const std::string& path);

  // Same as load(), from the bytes of a model file in memory; `what` names it in messages.
  static Autoencoder load_bytes(std::span<const std::uint8_t> file, const std::string& what);

  Autoencoder(Autoencoder&&) noexcept;
  Autoencoder& operator=(Autoencoder&&) noexcept;
  ~Autoencoder();

  // Ensures the shape of the images the model takes and returns (they are the same).
  Shape image_shape() const;

  // Ensures the shape of the latent code: the activation after the last layer before the first
  // upsampling layer (resize or transposed conv); the seed preset's is 16x4x4 for 28x28 input.
  // A model without upsampling, or whose decoder joins encoder activations (skip connections,
  // as in the unet presets), has no latent code: throws cae::Error. denoise() works on all.
  Shape latent_shape() const;

  // Ensures the key/value facts stored with the model: "loss", "corruption" (when recorded),
  // "epochs", ...
  std::vector<std::pair<std::string, std::string>> metadata() const;

  // Requires images.size() == count * image_shape().size(), count >= 1, NCHW floats.
  // Ensures count denoised images, NCHW floats in [0, 1] (the model's output as an image).
  std::vector<float> denoise(std::span<const float> images, int count) const;

  // Requires pixels.size() == count * image_shape().size(), count >= 1, HWC bytes.
  // Ensures count denoised images as HWC bytes.
  std::vector<std::uint8_t> denoise(std::span<const std::uint8_t> pixels, int count) const;

  // Requires as for denoise(floats). Ensures count latent codes, NCHW floats of latent_shape().
  std::vector<float> encode(std::span<const float> images, int count) const;

  // Requires codes.size() == count * latent_shape().size(), count >= 1. Ensures count images,
  // NCHW floats in [0, 1]: decode(encode(x)) equals denoise(x).
  std::vector<float> decode(std::span<const float> codes, int count) const;

 private:
  struct Impl;
  explicit Autoencoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cae
