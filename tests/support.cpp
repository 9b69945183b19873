#include "support.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/rng.h"

namespace cae::test {

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // Outside a test (a suite's set-up) the folder is the process's own: CTest runs each test in
  // a process of its own, several at once under -j, and one suite's set-up must not empty
  // another's folder.
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name()
                          : "scratch-" + std::to_string(::getpid());
  for (char& ch : name)
    if (ch == '/') ch = '_';
  std::filesystem::path dir = std::filesystem::path(CAE_BINARY_DIR) / "test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

data::Image textured_photo(int h, int w, int c, int seed) {
  data::Image img;
  img.h = h, img.w = w, img.c = c;
  img.pixels.resize(std::size_t(h) * w * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        img.pixels[(std::size_t(y) * w + x) * c + k] =
            std::uint8_t(128 + 60 * std::sin(0.21 * x + 0.5 * k + seed) +
                         50 * std::cos(0.17 * y - seed) + ((x * 7 + y * 13 + seed) % 11));
  return img;
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

CommandResult run_shell(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe))
    r.output.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

CommandResult run_cae(const std::string& args) { return run_shell(std::string(CAE_EXE) + " " + args); }

data::ImageSet binary_noise_images(int n, int side, std::uint64_t seed, std::uint8_t on,
                                   std::uint8_t off) {
  data::ImageSet set;
  set.n = n;
  set.h = set.w = side;
  set.pixels.resize(std::size_t(n) * side * side);
  Rng rng({seed});
  for (auto& p : set.pixels) p = rng.uniform() < 0.3f ? on : off;
  return set;
}

ScopedEnv::ScopedEnv(const char* name, const char* value) : name_(name) {
  if (const char* was = std::getenv(name)) {
    had_ = true;
    previous_ = was;
  }
  if (value)
    ::setenv(name, value, 1);
  else
    ::unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (had_)
    ::setenv(name_.c_str(), previous_.c_str(), 1);
  else
    ::unsetenv(name_.c_str());
}

data::ImageSet random_images(int n, int h, int w, std::uint64_t seed) {
  data::ImageSet set;
  set.n = n, set.h = h, set.w = w, set.c = 3;
  const std::vector<float> v = random_floats(std::size_t(n) * h * w * 3, seed, 0.f, 255.f);
  for (float x : v) set.pixels.push_back(std::uint8_t(x));
  return set;
}

namespace {

// Calls f(nchw, blocked) with the index of every cell in NCHW and in nChw<L>c.
template <class F>
void for_blocked_cells(int n, int c, int h, int w, int L, F f) {
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int p = 0; p < h * w; ++p)
        f((std::size_t(i) * c + ch) * h * w + p,
          ((std::size_t(i) * (c / L) + ch / L) * h * w + p) * L + ch % L);
}

}  // namespace

std::vector<float> to_blocked(const std::vector<float>& a, int n, int c, int h, int w, int L) {
  std::vector<float> b(a.size());
  for_blocked_cells(n, c, h, w, L,
                    [&](std::size_t plain, std::size_t blocked) { b[blocked] = a[plain]; });
  return b;
}

std::vector<float> from_blocked(const std::vector<float>& b, int n, int c, int h, int w, int L) {
  std::vector<float> a(b.size());
  for_blocked_cells(n, c, h, w, L,
                    [&](std::size_t plain, std::size_t blocked) { a[plain] = b[blocked]; });
  return a;
}

}  // namespace cae::test
