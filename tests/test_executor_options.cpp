// ExecutorOptions from the environment, read at the edge: executor_options_from_environment()
// (tools/environment.h) reads each CAE_* executor variable's accepted values, leaves the defaults
// where one is unset or empty, and refuses any other value naming the variable and what it
// accepts; the variables reach the executors built with what it returns (the path of the CLI, the
// trainer and the Python module), while the library (ops::make_executor, nn::Model, the trainer,
// the C++ API given its options) reads nothing but the structs it is given.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cae/cae.h"
#include "cae/error.h"
#include "core/isa.h"
#include "environment.h"
#include "io/model_file.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/ops.h"
#include "support.h"
#include "train/trainer.h"

namespace cae::ops {
namespace {

using ::testing::HasSubstr;
using W = ExecutorOptions::Winograd;

constexpr const char* kVariables[] = {"CAE_WINOGRAD",   "CAE_WINOGRAD_TILE", "CAE_THIN_CONV",
                                      "CAE_MAXPOOL",    "CAE_CUDA_GRAPH",    "CAE_CUDA_TF32",
                                      "CAE_KERNELS",    "CAE_KERNEL_CACHE"};

// Every executor variable unset for one scope, whatever the caller's environment holds (the
// suite's CAE_KERNELS=fixed included), and the cache's home fixed.
struct CleanEnv {
  test::ScopedEnv winograd{"CAE_WINOGRAD", nullptr}, tile{"CAE_WINOGRAD_TILE", nullptr},
      thin{"CAE_THIN_CONV", nullptr}, pool{"CAE_MAXPOOL", nullptr},
      graph{"CAE_CUDA_GRAPH", nullptr}, tf32{"CAE_CUDA_TF32", nullptr}, kernels{"CAE_KERNELS", nullptr},
      cache{"CAE_KERNEL_CACHE", nullptr}, xdg{"XDG_CACHE_HOME", nullptr}, home{"HOME", "/home/u"};
};

// What the environment gives when none of the variables is set: ExecutorOptions' defaults,
// with kernels measured and cached in the user's cache folder.
ExecutorOptions env_defaults() {
  ExecutorOptions o;
  o.kernels = ExecutorOptions::Kernels::measured;
  o.kernel_cache = "/home/u/.cache/cae/kernels.json";
  return o;
}

ExecutorOptions from_env_with(const char* name, const char* value) {
  const test::ScopedEnv set(name, value);
  return executor_options_from_environment();
}

TEST(ExecutorOptionsFromEnv, UnsetOrEmptyGivesTheDefaults) {
  const CleanEnv clean;
  EXPECT_EQ(executor_options_from_environment(), env_defaults());
  for (const char* name : kVariables) EXPECT_EQ(from_env_with(name, ""), env_defaults()) << name;
}

TEST(ExecutorOptionsFromEnv, ReadsEveryAcceptedValue) {
  const CleanEnv clean;
  EXPECT_EQ(from_env_with("CAE_WINOGRAD", "cae").winograd, W::cae);
  EXPECT_EQ(from_env_with("CAE_WINOGRAD", "onednn").winograd, W::onednn);
  EXPECT_EQ(from_env_with("CAE_WINOGRAD", "0").winograd, W::off);
  EXPECT_EQ(from_env_with("CAE_WINOGRAD_TILE", "4").winograd_tile, 4);
  EXPECT_EQ(from_env_with("CAE_WINOGRAD_TILE", "2").winograd_tile, 2);
  EXPECT_TRUE(from_env_with("CAE_THIN_CONV", "cae").thin_convs);
  EXPECT_FALSE(from_env_with("CAE_THIN_CONV", "dnnl").thin_convs);
  EXPECT_TRUE(from_env_with("CAE_MAXPOOL", "cae").own_maxpool);
  EXPECT_FALSE(from_env_with("CAE_MAXPOOL", "dnnl").own_maxpool);
  EXPECT_TRUE(from_env_with("CAE_CUDA_GRAPH", "1").cuda_graphs);
  EXPECT_FALSE(from_env_with("CAE_CUDA_GRAPH", "0").cuda_graphs);
  EXPECT_FALSE(from_env_with("CAE_CUDA_TF32", "0").cuda_tf32);
  EXPECT_TRUE(from_env_with("CAE_CUDA_TF32", "1").cuda_tf32);
  using K = ExecutorOptions::Kernels;
  EXPECT_EQ(from_env_with("CAE_KERNELS", "measured").kernels, K::measured);
  EXPECT_EQ(from_env_with("CAE_KERNELS", "fixed").kernels, K::fixed);
  EXPECT_EQ(from_env_with("CAE_KERNEL_CACHE", "/tmp/k.json").kernel_cache, "/tmp/k.json");
  EXPECT_EQ(from_env_with("CAE_KERNEL_CACHE", "none").kernel_cache, "");
  EXPECT_EQ(from_env_with("XDG_CACHE_HOME", "/c").kernel_cache, "/c/cae/kernels.json");
  {
    const test::ScopedEnv no_home("HOME", nullptr);
    EXPECT_EQ(executor_options_from_environment().kernel_cache, "");
  }
  // One variable changes its own field only.
  ExecutorOptions want = env_defaults();
  want.thin_convs = false;
  EXPECT_EQ(from_env_with("CAE_THIN_CONV", "dnnl"), want);
}

// Before, an unknown value was silently taken as one of the choices (CAE_THIN_CONV=off ran the
// thin kernels, CAE_CUDA_GRAPH=no replayed graphs).
TEST(ExecutorOptionsFromEnv, RefusesOtherValuesNamingTheVariableAndTheAcceptedOnes) {
  const CleanEnv clean;
  const std::pair<const char*, const char*> cases[] = {{"CAE_WINOGRAD", "cae|onednn|0"},
                                                       {"CAE_WINOGRAD_TILE", "4|2"},
                                                       {"CAE_THIN_CONV", "cae|dnnl"},
                                                       {"CAE_MAXPOOL", "cae|dnnl"},
                                                       {"CAE_CUDA_GRAPH", "1|0"},
                                                       {"CAE_CUDA_TF32", "0|1"},
                                                       {"CAE_KERNELS", "measured|fixed"}};
  for (const auto& [name, accepted] : cases)
    for (const char* bad : {"bogus", "off", "3", " 0", "CAE"}) {
      const test::ScopedEnv set(name, bad);
      const std::string message = test::error_of([] { executor_options_from_environment(); });
      EXPECT_THAT(message, HasSubstr(std::string(name) + "='" + bad + "'"));
      EXPECT_THAT(message, HasSubstr(accepted)) << name;
    }
}

// The dnnl steps' kernels of the seed at batch 2, built the way the CLI builds them: with the
// options the edge reads from the environment.
std::vector<std::string> model_step_impls() {
  nn::Model model(nn::parse_spec(nn::preset_spec("seed")), {1, 28, 28}, nn::LossKind::bce);
  std::vector<std::string> impls;
  for (const KernelUse& s :
       model.make_executor(Backend::dnnl, 2, executor_options_from_environment())->kernels())
    impls.push_back(s.impl);
  return impls;
}

bool any_has(const std::vector<std::string>& impls, const std::string& part) {
  for (const std::string& impl : impls)
    if (impl.find(part) != std::string::npos) return true;
  return false;
}

// One check per dnnl variable that the environment still chooses the kernels where the CLI
// builds its executor. (The CUDA variables take the same path into make_cuda_executor; what
// they choose is not visible without a GPU.)
TEST(ExecutorOptionsFromEnv, ReachTheExecutorsTheModelBuilds) {
  if (cpu_isa() < Isa::avx2) GTEST_SKIP() << "below AVX2 neither our Winograd nor thin kernels run";
  const CleanEnv clean;
  const test::ScopedEnv fixed("CAE_KERNELS", "fixed");  // the rules: what each variable picks
  const auto defaults = model_step_impls();
  EXPECT_TRUE(any_has(defaults, "cae:winograd_4x3"));
  EXPECT_TRUE(any_has(defaults, "cae:thin_conv"));
  {
    const test::ScopedEnv direct("CAE_WINOGRAD", "0");
    EXPECT_FALSE(any_has(model_step_impls(), "wino"));
  }
  {
    const test::ScopedEnv tile("CAE_WINOGRAD_TILE", "2");
    const auto impls = model_step_impls();
    EXPECT_TRUE(any_has(impls, "cae:winograd_2x3"));
    EXPECT_FALSE(any_has(impls, "cae:winograd_4x3"));
  }
  {
    const test::ScopedEnv thin("CAE_THIN_CONV", "dnnl");
    EXPECT_FALSE(any_has(model_step_impls(), "cae:thin_conv"));
  }
  const test::ScopedEnv bad("CAE_WINOGRAD", "bogus");
  EXPECT_THAT(test::error_of([] { model_step_impls(); }), HasSubstr("CAE_WINOGRAD"));
}

// ops::make_executor takes the struct only: the environment changes nothing there.
TEST(ExecutorOptionsFromEnv, MakeExecutorReadsNoVariable) {
  if (cpu_isa() < Isa::avx2) GTEST_SKIP() << "below AVX2 neither our Winograd nor thin kernels run";
  const test::ScopedEnv direct("CAE_WINOGRAD", "0"), thin("CAE_THIN_CONV", "dnnl");
  nn::Model model(nn::parse_spec(nn::preset_spec("seed")), {1, 28, 28}, nn::LossKind::bce);
  std::vector<std::string> impls;
  for (const KernelUse& s : make_executor(Backend::dnnl, model.net(2))->kernels())
    impls.push_back(s.impl);
  EXPECT_TRUE(any_has(impls, "cae:winograd_4x3"));
  EXPECT_TRUE(any_has(impls, "cae:thin_conv"));
}

// What a model's executor runs and gives, built with the options given: its kernels, and its
// output (the training executor's gradients too) on fixed inputs.
struct Ran {
  std::vector<std::string> impls;
  std::vector<float> out, grads;
  bool operator==(const Ran&) const = default;
};

Ran run_model(const nn::Model& model, bool inference, const ExecutorOptions& options) {
  auto exec = inference ? model.make_inference_executor(Backend::dnnl, 2, options)
                        : model.make_executor(Backend::dnnl, 2, options);
  Ran r;
  for (const KernelUse& s : exec->kernels()) r.impls.push_back(s.impl);
  const std::vector<float> x = test::random_floats(2 * model.input().size(), 5, 0.f, 1.f);
  exec->forward(x.data());
  r.out.assign(exec->output(), exec->output() + x.size());
  if (!inference) {
    const std::vector<float> dy = test::random_floats(x.size(), 6);
    exec->backward(dy.data(), nullptr);
    r.grads.assign(exec->grads().begin(), exec->grads().end());
  }
  return r;
}

// One epoch of the trainer on a few images: the kernel line it reports, and the epoch's loss.
std::pair<std::string, double> train_briefly(const nn::Model& start, const std::string& dir) {
  struct Kernels : train::Progress {
    std::string line;
    void on_kernels(const std::string& l, double) override { line = l; }
  } progress;
  nn::Model model = start;
  data::Dataset ds;
  ds.name = "noise";
  ds.train = test::binary_noise_images(4, 12, 1);
  ds.test = test::binary_noise_images(2, 12, 2);
  train::TrainConfig config;  // executor: the library's defaults, the fixed rules
  config.epochs = 1;
  config.batch = 2;
  config.out_dir = dir;
  const double loss = train::train(model, ds, config, progress).back().train_loss;
  return {progress.line, loss};
}

// The library reads no variable: with every variable it once read set to a value the edge
// refuses, the model's executors, the trainer, the C++ API given its options and the search for
// shipped models run exactly as without them, on what they are given; the edge's readers still
// refuse the values with the cae program's messages.
TEST(ExecutorOptionsFromEnv, TheLibraryReadsNoVariableOnlyTheEdgeDoes) {
  nn::Model model(nn::parse_spec(nn::preset_spec("seed")), {1, 12, 12}, nn::LossKind::bce);
  model.init_glorot(1);
  const ExecutorOptions fixed;  // the library's defaults: the fixed rules
  const Ran training = run_model(model, false, fixed), inference = run_model(model, true, fixed);
  const auto trained = train_briefly(model, test::scratch_dir() + "/clean");
  const std::vector<std::uint8_t> file = io::encode_model_file(model.to_file());
  const std::vector<float> x = test::random_floats(2 * model.input().size(), 7, 0.f, 1.f);
  const EngineOptions engine{.kernels = EngineOptions::Kernels::fixed};
  const std::vector<float> denoised = Autoencoder::load_bytes(file, "m", engine).denoise(x, 2);
  const std::size_t shipped = Autoencoder::shipped_models(EngineOptions{}).size();
  EXPECT_GT(shipped, 0u);  // the source tree's models/

  const test::ScopedEnv kernels("CAE_KERNELS", "garbage"), winograd("CAE_WINOGRAD", "garbage"),
      tile("CAE_WINOGRAD_TILE", "garbage"), thin("CAE_THIN_CONV", "garbage"),
      graph("CAE_CUDA_GRAPH", "garbage"), tf32("CAE_CUDA_TF32", "garbage"),
      cache("CAE_KERNEL_CACHE", "/nonexistent/kernels.json"), isa("CAE_MAX_ISA", "garbage"),
      models("CAE_MODELS", "/nonexistent");
  EXPECT_THAT(test::error_of([] { executor_options_from_environment(); }),
              HasSubstr("CAE_WINOGRAD='garbage': expected cae|onednn|0 (or unset)"));
  EXPECT_THAT(test::error_of([] { EngineOptions::from_environment(); }),
              HasSubstr("CAE_WINOGRAD='garbage': expected cae|onednn|0 (or unset)"));
  {
    const test::ScopedEnv no_winograd("CAE_WINOGRAD", nullptr),
        no_tile("CAE_WINOGRAD_TILE", nullptr), no_thin("CAE_THIN_CONV", nullptr),
        no_graph("CAE_CUDA_GRAPH", nullptr), no_tf32("CAE_CUDA_TF32", nullptr);
    EXPECT_THAT(test::error_of([] { executor_options_from_environment(); }),
                HasSubstr("CAE_KERNELS='garbage': expected measured|fixed (or unset)"));
  }
  EXPECT_THAT(isa_cap_from_environment().error,
              HasSubstr("CAE_MAX_ISA: 'garbage' is not an instruction-set tier"));
  EXPECT_EQ(models_folder_from_environment(), "/nonexistent");

  EXPECT_EQ(run_model(model, false, fixed), training);
  EXPECT_EQ(run_model(model, true, fixed), inference);
  EXPECT_EQ(train_briefly(model, test::scratch_dir() + "/garbage"), trained);
  EXPECT_EQ(Autoencoder::load_bytes(file, "m", engine).denoise(x, 2), denoised);
  EXPECT_EQ(Autoencoder::shipped_models(EngineOptions{}).size(), shipped);
  EXPECT_NO_THROW(isa_cap());  // the process's cap is the one the tests' main set
}

}  // namespace
}  // namespace cae::ops
