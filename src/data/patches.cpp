#include "data/patches.h"

#include <algorithm>
#include <sstream>

#include "cae/error.h"
#include "core/rng.h"

namespace cae::data {

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
    else
      throw Error("augment '" + text + "': unknown word '" + word +
                  "' (expected none or a comma-separated subset of hflip, vflip, rot90)");
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
    const int y0 = int(within / across), x0 = int(within % across);
    // Drawn whether or not augmentation is on, so that turning it on changes no crop.
    const std::uint64_t bits = rng.next_u64();
    const Augment& a = options.augment;
    const bool hflip = a.hflip && (bits & 1), vflip = a.vflip && (bits >> 1 & 1);
    const int turns = a.rot90 ? int(bits >> 2 & 3) : 0;
    std::uint8_t* out = set.pixels.data() + std::size_t(p) * set.image_size();
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        int sy, sx;
        source_of(y, x, h, w, turns, hflip, vflip, sy, sx);
        const std::uint8_t* src =
            image.pixels.data() + (std::size_t(y0 + sy) * image.w + (x0 + sx)) * c;
        std::copy(src, src + c, out + (std::size_t(y) * w + x) * c);
      }
  }
  return set;
}

}  // namespace cae::data
