// Small helpers shared by the tests: deterministic random data and a scratch directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cae/error.h"
#include "data/idx.h"
#include "data/png_io.h"

namespace cae::test {

// n floats uniform in [lo, hi), fixed by seed.
std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.f, float hi = 1.f);

// A fresh empty directory under the build tree, named after the running test.
std::string scratch_dir();

// The bytes of a file; "" when it cannot be read.
std::string read_file(const std::string& path);

// A smooth picture with some texture, h×w×c bytes, fixed by seed: a stand-in photo.
data::Image textured_photo(int h, int w, int c, int seed);

// Where the setup step installed MNIST, or "" when it is not there (tests needing it skip).
std::string mnist_dir();

struct CommandResult {
  int status = -1;     // exit status, -1 when killed by a signal or not started
  std::string output;  // stdout and stderr together
};

// Runs a shell command line; stdout and stderr are captured together.
CommandResult run_shell(const std::string& command);
// Runs the cae binary under test with the given arguments.
CommandResult run_cae(const std::string& args);

// n side×side gray images, each pixel `on` with probability 0.3 else `off`, fixed by seed.
// n RGB images of h×w, random bytes, fixed by seed.
data::ImageSet random_images(int n, int h, int w, std::uint64_t seed);

// NCHW <-> nChw<L>c, oneDNN's blocked activation layout (c a multiple of L): what our kernels
// read and write, for tests that call them directly.
std::vector<float> to_blocked(const std::vector<float>& a, int n, int c, int h, int w, int L);
std::vector<float> from_blocked(const std::vector<float>& b, int n, int c, int h, int w, int L);

data::ImageSet binary_noise_images(int n, int side, std::uint64_t seed, std::uint8_t on = 255,
                                   std::uint8_t off = 0);

// Sets (or, with value null, unsets) an environment variable for one scope, then puts back what
// was there: for the CAE_* variables that the edge reads (tools/environment.h).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  bool had_ = false;
  std::string previous_;
};

// Runs f, expecting a cae::Error; returns its message (a test failure when nothing is thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const cae::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a cae::Error";
  return "";
}

}  // namespace cae::test
