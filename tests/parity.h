// The backend parity harness: a fast backend against the ref backend on one net, comparing
// everything the Executor exposes (output, every activation, d_input, canonical gradients) from
// the same canonical parameters. Buffers the fast backend writes are poisoned with NaN first, so
// stale data cannot pass. Shared by the oneDNN and CUDA parity tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "net_builders.h"
#include "ops/ops.h"
#include "support.h"

namespace cae::ops::test_nets {

inline constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

// How two tensors are compared; both give infinity when either holds a NaN (an unwritten
// poisoned cell).
enum class Measure {
  // max |a - b| / max |b| <= 1e-4: every element agrees.
  max_abs,
  // ||a - b||_2 / ||b||_2 <= 1e-2, for gradients behind ReLUs at large batches when a layer runs
  // in Winograd: its rounding differs from the direct sum's (within 1e-4 per layer), so among
  // millions of pre-activations a few within ~1e-7 of zero land on the other side of the ReLU
  // and pass or stop their gradient there. Each such cell moves a whole channel's weight
  // gradient by one term of its sum (seen: 1e-3 of the energy at batch 200); a wrong kernel,
  // layout or stale buffer moves it by the order of itself.
  relative_l2,
};

inline double relative_error(const float* a, const float* b, std::size_t n,
                             Measure measure = Measure::max_abs) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    const double d = std::abs(double(a[i]) - double(b[i])), s = std::abs(double(b[i]));
    if (measure == Measure::max_abs) {
      diff = std::max(diff, d);
      scale = std::max(scale, s);
    } else {
      diff += d * d;
      scale += s * s;
    }
  }
  if (measure == Measure::relative_l2) {
    diff = std::sqrt(diff);
    scale = std::sqrt(scale);
  }
  return scale > 0 ? diff / scale : diff;
}

inline constexpr double tolerance = 1e-4;  // of Measure::max_abs

inline double tolerance_of(Measure measure) {
  return measure == Measure::max_abs ? tolerance : 1e-2;
}

#define EXPECT_CLOSE_BY(a, b, n, measure, what)                   \
  do {                                                            \
    const double err_ = relative_error((a), (b), (n), (measure)); \
    EXPECT_LE(err_, tolerance_of(measure)) << what;               \
  } while (0)
#define EXPECT_CLOSE(a, b, n, what) EXPECT_CLOSE_BY(a, b, n, Measure::max_abs, what)

inline std::size_t batch_size(const NetDesc& net, Dims d) {
  return std::size_t(net.batch) * d.size();
}

// Canonical parameters: Glorot-uniform weights, biases small but non-zero so they matter.
inline std::vector<std::vector<float>> random_params(const NetDesc& net, std::uint64_t seed) {
  std::vector<std::vector<float>> tensors;
  for (const ParamInfo& info : param_infos(net)) {
    const OpDesc& op = net.ops[info.op];
    const float limit = info.name == "weight"
                            ? std::sqrt(6.f / float(op.kernel * op.kernel * (op.in.c + op.out.c)))
                            : 0.2f;
    tensors.push_back(test::random_floats(info.size(), seed++, -limit, limit));
  }
  return tensors;
}

// Cells where exactly one of a (fast) and b (ref), both ReLU outputs, is positive. Each must be
// a value at rounding level, 1e-6 of the tensor's largest, or it is a wrong kernel, not rounding.
inline int relu_flips(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0;
  for (float v : b) scale = std::max(scale, double(std::fabs(v)));
  int flips = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] > 0) != (b[i] > 0)) {
      ++flips;
      EXPECT_LE(std::max(a[i], b[i]), 1e-6 * scale) << "a ReLU output differs by more than "
                                                       "rounding at " << i;
    }
  return flips;
}

// Runs `backend` (built with `options`) and ref on one net and compares everything the Executor
// exposes: the forward element-wise, the backward by `backward`. `keep`, when given, receives the
// fast executor after its last backward (full gradients in grads()).
inline void expect_parity(Backend backend, const NetDesc& net, std::uint64_t seed,
                          Measure backward = Measure::max_abs,
                          std::unique_ptr<Executor>* keep = nullptr,
                          const ExecutorOptions& options = {}) {
  auto ref = make_executor(Backend::ref, net);
  auto fast = make_executor(backend, net, options);
  ASSERT_EQ(fast->params().size(), fast->grads().size());

  const auto tensors = random_params(net, seed);
  ref->from_canonical(tensors, ref->params());
  fast->from_canonical(tensors, fast->params());
  const auto x = test::random_floats(batch_size(net, net.input), seed + 1000, -1.f, 1.f);
  const auto dy = test::random_floats(batch_size(net, net.output()), seed + 2000, -1.f, 1.f);
  const std::size_t n_out = batch_size(net, net.output());

  std::vector<float> dx_ref(x.size());
  ref->forward(x.data());
  ref->backward(dy.data(), dx_ref.data());
  const auto grads_ref = ref->to_canonical(ref->grads());

  // output() is the backend's own buffer; poisoning it through the pointer proves forward()
  // rewrites it.
  std::fill_n(const_cast<float*>(fast->output()), n_out, nan_f);
  fast->forward(x.data());
  EXPECT_CLOSE(fast->output(), ref->output(), n_out, "output");
  int flips = 0;
  for (int k = 0; k < int(net.ops.size()); ++k) {
    std::vector<float> a(batch_size(net, net.ops[k].out), nan_f), b(a.size());
    fast->read_activation(k, a.data());
    ref->read_activation(k, b.data());
    EXPECT_CLOSE(a.data(), b.data(), a.size(), "activation after op " << k);
    const OpDesc& op = net.ops[k];
    if (op.act == Activation::relu || op.kind == OpKind::relu) flips += relu_flips(a, b);
  }
  // A pre-activation within rounding of zero may pass the ReLU on one side only, and then the
  // gradients behind it differ by one term of their sums, beyond an element-wise bar. Each tier
  // rounds differently (one such cell among 5 million at batch 200 on AVX2, at 6.8e-9), so where
  // one is found the gradients are compared by their energy (Measure::relative_l2), saying so.
  if (flips > 0 && backward == Measure::max_abs) {
    std::printf("note: %d pre-activation(s) within rounding of zero crossed the ReLU the other "
                "way; gradients compared by relative L2\n", flips);
    backward = Measure::relative_l2;
  }

  std::vector<float> dx(x.size(), nan_f);
  std::ranges::fill(fast->grads(), nan_f);
  fast->backward(dy.data(), dx.data());
  EXPECT_CLOSE_BY(dx.data(), dx_ref.data(), dx.size(), backward, "d_input");
  auto grads = fast->to_canonical(fast->grads());
  ASSERT_EQ(grads.size(), grads_ref.size());
  for (std::size_t t = 0; t < grads.size(); ++t) {
    ASSERT_EQ(grads[t].size(), grads_ref[t].size());
    EXPECT_CLOSE_BY(grads[t].data(), grads_ref[t].data(), grads[t].size(), backward,
                    "grad tensor " << t);
  }

  // The training path: no d_input, the same gradients again. backward() may have written over
  // activations (Executor contract), so forward first.
  std::ranges::fill(fast->grads(), nan_f);
  fast->forward(x.data());
  fast->backward(dy.data(), nullptr);
  grads = fast->to_canonical(fast->grads());
  for (std::size_t t = 0; t < grads.size(); ++t)
    EXPECT_CLOSE_BY(grads[t].data(), grads_ref[t].data(), grads[t].size(), backward,
                    "grad tensor " << t << " without d_input");
  if (keep) *keep = std::move(fast);
}

// A named net of a parameterised parity test.
struct Case {
  std::string name;
  NetDesc net;
};

inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Convolutions and transposed convolutions both backends' op-by-op tests run: 'same' (also
// asymmetric) and 'valid' padding, strides, kernels 1-5, each activation, with and without bias,
// thin and wide channel counts; transposed convs with IOHW weights, 4 -> 7 and 'same'. Each test
// adds its own cases.
inline std::vector<Case> shared_op_cases() {
  using A = Activation;
  std::vector<Case> cases;
  auto add = [&](std::string name, NetDesc net) { cases.push_back({std::move(name), net}); };
  add("conv_1to32_same_relu", chain(3, {1, 28, 28}, {conv({1, 28, 28}, 32, 3, 1, true, A::relu)}));
  add("conv_32to32_same_relu",
      chain(3, {32, 14, 14}, {conv({32, 14, 14}, 32, 3, 1, true, A::relu)}));
  add("conv_32to1_same_none", chain(3, {32, 28, 28}, {conv({32, 28, 28}, 1, 3, 1, true, A::none)}));
  add("conv_3to5_same_sigmoid", chain(3, {3, 9, 9}, {conv({3, 9, 9}, 5, 3, 1, true, A::sigmoid)}));
  add("conv_5to3_k5_s2_same_nobias",
      chain(3, {5, 11, 11}, {conv({5, 11, 11}, 3, 5, 2, true, A::none, false)}));
  add("conv_1to1_s2_same", chain(3, {1, 8, 8}, {conv({1, 8, 8}, 1, 3, 2, true, A::none)}));
  add("conv_16to16_k1_valid_relu",
      chain(3, {16, 7, 7}, {conv({16, 7, 7}, 16, 1, 1, false, A::relu)}));
  add("conv_3to16_s2_valid_relu",
      chain(3, {3, 10, 10}, {conv({3, 10, 10}, 16, 3, 2, false, A::relu)}));
  add("tconv_16to32_same_relu", chain(3, {16, 7, 7}, {tconv_same({16, 7, 7}, 32, 3, 2, A::relu)}));
  add("tconv_3to5_same", chain(3, {3, 4, 4}, {tconv_same({3, 4, 4}, 5, 3, 2, A::none)}));
  add("tconv_1to16_same_sigmoid_nobias",
      chain(3, {1, 5, 5}, {tconv_same({1, 5, 5}, 16, 3, 2, A::sigmoid, false)}));
  add("tconv_16to16_4to7",
      chain(3, {16, 4, 4}, {tconv({16, 4, 4}, 16, 3, 2, {1, 1}, {1, 1}, A::relu)}));
  // Joins (skip connections): blocked operands in whole blocks, a channel-padded operand (both
  // reordered to nchw on the dnnl backend), the plain input joined to a blocked activation, add and
  // sub, and one activation read by two joins and by the pool after it.
  {
    const OpDesc a = conv({3, 8, 8}, 16, 3, 1, true, A::relu),
                 b = conv(a.out, 16, 3, 1, true, A::none);
    add("concat_blocked", chain(3, a.in,
                                {a, b, join(OpKind::concat, b.out, 0, a.out),
                                 conv({32, 8, 8}, 3, 3, 1, true, A::none)}));
    const OpDesc c = conv({3, 6, 6}, 5, 3, 1, true, A::relu),
                 d = conv(c.out, 3, 1, 1, true, A::none);
    add("concat_channel_padded", chain(2, c.in,
                                       {c, d, join(OpKind::concat, d.out, 0, c.out),
                                        conv({8, 6, 6}, 3, 3, 1, true, A::none)}));
    const OpDesc e = conv({1, 7, 7}, 32, 3, 1, true, A::relu),
                 f = conv(e.out, 32, 3, 1, true, A::relu);
    add("concat_input_after_blocked", chain(2, e.in,
                                            {e, f, join(OpKind::concat, f.out, -1, e.in),
                                             conv({33, 7, 7}, 1, 3, 1, true, A::none)}));
    add("add_skip",
        chain(3, a.in,
              {a, b, join(OpKind::add, b.out, 0, a.out), conv(b.out, 3, 3, 1, true, A::none)}));
    const OpDesc g = conv({1, 9, 9}, 16, 3, 1, true, A::relu),
                 h = conv(g.out, 1, 3, 1, true, A::none);
    add("sub_input_last", chain(3, g.in, {g, h, join(OpKind::sub, h.out, -1, g.in)}));
    const OpDesc p = maxpool_same(a.out), q = conv(p.out, 16, 3, 1, true, A::relu),
                 r = resize(q.out, 8, 8);
    const OpDesc cat = join(OpKind::concat, r.out, 0, a.out),
                 s2 = conv(cat.out, 16, 3, 1, true, A::none);
    add("two_joins_read_a_pooled_activation",
        chain(2, a.in,
              {a, p, q, r, cat, s2, join(OpKind::add, s2.out, 0, a.out),
               conv(a.out, 3, 3, 1, true, A::none)}));
  }
  return cases;
}

}  // namespace cae::ops::test_nets
