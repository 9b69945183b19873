// Tests generated from the op table (src/ops/op_table.cpp), after ggml's test-backend-ops: for
// every row and every backend, the op alone (lone_op_spec) run against the ref backend within the
// row's `parity` bound, and its gradients against central finite differences within the row's
// `gradient` bound. A new op gets these from its row; nothing here names an op. A backend that
// is not available here (cuda without a GPU) or that the row says has no kernel is skipped, by
// name and reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gradient_check.h"
#include "nn/spec.h"
#include "op_specs.h"
#include "ops/ops.h"
#include "support.h"

namespace cae::ops {
namespace {

constexpr int kBatch = 2;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct RowCase {
  OpKind kind;
  Backend backend;
};

void PrintTo(const RowCase& c, std::ostream* os) {
  *os << op_kind_name(c.kind) << " on " << backend_name(c.backend);
}

std::vector<RowCase> row_cases() {
  std::vector<RowCase> cases;
  for (const OpInfo& info : op_table())
    for (Backend backend : {Backend::ref, Backend::dnnl, Backend::cuda})
      cases.push_back({info.kind, backend});
  return cases;
}

NetDesc lone_op_net(const OpInfo& info) {
  return nn::build_net(nn::parse_spec(test::lone_op_spec(info)), test::kLoneOpInput, kBatch);
}

// max |a - b| over max(1, max |b|): absolute for values up to 1, relative above; infinite where
// either holds a NaN (a cell the backend left unwritten).
double difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

class OpRow : public ::testing::TestWithParam<RowCase> {
 protected:
  // Skips (and says why) where this backend cannot run this row's op here.
  bool runnable() {
    const OpInfo& info = op_info(GetParam().kind);
    const Backend backend = GetParam().backend;
    if (const std::string why = backend_unavailable_reason(backend); !why.empty()) {
      skip_reason_ = std::string(backend_name(backend)) + ": " + why;
      return false;
    }
    if (!info.runs_on(backend)) {
      skip_reason_ = std::string("the row says ") + backend_name(backend) + " has no " +
                     info.name + " kernel (OpTable tests check that it refuses the net)";
      return false;
    }
    return true;
  }
  std::string skip_reason_;
};

TEST_P(OpRow, MatchesTheRefBackendWithinItsRowsBound) {
  const OpInfo& info = op_info(GetParam().kind);
  if (GetParam().backend == Backend::ref) GTEST_SKIP() << "ref is the oracle it is compared with";
  if (!runnable()) GTEST_SKIP() << skip_reason_;
  const NetDesc net = lone_op_net(info);
  auto ref = make_executor(Backend::ref, net);
  auto fast = make_executor(GetParam().backend, net);
  std::vector<std::vector<float>> params;
  std::uint64_t seed = 11;
  for (const ParamInfo& p : param_infos(net))
    params.push_back(test::random_floats(p.size(), seed++, -0.5f, 0.5f));
  ref->from_canonical(params, ref->params());
  fast->from_canonical(params, fast->params());
  const auto x = test::random_floats(std::size_t(kBatch) * net.input.size(), 1, -1.f, 1.f);
  const auto dy = test::random_floats(std::size_t(kBatch) * net.output().size(), 2, -1.f, 1.f);

  std::vector<float> dx_ref(x.size()), dx(x.size(), kNaN);
  ref->forward(x.data());
  ref->backward(dy.data(), dx_ref.data());
  fast->forward(x.data());
  double worst = 0;
  auto compare = [&](const std::vector<float>& a, const std::vector<float>& b,
                     const std::string& what) {
    const double d = difference(a, b);
    worst = std::max(worst, d);
    EXPECT_LE(d, info.parity) << what << " of " << info.name << " on "
                              << backend_name(GetParam().backend);
  };
  for (int k = 0; k < int(net.ops.size()); ++k) {
    std::vector<float> a(std::size_t(kBatch) * net.ops[k].out.size(), kNaN), b(a.size());
    fast->read_activation(k, a.data());
    ref->read_activation(k, b.data());
    compare(a, b, "the output of op " + std::to_string(k));
  }
  std::ranges::fill(fast->grads(), kNaN);
  fast->backward(dy.data(), dx.data());
  compare(dx, dx_ref, "d input");
  const auto grads_ref = ref->to_canonical(ref->grads());
  const auto grads = fast->to_canonical(fast->grads());
  ASSERT_EQ(grads.size(), grads_ref.size());
  const auto infos = param_infos(net);
  for (std::size_t t = 0; t < grads.size(); ++t)
    compare(grads[t], grads_ref[t], "the gradient of op " + std::to_string(infos[t].op) + "'s " +
                                        infos[t].name);
  RecordProperty("worst_difference", std::to_string(worst));
}

TEST_P(OpRow, GradientsMatchFiniteDifferencesWithinItsRowsBound) {
  const OpInfo& info = op_info(GetParam().kind);
  if (!runnable()) GTEST_SKIP() << skip_reason_;
  auto ex = make_executor(GetParam().backend, lone_op_net(info));
  const test::GradCheckResult r =
      test::check_gradients(*ex, 5, {.tolerance = info.gradient, .max_per_tensor = 120});
  for (const std::string& f : r.failures)
    ADD_FAILURE() << info.name << " on " << backend_name(GetParam().backend) << ": " << f;
  const int total = r.checked + r.skipped;
  // A check that skipped most elements would prove nothing. A wide layer's fused ReLU puts many
  // outputs near a kink: a third of a tconv's sampled weights move one across it.
  EXPECT_GE(r.checked, total / 2) << r.skipped << " of " << total << " skipped at kinks";
  EXPECT_GT(r.checked, 0);
  RecordProperty("worst_relative_error", std::to_string(r.worst));
}

std::string case_name(const ::testing::TestParamInfo<RowCase>& p) {
  return std::string(op_kind_name(p.param.kind)) + "_" + backend_name(p.param.backend);
}

INSTANTIATE_TEST_SUITE_P(Rows, OpRow, ::testing::ValuesIn(row_cases()), case_name);

}  // namespace
}  // namespace cae::ops
