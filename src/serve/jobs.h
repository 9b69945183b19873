// What the API's routes do, without HTTP: an upload is decoded the way `cae repair` and `cae
// denoise` read the same bytes from a file, the same library function runs (repair_samples,
// denoise_tiled), and the result comes back as the PNG file those commands would write. So a
// repair here equals `cae repair` with the same model and mask, bit for bit.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cae/error.h"
#include "nn/model.h"
#include "ops/ops.h"
#include "serve/limits.h"
#include "train/tiling.h"

namespace cae::serve {

// A model the server offers, named by its file's stem (-m inpaint.cae is "inpaint").
struct ServedModel {
  std::string name;
  nn::Model model;
};

// A request the server refuses, with the 4xx status that says why (the library's cae::Error
// answers 400, data::PixelLimitError 413).
class RequestError : public Error {
 public:
  RequestError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct JobLimits {
  std::uint64_t max_pixels = std::uint64_t(kDefaultMaxMegapixels * 1e6);
  int max_adapt_steps = kDefaultMaxAdaptSteps;
};

// A repair's inputs as the form fields of POST /api/v1/repair give them.
struct RepairRequest {
  std::span<const std::uint8_t> image, mask;  // the files' bytes: PNG (any depth) or JPEG
  int grow = 0;                               // cae repair --grow
  int adapt = 0;                              // cae repair --adapt (steps; 0 off)
  std::uint64_t seed = 0;                     // cae repair --seed
};

// What a job did, for the response's headers.
struct JobReport {
  int w = 0, h = 0, c = 0, bits = 8;
  std::size_t damaged = 0;
  train::TileStats tiles;
  bool adapted = false;
};

// Requires an informed model. Ensures the PNG bytes `cae repair IMAGE --mask MASK -m MODEL
// [--grow G] [--adapt A --seed S] --max-megapixels (limits)` writes for the same files.
// Throws RequestError or cae::Error (data::PixelLimitError for an image or mask above
// limits.max_pixels), naming the field ("image", "mask", "grow", "adapt") and the problem.
std::vector<std::uint8_t> repair_png(const ServedModel& served, const RepairRequest& request,
                                     const JobLimits& limits, ops::Backend backend,
                                     const ops::ExecutorOptions& executor,
                                     JobReport* report = nullptr);

// Requires a blind model. Ensures the PNG bytes `cae denoise IMAGE -m MODEL` writes (8-bit,
// the image's channels, which must be the model's). Throws as repair_png.
std::vector<std::uint8_t> denoise_png(const ServedModel& served,
                                      std::span<const std::uint8_t> image, const JobLimits& limits,
                                      ops::Backend backend, const ops::ExecutorOptions& executor,
                                      JobReport* report = nullptr);

// The noise a blind model was trained for: its meta "corruption"'s Gaussian sigma (samples in
// [0, 1]), or 0 when it names none (a model trained on other damage).
float trained_noise(const nn::Model& model);

// Ensures the JSON of GET /api/v1/models: each model's name, kind (informed: repair; blind:
// denoise), route, image channels, tile size, fill, trained damage and meta, and the limits.
std::string models_json(const std::vector<ServedModel>& models, const JobLimits& limits,
                        std::size_t max_upload_bytes);

}  // namespace cae::serve
