// The CUDA backend.
//
// On every machine: the per-element arithmetic its kernels share with the host (device_math.h)
// against published Philox vectors, the ref backend's index maps, the loss and the optimizer;
// and asking for the backend where it cannot run fails with one clear message, in the library
// and in the CLI.
//
// With a GPU (skipped, saying why, without one): every op and the seed nets against the ref
// backend (output, every activation, d_input, canonical gradients; relative error < 1e-4; fresh
// random inputs; host buffers poisoned with NaN before each run, device buffers at
// construction), the fused training step against the same step composed on the host, graph
// replay against eager steps, and training whose files the CPU backends read back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "cae/error.h"
#include "core/rng.h"
#include "data/corrupt.h"
#include "data/dataset.h"
#include "io/model_file.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "nn/spec.h"
#include "ops/cuda/device_math.h"
#include "ops/ops.h"
#include "ops/ref/ref_kernels.h"
#include "net_builders.h"
#include "parity.h"
#include "support.h"
#include "train/fused_epoch.h"
#include "train/trainer.h"

namespace cae::ops {
namespace {

namespace cm = cuda_math;
using ::testing::HasSubstr;


// ---- on every machine: the shared arithmetic ----

// Random123's known-answer vectors for philox4x32-10 (kat_vectors): counter, key, result.
TEST(CudaMath, PhiloxMatchesPublishedVectors) {
  struct Kat {
    cm::Philox4 ctr;
    std::uint32_t k0, k1;
    cm::Philox4 expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const cm::Philox4 r = cm::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.expected.v[i]) << "word " << i;
  }
}

// The noise's moments and shape, and that neighbouring pixels and images are unrelated.
TEST(CudaMath, NoiseIsStandardNormalAndIndependent) {
  const std::uint64_t key = cm::noise_key(7, std::uint64_t(Stream::train_noise), 3);
  const int images = 200, quads = 196;  // 200 images of 784 pixels
  std::vector<float> z(std::size_t(images) * quads * 4);
  for (int i = 0; i < images; ++i)
    for (int q = 0; q < quads; ++q)
      cm::normal4(key, 1000 + i, q, &z[(std::size_t(i) * quads + q) * 4]);
  double sum = 0, sq = 0, lag = 0;
  int within_one = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    ASSERT_TRUE(std::isfinite(z[i])) << i;
    sum += z[i];
    sq += double(z[i]) * z[i];
    if (i) lag += double(z[i]) * z[i - 1];
    within_one += std::fabs(z[i]) < 1.f;
  }
  const double n = double(z.size());
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.015);
  EXPECT_NEAR(lag / n, 0.0, 0.01);
  EXPECT_NEAR(within_one / n, 0.6827, 0.005);  // P(|z| < 1) of a standard normal

  // A pixel's noise is a function of (key, image, quad) alone; other keys give other noise.
  float a[4], b[4], c[4], d[4];
  cm::normal4(key, 1005, 17, a);
  cm::normal4(key, 1005, 17, b);
  cm::normal4(cm::noise_key(7, std::uint64_t(Stream::train_noise), 4), 1005, 17, c);
  cm::normal4(cm::noise_key(8, std::uint64_t(Stream::train_noise), 3), 1005, 17, d);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(a[j], b[j]);
    EXPECT_NE(a[j], c[j]);
    EXPECT_NE(a[j], d[j]);
  }
  EXPECT_EQ(a[0], z[(std::size_t(5) * quads + 17) * 4]);
}

TEST(CudaMath, CorruptPixelClipsToTheUnitInterval) {
  EXPECT_EQ(cm::corrupt_pixel(0.5f, 0.5f, 0.2f), 0.6f);
  EXPECT_EQ(cm::corrupt_pixel(0.9f, 0.5f, 1.f), 1.f);
  EXPECT_EQ(cm::corrupt_pixel(0.1f, 0.5f, -1.f), 0.f);
}

// resize_readers is the inverse of the TF1 map the ref backend uses, for up- and downsizing.
TEST(CudaMath, ResizeReadersInvertTheTfMap) {
  for (int in = 1; in <= 24; ++in)
    for (int out = 1; out <= 24; ++out)
      for (int src = 0; src < in; ++src) {
        std::set<int> expected, found;
        for (int p = 0; p < out; ++p) {
          ASSERT_EQ(cm::resize_source(p, in, out), ref::resize_source(p, in, out));
          if (ref::resize_source(p, in, out) == src) expected.insert(p);
        }
        int lo = 0, hi = 0;
        cm::resize_readers(src, in, out, &lo, &hi);
        for (int p = lo; p <= hi; ++p) found.insert(p);
        ASSERT_EQ(found, expected) << in << " -> " << out << ", source " << src;
      }
}

// pool_windows names exactly the windows that contain a cell, for any kernel, stride, padding.
TEST(CudaMath, PoolWindowsAreExactlyThoseCoveringTheCell) {
  for (int in = 1; in <= 16; ++in)
    for (int k = 1; k <= 4; ++k)
      for (int s = 1; s <= 3; ++s)
        for (int before = 0; before < k; ++before)
          for (int after = 0; after < k; ++after) {
            if (in + before + after < k) continue;
            const int out = (in + before + after - k) / s + 1;
            for (int h = 0; h < in; ++h) {
              std::set<int> expected, found;
              for (int p = 0; p < out; ++p)
                if (p * s - before <= h && h < p * s - before + k) expected.insert(p);
              int lo = 0, hi = 0;
              cm::pool_windows(h, out, k, s, before, &lo, &hi);
              for (int p = lo; p <= hi; ++p) found.insert(p);
              ASSERT_EQ(found, expected)
                  << "in " << in << " k " << k << " s " << s << " pad " << before << " cell " << h;
            }
          }
}

// The same formulas as nn::loss, not the same bits: the host's exp and log1p are its own
// polynomials (within 2 ulp), the device's are CUDA's.
TEST(CudaMath, LossElementsAddUpToTheLoss) {
  const std::size_t n = 1000;
  const auto x = test::random_floats(n, 1, -6.f, 6.f), z = test::random_floats(n, 2, 0.f, 1.f);
  for (nn::LossKind kind : {nn::LossKind::bce, nn::LossKind::mse}) {
    std::vector<float> grad(n);
    const double expected = nn::loss_and_grad(kind, x.data(), z.data(), n, grad.data());
    const float scale = float(1.0 / double(n));
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      float g = 0;
      sum += kind == nn::LossKind::bce ? cm::bce_element(x[i], z[i], scale, &g)
                                       : cm::mse_element(x[i], z[i], scale, &g);
      ASSERT_NEAR(g, grad[i], 1e-6 * scale) << nn::loss_name(kind) << " element " << i;
    }
    EXPECT_NEAR(sum / double(n), expected, 1e-6 * std::fabs(expected));
  }
}

TEST(CudaMath, AdamElementsFollowTheOptimizer) {
  const std::size_t n = 500;
  nn::OptimizerConfig config;
  nn::Optimizer opt(config, n);
  auto p = test::random_floats(n, 3);
  auto mine = p;
  std::vector<float> m(n, 0.f), v(n, 0.f);
  for (long long t = 1; t <= 3; ++t) {
    const auto g = test::random_floats(n, 10 + t);
    opt.step(p, g);
    const float lr_t = cm::adam_rate(config.lr, config.beta1, config.beta2, t);
    for (std::size_t i = 0; i < n; ++i)
      cm::adam_element(&mine[i], g[i], &m[i], &v[i], lr_t, config.beta1, config.beta2,
                       config.epsilon);
  }
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_FLOAT_EQ(mine[i], p[i]) << i;
    ASSERT_FLOAT_EQ(m[i], opt.slots()[0][i]) << i;
    ASSERT_FLOAT_EQ(v[i], opt.slots()[1][i]) << i;
  }
}

using namespace cae::ops::test_nets;


// ---- on every machine: the backend says clearly when it cannot run ----

std::string unavailable() { return backend_unavailable_reason(Backend::cuda); }

TEST(CudaBackend, IsNamedAndParsed) {
  EXPECT_EQ(parse_backend("cuda"), Backend::cuda);
  EXPECT_STREQ(backend_name(Backend::cuda), "cuda");
  EXPECT_EQ(backend_unavailable_reason(Backend::dnnl), "");
  EXPECT_THAT(test::error_of([] { parse_backend("gpu"); }), HasSubstr("'cuda'"));
}

TEST(CudaBackend, WithoutADeviceSaysWhy) {
  const std::string why = unavailable();
  if (why.empty()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_TRUE(why.starts_with("built without CUDA") || why.starts_with("no CUDA device or driver"))
      << why;
  EXPECT_THAT(test::error_of([] { make_executor(Backend::cuda, seed_net(2)); }), HasSubstr(why));
}

TEST(CudaBackend, CliSaysWhyBeforeReadingData) {
  const std::string why = unavailable();
  if (why.empty()) GTEST_SKIP() << "a CUDA device is present";
  const std::string cmd =
      std::string(CAE_EXE) + " train --device cuda --dataset /nonexistent-dataset --epochs 1 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) output.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(raw));
  EXPECT_EQ(WEXITSTATUS(raw), 1) << output;
  EXPECT_THAT(output, HasSubstr("cae: error: cuda backend: " + why));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("nonexistent-dataset")));
}

// ---- on every machine: the trainer's fused epoch, on a stand-in backend ----

// A backend with fused steps that records what the trainer hands it and answers with scripted
// losses; everything else is the ref backend's.
class ScriptedFused final : public Executor {
 public:
  explicit ScriptedFused(const NetDesc& net) : ref_(make_executor(Backend::ref, net)) {}
  void forward(const float* x) override { ref_->forward(x); }
  const float* output() override { return ref_->output(); }
  void read_activation(int k, float* out) override { ref_->read_activation(k, out); }
  void backward(const float* d, float* dx) override { ref_->backward(d, dx); }
  std::span<float> params() override { return ref_->params(); }
  std::span<float> grads() override { return ref_->grads(); }
  std::vector<std::vector<float>> to_canonical(std::span<const float> flat) override {
    return ref_->to_canonical(flat);
  }
  void from_canonical(const std::vector<std::vector<float>>& t, std::span<float> flat) override {
    ref_->from_canonical(t, flat);
  }
  const NetDesc& desc() const override { return ref_->desc(); }
  std::vector<KernelUse> kernels() const override { return ref_->kernels(); }
  std::vector<std::string> fallbacks() const override { return ref_->fallbacks(); }
  std::vector<FlatRange> statistics_ranges() const override { return ref_->statistics_ranges(); }

  bool fused_begin(const FusedStepConfig& c, std::span<const float> m, std::span<const float> v,
                   std::int64_t t) override {
    EXPECT_FALSE(open);
    open = true;
    config = c;
    m_.assign(m.begin(), m.end());
    v_.assign(v.begin(), v.end());
    t_ = t;
    return true;
  }
  double fused_step(const float* clean, const float* noisy, const NoiseKey& key) override {
    EXPECT_TRUE(open);
    const std::size_t n = desc().batch * desc().input.size();
    cleans.emplace_back(clean, clean + n);
    noisies.emplace_back(noisy ? std::vector<float>(noisy, noisy + n) : std::vector<float>{});
    keys.push_back(key);
    m_[0] += 1.f;  // so that the state's way back shows
    ++t_;
    const double previous = queued_ ? loss_of(t_ - 1) : std::nan("");
    ++queued_;
    return previous;
  }
  double fused_end(std::span<float> m, std::span<float> v) override {
    EXPECT_TRUE(open);
    open = false;
    std::ranges::copy(m_, m.begin());
    std::ranges::copy(v_, v.begin());
    const double last = queued_ ? loss_of(t_) : std::nan("");
    queued_ = 0;
    return last;
  }

  // The loss of Adam step t: scripted, NaN at nan_at.
  double loss_of(std::int64_t t) const { return t == nan_at ? std::nan("") : 0.5 + 0.01 * t; }

  std::int64_t nan_at = -1;
  bool open = false;
  FusedStepConfig config;
  std::vector<std::vector<float>> cleans, noisies;
  std::vector<NoiseKey> keys;

 private:
  std::unique_ptr<Executor> ref_;
  std::vector<float> m_, v_;
  std::int64_t t_ = 0, queued_ = 0;
};

struct Batch {
  int epoch, batch, batches;
  double loss;
};

class Recorder : public train::Progress {
 public:
  void on_batch(int epoch, int batch, int batches, double loss, double) override {
    seen.push_back({epoch, batch, batches, loss});
  }
  std::vector<Batch> seen;
};

struct FusedEpochSetup {
  data::ImageSet images =
      test::binary_noise_images(88, 12, 3, 220, 10);  // 5 batches of 16, 8 images left out
  nn::Model model{nn::parse_spec(nn::preset_spec("seed")), {1, 12, 12}, nn::LossKind::bce};
  train::TrainConfig config;
  std::vector<int> order;
  FusedEpochSetup() {
    config.batch = 16;
    config.seed = 5;
    config.optimizer.lr = 0.002f;
    Rng rng({1});
    order = permutation(images.n, rng);
  }
};

TEST(FusedEpoch, HandsTheBackendEachBatchAndReportsItsLossesInOrder) {
  FusedEpochSetup s;
  ScriptedFused exec(s.model.net(16));
  nn::Optimizer opt(s.config.optimizer, exec.params().size());
  opt.set_steps(10);
  opt.slots()[0][0] = 0.25f;
  Recorder progress;
  train::StepTotals totals;
  ASSERT_TRUE(train::run_fused_epoch(exec, opt, s.model, s.images, s.order, s.config, 2, progress,
                                     "ckpt", totals));
  EXPECT_FALSE(exec.open) << "fused_end was called";
  EXPECT_EQ(exec.config.lr, 0.002f);
  EXPECT_TRUE(exec.config.bce);
  EXPECT_EQ(exec.config.noise_sigma, 0.5f);
  ASSERT_EQ(exec.keys.size(), 5u);
  double sum = 0;
  ASSERT_EQ(progress.seen.size(), 5u);
  for (int b = 0; b < 5; ++b) {
    EXPECT_EQ(exec.keys[b].seed, 5u);
    EXPECT_EQ(exec.keys[b].stream, std::uint64_t(Stream::train_noise));
    EXPECT_EQ(exec.keys[b].epoch, 2u);
    EXPECT_EQ(exec.keys[b].first_index, std::uint64_t(b) * 16);
    EXPECT_TRUE(exec.noisies[b].empty()) << "Gaussian noise is the backend's to draw";
    const Batch& seen = progress.seen[b];
    EXPECT_EQ(seen.epoch, 2);
    EXPECT_EQ(seen.batch, b + 1);
    EXPECT_EQ(seen.batches, 5);
    EXPECT_DOUBLE_EQ(seen.loss, exec.loss_of(11 + b));  // Adam steps 11..15
    sum += seen.loss;
  }
  EXPECT_DOUBLE_EQ(totals.loss_sum, sum);
  EXPECT_GT(totals.seconds, 0.0);
  EXPECT_EQ(opt.steps(), 15);
  EXPECT_EQ(opt.slots()[0][0], 0.25f + 5.f) << "Adam's state came back";
  // Batch 3 holds images order[48..64), as bytes / 255.
  std::vector<float> expected(16 * 144);
  data::to_nchw(s.images, s.order.data() + 48, 16, expected.data());
  EXPECT_EQ(exec.cleans[3], expected);
}

TEST(FusedEpoch, DrawsOtherCorruptionsOnTheHostAsTheCpuPathDoes) {
  FusedEpochSetup s;
  s.config.corruption.salt_pepper = 0.1f;
  ScriptedFused exec(s.model.net(16));
  nn::Optimizer opt(s.config.optimizer, exec.params().size());
  Recorder progress;
  train::StepTotals totals;
  ASSERT_TRUE(train::run_fused_epoch(exec, opt, s.model, s.images, s.order, s.config, 1, progress,
                                     "ckpt", totals));
  std::vector<float> expected(16 * 144);
  data::corrupt(s.config.corruption, exec.cleans[2].data(), expected.data(), 16, {1, 12, 12},
                s.config.seed, Stream::train_noise, 1, 32);
  EXPECT_EQ(exec.noisies[2], expected);
}

TEST(FusedEpoch, StopsAtANonFiniteLossNamingTheStep) {
  FusedEpochSetup s;
  ScriptedFused exec(s.model.net(16));
  exec.nan_at = 3;  // the third step of the run
  nn::Optimizer opt(s.config.optimizer, exec.params().size());
  Recorder progress;
  train::StepTotals totals;
  EXPECT_THAT(test::error_of([&] {
                train::run_fused_epoch(exec, opt, s.model, s.images, s.order, s.config, 1, progress,
                                       "ckpt", totals);
              }),
              HasSubstr("epoch 1, step 3; the last good checkpoint is ckpt"));
  EXPECT_FALSE(exec.open) << "the backend is left out of its fused state";
  EXPECT_EQ(opt.steps(), 0) << "a diverged epoch does not count its steps";
}

TEST(FusedEpoch, DeclinesSgdAndBackendsWithoutFusedSteps) {
  FusedEpochSetup s;
  Recorder progress;
  train::StepTotals totals;
  s.config.optimizer.kind = nn::OptimizerKind::sgd;
  ScriptedFused exec(s.model.net(16));
  nn::Optimizer sgd(s.config.optimizer, exec.params().size());
  EXPECT_FALSE(train::run_fused_epoch(exec, sgd, s.model, s.images, s.order, s.config, 1, progress,
                                      "ckpt", totals));
  EXPECT_TRUE(exec.keys.empty());

  s.config.optimizer.kind = nn::OptimizerKind::adam;
  auto cpu = make_executor(Backend::dnnl, s.model.net(16));
  nn::Optimizer adam(s.config.optimizer, cpu->params().size());
  EXPECT_FALSE(train::run_fused_epoch(*cpu, adam, s.model, s.images, s.order, s.config, 1, progress,
                                      "ckpt", totals));
  EXPECT_TRUE(progress.seen.empty());
  EXPECT_EQ(adam.steps(), 0);
}

// ---- with a GPU: parity with the ref backend ----

#define REQUIRE_GPU()                                                          \
  do {                                                                         \
    if (const std::string why_ = unavailable(); !why_.empty())                 \
      GTEST_SKIP() << "needs a CUDA GPU, and this machine has none: " << why_; \
  } while (0)

std::vector<Case> op_cases() {
  using A = Activation;
  std::vector<Case> cases = shared_op_cases();
  auto add = [&](std::string name, NetDesc net) { cases.push_back({std::move(name), net}); };
  // Beside the shared convs (whose asymmetric 'same' padding cuDNN gets as an explicitly padded
  // copy): stride 2 on two images, and an even kernel.
  add("conv_32to32_s2_same_relu",
      chain(2, {32, 14, 14}, {conv({32, 14, 14}, 32, 3, 2, true, A::relu)}));
  add("conv_k2_same_4x7", chain(3, {3, 4, 7}, {conv({3, 4, 7}, 4, 2, 1, true, A::relu)}));
  // Pooling ('same' pads the odd cell after), resize up, down and non-square, element-wise.
  add("maxpool_7to4", chain(3, {5, 7, 7}, {maxpool_same({5, 7, 7})}));
  add("maxpool_28to14", chain(3, {32, 28, 28}, {maxpool_same({32, 28, 28})}));
  add("maxpool_9x6", chain(3, {2, 9, 6}, {maxpool_same({2, 9, 6})}));
  add("resize_4to7", chain(3, {16, 4, 4}, {resize({16, 4, 4}, 7, 7)}));
  add("resize_14to28", chain(3, {32, 14, 14}, {resize({32, 14, 14}, 28, 28)}));
  add("resize_7to4", chain(3, {3, 7, 7}, {resize({3, 7, 7}, 4, 4)}));
  add("resize_4to7x5", chain(3, {1, 4, 4}, {resize({1, 4, 4}, 7, 5)}));
  add("relu", chain(3, {5, 6, 6}, {eltwise(OpKind::relu, {5, 6, 6})}));
  add("sigmoid", chain(3, {5, 6, 6}, {eltwise(OpKind::sigmoid, {5, 6, 6})}));
  // Ops after a conv, so that d_input flows through them into cuDNN.
  {
    const OpDesc c = conv({3, 7, 7}, 5, 3, 1, true, A::none);
    add("conv_then_maxpool", chain(3, {3, 7, 7}, {c, maxpool_same(c.out)}));
    add("conv_then_resize", chain(3, {3, 7, 7}, {c, resize(c.out, 12, 9)}));
    add("conv_then_relu", chain(3, {3, 7, 7}, {c, eltwise(OpKind::relu, c.out)}));
    add("conv_then_sigmoid", chain(3, {3, 7, 7}, {c, eltwise(OpKind::sigmoid, c.out)}));
  }
  return cases;
}

class CudaOpParity : public ::testing::TestWithParam<Case> {};

TEST_P(CudaOpParity, MatchesRef) {
  REQUIRE_GPU();
  expect_parity(Backend::cuda, GetParam().net, 17);
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaOpParity, ::testing::ValuesIn(op_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(CudaNetParity, SeedBatch3) {
  REQUIRE_GPU();
  expect_parity(Backend::cuda, seed_net(3), 102);
}

TEST(CudaNetParity, SeedBatch200) {
  REQUIRE_GPU();
  expect_parity(Backend::cuda, seed_net(200), 103);
}

TEST(CudaNetParity, SeedTconvBatch3) {
  REQUIRE_GPU();
  expect_parity(Backend::cuda, seed_tconv_net(3), 104);
}

// Skip connections and the global residual: the joins, and the skips' gradients summed into
// the chain's (the join cases of shared_op_cases run op by op above).
TEST(CudaNetParity, UnetBatch3) {
  REQUIRE_GPU();
  expect_parity(Backend::cuda, unet_net(3), 106);
}

TEST(CudaNetParity, ResidualBatch3) {
  REQUIRE_GPU();
  expect_parity(Backend::cuda, residual_net(3), 108);
}

TEST(CudaExecutor, CanonicalRoundTripAndRepeatedStepsAreExact) {
  REQUIRE_GPU();
  const NetDesc net = seed_net(4);
  auto gpu = make_executor(Backend::cuda, net);
  const auto tensors = random_params(net, 9);
  gpu->from_canonical(tensors, gpu->params());
  EXPECT_EQ(gpu->to_canonical(gpu->params()), tensors);
  const auto x = test::random_floats(batch_size(net, net.input), 10, 0.f, 1.f);
  const auto dy = test::random_floats(batch_size(net, net.output()), 11);
  auto step = [&] {
    std::vector<float> dx(x.size());
    gpu->forward(x.data());
    std::vector<float> out(gpu->output(), gpu->output() + batch_size(net, net.output()));
    gpu->backward(dy.data(), dx.data());
    std::vector<float> g(gpu->grads().begin(), gpu->grads().end());
    return std::vector<std::vector<float>>{out, dx, g};
  };
  const auto first = step();
  EXPECT_EQ(step(), first) << "cuDNN algorithms are chosen deterministic";
  // A parameter written through params() reaches the device at the next forward().
  gpu->params()[0] += 0.5f;
  EXPECT_NE(step()[0], first[0]);
}

TEST(CudaExecutor, RejectsBadCallsWithCaeError) {
  REQUIRE_GPU();
  const NetDesc net = seed_net(1);
  auto gpu = make_executor(Backend::cuda, net);
  std::vector<float> out(net.output().size());
  EXPECT_THROW(gpu->read_activation(int(net.ops.size()), out.data()), Error);
  EXPECT_THAT(test::error_of([&] { gpu->backward(out.data(), nullptr); }),
              HasSubstr("before forward"));
  std::vector<float> short_flat(gpu->params().size() - 1);
  EXPECT_THROW(gpu->to_canonical(short_flat), Error);
  std::vector<float> m(gpu->params().size()), v(m.size());
  EXPECT_THROW(gpu->fused_step(out.data(), nullptr, {}), Error);
  ASSERT_TRUE(gpu->fused_begin({}, m, v, 0));
  EXPECT_THAT(test::error_of([&] { gpu->params(); }), HasSubstr("between fused_begin"));
  gpu->fused_end(m, v);
}

// ---- with a GPU: the fused step ----

// The step the host would take: noise from the same generator, ref forward, loss, backward,
// nn::Optimizer. Returns the batch's mean loss.
double host_step(Executor& ref, nn::Optimizer& opt, const std::vector<float>& clean,
                 const std::vector<float>* noisy_in, const NoiseKey& key, float sigma) {
  const NetDesc& net = ref.desc();
  const std::size_t image = net.input.size();
  std::vector<float> noisy(clean.size());
  if (noisy_in) {
    noisy = *noisy_in;
  } else {
    const std::uint64_t stream = cm::noise_key(key.seed, key.stream, key.epoch);
    for (int b = 0; b < net.batch; ++b)
      for (std::size_t q = 0; q * 4 < image; ++q) {
        float z[4];
        cm::normal4(stream, key.first_index + b, std::uint32_t(q), z);
        for (std::size_t j = 0; j < 4 && q * 4 + j < image; ++j) {
          const std::size_t at = b * image + q * 4 + j;
          noisy[at] = cm::corrupt_pixel(clean[at], sigma, z[j]);
        }
      }
  }
  ref.forward(noisy.data());
  std::vector<float> d_out(clean.size());
  const double loss =
      nn::loss_and_grad(nn::LossKind::bce, ref.output(), clean.data(), clean.size(), d_out.data());
  ref.backward(d_out.data(), nullptr);
  opt.step(ref.params(), ref.grads());
  return loss;
}

// Four fused steps from a state part-way through training (t = 5, m and v non-zero), against
// the host's four; the second and later steps replay captured graphs.
void expect_fused_parity(bool device_noise) {
  NetDesc net = seed_net(6);
  auto ref = make_executor(Backend::ref, net);
  auto gpu = make_executor(Backend::cuda, net);
  const auto tensors = random_params(net, 31);
  ref->from_canonical(tensors, ref->params());
  gpu->from_canonical(tensors, gpu->params());
  const std::size_t np = ref->params().size();
  nn::OptimizerConfig oc;
  oc.lr = 0.01f;  // large enough that a wrong step shows
  nn::Optimizer opt(oc, np);
  opt.slots()[0] = test::random_floats(np, 40, -1e-3f, 1e-3f);
  opt.slots()[1] = test::random_floats(np, 41, 0.f, 1e-5f);
  opt.set_steps(5);
  std::vector<float> m = opt.slots()[0], v = opt.slots()[1];

  FusedStepConfig fc;
  fc.lr = oc.lr;
  fc.noise_sigma = 0.5f;
  ASSERT_TRUE(gpu->fused_begin(fc, m, v, opt.steps()));
  std::vector<double> host_losses, gpu_losses;
  for (int s = 0; s < 4; ++s) {
    const auto clean = test::random_floats(batch_size(net, net.input), 50 + s, 0.f, 1.f);
    const auto noisy = test::random_floats(clean.size(), 60 + s, 0.f, 1.f);
    const NoiseKey key{3, std::uint64_t(Stream::train_noise), 2, std::uint64_t(s) * 6};
    host_losses.push_back(
        host_step(*ref, opt, clean, device_noise ? nullptr : &noisy, key, fc.noise_sigma));
    const double previous =
        gpu->fused_step(clean.data(), device_noise ? nullptr : noisy.data(), key);
    if (s == 0)
      EXPECT_TRUE(std::isnan(previous));
    else
      gpu_losses.push_back(previous);
  }
  std::ranges::fill(m, nan_f);
  std::ranges::fill(v, nan_f);
  gpu_losses.push_back(gpu->fused_end(m, v));
  ASSERT_EQ(gpu_losses.size(), host_losses.size());
  for (std::size_t s = 0; s < host_losses.size(); ++s)
    EXPECT_NEAR(gpu_losses[s], host_losses[s], 1e-5 * host_losses[s]) << "step " << s;
  EXPECT_CLOSE(m.data(), opt.slots()[0].data(), np, "Adam m");
  EXPECT_CLOSE(v.data(), opt.slots()[1].data(), np, "Adam v");
  const auto got = gpu->to_canonical(gpu->params());
  const auto want = ref->to_canonical(ref->params());
  for (std::size_t t = 0; t < got.size(); ++t)
    EXPECT_CLOSE(got[t].data(), want[t].data(), got[t].size(), "params tensor " << t);
}

TEST(CudaFusedStep, DeviceNoiseMatchesTheHostStep) {
  REQUIRE_GPU();
  expect_fused_parity(true);
}

TEST(CudaFusedStep, CallerNoiseMatchesTheHostStep) {
  REQUIRE_GPU();
  expect_fused_parity(false);
}

// A replayed graph runs the very kernels of an eager step: the same weights to the bit.
TEST(CudaFusedStep, GraphReplayEqualsEagerSteps) {
  REQUIRE_GPU();
  const NetDesc net = seed_net(8);
  auto run = [&](bool graphs) {
    auto gpu = make_executor(Backend::cuda, net, {.cuda_graphs = graphs});
    gpu->from_canonical(random_params(net, 5), gpu->params());
    std::vector<float> m(gpu->params().size(), 0.f), v(m.size(), 0.f);
    EXPECT_TRUE(gpu->fused_begin({}, m, v, 0));
    for (int s = 0; s < 6; ++s) {
      const auto clean = test::random_floats(batch_size(net, net.input), 70 + s, 0.f, 1.f);
      gpu->fused_step(clean.data(), nullptr, {1, 3, 1, std::uint64_t(s) * 8});
    }
    gpu->fused_end(m, v);
    std::vector<float> p(gpu->params().begin(), gpu->params().end());
    return std::vector<std::vector<float>>{p, m, v};
  };
  EXPECT_EQ(run(true), run(false));
}

// ---- with a GPU: training through the trainer, files read back by the CPU backends ----

TEST(CudaTrain, ResumesExactlyAndItsModelRunsOnTheCpu) {
  REQUIRE_GPU();
  data::Dataset ds;
  ds.name = "blobs";
  ds.train = test::binary_noise_images(96, 12, 1, 220, 10);
  ds.test = test::binary_noise_images(24, 12, 2, 220, 10);
  const std::string dir = test::scratch_dir();
  class Quiet : public train::Progress {
  } quiet;
  auto fresh_model = [&] {
    nn::Model m(nn::parse_spec(nn::preset_spec("seed")), ds.dims(), nn::LossKind::bce);
    m.init_glorot(4);
    return m;
  };
  train::TrainConfig config;
  config.epochs = 3;
  config.batch = 16;
  config.seed = 9;
  config.backend = Backend::cuda;
  config.out_dir = dir + "/whole";
  nn::Model whole = fresh_model();
  const auto history = train::train(whole, ds, config, quiet);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_LT(history.back().train_loss, history.front().train_loss);

  config.out_dir = dir + "/parts";
  config.epochs = 1;
  nn::Model part = fresh_model();
  train::train(part, ds, config, quiet);
  config.epochs = 3;
  config.resume = true;
  part = fresh_model();
  train::train(part, ds, config, quiet);
  EXPECT_EQ(part.params(), whole.params()) << "a resumed run ends on the uninterrupted weights";

  // The GPU's model file, scored by the CPU backend and the GPU, gives the same numbers.
  const nn::Model saved =
      nn::Model::from_file(io::read_model_file(dir + "/whole/model.cae"), "model.cae");
  auto cpu = saved.make_executor(Backend::dnnl, 8, {});
  auto gpu = saved.make_executor(Backend::cuda, 8, {});
  const train::EvalStats a = train::evaluate(saved, *cpu, ds.test, config.corruption, config.seed);
  const train::EvalStats b = train::evaluate(saved, *gpu, ds.test, config.corruption, config.seed);
  EXPECT_NEAR(a.loss, b.loss, 1e-4 * a.loss);
  EXPECT_NEAR(a.psnr_output, b.psnr_output, 1e-3);
  EXPECT_NEAR(b.loss, history.back().test.loss, 1e-4 * b.loss);
}

}  // namespace
}  // namespace cae::ops
