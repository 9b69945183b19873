// Named datasets, where they live, and the per-batch conversion from bytes to floats. Images
// stay as bytes in memory (47 MB for MNIST's training set) and become floats one batch at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/idx.h"
#include "data/png_io.h"
#include "ops/ops.h"

namespace cae::data {

// Images of their own sizes with one channel count c (HWC bytes each), and the files they came
// from (empty names for images made in memory).
struct ImageList {
  int c = 1;
  std::vector<Image> images;
  std::vector<std::string> files;
  int size() const { return int(images.size()); }
  bool empty() const { return images.empty(); }
  // The file of image i, or "image i" when it has no name: what an error message names.
  std::string name(int i) const;
};

struct Dataset {
  std::string name;
  ImageSet train, test;
  // The validation split (an image folder's DIR/val), of train's shape; n == 0: none.
  ImageSet val;
  // Whole images (FolderOptions::whole, for patch training): each split at the images' own
  // sizes; train, val and test above are then empty. val_whole may be empty (no split).
  ImageList train_whole, val_whole, test_whole;
  // Paired data (the Python module's arrays): what the model is to output for each image of
  // train and test, in their order and shape. Empty (n == 0) otherwise: the target is the image.
  ImageSet train_targets, test_targets;
  ops::Dims dims() const { return {train.c, train.h, train.w}; }
  bool paired() const { return train_targets.n > 0; }
  // The clean images the loss and the scores compare with.
  const ImageSet& train_clean() const { return paired() ? train_targets : train; }
  const ImageSet& test_clean() const { return paired() ? test_targets : test; }
  bool whole() const { return !train_whole.empty(); }
  bool has_val() const { return val.n > 0 || !val_whole.empty(); }
  // The channels of every image, whole or not.
  int channels() const { return whole() ? train_whole.c : train.c; }
  // The images a split holds, whole or not.
  int train_count() const { return whole() ? train_whole.size() : train.n; }
  int val_count() const { return whole() ? val_whole.size() : val.n; }
  int test_count() const { return whole() ? test_whole.size() : test.n; }
};

// Requires nothing. Ensures train and test hold images of one shape, and, when the set is paired,
// each target set the count and shape of its images; throws cae::Error saying which differs.
void check_dataset(const Dataset& ds);

// How a folder of images becomes a set of one working size.
enum class Fit {
  resize,  // scale each image to h×w (aspect not kept): area averaging down, bilinear up
  crop,    // cut the centred h×w window; an image smaller than that is an error
};

// Requires "resize" or "crop"; throws cae::Error otherwise.
Fit parse_fit(const std::string& name);

struct FolderOptions {
  int h = 0, w = 0;  // the working size; 0 = the images' own size, which must then be common
  Fit fit = Fit::resize;
  // Keep every image whole, at its own size (Dataset::train_whole, ...): for patch training.
  // h, w and fit are then unused; training images smaller than min_h×min_w are an error.
  bool whole = false;
  int min_h = 0, min_w = 0;
};

// "mnist" (<data_dir>/mnist), "fashion-mnist" (Debian's /usr/share/datasets/fashion-mnist, or
// <data_dir>/fashion-mnist), "photos" (<data_dir>/photos, an image folder), or a directory
// holding train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz], or a folder of PNG/JPEG
// images (data/folder.h says how it is
// split and sized; folder options apply to it only). Throws cae::Error saying where it looked
// and how to install. data_dir is the caller's: --data DIR, else $CAE_DATA or
// ~/.local/share/cae as the edge reads them (data_dir_from_environment, tools/environment.h).
Dataset load_dataset(const std::string& name, const std::string& data_dir,
                     const FolderOptions& folder = {});

// The float of a byte sample, wherever pixels become floats (training, evaluation, the API, the
// Python module): byte · (1/255), so that every path gives the same bits for the same pixels.
inline float byte_to_float(std::uint8_t v) { return v * (1.f / 255.f); }

// Requires indices in range. Ensures out holds images indices[0..count) as NCHW floats,
// byte_to_float of each byte.
void to_nchw(const ImageSet& set, const int* indices, int count, float* out);

// Keep only the first n images (n <= 0 keeps all).
void truncate(ImageSet& set, int n);
// Keep only the first n images (n <= 0 keeps all).
void truncate(ImageList& list, int n);
// Keep only the first train_n training and validation images and test_n test images, whole or
// not, targets with them.
void truncate(Dataset& ds, int train_n, int test_n);

}  // namespace cae::data
