// Datasets from a folder of PNG and JPEG files, gray or RGB, 8 or 16 bits, of any sizes.
//
// Split: DIR/train and DIR/test when both exist; otherwise the files of DIR sorted by name, every
// tenth (the 10th, 20th, ...) held out for testing, or the last one when there are fewer than
// ten. Channels: RGB when any image is colour, gray images then repeated to R = G = B; gray
// otherwise. Size: every image is fitted to the working size (FolderOptions), which defaults to
// the images' common size.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/png_io.h"

namespace cae::data {

// The image files (.png, .jpg, .jpeg, any case) directly in dir, sorted by name.
std::vector<std::string> list_images(const std::string& dir);

// True when dir holds image files, or train/ and test/ folders that do.
bool is_image_folder(const std::string& dir);

// Requires h, w > 0. Ensures an h×w image with image's channels, made as fit says; throws
// cae::Error naming `what` when a crop does not fit.
Image fit_image(const Image& image, int h, int w, Fit fit, const std::string& what);

// Requires at least one image file in dir's split (see above). Ensures train and test of one
// shape (working size × channels). Throws cae::Error naming the file for an unreadable image,
// and for images of different sizes when no working size is given.
Dataset load_image_folder(const std::string& dir, const FolderOptions& options);

// "HxW" or "N" (square) as h and w > 0; throws cae::Error otherwise.
void parse_size(const std::string& text, int& h, int& w);

}  // namespace cae::data
