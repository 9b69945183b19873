#include "data/dataset.h"

#include <filesystem>

#include "cae/error.h"
#include "data/folder.h"

namespace cae::data {

namespace fs = std::filesystem;

namespace {

// The IDX file `stem` in dir, raw or gzip-compressed; "" when neither exists.
std::string find_idx(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"})
    if (fs::exists(dir / name)) return (dir / name).string();
  return "";
}

bool has_pair(const fs::path& dir) {
  return !find_idx(dir, "train-images-idx3-ubyte").empty() &&
         !find_idx(dir, "t10k-images-idx3-ubyte").empty();
}

}  // namespace

Fit parse_fit(const std::string& name) {
  if (name == "resize") return Fit::resize;
  if (name == "crop") return Fit::crop;
  throw Error("unknown fit '" + name + "', expected resize or crop");
}

Dataset load_dataset(const std::string& name, const std::string& dir,
                     const FolderOptions& folder) {
  std::vector<fs::path> candidates;
  std::string hint;
  if (name == "mnist") {
    candidates = {fs::path(dir) / "mnist"};
    hint = "run scripts/setup-data.sh to install MNIST";
  } else if (name == "fashion-mnist") {
    candidates = {fs::path(dir) / "fashion-mnist", "/usr/share/datasets/fashion-mnist"};
    hint = "install Debian's dataset-fashion-mnist package";
  } else if (name == "photos") {
    // Photos of any size under free licences in train/, val/ and test/ (LICENSES.md beside
    // them), from Debian packages (docs/data.md); folder options apply as to any folder.
    const fs::path photos = fs::path(dir) / "photos";
    if (!is_image_folder(photos.string()))
      throw Error("dataset 'photos' not found in " + photos.string() +
                  ": run scripts/setup-data.sh to install it (from Debian's python3-skimage)");
    Dataset ds = load_image_folder(photos.string(), folder);
    ds.name = name;
    return ds;
  } else {
    candidates = {fs::path(name)};
    hint = "a dataset is 'mnist', 'fashion-mnist', 'photos', a directory with IDX files or a "
           "folder of PNG/JPEG images";
    if (!has_pair(name) && is_image_folder(name)) return load_image_folder(name, folder);
  }
  for (const auto& candidate : candidates) {
    if (!has_pair(candidate)) continue;
    Dataset ds;
    ds.name = name;
    ds.train = read_idx_images(find_idx(candidate, "train-images-idx3-ubyte"));
    ds.test = read_idx_images(find_idx(candidate, "t10k-images-idx3-ubyte"));
    if (ds.train.h != ds.test.h || ds.train.w != ds.test.w || ds.train.c != ds.test.c)
      throw Error("dataset '" + name + "' in " + candidate.string() +
                  ": training and test images differ in shape");
    return ds;
  }
  std::string looked;
  for (const auto& c : candidates) {
    if (!looked.empty()) looked += ", ";
    looked += c.string();
  }
  throw Error("dataset '" + name + "' not found (looked for train-images-idx3-ubyte and " +
              "t10k-images-idx3-ubyte, raw or .gz, in " + looked + "): " + hint);
}

void to_nchw(const ImageSet& set, const int* indices, int count, float* out) {
  const int hw = set.h * set.w, c = set.c;
  const std::size_t image = set.image_size();
#pragma omp parallel for schedule(static)
  for (int b = 0; b < count; ++b) {
    const std::uint8_t* src = set.image(indices[b]);
    float* dst = out + std::size_t(b) * image;
    for (int p = 0; p < hw; ++p)
      for (int ch = 0; ch < c; ++ch) dst[std::size_t(ch) * hw + p] = byte_to_float(src[p * c + ch]);
  }
}

void truncate(ImageSet& set, int n) {
  if (n <= 0 || n >= set.n) return;
  set.n = n;
  set.pixels.resize(set.image_size() * std::size_t(n));
}

void truncate(ImageList& list, int n) {
  if (n <= 0 || n >= list.size()) return;
  list.images.resize(std::size_t(n));
  if (list.files.size() > std::size_t(n)) list.files.resize(std::size_t(n));
}

void truncate(Dataset& ds, int train_n, int test_n) {
  truncate(ds.train, train_n);
  truncate(ds.val, train_n);
  truncate(ds.test, test_n);
  truncate(ds.train_whole, train_n);
  truncate(ds.val_whole, train_n);
  truncate(ds.test_whole, test_n);
  if (!ds.paired()) return;
  truncate(ds.train_targets, train_n);
  truncate(ds.test_targets, test_n);
}

namespace {

std::string shape_text(const ImageSet& s) {
  return std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(s.c);
}

}  // namespace

std::string ImageList::name(int i) const {
  return std::size_t(i) < files.size() && !files[std::size_t(i)].empty()
             ? files[std::size_t(i)]
             : "image " + std::to_string(i);
}

void check_dataset(const Dataset& ds) {
  if (ds.test.n > 0 && shape_text(ds.test) != shape_text(ds.train))
    throw Error(ds.name + ": the test images are " + shape_text(ds.test) +
                ", the training images " + shape_text(ds.train));
  if (ds.val.n > 0 && shape_text(ds.val) != shape_text(ds.train))
    throw Error(ds.name + ": the validation images are " + shape_text(ds.val) +
                ", the training images " + shape_text(ds.train));
  for (const ImageList* list : {&ds.train_whole, &ds.val_whole, &ds.test_whole})
    for (int i = 0; i < list->size(); ++i) {
      const Image& image = list->images[std::size_t(i)];
      if (image.c != list->c || image.h < 1 || image.w < 1 ||
          image.pixels.size() != std::size_t(image.h) * image.w * image.c)
        throw Error(ds.name + ": " + list->name(i) + " is " + std::to_string(image.h) + "x" +
                    std::to_string(image.w) + "x" + std::to_string(image.c) + " with " +
                    std::to_string(image.pixels.size()) + " bytes, expected " +
                    std::to_string(list->c) + " channels");
    }
  if (!ds.paired() && ds.test_targets.n == 0) return;
  const std::pair<const ImageSet*, const ImageSet*> pairs[] = {{&ds.train, &ds.train_targets},
                                                               {&ds.test, &ds.test_targets}};
  for (const auto& [images, targets] : pairs) {
    const std::string which = images == &ds.train ? "training" : "test";
    if (targets->n != images->n)
      throw Error(ds.name + ": " + std::to_string(targets->n) + " " + which + " targets for " +
                  std::to_string(images->n) + " " + which + " images (give one target per image)");
    if (shape_text(*targets) != shape_text(*images))
      throw Error(ds.name + ": the " + which + " targets are " + shape_text(*targets) +
                  ", their images " + shape_text(*images) + " (a target has its image's shape)");
  }
}

}  // namespace cae::data
