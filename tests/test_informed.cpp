// Informed models: the damage mask as an extra input channel. What 'channels' means for them,
// the shape rule, the model file's record of it, and forged files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cae/error.h"
#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "io/model_file.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/compare.h"
#include "train/evaluation.h"
#include "train/photo_eval.h"
#include "train/trainer.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

using test::random_images;

data::Corruption crosshair_and_noise() {
  return data::parse_corruption("gaussian sigma=0.1 + crosshair thickness=2");
}

class Quiet : public train::Progress {};

nn::Model informed_unet() {
  nn::Model model(nn::parse_spec(nn::preset_spec("unet")), {4, 16, 12}, nn::LossKind::bce,
                  /*informed=*/true);
  model.init_glorot(3);
  return model;
}

}  // namespace

TEST(Informed, ChannelsMeansTheImagesChannelsWithoutTheMask) {
  const nn::Model model = informed_unet();
  EXPECT_TRUE(model.informed());
  EXPECT_EQ(model.input().c, 4);
  EXPECT_EQ(model.output().c, 3);
  EXPECT_EQ(model.output().h, 16);
  EXPECT_EQ(model.output().w, 12);
  // The first conv reads four channels: its weight is 32 x 4 x 3 x 3.
  EXPECT_EQ(model.param_infos()[0].shape[1], 4);
  const nn::Model blind(nn::parse_spec(nn::preset_spec("unet")), {4, 16, 12},
                        nn::LossKind::bce);
  EXPECT_FALSE(blind.informed());
  EXPECT_EQ(blind.output().c, 4);
}

TEST(Informed, TheOutputMustBeTheImageWithoutTheMask) {
  try {
    nn::Model(nn::parse_spec("conv 8 relu\nconv 4"), {4, 8, 8}, nn::LossKind::bce, true);
    FAIL() << "an informed model whose output keeps the mask channel";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("its input's without the mask channel"));
  }
  EXPECT_THROW(nn::Model(nn::parse_spec("conv channels"), {1, 8, 8}, nn::LossKind::bce,
                         true),
               Error);
  // The residual preset subtracts its output from the input, which has the mask: a shape error.
  EXPECT_THROW(nn::Model(nn::parse_spec(nn::preset_spec("residual")), {2, 8, 8},
                         nn::LossKind::bce, true),
               Error);
}

TEST(Informed, TheModelFileRecordsItAndBlindFilesAreUnchanged) {
  const nn::Model model = informed_unet();
  const io::ModelFile file = model.to_file();
  ASSERT_NE(file.find_meta("informed"), nullptr);
  EXPECT_EQ(*file.find_meta("informed"), "1");
  const nn::Model back = nn::Model::from_file(
      io::decode_model_file(io::encode_model_file(file), "informed.cae"), "informed.cae");
  EXPECT_TRUE(back.informed());
  EXPECT_EQ(back.output().c, 3);
  EXPECT_EQ(back.params(), model.params());
  const nn::Model blind(nn::parse_spec("conv 8 relu\nconv channels"), {3, 8, 8},
                        nn::LossKind::bce);
  EXPECT_EQ(blind.to_file().find_meta("informed"), nullptr);
}

TEST(Informed, AForgedFlagIsRefusedByName) {
  io::ModelFile file = informed_unet().to_file();
  file.set_meta("informed", "yes");
  try {
    nn::Model::from_file(file, "forged.cae");
    FAIL() << "a forged informed flag";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("forged.cae: meta 'informed' must be 1 or absent"));
  }
  // A blind file marked informed: its first conv reads 4 channels but the rest expects 4 out.
  io::ModelFile blind = nn::Model(nn::parse_spec("conv 8 relu\nconv channels"), {1, 8, 8},
                                  nn::LossKind::bce)
                            .to_file();
  blind.set_meta("informed", "1");
  EXPECT_THROW(nn::Model::from_file(blind, "forged.cae"), Error);
}

// The test scores of an informed model are those of its output given the mask, with the
// undamaged pixels put back: computed here by hand from the executor, per image.
TEST(Informed, EvaluationGivesTheMaskAndScoresTheRepairWithTheUndamagedPixelsKept) {
  const nn::Model model = informed_unet();
  const data::ImageSet test = random_images(5, 16, 12, 1);
  const data::Corruption c = crosshair_and_noise();
  auto exec = model.make_executor(ops::Backend::ref, 2, {});
  const train::EvalStats st = train::evaluate(model, *exec, test, c, 9);

  const ops::Dims d = model.output();
  auto one = model.make_executor(ops::Backend::ref, 1, {});
  double se = 0;
  for (int i = 0; i < test.n; ++i) {
    std::vector<float> clean(d.size()), noisy(d.size()), mask(d.h * d.w), input(4 * d.h * d.w);
    data::to_nchw(test, &i, 1, clean.data());
    data::corrupt(c, clean.data(), noisy.data(), 1, d, 9, Stream::test_noise, 0, i, mask.data());
    data::with_mask_channel(noisy.data(), mask.data(), 1, d, input.data());
    one->forward(input.data());
    std::vector<float> out(d.size());
    nn::output_to_image(model.loss(), one->output(), out.data(), out.size());
    for (std::size_t k = 0; k < out.size(); ++k) {
      const float v = mask[k % (d.h * d.w)] == 1.f ? out[k] : noisy[k];
      se += double(v - clean[k]) * (v - clean[k]);
    }
  }
  EXPECT_NEAR(st.mse_output, se / (test.n * double(d.size())), 1e-9);
  EXPECT_EQ(st.images, 5);
}

TEST(Informed, TrainingNeedsDamageWithAMask) {
  nn::Model model = informed_unet();
  data::Dataset ds;
  ds.train = random_images(20, 16, 12, 2);
  ds.test = random_images(4, 16, 12, 3);
  train::TrainConfig config;
  config.epochs = 1, config.batch = 10, config.backend = ops::Backend::ref;
  config.out_dir = test::scratch_dir();
  Quiet quiet;
  try {
    train::train(model, ds, config, quiet);  // Gaussian noise only: no mask to give
    FAIL() << "an informed model trained on noise alone";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("only masks, lines, the crosshair or strokes make"));
  }
}

// Damage that marks nothing (noise alone) would give an informed model an all-zero mask: it
// would leave every pixel as given (keep_undamaged), and cae eval would score the noisy input as
// its repair and exit 0. Evaluation refuses it for train's reason, in compare() and
// compare_photos() (cae eval, cae.evaluate()) and on the command line in one line.
TEST(Informed, EvaluationNeedsDamageWithAMask) {
  const nn::Model model = informed_unet();
  const data::Corruption noise = data::parse_corruption("gaussian sigma=0.1");
  const data::ImageSet test = random_images(3, 16, 12, 1);
  train::CompareOptions options;
  options.backend = ops::Backend::ref;
  options.baselines = false;
  const std::vector<train::NamedModel> models = {{"informed", &model}};
  const char* const says =
      "an informed model is given the damage mask, which only masks, lines, the crosshair or "
      "strokes make; the corruption 'gaussian sigma=0.1' has none";
  EXPECT_THAT(test::error_of([&] { train::compare(models, test, noise, 0, options); }),
              HasSubstr(says));
  const std::vector<data::Image> photos = {test::textured_photo(20, 18, 3, 1)};
  train::TileOptions tiles;
  tiles.backend = ops::Backend::ref;
  EXPECT_THAT(test::error_of([&] {
                train::compare_photos(models, photos, {"p.png"}, {}, noise, 0, options, tiles);
              }),
              HasSubstr(says));
  // With a mask it runs.
  EXPECT_EQ(train::compare(models, test, crosshair_and_noise(), 0, options).methods.size(), 2u);

  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", test::binary_noise_images(20, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", test::binary_noise_images(10, 12, 2));
  nn::Model gray(nn::parse_spec("conv 4 relu\nconv channels"), {2, 12, 12}, nn::LossKind::bce,
                 true);
  gray.init_glorot(1);
  io::write_model_file(dir + "/informed.cae", gray.to_file());
  const std::string eval = "eval -m " + dir + "/informed.cae --dataset " + dir + "/ds ";
  const test::CommandResult r = test::run_cae(eval + "--corruption 'gaussian sigma=0.1'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, ::testing::StartsWith(std::string("cae: error: ") + says));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  const test::CommandResult ok =
      test::run_cae(eval + "--no-baselines --corruption 'gaussian sigma=0.1 + crosshair'");
  EXPECT_EQ(ok.status, 0) << ok.output;
}

// Training feeds the mask: the same run with the mask channel, twice, gives the same weights,
// and they differ from those of a blind model of the same layers on the same images (its input
// lacks the channel, so its first conv has fewer weights; compared are the layers after it).
TEST(Informed, TrainingIsReproducibleAndWritesAnInformedModelFile) {
  data::Dataset ds;
  ds.train = random_images(20, 16, 12, 2);
  ds.test = random_images(4, 16, 12, 3);
  train::TrainConfig config;
  config.epochs = 2, config.batch = 10, config.backend = ops::Backend::ref;
  config.corruption = crosshair_and_noise();
  Quiet quiet;
  std::vector<std::vector<float>> weights[2];
  for (int run = 0; run < 2; ++run) {
    nn::Model model = informed_unet();
    config.out_dir = test::scratch_dir() + "/run" + std::to_string(run);
    const auto history = train::train(model, ds, config, quiet);
    ASSERT_EQ(history.size(), 2u);
    EXPECT_TRUE(std::isfinite(history.back().test.psnr_output));
    weights[run] = model.params();
    const nn::Model saved = nn::Model::from_file(
        io::read_model_file(config.out_dir + "/model.cae"), "model.cae");
    EXPECT_TRUE(saved.informed());
    EXPECT_EQ(saved.params(), model.params());
  }
  EXPECT_EQ(weights[0], weights[1]);
  EXPECT_NE(weights[0], informed_unet().params()) << "training moved the weights";
}

// The command line: --informed trains an informed model, refuses damage without a mask in one
// line, and cae denoise, which has no mask to give, refuses the model by name.
TEST(Informed, TheCommandLineTrainsOneAndDenoiseRefusesIt) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", test::binary_noise_images(40, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", test::binary_noise_images(10, 12, 2));
  const std::string common = "train --dataset " + dir + "/ds --epochs 1 --batch 10 --threads 1 ";
  const test::CommandResult noise = test::run_cae(common + "--informed --out " + dir + "/noise");
  EXPECT_NE(noise.status, 0);
  EXPECT_THAT(noise.output, HasSubstr("cae: error: an informed model is given the damage mask"));
  const test::CommandResult ok =
      test::run_cae(common + "--informed --noise 0 --crosshair --out " + dir + "/run");
  ASSERT_EQ(ok.status, 0) << ok.output;
  const nn::Model model =
      nn::Model::from_file(io::read_model_file(dir + "/run/model.cae"), "model.cae");
  EXPECT_TRUE(model.informed());
  EXPECT_EQ(model.input().c, 2);
  const test::CommandResult denoise = test::run_cae(
      "denoise -m " + dir + "/run/model.cae --idx " + dir + "/ds/t10k-images-idx3-ubyte -o " +
      dir + "/out.idx");
  EXPECT_NE(denoise.status, 0);
  EXPECT_THAT(denoise.output, HasSubstr("the model is informed"));
}

// Strokes are damage with a mask: an informed model trains on them from the flags, the model file
// records them, and cae eval scores it against the inpainters inside the strokes.
TEST(Informed, StrokesTrainAndEvaluateFromTheCommandLine) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", test::binary_noise_images(40, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", test::binary_noise_images(10, 12, 2));
  const test::CommandResult train = test::run_cae(
      "train --dataset " + dir + "/ds --epochs 1 --batch 10 --threads 1 --informed --noise 0 "
      "--corruption 'strokes vertices=3 length=6' --strokes 2 --stroke-min 1 --stroke-max 3 "
      "--out " + dir + "/run");
  ASSERT_EQ(train.status, 0) << train.output;
  const nn::Model model =
      nn::Model::from_file(io::read_model_file(dir + "/run/model.cae"), "model.cae");
  EXPECT_TRUE(model.informed());
  const auto corruption = std::find_if(model.meta().begin(), model.meta().end(),
                                       [](const auto& kv) { return kv.first == "corruption"; });
  ASSERT_NE(corruption, model.meta().end());
  EXPECT_EQ(corruption->second, "strokes count=2 min=1 max=3 vertices=3 length=6 value=1");
  const test::CommandResult eval = test::run_cae("eval -m " + dir + "/run/model.cae --dataset " +
                                                 dir + "/ds --tune 5 --threads 1");
  ASSERT_EQ(eval.status, 0) << eval.output;
  EXPECT_THAT(eval.output, HasSubstr("corruption 'strokes count=2 min=1 max=3"));
  EXPECT_THAT(eval.output, HasSubstr("PSNR damage"));
  EXPECT_THAT(eval.output, HasSubstr("navier-stokes"));
}
