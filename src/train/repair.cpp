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

// The photo's samples through repair_windows: read window by window as floats (a gray photo's
// one channel repeated for a colour model), the repair written back rounded to samples (a gray
// photo's the mean of the three repaired channels), only at the pixels the windows take.
template <class T>
class SampleWindows : public PhotoWindows {
 public:
  SampleWindows(Samples<T> photo, std::span<const std::uint8_t> mask, int model_c,
                std::vector<T>& out)
      : photo_(photo), mask_(mask), model_c_(model_c), out_(out) {
    const bool alpha = photo.c == 2 || photo.c == 4;
    colours_ = alpha ? photo.c - 1 : photo.c;
  }
  void damaged_columns(int y, std::vector<int>& xs) const override {
    xs.clear();
    const std::uint8_t* row = mask_.data() + std::size_t(y) * photo_.w;
    for (int x = 0; x < photo_.w; ++x)
      if (row[x]) xs.push_back(x);
  }
  void read(Rect r, float* planes, float* mask) const override {
    const std::size_t rp = std::size_t(r.h) * r.w;
    for (int y = 0; y < r.h; ++y)
      for (int x = 0; x < r.w; ++x) {
        const std::size_t p = std::size_t(r.y + y) * photo_.w + r.x + x, at = std::size_t(y) * r.w + x;
        mask[at] = mask_[p] != 0;
        for (int k = 0; k < model_c_; ++k)
          planes[k * rp + at] = to_unit(photo_.values[p * photo_.c + std::min(k, colours_ - 1)]);
      }
  }
  void write(Rect r, const float* planes, const std::uint8_t* take) override {
    const std::size_t rp = std::size_t(r.h) * r.w;
    for (int y = 0; y < r.h; ++y)
      for (int x = 0; x < r.w; ++x) {
        const std::size_t at = std::size_t(y) * r.w + x;
        if (!take[at]) continue;
        T* dst = out_.data() + (std::size_t(r.y + y) * photo_.w + r.x + x) * photo_.c;
        if (colours_ == model_c_) {
          for (int k = 0; k < colours_; ++k) dst[k] = from_unit<T>(planes[k * rp + at]);
        } else {  // a gray photo repaired as colour: the mean of the three
          dst[0] = from_unit<T>((planes[at] + planes[rp + at] + planes[2 * rp + at]) / 3.f);
        }
      }
  }

 private:
  Samples<T> photo_;
  std::span<const std::uint8_t> mask_;
  int model_c_, colours_;
  std::vector<T>& out_;
};

TileStats repair_through(const nn::Model& model, ops::Dims d, const TileOptions& tiles,
                         PhotoWindows& io) {
  if (ensemble_size(tiles.ensemble) == 1) return repair_windows(model, nullptr, d, tiles, io);
  // The symmetries' ensemble turns whole photos: through the planes.
  std::vector<float> planes(d.size()), mask(std::size_t(d.h) * d.w);
  io.read({0, 0, d.h, d.w}, planes.data(), mask.data());
  TileStats stats;
  const std::vector<float> out = denoise_tiled(model, planes.data(), d, tiles, mask.data(), &stats);
  std::vector<std::uint8_t> take(mask.size());
  for (std::size_t p = 0; p < mask.size(); ++p) take[p] = mask[p] != 0;
  io.write({0, 0, d.h, d.w}, out.data(), take.data());
  return stats;
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
  if (!takes_colours(model, colours))
    throw Error("repair: the photo has " + std::to_string(colours) +
                " colour channel(s), the model repairs " + std::to_string(model_c));
  if constexpr (std::is_floating_point_v<T>)
    for (std::size_t i = 0; i < photo.values.size(); ++i)
      if (!(photo.values[i] >= 0.f && photo.values[i] <= 1.f))
        throw Error("repair: sample " + std::to_string(i) + " is " +
                    std::to_string(photo.values[i]) + ", expected a number from 0 to 1");

  const ops::Dims d{model_c, h, w};
  std::vector<T> out(photo.values.begin(), photo.values.end());
  SampleWindows<T> io(photo, mask, model_c, out);
  RepairReport r;
  r.damaged = std::size_t(std::count_if(mask.begin(), mask.end(), [](auto m) { return m != 0; }));
  if (r.damaged > 0 && options.adapt.on()) {
    // The adaptation learns from the whole photo's undamaged part: its planes, once.
    std::vector<float> planes(d.size()), damage(plane);
    io.read({0, 0, h, w}, planes.data(), damage.data());
    const nn::Model adapted = adapt_to_photo(model, planes.data(), damage.data(), d, options.adapt, 0);
    r.adapted = true;
    r.tiles = repair_through(adapted, d, options.tiles, io);
  } else if (r.damaged > 0) {
    r.tiles = repair_through(model, d, options.tiles, io);
  }
  if (report) *report = r;
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
