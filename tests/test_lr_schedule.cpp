// Learning-rate schedules: each schedule's lr per epoch against hand-computed values, the text
// form's round trip and its errors, plateau's state, and the floors a run refuses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cae/error.h"
#include "data/dataset.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "support.h"
#include "train/lr_schedule.h"
#include "train/trainer.h"

using namespace cae;
using namespace cae::train;
using ::testing::HasSubstr;

namespace {

double lr_at(const std::string& text, double base, int epoch, int epochs) {
  return lr_of_epoch(parse_lr_schedule(text), base, epoch, epochs, initial_lr_state(base));
}

}  // namespace

TEST(LrSchedule, ConstantKeepsTheBaseLr) {
  for (int e = 1; e <= 5; ++e) EXPECT_EQ(lr_at("constant", 1e-3, e, 5), 1e-3);
  EXPECT_TRUE(LrSchedule{}.is_constant());
  EXPECT_EQ(format_lr_schedule(LrSchedule{}), "constant");
}

TEST(LrSchedule, StepDecaysByGammaEveryNEpochs) {
  const double want[] = {0.01, 0.01, 0.005, 0.005, 0.0025};  // every=2 gamma=0.5
  for (int e = 1; e <= 5; ++e)
    EXPECT_DOUBLE_EQ(lr_at("step every=2 gamma=0.5", 0.01, e, 5), want[e - 1]) << e;
  EXPECT_DOUBLE_EQ(lr_at("step every=30", 1.0, 31, 100), 0.1);  // gamma defaults to 0.1
  EXPECT_DOUBLE_EQ(lr_at("step every=30", 1.0, 30, 100), 1.0);
}

TEST(LrSchedule, CosineGoesFromTheLrToMinOverTheEpochs) {
  // min + (lr - min)(1 + cos(pi (e-1)/4))/2 with lr 0.01, min 0.001, 5 epochs.
  const double want[] = {0.01, 0.001 + 0.009 * 0.8535533905932737, 0.0055,
                         0.001 + 0.009 * 0.1464466094067262, 0.001};
  for (int e = 1; e <= 5; ++e)
    EXPECT_NEAR(lr_at("cosine min=0.001", 0.01, e, 5), want[e - 1], 1e-15) << e;
  EXPECT_NEAR(lr_at("cosine", 0.01, 3, 3), 0.0, 1e-18);    // min defaults to 0
  EXPECT_EQ(lr_at("cosine min=0.001", 0.01, 1, 1), 0.01);  // one epoch: the lr
}

TEST(LrSchedule, PlateauReducesAfterPatienceEpochsWithoutABetterLoss) {
  const LrSchedule s = parse_lr_schedule("plateau factor=0.5 patience=2 min=0.001");
  LrState state = initial_lr_state(0.01);
  // The lr each epoch is run with, then the test loss it ends with.
  const struct {
    double lr, loss;
  } epochs[] = {
      {0.01, 1.0},    {0.01, 0.9},    {0.01, 0.95},  // 1 without improvement
      {0.01, 0.95},                                  // 2: halve
      {0.005, 0.8},   {0.005, 0.9},   {0.005, 0.9},  // halve
      {0.0025, 0.9},  {0.0025, 0.9},                 // halve
      {0.00125, 0.9}, {0.00125, 0.9},                // halve, but not below min
      {0.001, 0.9},   {0.001, 0.9},   {0.001, 0.7},  // the floor holds; a new best
  };
  int e = 0;
  for (const auto& [lr, loss] : epochs) {
    ++e;
    EXPECT_DOUBLE_EQ(lr_of_epoch(s, 0.01, e, 100, state), lr) << "epoch " << e;
    end_lr_epoch(s, loss, state);
  }
  EXPECT_EQ(state.best, 0.7);
  EXPECT_EQ(state.since, 0);
}

TEST(LrSchedule, TextRoundTripsToItsCanonicalForm) {
  const std::pair<const char*, const char*> cases[] = {
      {"constant", "constant"},
      {"step every=30 gamma=0.1", "step every=30 gamma=0.1"},
      {"  step   gamma=0.5 every=3 ", "step every=3 gamma=0.5"},
      {"step every=4", "step every=4 gamma=0.1"},
      {"cosine", "cosine min=0"},
      {"cosine min=1e-5", "cosine min=1e-05"},
      {"plateau", "plateau factor=0.1 patience=10 min=0"},
      {"plateau patience=3 min=0.0001 factor=0.5", "plateau factor=0.5 patience=3 min=1e-04"},
  };
  for (const auto& [text, canonical] : cases) {
    EXPECT_EQ(format_lr_schedule(parse_lr_schedule(text)), canonical) << text;
    EXPECT_EQ(format_lr_schedule(parse_lr_schedule(canonical)), canonical) << canonical;
  }
}

TEST(LrSchedule, StateRoundTripsExactly) {
  LrState state{0.1234567890123456789, 3, 1.0 / 3};
  const LrState back = parse_lr_state(format_lr_state(state));
  EXPECT_EQ(back.best, state.best);
  EXPECT_EQ(back.since, 3);
  EXPECT_EQ(back.lr, state.lr);
  const LrState fresh = parse_lr_state(format_lr_state(initial_lr_state(1e-3)));
  EXPECT_EQ(fresh.best, std::numeric_limits<double>::infinity());
  EXPECT_EQ(fresh.lr, 1e-3);
  EXPECT_THROW(parse_lr_state("best=x since=0 lr=1"), Error);
  EXPECT_THROW(parse_lr_state(""), Error);
}

TEST(LrSchedule, BadTextsNameTheWordTheyCouldNotRead) {
  const std::pair<const char*, const char*> cases[] = {
      {"step every=2 gamma=abc", "'gamma=abc' is not a number"},
      {"step gamma=0.5", "'step' needs every=N"},
      {"step every=0", "'every=0' is not a whole number of at least 1"},
      {"step every=2.5", "'every=2.5' is not a whole number"},
      {"step every=2 gamma=2", "'gamma=2' is not in (0, 1]"},
      {"step every=2 every=3", "'every=3': key 'every' appears twice"},
      {"plateau factor=0", "'factor=0' is not in (0, 1]"},
      {"plateau patience=x", "'patience=x' is not a number"},
      {"cosine min=-1", "'min=-1' is negative"},
      {"cosine every=3", "'every=3': unknown key for 'cosine'"},
      {"cosine 3", "'3': expected key=value after 'cosine'"},
      {"linear", "unknown schedule 'linear'"},
      {"", "empty schedule"},
  };
  for (const auto& [text, message] : cases)
    EXPECT_THAT([&] { parse_lr_schedule(text); },
                ::testing::ThrowsMessage<Error>(HasSubstr(message)))
        << text;
}

// A floor (min=) at or above the starting lr would make cosine climb to it (--lr 0.001 with
// 'cosine min=1' trained at 1 and diverged, exit 0) and plateau never reduce: a run refuses it
// before any work, as it refuses other config (check_run, which cae train, cae.train() and
// train() all pass through). Compared as the optimizer's float: --lr 0.001 and min=0.001 are one
// rate.
TEST(LrSchedule, ARunRefusesAFloorAtOrAboveTheStartingLr) {
  data::Dataset ds;
  ds.name = "noise";
  ds.train = test::binary_noise_images(20, 12, 1);
  ds.test = test::binary_noise_images(4, 12, 2);
  const nn::Model model(nn::parse_spec("conv 4 relu\nconv channels"), {1, 12, 12},
                        nn::LossKind::bce);
  TrainConfig config;
  config.epochs = 3, config.batch = 10;
  config.optimizer.lr = 0.001f;
  const std::pair<const char*, const char*> refused[] = {
      {"cosine min=1",
       "lr schedule 'cosine min=1': the floor min=1 must be below the starting lr "
       "0.001 (--lr)"},
      {"cosine min=0.001", "the floor min=0.001 must be below the starting lr 0.001"},
      {"plateau min=0.002", "'plateau factor=0.1 patience=10 min=0.002': the floor min=0.002"},
      {"plateau factor=0.5 min=0.001", "the floor min=0.001 must be below"},
  };
  for (const auto& [text, message] : refused) {
    config.lr_schedule = parse_lr_schedule(text);
    EXPECT_THAT([&] { check_run(model, ds, config, 1); },
                ::testing::ThrowsMessage<Error>(HasSubstr(message)))
        << text;
  }
  for (const char* text :
       {"cosine min=0.0009", "cosine", "plateau min=0", "step every=1 gamma=1"}) {
    config.lr_schedule = parse_lr_schedule(text);
    EXPECT_NO_THROW(check_run(model, ds, config, 1)) << text;
  }
}
