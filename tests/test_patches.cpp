// Patch training: the crops (deterministic, in bounds, in proportion to each image's area,
// independent of how many are drawn and of threads), augmentation against a naive reference,
// whole-image scoring through the tiler, the validation split (best.cae, early stopping, plateau
// on the validation loss), resume, the CLI on a folder of images of different sizes, and bad
// input: an image smaller than the patch, a split folder without images, a corrupt JPEG.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "data/folder.h"
#include "data/jpeg_io.h"
#include "data/patches.h"
#include "data/png_io.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/checkpoint.h"
#include "train/evaluation.h"
#include "train/trainer.h"

using namespace cae;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// An RGB image whose every pixel says where it is: (k, y, x).
data::Image coordinates(int k, int h, int w) {
  data::Image image;
  image.h = h, image.w = w, image.c = 3;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      image.pixels.insert(image.pixels.end(), {std::uint8_t(k), std::uint8_t(y), std::uint8_t(x)});
  return image;
}

data::ImageList coordinate_images() {
  data::ImageList list;
  list.c = 3;
  list.images = {coordinates(0, 20, 30), coordinates(1, 16, 16), coordinates(2, 40, 24)};
  return list;
}

// A crop as rows of (k, y, x) pixels.
using Pixels = std::vector<std::vector<std::array<int, 3>>>;

Pixels crop_of(const data::ImageSet& set, int p) {
  Pixels rows(std::size_t(set.h), std::vector<std::array<int, 3>>(std::size_t(set.w)));
  const std::uint8_t* q = set.image(p);
  for (int y = 0; y < set.h; ++y)
    for (int x = 0; x < set.w; ++x, q += 3) rows[y][x] = {q[0], q[1], q[2]};
  return rows;
}

// The naive reference: numpy's rot90 (counter-clockwise), fliplr and flipud, written out.
Pixels rot90(const Pixels& a) {
  const std::size_t h = a.size(), w = a[0].size();
  Pixels out(w, std::vector<std::array<int, 3>>(h));
  for (std::size_t i = 0; i < w; ++i)
    for (std::size_t j = 0; j < h; ++j) out[i][j] = a[j][w - 1 - i];
  return out;
}
Pixels hflip(Pixels a) {
  for (auto& row : a) std::reverse(row.begin(), row.end());
  return a;
}
Pixels vflip(Pixels a) {
  std::reverse(a.begin(), a.end());
  return a;
}

data::ImageSet draw(const data::ImageList& images, int h, int w, const std::string& augment,
                    int count, std::uint64_t seed, int epoch) {
  data::PatchOptions p;
  p.h = h, p.w = w, p.augment = data::parse_augment(augment);
  return data::draw_patches(images, p, count, seed, epoch);
}

}  // namespace

TEST(Patches, CropsAreWindowsOfOneImageInBoundsAndDeterministic) {
  const data::ImageList images = coordinate_images();
  const data::ImageSet a = draw(images, 8, 12, "none", 300, 5, 1);
  ASSERT_EQ(a.n, 300);
  ASSERT_EQ(a.h, 8);
  ASSERT_EQ(a.w, 12);
  ASSERT_EQ(a.c, 3);
  std::set<int> sources;
  for (int p = 0; p < a.n; ++p) {
    const Pixels crop = crop_of(a, p);
    const auto [k, y0, x0] = crop[0][0];
    const data::Image& source = images.images[std::size_t(k)];
    ASSERT_LE(y0 + 8, source.h) << "crop " << p;
    ASSERT_LE(x0 + 12, source.w) << "crop " << p;
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 12; ++x)
        ASSERT_EQ(crop[y][x], (std::array<int, 3>{k, y0 + y, x0 + x})) << "crop " << p;
    sources.insert(k);
  }
  EXPECT_EQ(sources.size(), 3u) << "every image gives crops";
  EXPECT_EQ(draw(images, 8, 12, "none", 300, 5, 1).pixels, a.pixels) << "same seed and epoch";
  EXPECT_NE(draw(images, 8, 12, "none", 300, 5, 2).pixels, a.pixels) << "another epoch";
  EXPECT_NE(draw(images, 8, 12, "none", 300, 6, 1).pixels, a.pixels) << "another seed";
}

TEST(Patches, CropPDependsOnPAloneNotOnTheCountOrTheThreads) {
  const data::ImageList images = coordinate_images();
  const data::ImageSet many = draw(images, 8, 8, "hflip,vflip,rot90,scale=0.5-2", 200, 3, 4);
  const data::ImageSet few = draw(images, 8, 8, "hflip,vflip,rot90,scale=0.5-2", 50, 3, 4);
  EXPECT_TRUE(std::equal(few.pixels.begin(), few.pixels.end(), many.pixels.begin()));
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const data::ImageSet one_thread = draw(images, 8, 8, "hflip,vflip,rot90,scale=0.5-2", 200, 3, 4);
  omp_set_num_threads(threads);
  EXPECT_EQ(one_thread.pixels, many.pixels);
}

TEST(Patches, ImagesGiveCropsInProportionToTheirCropPositions) {
  data::ImageList images;
  images.c = 3;
  images.images = {coordinates(0, 100, 100), coordinates(1, 20, 20)};
  const data::ImageSet set = draw(images, 10, 10, "none", 4000, 1, 1);
  int small = 0;
  for (int p = 0; p < set.n; ++p) small += set.image(p)[0] == 1;
  // 11² of 91² + 11² positions: 1.4%, 58 of 4000 expected.
  EXPECT_GT(small, 30);
  EXPECT_LT(small, 90);
}

// Each crop is the crop drawn without augmentation, turned rot90^k, then flipped left-right and
// upside down as the second draw of its stream says: bit 0 hflip, bit 1 vflip, bits 2-3 k.
TEST(Patches, AugmentationMatchesTheNaiveReference) {
  const data::ImageList images = coordinate_images();
  const std::uint64_t seed = 9;
  const int epoch = 2, count = 200;
  const data::ImageSet plain = draw(images, 10, 10, "none", count, seed, epoch);
  for (const std::string augment :
       {"hflip", "vflip", "rot90", "hflip,vflip,rot90", "vflip,rot90"}) {
    SCOPED_TRACE(augment);
    const data::Augment a = data::parse_augment(augment);
    const data::ImageSet set = draw(images, 10, 10, augment, count, seed, epoch);
    std::set<int> kinds;
    for (int p = 0; p < count; ++p) {
      Rng rng = make_rng(seed, Stream::patches, epoch, std::uint64_t(p));
      rng.next_u64();  // the position
      const std::uint64_t bits = rng.next_u64();
      const int turns = a.rot90 ? int(bits >> 2 & 3) : 0;
      const bool h = a.hflip && (bits & 1), v = a.vflip && (bits >> 1 & 1);
      Pixels expected = crop_of(plain, p);
      for (int t = 0; t < turns; ++t) expected = rot90(expected);
      if (h) expected = hflip(expected);
      if (v) expected = vflip(expected);
      ASSERT_EQ(crop_of(set, p), expected) << "crop " << p;
      kinds.insert(turns * 4 + h * 2 + v);
    }
    const std::size_t variants = (a.hflip ? 2 : 1) * (a.vflip ? 2 : 1) * (a.rot90 ? 4 : 1);
    EXPECT_EQ(kinds.size(), variants) << "every variant the options allow, and no other";
  }
}

// With scale=MIN-MAX, crop p is cv::resize of a window of (h/s)×(w/s) pixels centred on the
// plain crop p (kept inside the image), s = MIN·(MAX/MIN)^u, u the third draw of its stream;
// the coordinates it shows then span about (w − 1)/s pixels.
TEST(Patches, ZoomResizesAWindowCentredOnThePlainCrop) {
  data::ImageList images;
  images.c = 3;
  images.images = {coordinates(0, 200, 180), coordinates(1, 40, 40)};
  const std::uint64_t seed = 4;
  const int epoch = 3, count = 300, n = 16;
  const data::ImageSet plain = draw(images, n, n, "none", count, seed, epoch);
  const data::ImageSet set = draw(images, n, n, "scale=0.5-2", count, seed, epoch);
  int enlarged = 0, shrunk = 0;
  for (int p = 0; p < count; ++p) {
    Rng rng = make_rng(seed, Stream::patches, epoch, std::uint64_t(p));
    rng.next_u64();  // the position
    rng.next_u64();  // the flips and turns
    const double s = 0.5 * std::pow(4.0, double(rng.uniform()));
    const auto [k, y0, x0] = crop_of(plain, p)[0][0];
    const data::Image& source = images.images[std::size_t(k)];
    const int side = std::min(int(std::lround(n / s)), source.h);
    const int wy = std::clamp(y0 + n / 2 - side / 2, 0, source.h - side);
    const int wx = std::clamp(x0 + n / 2 - side / 2, 0, source.w - side);
    const cv::Mat whole(source.h, source.w, CV_8UC3,
                        const_cast<std::uint8_t*>(source.pixels.data()));
    cv::Mat expected;
    cv::resize(whole(cv::Rect(wx, wy, side, side)), expected, cv::Size(n, n), 0, 0,
               side >= n ? cv::INTER_AREA : cv::INTER_LINEAR_EXACT);
    ASSERT_TRUE(std::equal(expected.data, expected.data + n * n * 3, set.image(p))) << "crop " << p;
    const Pixels crop = crop_of(set, p);
    ASSERT_EQ(crop[0][0][0], k) << "one image's pixels";
    if (side < source.h) {
      const int span = crop[n / 2][n - 1][2] - crop[n / 2][0][2];
      EXPECT_NEAR(span, (n - 1) / s, 2.5) << "crop " << p << ", s " << s;
    }
    enlarged += s > 1.2;
    shrunk += s < 0.8;
  }
  EXPECT_GT(enlarged, 50);
  EXPECT_GT(shrunk, 50);
  EXPECT_EQ(draw(images, n, n, "scale=0.5-2", count, seed, epoch).pixels, set.pixels);
}

TEST(Patches, AugmentTextsAndDefaultCount) {
  EXPECT_EQ(data::format_augment(data::parse_augment("rot90,hflip")), "hflip,rot90");
  EXPECT_EQ(data::format_augment(data::parse_augment("")), "none");
  EXPECT_EQ(data::format_augment(data::parse_augment("none")), "none");
  EXPECT_EQ(data::format_augment(data::parse_augment("scale=0.5-2.5,rot90")),
            "rot90,scale=0.5-2.5");
  EXPECT_THAT([] { data::parse_augment("hflip,turn"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("unknown word 'turn'")));
  for (const char* bad : {"scale=2-1", "scale=1-1", "scale=0.1-2", "scale=1-9", "scale=1",
                          "scale=1-2x", "scale=-1-2", "scale="})
    EXPECT_THAT([&] { data::parse_augment(bad); },
                ::testing::ThrowsMessage<Error>(HasSubstr("must be scale=MIN-MAX")))
        << bad;
  data::ImageList images;
  images.images = {coordinates(0, 100, 100), coordinates(1, 20, 20)};
  // 10,400 pixels are 104 crops of 10x10, rounded up to 6 batches of 20.
  EXPECT_EQ(data::default_patches_per_epoch(images, 10, 10, 20), 120);
  EXPECT_EQ(data::default_patches_per_epoch(images, 10, 10, 8), 104);
}

TEST(Patches, RefusesRot90OfOblongPatchesAndImagesSmallerThanThePatch) {
  data::ImageList images = coordinate_images();
  images.files = {"a.png", "b.png", "c.png"};
  EXPECT_THAT([&] { draw(images, 8, 10, "rot90", 4, 1, 1); },
              ::testing::ThrowsMessage<Error>(HasSubstr("rot90 needs a square patch")));
  EXPECT_THAT(
      [&] { draw(images, 17, 17, "none", 4, 1, 1); },
      ::testing::ThrowsMessage<Error>(HasSubstr("b.png is 16x16, smaller than the patch 17x17")));
}

// --- whole-image scoring ---------------------------------------------------------------------

namespace {

nn::Model seed_model(ops::Dims input, std::uint64_t seed) {
  nn::Model m(nn::parse_spec(nn::preset_spec("seed")), input, nn::LossKind::bce);
  m.init_glorot(seed);
  return m;
}

// A gray image of a few bright rectangles on a dark ground.
data::Image rectangles(int h, int w, std::uint64_t seed) {
  data::Image image;
  image.h = h, image.w = w, image.c = 1;
  image.pixels.assign(std::size_t(h) * w, 0);
  Rng rng({seed});
  for (int r = 0; r < 3; ++r) {
    const int y0 = int(rng.below(h - 4)), x0 = int(rng.below(w - 4));
    const int y1 = y0 + 2 + int(rng.below(h - y0 - 2)), x1 = x0 + 2 + int(rng.below(w - x0 - 2));
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) image.pixels[std::size_t(y) * w + x] = 200;
  }
  return image;
}

data::ImageList rectangle_list(const std::vector<std::pair<int, int>>& sizes, std::uint64_t seed) {
  data::ImageList list;
  for (const auto& [h, w] : sizes) list.images.push_back(rectangles(h, w, seed++));
  return list;
}

}  // namespace

// On images of the model's size the tiler runs one tile of weight 1: the whole-image scores are
// those of the batched path, up to the loss computed on the image instead of the logits.
TEST(WholeImages, ScoresOfModelSizedImagesAreTheBatchedScores) {
  const nn::Model model = seed_model({1, 12, 12}, 3);
  const data::ImageList list = rectangle_list({{12, 12}, {12, 12}, {12, 12}, {12, 12}}, 1);
  data::ImageSet set;
  set.n = 4, set.h = 12, set.w = 12, set.c = 1;
  for (const auto& image : list.images)
    set.pixels.insert(set.pixels.end(), image.pixels.begin(), image.pixels.end());
  auto exec = model.make_inference_executor(ops::Backend::dnnl, 3, {});
  const data::Corruption c;
  const train::EvalStats batched = train::eval_stats(
      train::evaluate_sums(model, *exec, set, set, 0, 4, c, 5, Stream::val_noise));
  const train::EvalStats whole = train::eval_stats(
      train::evaluate_whole_sums(model, *exec, list, 0, 4, c, 5, Stream::val_noise));
  EXPECT_EQ(whole.images, 4);
  EXPECT_EQ(whole.psnr_noisy, batched.psnr_noisy) << "the same damage";
  EXPECT_NEAR(whole.psnr_output, batched.psnr_output, 1e-4);
  EXPECT_NEAR(whole.loss, batched.loss, 1e-5);
  EXPECT_NEAR(whole.bce, batched.bce, 1e-6);
}

// Ranks add their shares of the images: any split of [0, n) sums to the whole.
TEST(WholeImages, SharesOfImagesOfDifferentSizesAddUp) {
  const nn::Model model = seed_model({1, 12, 12}, 3);
  const data::ImageList list = rectangle_list({{12, 30}, {20, 17}, {9, 9}}, 4);
  auto exec = model.make_inference_executor(ops::Backend::dnnl, 4, {});
  const data::Corruption c;
  train::EvalSums all =
      train::evaluate_whole_sums(model, *exec, list, 0, 3, c, 5, Stream::test_noise);
  train::EvalSums a =
      train::evaluate_whole_sums(model, *exec, list, 0, 1, c, 5, Stream::test_noise);
  const train::EvalSums b =
      train::evaluate_whole_sums(model, *exec, list, 1, 3, c, 5, Stream::test_noise);
  for (int k = 0; k < train::EvalSums::count; ++k) a.v[k] += b.v[k];
  EXPECT_EQ(all.v[train::EvalSums::elements], 12 * 30 + 20 * 17 + 81);
  for (int k = 0; k < train::EvalSums::count; ++k)
    EXPECT_NEAR(a.v[k], all.v[k], 1e-9 * std::abs(all.v[k]));
}

// --- training on patches ---------------------------------------------------------------------

namespace {

class Quiet : public train::Progress {};

// Whole gray images of different sizes. With rising_val, the validation images are flat mid-gray:
// a model that learns to snap the noisy training pixels to their two levels (0 and 200) moves
// mid-gray away from itself as it learns, so their loss rises.
data::Dataset patch_dataset(bool rising_val) {
  data::Dataset ds;
  ds.name = "rectangles";
  ds.train_whole = rectangle_list({{20, 30}, {16, 16}, {40, 24}, {12, 50}}, 1);
  ds.val_whole = rectangle_list({{18, 21}, {30, 14}}, 20);
  if (rising_val)
    for (data::Image& image : ds.val_whole.images)
      std::fill(image.pixels.begin(), image.pixels.end(), 128);
  ds.test_whole = rectangle_list({{25, 19}, {12, 12}}, 40);
  return ds;
}

// 60 patches a epoch: 3 batches, short epochs.
train::TrainConfig patch_config(const std::string& out, int epochs) {
  train::TrainConfig c;
  c.epochs = epochs, c.batch = 20, c.seed = 7, c.out_dir = out;
  c.patches = {
      .h = 12, .w = 12, .per_epoch = 60, .augment = data::parse_augment("hflip,vflip,rot90")};
  return c;
}

}  // namespace

TEST(PatchTraining, SameSeedSameWeightsAndResumeEqualsUninterrupted) {
  const data::Dataset ds = patch_dataset(false);
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  const ops::Dims input{1, 12, 12};
  auto cfg = [&](const std::string& out, int epochs) {
    train::TrainConfig c = patch_config(dir + "/" + out, epochs);
    c.lr_schedule = train::parse_lr_schedule("plateau factor=0.5 patience=1");
    return c;
  };
  nn::Model full = seed_model(input, 7);
  const auto h_full = train::train(full, ds, cfg("full", 4), quiet);
  ASSERT_EQ(h_full.size(), 4u);
  ASSERT_TRUE(h_full[0].validated);
  EXPECT_EQ(h_full[0].val.images, 2);
  EXPECT_EQ(h_full[0].test.images, 2);

  nn::Model twin = seed_model(input, 7);
  train::train(twin, ds, cfg("twin", 4), quiet);
  EXPECT_EQ(twin.params(), full.params()) << "same seed: identical weights";

  nn::Model part = seed_model(input, 7);
  train::train(part, ds, cfg("part", 2), quiet);
  nn::Model resumed = seed_model(input, 99);
  auto resume = cfg("part", 4);
  resume.resume = true;
  const auto h_resumed = train::train(resumed, ds, resume, quiet);
  ASSERT_EQ(h_resumed.size(), 4u);
  EXPECT_EQ(resumed.params(), full.params()) << "resume must end with the uninterrupted weights";
  EXPECT_EQ(h_resumed[3].val.loss, h_full[3].val.loss);
  EXPECT_EQ(io::read_model_file(dir + "/part/best.cae").tensors[0].data,
            io::read_model_file(dir + "/full/best.cae").tensors[0].data);

  // Another augmentation is another run: its checkpoint is not this one's.
  auto other = cfg("part", 5);
  other.resume = true;
  other.patches.augment = data::parse_augment("hflip");
  EXPECT_THAT([&] { train::train(resumed, ds, other, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("trained with patches '12x12 per_epoch=60 "
                                                        "augment=hflip,vflip,rot90'")));
}

TEST(PatchTraining, BestModelAndEarlyStoppingFollowARisingValidationLoss) {
  const data::Dataset ds = patch_dataset(true);
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  nn::Model m = seed_model({1, 12, 12}, 7);
  auto cfg = patch_config(dir + "/stop", 12);
  cfg.patience = 2;
  const auto h = train::train(m, ds, cfg, quiet);
  ASSERT_LT(h.size(), 12u) << "the validation loss rose: the run must stop early";
  const auto best = std::min_element(
      h.begin(), h.end(), [](const auto& a, const auto& b) { return a.val.loss < b.val.loss; });
  EXPECT_EQ(int(h.size()), best->epoch + 2) << "stopped 2 epochs after the best";
  EXPECT_GT(h.back().val.loss, best->val.loss);
  const io::ModelFile best_file = io::read_model_file(dir + "/stop/best.cae");
  EXPECT_EQ(best_file.kind, io::read_model_file(dir + "/stop/model.cae").kind);
  ASSERT_NE(best_file.find_meta("best_epoch"), nullptr);
  EXPECT_EQ(*best_file.find_meta("best_epoch"), std::to_string(best->epoch));

  // best.cae holds the weights a run that ends at the best epoch ends with.
  nn::Model shorter = seed_model({1, 12, 12}, 7);
  train::train(shorter, ds, patch_config(dir + "/short", best->epoch), quiet);
  EXPECT_EQ(io::read_model_file(dir + "/short/model.cae").tensors[0].data,
            best_file.tensors[0].data);

  // A resume of the stopped run has nothing left to do: patience is spent.
  auto again = cfg;
  again.resume = true;
  nn::Model resumed = seed_model({1, 12, 12}, 1);
  EXPECT_EQ(train::train(resumed, ds, again, quiet).size(), h.size());
  EXPECT_EQ(resumed.params(), m.params());
}

// Plateau reads the validation loss when there is one: here it rises while the test loss falls,
// so the lr falls, as a replay of the schedule on the validation losses says it must.
TEST(PatchTraining, PlateauReadsTheValidationLoss) {
  const data::Dataset ds = patch_dataset(true);
  Quiet quiet;
  nn::Model m = seed_model({1, 12, 12}, 7);
  auto cfg = patch_config(test::scratch_dir(), 5);
  cfg.patches.per_epoch = 200;  // enough steps a epoch for the test loss to fall
  cfg.optimizer.lr = 3e-3f;
  cfg.lr_schedule = train::parse_lr_schedule("plateau factor=0.5 patience=1");
  const auto h = train::train(m, ds, cfg, quiet);
  const double lr = cfg.optimizer.lr;
  train::LrState on_val = train::initial_lr_state(lr), on_test = on_val;
  std::vector<double> lrs_val, lrs_test;
  for (int e = 1; e <= 5; ++e) {
    lrs_val.push_back(train::lr_of_epoch(cfg.lr_schedule, lr, e, 5, on_val));
    lrs_test.push_back(train::lr_of_epoch(cfg.lr_schedule, lr, e, 5, on_test));
    EXPECT_EQ(h[e - 1].lr, float(lrs_val.back())) << "epoch " << e;
    train::end_lr_epoch(cfg.lr_schedule, h[e - 1].val.loss, on_val);
    train::end_lr_epoch(cfg.lr_schedule, h[e - 1].test.loss, on_test);
  }
  EXPECT_LT(on_val.lr, lr) << "the rising validation loss lowered the lr";
  EXPECT_NE(lrs_val, lrs_test) << "the test loss would have given other lrs: the test shows little";
}

TEST(PatchTraining, RefusesRunsTheDataCannotServe) {
  data::Dataset ds = patch_dataset(false);
  Quiet quiet;
  nn::Model m = seed_model({1, 12, 12}, 7);
  auto cfg = patch_config(test::scratch_dir(), 1);
  cfg.patches = {};
  EXPECT_THAT([&] { train::train(m, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("train on patches")));
  cfg = patch_config(test::scratch_dir(), 1);
  nn::Model wrong = seed_model({1, 16, 16}, 7);
  EXPECT_THAT([&] { train::train(wrong, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("the patches (12x12x1) do not match")));
  ds.val_whole = {};
  cfg.patience = 3;
  EXPECT_THAT([&] { train::train(m, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("needs a validation split")));
}

namespace {

data::ImageSet as_set(const data::ImageList& list) {
  data::ImageSet set;
  set.n = list.size(), set.h = list.images[0].h, set.w = list.images[0].w, set.c = list.c;
  for (const auto& image : list.images)
    set.pixels.insert(set.pixels.end(), image.pixels.begin(), image.pixels.end());
  return set;
}

}  // namespace

// Without patches, a validation split of the working size is scored in batches from its own
// stream; a run without one writes what it always wrote (no validation columns or meta).
TEST(FixedSizeTraining, AValidationSplitIsScoredAndBestIsKeptAndNoneChangesNothing) {
  data::Dataset ds;
  ds.name = "rectangles";
  ds.train = as_set(rectangle_list(std::vector<std::pair<int, int>>(60, {12, 12}), 1));
  ds.val = as_set(rectangle_list(std::vector<std::pair<int, int>>(7, {12, 12}), 100));
  ds.test = as_set(rectangle_list(std::vector<std::pair<int, int>>(9, {12, 12}), 200));
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  train::TrainConfig cfg = patch_config(dir + "/val", 2);
  cfg.patches = {};
  nn::Model m = seed_model({1, 12, 12}, 7);
  const auto h = train::train(m, ds, cfg, quiet);
  ASSERT_TRUE(h[1].validated);
  EXPECT_EQ(h[1].val.images, 7);
  auto exec = m.make_executor(ops::Backend::dnnl, 20, {});
  const train::EvalStats val = train::eval_stats(
      train::evaluate_sums(m, *exec, ds.val, ds.val, 0, 7, cfg.corruption, 7, Stream::val_noise));
  EXPECT_NEAR(h[1].val.loss, val.loss, 1e-6) << "the last epoch's weights, the val stream";
  EXPECT_TRUE(fs::exists(dir + "/val/best.cae"));

  ds.val = {};
  cfg.out_dir = dir + "/plain";
  nn::Model plain = seed_model({1, 12, 12}, 7);
  const auto h_plain = train::train(plain, ds, cfg, quiet);
  EXPECT_EQ(plain.params(), m.params()) << "validation scores do not touch the weights";
  EXPECT_FALSE(h_plain[1].validated);
  EXPECT_FALSE(fs::exists(dir + "/plain/best.cae"));
  const io::ModelFile cp = io::read_model_file(dir + "/plain/checkpoint.cae");
  EXPECT_EQ(cp.find_meta("best_val"), nullptr);
  EXPECT_EQ(cp.find_meta("patches"), nullptr);
  EXPECT_EQ(cp.meta_value("history").find("val_"), std::string::npos);
}

// --- the CLI on a folder of images of different sizes ----------------------------------------

namespace {

// DIR/train, val and test of RGB and gray PNGs and JPEGs of different sizes.
std::string write_folder(const std::string& dir) {
  const std::string root = dir + "/photos";
  const std::vector<std::pair<std::string, std::vector<std::pair<int, int>>>> splits = {
      {"train", {{30, 40}, {24, 24}, {50, 26}}},
      {"val", {{20, 33}}},
      {"test", {{28, 17}, {16, 16}}}};
  std::uint64_t seed = 1;
  for (const auto& [split, sizes] : splits) {
    fs::create_directories(root + "/" + split);
    int i = 0;
    for (const auto& [h, w] : sizes) {
      data::Image image = rectangles(h, w, seed++);
      const std::string name = root + "/" + split + "/" + std::to_string(i++);
      if (i == 2) {  // a colour one in each split: the set becomes RGB
        data::Image rgb = coordinates(int(seed), h, w);
        data::write_jpeg(name + ".jpg", rgb);
      } else {
        data::write_png(name + ".png", image);
      }
    }
  }
  return root;
}

}  // namespace

TEST(PatchCli, TrainsOnPatchesOfImagesOfDifferentSizes) {
  const std::string dir = test::scratch_dir();
  const std::string root = write_folder(dir);
  const std::string args = "train --dataset " + root +
                           " --patch 12 --augment hflip,rot90 "
                           "--patches-per-epoch 40 --batch 10 --threads 1 --patience 5 --out " +
                           dir + "/run";
  const test::CommandResult t = test::run_cae(args + " --epochs 2");
  ASSERT_EQ(t.status, 0) << t.output;
  EXPECT_THAT(t.output, HasSubstr("40 patches of 12x12x3 an epoch from 3 train images"));
  EXPECT_THAT(t.output, HasSubstr("1 val / 2 test images whole"));
  EXPECT_THAT(t.output, HasSubstr("val loss"));
  for (const char* f : {"model.cae", "best.cae", "checkpoint.cae", "losses.csv", "metrics.json"})
    EXPECT_TRUE(fs::exists(dir + "/run/" + f)) << f;
  std::ifstream in(dir + "/run/metrics.json");
  const nlohmann::json metrics = nlohmann::json::parse(in);
  EXPECT_EQ(metrics["patch"], "12x12");
  EXPECT_EQ(metrics["patches_per_epoch"], 40);
  EXPECT_EQ(metrics["augment"], "hflip,rot90");
  EXPECT_EQ(metrics["val_images"], 1);
  EXPECT_EQ(metrics["test"]["images"], 2);
  EXPECT_EQ(metrics["stopped_early"], false);

  // Resume to 3 continues where an uninterrupted 3-epoch run is.
  const test::CommandResult r = test::run_cae(args + " --epochs 3 --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  const test::CommandResult u =
      test::run_cae("train --dataset " + root +
                    " --patch 12 --augment hflip,rot90 --patches-per-epoch 40 "
                    "--batch 10 --threads 1 --patience 5 --epochs 3 --out " +
                    dir + "/uninterrupted");
  ASSERT_EQ(u.status, 0) << u.output;
  EXPECT_EQ(io::read_model_file(dir + "/run/model.cae").tensors[0].data,
            io::read_model_file(dir + "/uninterrupted/model.cae").tensors[0].data);

  // The model denoises an image of any size through the tiler.
  const test::CommandResult dn = test::run_cae("denoise -m " + dir + "/run/best.cae " + root +
                                               "/test/1.jpg -o " + dir + "/out");
  ASSERT_EQ(dn.status, 0) << dn.output;
  EXPECT_EQ(data::read_png(dir + "/out/1.png").w, 16);
}

TEST(PatchCli, BadInputNamesTheFileOrTheFolder) {
  const std::string dir = test::scratch_dir();
  const std::string root = write_folder(dir);
  auto train = [&](const std::string& more) {
    return test::run_cae("train --dataset " + root + " --epochs 1 --batch 10 --threads 1 --out " +
                         dir + "/run " + more);
  };
  test::CommandResult r = train("--patch 25");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("cae: error: " + root +
                                  "/train/1.jpg is 24x24, smaller than "
                                  "the patch 25x25"));
  r = train("--patch 8x10 --augment rot90");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("rot90 needs a square patch"));
  r = train("--patch 8 --size 20");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("patch training keeps the images whole"));
  r = train("--augment hflip");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("--augment needs --patch"));

  // A corrupt JPEG among the training images: named, the run refused.
  const std::vector<std::uint8_t> bytes = read_file(root + "/train/1.jpg");
  {
    std::ofstream out(root + "/train/1.jpg", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size() / 3));
  }
  r = train("--patch 8");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("cae: error: " + root + "/train/1.jpg"));

  // A split folder without images names the folder.
  fs::remove_all(root + "/val");
  fs::create_directories(root + "/val");
  r = train("--patch 8");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("no images (.png, .jpg, .jpeg) in " + root + "/val"));
  for (const auto& entry : fs::directory_iterator(root + "/train")) fs::remove(entry.path());
  r = train("--patch 8");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("no images (.png, .jpg, .jpeg) in " + root + "/train"));
}
