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
  // train/ or test/ alone is a split folder too: loading it names the one without images.
  std::error_code ec;
  return fs::is_directory(dir + "/train", ec) || fs::is_directory(dir + "/test", ec);
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

namespace {

// The files of each split: train, val (may be empty) and test.
struct SplitFiles {
  std::vector<std::string> train, val, test;
};

SplitFiles split_files(const std::string& dir) {
  SplitFiles files;
  const std::vector<std::string> flat = list_images(dir);
  if (!flat.empty()) {
    for (std::size_t i = 0; i < flat.size(); ++i)
      (i % 10 == 9 ? files.test : files.train).push_back(flat[i]);
    if (files.test.empty()) {
      files.test.push_back(files.train.back());
      files.train.pop_back();
    }
    if (files.train.empty())
      throw Error("image folder " + dir + ": needs at least two images (found 1)");
    return files;
  }
  // A split folder that is there but holds no image is a mistake worth naming.
  auto split = [&](const char* name, bool required) {
    const std::string sub = dir + "/" + name;
    std::vector<std::string> list = list_images(sub);
    std::error_code ec;
    if (list.empty() && (required || fs::is_directory(sub, ec)))
      throw Error("image folder " + dir + ": no images (.png, .jpg, .jpeg) in " + sub);
    return list;
  };
  files.train = split("train", true);
  files.val = split("val", false);
  files.test = split("test", true);
  return files;
}

std::vector<Image> read_images(const std::vector<std::string>& files, int& c) {
  std::vector<Image> images;
  for (const auto& f : files) {
    images.push_back(read_image(f));
    c = std::max(c, images.back().c);
  }
  return images;
}

ImageList to_list(std::vector<Image> images, const std::vector<std::string>& files, int c) {
  ImageList list;
  list.c = c;
  for (Image& image : images) list.images.push_back(to_channels(image, c));
  list.files = files;
  return list;
}

}  // namespace

Dataset load_image_folder(const std::string& dir, const FolderOptions& options) {
  const SplitFiles files = split_files(dir);
  int c = 1;
  std::vector<Image> train = read_images(files.train, c), val = read_images(files.val, c),
                     test = read_images(files.test, c);
  Dataset ds;
  ds.name = dir;
  if (options.whole) {
    for (std::size_t i = 0; i < train.size(); ++i)
      if (train[i].h < options.min_h || train[i].w < options.min_w)
        throw Error(files.train[i] + " is " + std::to_string(train[i].h) + "x" +
                    std::to_string(train[i].w) + ", smaller than the patch " +
                    std::to_string(options.min_h) + "x" + std::to_string(options.min_w) +
                    ": remove it from the training images or use a smaller --patch");
    ds.train_whole = to_list(std::move(train), files.train, c);
    ds.val_whole = to_list(std::move(val), files.val, c);
    ds.test_whole = to_list(std::move(test), files.test, c);
    return ds;
  }
  int h = options.h, w = options.w;
  if (h == 0 || w == 0) {
    h = train[0].h;
    w = train[0].w;
    const std::pair<const std::vector<Image>*, const std::vector<std::string>*> parts[] = {
        {&train, &files.train}, {&val, &files.val}, {&test, &files.test}};
    for (const auto& [images, names] : parts)
      for (std::size_t i = 0; i < images->size(); ++i)
        if ((*images)[i].h != h || (*images)[i].w != w)
          throw Error("image folder " + dir + ": " + files.train[0] + " is " + std::to_string(h) +
                      "x" + std::to_string(w) + " but " + (*names)[i] + " is " +
                      std::to_string((*images)[i].h) + "x" + std::to_string((*images)[i].w) +
                      "; give a working size (--size HxW, --fit resize|crop) or train on "
                      "patches (--patch N)");
  }
  ds.train = to_set(train, files.train, h, w, c, options.fit);
  if (!val.empty()) ds.val = to_set(val, files.val, h, w, c, options.fit);
  ds.test = to_set(test, files.test, h, w, c, options.fit);
  return ds;
}

}  // namespace cae::data
