#include "train/evaluation.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "nn/loss.h"
#include "train/fill.h"
#include "train/metrics.h"
#include "train/tiling.h"

namespace cae::train {

namespace {

// Adds one image's squared errors and PSNRs: its noisy input and the output image against its
// clean pixels, n floats each.
void add_errors(EvalSums& sums, const float* clean, const float* noisy, const float* out,
                std::size_t n) {
  auto& v = sums.v;
  double se_noisy = 0, se_out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dn = noisy[i] - clean[i], dout = out[i] - clean[i];
    se_noisy += dn * dn;
    se_out += dout * dout;
  }
  v[EvalSums::se_noisy] += se_noisy;
  v[EvalSums::se_output] += se_out;
  v[EvalSums::psnr_noisy] += psnr(se_noisy / double(n));
  v[EvalSums::psnr_output] += psnr(se_out / double(n));
}

// The loss of an assembled output image against its clean one: the model's loss of the image
// (bce: image_bce; mse: its MSE), over the damaged pixels' elements alone for an informed model
// (0 when nothing is damaged), as its training loss is.
double whole_image_loss(const nn::Model& model, const std::vector<float>& out,
                        const std::vector<float>& clean, const std::vector<float>& mask,
                        ops::Dims dims) {
  std::vector<float> kept_out, kept_clean;
  const std::vector<float>* o = &out;
  const std::vector<float>* z = &clean;
  if (model.informed()) {
    const std::size_t plane = std::size_t(dims.h) * dims.w;
    for (std::size_t k = 0; k < out.size(); ++k)
      if (mask[k % plane] != 0.f) kept_out.push_back(out[k]), kept_clean.push_back(clean[k]);
    if (kept_out.empty()) return 0;
    o = &kept_out, z = &kept_clean;
  }
  return model.loss() == nn::LossKind::bce ? image_bce(o->data(), z->data(), o->size())
                                           : mse(o->data(), z->data(), o->size());
}

}  // namespace

EvalSums evaluate_sums(const nn::Model& model, ops::Executor& exec, const data::ImageSet& test,
                       const data::ImageSet& targets, int begin, int end,
                       const data::Corruption& corruption, std::uint64_t seed, Stream stream) {
  const int batch = exec.desc().batch;
  const ops::Dims dims = model.output();  // of the images; an informed input adds the mask
  const std::size_t image = dims.size();
  std::vector<float> clean(batch * image), noisy(batch * image), image_out(batch * image);
  const bool paired = &targets != &test, informed = model.informed();
  std::vector<float> input(paired ? batch * image : 0);
  std::vector<float> mask(informed ? std::size_t(batch) * dims.h * dims.w : 0);
  std::optional<InformedRun> run;
  if (informed) run.emplace(model, batch);
  std::vector<int> indices(batch);
  EvalSums sums;
  auto& v = sums.v;
  for (int first = begin; first < end; first += batch) {
    const int count = std::min(batch, end - first);
    for (int b = 0; b < count; ++b) indices[b] = first + b;
    data::to_nchw(targets, indices.data(), count, clean.data());
    if (paired) data::to_nchw(test, indices.data(), count, input.data());
    data::corrupt(corruption, paired ? input.data() : clean.data(), noisy.data(), count, dims,
                  seed, stream, 0, std::uint64_t(first), informed ? mask.data() : nullptr);
    std::fill(noisy.begin() + count * image, noisy.end(), 0.f);  // padding of the last batch
    if (informed) std::fill(mask.begin() + count * dims.h * dims.w, mask.end(), 0.f);
    exec.forward(informed ? run->input(noisy.data(), mask.data(), batch) : noisy.data());
    const float* out = informed ? run->output(exec.output(), count) : exec.output();
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
    for (int b = 0; b < count; ++b)
      add_errors(sums, clean.data() + b * image, noisy.data() + b * image,
                 image_out.data() + b * image, image);
    v[EvalSums::images] += count;
    v[EvalSums::elements] += double(n);
  }
  return sums;
}

EvalSums evaluate_whole_sums(const nn::Model& model, ops::Executor& exec,
                             const data::ImageList& images, int begin, int end,
                             const data::Corruption& corruption, std::uint64_t seed,
                             Stream stream) {
  EvalSums sums;
  for (int i = begin; i < end; ++i) {
    const data::Image& image = images.images[std::size_t(i)];
    const ops::Dims dims{images.c, image.h, image.w};
    data::ImageSet one;
    one.n = 1;
    one.h = image.h;
    one.w = image.w;
    one.c = images.c;
    one.pixels = image.pixels;
    const int index = 0;
    std::vector<float> clean(dims.size()), noisy(dims.size()), mask(dims.h * dims.w);
    data::to_nchw(one, &index, 1, clean.data());
    data::corrupt(corruption, clean.data(), noisy.data(), 1, dims, seed, stream, 0,
                  std::uint64_t(i), mask.data());
    const std::vector<float> out = denoise_tiled(model, exec, noisy.data(), dims, {}, mask.data());
    const double loss = whole_image_loss(model, out, clean, mask, dims);
    const std::size_t n = clean.size();
    auto& v = sums.v;
    v[EvalSums::images] += 1;
    v[EvalSums::elements] += double(n);
    v[EvalSums::loss] += loss * double(n);
    v[EvalSums::bce] += image_bce(out.data(), clean.data(), n) * double(n);
    add_errors(sums, clean.data(), noisy.data(), out.data(), n);
  }
  return sums;
}

EvalStats eval_stats(const EvalSums& sums) {
  const auto& v = sums.v;
  EvalStats st;
  st.images = int(v[EvalSums::images]);
  const double elements = v[EvalSums::elements];
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
  return eval_stats(evaluate_sums(model, exec, test, test, 0, test.n, corruption, seed));
}

}  // namespace cae::train
