#include "train/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "cae/error.h"

namespace cae::train {

double mse(const float* a, const float* b, std::size_t n) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    sum += d * d;
  }
  return sum / double(n);
}

double psnr(double mse) { return 10.0 * std::log10(1.0 / std::max(mse, 1e-10)); }

double image_bce(const float* p, const float* z, std::size_t n) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double q = std::clamp(double(p[i]), 1e-7, 1 - 1e-7);
    sum -= z[i] * std::log(q) + (1 - z[i]) * std::log1p(-q);
  }
  return sum / double(n);
}

namespace {

constexpr int kWin = 11;

std::array<double, kWin> make_window() {
  std::array<double, kWin> g{};
  double sum = 0;
  for (int i = 0; i < kWin; ++i) {
    const double d = i - kWin / 2;
    g[i] = std::exp(-d * d / (2 * 1.5 * 1.5));
    sum += g[i];
  }
  for (double& v : g) v /= sum;
  return g;
}

const std::array<double, kWin> kWindow = make_window();

// The 'valid' separable Gaussian filter of an h×w plane: (h − 10)×(w − 10) values.
void filter_valid(const std::vector<double>& in, int h, int w, std::vector<double>& tmp,
                  std::vector<double>& out) {
  const int oh = h - kWin + 1, ow = w - kWin + 1;
  tmp.assign(std::size_t(h) * ow, 0.0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < ow; ++x) {
      double s = 0;
      for (int k = 0; k < kWin; ++k) s += kWindow[k] * in[std::size_t(y) * w + x + k];
      tmp[std::size_t(y) * ow + x] = s;
    }
  out.assign(std::size_t(oh) * ow, 0.0);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x) {
      double s = 0;
      for (int k = 0; k < kWin; ++k) s += kWindow[k] * tmp[std::size_t(y + k) * ow + x];
      out[std::size_t(y) * ow + x] = s;
    }
}

}  // namespace

double checkerboard(const float* x, ops::Dims d) {
  if (d.h < 2 || d.w < 2) throw Error("checkerboard measure needs images of at least 2x2");
  double sum = 0;
  for (int c = 0; c < d.c; ++c) {
    const float* p = x + std::size_t(c) * d.h * d.w;
    for (int y = 0; y + 1 < d.h; ++y)
      for (int q = 0; q + 1 < d.w; ++q)
        sum += std::abs(double(p[y * d.w + q]) - p[y * d.w + q + 1] - p[(y + 1) * d.w + q] +
                        p[(y + 1) * d.w + q + 1]) /
               4;
  }
  return sum / (double(d.c) * (d.h - 1) * (d.w - 1));
}

const double* ssim_window() { return kWindow.data(); }

namespace {

void check_ssim_size(ops::Dims d) {
  if (d.h < kWin || d.w < kWin)
    throw Error("SSIM needs images of at least 11x11 (its Gaussian window), found " +
                std::to_string(d.h) + "x" + std::to_string(d.w));
}

// The 'valid' SSIM map of channel c: (h − 10)×(w − 10) values, entry (y, x) that of the window
// centred on pixel (y + 5, x + 5).
void ssim_map(const float* x, const float* y, ops::Dims d, int c, std::vector<double>& map) {
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const std::size_t hw = std::size_t(d.h) * d.w;
  std::vector<double> px(hw), py(hw), pxx(hw), pyy(hw), pxy(hw), tmp;
  std::vector<double> mx, my, mxx, myy, mxy;
  for (std::size_t i = 0; i < hw; ++i) {
    const double a = x[c * hw + i], b = y[c * hw + i];
    px[i] = a, py[i] = b, pxx[i] = a * a, pyy[i] = b * b, pxy[i] = a * b;
  }
  filter_valid(px, d.h, d.w, tmp, mx);
  filter_valid(py, d.h, d.w, tmp, my);
  filter_valid(pxx, d.h, d.w, tmp, mxx);
  filter_valid(pyy, d.h, d.w, tmp, myy);
  filter_valid(pxy, d.h, d.w, tmp, mxy);
  map.resize(mx.size());
  for (std::size_t i = 0; i < mx.size(); ++i) {
    const double vx = mxx[i] - mx[i] * mx[i], vy = myy[i] - my[i] * my[i];
    const double cov = mxy[i] - mx[i] * my[i];
    map[i] = (2 * mx[i] * my[i] + c1) * (2 * cov + c2) /
             ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
  }
}

}  // namespace

double ssim(const float* x, const float* y, ops::Dims d) {
  check_ssim_size(d);
  std::vector<double> map;
  double total = 0;
  for (int c = 0; c < d.c; ++c) {
    ssim_map(x, y, d, c, map);
    double sum = 0;
    for (double v : map) sum += v;
    total += sum / double(map.size());
  }
  return total / d.c;
}

double masked_mse(const float* a, const float* b, const float* mask, ops::Dims d) {
  const std::size_t hw = std::size_t(d.h) * d.w;
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t p = 0; p < hw; ++p) {
    if (!(mask[p] > 0.5f)) continue;
    ++n;
    for (int c = 0; c < d.c; ++c) {
      const double e = double(a[c * hw + p]) - double(b[c * hw + p]);
      sum += e * e;
    }
  }
  return n ? sum / (double(n) * d.c) : std::numeric_limits<double>::quiet_NaN();
}

double masked_ssim(const float* x, const float* y, const float* mask, ops::Dims d) {
  check_ssim_size(d);
  const int half = kWin / 2, ow = d.w - kWin + 1, oh = d.h - kWin + 1;
  std::vector<double> map;
  double total = 0;
  std::size_t n = 0;
  for (int c = 0; c < d.c; ++c) {
    ssim_map(x, y, d, c, map);
    n = 0;
    double sum = 0;
    for (int r = 0; r < oh; ++r)
      for (int q = 0; q < ow; ++q)
        if (mask[std::size_t(r + half) * d.w + q + half] > 0.5f) {
          sum += map[std::size_t(r) * ow + q];
          ++n;
        }
    if (n) total += sum / double(n);
  }
  return n ? total / d.c : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace cae::train
