// Small helpers shared by the tests: deterministic random data and a scratch directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cae/error.h"

namespace cae::test {

// n floats uniform in [lo, hi), fixed by seed.
std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.f, float hi = 1.f);

// A fresh empty directory under the build tree, named after the running test.
std::string scratch_dir();

// Where the setup step installed MNIST, or "" when it is not there (tests needing it skip).
std::string mnist_dir();

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
