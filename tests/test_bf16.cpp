// bf16 convolutions (ExecutorOptions::precision): where the CPU has AVX512_BF16 the dnnl backend
// runs them and matches the ref backend within bf16's rounding; where it has not (or the tier is
// capped below it, as the suite's AVX2 run does), and on the other backends, it is refused with a
// clear error, never run slowly. The measured choice may pick bf16 per conv; the executor's
// threads flush denormals only while it runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <immintrin.h>

#include <algorithm>
#include <string>
#include <vector>

#include "net_builders.h"
#include "ops/dnnl/kernel_choice.h"
#include "ops/ops.h"
#include "parity.h"
#include "support.h"

namespace cae::ops {
namespace {

using namespace cae::ops::test_nets;
using C = ExecutorOptions::ConvKernel;
using P = ExecutorOptions::Precision;

// bf16 keeps 8 bits of mantissa: each rounding is within 2^-9 of the value. One conv without an
// activation gathers a few of them (0.2-0.3% by relative L2 here, for any layer shape). f32
// kernels agree with ref to ~1e-6 on this measure, so the lower bound shows bf16 ran.
constexpr double kOpBound = 1e-2;
constexpr double kBf16Shows = 1e-5;
// Behind a ReLU the rounding moves pre-activations near zero across it, and each crossing
// passes or stops a whole gradient term: the gradients' relative L2 error is then about the
// square root of the fraction crossed (3% for one conv + ReLU, up to 20% at the seed's input
// after 13 layers of random weights). The whole-net bound catches a wrong layout or kernel
// (errors of order 1), not rounding; the quality of bf16 training is measured on the model
// (docs/performance.md: the 5-epoch test loss).
constexpr double kNetBound = 0.35;

ExecutorOptions bf16_options() {
  ExecutorOptions o;
  o.precision = P::bf16;
  return o;
}

bool bf16_here() { return bf16_unavailable_reason().empty(); }

TEST(Bf16, NamesAndParsesItsPrecisions) {
  EXPECT_EQ(parse_precision("bf16", "--precision"), P::bf16);
  EXPECT_EQ(parse_precision("f32", "--precision"), P::f32);
  EXPECT_STREQ(precision_name(P::bf16), "bf16");
  EXPECT_THAT(test::error_of([] { parse_precision("fp16", "--precision"); }),
              ::testing::HasSubstr("--precision 'fp16': expected f32 or bf16"));
  EXPECT_EQ(parse_conv_kernel("onednn-bf16"), C::onednn_bf16);
}

TEST(Bf16, RefusedOnTheRefBackend) {
  EXPECT_THAT(test::error_of([] { make_executor(Backend::ref, seed_net(2), bf16_options()); }),
              ::testing::HasSubstr("bf16 runs on the CPU's dnnl backend only"));
}

// On this CPU and tier: it runs, or make_executor says why not (the AVX2-capped run of the suite
// takes the second branch on every machine).
TEST(Bf16, RunsWhereTheCpuHasItAndIsRefusedElsewhere) {
  const std::string why = bf16_unavailable_reason();
  if (!why.empty()) {
    EXPECT_THAT(why, ::testing::HasSubstr("AVX512_BF16"));
    EXPECT_THAT(test::error_of([] { make_executor(Backend::dnnl, seed_net(2), bf16_options()); }),
                ::testing::HasSubstr("bf16 needs a CPU with AVX512_BF16"));
    std::printf("note: bf16 refused here, as it should be: %s\n", why.c_str());
    return;
  }
  auto exec = make_executor(Backend::dnnl, seed_net(2), bf16_options());
  int bf16_steps = 0;
  for (const KernelUse& k : exec->kernels())
    if (k.impl.find("bf16") != std::string::npos) ++bf16_steps;
  EXPECT_GT(bf16_steps, 0) << "no step ran a bf16 kernel";
}

// The fixed rules run every conv and tconv on oneDNN's bf16 kernel; outputs, the input gradient
// and every weight gradient stay within bf16's rounding of ref's f32.
struct Bounded {
  Case net;
  double bound;
};

void PrintTo(const Bounded& b, std::ostream* os) { *os << b.net.name; }

class Bf16Net : public ::testing::TestWithParam<Bounded> {};

TEST_P(Bf16Net, MatchesRefWithinBf16Rounding) {
  if (!bf16_here()) GTEST_SKIP() << bf16_unavailable_reason();
  const NetDesc& net = GetParam().net.net;
  const double bound = GetParam().bound;
  auto ref = make_executor(Backend::ref, net);
  auto fast = make_executor(Backend::dnnl, net, bf16_options());
  for (int i = 0; i < int(net.ops.size()); ++i)
    if (net.ops[i].kind == OpKind::conv) EXPECT_EQ(dnnl_conv_kernels(*fast)[i], C::onednn_bf16);
  const auto tensors = random_params(net, 7);
  ref->from_canonical(tensors, ref->params());
  fast->from_canonical(tensors, fast->params());
  const auto x = test::random_floats(batch_size(net, net.input), 8, 0.f, 1.f);
  const auto dy = test::random_floats(batch_size(net, net.output()), 9, -1.f, 1.f);
  std::vector<float> dx_ref(x.size()), dx(x.size());
  ref->forward(x.data());
  ref->backward(dy.data(), dx_ref.data());
  fast->forward(x.data());
  const std::size_t n_out = batch_size(net, net.output());
  const double out_err = relative_error(fast->output(), ref->output(), n_out, Measure::relative_l2);
  EXPECT_LE(out_err, bound) << "output";
  EXPECT_GE(out_err, kBf16Shows) << "output as f32 would give it: did bf16 run?";
  fast->backward(dy.data(), dx.data());
  EXPECT_LE(relative_error(dx.data(), dx_ref.data(), dx.size(), Measure::relative_l2), bound)
      << "d_input";

  const auto grads = fast->to_canonical(fast->grads());
  const auto grads_ref = ref->to_canonical(ref->grads());
  ASSERT_EQ(grads.size(), grads_ref.size());
  for (std::size_t t = 0; t < grads.size(); ++t)
    EXPECT_LE(relative_error(grads[t].data(), grads_ref[t].data(), grads[t].size(),
                             Measure::relative_l2),
              bound)
        << "grad tensor " << t;
  for (const std::string& f : fast->fallbacks()) std::printf("note: fallback: %s\n", f.c_str());
}

std::vector<Bounded> bf16_cases() {
  using A = Activation;
  return {
      {{"conv_1to32", chain(3, {1, 28, 28}, {conv({1, 28, 28}, 32, 3, 1, true, A::none)})},
       kOpBound},
      {{"conv_32to32", chain(3, {32, 14, 14}, {conv({32, 14, 14}, 32, 3, 1, true, A::none)})},
       kOpBound},
      {{"conv_32to1", chain(3, {32, 28, 28}, {conv({32, 28, 28}, 1, 3, 1, true, A::none)})},
       kOpBound},
      {{"conv_16to8_s2_nobias",
        chain(3, {16, 9, 9}, {conv({16, 9, 9}, 8, 3, 2, true, A::none, false)})},
       kOpBound},
      {{"tconv_16to32", chain(3, {16, 7, 7}, {tconv_same({16, 7, 7}, 32, 3, 2, A::none)})},
       kOpBound},
      {{"seed_batch3", seed_net(3)}, kNetBound},
      {{"unet_batch2", unet_net(2)}, kNetBound},
      {{"residual_batch2", residual_net(2)}, kNetBound},
  };
}

INSTANTIATE_TEST_SUITE_P(Nets, Bf16Net, ::testing::ValuesIn(bf16_cases()),
                         [](const auto& info) { return info.param.net.name; });

TEST(Bf16, IsACandidateOnlyWhenAskedFor) {
  const NetDesc net = seed_net(4);
  for (int i = 0; i < int(net.ops.size()); ++i) {
    if (net.ops[i].kind != OpKind::conv) continue;
    const auto f32 = conv_candidates(net, i, {}, C::rule);
    const auto bf16 = conv_candidates(net, i, bf16_options(), C::rule);
    EXPECT_EQ(std::ranges::find(f32, C::onednn_bf16), f32.end()) << "op " << i;
    EXPECT_NE(std::ranges::find(bf16, C::onednn_bf16), bf16.end()) << "op " << i;
    EXPECT_EQ(bf16.size(), f32.size() + 1) << "op " << i << ": the f32 candidates stay";
  }
}

TEST(Bf16, AskedForWithF32RunsDirectAndSaysSo) {
  const NetDesc net = seed_net(2);
  ExecutorOptions options;
  options.conv_kernels.assign(net.ops.size(), C::onednn_bf16);
  auto exec = make_executor(Backend::dnnl, net, options);
  for (int i = 0; i < int(net.ops.size()); ++i)
    if (net.ops[i].kind == OpKind::conv) EXPECT_EQ(dnnl_conv_kernels(*exec)[i], C::direct);
  const auto notes = exec->fallbacks();
  EXPECT_TRUE(std::ranges::any_of(notes, [](const std::string& n) {
    return n.find("asked for onednn-bf16 with precision f32") != std::string::npos;
  }));
}

// FTZ and DAZ hold while the executor runs, not after: the caller's own arithmetic keeps its
// denormals.
TEST(Bf16, LeavesTheCallersDenormalsAlone) {
  if (!bf16_here()) GTEST_SKIP() << bf16_unavailable_reason();
  const NetDesc net = seed_net(2);
  auto exec = make_executor(Backend::dnnl, net, bf16_options());
  exec->from_canonical(random_params(net, 3), exec->params());
  const auto x = test::random_floats(batch_size(net, net.input), 4, 0.f, 1.f);
  const unsigned before = _mm_getcsr();
  exec->forward(x.data());
  std::vector<float> dy(batch_size(net, net.output()), 0.5f);
  exec->backward(dy.data(), nullptr);
  EXPECT_EQ(_mm_getcsr(), before);
  volatile float tiny = 1e-38f;
  EXPECT_GT(tiny / 1e3f, 0.f) << "a denormal result was flushed after the executor ran";
}

}  // namespace
}  // namespace cae::ops
