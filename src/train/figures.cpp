#include "train/figures.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cae/error.h"
#include "data/dataset.h"
#include "data/grid.h"

namespace cae::train {

data::Image to_image(const float* nchw, ops::Dims d) {
  data::Image img;
  img.h = d.h;
  img.w = d.w;
  img.c = d.c;
  img.pixels.resize(d.size());
  const int hw = d.h * d.w;
  for (int p = 0; p < hw; ++p)
    for (int c = 0; c < d.c; ++c)
      img.pixels[std::size_t(p) * d.c + c] = std::uint8_t(
          std::lround(std::clamp(nchw[std::size_t(c) * hw + p], 0.f, 1.f) * 255.f));
  return img;
}

void from_image(const data::Image& image, float* nchw) {
  const int hw = image.h * image.w;
  for (int p = 0; p < hw; ++p)
    for (int c = 0; c < image.c; ++c)
      nchw[std::size_t(c) * hw + p] = image.pixels[std::size_t(p) * image.c + c] / 255.f;
}

namespace {
data::Image upscale(const data::Image& in, int scale) {
  data::Image out;
  out.h = in.h * scale;
  out.w = in.w * scale;
  out.c = in.c;
  out.pixels.resize(std::size_t(out.h) * out.w * out.c);
  for (int y = 0; y < out.h; ++y)
    for (int x = 0; x < out.w; ++x)
      for (int c = 0; c < in.c; ++c)
        out.pixels[(std::size_t(y) * out.w + x) * out.c + c] =
            in.pixels[(std::size_t(y / scale) * in.w + x / scale) * in.c + c];
  return out;
}
}  // namespace

data::Image denoising_figure(const nn::Model& model, ops::Backend backend,
                             const data::ImageSet& set, const data::Corruption& corruption,
                             std::uint64_t seed, int count, int scale) {
  if (count < 1 || count > set.n)
    throw Error("figure: asked for " + std::to_string(count) + " images, the set has " +
                std::to_string(set.n));
  if (scale < 1 || scale > 32) throw Error("figure: scale must be 1 to 32");
  const ops::Dims dims = model.input();
  const std::size_t image = dims.size();
  std::vector<int> indices(count);
  std::iota(indices.begin(), indices.end(), 0);
  std::vector<float> clean(count * image), noisy(count * image), out(count * image);
  data::to_nchw(set, indices.data(), count, clean.data());
  data::corrupt(corruption, clean.data(), noisy.data(), count, image, seed, Stream::test_noise, 0,
                0);
  auto exec = model.make_executor(backend, count);
  exec->forward(noisy.data());
  nn::output_to_image(model.loss(), exec->output(), out.data(), count * image);
  std::vector<std::vector<data::Image>> rows(3);
  for (int b = 0; b < count; ++b) {
    rows[0].push_back(upscale(to_image(noisy.data() + b * image, dims), scale));
    rows[1].push_back(upscale(to_image(out.data() + b * image, dims), scale));
    rows[2].push_back(upscale(to_image(clean.data() + b * image, dims), scale));
  }
  return data::make_grid(rows, 2 * scale, 255);
}

}  // namespace cae::train
