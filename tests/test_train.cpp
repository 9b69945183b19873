// The training loop: reproducibility, resume equivalence, evaluation, model files of trained
// models, and real learning on an MNIST subset.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cae/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "support.h"
#include "train/trainer.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {

// n images of h×w with a few random bright rectangles on a dark background.
data::ImageSet rectangles(int n, int h, int w, std::uint64_t seed) {
  data::ImageSet set;
  set.n = n;
  set.h = h;
  set.w = w;
  set.c = 1;
  set.pixels.assign(std::size_t(n) * h * w, 0);
  Rng rng({seed});
  for (int i = 0; i < n; ++i) {
    std::uint8_t* img = set.pixels.data() + std::size_t(i) * h * w;
    for (int r = 0; r < 2; ++r) {
      int y0 = int(rng.below(h - 4)), x0 = int(rng.below(w - 4));
      int y1 = y0 + 2 + int(rng.below(h - y0 - 2)), x1 = x0 + 2 + int(rng.below(w - x0 - 2));
      for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) img[y * w + x] = 200;
    }
  }
  return set;
}

data::Dataset small_dataset() {
  data::Dataset ds;
  ds.name = "rectangles";
  ds.train = rectangles(120, 12, 12, 1);
  ds.test = rectangles(30, 12, 12, 2);
  return ds;
}

class Quiet : public train::Progress {};

nn::Model seed_model(ops::Dims input, std::uint64_t seed) {
  nn::Model m(nn::parse_spec(nn::preset_spec("seed")), input, nn::LossKind::bce);
  m.init_glorot(seed);
  return m;
}

train::TrainConfig small_config(const std::string& out, int epochs) {
  train::TrainConfig c;
  c.epochs = epochs;
  c.batch = 20;
  c.seed = 7;
  c.out_dir = out;
  return c;
}

}  // namespace

TEST(Model, GlorotInitHasTheTfLimits) {
  nn::Model m = seed_model({1, 28, 28}, 3);
  ASSERT_EQ(m.param_infos().size(), 14u);  // 7 convs, weight + bias each
  // op0: 1 → 32, k3: limit sqrt(6 / (9 + 288)).
  const double limit0 = std::sqrt(6.0 / (9.0 * 1 + 9.0 * 32));
  float lo = 1, hi = -1;
  for (float x : m.params()[0]) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_LE(hi, limit0);
  EXPECT_GE(lo, -limit0);
  EXPECT_GT(hi, 0.9 * limit0);  // 288 draws reach near the edge
  for (float b : m.params()[1]) EXPECT_EQ(b, 0.f);
  nn::Model again = seed_model({1, 28, 28}, 3);
  EXPECT_EQ(again.params()[4], m.params()[4]);
  nn::Model other = seed_model({1, 28, 28}, 4);
  EXPECT_NE(other.params()[4], m.params()[4]);
}

TEST(Model, RefusesAnArchitectureThatChangesTheShape) {
  EXPECT_THROW(nn::Model(nn::parse_spec("conv 4; pool"), {1, 8, 8}, nn::LossKind::bce), Error);
}

TEST(Model, FileRoundTripAndMismatches) {
  nn::Model m = seed_model({1, 12, 12}, 1);
  m.meta().emplace_back("corruption", "gaussian sigma=0.5");
  const std::string path = test::scratch_dir() + "/m.cae";
  io::write_model_file(path, m.to_file());
  nn::Model back = nn::Model::from_file(io::read_model_file(path), path);
  EXPECT_EQ(back.params(), m.params());
  EXPECT_EQ(back.input(), m.input());
  EXPECT_EQ(back.arch().text, m.arch().text);
  ASSERT_EQ(back.meta().size(), 1u);

  io::ModelFile bad = m.to_file();
  bad.tensors[2].shape = {32, 32, 3, 3, 1};
  EXPECT_THAT([&] { nn::Model::from_file(bad, "x.cae"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("tensor 'op2.weight' has shape")));
  bad = m.to_file();
  bad.tensors.pop_back();
  EXPECT_THAT([&] { nn::Model::from_file(bad, "x.cae"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("is missing")));
  bad = m.to_file();
  bad.tensors[0].data[5] = std::nanf("");
  EXPECT_THAT([&] { nn::Model::from_file(bad, "x.cae"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("NaN")));
  bad = m.to_file();
  bad.spec = "conv 3 wat";
  EXPECT_THAT([&] { nn::Model::from_file(bad, "x.cae"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("token 'wat'")));
}

TEST(Train, SameSeedSameWeightsAndResumeEqualsUninterrupted) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;

  nn::Model full = seed_model(ds.dims(), 7);
  auto h_full = train::train(full, ds, small_config(dir + "/full", 3), quiet);
  ASSERT_EQ(h_full.size(), 3u);

  nn::Model twin = seed_model(ds.dims(), 7);
  train::train(twin, ds, small_config(dir + "/twin", 3), quiet);
  EXPECT_EQ(twin.params(), full.params()) << "same seed, same threads: identical weights";

  // Stop after 2 epochs, then resume to 3 from the checkpoint, starting from fresh weights.
  nn::Model part = seed_model(ds.dims(), 7);
  train::train(part, ds, small_config(dir + "/part", 2), quiet);
  nn::Model resumed = seed_model(ds.dims(), 99);  // overwritten by the checkpoint
  auto cfg = small_config(dir + "/part", 3);
  cfg.resume = true;
  auto h_resumed = train::train(resumed, ds, cfg, quiet);
  ASSERT_EQ(h_resumed.size(), 3u);
  EXPECT_NEAR(h_resumed[0].train_loss, h_full[0].train_loss, 1e-6);  // from the CSV history
  EXPECT_EQ(resumed.params(), full.params()) << "resume must end with the uninterrupted weights";

  nn::Model from_disk =
      nn::Model::from_file(io::read_model_file(dir + "/part/model.cae"), "model.cae");
  EXPECT_EQ(from_disk.params(), full.params());
}

// A batchnorm model: its running statistics move (from 0 and 1), resume reaches the
// uninterrupted weights and statistics, and each epoch's test scores are those of the folded
// model (the running statistics), as `cae eval` computes them.
TEST(Train, BatchnormRunningStatisticsMoveResumeAndTestScoresAreTheFoldedModels) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  auto bn_model = [&](std::uint64_t seed) {
    nn::Model m(nn::parse_spec(nn::preset_spec("unet-bn")), ds.dims(), nn::LossKind::bce);
    m.init_glorot(seed);
    return m;
  };
  auto config = [&](const std::string& out, int epochs) {
    train::TrainConfig c = small_config(out, epochs);
    c.micro_batch = 10;  // two passes a step: the statistics of 10 images each
    return c;
  };
  nn::Model full = bn_model(7);
  const auto history = train::train(full, ds, config(dir + "/full", 3), quiet);
  ASSERT_EQ(history.size(), 3u);
  const auto& infos = full.param_infos();
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (!infos[i].name.starts_with("running_")) continue;
    const float start = infos[i].name == "running_var" ? 1.f : 0.f;
    bool moved = false;
    for (float v : full.params()[i]) moved = moved || v != start;
    EXPECT_TRUE(moved) << full.param_name(i);
  }
  nn::Model part = bn_model(7);
  train::train(part, ds, config(dir + "/part", 2), quiet);
  nn::Model resumed = bn_model(99);
  auto cfg = config(dir + "/part", 3);
  cfg.resume = true;
  train::train(resumed, ds, cfg, quiet);
  EXPECT_EQ(resumed.params(), full.params());

  auto exec = full.make_inference_executor(ops::Backend::dnnl, 10, {});
  const train::EvalStats eval = train::evaluate(full, *exec, ds.test, cfg.corruption, cfg.seed);
  EXPECT_NEAR(eval.loss, history.back().test.loss, 1e-6);
  EXPECT_NEAR(eval.psnr_output, history.back().test.psnr_output, 1e-4);
}

TEST(Train, DefaultMicroBatchIsTheLargestDivisorFrom16To50) {
  EXPECT_EQ(train::default_micro_batch(200), 50);
  EXPECT_EQ(train::default_micro_batch(100), 50);
  EXPECT_EQ(train::default_micro_batch(512), 32);
  EXPECT_EQ(train::default_micro_batch(64), 32);
  EXPECT_EQ(train::default_micro_batch(20), 20);
  EXPECT_EQ(train::default_micro_batch(7), 7);     // small: one pass
  EXPECT_EQ(train::default_micro_batch(53), 53);   // prime: one pass, not 53 passes of 1
  EXPECT_EQ(train::default_micro_batch(1), 1);
}

// cae train --device cuda at the seed's defaults: one pass of the whole batch, so that its epochs
// go to the fused device steps. Decided without a GPU, as the trainer decides it.
TEST(Train, DefaultSettingsOfferCudaTheFusedStepsAndTheHostPasses) {
  train::TrainConfig config;  // batch 200, no --micro-batch
  EXPECT_EQ(train::default_micro_batch(200, ops::Backend::cuda), 200);
  config.backend = ops::Backend::cuda;
  EXPECT_EQ(train::micro_batch_of(config, 1), 200);
  EXPECT_TRUE(train::offers_fused_epochs(config, 1, false));
  EXPECT_FALSE(train::offers_fused_epochs(config, 2, false));  // ranks sum on the host
  EXPECT_FALSE(train::offers_fused_epochs(config, 1, true));   // targets: the host loop
  EXPECT_EQ(train::micro_batch_of(config, 2), 100);
  config.micro_batch = 50;  // asked for: passes of 50, the host loop
  EXPECT_FALSE(train::offers_fused_epochs(config, 1, false));
  config = train::TrainConfig{};  // the host backends: passes of 50
  for (ops::Backend b : {ops::Backend::dnnl, ops::Backend::ref}) {
    config.backend = b;
    EXPECT_EQ(train::micro_batch_of(config, 1), 50);
    EXPECT_FALSE(train::offers_fused_epochs(config, 1, false));
  }
}

// Passes of 10 or 20 images with summed gradients take the step of one pass of 40. With SGD,
// whose step scales with the gradient (Adam's hardly does), so a wrong weighting shows too.
TEST(Train, MicroBatchesTakeTheWholeBatchsStep) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  auto run = [&](int micro) {
    nn::Model m = seed_model(ds.dims(), 7);
    auto cfg = small_config(dir + "/micro" + std::to_string(micro), 1);
    cfg.batch = 40;
    cfg.micro_batch = micro;
    cfg.optimizer.kind = nn::OptimizerKind::sgd;
    cfg.optimizer.lr = 0.5f;
    const auto history = train::train(m, ds, cfg, quiet);
    return std::pair{m.params(), history.at(0).train_loss};
  };
  const auto [whole, whole_loss] = run(40);
  for (int micro : {10, 20}) {
    const auto [split, split_loss] = run(micro);
    EXPECT_NEAR(split_loss, whole_loss, 1e-6) << micro;
    ASSERT_EQ(split.size(), whole.size());
    for (std::size_t t = 0; t < whole.size(); ++t)
      for (std::size_t i = 0; i < whole[t].size(); ++i)
        ASSERT_NEAR(split[t][i], whole[t][i], 1e-5) << "micro " << micro << " tensor " << t;
  }
  nn::Model m = seed_model(ds.dims(), 7);
  auto cfg = small_config(dir + "/bad", 1);
  cfg.batch = 40;
  cfg.micro_batch = 30;
  EXPECT_THAT(test::error_of([&] { train::train(m, ds, cfg, quiet); }),
              ::testing::HasSubstr("micro-batch 30 does not divide the 40 images of a batch"));
}

TEST(Train, ResumeRefusesAnotherRunsCheckpoint) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  nn::Model m = seed_model(ds.dims(), 7);
  train::train(m, ds, small_config(dir, 1), quiet);
  auto cfg = small_config(dir, 2);
  cfg.resume = true;
  cfg.batch = 10;
  EXPECT_THAT([&] { train::train(m, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("batch 20, this run asks for 10")));
  cfg = small_config(dir + "/empty", 2);
  cfg.resume = true;
  EXPECT_THAT([&] { train::train(m, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("no checkpoint")));
}

namespace {

// A run of 4 epochs with a schedule and one of 2 resumed to 4 take the same steps bit for bit:
// the checkpoint carries the schedule and its state.
void expect_resume_follows_the_schedule(const std::string& schedule, float lr) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  auto config = [&](const std::string& out, int epochs) {
    auto c = small_config(out, epochs);
    c.optimizer.lr = lr;
    c.lr_schedule = train::parse_lr_schedule(schedule);
    return c;
  };
  nn::Model full = seed_model(ds.dims(), 7);
  auto h_full = train::train(full, ds, config(dir + "/full", 4), quiet);
  nn::Model part = seed_model(ds.dims(), 7);
  auto h_part = train::train(part, ds, config(dir + "/part", 2), quiet);
  nn::Model resumed = seed_model(ds.dims(), 99);  // overwritten by the checkpoint
  auto cfg = config(dir + "/part", 4);
  cfg.resume = true;
  auto h_resumed = train::train(resumed, ds, cfg, quiet);
  ASSERT_EQ(h_resumed.size(), 4u);
  for (int e = 2; e < 4; ++e) {
    EXPECT_EQ(h_resumed[e].lr, h_full[e].lr) << schedule << ", epoch " << e + 1;
    EXPECT_EQ(h_resumed[e].test.loss, h_full[e].test.loss) << schedule << ", epoch " << e + 1;
  }
  EXPECT_EQ(resumed.params(), full.params()) << schedule << ": resume must end where 4 epochs do";
  EXPECT_LT(h_full[3].lr, lr) << schedule << ": the lr must have fallen, or the test shows little";
  const io::ModelFile file = io::read_model_file(dir + "/part/model.cae");
  ASSERT_NE(file.find_meta("lr_schedule"), nullptr);
  EXPECT_EQ(*file.find_meta("lr_schedule"), train::format_lr_schedule(cfg.lr_schedule));
  EXPECT_NE(io::read_model_file(dir + "/part/checkpoint.cae").find_meta("lr_state"), nullptr);

  // Each epoch ran with the lr its schedule gives, replayed from the test losses.
  train::LrState state = train::initial_lr_state(lr);
  for (int e = 1; e <= 4; ++e) {
    EXPECT_EQ(h_full[e - 1].lr, float(train::lr_of_epoch(cfg.lr_schedule, lr, e, 4, state)))
        << schedule << ", epoch " << e;
    train::end_lr_epoch(cfg.lr_schedule, h_full[e - 1].test.loss, state);
  }
}

}  // namespace

TEST(Train, ResumeFollowsAStepSchedule) {
  expect_resume_follows_the_schedule("step every=1 gamma=0.5", 1e-3f);
}

TEST(Train, ResumeFollowsAPlateauSchedule) {
  // An lr so large that the test loss stalls, and patience 1: the lr falls within 4 epochs.
  expect_resume_follows_the_schedule("plateau factor=0.5 patience=1", 0.5f);
}

TEST(Train, ResumeRefusesAnotherLrSchedule) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  nn::Model m = seed_model(ds.dims(), 7);
  auto cfg = small_config(dir, 1);
  cfg.lr_schedule = train::parse_lr_schedule("step every=2 gamma=0.5");
  train::train(m, ds, cfg, quiet);
  cfg = small_config(dir, 2);
  cfg.resume = true;
  EXPECT_THAT([&] { train::train(m, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr("lr_schedule 'step every=2 gamma=0.5', this run asks for 'constant'")));
}

TEST(Train, ConstantScheduleWritesNoScheduleMeta) {
  data::Dataset ds = small_dataset();
  const std::string dir = test::scratch_dir();
  Quiet quiet;
  nn::Model m = seed_model(ds.dims(), 7);
  auto h = train::train(m, ds, small_config(dir, 1), quiet);
  EXPECT_EQ(h[0].lr, 1e-3f);
  EXPECT_EQ(io::read_model_file(dir + "/model.cae").find_meta("lr_schedule"), nullptr);
  const io::ModelFile cp = io::read_model_file(dir + "/checkpoint.cae");
  EXPECT_EQ(cp.find_meta("lr_schedule"), nullptr);
  EXPECT_EQ(cp.find_meta("lr_state"), nullptr);
}

TEST(Train, DivergenceStopsWithEpochAndStep) {
  data::Dataset ds = small_dataset();
  Quiet quiet;
  nn::Model m = seed_model(ds.dims(), 7);
  auto cfg = small_config(test::scratch_dir(), 2);
  cfg.optimizer.kind = nn::OptimizerKind::sgd;
  cfg.optimizer.lr = 1e30f;
  EXPECT_THAT([&] { train::train(m, ds, cfg, quiet); },
              ::testing::ThrowsMessage<Error>(HasSubstr("diverged")));
}

TEST(Evaluate, DoesNotDependOnTheBatchSize) {
  data::Dataset ds = small_dataset();
  nn::Model m = seed_model(ds.dims(), 5);
  data::Corruption c;
  auto e7 = m.make_executor(ops::Backend::dnnl, 7, {});  // 30 = 4·7 + 2: a padded last batch
  auto e30 = m.make_executor(ops::Backend::dnnl, 30, {});
  train::EvalStats a = train::evaluate(m, *e7, ds.test, c, 1);
  train::EvalStats b = train::evaluate(m, *e30, ds.test, c, 1);
  EXPECT_EQ(a.images, 30);
  EXPECT_NEAR(a.loss, b.loss, 1e-6);
  EXPECT_NEAR(a.psnr_output, b.psnr_output, 1e-4);
  EXPECT_DOUBLE_EQ(a.psnr_noisy, b.psnr_noisy);
  // Noise of σ 0.5 on mostly-dark images: the noisy PSNR is far below a perfect one.
  EXPECT_GT(a.psnr_noisy, 5.0);
  EXPECT_LT(a.psnr_noisy, 15.0);
}

TEST(Train, LearnsToDenoiseRealMnist) {
  const std::string mnist = test::mnist_dir();
  if (mnist.empty()) GTEST_SKIP() << "MNIST not installed (scripts/setup-data.sh)";
  data::Dataset ds = data::load_dataset(mnist, "");
  data::truncate(ds.train, 3000);
  data::truncate(ds.test, 500);
  Quiet quiet;
  nn::Model m = seed_model(ds.dims(), 0);
  auto e = m.make_executor(ops::Backend::dnnl, 100, {});
  const train::EvalStats before = train::evaluate(m, *e, ds.test, {}, 0);
  train::TrainConfig cfg;
  cfg.epochs = 3;
  cfg.batch = 100;
  cfg.out_dir = test::scratch_dir();
  auto history = train::train(m, ds, cfg, quiet);
  const train::EvalStats& after = history.back().test;
  // An untrained net outputs ~0.5 everywhere: BCE ≈ 0.69. Three short epochs reach well below.
  EXPECT_GT(before.loss, 0.6);
  EXPECT_LT(after.loss, 0.3);
  EXPECT_LT(history.back().train_loss, history.front().train_loss);
  EXPECT_GT(after.psnr_output, after.psnr_noisy + 3.0);
}

// A time limit stops the run before the epoch that would pass it: with a limit far below one
// epoch's length, the run trains its first epoch only, and the model file says so.
TEST(Train, ATimeLimitStopsBeforeTheEpochThatWouldPassIt) {
  const data::Dataset ds = small_dataset();
  train::TrainConfig config = small_config(test::scratch_dir(), 3);
  config.time_limit_seconds = 1e-6;
  nn::Model model = seed_model(ds.dims(), 1);
  Quiet quiet;
  const auto history = train::train(model, ds, config, quiet);
  ASSERT_EQ(history.size(), 1u);
  const nn::Model saved =
      nn::Model::from_file(io::read_model_file(config.out_dir + "/model.cae"), "model.cae");
  const auto epochs = std::find_if(saved.meta().begin(), saved.meta().end(),
                                   [](const auto& kv) { return kv.first == "epochs"; });
  ASSERT_NE(epochs, saved.meta().end());
  EXPECT_EQ(epochs->second, "1");
  config.time_limit_seconds = 0;  // no limit: all three
  nn::Model again = seed_model(ds.dims(), 1);
  config.out_dir = test::scratch_dir() + "/unlimited";
  EXPECT_EQ(train::train(again, ds, config, quiet).size(), 3u);
}
