// cae's side of bench/run.py: a small server that reads one command per line on stdin and answers
// one JSON line on stdout, so the harness can alternate it with the PyTorch side (A B A B) while
// both processes stay warm. Not a test; built only by cmake/bench.cmake.
//
//   train B T WARMUP STEPS   the real training loop (train::train: batch assembly, corruption,
//                            forward, loss, backward, Adam) on synthetic bytes; images/s of the
//                            STEPS after WARMUP
//   infer B T WARMUP STEPS   forward passes of one batch, images/s
//   layers B T REPS          per-step times of one training step and the bare oneDNN convs
//   isa                      the tier our kernels and oneDNN run (core/isa.h)
//   quit
//
//   cae_bench [PRESET [H W C]]   the model of every command: a preset (default seed) on images of
//                                H x W x C (default 28 x 28 x 1, MNIST's; 64 64 3 for the photo
//                                job's patches)
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cae/error.h"
#include "core/isa.h"
#include "data/dataset.h"
#include "environment.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/ops.h"
#include "train/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;

// The preset every command runs and its images: the arguments (default seed, 28 x 28 x 1).
std::string preset = "seed";
cae::ops::Dims shape{1, 28, 28};

cae::nn::Model seed_model() {
  cae::nn::Model model(cae::nn::parse_spec(cae::nn::preset_spec(preset)), shape,
                       cae::nn::LossKind::bce);
  model.init_glorot(0);
  return model;
}

// MNIST-like bytes: a fixed pseudo-random pattern, about 80% zeros. Speed does not depend on it.
cae::data::ImageSet synthetic_images(int n) {
  cae::data::ImageSet set;
  set.n = n;
  set.h = shape.h;
  set.w = shape.w;
  set.c = shape.c;
  set.pixels.resize(std::size_t(n) * shape.size());
  std::uint32_t s = 12345;
  for (auto& p : set.pixels) {
    s = s * 1664525u + 1013904223u;
    p = (s >> 24) < 205 ? 0 : std::uint8_t(s >> 16);
  }
  return set;
}

// Records when each step ended, so the harness can leave out the warm-up steps.
class StepClock : public cae::train::Progress {
 public:
  std::vector<Clock::time_point> ends;
  void on_batch(int, int, int, double, double) override { ends.push_back(Clock::now()); }
};

double train_rate(const cae::ops::ExecutorOptions& options, int batch, int warmup, int steps) {
  cae::nn::Model model = seed_model();
  cae::data::Dataset data;
  data.train = synthetic_images((warmup + steps) * batch);
  data.test = synthetic_images(1);
  cae::train::TrainConfig config;
  config.epochs = 1;
  config.batch = batch;
  config.executor = options;
  config.out_dir = (std::filesystem::temp_directory_path() / "cae_bench").string();
  StepClock clock;
  cae::train::train(model, data, config, clock);
  const double seconds =
      std::chrono::duration<double>(clock.ends.back() - clock.ends[warmup - 1]).count();
  return double(steps) * batch / seconds;
}

double infer_rate(const cae::ops::ExecutorOptions& options, int batch, int warmup, int steps) {
  static std::map<std::pair<int, int>, std::unique_ptr<cae::ops::Executor>> cache;
  static const cae::nn::Model model = seed_model();
  auto& exec = cache[{batch, omp_get_max_threads()}];
  if (!exec) exec = model.make_inference_executor(cae::ops::Backend::dnnl, batch, options);
  std::vector<float> x(std::size_t(batch) * shape.size(), 0.25f);
  for (int i = 0; i < warmup; ++i) exec->forward(x.data());
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) exec->forward(x.data());
  return double(steps) * batch / std::chrono::duration<double>(Clock::now() - t0).count();
}

void layers(const cae::ops::ExecutorOptions& options, int batch, int reps) {
  const cae::nn::Model model = seed_model();
  auto exec = model.make_executor(cae::ops::Backend::dnnl, batch, options);
  const cae::ops::NetDesc& net = exec->desc();
  std::vector<float> x(std::size_t(batch) * shape.size(), 0.25f), dy(x.size(), 1e-4f);
  for (const auto& t : cae::ops::profile_dnnl_steps(*exec, x.data(), dy.data(), reps)) {
    const char* layer = t.op >= 0 ? cae::ops::op_kind_name(net.ops[t.op].kind) : "edge";
    std::printf(
        "{\"kind\":\"step\",\"op\":%d,\"layer\":\"%s\",\"name\":\"%s\",\"ms\":%.5f,"
        "\"impl\":\"%s\"}\n",
        t.op, layer, t.name.c_str(), t.ms, t.impl.c_str());
  }
  for (int i = 0; i < int(net.ops.size()); ++i) {
    const cae::ops::OpDesc& op = net.ops[i];
    if (op.kind != cae::ops::OpKind::conv) continue;
    const auto b = cae::ops::time_bare_conv(op, batch, reps);
    // Multiply-adds of one pass, as 2 flops each; backward data and weights cost the same.
    const double flops = 2.0 * batch * op.out.c * op.out.h * op.out.w * op.in.c * op.kernel *
                         op.kernel;
    std::printf(
        "{\"kind\":\"bare\",\"op\":%d,\"shape\":\"%dx%d %d->%d\",\"flops\":%.0f,\"fwd_ms\":%.5f,"
        "\"bwd_data_ms\":%.5f,\"bwd_weights_ms\":%.5f,\"impl\":\"%s\"}\n",
        i, op.in.h, op.in.w, op.in.c, op.out.c, flops, b.fwd_ms, b.bwd_data_ms, b.bwd_weights_ms,
        b.impl.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // The edge (tools/environment.h): the instruction-set cap before any kernel, and the executor
  // variables at each command, so that a bad one is that command's error.
  cae::apply_isa_cap_from_environment();
  if (argc > 1) preset = argv[1];
  if (argc > 4) shape = {std::stoi(argv[4]), std::stoi(argv[2]), std::stoi(argv[3])};
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    int batch = 0, threads = 0, a = 0, b = 0;
    in >> cmd >> batch >> threads >> a >> b;
    if (cmd == "quit" || cmd.empty()) break;
    try {
      if (cmd == "isa") {
        std::printf("{\"isa\":\"%s; oneDNN %s\"}\n", cae::isa_description().c_str(),
                    cae::ops::dnnl_isa().c_str());
        std::fflush(stdout);
        continue;
      }
      omp_set_num_threads(threads);
      const cae::ops::ExecutorOptions options = cae::executor_options_from_environment();
      if (cmd == "train" || cmd == "infer") {
        if (a < 1 || b < 1) throw cae::Error("warm-up and steps must be at least 1");
        const double rate =
            cmd == "train" ? train_rate(options, batch, a, b) : infer_rate(options, batch, a, b);
        std::printf("{\"images_per_second\":%.3f}\n", rate);
      } else if (cmd == "layers") {
        layers(options, batch, a);
        std::printf("{\"kind\":\"end\"}\n");
      } else {
        throw cae::Error("unknown command '" + cmd + "'");
      }
    } catch (const std::exception& e) {
      std::printf("{\"error\":\"%s\"}\n", e.what());
    }
    std::fflush(stdout);
  }
  return 0;
}
