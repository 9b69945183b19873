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

ImageSet draw_patches(const ImageList& images, const PatchOptions& options, int count,
                      std::uint64_t seed, int epoch) {
  check_patch_sources(images, options);
  const int h = options.h, w = options.w, c = images.c;
  // Crop positions of image k: [first[k], first[k + 1]).
  std::vector<std::uint64_t> first(images.images.size() + 1, 0);
  for (std::size_t k = 0; k < images.images.size(); ++k)
    first[k + 1] =
        first[k] + std::uint64_t(images.images[k].h - h + 1) * (images.images[k].w - w + 1);
  ImageSet set;
  set.n = count;
  set.h = h;
  set.w = w;
  set.c = c;
  set.pixels.resize(set.image_size() * std::size_t(count));
#pragma omp parallel for schedule(static)
  for (int p = 0; p < count; ++p) {
    Rng rng = make_rng(seed, Stream::patches, std::uint64_t(epoch), std::uint64_t(p));
    const std::uint64_t at = rng.below(first.back());
    const std::size_t k =
        std::size_t(std::upper_bound(first.begin(), first.end(), at) - first.begin()) - 1;
    const Image& image = images.images[k];
    const std::uint64_t within = at - first[k], across = std::uint64_t(image.w - w + 1);
    int y0 = int(within / across), x0 = int(within % across);
    // Drawn whether or not augmentation is on, so that turning it on changes no crop.
    const std::uint64_t bits = rng.next_u64();
    const Augment& a = options.augment;
    const bool hflip = a.hflip && (bits & 1), vflip = a.vflip && (bits >> 1 & 1);
    const int turns = a.rot90 ? int(bits >> 2 & 3) : 0;
    std::uint8_t* out = set.pixels.data() + std::size_t(p) * set.image_size();
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
  return set;
}

}  // namespace cae::data
