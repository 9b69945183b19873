// The Winograd F(2x2, 3x3) and F(4x4, 3x3) kernels (src/ops/dnnl/winograd.h) against a naive 'same' 3x3
// convolution written here, in double, on several sizes (odd ones leave partial tiles), channel
// counts and thread counts; a central-difference check of the gradients; bitwise repeatability.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/isa.h"
#include "ops/dnnl/winograd.h"
#include "support.h"

namespace cae::ops::dnnl_backend {
namespace {

using test::from_blocked;
using test::to_blocked;

struct Case {
  int n, c, k, h, w;
  bool relu, bias;
  int threads;
  int tile = 2;
  int lanes = 8;  // 8: the AVX2 code, 16: the AVX-512 code
};

std::ostream& operator<<(std::ostream& os, const Case& k) {
  return os << "n" << k.n << " " << k.c << "->" << k.k << " " << k.h << "x" << k.w
            << (k.relu ? " relu" : "") << (k.bias ? " bias" : "") << " t" << k.threads << " F("
            << k.tile << "x" << k.tile << ") " << k.lanes << " lanes";
}

// The 'same' 3x3 conv in NCHW / OIHW, in double: y, and the gradients of sum(y * dy).
struct Naive {
  Case k;
  std::vector<float> forward(const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& b) const {
    std::vector<float> y(std::size_t(k.n) * k.k * k.h * k.w);
    for (int n = 0; n < k.n; ++n)
      for (int o = 0; o < k.k; ++o)
        for (int oy = 0; oy < k.h; ++oy)
          for (int ox = 0; ox < k.w; ++ox) {
            double s = k.bias ? b[o] : 0.0;
            for (int i = 0; i < k.c; ++i)
              for (int a = 0; a < 3; ++a)
                for (int q = 0; q < 3; ++q) {
                  const int iy = oy + a - 1, ix = ox + q - 1;
                  if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                  s += double(w[((o * k.c + i) * 3 + a) * 3 + q]) *
                       x[((std::size_t(n) * k.c + i) * k.h + iy) * k.w + ix];
                }
            y[((std::size_t(n) * k.k + o) * k.h + oy) * k.w + ox] =
                k.relu ? float(std::max(s, 0.0)) : float(s);
          }
    return y;
  }
  void backward(const std::vector<float>& x, const std::vector<float>& w,
                const std::vector<float>& dy, std::vector<float>& dx, std::vector<float>& dw,
                std::vector<float>& db) const {
    std::vector<double> ddx(x.size()), ddw(w.size()), ddb(k.k);
    for (int n = 0; n < k.n; ++n)
      for (int o = 0; o < k.k; ++o)
        for (int oy = 0; oy < k.h; ++oy)
          for (int ox = 0; ox < k.w; ++ox) {
            const double d = dy[((std::size_t(n) * k.k + o) * k.h + oy) * k.w + ox];
            ddb[o] += d;
            for (int i = 0; i < k.c; ++i)
              for (int a = 0; a < 3; ++a)
                for (int q = 0; q < 3; ++q) {
                  const int iy = oy + a - 1, ix = ox + q - 1;
                  if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                  const std::size_t xi = ((std::size_t(n) * k.c + i) * k.h + iy) * k.w + ix;
                  const std::size_t wi = ((o * k.c + i) * 3 + a) * 3 + q;
                  ddx[xi] += d * w[wi];
                  ddw[wi] += d * x[xi];
                }
          }
    dx.assign(ddx.begin(), ddx.end());
    dw.assign(ddw.begin(), ddw.end());
    db.assign(ddb.begin(), ddb.end());
  }
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1e-6;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << " at " << i;
}

WinogradGeom geom(const Case& k) { return {k.n, k.c, k.k, k.h, k.w, k.relu, k.tile, k.lanes}; }

// The tier whose code the case runs, or a reason to skip it here.
std::string missing_tier(const Case& k) {
  const Isa need = k.lanes == 16 ? Isa::avx512 : Isa::avx2;
  if (need <= cpu_isa()) return "";
  return std::string("the ") + isa_name(need) + " code cannot run here: " + isa_description();
}
// F(4x4)'s transform coefficients round (4, 5, 1/6, 1/24, ...); F(2x2)'s are exact.
double tolerance(const Case& k) { return k.tile == 2 ? 1e-6 : 1e-5; }

class Winograd : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (const std::string why = missing_tier(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(Winograd, MatchesNaiveConvolution) {
  const Case& k = GetParam();
  omp_set_num_threads(k.threads);
  const Naive ref{k};
  const auto x = test::random_floats(std::size_t(k.n) * k.c * k.h * k.w, 1);
  const auto w = test::random_floats(std::size_t(k.k) * k.c * 9, 2, -0.3f, 0.3f);
  const auto b = test::random_floats(k.k, 3, -0.3f, 0.3f);
  const auto y_ref = ref.forward(x, w, b);
  const auto dy = test::random_floats(y_ref.size(), 4);
  std::vector<float> dx_ref, dw_ref, db_ref;
  ref.backward(x, w, dy, dx_ref, dw_ref, db_ref);

  WinogradPlan plan = make_winograd_plan(geom(k));
  const float nan = std::nanf("");
  const int L = k.lanes;
  const auto xb = to_blocked(x, k.n, k.c, k.h, k.w, L), dyb = to_blocked(dy, k.n, k.k, k.h, k.w, L);
  std::vector<float> y(y_ref.size(), nan), dx(x.size(), nan), dw(w.size(), nan), db(k.k, nan);
  winograd_forward(plan, xb.data(), w.data(), k.bias ? b.data() : nullptr, y.data());
  EXPECT_EQ(winograd_impl(plan), "cae:winograd_" + std::to_string(k.tile) + "x3:" +
                                     (L == 16 ? "avx512" : "avx2"));
  expect_close(from_blocked(y, k.n, k.k, k.h, k.w, L), y_ref, tolerance(k), "y");
  winograd_backward_data(plan, dyb.data(), w.data(), dx.data());
  expect_close(from_blocked(dx, k.n, k.c, k.h, k.w, L), dx_ref, tolerance(k), "dx");
  winograd_backward_weights(plan, xb.data(), dyb.data(), dw.data(), db.data());
  expect_close(dw, dw_ref, tolerance(k), "dw");
  expect_close(db, db_ref, tolerance(k), "db");
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (int lanes : {8, 16})
    for (int tile : {2, 4})
      for (int threads : {1, 2}) {
        const int u = lanes;  // channel counts in whole blocks of either width
        v.push_back({2, 32, 32, 28, 28, true, true, threads, tile, lanes});  // the seed's widest
        v.push_back({3, 16, 32, 14, 14, true, true, threads, tile, lanes});  // decoder's 14x14
        v.push_back({1, u, 2 * u, 7, 7, false, true, threads, tile, lanes});  // partial tiles
        v.push_back({2, 3 * u, u, 5, 9, true, false, threads, tile, lanes});  // 3 blocks in
        v.push_back({1, u, u, 2, 3, false, false, threads, tile, lanes});     // one tile row
        v.push_back({7, u, 5 * u, 3, 3, false, true, threads, tile, lanes});  // 5 blocks out
        v.push_back({1, 16, 16, 10, 13, true, true, threads, tile, lanes});   // partial 4x4
      }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Geometries, Winograd, ::testing::ValuesIn(cases()));

// Central differences of sum(y * r) against the kernels' gradients.
class WinogradGradient : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(WinogradGradient, MatchesFiniteDifferences) {
  const auto [tile, lanes] = GetParam();
  const Case k{2, lanes, 2 * lanes, 5, 6, false, true, 2, tile, lanes};  // no ReLU: smooth
  if (const std::string why = missing_tier(k); !why.empty()) GTEST_SKIP() << why;
  omp_set_num_threads(2);
  WinogradPlan plan = make_winograd_plan(geom(k));
  auto x = test::random_floats(std::size_t(k.n) * k.c * k.h * k.w, 11);
  auto w = test::random_floats(std::size_t(k.k) * k.c * 9, 12);
  auto b = test::random_floats(k.k, 13);
  const auto r = test::random_floats(std::size_t(k.n) * k.k * k.h * k.w, 14);
  auto loss = [&] {
    std::vector<float> y(r.size());
    winograd_forward(plan, x.data(), w.data(), b.data(), y.data());
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += double(y[i]) * r[i];
    return s;
  };
  std::vector<float> dx(x.size()), dw(w.size()), db(b.size());
  winograd_backward_data(plan, r.data(), w.data(), dx.data());
  winograd_backward_weights(plan, x.data(), r.data(), dw.data(), db.data());
  auto check = [&](std::vector<float>& v, const std::vector<float>& grad, const char* what) {
    for (std::size_t i = 0; i < v.size(); i += 5) {
      // The loss is linear in each value (no ReLU): any step is exact up to rounding, and a
      // large one keeps F(4x4)'s rounding of the sums small next to the difference.
      const float keep = v[i], h = 0.25f;
      v[i] = keep + h;
      const double up = loss();
      v[i] = keep - h;
      const double down = loss();
      v[i] = keep;
      EXPECT_NEAR((up - down) / (2 * h), grad[i], 2e-3 * (1 + std::fabs(grad[i]))) << what << i;
    }
  };
  check(w, dw, "dw ");
  check(b, db, "db ");
  check(x, dx, "dx ");
}

INSTANTIATE_TEST_SUITE_P(TilesAndLanes, WinogradGradient,
                         ::testing::Values(std::pair{2, 8}, std::pair{4, 8}, std::pair{2, 16},
                                           std::pair{4, 16}));

TEST(Winograd, RepeatsBitwiseAndRefusesWhatItCannotRun) {
  if (cpu_isa() < Isa::avx2) GTEST_SKIP() << "no AVX2 here: " << isa_description();
  omp_set_num_threads(2);
  const WinogradGeom g{5, 32, 32, 28, 28, false, 4, 8};
  WinogradPlan plan = make_winograd_plan(g);
  const auto x = test::random_floats(std::size_t(5) * 32 * 784, 21);
  const auto dy = test::random_floats(x.size(), 22);
  const auto w = test::random_floats(32 * 32 * 9, 23);
  std::vector<float> dw1(w.size()), dw2(w.size()), db1(32), db2(32), dx1(x.size()), dx2(x.size());
  winograd_backward_weights(plan, x.data(), dy.data(), dw1.data(), db1.data());
  winograd_backward_weights(plan, x.data(), dy.data(), dw2.data(), db2.data());
  winograd_backward_data(plan, dy.data(), w.data(), dx1.data());
  winograd_backward_data(plan, dy.data(), w.data(), dx2.data());
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(db1, db2);
  EXPECT_EQ(dx1, dx2);
  // The transformed weights are kept between passes: a change of one weight must show, in both
  // passes, exactly as in a fresh plan.
  std::vector<float> y1(x.size()), y2(x.size());
  winograd_forward(plan, x.data(), w.data(), nullptr, y1.data());
  auto w2 = w;
  w2[100] += 0.5f;
  winograd_forward(plan, x.data(), w2.data(), nullptr, y1.data());
  winograd_backward_data(plan, dy.data(), w2.data(), dx1.data());
  WinogradPlan fresh = make_winograd_plan(g);
  winograd_forward(fresh, x.data(), w2.data(), nullptr, y2.data());
  winograd_backward_data(fresh, dy.data(), w2.data(), dx2.data());
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(dx1, dx2);
  WinogradGeom bad = g;
  bad.c = 12;  // not whole 8-channel blocks
  EXPECT_FALSE(winograd_supported(bad));
  bad = g;
  bad.h = 1;
  EXPECT_FALSE(winograd_supported(bad));
  bad = g;
  bad.tile = 3;
  EXPECT_FALSE(winograd_supported(bad));
  bad = g;
  bad.lanes = 4;
  EXPECT_FALSE(winograd_supported(bad));
  bad = g;
  bad.lanes = 16;
  EXPECT_EQ(winograd_supported(bad), cpu_isa() >= Isa::avx512);
  bad.c = 24;  // not whole 16-channel blocks
  EXPECT_FALSE(winograd_supported(bad));
}

}  // namespace
}  // namespace cae::ops::dnnl_backend
