#include "data/mask.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <opencv2/imgproc.hpp>

#include "cae/error.h"
#include "data/image_io.h"

namespace cae::data {

std::size_t Mask::damaged() const {
  return std::size_t(std::count_if(pixels.begin(), pixels.end(), [](auto v) { return v != 0; }));
}

namespace {

// The mask of an image's samples (T: 8- or 16-bit) by the conventions of mask.h; `threshold` is
// the smallest colour sample that marks damage.
template <class Img>
Mask mask_of(const Img& image, unsigned threshold) {
  using Sample = typename decltype(image.pixels)::value_type;
  constexpr unsigned opaque = sizeof(Sample) == 1 ? 255 : 65535;
  Mask mask;
  mask.h = image.h;
  mask.w = image.w;
  const std::size_t plane = std::size_t(image.h) * image.w;
  mask.pixels.assign(plane, 0);
  const int c = image.c;
  const bool alpha = c == 2 || c == 4;
  const Sample* px = image.pixels.data();
  bool alpha_says = false;  // some pixel is not opaque: the alpha channel marks the damage
  if (alpha)
    for (std::size_t p = 0; p < plane && !alpha_says; ++p) alpha_says = px[p * c + c - 1] != opaque;
  const int colours = alpha ? c - 1 : c;
  for (std::size_t p = 0; p < plane; ++p) {
    const Sample* s = px + p * c;
    bool damaged = false;
    if (alpha_says)
      damaged = s[c - 1] != 0;
    else
      for (int k = 0; k < colours; ++k) damaged = damaged || s[k] >= threshold;
    mask.pixels[p] = damaged;
  }
  return mask;
}

}  // namespace

Mask read_mask(const std::string& path, ReadOptions options) {
  options.keep_alpha = true;
  // A JPEG's compression leaves small values around a drawing's edges: it counts from 128.
  if (image_format(path) == ImageFormat::jpeg) return mask_of(read_image(path, options), 128);
  if (image_bits(path) <= 8) return mask_of(read_image(path, options), 1);
  return mask_of(read_image16(path, options), 1);
}

Mask read_mask_bytes(std::span<const std::uint8_t> bytes, const std::string& what,
                     ReadOptions options) {
  options.keep_alpha = true;
  if (image_format(bytes, what) == ImageFormat::jpeg)
    return mask_of(read_image_bytes(bytes, what, options), 128);
  if (image_bits(bytes, what) <= 8) return mask_of(read_image_bytes(bytes, what, options), 1);
  return mask_of(read_image16_bytes(bytes, what, options), 1);
}

MaskColor parse_mask_color(const std::string& text) {
  const auto fail = [&text]() {
    return Error("mask colour '" + text +
                 "': expected R,G,B or R,G,B:TOLERANCE, each a whole number from 0 to 255 "
                 "(e.g. 255,0,0 or 255,255,255:40)");
  };
  // The numbers, each followed by the separator the form puts after it ('\0': the end).
  const std::size_t colon = text.find(':');
  const int count = colon == std::string::npos ? 3 : 4;
  const char after[4] = {',', ',', count == 4 ? ':' : '\0', '\0'};
  int values[4] = {0, 0, 0, 0};
  const char* p = text.data();
  const char* end = p + text.size();
  for (int k = 0; k < count; ++k) {
    const auto [next, ec] = std::from_chars(p, end, values[k]);
    if (ec != std::errc() || next == p || values[k] < 0 || values[k] > 255) throw fail();
    p = next;
    if (after[k] == '\0') {
      if (p != end) throw fail();
    } else {
      if (p == end || *p != after[k]) throw fail();
      ++p;
    }
  }
  return MaskColor{values[0], values[1], values[2], values[3]};
}

namespace {

template <class Img>
Mask color_mask(const Img& photo, const MaskColor& color) {
  using Sample = typename decltype(photo.pixels)::value_type;
  constexpr int scale = sizeof(Sample) == 1 ? 1 : 257;  // 8-bit units to the photo's
  Mask mask;
  mask.h = photo.h;
  mask.w = photo.w;
  const std::size_t plane = std::size_t(photo.h) * photo.w;
  mask.pixels.assign(plane, 0);
  const int c = photo.c, colours = c >= 3 ? 3 : 1;
  const int want[3] = {scale * color.r, scale * color.g, scale * color.b};
  const int tolerance = scale * color.tolerance;
  for (std::size_t p = 0; p < plane; ++p) {
    const Sample* s = photo.pixels.data() + p * c;
    bool near = true;
    for (int k = 0; k < 3 && near; ++k)
      near = std::abs(int(s[colours == 3 ? k : 0]) - want[k]) <= tolerance;
    mask.pixels[p] = near;
  }
  return mask;
}

}  // namespace

Mask mask_from_color(const Image& photo, const MaskColor& color) {
  return color_mask(photo, color);
}

Mask mask_from_color(const Image16& photo, const MaskColor& color) {
  return color_mask(photo, color);
}

void grow_mask(Mask& mask, int radius) {
  if (radius < 0) throw Error("grow: the radius must be at least 0, found " + std::to_string(radius));
  if (radius == 0 || mask.pixels.empty()) return;
  // Only the damage's bounding box, widened by the radius, can change.
  int y0 = mask.h, y1 = -1, x0 = mask.w, x1 = -1;
  for (int y = 0; y < mask.h; ++y)
    for (int x = 0; x < mask.w; ++x)
      if (mask.pixels[std::size_t(y) * mask.w + x]) {
        y0 = std::min(y0, y), y1 = std::max(y1, y);
        x0 = std::min(x0, x), x1 = std::max(x1, x);
      }
  if (y1 < 0) return;
  y0 = std::max(0, y0 - radius), y1 = std::min(mask.h - 1, y1 + radius);
  x0 = std::max(0, x0 - radius), x1 = std::min(mask.w - 1, x1 + radius);
  // cv::dilate with a disc: the pixels whose centres lie within radius of the kernel's centre.
  cv::Mat disc(2 * radius + 1, 2 * radius + 1, CV_8U);
  for (int i = -radius; i <= radius; ++i)
    for (int j = -radius; j <= radius; ++j)
      disc.at<std::uint8_t>(i + radius, j + radius) = i * i + j * j <= radius * radius;
  cv::Mat whole(mask.h, mask.w, CV_8U, mask.pixels.data());
  cv::Mat box = whole(cv::Range(y0, y1 + 1), cv::Range(x0, x1 + 1));
  cv::Mat grown;
  // Outside the box there is no damage: the border reads 0, not the image beyond it.
  cv::dilate(box, grown, disc, cv::Point(-1, -1), 1, cv::BORDER_CONSTANT, cv::Scalar(0));
  grown.copyTo(box);
}

void add_mask(Mask& into, const Mask& other) {
  if (into.h != other.h || into.w != other.w)
    throw Error("masks of " + std::to_string(into.w) + "×" + std::to_string(into.h) + " and " +
                std::to_string(other.w) + "×" + std::to_string(other.h) + " cannot be joined");
  for (std::size_t p = 0; p < into.pixels.size(); ++p) into.pixels[p] |= other.pixels[p];
}

}  // namespace cae::data
