// The C++ embedding API's side of bench/python_api.py: a small server that loads one model file
// (argv[1]) through include/cae/cae.h and answers one JSON line per command on stdin, so that the
// harness can alternate it with the Python module in the same run while both stay warm. Not a
// test; built only by cmake/bench.cmake.
//
//   float B T WARMUP STEPS   Autoencoder::denoise of B float images (NCHW), T threads: images/s
//                            of the STEPS calls after WARMUP, per second of wall time and per
//                            second of the process's CPU time (which another load on the
//                            machine does not stretch)
//   bytes B T WARMUP STEPS   the same with B uint8 images (HWC bytes)
//   quit
#include <omp.h>

#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cae/cae.h"

namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

struct Rates {
  double wall = 0, cpu = 0;  // images per second
};

template <class T>
Rates rate(const cae::Autoencoder& model, const std::vector<T>& images, int batch, int warmup,
           int steps) {
  std::size_t sink = 0;  // keeps the results live
  for (int i = 0; i < warmup; ++i) sink += model.denoise(images, batch).size();
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  for (int i = 0; i < steps; ++i) sink += model.denoise(images, batch).size();
  const double cpu = cpu_seconds() - c0;
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sink == 0) std::printf("{\"error\":\"no output\"}\n");
  return {double(steps) * batch / seconds, double(steps) * batch / cpu};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: cae_api_bench MODEL < commands\n");
    return 2;
  }
  const cae::Autoencoder model = cae::Autoencoder::load(argv[1]);
  const cae::Shape s = model.image_shape();
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    int batch = 0, threads = 0, warmup = 0, steps = 0;
    in >> cmd >> batch >> threads >> warmup >> steps;
    if (cmd == "quit" || cmd.empty()) break;
    try {
      if (batch < 1 || threads < 1 || warmup < 0 || steps < 1)
        throw cae::Error("bad command '" + line + "'");
      omp_set_num_threads(threads);
      const std::size_t n = std::size_t(batch) * s.size();
      Rates r;
      // The pattern the Python side denoises too: a ramp, its floats byte / 255.
      if (cmd == "float") {
        std::vector<float> x(n);
        for (std::size_t i = 0; i < n; ++i) x[i] = float(i % 256) * (1.f / 255.f);
        r = rate(model, x, batch, warmup, steps);
      } else if (cmd == "bytes") {
        std::vector<std::uint8_t> x(n);
        for (std::size_t i = 0; i < n; ++i) x[i] = std::uint8_t(i % 256);
        r = rate(model, x, batch, warmup, steps);
      } else {
        throw cae::Error("unknown command '" + cmd + "'");
      }
      std::printf("{\"images_per_second\":%.3f,\"images_per_cpu_second\":%.3f}\n", r.wall, r.cpu);
    } catch (const std::exception& e) {
      std::printf("{\"error\":\"%s\"}\n", e.what());
    }
    std::fflush(stdout);
  }
  return 0;
}
