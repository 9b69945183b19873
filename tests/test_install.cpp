// The installed package, as a user sees it: `cmake --install` this build tree into a temporary
// prefix, configure and build examples/consumer against that prefix only (find_package(cae)),
// and run it on a model made here. Its numbers must match the engine's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "io/model_file.h"
#include "nn/model.h"
#include "support.h"

using namespace cae;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {


using Result = test::CommandResult;
const auto& sh = test::run_shell;

std::string quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST(Install, ConsumerBuildsAndRunsAgainstTheInstalledPackage) {
  const std::string dir = test::scratch_dir();
  const std::string prefix = dir + "/prefix", build = dir + "/consumer-build";
  const std::string cmake = quote(CAE_CMAKE);

  Result r = sh(cmake + " --install " + quote(CAE_BINARY_DIR) + " --prefix " + quote(prefix));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* file : {"bin/cae", "include/cae/cae.h", "include/cae/error.h",
                           "lib/cmake/cae/caeConfig.cmake", "lib/cmake/cae/caeConfigVersion.cmake"})
    EXPECT_TRUE(fs::exists(prefix + "/" + file)) << file;
  bool has_lib = false;
  for (const auto& e : fs::recursive_directory_iterator(prefix))
    has_lib = has_lib || e.path().filename().string().rfind("libcae.so", 0) == 0;
  EXPECT_TRUE(has_lib);

  // The package registry is off so that only the prefix can supply cae.
  r = sh(cmake + " -S " + quote(std::string(CAE_SOURCE_DIR) + "/examples/consumer") + " -B " +
         quote(build) + " -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=" +
         quote(CAE_CXX_COMPILER) + " -DCMAKE_PREFIX_PATH=" + quote(prefix) +
         " -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF");
  ASSERT_EQ(r.status, 0) << r.output;
  r = sh("grep '^cae_DIR' " + quote(build + "/CMakeCache.txt"));
  EXPECT_THAT(r.output, HasSubstr(prefix + "/"));
  r = sh(cmake + " --build " + quote(build));
  ASSERT_EQ(r.status, 0) << r.output;

  // The consumer loads the installed libcae, not the build tree's.
  const std::string exe = build + "/cae_consumer";
  r = sh("ldd " + quote(exe) + " | grep libcae");
  EXPECT_THAT(r.output, HasSubstr(prefix));

  // A seed model; the consumer's numbers must be those of the engine on the same images.
  const ops::Dims dims{1, 12, 12};
  nn::Model model(nn::parse_spec(nn::preset_spec("seed")), dims, nn::LossKind::bce);
  model.init_glorot(3);
  io::write_model_file(dir + "/m.cae", model.to_file());
  std::vector<float> x(2 * dims.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i / 3 % 7 < 3) ? 230 / 255.f : 20 / 255.f;
  auto exec = model.make_executor(ops::Backend::ref, 2, {});
  exec->forward(x.data());
  std::vector<float> y(x.size());
  nn::output_to_image(model.loss(), exec->output(), y.data(), y.size());
  double mean = 0;
  for (float v : y) mean += v;
  mean /= double(y.size());

  r = sh(quote(exe) + " " + quote(dir + "/m.cae"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("image 1x12x12 latent 16x2x2"));
  std::istringstream lines(r.output);
  std::string line;
  double got = -1, byte_mean = -1;
  while (std::getline(lines, line))
    if (line.rfind("mean ", 0) == 0)
      std::sscanf(line.c_str(), "mean %lf byte-mean %lf", &got, &byte_mean);
  EXPECT_NEAR(got, mean, 1e-5) << r.output;
  EXPECT_NEAR(byte_mean, mean, 1.0 / 255) << r.output;  // bytes are rounded

  // A cae::Error thrown inside libcae is caught as cae::Error by the consumer.
  r = sh(quote(exe) + " " + quote(dir + "/missing.cae"));
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("cae_consumer: "));
  EXPECT_THAT(r.output, HasSubstr("missing.cae"));

  // The installed program runs.
  r = sh(quote(prefix + "/bin/cae") + " info " + quote(dir + "/m.cae"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("input: 12x12x1"));

  // It finds the shipped models installed beside it (share/cae/models), before the source tree's.
  for (const auto& e : fs::directory_iterator(std::string(CAE_SOURCE_DIR) + "/models")) {
    if (e.path().extension() != ".cae") continue;
    const std::string installed = prefix + "/share/cae/models/" + e.path().filename().string();
    EXPECT_TRUE(fs::exists(installed)) << installed;
    r = sh("env -u CAE_MODELS " + quote(prefix + "/bin/cae") + " models");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr(installed));
  }
}
