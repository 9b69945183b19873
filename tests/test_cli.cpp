// The cae command end to end on a small IDX dataset made here: train, info, show, denoise, and
// bad input that must end in one clear message and a non-zero exit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/rng.h"
#include "data/idx.h"
#include "data/png_io.h"
#include "ops/ops.h"
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
  // The symmetries' ensemble is of files, which it turns; an IDX set is refused, not ignored.
  Result ens_idx = run("denoise -m " + dir + "/run/model.cae --ensemble 8 --idx " + dir +
                       "/ds/t10k-images-idx3-ubyte -o " + dir + "/den8.idx");
  EXPECT_EQ(ens_idx.status, 1);
  EXPECT_THAT(ens_idx.output, HasSubstr("cae: error: denoise --ensemble: "));

  // Resume to 3 epochs continues after epoch 2.
  Result r = run("train --dataset " + dir + "/ds --epochs 3 --batch 10 --threads 1 --resume --out " +
                 dir + "/run");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resuming at epoch 3 of 3"));
}

// A graph model (skip connections) through every command: train, info with its memory plan,
// denoise in tiles (an image larger than the model's 12x12), export; a bad join in --spec is one
// clear line naming the token.
TEST(Cli, GraphModelTrainsDenoisesInTilesAndPrintsItsPlan) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", binary_noise_images(20, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", binary_noise_images(10, 12, 2));
  Result t = run("train --dataset " + dir +
                 "/ds --preset unet --epochs 1 --batch 10 --threads 1 "
                 "--out " +
                 dir + "/run");
  ASSERT_EQ(t.status, 0) << t.output;
  Result info = run("info " + dir + "/run/model.cae --plan --batch 10");
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("concat e1"));
  EXPECT_THAT(info.output, HasSubstr("memory plan (dnnl, batch 10"));
  EXPECT_THAT(info.output, HasSubstr("d act 0 from op 13 (skip)"));
  EXPECT_THAT(info.output, HasSubstr("total: "));
  Result kernels = run("info " + dir + "/run/model.cae --kernels --batch 10");
  ASSERT_EQ(kernels.status, 0) << kernels.output;
  EXPECT_THAT(kernels.output, HasSubstr("kernels (dnnl, batch 10, "));
  EXPECT_THAT(kernels.output, ::testing::ContainsRegex("forward +13 +concat +forward +cae:concat"));
  EXPECT_THAT(kernels.output, HasSubstr("fallbacks: none"));
  EXPECT_THAT(kernels.output, HasSubstr("conv kernels (the fixed rules):"));  // the suite's
  // The CLI's own default: measured, then read back from the cache.
  const std::string measured = "CAE_KERNELS= CAE_KERNEL_CACHE=" + dir + "/kernels.json " +
                               std::string(CAE_EXE) + " info " + dir + "/run/model.cae --kernels --batch 10";
  Result first = test::run_shell(measured);
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("conv kernels (measured, the fastest kept):"));
  EXPECT_THAT(first.output, HasSubstr("cache: " + dir + "/kernels.json"));
  EXPECT_THAT(first.output, ::testing::ContainsRegex("measuring: [0-9]+ ms\n"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/kernels.json"));
  Result again = test::run_shell(measured);
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("measuring: 0 ms (every choice from the cache)"));
  EXPECT_THAT(again.output, HasSubstr("(cached)"));
  // An inference pass is another entry: timed on the forward pass alone.
  Result infer = test::run_shell(measured + " --inference");
  ASSERT_EQ(infer.status, 0) << infer.output;
  EXPECT_THAT(infer.output, HasSubstr("kernels (dnnl, batch 10, "));
  EXPECT_THAT(infer.output, HasSubstr(", inference pass):"));
  EXPECT_THAT(infer.output, ::testing::Not(::testing::ContainsRegex("\n  backward ")));
  EXPECT_THAT(infer.output, HasSubstr("| inference"));
  EXPECT_THAT(infer.output, ::testing::ContainsRegex("measuring: [0-9]+ ms\n"));
  Result ref_kernels = run("info " + dir + "/run/model.cae --kernels --backend ref");
  ASSERT_EQ(ref_kernels.status, 0) << ref_kernels.output;
  EXPECT_THAT(ref_kernels.output, ::testing::ContainsRegex("backward +0 +conv +backward +ref"));
  if (!ops::backend_unavailable_reason(ops::Backend::cuda).empty()) {
    // A backend that cannot run here is said before anything is printed.
    Result cuda = run("info " + dir + "/run/model.cae --kernels --backend cuda");
    EXPECT_EQ(cuda.status, 1);
    EXPECT_THAT(cuda.output, ::testing::StartsWith("cae: error: cuda backend: "));
  }

  data::Image big;
  big.h = 29;
  big.w = 17;
  big.pixels.assign(std::size_t(big.h) * big.w, 90);
  data::write_png(dir + "/big.png", big);
  Result dn = run("denoise -m " + dir + "/run/model.cae " + dir + "/big.png -o " + dir + "/out");
  ASSERT_EQ(dn.status, 0) << dn.output;
  EXPECT_EQ(data::read_png(dir + "/out/big.png").h, 29);
  Result dn8 = run("denoise -m " + dir + "/run/model.cae --ensemble 8 " + dir + "/big.png -o " +
                   dir + "/out8");
  ASSERT_EQ(dn8.status, 0) << dn8.output;
  EXPECT_EQ(data::read_png(dir + "/out8/big.png").w, 17);
  Result ex = run("export " + dir + "/run/model.cae -o " + dir + "/unet.onnx");
  ASSERT_EQ(ex.status, 0) << ex.output;

  Result bad = run("train --dataset " + dir +
                   "/ds --spec 'conv 8 as a; pool; conv 8; concat a; "
                   "conv channels' --epochs 1 --batch 10 --out " +
                   dir + "/bad");
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_THAT(bad.output, ::testing::StartsWith("cae: error: "));
  EXPECT_THAT(bad.output, HasSubstr("token 'a'"));
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
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
  EXPECT_EQ(usage.status, 2);
  EXPECT_EQ(usage.output,
            "cae: error: --epochs: value -3 is not in 1 … 1000000 (see 'cae train --help')\n");
}

// An executor variable with a value the backends do not know (once silently taken as one of the
// choices) ends the run in one clear message naming the variable and what it accepts.
TEST(Cli, BadExecutorVariableEndsInOneClearMessage) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", binary_noise_images(20, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", binary_noise_images(10, 12, 2));
  Result r = test::run_shell("(CAE_WINOGRAD=bogus " CAE_EXE " train --dataset " + dir +
                             "/ds --epochs 1 --batch 10 --threads 1 --out " + dir + "/run)");
  EXPECT_EQ(r.status, 1) << r.output;
  // After the training header, which comes before the first executor is built.
  EXPECT_THAT(r.output,
              ::testing::EndsWith(
                  "\ncae: error: CAE_WINOGRAD='bogus': expected cae|onednn|0 (or unset)\n"));
  EXPECT_EQ(r.output.find("cae: error:"), r.output.rfind("cae: error:")) << r.output;
}

// bf16 where it cannot run ends in one message saying why, never in a slow run: on the ref
// backend always, and on the dnnl backend capped to AVX2 (no AVX512_BF16 below AVX-512), also
// when it comes from CAE_PRECISION.
TEST(Cli, Bf16WhereItCannotRunEndsInOneClearMessage) {
  const std::string dir = test::scratch_dir();
  std::filesystem::create_directories(dir + "/ds");
  data::write_idx_images(dir + "/ds/train-images-idx3-ubyte", binary_noise_images(20, 12, 1));
  data::write_idx_images(dir + "/ds/t10k-images-idx3-ubyte", binary_noise_images(10, 12, 2));
  const std::string train =
      " train --dataset " + dir + "/ds --epochs 1 --batch 10 --threads 1 --out " + dir + "/run";
  Result r = test::run_shell(CAE_EXE + train + " --precision bf16 --backend ref");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, ::testing::EndsWith("\ncae: error: ref backend: bf16 runs on the CPU's "
                                            "dnnl backend only (precision f32 here)\n"));
  r = test::run_shell("(CAE_MAX_ISA=avx2 CAE_PRECISION=bf16 " CAE_EXE + train + ")");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("\ncae: error: bf16 needs a CPU with AVX512_BF16"));
  EXPECT_EQ(r.output.find("cae: error:"), r.output.rfind("cae: error:")) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/model.cae")) << "a refused run wrote a model";
}

// A command line cae cannot run ends, before any work, with exactly one line on stderr that names
// the option or argument and says what was expected, and exit status 2.
TEST(Cli, UsageErrorsAreOneLineAndExitTwo) {
  const std::string dir = test::scratch_dir();
  const std::string see_train = " (see 'cae train --help')";
  const std::string commands =
      "expected one of train, denoise, show, info, presets, export, eval, repair, compare, models, "
      "serve, plot, checkerboard";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // out of range, not a number
      {"train --batch 0", "--batch: value 0 is not in 1 … 65536" + see_train},
      {"train --batch 70000", "--batch: value 70000 is not in 1 … 65536" + see_train},
      {"train --batch abc", "--batch: 'abc' is not an integer" + see_train},
      {"train --threads 1.5", "--threads: '1.5' is not an integer" + see_train},
      {"train --noise x", "--noise: 'x' is not a number" + see_train},
      {"train --noise 101", "--noise: value 101 is not in 0 … 100" + see_train},
      {"train --lr 0", "--lr: value 0 is not above 0" + see_train},
      {"train --time-limit -1", "--time-limit: value -1 is not in 0 … 525600" + see_train},
      {"train --time-limit abc", "--time-limit: 'abc' is not a number" + see_train},
      {"train --lr nan", "--lr: value nan is not a finite number" + see_train},
      {"train --limit -3", "--limit: value -3 is below 0" + see_train},
      {"train --seed abc", "--seed: 'abc' is not a non-negative integer" + see_train},
      {"train --backend frob", "--backend: 'frob' is not one of dnnl, ref, cuda" + see_train},
      {"train --precision fp16", "--precision: 'fp16' is not one of f32, bf16" + see_train},
      {"train --preset frob",
       "--preset: 'frob' is not one of residual, seed, seed-tconv, unet, unet-bn, unet-deep, unet-wide" + see_train},
      {"denoise -m a.cae -o out --depth 12",
       "--depth: value 12 is not one of 8, 16 (see 'cae denoise --help')"},
      {"compare a.png -m a.cae --ensemble 3",
       "--ensemble: value 3 is not one of 1, 2, 4, 8 (see 'cae compare --help')"},
      // unknown options and arguments
      {"train --bach 10", "unknown option --bach (did you mean --batch?)" + see_train},
      {"train --frobnicate", "unknown option --frobnicate" + see_train},
      {"train extra", "unexpected argument 'extra': train takes no arguments" + see_train},
      {"info a.cae b.cae", "unexpected argument 'b.cae' (see 'cae info --help')"},
      // missing command, option, argument or value; a value too many
      {"", "no command given: " + commands + " (see 'cae --help')"},
      {"frobnicate", "unknown command 'frobnicate': " + commands + " (see 'cae --help')"},
      {"show --count 4", "--model is required: model file (see 'cae show --help')"},
      {"info", "argument 'model' is required: model file (see 'cae info --help')"},
      {"train --batch", "--batch needs a value: batch size (default 200)" + see_train},
      {"train --batch 10 --batch 20", "--batch: expected 1 value, found 2" + see_train},
      {"train --resume=maybe", "--resume: 'maybe' is not true or false" + see_train},
      {"train --lr-schedule 'step every=2 gamma=abc'",
       "--lr-schedule: 'gamma=abc' is not a number" + see_train},
  };
  for (const auto& [args, line] : cases) {
    // In an empty directory, where train would write runs/seed.
    const Result r = test::run_shell("cd '" + dir + "' && " CAE_EXE " " + args);
    EXPECT_EQ(r.status, 2) << "cae " << args << "\n" << r.output;
    EXPECT_EQ(r.output, "cae: error: " + line + "\n") << "cae " << args;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "a usage error started some work";
}

TEST(Cli, HelpAndVersionExitZeroOnStdout) {
  for (const std::string args : {"--help", "-h", "train --help", "denoise -h", "show --help"}) {
    const Result r = test::run_shell("(" CAE_EXE " " + args + " >/dev/null)");  // stderr only
    EXPECT_EQ(r.status, 0) << "cae " << args;
    EXPECT_EQ(r.output, "") << "cae " << args;
    EXPECT_THAT(run(args).output, HasSubstr("Usage: ")) << "cae " << args;
  }
  Result help = run("train --help");
  EXPECT_THAT(help.output, HasSubstr("--batch INT:INT in [1 - 65536]"));
  Result version = run("--version");
  EXPECT_EQ(version.status, 0);
  EXPECT_THAT(version.output, ::testing::MatchesRegex("cae [0-9]+\\.[0-9]+\\.[0-9]+\n"));
}

// Usage is 2, anything wrong in what the command reads or writes 1 (docs/usage.md, Errors).
TEST(Cli, ErrorsInFilesExitOne) {
  const std::string dir = test::scratch_dir();
  Result r = run("info " + dir + "/missing.cae");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, ::testing::StartsWith("cae: error: "));
  EXPECT_THAT(r.output, HasSubstr("missing.cae"));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}
