// An informed model's fill: the classical inpainter (cv::inpaint, Telea or Navier–Stokes) whose
// repair the model's net corrects. The model holds it (nn::Model::fill) and its file carries it
// as text in meta "fill" ("navier-stokes r=3"). This is the one place that reads that text and
// that says which models can take a fill, so that a model file is checked as it is read, by
// every loader; running the inpainter belongs to train/fill.h, a floor higher.
#pragma once

#include <string>

namespace cae::nn {

class Model;

enum class FillMethod { telea, navier_stokes };

struct Fill {
  FillMethod method = FillMethod::navier_stokes;
  int radius = 3;  // cv::inpaint's inpaintRadius, pixels, 1 to 64
  bool operator==(const Fill&) const = default;
};

// "telea" or "navier-stokes", the names train::baseline_name gives the same inpainters.
const char* fill_method_name(FillMethod method);

// Requires nothing. Ensures the fill `text` names: "telea" or "navier-stokes", optionally
// followed by " r=R" (a whole number from 1 to 64; 3 when left out). Throws cae::Error
// ("fill 'TEXT': ...") naming what it could not read.
Fill parse_fill(const std::string& text);
// Ensures the canonical text of fill, "navier-stokes r=3": parse_fill(describe_fill(f)) == f.
std::string describe_fill(const Fill& fill);

// Requires nothing. Throws cae::Error beginning with `what` when `model` cannot take a fill: a
// blind model (a fill repairs the damage the mask marks), a loss other than mse (the net's
// output is added to the fill, an image, not bce's logits), or images of other than 1 or 3
// channels (cv::inpaint's).
void check_fill_model(const Model& model, const std::string& what);

}  // namespace cae::nn
