#include "train/fill.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "cae/error.h"
#include "data/corrupt.h"

namespace cae::train {

Fill parse_fill(const std::string& text) {
  std::istringstream words(text);
  std::string name, extra;
  Fill fill;
  words >> name;
  if (name == baseline_name(Baseline::telea))
    fill.kind = Baseline::telea;
  else if (name == baseline_name(Baseline::navier_stokes))
    fill.kind = Baseline::navier_stokes;
  else
    throw Error("fill '" + text + "': the inpainter must be telea or navier-stokes");
  if (std::string word; words >> word) {
    int r = 0;
    const char* end = word.data() + word.size();
    auto [ptr, ec] = word.size() > 2 ? std::from_chars(word.data() + 2, end, r)
                                     : std::from_chars_result{word.data(), std::errc()};
    if (word.rfind("r=", 0) != 0 || ec != std::errc() || ptr != end || r < 1 || r > 64)
      throw Error("fill '" + text + "': '" + word +
                  "' must be r=R, the radius a whole number of pixels from 1 to 64");
    fill.radius = float(r);
  }
  if (words >> extra) throw Error("fill '" + text + "': unexpected '" + extra + "'");
  return fill;
}

std::string describe_fill(const Fill& fill) {
  return std::string(baseline_name(fill.kind)) + " r=" + std::to_string(int(fill.radius));
}

void check_fill_model(const nn::Model& model, const std::string& what) {
  if (!model.informed())
    throw Error(what +
                ": a fill repairs the damage the mask marks, so the model must be "
                "informed (--informed)");
  if (model.loss() != nn::LossKind::mse)
    throw Error(what +
                ": the net's output is added to the fill, which needs an image output "
                "(--loss mse), not bce's logits");
  if (model.output().c != 1 && model.output().c != 3)
    throw Error(what + ": cv::inpaint fills images of 1 or 3 channels, not " +
                std::to_string(model.output().c));
}

std::optional<Fill> model_fill(const nn::Model& model, const std::string& what) {
  if (model.fill().empty()) return std::nullopt;
  Fill fill;
  try {
    fill = parse_fill(model.fill());
  } catch (const Error& e) {
    throw Error(what + ": meta " + e.what());
  }
  check_fill_model(model, what);
  return fill;
}

InformedRun::InformedRun(const nn::Model& model, int count_max)
    : fill_(model_fill(model, "the model")), dims_(model.output()) {
  if (!model.informed()) throw Error("InformedRun: the model is blind");
  input_.resize(std::size_t(count_max) * model.input().size());
  if (fill_) {
    filled_.resize(std::size_t(count_max) * dims_.size());
    output_.resize(filled_.size());
  }
}

const float* InformedRun::input(const float* damaged, const float* mask, int count) {
  const float* image = damaged;
  if (fill_) {
    apply_baseline(fill_->kind, fill_->radius, damaged, filled_.data(), count, dims_, mask);
    image = filled_.data();
  }
  data::with_mask_channel(image, mask, count, dims_, input_.data());
  return input_.data();
}

const float* InformedRun::output(const float* net_out, int count) {
  if (!fill_) return net_out;
  const std::size_t n = std::size_t(count) * dims_.size();
  for (std::size_t i = 0; i < n; ++i) output_[i] = net_out[i] + filled_[i];
  return output_.data();
}

}  // namespace cae::train
