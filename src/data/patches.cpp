#include "data/patches.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "cae/error.h"
#include "core/rng.h"
#include "core/text.h"

namespace cae::data {

namespace {

// word is scale=MIN-MAX; sets a's range or throws naming text and word.
void parse_scale(const std::string& text, const std::string& word, Augment& a) {
  const char* p = word.data() + 6;
  const char* end = word.data() + word.size();
  float lo = 0, hi = 0;
  auto r = std::from_chars(p, end, lo);
  bool ok = r.ec == std::errc() && r.ptr != end && *r.ptr == '-';
  if (ok) {
    r = std::from_chars(r.ptr + 1, end, hi);
    ok = r.ec == std::errc() && r.ptr == end;
  }
  if (!ok || !(lo >= 0.125f && lo < hi && hi <= 8))
    throw Error("augment '" + text + "': '" + word +
                "' must be scale=MIN-MAX, zoom factors with 1/8 <= MIN < MAX <= 8");
  a.scale_min = lo;
  a.scale_max = hi;
}

}  // namespace

Augment parse_augment(const std::string& text) {
  Augment a;
  if (text.empty() || text == "none") return a;
  std::istringstream words(text);
  std::string word;
  while (std::getline(words, word, ',')) {
    if (word == "hflip")
      a.hflip = true;
    else if (word == "vflip")
      a.vflip = true;
    else if (word == "rot90")
      a.rot90 = true;
    else if (word.rfind("scale=", 0) == 0)
      parse_scale(text, word, a);
    else
      throw Error("augment '" + text + "': unknown word '" + word +
                  "' (expected none or a comma-separated subset of hflip, vflip, rot90, "
                  "scale=MIN-MAX)");
  }
  return a;
}

std::string format_augment(const Augment& a) {
  std::string text;
  for (const auto& [on, name] :
       {std::pair{a.hflip, "hflip"}, {a.vflip, "vflip"}, {a.rot90, "rot90"}}) {
    if (!on) continue;
    if (!text.empty()) text += ',';
    text += name;
  }
  if (a.zoom()) {
    if (!text.empty()) text += ',';
    text += "scale=";
    text += exact_text(a.scale_min);
    text += '-';
    text += exact_text(a.scale_max);
  }
  return text.empty() ? "none" : text;
}

int default_patches_per_epoch(const ImageList& images, int h, int w, int batch) {
  std::uint64_t area = 0;
  for (const Image& image : images.images) area += std::uint64_t(image.h) * image.w;
  const std::uint64_t crop = std::uint64_t(h) * w;
  const std::uint64_t crops = std::max<std::uint64_t>(1, (area + crop - 1) / crop);
  const std::uint64_t batches = (crops + batch - 1) / batch;
  return int(std::min<std::uint64_t>(batches * batch, 1u << 30));
}

int patches_per_epoch(const ImageList& images, const PatchOptions& options, int batch) {
  return options.per_epoch > 0 ? options.per_epoch
                               : default_patches_per_epoch(images, options.h, options.w, batch);
}

void check_patch_sources(const ImageList& images, const PatchOptions& options) {
  const std::string size = std::to_string(options.h) + "x" + std::to_string(options.w);
  if (options.augment.rot90 && options.h != options.w)
    throw Error("augment rot90 needs a square patch: a quarter turn of a " + size +
                " crop is not " + size + " (use --patch N, or hflip,vflip)");
  if (images.empty()) throw Error("patch training needs at least one training image");
  for (int i = 0; i < images.size(); ++i) {
    const Image& image = images.images[std::size_t(i)];
    if (image.h < options.h || image.w < options.w)
      throw Error(images.name(i) + " is " + std::to_string(image.h) + "x" +
                  std::to_string(image.w) + ", smaller than the patch " + size +
                  ": remove it from the training images or use a smaller --patch");
  }
}

namespace {

// Where output pixel (y, x) of an h×w crop, after `turns` quarter turns counter-clockwise and
// then the flips, comes from in the crop before them. A quarter turn needs h == w.
void source_of(int y, int x, int h, int w, int turns, bool hflip, bool vflip, int& sy, int& sx) {
  if (vflip) y = h - 1 - y;
  if (hflip) x = w - 1 - x;
  // Undo the turns one by one: a counter-clockwise turn puts source (r, c) at (n-1-c, r), so
  // output (y, x) came from (x, n-1-y).
  for (int t = 0; t < turns; ++t) {
    const int r = x, c = w - 1 - y;
    y = r;
    x = c;
  }
  sy = y;
  sx = x;
}

}  // namespace

namespace {

// Crop p's pixels into out: the h×w crop at (y0, x0) of image, zoomed, turned and flipped as
// options.augment says, from the draws after rng's first (the position).
void copy_crop(const Image& image, int y0, int x0, const PatchOptions& options, Rng& rng,
               std::uint8_t* out) {
  const int h = options.h, w = options.w, c = image.c;
  // Drawn whether or not augmentation is on, so that turning it on changes no crop.
  const std::uint64_t bits = rng.next_u64();
  const Augment& a = options.augment;
  const bool hflip = a.hflip && (bits & 1), vflip = a.vflip && (bits >> 1 & 1);
  const int turns = a.rot90 ? int(bits >> 2 & 3) : 0;
  const std::uint8_t* from = image.pixels.data();
  std::size_t from_w = std::size_t(image.w);
  std::vector<std::uint8_t> zoomed;
  if (a.zoom()) {
    // The window (h/s)×(w/s), centred on the unzoomed crop's centre and kept in the image.
    const double s = a.scale_min * std::pow(double(a.scale_max) / a.scale_min, rng.uniform());
    const int wh = std::clamp(int(std::lround(h / s)), 1, image.h);
    const int ww = std::clamp(int(std::lround(w / s)), 1, image.w);
    const int wy = std::clamp(y0 + h / 2 - wh / 2, 0, image.h - wh);
    const int wx = std::clamp(x0 + w / 2 - ww / 2, 0, image.w - ww);
    const cv::Mat whole(image.h, image.w, CV_8UC(c), const_cast<std::uint8_t*>(from));
    zoomed.resize(std::size_t(h) * w * c);
    cv::Mat dst(h, w, CV_8UC(c), zoomed.data());
    cv::resize(whole(cv::Rect(wx, wy, ww, wh)), dst, dst.size(), 0, 0,
               wh >= h ? cv::INTER_AREA : cv::INTER_LINEAR_EXACT);
    from = zoomed.data();
    from_w = std::size_t(w);
    y0 = x0 = 0;
  }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int sy, sx;
      source_of(y, x, h, w, turns, hflip, vflip, sy, sx);
      const std::uint8_t* src = from + (std::size_t(y0 + sy) * from_w + (x0 + sx)) * c;
      std::copy(src, src + c, out + (std::size_t(y) * w + x) * c);
    }
}

ImageSet empty_set(int count, int h, int w, int c) {
  ImageSet set;
  set.n = count;
  set.h = h;
  set.w = w;
  set.c = c;
  set.pixels.resize(set.image_size() * std::size_t(count));
  return set;
}

}  // namespace

ImageSet draw_patches(const ImageList& images, const PatchOptions& options, int count,
                      std::uint64_t seed, int epoch) {
  check_patch_sources(images, options);
  const int h = options.h, w = options.w;
  // Crop positions of image k: [first[k], first[k + 1]).
  std::vector<std::uint64_t> first(images.images.size() + 1, 0);
  for (std::size_t k = 0; k < images.images.size(); ++k)
    first[k + 1] =
        first[k] + std::uint64_t(images.images[k].h - h + 1) * (images.images[k].w - w + 1);
  ImageSet set = empty_set(count, h, w, images.c);
#pragma omp parallel for schedule(static)
  for (int p = 0; p < count; ++p) {
    Rng rng = make_rng(seed, Stream::patches, std::uint64_t(epoch), std::uint64_t(p));
    const std::uint64_t at = rng.below(first.back());
    const std::size_t k =
        std::size_t(std::upper_bound(first.begin(), first.end(), at) - first.begin()) - 1;
    const Image& image = images.images[k];
    const std::uint64_t within = at - first[k], across = std::uint64_t(image.w - w + 1);
    copy_crop(image, int(within / across), int(within % across), options, rng,
              set.pixels.data() + std::size_t(p) * set.image_size());
  }
  return set;
}

ClearCrops::ClearCrops(const Image& image, const float* damage, const PatchOptions& options,
                       int near)
    : image_(image), options_(options) {
  const int h = options.h, w = options.w;
  if (!options.on()) throw Error("clear crops: the patch size is not set");
  if (near < 0) throw Error("clear crops: the distance to the damage is negative");
  if (options.augment.zoom())
    throw Error("clear crops: a zoom's window reaches beyond the crop, into the damage");
  if (options.augment.rot90 && h != w)
    throw Error("clear crops: quarter turns need square crops, not " + std::to_string(h) + "x" +
                std::to_string(w));
  const int rows = image.h - h + 1, cols = image.w - w + 1;
  if (rows < 1 || cols < 1) return;
  // Damaged pixels above and left of each point (a summed-area table), so that a crop's count
  // is four lookups.
  const std::size_t stride = std::size_t(image.w) + 1;
  std::vector<std::uint32_t> sat((std::size_t(image.h) + 1) * stride, 0);
  for (int y = 0; y < image.h; ++y)
    for (int x = 0; x < image.w; ++x)
      sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + sat[(y + 1) * stride + x] -
                                      sat[y * stride + x] +
                                      (damage[std::size_t(y) * image.w + x] != 0.f);
  // Damaged pixels in rows [y0, y1) and columns [x0, x1), clipped to the image.
  const auto damaged = [&](int y0, int x0, int y1, int x1) {
    y0 = std::max(y0, 0), x0 = std::max(x0, 0);
    y1 = std::min(y1, image.h), x1 = std::min(x1, image.w);
    return sat[std::size_t(y1) * stride + x1] - sat[std::size_t(y0) * stride + x1] -
           sat[std::size_t(y1) * stride + x0] + sat[std::size_t(y0) * stride + x0];
  };
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      if (damaged(y, x, y + h, x + w) == 0 &&
          (near == 0 || damaged(y - near, x - near, y + h + near, x + w + near) > 0))
        positions_.push_back(std::uint32_t(y) * std::uint32_t(cols) + x);
  cols_ = cols;
}

ImageSet ClearCrops::draw(int count, std::uint64_t seed, std::uint64_t key,
                          std::uint64_t first) const {
  if (positions_.empty())
    throw Error("clear crops: no " + std::to_string(options_.h) + "x" + std::to_string(options_.w) +
                " window of the " + std::to_string(image_.h) + "x" + std::to_string(image_.w) +
                " image is free of damage");
  ImageSet set = empty_set(count, options_.h, options_.w, image_.c);
#pragma omp parallel for schedule(static)
  for (int p = 0; p < count; ++p) {
    Rng rng = make_rng(seed, Stream::adapt, key, first + std::uint64_t(p));
    const std::uint32_t at = positions_[rng.below(positions_.size())];
    copy_crop(image_, int(at / std::uint32_t(cols_)), int(at % std::uint32_t(cols_)), options_, rng,
              set.pixels.data() + std::size_t(p) * set.image_size());
  }
  return set;
}

}  // namespace cae::data
