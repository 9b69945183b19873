// Denoising images of any size with a model trained on one size: the image is cut into tiles of
// the model's input size that overlap, each tile is run through the model, and the outputs are
// blended with weights that ramp smoothly (sin², cos²) across each overlap, so no seam shows.
// A pixel covered by one tile only takes that tile's output unchanged (weight exactly 1).
#pragma once

#include <cstdint>
#include <vector>

#include "nn/model.h"
#include "ops/ops.h"

namespace cae::train {

struct TileOptions {
  int overlap = -1;  // pixels shared by neighbouring tiles; -1: a quarter of the tile
  int batch = 32;    // tiles per forward pass
  int ensemble = 1;  // symmetries averaged (1, 2, 4, 8): ensemble_size
  ops::Backend backend = ops::Backend::dnnl;
  ops::ExecutorOptions executor{};  // how backend builds the tiles' executor, where one is made
};

// Requires tile >= 1 and 0 <= overlap < tile. Ensures the starts of the tiles along an axis of
// `length`: {0} when length <= tile; otherwise n = ceil((length − overlap) / (tile − overlap))
// tiles spread evenly from 0 to length − tile, so neighbours share at least `overlap` pixels.
std::vector<int> tile_starts(int length, int tile, int overlap);

// Ensures the blend weight of each of the tile's `tile` positions along the axis: 1 outside its
// overlaps with the previous and next tile, sin² rising across the overlap with the previous,
// cos² falling across the overlap with the next (so two neighbours' weights sum to 1 there).
std::vector<float> tile_weights(const std::vector<int>& starts, int k, int tile);

// What a denoise_tiled call ran: the tiles of its passes, and those it ran (an informed model's
// tiles that hold no damage are not run).
struct TileStats {
  int tiles = 0, tiles_run = 0;
};

// Ensures n when n is 1, 2, 4 or 8, the symmetries of a self-ensemble: the image as it is,
// flipped left-right, flipped upside down, turned 180°, and the four same of its transpose, the
// first n of them. Throws cae::Error otherwise.
int ensemble_size(int n);

// A rectangle of an image: rows [y, y + h), columns [x, x + w).
struct Rect {
  int y = 0, x = 0, h = 0, w = 0;
};

// Where repair_windows reads a photo and writes its repair, one window at a time, so that a large
// photo with a little damage is never converted whole (repair.cpp reads samples of any type
// through one; denoise_tiled, float planes).
class PhotoWindows {
 public:
  virtual ~PhotoWindows() = default;
  // Ensures xs holds the columns of row y that the mask marks damaged, in increasing order.
  virtual void damaged_columns(int y, std::vector<int>& xs) const = 0;
  // Requires r inside the photo. Ensures planes holds r's colour planes as floats in [0, 1] (the
  // model's output channels, CHW of r.h × r.w) and mask r's damage plane (1 damaged, 0 kept).
  virtual void read(Rect r, float* planes, float* mask) const = 0;
  // Requires r inside the photo, planes: a repair of r (CHW), take: r.h × r.w flags. Ensures the
  // output holds the repair at the pixels take marks, and leaves every other pixel as it is.
  virtual void write(Rect r, const float* planes, const std::uint8_t* take) = 0;
};

// Requires an informed model, options.ensemble 1, d: the photo's dims (d.c the model's output
// channels), exec: an inference executor of the model's net, or null to build one for
// min(options.batch, tiles run). Ensures the informed repair denoise_tiled makes, written
// through io at every damaged pixel and nowhere else; only what lies near the damage is read.
// The tiles that touch the damage run, grouped into windows: each window is the bounding box of
// a group of tiles that overlap or touch one another, so every tile that covers a pixel is in
// that pixel's window. A fill is computed on each window and 2·(radius + 1) pixels around it
// (piece by piece: train/baselines.h), so damage that reaches another window's tiles from within
// that margin is filled as the whole photo's fill would fill it. Returns the tiles and those run.
TileStats repair_windows(const nn::Model& model, ops::Executor* exec, ops::Dims d,
                         const TileOptions& options, PhotoWindows& io);

// Requires image: dims.size() NCHW floats in [0, 1], dims.c == model.output().c, and for an
// informed model the damage mask (h·w floats, as data::corrupt writes it; ignored otherwise).
// Ensures the model's output image (NCHW, dims) assembled from tiles of the model's input size,
// an informed model's tiles carrying the mask's tile as their last channel (its repair keeps
// the image's pixels outside the mask: data::keep_undamaged, so only its tiles that hold a
// damaged pixel are run); an image smaller than a tile along an axis is padded by repeating its
// edge, and the padding dropped. With options.ensemble n > 1, the mean of n such repairs, each of
// the image (and mask) under one of the first n symmetries (ensemble_size), turned back: a
// self-ensemble, n times the work. A fill (train/fill.h) is made once, of the untouched image;
// an informed model without the ensemble runs through repair_windows (its fill by windows).
// *stats, when given, says how many tiles ran. Throws cae::Error on a channel mismatch, a
// missing mask or an ensemble size ensemble_size refuses.
std::vector<float> denoise_tiled(const nn::Model& model, const float* image, ops::Dims dims,
                                 const TileOptions& options, const float* mask = nullptr,
                                 TileStats* stats = nullptr);

// True when a photo of `colours` colour channels goes through the model: the model's own count,
// or gray (1) through a colour model (3), as gray in every channel (denoise_photo, a repair).
bool takes_colours(const nn::Model& model, int colours);

// Ensures the photo (planes of dims) denoised by a blind model, as denoise_tiled does; a gray
// photo (dims.c == 1) through a colour model (3 channels) runs as gray in every channel, and the
// mean of the three output channels comes back (as a repair does). Throws cae::Error naming both
// counts when the channels fit neither way.
std::vector<float> denoise_photo(const nn::Model& model, const float* image, ops::Dims dims,
                                 const TileOptions& options, TileStats* stats = nullptr);

// The same with an inference executor of model's net (any batch; options.batch and backend
// unused) built once for many images; ensures what the overload above does.
std::vector<float> denoise_tiled(const nn::Model& model, ops::Executor& exec, const float* image,
                                 ops::Dims dims, const TileOptions& options,
                                 const float* mask = nullptr, TileStats* stats = nullptr);

}  // namespace cae::train
