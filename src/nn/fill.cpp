#include "nn/fill.h"

#include <charconv>
#include <sstream>

#include "cae/error.h"
#include "nn/model.h"

namespace cae::nn {

const char* fill_method_name(FillMethod method) {
  return method == FillMethod::telea ? "telea" : "navier-stokes";
}

Fill parse_fill(const std::string& text) {
  std::istringstream words(text);
  std::string name, extra;
  Fill fill;
  words >> name;
  if (name == fill_method_name(FillMethod::telea))
    fill.method = FillMethod::telea;
  else if (name == fill_method_name(FillMethod::navier_stokes))
    fill.method = FillMethod::navier_stokes;
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
    fill.radius = r;
  }
  if (words >> extra) throw Error("fill '" + text + "': unexpected '" + extra + "'");
  return fill;
}

std::string describe_fill(const Fill& fill) {
  return std::string(fill_method_name(fill.method)) + " r=" + std::to_string(fill.radius);
}

void check_fill_model(const Model& model, const std::string& what) {
  if (!model.informed())
    throw Error(what +
                ": a fill repairs the damage the mask marks, so the model must be "
                "informed (--informed)");
  if (model.loss() != LossKind::mse)
    throw Error(what +
                ": the net's output is added to the fill, which needs an image output "
                "(--loss mse), not bce's logits");
  if (model.output().c != 1 && model.output().c != 3)
    throw Error(what + ": cv::inpaint fills images of 1 or 3 channels, not " +
                std::to_string(model.output().c));
}

}  // namespace cae::nn
