// Patch training's data: the crops each epoch trains on, drawn from images of any size.
//
// Crop p of an epoch comes from make_rng(seed, Stream::patches, epoch, p) alone: the first draw
// picks one of all the crop positions of all the images (so a large photo gives crops in
// proportion to its area, and every position is equally likely), the second the flips and
// turns, a third (with a zoom only) the zoom factor.
// The epoch's crops therefore depend on the seed and the epoch only, the same on every rank,
// after a resume, and whatever the batching.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace cae::data {

// The random turns and flips applied to each crop; each, when on, happens with odds 1/2
// (rot90: 0, 1, 2 or 3 quarter turns counter-clockwise, even odds). scale_min < scale_max
// turns on random zoom: the crop is a window of (h/s)×(w/s) pixels centred where the unzoomed
// crop would be (moved inside the image where it would stick out), resized to h×w by
// cv::resize (area averaging to shrink, bilinear to enlarge), s drawn log-uniformly from
// [scale_min, scale_max]: s > 1 shows a smoother, enlarged world (a fundus photo, a
// microscope's), s < 1 a denser one, than the training photos' own.
struct Augment {
  bool hflip = false, vflip = false, rot90 = false;
  float scale_min = 1, scale_max = 1;
  bool zoom() const { return scale_min != scale_max; }
  bool any() const { return hflip || vflip || rot90 || zoom(); }
};

// Requires "", "none" or a comma-separated subset of hflip, vflip, rot90 and scale=MIN-MAX
// (1/8 <= MIN < MAX <= 8). Throws cae::Error naming the word otherwise.
Augment parse_augment(const std::string& text);
// "none", or the names that are on in the order hflip,vflip,rot90,scale=MIN-MAX (each number
// the shortest text that reads back as it): parse_augment reads it back.
std::string format_augment(const Augment& a);

struct PatchOptions {
  int h = 0, w = 0;   // the crop size; 0: no patch training
  int per_epoch = 0;  // crops per epoch; 0: default_patches_per_epoch
  Augment augment;
  bool on() const { return h > 0 && w > 0; }
};

// Requires images non-empty, h, w > 0 and batch > 0. Ensures enough crops to cover the images'
// total area once (sum of H·W over h·w, rounded up), rounded up to whole batches.
int default_patches_per_epoch(const ImageList& images, int h, int w, int batch);

// The crops of one epoch: options.per_epoch if given, else default_patches_per_epoch.
int patches_per_epoch(const ImageList& images, const PatchOptions& options, int batch);

// Requires every image of images at least options.h×options.w, and rot90 only for square
// crops (a zoom's window is made to fit: at most the image); throws cae::Error naming the first
// image that is smaller (its file when images has names) or the non-square size. Ensures `count`
// crops of options.h×options.w×images.c, crop p as the header says, HWC like the images.
ImageSet draw_patches(const ImageList& images, const PatchOptions& options, int count,
                      std::uint64_t seed, int epoch);

// The crops of one image's undamaged part, for adapting a model to the photo it repairs
// (train/adapt.h): only windows that hold no damaged pixel, so that no crop shows what the
// damage hides. Crop p of draw(count, seed, key, first) comes from make_rng(seed, Stream::adapt,
// key, first + p) alone: its first draw picks one of the clear windows (each equally likely),
// the rest turn and flip it as draw_patches does.
class ClearCrops {
 public:
  // Requires damage: image.h×image.w (nonzero = damaged), options.on(), no zoom (its window
  // would reach past the crop), square crops for rot90 and near >= 0; throws cae::Error
  // otherwise. Ensures the clear windows found (none when the image is smaller than the crop);
  // with near > 0 only those with damage within `near` pixels of their edge (the window grown by
  // near on each side, clipped to the image, holds a damaged pixel).
  ClearCrops(const Image& image, const float* damage, const PatchOptions& options, int near = 0);
  // The number of clear windows.
  std::size_t windows() const { return positions_.size(); }
  // Requires windows() > 0, else throws cae::Error saying that no window is clear. Ensures
  // `count` crops of options.h×options.w×image.c, HWC.
  ImageSet draw(int count, std::uint64_t seed, std::uint64_t key, std::uint64_t first) const;

 private:
  Image image_;
  PatchOptions options_;
  int cols_ = 0;                          // window positions per row
  std::vector<std::uint32_t> positions_;  // y * cols_ + x of each clear window
};

// Requires options as draw_patches does. Throws its cae::Error when they are not met.
void check_patch_sources(const ImageList& images, const PatchOptions& options);

}  // namespace cae::data
