#include "data/folder.h"

#include <algorithm>
#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "cae/error.h"
#include "data/image_io.h"

namespace cae::data {

namespace fs = std::filesystem;

std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && has_image_extension(entry.path().string()))
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

bool is_image_folder(const std::string& dir) {
  if (!list_images(dir).empty()) return true;
  return !list_images(dir + "/train").empty() && !list_images(dir + "/test").empty();
}

void parse_size(const std::string& text, int& h, int& w) {
  const auto x = text.find_first_of("xX");
  try {
    std::size_t used = 0;
    if (x == std::string::npos) {
      h = w = std::stoi(text, &used);
      if (used != text.size()) throw std::invalid_argument("trailing");
    } else {
      h = std::stoi(text.substr(0, x), &used);
      if (used != x) throw std::invalid_argument("trailing");
      w = std::stoi(text.substr(x + 1), &used);
      if (used != text.size() - x - 1) throw std::invalid_argument("trailing");
    }
  } catch (const std::logic_error&) {
    throw Error("size '" + text + "': expected HxW or N, e.g. 64x48");
  }
  if (h < 1 || w < 1 || h > 65536 || w > 65536)
    throw Error("size '" + text + "': height and width must be 1 to 65536");
}

Image fit_image(const Image& image, int h, int w, Fit fit, const std::string& what) {
  if (image.h == h && image.w == w) return image;
  Image out;
  out.h = h;
  out.w = w;
  out.c = image.c;
  out.pixels.resize(std::size_t(h) * w * image.c);
  const int type = image.c == 3 ? CV_8UC3 : CV_8UC1;
  const cv::Mat src(image.h, image.w, type, const_cast<std::uint8_t*>(image.pixels.data()));
  cv::Mat dst(h, w, type, out.pixels.data());
  if (fit == Fit::crop) {
    if (image.h < h || image.w < w)
      throw Error(what + ": the image is " + std::to_string(image.h) + "x" +
                  std::to_string(image.w) + ", smaller than the working size " + std::to_string(h) +
                  "x" + std::to_string(w) + " (use --fit resize)");
    src(cv::Rect((image.w - w) / 2, (image.h - h) / 2, w, h)).copyTo(dst);
  } else {
    // Area averaging is the alias-free way down; it is bilinear-like going up.
    const bool shrink = h <= image.h && w <= image.w;
    cv::resize(src, dst, cv::Size(w, h), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  return out;
}

namespace {

Image to_channels(const Image& image, int c) {
  if (image.c == c) return image;
  Image out = image;
  out.c = 3;
  out.pixels.resize(image.pixels.size() * 3);
  for (std::size_t p = 0; p < image.pixels.size(); ++p)
    out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] = image.pixels[p];
  return out;
}

ImageSet to_set(const std::vector<Image>& images, const std::vector<std::string>& files, int h,
                int w, int c, Fit fit) {
  ImageSet set;
  set.n = int(images.size());
  set.h = h;
  set.w = w;
  set.c = c;
  set.pixels.reserve(set.image_size() * images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const Image fitted = fit_image(to_channels(images[i], c), h, w, fit, files[i]);
    set.pixels.insert(set.pixels.end(), fitted.pixels.begin(), fitted.pixels.end());
  }
  return set;
}

}  // namespace

Dataset load_image_folder(const std::string& dir, const FolderOptions& options) {
  std::vector<std::string> train_files, test_files;
  const std::vector<std::string> flat = list_images(dir);
  if (!flat.empty()) {
    for (std::size_t i = 0; i < flat.size(); ++i)
      (i % 10 == 9 ? test_files : train_files).push_back(flat[i]);
    if (test_files.empty()) {
      test_files.push_back(train_files.back());
      train_files.pop_back();
    }
  } else {
    train_files = list_images(dir + "/train");
    test_files = list_images(dir + "/test");
  }
  if (train_files.empty() || test_files.empty())
    throw Error("image folder " + dir + ": needs at least two images (found " +
                std::to_string(train_files.size() + test_files.size()) + ")");

  std::vector<Image> train, test;
  int c = 1;
  for (auto* part : {&train_files, &test_files})
    for (const auto& f : *part) {
      (part == &train_files ? train : test).push_back(read_image(f));
      c = std::max(c, (part == &train_files ? train : test).back().c);
    }
  int h = options.h, w = options.w;
  if (h == 0 || w == 0) {
    h = train[0].h;
    w = train[0].w;
    for (auto* part : {&train, &test})
      for (std::size_t i = 0; i < part->size(); ++i)
        if ((*part)[i].h != h || (*part)[i].w != w)
          throw Error("image folder " + dir + ": " + train_files[0] + " is " + std::to_string(h) +
                      "x" + std::to_string(w) + " but " +
                      (part == &train ? train_files : test_files)[i] + " is " +
                      std::to_string((*part)[i].h) + "x" + std::to_string((*part)[i].w) +
                      "; give a working size (--size HxW, --fit resize|crop)");
  }
  Dataset ds;
  ds.name = dir;
  ds.train = to_set(train, train_files, h, w, c, options.fit);
  ds.test = to_set(test, test_files, h, w, c, options.fit);
  return ds;
}

}  // namespace cae::data
