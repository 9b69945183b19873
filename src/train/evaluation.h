// The test and validation evaluation of a training run: the model's loss, BCE, MSE and PSNR of
// its output and of its noisy input, over images damaged the same way every time (noise fixed
// per image by the seed and the image's index), in sums that ranks can add up. Images of one
// size go through the model in batches; whole images of any size through the tiler.
#pragma once

#include <array>
#include <cstdint>

#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "nn/model.h"
#include "ops/ops.h"

namespace cae::train {

struct EvalStats {
  int images = 0;
  double loss = 0;         // the model's loss on (output, clean), mean per element
  double bce = 0;          // sigmoid cross-entropy of the output image against the clean one
  double mse_noisy = 0, mse_output = 0;    // mean per element
  double psnr_noisy = 0, psnr_output = 0;  // dB, mean over images of 10 log10(1 / MSE_image)
};

// What EvalStats' means are made of, over some of the test images, so that ranks can add their
// shares.
struct EvalSums {
  enum { images, elements, loss, bce, se_noisy, se_output, psnr_noisy, psnr_output, count };
  std::array<double, count> v{};
};

// Requires exec built for model's net at some batch size, holding the parameters to evaluate,
// and targets of test's count and shape (test itself unless the data is paired). Ensures the
// sums over test images [begin, end), each damaged from the stream keyed by (seed, stream, 0,
// its index) and scored against its target; the last partial batch is padded and the padding
// ignored. An informed model is given each image's damage mask, and its output image keeps the
// damaged input's pixels outside the mask (data::keep_undamaged) before it is scored; its loss
// is the mean over images of each one's loss over its damaged pixels
// (nn::masked_loss_and_grad), as the trainer's.
EvalSums evaluate_sums(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                       const data::ImageSet& targets, int begin, int end,
                       const data::Corruption& corruption, std::uint64_t seed,
                       Stream stream = Stream::test_noise);

// Requires model holding the parameters to score and exec an inference executor of its net
// (any batch). Ensures the sums over images [begin, end), each whole: damaged once from the
// stream keyed by (seed, stream, 0, its index), repaired through the tiler (tiling.h, default
// overlap) and scored on all its pixels. Its loss is the model's loss of the assembled output
// image (bce: image_bce; mse: its MSE), so an image counts in proportion to its pixels.
EvalSums evaluate_whole_sums(const nn::Model& model, ops::Executor& exec,
                             const data::ImageList& images, int begin, int end,
                             const data::Corruption& corruption, std::uint64_t seed, Stream stream);

// The means of sums (per element, PSNR per image).
EvalStats eval_stats(const EvalSums& sums);

// Requires exec as for evaluate_sums. Ensures every image of test is scored against itself.
EvalStats evaluate(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed);

}  // namespace cae::train
