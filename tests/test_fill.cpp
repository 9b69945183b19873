// Informed models with a fill (train/fill.h): cv::inpaint repairs the damage first and the net
// corrects its repair. A net whose output is zero must repair exactly as the inpainter does, in
// every path that runs such a model; the model file and the checkpoint record the fill; what
// cannot take one is refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "cae/error.h"
#include "data/corrupt.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "io/model_file.h"
#include "export/onnx_export.h"
#include "nn/fill.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/baselines.h"
#include "train/evaluation.h"
#include "train/fill.h"
#include "train/tiling.h"
#include "train/trainer.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

using test::random_images;

// An informed unet for 16x12 RGB tiles; its parameters are zero until init_glorot, so its net
// outputs zero: with a fill, its repair is the fill's.
nn::Model fill_unet(const std::string& fill) {
  nn::Model model(nn::parse_spec(nn::preset_spec("unet")), {4, 16, 12}, nn::LossKind::mse,
                  /*informed=*/true);
  if (!fill.empty()) model.set_fill(fill);
  return model;
}

const data::Corruption kDamage = data::parse_corruption("gaussian sigma=0 + crosshair thickness=2");

class Quiet : public train::Progress {};

}  // namespace

TEST(Fill, ParsesAndDescribesItself) {
  EXPECT_EQ(nn::describe_fill(nn::parse_fill("telea")), "telea r=3");
  EXPECT_EQ(nn::describe_fill(nn::parse_fill("navier-stokes r=1")), "navier-stokes r=1");
  const nn::Fill f = nn::parse_fill("telea r=64");
  EXPECT_EQ(f.method, nn::FillMethod::telea);
  EXPECT_EQ(f.radius, 64);
  for (const char* bad :
       {"", "ns", "telea r=0", "telea r=65", "telea r=x", "telea 3", "telea r=3 r=4", "median"})
    EXPECT_THROW(nn::parse_fill(bad), Error) << bad;
  // The names are the baselines' that run them.
  for (nn::FillMethod m : {nn::FillMethod::telea, nn::FillMethod::navier_stokes})
    EXPECT_STREQ(nn::fill_method_name(m), train::baseline_name(train::fill_baseline(m)));
}

// The net's input holds the fill inside the mask (the damaged image's pixels elsewhere) and the
// mask plane; its output is added to the fill.
TEST(Fill, TheNetSeesTheFillAndCorrectsIt) {
  const nn::Model model = fill_unet("navier-stokes r=3");
  const ops::Dims d = model.output();
  const data::ImageSet images = random_images(3, d.h, d.w, 4);
  std::vector<float> clean(3 * d.size()), damaged(clean.size()), mask(3 * d.h * d.w);
  const std::vector<int> all = {0, 1, 2};
  data::to_nchw(images, all.data(), 3, clean.data());
  data::corrupt(kDamage, clean.data(), damaged.data(), 3, d, 1, Stream::test_noise, 0, 0,
                mask.data());
  std::vector<float> fill(clean.size());
  train::apply_baseline(train::Baseline::navier_stokes, 3, damaged.data(), fill.data(), 3, d,
                        mask.data());
  train::InformedRun run(model, 3);
  ASSERT_TRUE(run.has_fill());
  const float* x = run.input(damaged.data(), mask.data(), 3);
  const std::size_t plane = std::size_t(d.h) * d.w;
  for (int b = 0; b < 3; ++b) {
    for (int c = 0; c < 3; ++c)
      for (std::size_t p = 0; p < plane; ++p)
        ASSERT_EQ(x[b * 4 * plane + c * plane + p], fill[b * d.size() + c * plane + p]);
    for (std::size_t p = 0; p < plane; ++p)
      ASSERT_EQ(x[b * 4 * plane + 3 * plane + p], mask[b * plane + p]);
  }
  const std::vector<float> net = test::random_floats(clean.size(), 5, -0.1f, 0.1f);
  const float* out = run.output(net.data(), 3);
  for (std::size_t k = 0; k < net.size(); ++k) ASSERT_EQ(out[k], net[k] + fill[k]);
  // Without a fill the input is the damaged image and the output the net's own.
  train::InformedRun plain(fill_unet(""), 3);
  EXPECT_FALSE(plain.has_fill());
  EXPECT_EQ(plain.output(net.data(), 3), net.data());
  EXPECT_EQ(plain.input(damaged.data(), mask.data(), 3)[5], damaged[5]);
}

// A photo larger than a tile, repaired through the tiler by a net that outputs zero: exactly the
// inpainter's repair of the whole photo (the blend of equal values, to float rounding).
TEST(Fill, AZeroNetRepairsThroughTheTilerAsTheInpainterDoes) {
  for (const char* text : {"navier-stokes r=3", "telea r=5"}) {
    const nn::Model model = fill_unet(text);
    const ops::Dims d{3, 37, 29};
    const data::ImageSet photo = random_images(1, d.h, d.w, 6);
    std::vector<float> clean(d.size()), damaged(d.size()), mask(d.h * d.w), expect(d.size());
    const int zero = 0;
    data::to_nchw(photo, &zero, 1, clean.data());
    data::corrupt(kDamage, clean.data(), damaged.data(), 1, d, 2, Stream::test_noise, 0, 0,
                  mask.data());
    const nn::Fill fill = nn::parse_fill(text);
    train::apply_baseline(fill.method == nn::FillMethod::telea ? train::Baseline::telea
                                                               : train::Baseline::navier_stokes,
                          float(fill.radius), damaged.data(), expect.data(), 1, d, mask.data());
    const std::vector<float> got =
        train::denoise_tiled(model, damaged.data(), d, {.backend = ops::Backend::ref}, mask.data());
    ASSERT_EQ(got.size(), expect.size());
    for (std::size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], expect[k], 1e-6f) << text;
    EXPECT_NE(expect, damaged) << "the crosshair was filled";
  }
}

// The trainer's test scores of a zero net are the fill's.
TEST(Fill, EvaluationScoresAZeroNetAsTheFill) {
  const nn::Model model = fill_unet("telea r=3");
  const ops::Dims d = model.output();
  const data::ImageSet test = random_images(5, d.h, d.w, 7);
  auto exec = model.make_executor(ops::Backend::ref, 2, {});
  const train::EvalStats st = train::evaluate(model, *exec, test, kDamage, 9);
  double se = 0;
  for (int i = 0; i < test.n; ++i) {
    std::vector<float> clean(d.size()), damaged(d.size()), mask(d.h * d.w), fill(d.size());
    data::to_nchw(test, &i, 1, clean.data());
    data::corrupt(kDamage, clean.data(), damaged.data(), 1, d, 9, Stream::test_noise, 0, i,
                  mask.data());
    train::apply_baseline(train::Baseline::telea, 3, damaged.data(), fill.data(), 1, d,
                          mask.data());
    for (std::size_t k = 0; k < fill.size(); ++k)
      se += double(fill[k] - clean[k]) * (fill[k] - clean[k]);
  }
  EXPECT_NEAR(st.mse_output, se / (test.n * double(d.size())), 1e-9);
}

// What cannot take a fill is refused by name, and set_fill refuses it too.
TEST(Fill, ModelsThatCannotTakeOneAreRefused) {
  nn::Model blind(nn::parse_spec("conv 8 relu\nconv channels"), {3, 8, 8}, nn::LossKind::mse);
  EXPECT_THAT([&] { nn::check_fill_model(blind, "--fill"); },
              testing::ThrowsMessage<Error>(HasSubstr("must be informed")));
  EXPECT_THAT([&] { blind.set_fill("telea"); },
              testing::ThrowsMessage<Error>(HasSubstr("fill 'telea': a fill repairs the damage")));
  EXPECT_EQ(blind.fill(), "");
  nn::Model bce(nn::parse_spec("conv 8 relu\nconv channels"), {4, 8, 8}, nn::LossKind::bce, true);
  EXPECT_THAT([&] { nn::check_fill_model(bce, "--fill"); },
              testing::ThrowsMessage<Error>(HasSubstr("--loss mse")));
  EXPECT_THAT([&] { bce.set_fill("telea"); },
              testing::ThrowsMessage<Error>(HasSubstr("--loss mse")));
  EXPECT_FALSE(bce.fill_settings().has_value());
  // The file keeps the fill.
  const nn::Model model = fill_unet("navier-stokes r=2");
  io::ModelFile file = model.to_file();
  ASSERT_NE(file.find_meta("fill"), nullptr);
  EXPECT_EQ(*file.find_meta("fill"), "navier-stokes r=2");
  EXPECT_EQ(nn::Model::from_file(file, "f.cae").fill(), "navier-stokes r=2");
  EXPECT_EQ(fill_unet("").to_file().find_meta("fill"), nullptr);
  // ONNX has no cv::inpaint: the graph would return a correction, not a repair.
  EXPECT_THAT([&] { io::encode_onnx(model); },
              testing::ThrowsMessage<Error>(HasSubstr("corrects a cv::inpaint fill")));
}

// A file whose fill names no inpainter, or sits on a model that cannot take one (blind, or bce's
// logits), is refused as it is read, naming the file: nn::Model::from_file is every loader's
// (cae info, the CLI's load_model, cae::Autoencoder::load, the Python module), so nothing runs
// such a model, and a blind one cannot pass for one whose fill is merely ignored.
TEST(Fill, ReadingAFileRefusesAFillItsModelCannotTake) {
  const nn::Model informed = fill_unet("");
  const nn::Model blind(nn::parse_spec("conv 8 relu\nconv channels"), {3, 8, 8}, nn::LossKind::mse);
  const nn::Model bce(nn::parse_spec("conv 8 relu\nconv channels"), {4, 8, 8}, nn::LossKind::bce,
                      true);
  const struct {
    const nn::Model* model;
    std::string fill, says;
  } cases[] = {
      {&informed, "bogus r=3", "the inpainter must be telea or navier-stokes"},
      {&informed, "telea r=65", "radius a whole number of pixels from 1 to 64"},
      {&informed, "", "the inpainter must be telea or navier-stokes"},
      {&blind, "telea r=3", "the model must be informed"},
      {&bce, "navier-stokes r=3", "(--loss mse), not bce's logits"},
  };
  for (const auto& c : cases) {
    io::ModelFile file = c.model->to_file();
    file.set_meta("fill", c.fill);
    const std::string message = test::error_of([&] { nn::Model::from_file(file, "forged.cae"); });
    EXPECT_THAT(message, HasSubstr("forged.cae: meta fill '" + c.fill + "'")) << c.fill;
    EXPECT_THAT(message, HasSubstr(c.says)) << c.fill;
  }
}

// The same forged files through the commands and the embedding API: one clear line, non-zero. A
// blind model with a fill, which cae denoise refused while cae eval scored it, is refused by both.
TEST(Fill, EveryLoaderRefusesAForgedFill) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", test::binary_noise_images(20, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", test::binary_noise_images(10, 12, 2));
  nn::Model blind(nn::parse_spec("conv 4 relu\nconv channels"), {1, 12, 12}, nn::LossKind::mse);
  blind.init_glorot(1);
  io::ModelFile file = blind.to_file();
  file.set_meta("fill", "telea r=3");
  io::write_model_file(dir + "/blind-fill.cae", file);
  io::ModelFile bogus =
      nn::Model(nn::parse_spec("conv 4 relu\nconv channels"), {2, 12, 12}, nn::LossKind::mse, true)
          .to_file();
  bogus.set_meta("fill", "bogus r=3");
  io::write_model_file(dir + "/bogus-fill.cae", bogus);
  const struct {
    std::string file, says;
  } models[] = {{"blind-fill.cae", "the model must be informed"},
                {"bogus-fill.cae", "the inpainter must be telea or navier-stokes"}};
  for (const auto& m : models) {
    const std::string path = dir + "/" + m.file;
    for (const std::string& command :
         {"info " + path, "eval -m " + path + " --dataset " + dir + "/ds --no-baselines",
          "denoise -m " + path + " --idx " + dir + "/ds/t10k-images-idx3-ubyte -o " + dir +
              "/out.idx"}) {
      const test::CommandResult r = test::run_cae(command);
      EXPECT_EQ(r.status, 1) << command << "\n" << r.output;
      EXPECT_THAT(r.output, ::testing::StartsWith("cae: error: " + path + ": meta fill '"))
          << command;
      EXPECT_THAT(r.output, HasSubstr(m.says)) << command;
      EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    }
    EXPECT_THAT([&] { cae::Autoencoder::load(path); },
                testing::ThrowsMessage<cae::Error>(HasSubstr(m.says)));
  }
}

// Training with a fill is reproducible, its files record the fill, and resuming it with another
// fill is refused.
TEST(Fill, TrainingRecordsItAndResumeNeedsTheSameFill) {
  data::Dataset ds;
  ds.train = random_images(20, 16, 12, 2);
  ds.test = random_images(4, 16, 12, 3);
  train::TrainConfig config;
  config.epochs = 1, config.batch = 10, config.backend = ops::Backend::ref;
  config.corruption = kDamage;
  Quiet quiet;
  std::vector<std::vector<float>> weights[2];
  const std::string dir = test::scratch_dir();
  for (int run = 0; run < 2; ++run) {
    nn::Model model = fill_unet("telea r=3");
    model.init_glorot(1);
    config.out_dir = dir + "/run" + std::to_string(run);
    const auto history = train::train(model, ds, config, quiet);
    ASSERT_EQ(history.size(), 1u);
    weights[run] = model.params();
    const nn::Model saved =
        nn::Model::from_file(io::read_model_file(config.out_dir + "/model.cae"), "model.cae");
    EXPECT_EQ(saved.fill(), "telea r=3");
  }
  EXPECT_EQ(weights[0], weights[1]);
  nn::Model other = fill_unet("navier-stokes r=3");
  other.init_glorot(1);
  config.epochs = 2, config.resume = true;
  EXPECT_THAT([&] { train::train(other, ds, config, quiet); },
              testing::ThrowsMessage<Error>(HasSubstr("the checkpoint's fill is 'telea r=3'")));
}

TEST(Fill, TheCommandLineRefusesWhatCannotTakeOne) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", test::binary_noise_images(40, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", test::binary_noise_images(10, 12, 2));
  const std::string common = "train --dataset " + dir +
                             "/ds --epochs 1 --batch 10 --threads 1 "
                             "--noise 0 --crosshair --out " +
                             dir + "/run ";
  const struct {
    std::string args, says;
  } cases[] = {
      {"--fill telea --loss mse", "must be informed"},
      {"--fill telea --informed", "--loss mse"},
      {"--fill 'telea r=0' --informed --loss mse", "radius a whole number of pixels"},
      {"--fill median --informed --loss mse", "telea or navier-stokes"},
  };
  for (const auto& c : cases) {
    const test::CommandResult r = test::run_cae(common + c.args);
    EXPECT_NE(r.status, 0) << c.args;
    EXPECT_THAT(r.output, HasSubstr("cae: error:")) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.says)) << c.args;
  }
  const test::CommandResult ok =
      test::run_cae(common + "--fill 'navier-stokes r=1' --informed --loss mse");
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(nn::Model::from_file(io::read_model_file(dir + "/run/model.cae"), "model.cae").fill(),
            "navier-stokes r=1");
}
