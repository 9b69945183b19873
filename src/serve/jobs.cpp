#include "serve/jobs.h"

#include <nlohmann/json.hpp>

#include "data/image_io.h"
#include "data/mask.h"
#include "data/png_io.h"
#include "train/adapt.h"
#include "train/figures.h"
#include "train/repair.h"

namespace cae::serve {

namespace {

// As cae repair reads its files (cmd_repair.cpp, read_options), with the server's pixel limit.
data::ReadOptions read_options(const JobLimits& limits) {
  data::ReadOptions r;
  r.max_pixels = limits.max_pixels;
  r.limit_flag = "--max-megapixels";
  r.keep_alpha = true;
  return r;
}

std::string size_text(int w, int h) { return std::to_string(w) + "×" + std::to_string(h); }

template <class Img>
std::vector<std::uint8_t> repaired(const Img& photo, const ServedModel& served,
                                   const RepairRequest& request, const JobLimits& limits,
                                   const train::RepairOptions& options, JobReport* report) {
  data::Mask mask = data::read_mask_bytes(request.mask, "mask", read_options(limits));
  if (mask.w != photo.w || mask.h != photo.h)
    throw RequestError(400, "mask: the mask is " + size_text(mask.w, mask.h) + ", the image " +
                                size_text(photo.w, photo.h) + ": they must be the same size");
  data::grow_mask(mask, request.grow);
  train::RepairReport done;
  Img out = photo;
  out.pixels = train::repair_samples(served.model, {photo.pixels, photo.h, photo.w, photo.c},
                                     mask.pixels, options, &done);
  if (report) {
    report->w = photo.w, report->h = photo.h, report->c = photo.c;
    report->damaged = done.damaged;
    report->tiles = done.tiles;
    report->adapted = done.adapted;
  }
  return data::png_bytes(out, "the repair");
}

}  // namespace

std::vector<std::uint8_t> repair_png(const ServedModel& served, const RepairRequest& request,
                                     const JobLimits& limits, ops::Backend backend,
                                     const ops::ExecutorOptions& executor, JobReport* report) {
  const nn::Model& model = served.model;
  if (!model.informed())
    throw RequestError(400, "model '" + served.name +
                                "' is blind: it takes no mask and denoises whole images "
                                "(POST /api/v1/denoise); a repair needs an informed model");
  if (request.grow < 0 || request.grow > 1000)
    throw RequestError(400, "grow: " + std::to_string(request.grow) + ", expected 0 to 1000");
  if (request.adapt < 0 || request.adapt > limits.max_adapt_steps)
    throw RequestError(400, "adapt: " + std::to_string(request.adapt) + " steps, expected 0 to " +
                                std::to_string(limits.max_adapt_steps) +
                                " (the server's --max-adapt-steps)");
  // cae repair's options, flag for flag (cmd_repair.cpp run(), AdaptFlags::options).
  train::RepairOptions options;
  options.tiles.backend = backend;
  options.tiles.executor = executor;
  options.adapt.steps = request.adapt;
  options.adapt.seed = request.seed;
  options.adapt.backend = backend;
  options.adapt.executor = executor;
  options.adapt.training = train::model_corruption(model);

  const int bits = data::image_bits(request.image, "image") <= 8 ? 8 : 16;
  if (report) report->bits = bits;
  if (bits == 8)
    return repaired(data::read_image_bytes(request.image, "image", read_options(limits)), served,
                    request, limits, options, report);
  return repaired(data::read_image16_bytes(request.image, "image", read_options(limits)), served,
                  request, limits, options, report);
}

std::vector<std::uint8_t> denoise_png(const ServedModel& served,
                                      std::span<const std::uint8_t> image, const JobLimits& limits,
                                      ops::Backend backend, const ops::ExecutorOptions& executor,
                                      JobReport* report) {
  const nn::Model& model = served.model;
  if (model.informed())
    throw RequestError(400, "model '" + served.name +
                                "' is informed: it repairs where a mask says (POST "
                                "/api/v1/repair); denoising needs a blind model");
  // As cae denoise reads its files (cmd_denoise.cpp): 8-bit samples, alpha dropped.
  data::ReadOptions read;
  read.max_pixels = limits.max_pixels;
  read.limit_flag = "--max-megapixels";
  const data::Image img = data::read_image_bytes(image, "image", read);
  const ops::Dims dims = model.input();
  if (!train::takes_colours(model, img.c))
    throw RequestError(400, "image: it has " + std::to_string(img.c) + " channel(s), the model '" +
                                served.name + "' takes " + std::to_string(dims.c));
  const ops::Dims image_dims{img.c, img.h, img.w};
  std::vector<float> x(image_dims.size());
  train::from_image(img, x.data());
  train::TileOptions tiles;
  tiles.backend = backend;
  tiles.executor = executor;
  train::TileStats stats;
  const std::vector<float> y = train::denoise_photo(model, x.data(), image_dims, tiles, &stats);
  if (report) {
    report->w = img.w, report->h = img.h, report->c = img.c, report->bits = 8;
    report->tiles = stats;
  }
  return data::png_bytes(train::to_image(y.data(), image_dims), "the denoised image");
}

float trained_noise(const nn::Model& model) {
  return train::model_corruption(model).gaussian_sigma;
}

std::string models_json(const std::vector<ServedModel>& models, const JobLimits& limits,
                        std::size_t max_upload_bytes) {
  nlohmann::json list = nlohmann::json::array();
  for (const ServedModel& served : models) {
    const nn::Model& m = served.model;
    const bool informed = m.informed();
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [key, value] : m.meta()) meta[key] = value;
    nlohmann::json entry = {
        {"name", served.name},
        {"kind", informed ? "informed" : "blind"},
        {"route", informed ? "/api/v1/repair" : "/api/v1/denoise"},
        {"channels", informed ? m.input().c - 1 : m.input().c},
        {"tile", {m.input().h, m.input().w}},
        {"corruption", train::model_corruption(m).describe()},
        {"meta", meta},
    };
    if (informed) entry["fill"] = m.fill();
    if (!informed) entry["noise_sigma"] = trained_noise(m);
    list.push_back(entry);
  }
  const nlohmann::json doc = {
      {"models", list},
      {"limits",
       {{"max_upload_bytes", max_upload_bytes},
        {"max_pixels", limits.max_pixels},
        {"max_adapt_steps", limits.max_adapt_steps}}},
  };
  return doc.dump(2);
}

}  // namespace cae::serve
