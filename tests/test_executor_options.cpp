// ExecutorOptions from the environment, read at the edge: executor_options_from_environment()
// (tools/environment.h) reads each CAE_* executor variable's accepted values, leaves the defaults
// where one is unset or empty, and refuses any other value naming the variable and what it
// accepts; and the variables reach the executors built with what it returns (the path of the CLI,
// the trainer and the Python module), while ops::make_executor reads nothing but the struct it is
// given.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cae/error.h"
#include "core/isa.h"
#include "environment.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/ops.h"
#include "support.h"

namespace cae::ops {
namespace {

using ::testing::HasSubstr;
using W = ExecutorOptions::Winograd;

constexpr const char* kVariables[] = {"CAE_WINOGRAD",   "CAE_WINOGRAD_TILE", "CAE_THIN_CONV",
                                      "CAE_CUDA_GRAPH", "CAE_CUDA_TF32",     "CAE_KERNELS",
                                      "CAE_KERNEL_CACHE"};

// Every executor variable unset for one scope, whatever the caller's environment holds (the
// suite's CAE_KERNELS=fixed included), and the cache's home fixed.
struct CleanEnv {
  test::ScopedEnv winograd{"CAE_WINOGRAD", nullptr}, tile{"CAE_WINOGRAD_TILE", nullptr},
      thin{"CAE_THIN_CONV", nullptr}, graph{"CAE_CUDA_GRAPH", nullptr},
      tf32{"CAE_CUDA_TF32", nullptr}, kernels{"CAE_KERNELS", nullptr},
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

}  // namespace
}  // namespace cae::ops
