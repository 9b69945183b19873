// Corruption models: what damage the autoencoder learns to undo. Each image's damage comes from
// its own random stream, keyed by the caller, so results do not depend on threads or batching.
//
// The models combine; on each image they apply in this fixed order, all drawing from the image's
// one stream: Gaussian, speckle, salt-and-pepper, masks, lines, crosshair, strokes. Noise is per
// element (each channel its own draw); salt-and-pepper, masks, lines and strokes hit whole pixels
// (every channel). A model that is off draws nothing, and strokes, added last, draw after all
// the others, so turning them on changes no other model's damage: each stroke draws its start
// row and column, its width, its direction, then for each segment a turn (from the second on)
// and a length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/rng.h"
#include "ops/ops.h"

namespace cae::data {

struct Corruption {
  float gaussian_sigma = 0.5f;  // clip(x + sigma N(0,1), 0, 1); 0 disables it
  // > 0: each image's sigma is drawn uniform in [gaussian_sigma, gaussian_max] from its stream,
  // before its noise (a blind denoiser learns every level of a range); 0: sigma is fixed.
  float gaussian_max = 0.f;
  float speckle_sigma = 0.f;    // clip(x + x sigma N(0,1), 0, 1); 0 disables it
  float salt_pepper = 0.f;      // fraction of pixels set to 0 or 1 (even odds); 0 disables it
  int masks = 0;                // rectangles filled with mask_value (inpainting); 0 disables them
  int mask_min = 4, mask_max = 8;  // side lengths in pixels, uniform in [min, max], per side
  float mask_value = 0.f;
  int lines = 0;             // full-length horizontal or vertical lines (even odds), anywhere
  bool crosshair = false;    // one horizontal and one vertical line through the centre
  int line_thickness = 1;    // lines and crosshair
  int crosshair_jitter = 2;  // the crosshair's centre moves uniformly by up to ± this, per axis
  float line_value = 1.f;    // lines and crosshair
  // Free-form brush strokes, as people paint over a scratch or an object to remove: a polyline
  // of stroke_vertices points from a random start, each segment stroke_length/2 to
  // stroke_length pixels long and turned by up to ±90° from the one before, painted as a band
  // of a width uniform in [stroke_min, stroke_max] pixels with round ends and joints (every
  // pixel whose centre lies within width/2 of the polyline), clipped at the image's edges.
  // Filled with stroke_value, white by default as lines are: a stroke of 0 would not show on
  // MNIST's black background. 0 strokes disables them; 1 vertex is a round dab.
  int strokes = 0;
  int stroke_min = 4, stroke_max = 8;
  int stroke_vertices = 5;
  int stroke_length = 16;
  float stroke_value = 1.f;

  // "gaussian sigma=0.5" for the default; models joined by " + " in the order they apply, e.g.
  // "gaussian sigma=0.3 + masks count=2 min=4 max=8 value=0"; "gaussian sigma=0" when nothing
  // is on. Stored in model files (meta "corruption"); parse_corruption reads it back.
  std::string describe() const;
  // Throws cae::Error naming the field and its allowed range when a value is out of range.
  void validate() const;
  // True when Gaussian or speckle noise or salt-and-pepper change pixels one by one.
  bool noisy() const {
    return gaussian_sigma > 0 || gaussian_max > 0 || speckle_sigma > 0 || salt_pepper > 0;
  }
  // True when masks, lines, the crosshair or strokes damage regions (the damage mask marks them).
  bool spatial() const { return masks > 0 || lines > 0 || crosshair || strokes > 0; }
};

// Requires text in describe()'s form: models joined by '+', each a name (gaussian, speckle,
// salt-pepper, masks, lines, crosshair, strokes, none) then key=value words; keys left out keep
// their defaults, and models left out are off. Ensures
// parse_corruption(c.describe()).describe() == c.describe(). Throws cae::Error naming the model,
// key or value it could not read.
Corruption parse_corruption(const std::string& text);

// Requires clean and noisy of count·dims.size() NCHW floats in [0, 1] (may not alias), and a
// valid c. Image b's damage comes from make_rng(seed, stream, key, first_index + b) alone, so it
// is the same whatever the batch it is part of. With a mask (count·h·w floats), each image's h×w
// plane is set to 1 at the pixels that masks, lines, the crosshair or strokes covered (the damage
// an inpainter is told about: cv::inpaint's mask, the informed model's extra channel) and 0
// elsewhere; noise and salt-and-pepper leave it 0. Asking for it changes no draw.
void corrupt(const Corruption& c, const float* clean, float* noisy, int count, ops::Dims dims,
             std::uint64_t seed, Stream stream, std::uint64_t key, std::uint64_t first_index,
             float* mask = nullptr);

// Requires noisy of count·dims.size() NCHW floats and mask of count·h·w (as corrupt() writes
// it). Ensures out holds count images of dims.c + 1 channels: each image's planes, then its
// mask plane; the input of an informed model (nn::Model::informed()). out may not alias.
void with_mask_channel(const float* noisy, const float* mask, int count, ops::Dims dims,
                       float* out);

// Requires image and damaged of count·dims.size() NCHW floats and mask as corrupt() writes it.
// Ensures every pixel the mask leaves 0 holds damaged's value again: an informed repair changes
// only what it was told is damaged, as cv::inpaint does, so its scores compare with it.
void keep_undamaged(const float* damaged, const float* mask, int count, ops::Dims dims,
                    float* image);

}  // namespace cae::data
