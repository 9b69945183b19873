#include "train/repair.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>

#include "cae/error.h"
#include "data/dataset.h"

namespace cae::train {

namespace {

void require_informed(const nn::Model& model) {
  if (!model.informed())
    throw Error(
        "repair: the model is blind: it takes no mask and denoises whole images (cae denoise); "
        "repairing a mask needs an informed model (trained with --informed)");
}

}  // namespace

std::vector<float> repair_planes(const nn::Model& model, const float* image, ops::Dims d,
                                 const float* mask, const RepairOptions& options,
                                 RepairReport* report) {
  require_informed(model);
  if (d.c != model.output().c)
    throw Error("repair: the photo has " + std::to_string(d.c) + " channel(s), the model repairs " +
                std::to_string(model.output().c));
  RepairReport r;
  const std::size_t plane = std::size_t(d.h) * d.w;
  r.damaged = std::size_t(std::count_if(mask, mask + plane, [](float m) { return m != 0.f; }));
  std::vector<float> out;
  if (r.damaged == 0) {
    out.assign(image, image + d.size());
  } else {
    std::optional<nn::Model> adapted;
    if (options.adapt.on()) adapted = adapt_to_photo(model, image, mask, d, options.adapt, 0);
    r.adapted = adapted.has_value();
    out = denoise_tiled(adapted ? *adapted : model, image, d, options.tiles, mask, &r.tiles);
  }
  if (report) *report = r;
  return out;
}

namespace {

template <class T>
constexpr float kScale = std::is_same_v<T, std::uint8_t> ? 255.f
                         : std::is_same_v<T, std::uint16_t> ? 65535.f
                                                            : 1.f;

// The sample as a float in [0, 1]; bytes as the datasets read them (data::byte_to_float).
template <class T>
float to_unit(T v) {
  if constexpr (std::is_same_v<T, std::uint8_t>)
    return data::byte_to_float(v);
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return v * (1.f / 65535.f);
  else
    return v;
}

// A float in [0, 1] as the nearest sample (floats clamped only), as train::to_image rounds.
template <class T>
T from_unit(float v) {
  const float x = std::clamp(v, 0.f, 1.f);
  if constexpr (std::is_floating_point_v<T>)
    return x;
  else
    return T(std::lround(x * kScale<T>));
}

template <class T>
std::vector<T> repair_any(const nn::Model& model, Samples<T> photo,
                          std::span<const std::uint8_t> mask, const RepairOptions& options,
                          RepairReport* report) {
  require_informed(model);
  const int c = photo.c, h = photo.h, w = photo.w;
  if (c < 1 || c > 4 || h < 1 || w < 1)
    throw Error("repair: a photo of " + std::to_string(w) + "×" + std::to_string(h) + "×" +
                std::to_string(c) + ": expected width, height >= 1 and 1 to 4 channels");
  const std::size_t plane = std::size_t(h) * w;
  if (photo.values.size() != plane * c)
    throw Error("repair: a " + std::to_string(w) + "×" + std::to_string(h) + "×" +
                std::to_string(c) + " photo has " + std::to_string(plane * c) +
                " samples, found " + std::to_string(photo.values.size()));
  if (mask.size() != plane)
    throw Error("repair: the mask has " + std::to_string(mask.size()) + " values, the " +
                std::to_string(w) + "×" + std::to_string(h) + " photo " + std::to_string(plane) +
                " pixels");
  const bool alpha = c == 2 || c == 4;
  const int colours = alpha ? c - 1 : c, model_c = model.output().c;
  if (colours == 3 && model_c == 1)
    throw Error("repair: a colour photo, the model repairs gray images");
  if (colours != model_c && !(colours == 1 && model_c == 3))
    throw Error("repair: the photo has " + std::to_string(colours) +
                " colour channel(s), the model repairs " + std::to_string(model_c));
  if constexpr (std::is_floating_point_v<T>)
    for (std::size_t i = 0; i < photo.values.size(); ++i)
      if (!(photo.values[i] >= 0.f && photo.values[i] <= 1.f))
        throw Error("repair: sample " + std::to_string(i) + " is " +
                    std::to_string(photo.values[i]) + ", expected a number from 0 to 1");

  // The colour planes the model repairs (a gray photo's repeated), and the mask as floats.
  const ops::Dims d{model_c, h, w};
  std::vector<float> planes(d.size()), damage(plane);
  for (std::size_t p = 0; p < plane; ++p) {
    damage[p] = mask[p] != 0;
    for (int k = 0; k < model_c; ++k)
      planes[k * plane + p] = to_unit(photo.values[p * c + std::min(k, colours - 1)]);
  }
  const std::vector<float> repaired = repair_planes(model, planes.data(), d, damage.data(),
                                                    options, report);
  std::vector<T> out(photo.values.begin(), photo.values.end());
  for (std::size_t p = 0; p < plane; ++p) {
    if (!mask[p]) continue;
    if (colours == model_c) {
      for (int k = 0; k < colours; ++k) out[p * c + k] = from_unit<T>(repaired[k * plane + p]);
    } else {  // a gray photo repaired as colour: the mean of the three
      const float mean = (repaired[p] + repaired[plane + p] + repaired[2 * plane + p]) / 3.f;
      out[p * c] = from_unit<T>(mean);
    }
  }
  return out;
}

}  // namespace

std::vector<std::uint8_t> repair_samples(const nn::Model& model, Samples<std::uint8_t> photo,
                                         std::span<const std::uint8_t> mask,
                                         const RepairOptions& options, RepairReport* report) {
  return repair_any(model, photo, mask, options, report);
}

std::vector<std::uint16_t> repair_samples(const nn::Model& model, Samples<std::uint16_t> photo,
                                          std::span<const std::uint8_t> mask,
                                          const RepairOptions& options, RepairReport* report) {
  return repair_any(model, photo, mask, options, report);
}

std::vector<float> repair_samples(const nn::Model& model, Samples<float> photo,
                                  std::span<const std::uint8_t> mask,
                                  const RepairOptions& options, RepairReport* report) {
  return repair_any(model, photo, mask, options, report);
}

}  // namespace cae::train
