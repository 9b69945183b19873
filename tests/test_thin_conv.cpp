// The direct kernels for thin convolutions (src/ops/dnnl/thin_conv.h) against a naive NCHW
// convolution written here, on several geometries, thread counts and with/without ReLU and bias;
// a central-difference check of their gradients; bitwise repeatability; and the whole seed net
// with the direct kernels against the same net with oneDNN's kernels (thin_convs false).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <ostream>
#include <vector>

#include "cae/error.h"
#include "core/isa.h"
#include "nn/spec.h"
#include "ops/dnnl/thin_conv.h"
#include "ops/ops.h"
#include "support.h"

namespace cae::ops::dnnl_backend {
namespace {

// A conv in canonical form: x [n][ci][h][w], weights OIHW, y [n][co][oh][ow].
struct Naive {
  int n, ci, co, h, w, oh, ow, k, pt, pl;
  bool relu;
  std::vector<float> forward(const std::vector<float>& x, const std::vector<float>& wt,
                             const std::vector<float>* b) const {
    std::vector<float> y(std::size_t(n) * co * oh * ow);
    for (int b_ = 0; b_ < n; ++b_)
      for (int o = 0; o < co; ++o)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox) {
            double s = b ? (*b)[o] : 0.0;
            for (int i = 0; i < ci; ++i)
              for (int kh = 0; kh < k; ++kh)
                for (int kw = 0; kw < k; ++kw) {
                  const int iy = oy - pt + kh, ix = ox - pl + kw;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  s += double(wt[((o * ci + i) * k + kh) * k + kw]) *
                       x[((std::size_t(b_) * ci + i) * h + iy) * w + ix];
                }
            y[((std::size_t(b_) * co + o) * oh + oy) * ow + ox] =
                relu ? float(std::max(s, 0.0)) : float(s);
          }
    return y;
  }
  // Gradients of sum(y * dy): dx, dw (OIHW), db.
  void backward(const std::vector<float>& x, const std::vector<float>& wt,
                const std::vector<float>& y, const std::vector<float>& dy, std::vector<float>& dx,
                std::vector<float>& dw, std::vector<float>& db) const {
    dx.assign(x.size(), 0.f);
    dw.assign(wt.size(), 0.f);
    db.assign(co, 0.f);
    std::vector<double> ddx(x.size(), 0.0), ddw(wt.size(), 0.0), ddb(co, 0.0);
    for (int b_ = 0; b_ < n; ++b_)
      for (int o = 0; o < co; ++o)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox) {
            const std::size_t at = ((std::size_t(b_) * co + o) * oh + oy) * ow + ox;
            const double d = relu && !(y[at] > 0.f) ? 0.0 : dy[at];
            ddb[o] += d;
            for (int i = 0; i < ci; ++i)
              for (int kh = 0; kh < k; ++kh)
                for (int kw = 0; kw < k; ++kw) {
                  const int iy = oy - pt + kh, ix = ox - pl + kw;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  const std::size_t xi = ((std::size_t(b_) * ci + i) * h + iy) * w + ix;
                  const std::size_t wi = ((o * ci + i) * k + kh) * k + kw;
                  ddw[wi] += d * x[xi];
                  ddx[xi] += d * wt[wi];
                }
          }
    for (std::size_t i = 0; i < ddx.size(); ++i) dx[i] = float(ddx[i]);
    for (std::size_t i = 0; i < ddw.size(); ++i) dw[i] = float(ddw[i]);
    for (int o = 0; o < co; ++o) db[o] = float(ddb[o]);
  }
};

using test::from_blocked;
using test::to_blocked;

// Every tier's code runs in every test where the CPU (and CAE_MAX_ISA) allow it; the others are
// skipped, saying so.
const Isa kTiers[] = {Isa::baseline, Isa::avx2, Isa::avx512};

#define SKIP_ABOVE_CPU(tier)                                                               \
  if ((tier) > cpu_isa())                                                                   \
  GTEST_SKIP() << "the " << isa_name(tier) << " code cannot run here: " << isa_description()

// A plan for `tier`'s code on g (lanes set to the tier's).
ThinConvPlan plan_for(ThinConvGeom g, Isa tier) {
  g.lanes = thin_conv_lanes(tier);
  return make_thin_conv_plan(g, tier);
}
// OIHW with one side 1 <-> [kh][kw][c].
std::vector<float> to_taps(const std::vector<float>& oihw, int c, int k) {
  std::vector<float> t(oihw.size());
  for (int ch = 0; ch < c; ++ch)
    for (int tap = 0; tap < k * k; ++tap) t[tap * c + ch] = oihw[ch * k * k + tap];
  return t;
}
std::vector<float> from_taps(const std::vector<float>& t, int c, int k) {
  std::vector<float> oihw(t.size());
  for (int ch = 0; ch < c; ++ch)
    for (int tap = 0; tap < k * k; ++tap) oihw[ch * k * k + tap] = t[tap * c + ch];
  return oihw;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1e-6;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << " at " << i;
}

struct Case {
  bool widen;
  int n, c, h, w, pt, pb, pl, pr;
  bool relu, bias;
  int threads;
  Isa tier = Isa::baseline;
};

std::ostream& operator<<(std::ostream& os, const Case& k) {
  return os << (k.widen ? "widen" : "narrow") << " n" << k.n << " c" << k.c << " " << k.h << "x"
            << k.w << " pad" << k.pt << k.pb << k.pl << k.pr << (k.relu ? " relu" : "")
            << (k.bias ? " bias" : "") << " t" << k.threads << " " << isa_name(k.tier);
}

class ThinConv : public ::testing::TestWithParam<Case> {};

TEST_P(ThinConv, MatchesNaiveConvolution) {
  const Case& k = GetParam();
  SKIP_ABOVE_CPU(k.tier);
  const int L = thin_conv_lanes(k.tier);
  if (k.c % L != 0) GTEST_SKIP() << k.c << " channels are not whole " << L << "-lane blocks";
  omp_set_num_threads(k.threads);
  ThinConvGeom g;
  g.lanes = L;
  g.n = k.n;
  g.c = k.c;
  g.h = k.h;
  g.w = k.w;
  g.k = 3;
  g.pad_top = k.pt;
  g.pad_left = k.pl;
  g.oh = k.h + k.pt + k.pb - 2;
  g.ow = k.w + k.pl + k.pr - 2;
  g.relu = k.relu;
  ASSERT_TRUE(thin_conv_supported(g));
  const int ci = k.widen ? 1 : k.c, co = k.widen ? k.c : 1;
  const Naive ref{k.n, ci, co, k.h, k.w, g.oh, g.ow, 3, k.pt, k.pl, k.relu};
  const auto x = test::random_floats(std::size_t(k.n) * ci * k.h * k.w, 1);
  const auto wt = test::random_floats(std::size_t(co) * ci * 9, 2);
  const auto b = test::random_floats(co, 3, -0.3f, 0.3f);
  const auto y_ref = ref.forward(x, wt, k.bias ? &b : nullptr);
  const auto dy = test::random_floats(y_ref.size(), 4);
  std::vector<float> dx_ref, dw_ref, db_ref;
  ref.backward(x, wt, y_ref, dy, dx_ref, dw_ref, db_ref);

  ThinConvPlan plan = make_thin_conv_plan(g, k.tier);
  EXPECT_EQ(thin_conv_impl(plan), std::string("cae:thin_conv:") + isa_name(k.tier));
  const auto taps = to_taps(wt, k.c, 3);
  const float* bias = k.bias ? b.data() : nullptr;
  const float nan = std::nanf("");
  std::vector<float> y(y_ref.size(), nan), dw(taps.size(), nan), db(co, nan), dx(x.size(), nan);
  if (k.widen) {
    widen_forward(plan, x.data(), taps.data(), bias, y.data());
    expect_close(from_blocked(y, k.n, k.c, g.oh, g.ow, L), y_ref, 1e-5, "y");
    auto dy_blocked = to_blocked(dy, k.n, k.c, g.oh, g.ow, L);
    widen_backward_weights(plan, x.data(), y.data(), dy_blocked.data(), dw.data(), db.data());
    widen_backward_data(plan, dy_blocked.data(), taps.data(), dx.data());
    expect_close(dx, dx_ref, 1e-5, "dx");
  } else {
    const auto xb = to_blocked(x, k.n, k.c, k.h, k.w, L);
    narrow_forward(plan, xb.data(), taps.data(), bias, y.data());
    expect_close(y, y_ref, 1e-5, "y");
    narrow_backward(plan, xb.data(), y.data(), dy.data(), taps.data(), dx.data(), dw.data(),
                    db.data());
    expect_close(from_blocked(dx, k.n, k.c, k.h, k.w, L), dx_ref, 1e-5, "dx");
  }
  expect_close(from_taps(dw, k.c, 3), dw_ref, 1e-5, "dw");
  if (k.widen)
    expect_close(db, db_ref, 1e-5, "db");
  else
    expect_close({db[0]}, {db_ref[0]}, 1e-5, "db");
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (Isa tier : kTiers)
    for (bool widen : {true, false})
      for (int threads : {1, 2}) {
        v.push_back({widen, 3, 32, 28, 28, 1, 1, 1, 1, true, true, threads, tier});  // the seed's
        v.push_back({widen, 2, 16, 5, 7, 1, 1, 1, 1, false, true, threads, tier});   // odd sizes
        v.push_back({widen, 1, 48, 9, 6, 0, 0, 0, 0, true, false, threads, tier});   // 'valid'
        v.push_back({widen, 2, 16, 4, 11, 2, 0, 0, 2, false, false, threads, tier}); // lopsided
        v.push_back({widen, 1, 32, 1, 1, 1, 1, 1, 1, true, true, threads, tier});    // one pixel
        v.push_back({widen, 2, 24, 6, 5, 1, 1, 1, 1, true, true, threads, tier});    // 3 x 8 lanes
      }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Geometries, ThinConv, ::testing::ValuesIn(cases()));

// Central differences of L = sum(y * r) against the kernels' gradients, for both directions.
class ThinConvGradient : public ::testing::TestWithParam<Isa> {};

TEST_P(ThinConvGradient, MatchesFiniteDifferences) {
  SKIP_ABOVE_CPU(GetParam());
  omp_set_num_threads(2);
  for (bool widen : {true, false}) {
    ThinConvGeom g;
    g.n = 2;
    g.c = 16;
    g.h = g.oh = 5;
    g.w = g.ow = 6;
    g.pad_top = g.pad_left = 1;
    g.relu = false;  // smooth, so central differences are exact up to rounding
    ThinConvPlan plan = plan_for(g, GetParam());
    const std::size_t wide = std::size_t(g.n) * g.c * g.h * g.w, thin = std::size_t(g.n) * g.h * g.w;
    auto x = test::random_floats(widen ? thin : wide, 11);
    auto w = test::random_floats(9 * g.c, 12);
    auto b = test::random_floats(widen ? g.c : 1, 13);
    const auto r = test::random_floats(widen ? wide : thin, 14);
    auto loss = [&] {
      std::vector<float> y(r.size());
      (widen ? widen_forward : narrow_forward)(plan, x.data(), w.data(), b.data(), y.data());
      double s = 0;
      for (std::size_t i = 0; i < y.size(); ++i) s += double(y[i]) * r[i];
      return s;
    };
    std::vector<float> y(r.size()), dw(w.size()), db(b.size()), dx(x.size()), rr = r;
    if (widen) {
      widen_forward(plan, x.data(), w.data(), b.data(), y.data());
      widen_backward_weights(plan, x.data(), y.data(), rr.data(), dw.data(), db.data());
      widen_backward_data(plan, rr.data(), w.data(), dx.data());
    } else {
      narrow_forward(plan, x.data(), w.data(), b.data(), y.data());
      narrow_backward(plan, x.data(), y.data(), r.data(), w.data(), dx.data(), dw.data(), db.data());
    }
    auto check = [&](std::vector<float>& v, const std::vector<float>& grad, const char* what) {
      for (std::size_t i = 0; i < v.size(); i += 7) {
        const float keep = v[i], h = 1e-2f;
        v[i] = keep + h;
        const double up = loss();
        v[i] = keep - h;
        const double down = loss();
        v[i] = keep;
        EXPECT_NEAR((up - down) / (2 * h), grad[i], 2e-3 * (1 + std::fabs(grad[i])))
            << (widen ? "widen " : "narrow ") << what << " " << i;
      }
    };
    check(w, dw, "dw");
    check(b, db, "db");
    check(x, dx, "dx");
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, ThinConvGradient, ::testing::ValuesIn(kTiers),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

class ThinConvTier : public ::testing::TestWithParam<Isa> {};

TEST_P(ThinConvTier, RepeatsBitwiseAndRefusesWhatItCannotRun) {
  const Isa tier = GetParam();
  SKIP_ABOVE_CPU(tier);
  omp_set_num_threads(2);
  ThinConvGeom g;
  g.n = 5;
  g.c = 32;
  g.h = g.oh = g.w = g.ow = 28;
  g.pad_top = g.pad_left = 1;
  g.relu = false;
  g.lanes = thin_conv_lanes(tier);
  ThinConvPlan plan = make_thin_conv_plan(g, tier);
  const auto x = test::random_floats(std::size_t(g.n) * g.c * 784, 21);
  const auto w = test::random_floats(9 * 32, 22);
  const auto dy = test::random_floats(std::size_t(g.n) * 784, 23);
  std::vector<float> dw1(w.size()), dw2(w.size()), dx1(x.size()), dx2(x.size()), db1(1), db2(1);
  narrow_backward(plan, x.data(), nullptr, dy.data(), w.data(), dx1.data(), dw1.data(), db1.data());
  narrow_backward(plan, x.data(), nullptr, dy.data(), w.data(), dx2.data(), dw2.data(), db2.data());
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(dx1, dx2);
  EXPECT_EQ(db1, db2);

  ThinConvGeom bad = g;
  bad.c = g.lanes * 3 / 2;  // not whole blocks
  EXPECT_FALSE(thin_conv_supported(bad));
  bad = g;
  bad.lanes = 4;  // no code for 4-lane blocks
  EXPECT_FALSE(thin_conv_supported(bad));
  bad = g;
  bad.k = 5;
  EXPECT_FALSE(thin_conv_supported(bad));
  bad = g;
  bad.pad_left = 3;
  EXPECT_FALSE(thin_conv_supported(bad));
  // A tier above what runs here, or with another lane count, is refused with a message.
  if (cpu_isa() < Isa::avx512) {
    ThinConvGeom wide = g;
    wide.lanes = 16;
    EXPECT_FALSE(thin_conv_supported(wide));
    EXPECT_THROW(make_thin_conv_plan(wide, Isa::avx512), Error);
  }
  EXPECT_THROW(make_thin_conv_plan(g, tier == Isa::avx512 ? Isa::avx2 : Isa::avx512), Error);
}

INSTANTIATE_TEST_SUITE_P(Tiers, ThinConvTier, ::testing::ValuesIn(kTiers),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace cae::ops::dnnl_backend

namespace cae::ops {
namespace {

void expect_close_net(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  double scale = 1e-9;
  for (float v : b) scale = std::max(scale, double(std::fabs(v)));
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4 * scale) << i;
}

// The seed net with the direct thin kernels and with oneDNN's, from the same parameters. The
// wide layers stay direct on both sides: Winograd's rounding differs from the direct sum's, and
// one pre-activation crossing a ReLU the other way would move every gradient behind it.
TEST(ThinConvInNet, SeedNetAgreesWithOneDnnKernels) {
  omp_set_num_threads(2);
  const NetDesc net = nn::build_net(nn::parse_spec(nn::preset_spec("seed")), {1, 28, 28}, 4);
  const auto wide_direct = ExecutorOptions::Winograd::off;
  auto direct = make_executor(Backend::dnnl, net, {.winograd = wide_direct});
  auto onednn = make_executor(Backend::dnnl, net, {.winograd = wide_direct, .thin_convs = false});
  std::vector<std::vector<float>> params;
  std::uint64_t seed = 30;
  for (const ParamInfo& p : param_infos(net))
    params.push_back(test::random_floats(p.size(), seed++, -0.2f, 0.2f));
  direct->from_canonical(params, direct->params());
  onednn->from_canonical(params, onednn->params());
  const auto x = test::random_floats(std::size_t(4) * 784, 40, 0.f, 1.f);
  const auto dy = test::random_floats(std::size_t(4) * 784, 41, -1e-3f, 1e-3f);
  std::vector<float> dx1(x.size()), dx2(x.size());
  direct->forward(x.data());
  onednn->forward(x.data());
  const std::vector<float> y1(direct->output(), direct->output() + x.size());
  const std::vector<float> y2(onednn->output(), onednn->output() + x.size());
  expect_close_net(y1, y2);
  direct->backward(dy.data(), dx1.data());
  onednn->backward(dy.data(), dx2.data());
  expect_close_net(dx1, dx2);
  const auto g1 = direct->to_canonical(direct->grads()), g2 = onednn->to_canonical(onednn->grads());
  ASSERT_EQ(g1.size(), g2.size());
  for (std::size_t i = 0; i < g1.size(); ++i) expect_close_net(g1[i], g2[i]);
}

}  // namespace
}  // namespace cae::ops
