// The cae command end to end on a small IDX dataset made here: train, info, show, denoise, and
// bad input that must end in one clear message and a non-zero exit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/rng.h"
#include "data/idx.h"
#include "data/png_io.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;

namespace {
using Result = test::CommandResult;
using test::binary_noise_images;
const auto& run = test::run_cae;
}  // namespace

TEST(Cli, TrainInfoShowDenoise) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", binary_noise_images(40, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", binary_noise_images(10, 12, 2));

  Result t = run("train --dataset " + dir + "/ds --epochs 2 --batch 10 --threads 1 --out " + dir +
                 "/run");
  ASSERT_EQ(t.status, 0) << t.output;
  EXPECT_THAT(t.output, HasSubstr("epoch 2/2"));
  for (const char* f : {"model.cae", "checkpoint.cae", "losses.csv", "metrics.json"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/run/" + f)) << f;
  std::ifstream csv(dir + "/run/losses.csv");
  std::string header, row1, row2, row3;
  std::getline(csv, header);
  std::getline(csv, row1);
  std::getline(csv, row2);
  EXPECT_THAT(header, HasSubstr("epoch,train_loss,test_loss"));
  EXPECT_EQ(row1.substr(0, 2), "1,");
  EXPECT_EQ(row2.substr(0, 2), "2,");
  EXPECT_FALSE(std::getline(csv, row3) && !row3.empty());

  Result info = run("info " + dir + "/run/model.cae");
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("input: 12x12x1"));
  EXPECT_THAT(info.output, HasSubstr("corruption: gaussian sigma=0.5"));

  Result show = run("show -m " + dir + "/run/model.cae --dataset " + dir + "/ds --count 4 " +
                    "--scale 2 -o " + dir + "/fig.png");
  ASSERT_EQ(show.status, 0) << show.output;
  data::Image fig = data::read_png(dir + "/fig.png");
  EXPECT_EQ(fig.w, 4 * 24 + 3 * 4);  // 4 images of 24 px, gaps of 2·scale
  EXPECT_EQ(fig.h, 3 * 24 + 2 * 4);

  data::Image one;
  one.h = one.w = 12;
  one.pixels.assign(144, 128);
  data::write_png(dir + "/in.png", one);
  Result dn = run("denoise -m " + dir + "/run/model.cae " + dir + "/in.png -o " + dir + "/out");
  ASSERT_EQ(dn.status, 0) << dn.output;
  EXPECT_EQ(data::read_png(dir + "/out/in.png").h, 12);

  Result dn_idx = run("denoise -m " + dir + "/run/model.cae --idx " + dir +
                      "/ds/t10k-images-idx3-ubyte -o " + dir + "/den.idx");
  ASSERT_EQ(dn_idx.status, 0) << dn_idx.output;
  EXPECT_EQ(data::read_idx_images(dir + "/den.idx").n, 10);

  // Resume to 3 epochs continues after epoch 2.
  Result r = run("train --dataset " + dir + "/ds --epochs 3 --batch 10 --threads 1 --resume --out " +
                 dir + "/run");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resuming at epoch 3 of 3"));
}

TEST(Cli, BadInputEndsInOneClearMessage) {
  const std::string dir = test::scratch_dir();
  {
    std::ofstream junk(dir + "/junk.cae");
    junk << "definitely not a model";
  }
  Result m = run("info " + dir + "/junk.cae");
  EXPECT_NE(m.status, 0);
  EXPECT_THAT(m.output, HasSubstr("cae: error:"));
  EXPECT_THAT(m.output, HasSubstr("junk.cae"));

  Result spec = run("train --dataset " + dir + " --spec 'conv 8; frobnicate'");
  EXPECT_NE(spec.status, 0);
  EXPECT_THAT(spec.output, HasSubstr("cae: error:"));

  Result missing = run("train --dataset " + dir + "/nowhere --epochs 1");
  EXPECT_NE(missing.status, 0);
  EXPECT_THAT(missing.output, HasSubstr("not found"));

  Result usage = run("train --epochs -3");
  EXPECT_NE(usage.status, 0);
}
