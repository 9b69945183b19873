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
//
// Environment. The library reads no environment variable of its own. The functions that load
// models take an EngineOptions, by default EngineOptions::from_environment(), which runs in the
// calling program where the call is made and reads the CAE_* variables the cae program reads
// (docs/usage.md, "Environment"); pass EngineOptions{} or your own to leave the environment out.
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

// How Autoencoder::repair works: the same choices as cae repair's flags (docs/repair.md).
struct RepairOptions {
  int adapt = 0;           // steps adapting a copy of the model to the photo first; 0: off
  double adapt_lr = 1e-3;  // Adam's rate at the first adaptation step, decayed to 0
  int adapt_near = 0;      // > 0: adaptation crops only within this many pixels of the damage
  int ensemble = 1;        // 1, 2, 4 or 8 flips and turns of the photo repaired and averaged
  int overlap = -1;        // pixels neighbouring tiles share; -1: a quarter of the tile
  std::uint64_t seed = 0;  // of the adaptation's crops and their damage
};

// What a repair did.
struct RepairReport {
  std::size_t damaged_pixels = 0;  // pixels the mask marks
  int tiles = 0, tiles_run = 0;    // the photo's tiles, and those that ran (they touch the mask)
  bool adapted = false;
};

// How the engine runs the models it loads: which convolution kernels (docs/performance.md,
// "Kernel choice by measurement"), on which instruction-set tier, and where shipped models are
// found. Each field names the environment variable the cae program takes it from.
struct EngineOptions {
  // measured: each conv's candidate kernels are timed on the model's own shapes, batch and
  // threads when an executor is first built, and the fastest kept; fixed: fixed rules, the same
  // bits on every run and machine of a kind. CAE_KERNELS=measured|fixed.
  enum class Kernels { measured, fixed };
  Kernels kernels = Kernels::measured;
  // The file measured choices are kept in and read back from; empty: measure at every build
  // and keep nothing. CAE_KERNEL_CACHE (from_environment(): else
  // $XDG_CACHE_HOME/cae/kernels.json, else ~/.cache/cae/kernels.json; "none": empty).
  std::string kernel_cache{};
  // Whose Winograd kernels the 3x3 convs may use: cae's own, oneDNN's (AVX-512 only), or none
  // (direct convs). CAE_WINOGRAD=cae|onednn|0.
  enum class Winograd { cae, onednn, off };
  Winograd winograd = Winograd::cae;
  int winograd_tile = 4;   // cae's Winograd output tile, 4 or 2. CAE_WINOGRAD_TILE=4|2.
  bool thin_convs = true;  // cae's kernels for 1->C and C->1 convs; false: oneDNN's.
                           // CAE_THIN_CONV=cae|dnnl.
  bool own_maxpool = true;  // cae's max-pool kernel; false: oneDNN's. CAE_MAXPOOL=cae|dnnl.
  // The highest instruction-set tier any kernel of this process runs: avx512, avx2 or baseline;
  // empty: leave the process's cap as it is (none unless set). The cap belongs to the process,
  // as OMP_NUM_THREADS does: it is fixed when the first kernel runs, and a different one after
  // that is a cae::Error. CAE_MAX_ISA.
  std::string max_isa{};
  // The one folder shipped_models() and load_shipped() search; empty: the install's
  // share/cae/models, then the source tree's models/. CAE_MODELS.
  std::string models{};
  // The convolutions' arithmetic: f32, or bf16 where the CPU has AVX512_BF16 (oneDNN's bf16
  // kernels, kept per conv where measured faster; weights stay f32). bf16 elsewhere: the first
  // executor build throws cae::Error saying why. CAE_PRECISION=f32|bf16.
  enum class Precision { f32, bf16 };
  Precision precision = Precision::f32;

  // Requires nothing. Ensures the options the environment gives, read as the cae program reads
  // it: each variable above that is set and not empty, the defaults otherwise (kernels measured,
  // cached in the user's cache folder). Throws cae::Error naming a variable whose value is not
  // one it takes, and the values it takes (e.g. "CAE_WINOGRAD='bogus': expected cae|onednn|0
  // (or unset)"). It is the edge's code (tools/environment.cpp, linked into libcae), not the
  // engine's: the engine only sees the struct.
  static EngineOptions from_environment();
};

// A model that ships with cae (docs/models.md): its name, for load_shipped(), and its file.
struct ShippedModel {
  std::string name, path;
};

class Autoencoder {
 public:
  // Requires path to name a cae model file (or a training checkpoint: its current weights).
  // Ensures a model ready to run, whose kernels run as options say (options.max_isa, when given,
  // set as the process's cap); throws cae::Error naming the file when it cannot be read, is not
  // a cae model, is corrupt, or holds an architecture this version does not know, and for an
  // options.max_isa that is no tier or conflicts with the cap already in force.
  static Autoencoder load(const std::string& path,
                          const EngineOptions& options = EngineOptions::from_environment());

  // Same as load(), from the bytes of a model file in memory; `what` names it in messages.
  static Autoencoder load_bytes(std::span<const std::uint8_t> file, const std::string& what,
                                const EngineOptions& options = EngineOptions::from_environment());

  // Ensures the models that ship with cae, sorted by name: NAME.cae in share/cae/models of the
  // install, then in the source tree's models/ (a build tree), a name found twice taken from the
  // first; or, when options.models is not empty ($CAE_MODELS by default), in that folder only.
  static std::vector<ShippedModel> shipped_models(
      const EngineOptions& options = EngineOptions::from_environment());

  // Ensures the shipped model `name` ("inpaint", "denoise": shipped_models(options)), loaded as
  // by load(); throws cae::Error listing the shipped models when none has that name.
  static Autoencoder load_shipped(const std::string& name,
                                  const EngineOptions& options = EngineOptions::from_environment());

  Autoencoder(Autoencoder&&) noexcept;
  Autoencoder& operator=(Autoencoder&&) noexcept;
  ~Autoencoder();

  // Ensures the shape of the images the model returns (and, for a blind model, takes; an
  // informed model takes the mask as one channel more).
  Shape image_shape() const;

  // Ensures the shape of the latent code: the activation after the last layer before the first
  // upsampling layer (resize or transposed conv); the seed preset's is 16x4x4 for 28x28 input.
  // A model without upsampling, or whose decoder joins encoder activations (skip connections,
  // as in the unet presets), has no latent code: throws cae::Error. denoise() works on all.
  Shape latent_shape() const;

  // Ensures the key/value facts stored with the model: "loss", "corruption" (when recorded),
  // "epochs", ...
  std::vector<std::pair<std::string, std::string>> metadata() const;

  // Whether the model is informed of the damage: an inpainter that takes a mask (repair), as
  // opposed to a blind denoiser (denoise, encode, decode). Each refuses the other's calls.
  bool informed() const;

  // Requires an informed model; image: height * width pixels, row-major, each `channels`
  // interleaved samples (HWC, as image files hold them, also for floats): 1 gray, 2 gray +
  // alpha, 3 RGB, 4 RGBA, with the model's colour channels (or gray for a colour model); samples
  // 0-255, 0-65535, or floats 0-1; mask: height * width values, non-zero = damaged. Any size:
  // the model runs in tiles, only those that touch the mask. Ensures the repaired photo in the
  // same layout and type: damaged pixels' colour repaired (rounded to whole samples), every other
  // sample, alpha included, exactly the input's. The same bits as `cae repair` gives for the
  // same photo file, mask and options. *report, when given, says what ran. Throws cae::Error
  // for a blind model or sizes, channels or values that do not fit, before any work.
  std::vector<std::uint8_t> repair(std::span<const std::uint8_t> image, int height, int width,
                                   int channels, std::span<const std::uint8_t> mask,
                                   const RepairOptions& options = {},
                                   RepairReport* report = nullptr) const;
  std::vector<std::uint16_t> repair(std::span<const std::uint16_t> image, int height, int width,
                                    int channels, std::span<const std::uint8_t> mask,
                                    const RepairOptions& options = {},
                                    RepairReport* report = nullptr) const;
  std::vector<float> repair(std::span<const float> image, int height, int width, int channels,
                            std::span<const std::uint8_t> mask, const RepairOptions& options = {},
                            RepairReport* report = nullptr) const;

  // Requires a blind model, images.size() == count * image_shape().size(), count >= 1, NCHW
  // floats. Ensures count denoised images, NCHW floats in [0, 1] (the model's output as an image).
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
