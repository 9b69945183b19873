#include "support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

namespace cae::test {

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::string scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "scratch";
  for (char& ch : name)
    if (ch == '/') ch = '_';
  std::filesystem::path dir = std::filesystem::path(CAE_BINARY_DIR) / "test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string mnist_dir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CAE_DATA")) candidates.push_back(std::string(env) + "/mnist");
  if (const char* home = std::getenv("HOME"))
    candidates.push_back(std::string(home) + "/.local/share/cae/mnist");
  for (const auto& dir : candidates)
    if (std::filesystem::exists(dir + "/train-images-idx3-ubyte")) return dir;
  return "";
}

}  // namespace cae::test
