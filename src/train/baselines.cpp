#include "train/baselines.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/photo.hpp>
#include <sstream>

#include "cae/error.h"

namespace cae::train {

const char* baseline_name(Baseline kind) {
  switch (kind) {
    case Baseline::median:
      return "median";
    case Baseline::gaussian:
      return "gaussian";
    case Baseline::nlm:
      return "nlm";
  }
  return "?";
}

std::string baseline_setting(Baseline kind, float param) {
  std::ostringstream s;
  s << (kind == Baseline::median ? "k=" : kind == Baseline::gaussian ? "sigma=" : "h=") << param;
  return s.str();
}

std::vector<float> baseline_grid(Baseline kind) {
  switch (kind) {
    case Baseline::median:
      return {3, 5, 7};
    case Baseline::gaussian:
      return {0.5f, 0.75f, 1, 1.5f, 2, 3};
    case Baseline::nlm:
      return {10, 20, 35, 50, 70, 100, 140};
  }
  return {};
}

namespace {

// NCHW floats of one image as an HWC OpenCV matrix of the given depth, and back.
cv::Mat to_mat(const float* x, ops::Dims d, bool bytes) {
  cv::Mat m(d.h, d.w, CV_MAKETYPE(bytes ? CV_8U : CV_32F, d.c));
  const std::size_t hw = std::size_t(d.h) * d.w;
  for (int y = 0; y < d.h; ++y)
    for (int xx = 0; xx < d.w; ++xx)
      for (int c = 0; c < d.c; ++c) {
        const float v = x[c * hw + std::size_t(y) * d.w + xx];
        if (bytes)
          m.ptr<std::uint8_t>(y)[xx * d.c + c] =
              std::uint8_t(std::lround(std::clamp(v, 0.f, 1.f) * 255.f));
        else
          m.ptr<float>(y)[xx * d.c + c] = v;
      }
  return m;
}

void from_mat(const cv::Mat& m, float* out, ops::Dims d) {
  const std::size_t hw = std::size_t(d.h) * d.w;
  const bool bytes = m.depth() == CV_8U;
  for (int y = 0; y < d.h; ++y)
    for (int x = 0; x < d.w; ++x)
      for (int c = 0; c < d.c; ++c)
        out[c * hw + std::size_t(y) * d.w + x] =
            bytes ? m.ptr<std::uint8_t>(y)[x * d.c + c] / 255.f
                  : std::clamp(m.ptr<float>(y)[x * d.c + c], 0.f, 1.f);
}

void filter_one(Baseline kind, float param, const float* noisy, float* out, ops::Dims d) {
  cv::Mat dst;
  switch (kind) {
    case Baseline::median:
      cv::medianBlur(to_mat(noisy, d, true), dst, int(param));
      break;
    case Baseline::gaussian: {
      const int k = 2 * int(std::ceil(3 * param)) + 1;
      cv::GaussianBlur(to_mat(noisy, d, false), dst, cv::Size(k, k), param, param,
                       cv::BORDER_REFLECT_101);
      break;
    }
    case Baseline::nlm:
      if (d.c == 1)
        cv::fastNlMeansDenoising(to_mat(noisy, d, true), dst, param, 7, 21);
      else
        cv::fastNlMeansDenoisingColored(to_mat(noisy, d, true), dst, param, param, 7, 21);
      break;
  }
  from_mat(dst, out, d);
}

}  // namespace

void apply_baseline(Baseline kind, float param, const float* noisy, float* out, int count,
                    ops::Dims d) {
  if (d.c != 1 && d.c != 3)
    throw Error("baseline " + std::string(baseline_name(kind)) + ": images of " +
                std::to_string(d.c) + " channels, expected 1 or 3");
  if (kind == Baseline::median && (int(param) % 2 == 0 || param < 3))
    throw Error("baseline median: kernel " + std::to_string(param) + ", expected odd >= 3");
  // One image per thread: OpenCV's own threads would only oversubscribe the cores.
  const int cv_threads = cv::getNumThreads();
  cv::setNumThreads(0);
  const std::size_t image = d.size();
#pragma omp parallel for schedule(dynamic, 8)
  for (int b = 0; b < count; ++b) filter_one(kind, param, noisy + b * image, out + b * image, d);
  cv::setNumThreads(cv_threads);
}

}  // namespace cae::train
