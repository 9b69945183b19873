#include "data/corrupt.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <vector>

#include "cae/error.h"

namespace cae::data {

std::string Corruption::describe() const {
  std::ostringstream s;
  const char* sep = "";
  auto next = [&]() -> std::ostringstream& {
    s << sep;
    sep = " + ";
    return s;
  };
  if (gaussian_max > 0)
    next() << "gaussian sigma=" << gaussian_sigma << " max=" << gaussian_max;
  else if (gaussian_sigma > 0)
    next() << "gaussian sigma=" << gaussian_sigma;
  if (speckle_sigma > 0) next() << "speckle sigma=" << speckle_sigma;
  if (salt_pepper > 0) next() << "salt-pepper fraction=" << salt_pepper;
  if (masks > 0)
    next() << "masks count=" << masks << " min=" << mask_min << " max=" << mask_max
           << " value=" << mask_value;
  if (lines > 0)
    next() << "lines count=" << lines << " thickness=" << line_thickness << " value=" << line_value;
  if (crosshair)
    next() << "crosshair thickness=" << line_thickness << " jitter=" << crosshair_jitter
           << " value=" << line_value;
  if (strokes > 0)
    next() << "strokes count=" << strokes << " min=" << stroke_min << " max=" << stroke_max
           << " vertices=" << stroke_vertices << " length=" << stroke_length
           << " value=" << stroke_value;
  // The historical text of "no noise", so that such model files and checkpoints still match.
  if (s.str().empty()) s << "gaussian sigma=" << gaussian_sigma;
  return s.str();
}

namespace {

void check_range(bool ok, const std::string& field, const std::string& range, double found) {
  if (!ok) {
    std::ostringstream s;
    s << "corruption: " << field << " must be " << range << ", found " << found;
    throw Error(s.str());
  }
}

}  // namespace

void Corruption::validate() const {
  check_range(std::isfinite(gaussian_sigma) && gaussian_sigma >= 0, "gaussian sigma", ">= 0",
              gaussian_sigma);
  check_range(gaussian_max == 0 || (std::isfinite(gaussian_max) && gaussian_max >= gaussian_sigma),
              "gaussian max", "0 (a fixed sigma) or >= sigma (" + std::to_string(gaussian_sigma) + ")",
              gaussian_max);
  check_range(std::isfinite(speckle_sigma) && speckle_sigma >= 0, "speckle sigma", ">= 0",
              speckle_sigma);
  check_range(salt_pepper >= 0 && salt_pepper <= 1, "salt-pepper fraction", "in [0, 1]",
              salt_pepper);
  check_range(masks >= 0, "masks count", ">= 0", masks);
  check_range(mask_min >= 1, "masks min", ">= 1", mask_min);
  check_range(mask_max >= mask_min, "masks max", ">= min (" + std::to_string(mask_min) + ")",
              mask_max);
  check_range(mask_value >= 0 && mask_value <= 1, "masks value", "in [0, 1]", mask_value);
  check_range(lines >= 0, "lines count", ">= 0", lines);
  check_range(line_thickness >= 1, "line thickness", ">= 1", line_thickness);
  check_range(crosshair_jitter >= 0, "crosshair jitter", ">= 0", crosshair_jitter);
  check_range(line_value >= 0 && line_value <= 1, "line value", "in [0, 1]", line_value);
  check_range(strokes >= 0, "strokes count", ">= 0", strokes);
  check_range(stroke_min >= 1, "strokes min", ">= 1", stroke_min);
  check_range(stroke_max >= stroke_min, "strokes max",
              ">= min (" + std::to_string(stroke_min) + ")", stroke_max);
  check_range(stroke_vertices >= 1, "strokes vertices", ">= 1", stroke_vertices);
  check_range(stroke_length >= 1, "strokes length", ">= 1", stroke_length);
  check_range(stroke_value >= 0 && stroke_value <= 1, "strokes value", "in [0, 1]", stroke_value);
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

double number(const std::string& model, const std::string& key, const std::string& value) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || !std::isfinite(v))
    throw Error("corruption '" + model + "': " + key + "=" + value + " is not a number");
  return v;
}

int integer(const std::string& model, const std::string& key, const std::string& value) {
  const double v = number(model, key, value);
  if (v != std::floor(v) || std::abs(v) > 1e9)
    throw Error("corruption '" + model + "': " + key + "=" + value + " is not a whole number");
  return int(v);
}

}  // namespace

Corruption parse_corruption(const std::string& text) {
  Corruption c;
  c.gaussian_sigma = 0;  // models left out are off
  std::vector<std::string> seen;
  std::string part;
  std::istringstream parts(text);
  bool any = false;
  while (std::getline(parts, part, '+')) {
    std::istringstream words(trim(part));
    std::string model;
    if (!(words >> model)) throw Error("corruption '" + text + "': an empty model between '+'");
    any = true;
    if (std::find(seen.begin(), seen.end(), model) != seen.end())
      throw Error("corruption '" + text + "': model '" + model + "' appears twice");
    seen.push_back(model);
    if (model == "none") continue;
    if (model == "masks")
      c.masks = 1;
    else if (model == "lines")
      c.lines = 1;
    else if (model == "crosshair")
      c.crosshair = true;
    else if (model == "strokes")
      c.strokes = 1;
    else if (model == "gaussian")
      c.gaussian_sigma = 0.5f;
    else if (model == "speckle")
      c.speckle_sigma = 0.2f;
    else if (model == "salt-pepper")
      c.salt_pepper = 0.1f;
    else
      throw Error("corruption: unknown model '" + model +
                  "' (expected gaussian, speckle, salt-pepper, masks, lines, crosshair, strokes "
                  "or none)");
    std::string word;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error("corruption '" + model + "': expected key=value, found '" + word + "'");
      const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
      if (model == "gaussian" && key == "max")
        c.gaussian_max = float(number(model, key, value));
      else if ((model == "gaussian" || model == "speckle") && key == "sigma")
        (model == "gaussian" ? c.gaussian_sigma : c.speckle_sigma) =
            float(number(model, key, value));
      else if (model == "salt-pepper" && key == "fraction")
        c.salt_pepper = float(number(model, key, value));
      else if (model == "masks" && key == "count")
        c.masks = integer(model, key, value);
      else if (model == "masks" && key == "min")
        c.mask_min = integer(model, key, value);
      else if (model == "masks" && key == "max")
        c.mask_max = integer(model, key, value);
      else if (model == "masks" && key == "value")
        c.mask_value = float(number(model, key, value));
      else if (model == "lines" && key == "count")
        c.lines = integer(model, key, value);
      else if ((model == "lines" || model == "crosshair") && key == "thickness")
        c.line_thickness = integer(model, key, value);
      else if ((model == "lines" || model == "crosshair") && key == "value")
        c.line_value = float(number(model, key, value));
      else if (model == "crosshair" && key == "jitter")
        c.crosshair_jitter = integer(model, key, value);
      else if (model == "strokes" && key == "count")
        c.strokes = integer(model, key, value);
      else if (model == "strokes" && key == "min")
        c.stroke_min = integer(model, key, value);
      else if (model == "strokes" && key == "max")
        c.stroke_max = integer(model, key, value);
      else if (model == "strokes" && key == "vertices")
        c.stroke_vertices = integer(model, key, value);
      else if (model == "strokes" && key == "length")
        c.stroke_length = integer(model, key, value);
      else if (model == "strokes" && key == "value")
        c.stroke_value = float(number(model, key, value));
      else
        throw Error("corruption '" + model + "': unknown key '" + key + "'");
    }
  }
  if (!any) throw Error("corruption: empty description (use 'none' for no corruption)");
  c.validate();
  return c;
}

namespace {

// Sets every channel of the rows [y0, y1) × columns [x0, x1) of one NCHW image to value, and
// those pixels of its h×w mask (when there is one) to 1.
void fill(float* image, float* mask, ops::Dims d, int y0, int y1, int x0, int x1, float value) {
  y0 = std::max(y0, 0), x0 = std::max(x0, 0), y1 = std::min(y1, d.h), x1 = std::min(x1, d.w);
  const int width = std::max(x1 - x0, 0);
  for (int ch = 0; ch < d.c; ++ch)
    for (int y = y0; y < y1; ++y)
      std::fill_n(image + (std::size_t(ch) * d.h + y) * d.w + x0, width, value);
  if (mask)
    for (int y = y0; y < y1; ++y) std::fill_n(mask + std::size_t(y) * d.w + x0, width, 1.f);
}

// Paints every pixel of one NCHW image whose centre lies within radius of the segment from
// (ay, ax) to (by, bx) (a disk when they coincide): a band with round ends, clipped to the image.
// Marks those pixels in its h×w mask when there is one.
void paint_segment(float* image, float* mask, ops::Dims d, double ay, double ax, double by,
                   double bx, double radius, float value) {
  // The bounding box, clamped before it becomes int: a long walk can leave the image far behind.
  auto row = [&](double v) { return int(std::clamp(std::floor(v), 0.0, double(d.h))); };
  auto column = [&](double v) { return int(std::clamp(std::floor(v), 0.0, double(d.w))); };
  const int y0 = row(std::min(ay, by) - radius), y1 = row(std::max(ay, by) + radius + 1);
  const int x0 = column(std::min(ax, bx) - radius), x1 = column(std::max(ax, bx) + radius + 1);
  const double dy = by - ay, dx = bx - ax, length2 = dy * dy + dx * dx;
  const std::size_t hw = std::size_t(d.h) * d.w;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const double py = y + 0.5 - ay, px = x + 0.5 - ax;
      const double t = length2 > 0 ? std::clamp((py * dy + px * dx) / length2, 0.0, 1.0) : 0.0;
      const double ey = py - t * dy, ex = px - t * dx;
      if (ey * ey + ex * ex > radius * radius) continue;
      const std::size_t p = std::size_t(y) * d.w + x;
      for (int ch = 0; ch < d.c; ++ch) image[ch * hw + p] = value;
      if (mask) mask[p] = 1.f;
    }
}

// One brush stroke (Corruption::strokes): a random walk of straight segments with random turns,
// drawn in the order corrupt.h gives. Coordinates are in pixels, a pixel's centre at +0.5.
void paint_stroke(const Corruption& c, float* image, float* mask, ops::Dims d, Rng& rng) {
  double y = rng.uniform() * d.h, x = rng.uniform() * d.w;
  const int span = c.stroke_max - c.stroke_min + 1;
  const double radius = 0.5 * (c.stroke_min + int(rng.below(std::uint64_t(span))));
  double angle = 2 * std::numbers::pi * rng.uniform();
  paint_segment(image, mask, d, y, x, y, x, radius, c.stroke_value);
  for (int v = 1; v < c.stroke_vertices; ++v) {
    if (v > 1) angle += std::numbers::pi * (rng.uniform() - 0.5);
    const double length = c.stroke_length * (0.5 + 0.5 * rng.uniform());
    const double ny = y + length * std::sin(angle), nx = x + length * std::cos(angle);
    paint_segment(image, mask, d, y, x, ny, nx, radius, c.stroke_value);
    y = ny, x = nx;
  }
}

// A start in [0, length - size] (0 when the band is as long as the image or longer).
int place(Rng& rng, int length, int size) {
  return length > size ? int(rng.below(std::uint64_t(length - size + 1))) : 0;
}

void corrupt_one(const Corruption& c, const float* src, float* dst, float* mask, ops::Dims d,
                 Rng& rng) {
  const std::size_t n = d.size();
  const std::size_t hw = std::size_t(d.h) * d.w;
  std::copy(src, src + n, dst);
  if (mask) std::fill_n(mask, hw, 0.f);
  const float sigma = c.gaussian_max > 0
                          ? c.gaussian_sigma + (c.gaussian_max - c.gaussian_sigma) * rng.uniform()
                          : c.gaussian_sigma;
  if (sigma > 0)
    for (std::size_t i = 0; i < n; ++i) dst[i] = std::clamp(dst[i] + sigma * rng.normal(), 0.f, 1.f);
  if (c.speckle_sigma > 0)
    for (std::size_t i = 0; i < n; ++i)
      dst[i] = std::clamp(dst[i] + dst[i] * c.speckle_sigma * rng.normal(), 0.f, 1.f);
  if (c.salt_pepper > 0)
    for (std::size_t p = 0; p < hw; ++p) {
      if (rng.uniform() >= c.salt_pepper) continue;
      const float v = rng.uniform() < 0.5f ? 0.f : 1.f;
      for (int ch = 0; ch < d.c; ++ch) dst[std::size_t(ch) * hw + p] = v;
    }
  for (int m = 0; m < c.masks; ++m) {
    const int span = c.mask_max - c.mask_min + 1;
    const int mh = std::min(d.h, c.mask_min + int(rng.below(std::uint64_t(span))));
    const int mw = std::min(d.w, c.mask_min + int(rng.below(std::uint64_t(span))));
    const int y = place(rng, d.h, mh), x = place(rng, d.w, mw);
    fill(dst, mask, d, y, y + mh, x, x + mw, c.mask_value);
  }
  const int t = c.line_thickness;
  for (int l = 0; l < c.lines; ++l) {
    if (rng.below(2) == 0) {
      const int y = place(rng, d.h, t);
      fill(dst, mask, d, y, y + t, 0, d.w, c.line_value);
    } else {
      const int x = place(rng, d.w, t);
      fill(dst, mask, d, 0, d.h, x, x + t, c.line_value);
    }
  }
  if (c.crosshair) {
    const int j = c.crosshair_jitter;
    auto centre = [&](int length) {
      const int shift = j > 0 ? int(rng.below(std::uint64_t(2 * j + 1))) - j : 0;
      return std::clamp((length - t) / 2 + shift, 0, std::max(length - t, 0));
    };
    const int y = centre(d.h), x = centre(d.w);
    fill(dst, mask, d, y, y + t, 0, d.w, c.line_value);
    fill(dst, mask, d, 0, d.h, x, x + t, c.line_value);
  }
  for (int s = 0; s < c.strokes; ++s) paint_stroke(c, dst, mask, d, rng);
}

}  // namespace

void corrupt(const Corruption& c, const float* clean, float* noisy, int count, ops::Dims dims,
             std::uint64_t seed, Stream stream, std::uint64_t key, std::uint64_t first_index,
             float* mask) {
  c.validate();
  const std::size_t image = dims.size();
#pragma omp parallel for schedule(static)
  for (int b = 0; b < count; ++b) {
    Rng rng = make_rng(seed, stream, key, first_index + std::uint64_t(b));
    float* image_mask = mask ? mask + std::size_t(b) * dims.h * dims.w : nullptr;
    corrupt_one(c, clean + std::size_t(b) * image, noisy + std::size_t(b) * image, image_mask, dims,
                rng);
  }
}

void with_mask_channel(const float* noisy, const float* mask, int count, ops::Dims dims,
                       float* out) {
  const std::size_t image = dims.size(), plane = std::size_t(dims.h) * dims.w;
  for (int b = 0; b < count; ++b) {
    float* dst = out + std::size_t(b) * (image + plane);
    std::copy_n(noisy + std::size_t(b) * image, image, dst);
    std::copy_n(mask + std::size_t(b) * plane, plane, dst + image);
  }
}

void keep_undamaged(const float* damaged, const float* mask, int count, ops::Dims dims,
                    float* image) {
  const std::size_t plane = std::size_t(dims.h) * dims.w;
  for (int b = 0; b < count; ++b)
    for (int ch = 0; ch < dims.c; ++ch) {
      const std::size_t offset = (std::size_t(b) * dims.c + ch) * plane;
      const float* m = mask + std::size_t(b) * plane;
      for (std::size_t p = 0; p < plane; ++p)
        if (m[p] == 0.f) image[offset + p] = damaged[offset + p];
    }
}

}  // namespace cae::data
