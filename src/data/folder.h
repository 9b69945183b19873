// Datasets from a folder of PNG and JPEG files, gray or RGB, 8 or 16 bits, of any sizes.
//
// Split: DIR/train, DIR/test and, when it is there, DIR/val (the validation split) when DIR holds
// no image files itself; otherwise the files of DIR sorted by name, every tenth (the 10th, 20th,
// ...) held out for testing, or the last one when there are fewer than ten, and no validation
// split. Channels: RGB when any image of any split is colour, gray images then repeated to
// R = G = B; gray otherwise. Size: every image is fitted to the working size (FolderOptions),
// which defaults to the images' common size, or, for patch training, kept whole.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/png_io.h"

namespace cae::data {

// The image files (.png, .jpg, .jpeg, any case) directly in dir, sorted by name.
std::vector<std::string> list_images(const std::string& dir);

// True when dir holds image files, or a train/ or test/ folder (load_image_folder then says
// which split has no images).
bool is_image_folder(const std::string& dir);

// Requires h, w > 0. Ensures an h×w image with image's channels, made as fit says; throws
// cae::Error naming `what` when a crop does not fit.
Image fit_image(const Image& image, int h, int w, Fit fit, const std::string& what);

// Requires at least one image file in dir's split (see above). Ensures train, val and test of
// one shape (working size × channels), or, with options.whole, train_whole, val_whole and
// test_whole at the images' own sizes. Throws cae::Error naming the file for an unreadable or
// corrupt image, for images of different sizes when no working size is given, and (whole) for
// a training image smaller than min_h×min_w; naming the folder for a split folder (train/, val/,
// test/) without images.
Dataset load_image_folder(const std::string& dir, const FolderOptions& options);

// "HxW" or "N" (square) as h and w > 0; throws cae::Error otherwise.
void parse_size(const std::string& text, int& h, int& w);

}  // namespace cae::data
