// The backend parity harness: a fast backend against the ref backend on one net, comparing
// everything the Executor exposes (output, every activation, d_input, canonical gradients) from
// the same canonical parameters. Buffers the fast backend writes are poisoned with NaN first, so
// stale data cannot pass. Shared by the oneDNN and CUDA parity tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

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

// Runs `backend` and ref on one net and compares everything the Executor exposes: the forward
// element-wise, the backward by `backward`. `keep`, when given, receives the fast executor after
// its last backward (full gradients in grads()).
inline void expect_parity(Backend backend, const NetDesc& net, std::uint64_t seed,
                          Measure backward = Measure::max_abs,
                          std::unique_ptr<Executor>* keep = nullptr) {
  auto ref = make_executor(Backend::ref, net);
  auto fast = make_executor(backend, net);
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
  for (int k = 0; k < int(net.ops.size()); ++k) {
    std::vector<float> a(batch_size(net, net.ops[k].out), nan_f), b(a.size());
    fast->read_activation(k, a.data());
    ref->read_activation(k, b.data());
    EXPECT_CLOSE(a.data(), b.data(), a.size(), "activation after op " << k);
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

}  // namespace cae::ops::test_nets
