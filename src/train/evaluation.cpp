#include "train/evaluation.h"

#include <algorithm>
#include <vector>

#include "data/dataset.h"
#include "nn/loss.h"
#include "train/metrics.h"

namespace cae::train {

EvalSums evaluate_sums(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                       const data::ImageSet& targets, int begin, int end,
                       const data::Corruption& corruption, std::uint64_t seed) {
  const int batch = exec.desc().batch;
  const ops::Dims dims = model.output();  // of the images; an informed input adds the mask
  const std::size_t image = dims.size();
  std::vector<float> clean(batch * image), noisy(batch * image), image_out(batch * image);
  const bool paired = &targets != &test, informed = model.informed();
  std::vector<float> input(paired ? batch * image : 0);
  std::vector<float> mask(informed ? std::size_t(batch) * dims.h * dims.w : 0);
  std::vector<float> informed_input(informed ? batch * model.input().size() : 0);
  std::vector<int> indices(batch);
  EvalSums sums;
  auto& v = sums.v;
  for (int first = begin; first < end; first += batch) {
    const int count = std::min(batch, end - first);
    for (int b = 0; b < count; ++b) indices[b] = first + b;
    data::to_nchw(targets, indices.data(), count, clean.data());
    if (paired) data::to_nchw(test, indices.data(), count, input.data());
    data::corrupt(corruption, paired ? input.data() : clean.data(), noisy.data(), count, dims,
                  seed, Stream::test_noise, 0, std::uint64_t(first),
                  informed ? mask.data() : nullptr);
    std::fill(noisy.begin() + count * image, noisy.end(), 0.f);  // padding of the last batch
    if (informed) {
      std::fill(mask.begin() + count * dims.h * dims.w, mask.end(), 0.f);
      data::with_mask_channel(noisy.data(), mask.data(), batch, dims, informed_input.data());
    }
    exec.forward(informed ? informed_input.data() : noisy.data());
    const float* out = exec.output();
    const std::size_t n = count * image;
    if (informed)  // each image's loss over its damaged pixels, as the trainer's
      for (int b = 0; b < count; ++b)
        v[EvalSums::loss] += nn::masked_loss_and_grad(model.loss(), out + b * image,
                                                      clean.data() + b * image,
                                                      mask.data() + b * dims.h * dims.w, 1, dims,
                                                      nullptr) *
                             double(image);
    else
      v[EvalSums::loss] +=
          nn::loss_and_grad(model.loss(), out, clean.data(), n, nullptr) * double(n);
    nn::output_to_image(model.loss(), out, image_out.data(), n);
    if (informed) data::keep_undamaged(noisy.data(), mask.data(), count, dims, image_out.data());
    v[EvalSums::bce] += image_bce(image_out.data(), clean.data(), n) * double(n);
    for (int b = 0; b < count; ++b) {
      double se_noisy = 0, se_out = 0;
      for (std::size_t i = b * image; i < (b + 1) * image; ++i) {
        const double dn = noisy[i] - clean[i], dout = image_out[i] - clean[i];
        se_noisy += dn * dn;
        se_out += dout * dout;
      }
      v[EvalSums::se_noisy] += se_noisy;
      v[EvalSums::se_output] += se_out;
      v[EvalSums::psnr_noisy] += psnr(se_noisy / double(image));
      v[EvalSums::psnr_output] += psnr(se_out / double(image));
    }
    v[EvalSums::images] += count;
  }
  return sums;
}

EvalStats eval_stats(const EvalSums& sums, std::size_t image) {
  const auto& v = sums.v;
  EvalStats st;
  st.images = int(v[EvalSums::images]);
  const double elements = v[EvalSums::images] * double(image);
  st.loss = v[EvalSums::loss] / elements;
  st.bce = v[EvalSums::bce] / elements;
  st.mse_noisy = v[EvalSums::se_noisy] / elements;
  st.mse_output = v[EvalSums::se_output] / elements;
  st.psnr_noisy = v[EvalSums::psnr_noisy] / v[EvalSums::images];
  st.psnr_output = v[EvalSums::psnr_output] / v[EvalSums::images];
  return st;
}

EvalStats evaluate(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed) {
  return eval_stats(evaluate_sums(model, exec, test, test, 0, test.n, corruption, seed),
                    model.output().size());
}

}  // namespace cae::train
