// Kernel choice by measurement (src/ops/dnnl/kernel_choice.h): every candidate a measured choice
// can pick matches the ref backend; a candidate made slow is never picked; the cache is reused,
// and one that is corrupt or foreign is ignored with one warning; the fixed rules are
// deterministic.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/warn.h"
#include "net_builders.h"
#include "ops/dnnl/kernel_choice.h"
#include "ops/ops.h"
#include "parity.h"
#include "support.h"

namespace cae::ops {
namespace {

using namespace cae::ops::test_nets;
using C = ExecutorOptions::ConvKernel;

const C kAll[] = {C::direct, C::onednn_winograd, C::winograd4, C::winograd2, C::thin};

ExecutorOptions measured(const std::string& cache = "") {
  ExecutorOptions o;
  o.kernels = ExecutorOptions::Kernels::measured;
  o.kernel_cache = cache;
  return o;
}

// Collects the warnings given while it lives.
struct Warnings {
  std::vector<std::string> said;
  WarningSink before;
  Warnings() : before(set_warning_sink([this](const std::string& m) { said.push_back(m); })) {}
  ~Warnings() { set_warning_sink(before); }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// ---- every candidate against ref ----

struct Forced {
  C kernel;
  Case net;
};

void PrintTo(const Forced& f, std::ostream* os) {
  *os << conv_kernel_name(f.kernel) << "_" << f.net.name;
}

std::vector<Forced> forced_cases() {
  using A = Activation;
  const std::vector<Case> nets = {
      {"seed_batch3", seed_net(3)},
      {"unet_batch2", unet_net(2)},
      {"residual_batch2", residual_net(2)},
      // Winograd on partial tiles and a 7x7 map, behind a conv that gives a blocked input.
      {"conv_16to16_5x9", chain(3, {16, 5, 9},
                                {conv({16, 5, 9}, 16, 3, 1, true, A::relu),
                                 conv({16, 5, 9}, 16, 3, 1, true, A::none)})},
      {"conv_32to16_7x7", chain(2, {32, 7, 7},
                                {conv({32, 7, 7}, 32, 3, 1, true, A::relu),
                                 conv({32, 7, 7}, 16, 3, 1, true, A::relu)})},
  };
  std::vector<Forced> cases;
  for (C k : kAll)
    for (const Case& n : nets) cases.push_back({k, n});
  return cases;
}

class EveryCandidate : public ::testing::TestWithParam<Forced> {};

// Every conv asked to run the kernel; those it cannot run fall back (and say so). The net
// matches ref either way, and the kernel runs somewhere whenever some conv lists it.
TEST_P(EveryCandidate, MatchesRef) {
  const Forced& f = GetParam();
  const NetDesc& net = f.net.net;
  ExecutorOptions options;
  options.conv_kernels.assign(net.ops.size(), C::rule);
  bool listed = false;
  for (int i = 0; i < int(net.ops.size()); ++i) {
    if (net.ops[i].kind != OpKind::conv) continue;
    options.conv_kernels[i] = f.kernel;
    const auto c = conv_candidates(net, i, options, C::rule);
    listed = listed || std::ranges::find(c, f.kernel) != c.end();
  }
  std::unique_ptr<Executor> exec;
  expect_parity(Backend::dnnl, net, 31, Measure::max_abs, &exec, options);
  ASSERT_TRUE(exec);
  const std::vector<C> ran = dnnl_conv_kernels(*exec);
  if (listed) {
    EXPECT_NE(std::ranges::find(ran, f.kernel), ran.end())
        << conv_kernel_name(f.kernel) << " is a candidate but ran nowhere";
  }
  EXPECT_TRUE(dnnl_kernel_choice(*exec).forced);
}

INSTANTIATE_TEST_SUITE_P(Kernels, EveryCandidate, ::testing::ValuesIn(forced_cases()),
                         [](const auto& info) {
                           std::string name = std::string(conv_kernel_name(info.param.kernel)) +
                                              "_" + info.param.net.name;
                           std::ranges::replace(name, '-', '_');
                           return name;
                         });

TEST(KernelChoice, CandidatesHeadWithTheRuleAndFollowTheOptions) {
  const NetDesc net = seed_net(8);
  for (int i = 0; i < int(net.ops.size()); ++i) {
    const auto all = conv_candidates(net, i, {}, C::winograd4);
    if (net.ops[i].kind != OpKind::conv) {
      EXPECT_TRUE(all.empty());
      continue;
    }
    EXPECT_EQ(all.front(), C::winograd4);
    EXPECT_NE(std::ranges::find(all, C::direct), all.end());
    ExecutorOptions no_winograd{.winograd = ExecutorOptions::Winograd::off, .thin_convs = false};
    for (C k : conv_candidates(net, i, no_winograd, C::direct))
      EXPECT_EQ(k, C::direct) << "op " << i;
  }
  // The first conv (1 -> 32) may run thin, never Winograd (it reads the plain input).
  const auto first = conv_candidates(net, 0, {}, C::thin);
  EXPECT_NE(std::ranges::find(first, C::thin), first.end());
  EXPECT_EQ(std::ranges::find(first, C::winograd4), first.end());
}

// ---- the measured choice ----

// On one thread: two test programs running side by side on two cores (ctest -j2) would preempt
// each other's OpenMP barriers, and a step then takes milliseconds whatever its kernel.
TEST(KernelChoice, APlantedSlowCandidateIsNeverChosen) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const NetDesc net = seed_net(8);
  for (C slow : kAll) {
    ExecutorOptions o = measured();
    o.slowed = slow;
    o.slowed_ms = 20;  // per step: far above any step of this net at batch 8 (~0.1-1 ms)
    auto exec = make_executor(Backend::dnnl, net, o);
    const KernelChoice choice = dnnl_kernel_choice(*exec);
    int timed = 0;
    for (const OpChoice& c : choice.ops) {
      EXPECT_FALSE(c.cached);
      if (c.times.size() < 2) continue;
      ++timed;
      EXPECT_NE(c.kernel, slow) << "op " << c.op << " chose the slowed " << conv_kernel_name(slow)
                                << "\n" << format_kernel_choice(choice, net);
    }
    EXPECT_GT(timed, 0);
  }
  omp_set_num_threads(threads);
}

TEST(KernelChoice, TheChoiceIsCachedAndReusedWithoutMeasuring) {
  const std::string cache = test::scratch_dir() + "/kernels.json";
  const NetDesc net = seed_net(4);
  auto first = make_executor(Backend::dnnl, net, measured(cache));
  const KernelChoice a = dnnl_kernel_choice(*first);
  EXPECT_GT(a.measuring_ms, 0);
  ASSERT_TRUE(std::filesystem::exists(cache));
  EXPECT_NE(read_text(cache).find("\"format\": \"cae kernel cache\""), std::string::npos);
  auto second = make_executor(Backend::dnnl, net, measured(cache));
  const KernelChoice b = dnnl_kernel_choice(*second);
  EXPECT_EQ(b.measuring_ms, 0);
  EXPECT_EQ(dnnl_conv_kernels(*first), dnnl_conv_kernels(*second));
  for (const OpChoice& c : b.ops)
    if (c.times.size() > 1) {
      EXPECT_TRUE(c.cached) << "op " << c.op;
    }
  // Another batch is another shape to time: measured again, added beside the first.
  auto other = make_executor(Backend::dnnl, seed_net(2), measured(cache));
  EXPECT_GT(dnnl_kernel_choice(*other).measuring_ms, 0);
  auto again = make_executor(Backend::dnnl, net, measured(cache));
  EXPECT_EQ(dnnl_kernel_choice(*again).measuring_ms, 0);
}

TEST(KernelChoice, ACorruptOrForeignCacheIsIgnoredWithOneWarning) {
  const std::string dir = test::scratch_dir();
  const NetDesc net = seed_net(2);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"truncated.json", "{\"format\": \"cae kernel cache\", \"version\": 1, \"entr"},
      {"binary.json", std::string("\x89PNG\r\n\x1a\n\0\0", 10)},
      {"foreign.json", "{\"format\": \"something else\", \"entries\": {}}"},
      {"array.json", "[1, 2, 3]"},
  };
  for (const auto& [name, text] : bad) {
    const std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    Warnings warnings;
    auto exec = make_executor(Backend::dnnl, net, measured(path));
    ASSERT_EQ(warnings.said.size(), 1u) << name;
    EXPECT_NE(warnings.said[0].find(path), std::string::npos) << warnings.said[0];
    EXPECT_GT(dnnl_kernel_choice(*exec).measuring_ms, 0) << name;
    // Rewritten whole: the next build reads it, measures nothing and warns no more.
    auto next = make_executor(Backend::dnnl, net, measured(path));
    EXPECT_EQ(warnings.said.size(), 1u) << name;
    EXPECT_EQ(dnnl_kernel_choice(*next).measuring_ms, 0) << name;
  }
}

TEST(KernelChoice, ACachedKernelThatIsNoCandidateIsMeasuredAgain) {
  const std::string cache = test::scratch_dir() + "/kernels.json";
  const NetDesc net = seed_net(2);
  auto first = make_executor(Backend::dnnl, net, measured(cache));
  std::string text = read_text(cache);
  // Every entry now names "thin", which the 3x3 convs cannot run.
  for (const char* k : {"\"direct\"", "\"winograd4\"", "\"winograd2\"", "\"onednn-winograd\""})
    for (std::size_t at = text.find(std::string("\"kernel\": ") + k); at != std::string::npos;
         at = text.find(std::string("\"kernel\": ") + k))
      text.replace(at, 10 + std::string(k).size(), "\"kernel\": \"thin\"");
  std::ofstream(cache) << text;
  auto second = make_executor(Backend::dnnl, net, measured(cache));
  const KernelChoice b = dnnl_kernel_choice(*second);
  EXPECT_GT(b.measuring_ms, 0);
  for (const OpChoice& c : b.ops) {
    const auto candidates = conv_candidates(net, c.op, {}, C::direct);
    EXPECT_NE(std::ranges::find(candidates, c.kernel), candidates.end()) << "op " << c.op;
    if (std::ranges::find(candidates, C::thin) == candidates.end()) {
      EXPECT_FALSE(c.cached) << "op " << c.op;
    }
  }
}

TEST(KernelChoice, AMeasuredExecutorMatchesRef) {
  std::unique_ptr<Executor> exec;
  expect_parity(Backend::dnnl, unet_net(2), 47, Measure::max_abs, &exec, measured());
  ASSERT_TRUE(exec);
  EXPECT_EQ(dnnl_kernel_choice(*exec).policy, ExecutorOptions::Kernels::measured);
}

// ---- the fixed rules ----

// Two executors built apart, trained the same few steps: the same bits, as two runs are.
TEST(KernelChoice, TheFixedRulesGiveBitIdenticalWeights) {
  const NetDesc net = seed_net(4);
  const auto tensors = random_params(net, 5);
  const auto x = test::random_floats(batch_size(net, net.input), 6, 0.f, 1.f);
  auto train = [&] {
    auto exec = make_executor(Backend::dnnl, net, {});  // ExecutorOptions' default: fixed
    EXPECT_EQ(dnnl_kernel_choice(*exec).policy, ExecutorOptions::Kernels::fixed);
    exec->from_canonical(tensors, exec->params());
    std::vector<float> dy(batch_size(net, net.output()));
    for (int step = 0; step < 3; ++step) {
      exec->forward(x.data());
      for (std::size_t k = 0; k < dy.size(); ++k) dy[k] = 1e-3f * (exec->output()[k] - x[k]);
      exec->backward(dy.data(), nullptr);
      auto p = exec->params();
      auto g = exec->grads();
      for (std::size_t k = 0; k < p.size(); ++k) p[k] -= 1e-3f * g[k];
    }
    return exec->to_canonical(exec->params());
  };
  const auto a = train();
  for (const auto& t : a)
    for (float v : t) ASSERT_TRUE(std::isfinite(v));
  EXPECT_NE(a, tensors);  // the steps moved the weights
  EXPECT_EQ(a, train());
}

TEST(KernelChoice, NamesRoundTripAndABadNameIsRefused) {
  for (C k : {C::rule, C::direct, C::onednn_winograd, C::winograd4, C::winograd2, C::thin})
    EXPECT_EQ(parse_conv_kernel(conv_kernel_name(k)), k);
  EXPECT_NE(test::error_of([] { parse_conv_kernel("fast"); }).find("unknown conv kernel 'fast'"),
            std::string::npos);
}

}  // namespace
}  // namespace cae::ops
