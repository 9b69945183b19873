// The oneDNN backend against the ref backend, op by op and on whole nets: outputs, every
// activation, d_input and canonical gradients from the same canonical parameters. Buffers the
// backend writes are poisoned with NaN first, so stale data cannot pass. Plus the properties the
// optimizer and checkpoints rely on (flat layout round trips, zero padding, determinism), the
// resize and max-pool kernels on every layout of their family, and a few hand-computed cases.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cae/error.h"
#include "core/isa.h"
#include "nn/spec.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/dnnl/pool_kernel.h"
#include "ops/dnnl/resize_kernel.h"
#include "ops/ops.h"
#include "net_builders.h"
#include "parity.h"
#include "support.h"

namespace cae::ops {
namespace {

using namespace cae::ops::test_nets;

// oneDNN against ref (tests/parity.h), and every cell of grads() written, padding as zero: the
// flat buffer survives a round trip through the canonical tensors.
void expect_dnnl_parity(const NetDesc& net, std::uint64_t seed, Measure backward = Measure::max_abs,
                        const ExecutorOptions& options = {}) {
  std::unique_ptr<Executor> fast;
  expect_parity(Backend::dnnl, net, seed, backward, &fast, options);
  if (!fast) return;
  const auto grads = fast->to_canonical(fast->grads());
  std::vector<float> round_trip(fast->grads().size(), nan_f);
  fast->from_canonical(grads, round_trip);
  EXPECT_TRUE(std::ranges::equal(round_trip, fast->grads())) << "grads padding not zero";
}

// One forward and backward pass of e from the canonical params `tensors`: the output, d_input
// and the flat gradients, for comparing two executors of net bit for bit.
std::vector<std::vector<float>> one_pass(Executor& e, const NetDesc& net,
                                         const std::vector<std::vector<float>>& tensors,
                                         const std::vector<float>& x,
                                         const std::vector<float>& dy) {
  e.from_canonical(tensors, e.params());
  std::vector<float> dx(x.size());
  e.forward(x.data());
  std::vector<float> out(e.output(), e.output() + batch_size(net, net.output()));
  e.backward(dy.data(), dx.data());
  std::vector<float> g(e.grads().begin(), e.grads().end());
  return {out, dx, g};
}

// ---- op by op ----

std::vector<Case> op_cases() {
  using A = Activation;
  std::vector<Case> cases = shared_op_cases();
  auto add = [&](std::string name, NetDesc net) { cases.push_back({std::move(name), net}); };
  // More convs: a 7x7 map, a 5x5 kernel without bias, stride 2 on one image.
  add("conv_32to16_same_relu", chain(1, {32, 7, 7}, {conv({32, 7, 7}, 16, 3, 1, true, A::relu)}));
  add("conv_16to5_k5_valid_sigmoid_nobias",
      chain(3, {16, 9, 9}, {conv({16, 9, 9}, 5, 5, 1, false, A::sigmoid, false)}));
  add("conv_32to32_s2_same_relu",
      chain(1, {32, 14, 14}, {conv({32, 14, 14}, 32, 3, 2, true, A::relu)}));
  // Layers the executor runs in Winograd (ours by default, after a first conv that gives them
  // a blocked input; oneDNN's with Winograd::onednn): element-wise within 1e-4 of ref.
  auto after_conv = [](int batch, OpDesc op) {
    return chain(batch, op.in, {conv(op.in, op.in.c, 3, 1, true, A::relu), op});
  };
  add("winograd_32to32_28x28_relu",
      after_conv(4, conv({32, 28, 28}, 32, 3, 1, true, A::relu)));
  add("winograd_32to32_28x28_none_batch32",
      after_conv(32, conv({32, 28, 28}, 32, 3, 1, true, A::none)));
  add("winograd_16to32_14x14_relu_nobias",
      after_conv(8, conv({16, 14, 14}, 32, 3, 1, true, A::relu, false)));
  add("winograd_32to16_7x7_relu", after_conv(5, conv({32, 7, 7}, 16, 3, 1, true, A::relu)));
  add("winograd_16to16_5x9_partial_tiles",
      after_conv(3, conv({16, 5, 9}, 16, 3, 1, true, A::none)));
  // A conv taking a blocked, channel-padded input as it lies (5 channels in 16-lane blocks).
  {
    const OpDesc a = conv({3, 9, 9}, 5, 3, 1, true, A::relu);
    add("conv_chain_3to5to3", chain(3, {3, 9, 9}, {a, conv(a.out, 3, 3, 1, true, A::none)}));
  }
  // Pool, resize and element-wise ops on the plain input and after a conv (blocked layouts,
  // padded channel blocks for 5 channels).
  struct Shaped {
    std::string name;
    OpKind kind;
    Dims in;
    int h = 0, w = 0;
  };
  const std::vector<Shaped> shaped = {
      {"maxpool_7to4", OpKind::maxpool, {5, 7, 7}},
      {"maxpool_28to14", OpKind::maxpool, {32, 28, 28}},
      {"maxpool_7to4_c16", OpKind::maxpool, {16, 7, 7}},
      {"resize_4to7", OpKind::resize, {16, 4, 4}, 7, 7},
      {"resize_7to14", OpKind::resize, {5, 7, 7}, 14, 14},
      {"resize_14to28", OpKind::resize, {32, 14, 14}, 28, 28},
      {"resize_7to4", OpKind::resize, {3, 7, 7}, 4, 4},
      {"resize_4to7x5", OpKind::resize, {1, 4, 4}, 7, 5},
      {"relu", OpKind::relu, {5, 6, 6}},
      {"relu_c16", OpKind::relu, {16, 6, 6}},
      {"sigmoid", OpKind::sigmoid, {5, 6, 6}},
      {"sigmoid_c32", OpKind::sigmoid, {32, 6, 6}},
  };
  for (const Shaped& s : shaped) {
    auto make = [&](Dims in) {
      switch (s.kind) {
        case OpKind::maxpool:
          return maxpool_same(in);
        case OpKind::resize:
          return resize(in, s.h, s.w);
        default:
          return eltwise(s.kind, in);
      }
    };
    add(s.name + "_plain", chain(3, s.in, {make(s.in)}));
    const Dims pre_in{3, s.in.h, s.in.w};
    add(s.name + "_after_conv",
        chain(3, pre_in, {conv(pre_in, s.in.c, 3, 1, true, A::none), make(s.in)}));
  }
  // An op at the end of a conv chain whose output must be reordered back to NCHW.
  add("resize_then_conv_1",
      chain(3, {3, 4, 4},
            {conv({3, 4, 4}, 16, 3, 1, true, A::relu), resize({16, 4, 4}, 7, 7),
             conv({16, 7, 7}, 1, 3, 1, true, A::sigmoid)}));
  return cases;
}

class DnnlOpParity : public ::testing::TestWithParam<Case> {};

TEST_P(DnnlOpParity, MatchesRef) { expect_dnnl_parity(GetParam().net, 17); }

INSTANTIATE_TEST_SUITE_P(Ops, DnnlOpParity, ::testing::ValuesIn(op_cases()),
                         [](const auto& info) { return info.param.name; });

// ---- whole nets ----

TEST(DnnlNetParity, SeedBatch1) { expect_dnnl_parity(seed_net(1), 101); }
TEST(DnnlNetParity, SeedBatch3) { expect_dnnl_parity(seed_net(3), 102); }
// The 28x28 and 14x14 layers run in Winograd: each within 1e-4 alone (the winograd_* cases), and
// the forward here too, but over 200 images a few pre-activations near zero cross the ReLU the
// other way (Measure::relative_l2 in parity.h); with every layer direct, element-wise again
// unless a tier's rounding puts one within rounding of zero too (parity.h says so when it does).
TEST(DnnlNetParity, SeedBatch200) { expect_dnnl_parity(seed_net(200), 103, Measure::relative_l2); }
TEST(DnnlNetParity, SeedBatch200Direct) {
  expect_dnnl_parity(seed_net(200), 103, Measure::max_abs,
                     {.winograd = ExecutorOptions::Winograd::off});
}
TEST(DnnlNetParity, SeedTconvBatch3) { expect_dnnl_parity(seed_tconv_net(3), 104); }
// oneDNN's own Winograd, kept selectable for comparison (Winograd::onednn; AVX-512 only).
TEST(DnnlNetParity, SeedBatch3OnOneDnnWinograd) {
  expect_dnnl_parity(seed_net(3), 105, Measure::max_abs,
                     {.winograd = ExecutorOptions::Winograd::onednn});
}

// Every built-in preset, built from its spec as a user gets it (the nets above are written out
// by hand, independent of the parser).
TEST(DnnlNetParity, EveryPresetFromItsSpec) {
  for (const std::string& name : nn::preset_names()) {
    SCOPED_TRACE(name);
    expect_dnnl_parity(nn::build_net(nn::parse_spec(nn::preset_spec(name)), {1, 28, 28}, 2), 110);
  }
}

// Photo inputs: RGB, and an informed model's RGB plus the mask (4 channels, where oneDNN's
// weights gradient needs NHWC: the backend reorders for it) and gray plus the mask.
TEST(DnnlNetParity, UnetOnPhotoInputs) {
  for (int c : {2, 3, 4}) {
    SCOPED_TRACE(c);
    expect_dnnl_parity(nn::build_net(nn::parse_spec(nn::preset_spec("unet")), {c, 16, 16}, 3,
                                     c == 3 ? 0 : c - 1),
                       111);
  }
}

TEST(DnnlNetParity, UnetBatch3) { expect_dnnl_parity(unet_net(3), 106); }
TEST(DnnlNetParity, UnetWideBatch2) { expect_dnnl_parity(unet_net(2, 2), 107); }
TEST(DnnlNetParity, ResidualBatch3) { expect_dnnl_parity(residual_net(3), 108); }
TEST(DnnlNetParity, UnetBatch16) { expect_dnnl_parity(unet_net(16), 109, Measure::relative_l2); }

// ---- the memory plan ----

// Memories that share a buffer have disjoint spans and fit in it; every activation is kept
// through the forward pass.
void expect_plan_consistent(const DnnlPlan& plan) {
  for (std::size_t a = 0; a < plan.rows.size(); ++a) {
    const DnnlPlanRow& r = plan.rows[a];
    if (r.buffer < 0) continue;
    EXPECT_LE(r.first, r.last) << r.what;
    EXPECT_LE(r.bytes, plan.buffer_bytes.at(r.buffer)) << r.what;
    if (r.what.starts_with("act ")) {
      EXPECT_GE(r.last, plan.forward_steps - 1) << r.what;
    }
    for (std::size_t b = a + 1; b < plan.rows.size(); ++b) {
      const DnnlPlanRow& o = plan.rows[b];
      if (o.buffer == r.buffer) {
        EXPECT_TRUE(o.last < r.first || r.last < o.first)
            << r.what << " and " << o.what << " share B" << r.buffer << " in overlapping spans";
      }
    }
  }
}

TEST(DnnlPlan, SpansOfSharedBuffersNeverOverlap) {
  for (const NetDesc& net : {seed_net(50), seed_tconv_net(3), unet_net(50), residual_net(4)}) {
    auto exec = make_executor(Backend::dnnl, net);
    const DnnlPlan plan = dnnl_plan(*exec);
    SCOPED_TRACE(format_dnnl_plan(plan));
    expect_plan_consistent(plan);
    EXPECT_LT(plan.buffer_bytes.size(), plan.rows.size()) << "nothing shared";
  }
}

// The ReLU-by-pool fusion is a rewrite chosen before the build: the seed's three encoder convs;
// none in the unet, whose encoder outputs are also read by the skips.
TEST(DnnlPlan, ReluByPoolRewriteOnlyWhereThePoolIsTheOnlyReader) {
  auto seed = make_executor(Backend::dnnl, seed_net(2));
  EXPECT_EQ(dnnl_plan(*seed).rewrites.size(), 3u);
  auto unet = make_executor(Backend::dnnl, unet_net(2));
  EXPECT_THAT(dnnl_plan(*unet).rewrites, ::testing::IsEmpty());
}

// Buffers shared by the plan change no bit of what the executor computes: the same net with a
// buffer for every memory gives bitwise the same output, d_input and gradients.
TEST(DnnlPlan, SharedBuffersGiveBitwiseTheSameGradients) {
  for (const NetDesc& net : {seed_net(50), unet_net(8), residual_net(4)}) {
    auto shared = make_dnnl_executor(net);
    auto separate = make_dnnl_executor(net, {.share_buffers = false});
    EXPECT_LT(dnnl_memory(*shared).activations + dnnl_memory(*shared).gradients,
              dnnl_memory(*separate).activations + dnnl_memory(*separate).gradients);
    const auto tensors = random_params(net, 21);
    const auto x = test::random_floats(batch_size(net, net.input), 22, 0.f, 1.f);
    const auto dy = test::random_floats(batch_size(net, net.output()), 23);
    EXPECT_EQ(one_pass(*shared, net, tensors, x, dy), one_pass(*separate, net, tensors, x, dy));
  }
}

// Every step of the new presets' training and inference runs on a JIT kernel or one of ours, and
// the builder took no fallback (as SeedRunsNoReferenceKernelAndNoFallback for the seed).
TEST(DnnlExecutor, PresetsRunNoReferenceKernelAndNoFallback) {
  if (cpu_isa() < Isa::avx2) GTEST_SKIP() << "below AVX2 oneDNN 2.6 has no JIT backward convs";
  for (const NetDesc& net : {unet_net(50), unet_net(1), unet_net(2, 2), residual_net(50)}) {
    auto exec = make_executor(Backend::dnnl, net);
    for (const KernelUse& s : exec->kernels())
      EXPECT_TRUE(s.impl.starts_with("cae:") || s.impl.starts_with("jit") ||
                  s.impl.starts_with("brg"))
          << "op " << s.op << " " << s.name << ": " << s.impl;
    EXPECT_THAT(exec->fallbacks(), ::testing::IsEmpty());
  }
}

// The first conv of a photo model: no reference kernel for 1 to 4 input channels (gray, an
// informed gray model, RGB, an informed RGB model), and where the backend reorders the input
// for the weights gradient it says so.
TEST(DnnlExecutor, PhotoInputsRunNoReferenceKernel) {
  if (cpu_isa() < Isa::avx2) GTEST_SKIP() << "below AVX2 oneDNN 2.6 has no JIT backward convs";
  for (int c : {1, 2, 3, 4}) {
    SCOPED_TRACE(c);
    const NetDesc net = nn::build_net(nn::parse_spec(nn::preset_spec("unet")), {c, 64, 64}, 8);
    auto exec = make_executor(Backend::dnnl, net);
    for (const KernelUse& s : exec->kernels())
      EXPECT_FALSE(s.impl.starts_with("ref")) << "op " << s.op << " " << s.name << ": " << s.impl;
    bool reordered = false, nhwc_step = false;
    for (const std::string& f : exec->fallbacks())
      reordered |= f.find("reordered to NHWC") != std::string::npos;
    for (const KernelUse& s : exec->kernels()) nhwc_step |= s.op == 0 && s.name == "reorder";
    if (reordered) {
      EXPECT_TRUE(nhwc_step) << "the reorders the fallback names are steps";
    }
  }
}

// ---- properties of the flat buffers ----

// The implementations of the steps of one training step of net, as oneDNN names them.
std::vector<std::string> step_impls(const NetDesc& net, const ExecutorOptions& options = {}) {
  auto exec = make_executor(Backend::dnnl, net, options);
  const auto x = test::random_floats(batch_size(net, net.input), 1);
  const auto dy = test::random_floats(batch_size(net, net.output()), 2);
  std::vector<std::string> impls;
  for (const StepTime& t : profile_dnnl_steps(*exec, x.data(), dy.data(), 1))
    impls.push_back(t.name + ": " + t.impl);
  return impls;
}

// The 3x3 layers run in Winograd: ours by default on every tier with AVX2 (from 4x4 on AVX2,
// from 14x14 on AVX-512, where oneDNN's direct kernels win on 7x7 maps), oneDNN's jit_wino_4x3
// with Winograd::onednn where it has one (AVX-512, 14x14 and up); Winograd::off keeps every
// layer direct.
TEST(DnnlExecutor, ThreeByThreeConvsRunInWinograd) {
  using W = ExecutorOptions::Winograd;
  // Two layers: the first one's data gradient is not part of a training step.
  const OpDesc wide = conv({32, 28, 28}, 32, 3, 1, true, Activation::relu);
  const NetDesc net = chain(2, wide.in, {wide, wide});
  const OpDesc small = conv({32, 7, 7}, 16, 3, 1, true, Activation::relu);
  const bool avx512 = dnnl_isa().starts_with("avx512");
  const bool ours = cpu_isa() >= Isa::avx2;
  const ExecutorOptions defaults, onednn{.winograd = W::onednn}, direct{.winograd = W::off};
  EXPECT_EQ(onednn_winograd_fits(wide), avx512);
  EXPECT_FALSE(onednn_winograd_fits(small));
  EXPECT_FALSE(winograd_chosen(wide, defaults));
  EXPECT_EQ(own_winograd_chosen(wide, defaults), ours);
  EXPECT_EQ(own_winograd_chosen(small, defaults), ours && !avx512);
  EXPECT_FALSE(own_winograd_chosen(conv({32, 28, 28}, 32, 3, 2, true, Activation::relu), defaults));
  // The second layer's three passes (the first one's input gradient is not part of the step).
  auto expect_passes_on = [&](const std::string& kernel, const ExecutorOptions& options) {
    const auto impls = step_impls(net, options);
    for (const char* pass : {"fwd forward", "bwd backward weights", "bwd backward data"})
      EXPECT_THAT(impls, ::testing::Contains(::testing::AllOf(
                             ::testing::StartsWith(pass), ::testing::HasSubstr(": " + kernel))))
          << pass << " on " << kernel;
  };
  const std::string tier = avx512 ? "avx512" : "avx2";
  if (ours) {
    expect_passes_on("cae:winograd_4x3:" + tier, defaults);
    EXPECT_EQ(own_winograd_tile(wide, {.winograd_tile = 2}), 2);
    expect_passes_on("cae:winograd_2x3:" + tier, {.winograd_tile = 2});
  }
  EXPECT_FALSE(own_winograd_chosen(wide, onednn));
  EXPECT_EQ(winograd_chosen(wide, onednn), avx512);
  if (avx512) expect_passes_on("jit_wino", onednn);
  EXPECT_FALSE(winograd_chosen(wide, direct));
  EXPECT_FALSE(own_winograd_chosen(wide, direct));
  EXPECT_THAT(step_impls(net, direct),
              ::testing::Not(::testing::Contains(::testing::HasSubstr("wino"))));
  // A tile our kernel has no variant for is refused, not run on another kernel.
  EXPECT_THROW(make_executor(Backend::dnnl, net, {.winograd_tile = 3}), Error);
}

// Every step of the seed's training step (micro-batches of 50) and of its inference (the API's 64
// and a batch of 1) runs on one of oneDNN's JIT kernels or one of ours, never on a reference
// kernel (ref:, 10-60x slower), and the builder took no fallback: on each tier from AVX2 up,
// since CI runs this natively and capped (CAE_MAX_ISA). Below AVX2 the forward still is, and
// each reference kernel of the backward is named in Executor::fallbacks(). What was built is
// checked, not how fast it runs.
TEST(DnnlExecutor, SeedRunsNoReferenceKernelAndNoFallback) {
  for (int batch : {50, 64, 1}) {
    auto exec = make_executor(Backend::dnnl, seed_net(batch));
    const std::vector<KernelUse> steps = exec->kernels();
    std::ostringstream all;
    for (const KernelUse& s : steps)
      all << "  op " << s.op << " " << s.pass << " " << s.name << ": " << s.impl << "\n";
    SCOPED_TRACE("batch " + std::to_string(batch) + " on " + isa_description() + ", oneDNN " +
                 dnnl_isa() + ":\n" + all.str());
    EXPECT_GT(steps.size(), 13u);
    const std::vector<std::string> fallbacks = exec->fallbacks();
    for (const KernelUse& s : steps) {
      const bool ours = s.impl.starts_with("cae:");
      const bool jit = s.impl.starts_with("jit") || s.impl.starts_with("brg");
      if (cpu_isa() >= Isa::avx2 || s.pass == "forward") {
        EXPECT_TRUE(ours || jit) << "op " << s.op << " " << s.name << ": " << s.impl;
      } else if (!ours && !jit) {
        // Below AVX2, oneDNN 2.6 has no JIT backward convs: reported, never silent.
        const std::string line = "op " + std::to_string(s.op) + " (";
        EXPECT_THAT(fallbacks, ::testing::Contains(::testing::AllOf(
                                   ::testing::StartsWith(line), ::testing::HasSubstr(s.impl))))
            << s.name;
      }
    }
    if (cpu_isa() >= Isa::avx2) {
      EXPECT_THAT(fallbacks, ::testing::IsEmpty());
    }
  }
}

// Training the seed at batch 200 needs no gradient buffer of its own: every d(act) fits in the
// buffer of an activation backward has finished with (assign_gradient_buffers), the first
// conv's output among them because the pool after it applies its ReLU's gradient.
TEST(DnnlExecutor, SeedGradientsTakeTheBuffersOfFinishedActivations) {
  const NetDesc net = seed_net(200);
  auto exec = make_executor(Backend::dnnl, net);
  const DnnlMemory held = dnnl_memory(*exec);
  EXPECT_EQ(held.gradients, 0u);
  std::size_t outputs = 0;  // every op's output, channels padded to 16-blocks
  for (const OpDesc& op : net.ops)
    outputs += std::size_t(net.batch) * ((op.out.c + 15) / 16 * 16) * op.out.h * op.out.w * 4;
  EXPECT_LE(held.activations, outputs);
  // Two convs with no pool between: the first one's output is read by backward to the end, so
  // d(act 0) needs a buffer of its own; the reordered d_output takes the last activation's,
  // which backward does not read (output() is the reordered copy).
  const OpDesc wide = conv({32, 14, 14}, 32, 3, 1, true, Activation::relu);
  const NetDesc two = chain(8, wide.in, {wide, conv(wide.out, 32, 3, 1, true, Activation::none)});
  EXPECT_EQ(dnnl_memory(*make_executor(Backend::dnnl, two)).gradients,
            std::size_t(8) * 32 * 14 * 14 * 4);
}

TEST(DnnlExecutor, ParamsAndGradsShareLayoutAndCoverCanonical) {
  const NetDesc net = seed_net(2);
  auto fast = make_executor(Backend::dnnl, net);
  std::size_t canonical = 0;
  for (const ParamInfo& info : param_infos(net)) canonical += info.size();
  EXPECT_EQ(fast->params().size(), fast->grads().size());
  EXPECT_GE(fast->params().size(), canonical);
}

TEST(DnnlExecutor, CanonicalRoundTripIsExact) {
  for (const NetDesc& net : {seed_net(1), seed_tconv_net(1)}) {
    auto fast = make_executor(Backend::dnnl, net);
    const auto tensors = random_params(net, 5);
    std::vector<float> flat(fast->params().size(), nan_f);
    fast->from_canonical(tensors, flat);
    EXPECT_TRUE(std::ranges::none_of(flat, [](float v) { return std::isnan(v); }))
        << "from_canonical left padding cells unwritten";
    EXPECT_EQ(fast->to_canonical(flat), tensors);
  }
}

TEST(DnnlExecutor, RepeatedStepsAreBitwiseIdentical) {
  const NetDesc net = seed_net(4);
  auto fast = make_executor(Backend::dnnl, net);
  const auto tensors = random_params(net, 9);
  const auto x = test::random_floats(batch_size(net, net.input), 10, 0.f, 1.f);
  const auto dy = test::random_floats(batch_size(net, net.output()), 11);
  auto step = [&] { return one_pass(*fast, net, tensors, x, dy); };
  const auto first = step();
  EXPECT_EQ(step(), first);
  EXPECT_EQ(step(), first);
}

TEST(DnnlExecutor, RejectsBadNetsAndBuffersWithCaeError) {
  NetDesc broken = seed_net(1);
  broken.ops[2].in.c = 31;
  EXPECT_THROW(make_executor(Backend::dnnl, broken), Error);
  EXPECT_THROW(make_executor(Backend::dnnl, NetDesc{1, {1, 4, 4}, {}}), Error);

  const NetDesc net = seed_net(1);
  auto fast = make_executor(Backend::dnnl, net);
  std::vector<float> out(net.output().size());
  EXPECT_THROW(fast->read_activation(int(net.ops.size()), out.data()), Error);
  EXPECT_THROW(fast->read_activation(-1, out.data()), Error);
  auto tensors = random_params(net, 3);
  tensors[1].pop_back();
  EXPECT_THROW(fast->from_canonical(tensors, fast->params()), Error);
  std::vector<float> short_flat(fast->params().size() - 1);
  EXPECT_THROW(fast->to_canonical(short_flat), Error);
}

// ---- hand-computed cases, independent of the ref backend ----

// ONNX ConvTranspose on a 1x1 input with two channels x = {2, 3}, w[c][o][ky][kx] = 1..16:
// y[o][ky][kx] = 2 w[0][o][ky][kx] + 3 w[1][o][ky][kx] + b[o], kernel unflipped.
TEST(DnnlExecutor, TconvUsesIohwWeightsUnflipped) {
  const NetDesc net =
      chain(1, {2, 1, 1}, {tconv({2, 1, 1}, 2, 2, 1, {0, 0}, {0, 0}, Activation::none)});
  auto fast = make_executor(Backend::dnnl, net);
  std::vector<float> w(16);
  for (int i = 0; i < 16; ++i) w[i] = float(i + 1);
  fast->from_canonical({w, {10, 20}}, fast->params());
  const float x[2] = {2, 3};
  fast->forward(x);
  const std::vector<float> expected = {39, 44, 49, 54, 69, 74, 79, 84};
  EXPECT_EQ(std::vector<float>(fast->output(), fast->output() + 8), expected);
}

// 7 -> 4 max-pool 'same' pads one column and row after: with all inputs negative, a padded
// zero winning would show as 0 in the last row and column.
TEST(DnnlExecutor, MaxpoolPaddingNeverWins) {
  const NetDesc net = chain(1, {1, 7, 7}, {maxpool_same({1, 7, 7})});
  auto fast = make_executor(Backend::dnnl, net);
  std::vector<float> x(49);
  for (int i = 0; i < 49; ++i)
    x[i] = -1.f - float(i);  // decreasing: each window's max is its first cell
  fast->forward(x.data());
  for (int y = 0; y < 4; ++y)
    for (int xx = 0; xx < 4; ++xx)
      EXPECT_EQ(fast->output()[y * 4 + xx], x[(2 * y) * 7 + 2 * xx]) << y << "," << xx;
}

// The TF1 floor map written out: 4 -> 7 reads rows {0,0,1,1,2,2,3}; 7 -> 4 reads {0,1,3,5}.
TEST(DnnlExecutor, ResizeFollowsTfFloorMap) {
  const std::vector<int> up = {0, 0, 1, 1, 2, 2, 3}, down = {0, 1, 3, 5};
  for (const auto& [in, map] : {std::pair{4, up}, std::pair{7, down}}) {
    const int out = int(map.size());
    const NetDesc net = chain(1, {1, in, in}, {resize({1, in, in}, out, out)});
    auto fast = make_executor(Backend::dnnl, net);
    std::vector<float> x(in * in);
    for (int i = 0; i < in * in; ++i) x[i] = float(i);
    fast->forward(x.data());
    for (int y = 0; y < out; ++y)
      for (int xx = 0; xx < out; ++xx)
        EXPECT_EQ(fast->output()[y * out + xx], float(map[y] * in + map[xx]));
    // Backward of all-ones: each source cell gets (rows reading it) * (columns reading it).
    std::vector<float> ones(out * out, 1.f), dx(in * in, nan_f);
    fast->backward(ones.data(), dx.data());
    for (int y = 0; y < in; ++y)
      for (int xx = 0; xx < in; ++xx)
        EXPECT_EQ(dx[y * in + xx], float(std::ranges::count(map, y) * std::ranges::count(map, xx)));
  }
}

// ---- the resize kernel on each layout of its family ----

struct Layout {
  const char* name;
  int block;  // 0: plain nchw, -1: nhwc, else nChw{block}c
};

// Where (n, c, h, w) lives in a layout, and the kernel's view of it.
std::size_t offset(const Layout& l, int n, int c, int h, int w, int C, int H, int W) {
  if (l.block == 0) return ((std::size_t(n) * C + c) * H + h) * W + w;
  if (l.block < 0) return ((std::size_t(n) * H + h) * W + w) * C + c;
  const int cb = (C + l.block - 1) / l.block;
  return (((std::size_t(n) * cb + c / l.block) * H + h) * W + w) * l.block + c % l.block;
}

dnnl_backend::BlockedView view(const Layout& l, int N, int C, int H, int W) {
  dnnl_backend::BlockedView v;
  v.n = N;
  v.h = H;
  v.w = W;
  if (l.block == 0) {
    v.cb = C;
    v.ci = 1;
    v.stride_w = 1;
    v.stride_h = W;
    v.stride_cb = std::ptrdiff_t(H) * W;
    v.stride_n = std::ptrdiff_t(C) * H * W;
  } else if (l.block < 0) {
    v.cb = 1;
    v.ci = C;
    v.stride_w = C;
    v.stride_h = std::ptrdiff_t(W) * C;
    v.stride_cb = 0;
    v.stride_n = std::ptrdiff_t(H) * W * C;
  } else {
    v.cb = (C + l.block - 1) / l.block;
    v.ci = l.block;
    v.stride_w = l.block;
    v.stride_h = std::ptrdiff_t(W) * l.block;
    v.stride_cb = std::ptrdiff_t(H) * W * l.block;
    v.stride_n = v.stride_cb * v.cb;
  }
  return v;
}

TEST(DnnlResizeKernel, EveryLayoutMatchesTheCanonicalMap) {
  const int N = 2, C = 5, H = 4, W = 6, P = 7, Q = 4;
  for (const Layout& l : {Layout{"nchw", 0}, Layout{"nhwc", -1}, Layout{"nChw8c", 8},
                          Layout{"nChw16c", 16}, Layout{"nChw4c", 4}}) {
    SCOPED_TRACE(l.name);
    const auto sv = view(l, N, C, H, W), dv = view(l, N, C, P, Q);
    const std::size_t src_n = std::size_t(sv.stride_n) * N, dst_n = std::size_t(dv.stride_n) * N;
    // Padding lanes hold zero, as oneDNN keeps them.
    std::vector<float> src(src_n, 0.f), dst(dst_n, nan_f), d_dst(dst_n, 0.f), d_src(src_n, nan_f);
    const auto values = test::random_floats(std::size_t(N) * C * H * W, 1);
    const auto grads = test::random_floats(std::size_t(N) * C * P * Q, 2);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) {
        for (int h = 0; h < H; ++h)
          for (int w = 0; w < W; ++w)
            src[offset(l, n, c, h, w, C, H, W)] = values[((n * C + c) * H + h) * W + w];
        for (int p = 0; p < P; ++p)
          for (int q = 0; q < Q; ++q)
            d_dst[offset(l, n, c, p, q, C, P, Q)] = grads[((n * C + c) * P + p) * Q + q];
      }
    const auto plan = dnnl_backend::make_resize_plan(sv, dv);
    dnnl_backend::resize_forward(plan, src.data(), dst.data());
    dnnl_backend::resize_backward(plan, d_dst.data(), d_src.data());
    std::vector<double> expected_d_src(std::size_t(N) * C * H * W, 0.0);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int p = 0; p < P; ++p)
          for (int q = 0; q < Q; ++q) {
            const int h = std::min(p * H / P, H - 1), w = std::min(q * W / Q, W - 1);
            EXPECT_EQ(dst[offset(l, n, c, p, q, C, P, Q)], values[((n * C + c) * H + h) * W + w]);
            expected_d_src[((n * C + c) * H + h) * W + w] += grads[((n * C + c) * P + p) * Q + q];
          }
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int h = 0; h < H; ++h)
          for (int w = 0; w < W; ++w)
            EXPECT_NEAR(d_src[offset(l, n, c, h, w, C, H, W)],
                        expected_d_src[((n * C + c) * H + h) * W + w], 1e-5);
    EXPECT_TRUE(std::ranges::none_of(dst, [](float v) { return std::isnan(v); }));
    EXPECT_TRUE(std::ranges::none_of(d_src, [](float v) { return std::isnan(v); }));
  }
}


// ---- the max-pool kernel on each layout of its family ----

// The ref backend's rule (ref_kernels.cpp, pool_argmax): the first maximum of the window's
// in-range cells in row-major order; {-1, -1} when none is in range.
std::pair<int, int> first_max(const std::vector<float>& plane, int H, int W, int y0, int x0,
                              int k) {
  std::pair<int, int> best{-1, -1};
  for (int ky = 0; ky < k; ++ky)
    for (int kx = 0; kx < k; ++kx) {
      const int h = y0 + ky, w = x0 + kx;
      if (h < 0 || h >= H || w < 0 || w >= W) continue;
      if (best.first < 0 || plane[h * W + w] > plane[best.first * W + best.second]) best = {h, w};
    }
  return best;
}

// Our kernel against the rule above, on every layout, tier and window shape it takes: 2x2
// windows that tile the input (whole, cut by a 'same' pad, or offset by a pad before), 3x3
// windows that overlap and 2x2 windows with gaps (each plane cleared, then summed into), with
// and without the ReLU of the conv before folded in. Values are multiples of 0.5 in [-1, 1], so
// ties and zeros are common: the first maximum must win, and a max of 0 under the ReLU passes no
// gradient. Every cell is poisoned with NaN first.
TEST(DnnlPoolKernel, EveryLayoutAndWindowMatchesTheReference) {
  struct Window {
    const char* name;
    int h, w, kernel, stride, pad_top, pad_left, oh, ow;
  };
  const Window windows[] = {
      {"2x2 s2 tiling", 6, 8, 2, 2, 0, 0, 3, 4},
      {"2x2 s2 'same' 7 -> 4", 7, 7, 2, 2, 0, 0, 4, 4},
      {"2x2 s2 pad before", 5, 5, 2, 2, 1, 1, 3, 3},
      {"3x3 s2 overlapping", 7, 6, 3, 2, 1, 0, 4, 3},
      {"2x2 s3 gaps", 8, 8, 2, 3, 0, 0, 3, 3},
  };
  const int N = 2;
  for (const Window& g : windows)
    for (int C : {5, 16})
      for (const Layout& l : {Layout{"nchw", 0}, Layout{"nhwc", -1}, Layout{"nChw4c", 4},
                              Layout{"nChw8c", 8}, Layout{"nChw16c", 16}})
        for (bool relu : {false, true}) {
          SCOPED_TRACE(std::string(g.name) + ", " + l.name + ", C " + std::to_string(C) +
                       (relu ? ", ReLU folded in" : ""));
          ASSERT_TRUE(dnnl_backend::pool_kernel_fits(g.kernel, g.stride, g.pad_top, g.pad_left,
                                                     g.h, g.w, g.oh, g.ow));
          const auto sv = view(l, N, C, g.h, g.w), dv = view(l, N, C, g.oh, g.ow);
          const std::size_t src_n = std::size_t(sv.stride_n) * N;
          const std::size_t dst_n = std::size_t(dv.stride_n) * N;
          std::vector<float> src(src_n, 0.f), dst(dst_n, nan_f), d_dst(dst_n, 0.f),
              d_src(src_n, nan_f);
          auto values = test::random_floats(std::size_t(N) * C * g.h * g.w, 3, -1.f, 1.f);
          for (float& v : values) v = std::round(v * 2) / 2;
          const auto grads = test::random_floats(std::size_t(N) * C * g.oh * g.ow, 4);
          for (int n = 0; n < N; ++n)
            for (int c = 0; c < C; ++c) {
              for (int h = 0; h < g.h; ++h)
                for (int w = 0; w < g.w; ++w)
                  src[offset(l, n, c, h, w, C, g.h, g.w)] =
                      values[((n * C + c) * g.h + h) * g.w + w];
              for (int p = 0; p < g.oh; ++p)
                for (int q = 0; q < g.ow; ++q)
                  d_dst[offset(l, n, c, p, q, C, g.oh, g.ow)] =
                      grads[((n * C + c) * g.oh + p) * g.ow + q];
            }
          const auto plan = dnnl_backend::make_pool_plan(sv, dv, g.kernel, g.stride, g.pad_top,
                                                         g.pad_left, relu);
          std::vector<std::uint8_t> positions(dnnl_backend::pool_positions_bytes(plan), 0);
          dnnl_backend::maxpool_forward(plan, src.data(), dst.data(), positions.data());
          dnnl_backend::maxpool_backward(plan, d_dst.data(), positions.data(), d_src.data());
          std::vector<double> expected(std::size_t(N) * C * g.h * g.w, 0.0);
          for (int n = 0; n < N; ++n)
            for (int c = 0; c < C; ++c) {
              const std::vector<float> plane(values.begin() + (n * C + c) * g.h * g.w,
                                             values.begin() + (n * C + c + 1) * g.h * g.w);
              for (int p = 0; p < g.oh; ++p)
                for (int q = 0; q < g.ow; ++q) {
                  const auto [h, w] = first_max(plane, g.h, g.w, p * g.stride - g.pad_top,
                                                q * g.stride - g.pad_left, g.kernel);
                  ASSERT_GE(h, 0);
                  const float max = plane[h * g.w + w];
                  EXPECT_EQ(dst[offset(l, n, c, p, q, C, g.oh, g.ow)], max) << p << "," << q;
                  if (!relu || max > 0.f)
                    expected[((n * C + c) * g.h + h) * g.w + w] +=
                        grads[((n * C + c) * g.oh + p) * g.ow + q];
                }
            }
          for (int n = 0; n < N; ++n)
            for (int c = 0; c < C; ++c)
              for (int h = 0; h < g.h; ++h)
                for (int w = 0; w < g.w; ++w)
                  EXPECT_NEAR(d_src[offset(l, n, c, h, w, C, g.h, g.w)],
                              expected[((n * C + c) * g.h + h) * g.w + w], 1e-6)
                      << h << "," << w;
          EXPECT_TRUE(std::ranges::none_of(dst, [](float v) { return std::isnan(v); }));
          EXPECT_TRUE(std::ranges::none_of(d_src, [](float v) { return std::isnan(v); }));
        }
}

// Windows our kernel does not take are refused by name, not run wrongly: a position must fit a
// byte below kMasked, a pad must be smaller than the window, and every window must reach the
// input.
TEST(DnnlPoolKernel, RefusesWhatItDoesNotTake) {
  EXPECT_TRUE(dnnl_backend::pool_kernel_fits(15, 15, 0, 0, 30, 30, 2, 2));
  EXPECT_FALSE(dnnl_backend::pool_kernel_fits(16, 16, 0, 0, 32, 32, 2, 2));
  EXPECT_FALSE(dnnl_backend::pool_kernel_fits(2, 2, 2, 0, 8, 8, 5, 4));
  EXPECT_FALSE(dnnl_backend::pool_kernel_fits(2, 2, 0, 0, 8, 8, 5, 4));
  const auto v = view(Layout{"nChw16c", 16}, 1, 16, 32, 32);
  EXPECT_THROW(dnnl_backend::make_pool_plan(v, view(Layout{"nChw16c", 16}, 1, 16, 2, 2), 16, 16,
                                            0, 0, false),
               Error);
  EXPECT_THROW(dnnl_backend::make_pool_plan(v, view(Layout{"nChw8c", 8}, 1, 16, 16, 16), 2, 2, 0,
                                            0, false),
               Error);
}

// Both pooling kernels of the dnnl backend against ref (ExecutorOptions::own_maxpool): the op
// cases with a pool and the seed, ours by default and oneDNN's, with what ran checked by name;
// and against each other bit for bit on the seed, output, d_input and gradients (the same
// maxima, the same winners, the ReLU's gradient masked alike).
TEST(DnnlPoolKernel, BothKernelsMatchRefAndEachOther) {
  const ExecutorOptions onednn{.own_maxpool = false};
  for (const Case& c : op_cases())
    if (c.name.starts_with("maxpool")) {
      SCOPED_TRACE(c.name);
      expect_dnnl_parity(c.net, 17, Measure::max_abs, onednn);
    }
  expect_dnnl_parity(seed_net(3), 102, Measure::max_abs, onednn);
  const NetDesc net = seed_net(4);
  auto pool_steps = [&](Executor& e) {
    std::vector<std::string> steps;
    for (const KernelUse& s : e.kernels())
      if (s.op >= 0 && net.ops[s.op].kind == OpKind::maxpool)
        steps.push_back(s.name + ": " + s.impl);
    return steps;
  };
  const auto relu_step = ::testing::StartsWith("ReLU backward of the conv before");
  auto ours = make_executor(Backend::dnnl, net), theirs = make_executor(Backend::dnnl, net, onednn);
  EXPECT_THAT(pool_steps(*ours), ::testing::Each(::testing::HasSubstr(": cae:maxpool:")));
  EXPECT_THAT(pool_steps(*ours), ::testing::Not(::testing::Contains(relu_step)));
  EXPECT_THAT(pool_steps(*theirs), ::testing::Each(::testing::Not(::testing::HasSubstr("cae:"))));
  EXPECT_THAT(pool_steps(*theirs), ::testing::Contains(relu_step).Times(3));
  const auto tensors = random_params(net, 31);
  const auto x = test::random_floats(batch_size(net, net.input), 32, 0.f, 1.f);
  const auto dy = test::random_floats(batch_size(net, net.output()), 33);
  // The params' layouts are the convs' own, the same on both sides: flat gradients compare.
  EXPECT_EQ(one_pass(*ours, net, tensors, x, dy), one_pass(*theirs, net, tensors, x, dy));
}

}  // namespace
}  // namespace cae::ops
