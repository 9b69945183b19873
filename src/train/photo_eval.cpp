#include "train/photo_eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <span>

#include "cae/error.h"
#include "data/folder.h"
#include "data/image_io.h"
#include "train/baselines.h"
#include "train/figures.h"
#include "train/fill.h"

namespace cae::train {

namespace fs = std::filesystem;

PhotoSplit photo_split(const std::string& dir) {
  PhotoSplit split;
  if (fs::is_directory(fs::path(dir) / "test")) {
    split.test = data::list_images(dir + "/test");
    split.val = data::list_images(dir + "/val");
  } else {
    const std::vector<std::string> flat = data::list_images(dir);
    for (std::size_t i = 9; i < flat.size(); i += 10) split.test.push_back(flat[i]);
    if (split.test.empty() && !flat.empty()) split.test.push_back(flat.back());
  }
  if (split.test.empty()) throw Error("image folder " + dir + ": no test image (PNG or JPEG)");
  return split;
}

std::vector<data::Image> read_photos(const std::vector<std::string>& files, int channels) {
  std::vector<data::Image> photos;
  for (const std::string& file : files) {
    data::Image image = data::read_image(file);
    if (image.c == 3 && channels == 1)
      throw Error(file + ": a colour photo, the model takes gray images");
    if (image.h < 11 || image.w < 11)
      throw Error(file + ": " + std::to_string(image.h) + "x" + std::to_string(image.w) +
                  " is smaller than 11x11, the SSIM window");
    if (image.c == 1 && channels == 3) {
      std::vector<std::uint8_t> rgb(image.pixels.size() * 3);
      for (std::size_t p = 0; p < image.pixels.size(); ++p)
        rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = image.pixels[p];
      image.pixels = std::move(rgb);
      image.c = 3;
    }
    photos.push_back(std::move(image));
  }
  return photos;
}

DamagedPhoto damage_photo(const data::Image& photo, const data::Corruption& corruption,
                          std::uint64_t seed, std::uint64_t key, std::uint64_t index) {
  DamagedPhoto d;
  d.dims = {photo.c, photo.h, photo.w};
  d.clean.resize(d.dims.size());
  d.damaged.resize(d.dims.size());
  d.mask.resize(std::size_t(photo.h) * photo.w);
  from_image(photo, d.clean.data());
  data::corrupt(corruption, d.clean.data(), d.damaged.data(), 1, d.dims, seed, Stream::test_noise,
                key, index, d.mask.data());
  return d;
}

namespace {

std::vector<DamagedPhoto> damage_all(const std::vector<data::Image>& photos, std::size_t count,
                                     const data::Corruption& corruption, std::uint64_t seed,
                                     std::uint64_t key) {
  std::vector<DamagedPhoto> out;
  for (std::size_t i = 0; i < std::min(count, photos.size()); ++i)
    out.push_back(damage_photo(photos[i], corruption, seed, key, i));
  return out;
}

// The region scores need the mask only when the damage is spatial; noise leaves it all 0.
const float* region_of(const DamagedPhoto& p, const data::Corruption& corruption) {
  return corruption.spatial() ? p.mask.data() : nullptr;
}

// The grid parameter with the best mean tuning score over the `count` tuning photos.
float tune_baseline(Baseline kind, const DamagedPhoto* tuning, std::size_t count) {
  float best = baseline_grid(kind).front();
  double best_score = -1e300;
  for (float param : baseline_grid(kind)) {
    double sum = 0;
    int counted = 0;
    for (const DamagedPhoto& p : std::span(tuning, count)) {
      std::vector<float> out(p.dims.size());
      apply_baseline(kind, param, p.damaged.data(), out.data(), 1, p.dims, p.mask.data());
      const double s = tuning_score(kind, out.data(), p.clean.data(), p.mask.data(), p.dims);
      if (!std::isnan(s)) sum += s, ++counted;
    }
    const double mean = counted ? sum / counted : -1e300;
    if (mean > best_score) best_score = mean, best = param;
  }
  return best;
}

}  // namespace

Comparison compare_photos(const std::vector<NamedModel>& models,
                          const std::vector<data::Image>& test,
                          const std::vector<std::string>& names,
                          const std::vector<data::Image>& val, const data::Corruption& corruption,
                          std::uint64_t seed, const CompareOptions& options,
                          const TileOptions& tiles, const AdaptOptions* adapt) {
  if (test.empty()) throw Error("eval: no test photo");
  if (adapt) check_adaptable(corruption, "eval --adapt");
  for (const auto& m : models) {
    if (m.model->output().c != test[0].c)
      throw Error("eval: model '" + m.name + "' repairs " + std::to_string(m.model->output().c) +
                  "-channel images, the photos have " + std::to_string(test[0].c));
    require_damage_mask(*m.model, corruption);
  }
  const std::vector<DamagedPhoto> photos = damage_all(test, test.size(), corruption, seed, 0);
  Comparison c;
  c.corruption = corruption.describe();
  c.seed = seed;
  c.images = int(test.size());
  c.region = corruption.spatial();
  c.image_names = names;
  c.tuned_on = val.empty() ? "test" : "val";
  const std::vector<DamagedPhoto> tuning =
      val.empty() ? damage_all(test, std::size_t(options.tune_images), corruption, seed, 0)
                  : damage_all(val, std::size_t(options.tune_images), corruption, seed, kValKey);
  c.tune_images = int(tuning.size());

  // Scores every photo's repair; repair(p) returns its output image.
  auto method = [&](const std::string& name, const std::string& setting, auto repair) {
    Method m{name, setting, {}, {}};
    for (const DamagedPhoto& p : photos) {
      const std::vector<float> out = repair(p);
      m.per_image.push_back(
          score_image(out.data(), p.clean.data(), region_of(p, corruption), p.dims));
    }
    take_means(m);
    c.methods.push_back(std::move(m));
  };
  method("noisy", "", [](const DamagedPhoto& p) { return p.damaged; });
  const std::string symmetries =
      tiles.ensemble > 1 ? std::to_string(tiles.ensemble) + " symmetries" : "";
  for (const auto& named : models) {
    method(named.name, symmetries, [&](const DamagedPhoto& p) {
      return denoise_tiled(*named.model, p.damaged.data(), p.dims, tiles, p.mask.data());
    });
    if (adapt)
      method(named.name + " adapted",
             describe_adapt(*adapt) + (symmetries.empty() ? "" : ", " + symmetries),
             [&](const DamagedPhoto& p) {
        const nn::Model adapted = adapt_to_photo(*named.model, p.damaged.data(), p.mask.data(),
                                                 p.dims, *adapt, std::uint64_t(&p - photos.data()));
        return denoise_tiled(adapted, p.damaged.data(), p.dims, tiles, p.mask.data());
      });
  }
  if (options.baselines)
    for (Baseline kind : baselines_for(corruption)) {
      const float best = tune_baseline(kind, tuning.data(), tuning.size());
      method(baseline_name(kind), baseline_setting(kind, best), [&](const DamagedPhoto& p) {
        std::vector<float> out(p.dims.size());
        apply_baseline(kind, best, p.damaged.data(), out.data(), 1, p.dims, p.mask.data());
        return out;
      });
    }
  return c;
}

PhotoRepair repair_photo(const nn::Model& model, const data::Image& photo,
                         const data::Corruption& corruption, std::uint64_t seed,
                         const TileOptions& tiles, const AdaptOptions* adapt) {
  if (!corruption.spatial())
    throw Error("compare: the corruption '" + corruption.describe() +
                "' has no masks, lines, crosshair or strokes for cv::inpaint to fill");
  if (adapt) check_adaptable(corruption, "compare --adapt");
  if (model.output().c != photo.c)
    throw Error("compare: the model repairs " + std::to_string(model.output().c) +
                "-channel images, the photo has " + std::to_string(photo.c));
  PhotoRepair r;
  r.photo = damage_photo(photo, corruption, seed, 0, 0);
  const DamagedPhoto& p = r.photo;
  r.telea_radius = tune_baseline(Baseline::telea, &p, 1);
  std::optional<nn::Model> adapted;
  if (adapt) adapted = adapt_to_photo(model, p.damaged.data(), p.mask.data(), p.dims, *adapt, 0);
  r.adapted = adapted.has_value();
  r.model_out =
      denoise_tiled(adapted ? *adapted : model, p.damaged.data(), p.dims, tiles, p.mask.data(),
                    &r.tiles);
  r.telea_out.resize(p.dims.size());
  apply_baseline(Baseline::telea, r.telea_radius, p.damaged.data(), r.telea_out.data(), 1, p.dims,
                 p.mask.data());
  r.damaged = score_image(p.damaged.data(), p.clean.data(), p.mask.data(), p.dims);
  r.model = score_image(r.model_out.data(), p.clean.data(), p.mask.data(), p.dims);
  r.telea = score_image(r.telea_out.data(), p.clean.data(), p.mask.data(), p.dims);
  return r;
}

}  // namespace cae::train
