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
    case Baseline::telea:
      return "telea";
    case Baseline::navier_stokes:
      return "navier-stokes";
  }
  return "?";
}

bool baseline_inpaints(Baseline kind) {
  return kind == Baseline::telea || kind == Baseline::navier_stokes;
}

std::string baseline_setting(Baseline kind, float param) {
  std::ostringstream s;
  s << (kind == Baseline::median     ? "k="
        : kind == Baseline::gaussian ? "sigma="
        : kind == Baseline::nlm      ? "h="
                                     : "r=")
    << param;
  return s.str();
}

std::vector<float> baseline_grid(Baseline kind) {
  switch (kind) {
    case Baseline::median:
      return {3, 5, 7};
    case Baseline::gaussian:
      return {0.5f, 0.75f, 1, 1.5f, 2, 3};
    case Baseline::nlm:
      return {5, 10, 15, 20, 25, 30, 35, 50, 70, 100, 140};
    case Baseline::telea:
    case Baseline::navier_stokes:
      return {1, 3, 5, 9};
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

// The damage mask plane (1 = damaged) as cv::inpaint's 8-bit mask (non-zero = to fill).
cv::Mat mask_mat(const float* mask, ops::Dims d) {
  cv::Mat m(d.h, d.w, CV_8UC1);
  for (int y = 0; y < d.h; ++y)
    for (int x = 0; x < d.w; ++x) m.ptr<std::uint8_t>(y)[x] = mask[std::size_t(y) * d.w + x] > 0.5f;
  return m;
}

// cv::inpaint works on bytes, so outside the mask its output is the input rounded: the given
// floats are put back there, since an inpainter is only asked to fill the damage.
void keep_outside_mask(const float* noisy, const float* mask, float* out, ops::Dims d) {
  const std::size_t hw = std::size_t(d.h) * d.w;
  for (int c = 0; c < d.c; ++c)
    for (std::size_t p = 0; p < hw; ++p)
      if (!(mask[p] > 0.5f)) out[c * hw + p] = noisy[c * hw + p];
}

// cv::inpaint (OpenCV 4.6) mishandles damage that reaches the image's edge: the damaged values
// there bleed inwards (a white crosshair's ends brighten a flat image by up to half their value,
// 120 levels with Navier–Stokes). Measured here: a ring of known pixels around the image stops
// it. The ring repeats the edge, whose damaged pixels are first interpolated along the edge
// between the nearest undamaged ones (rows, then columns); the edge itself stays damaged, so
// cv::inpaint fills it like any other damaged pixel.
void fill_edge_damage(cv::Mat& image, const cv::Mat& mask) {
  const int h = image.rows, w = image.cols, c = image.channels();
  // One edge as a run of `n` pixels, pixel i at (y(i), x(i)).
  auto fill = [&](int n, auto at_y, auto at_x) {
    auto damaged = [&](int i) { return mask.at<std::uint8_t>(at_y(i), at_x(i)) != 0; };
    for (int i = 0; i < n;) {
      if (!damaged(i)) {
        ++i;
        continue;
      }
      int end = i;
      while (end < n && damaged(end)) ++end;
      const int lo = i - 1, hi = end;  // undamaged neighbours, -1 or n when there are none
      if (lo >= 0 || hi < n)
        for (int k = i; k < end; ++k) {
          const double t = lo < 0 ? 1 : hi >= n ? 0 : double(k - lo) / (hi - lo);
          std::uint8_t* dst = image.ptr<std::uint8_t>(at_y(k)) + at_x(k) * c;
          const std::uint8_t* a =
              image.ptr<std::uint8_t>(at_y(lo < 0 ? hi : lo)) + at_x(lo < 0 ? hi : lo) * c;
          const std::uint8_t* b =
              image.ptr<std::uint8_t>(at_y(hi >= n ? lo : hi)) + at_x(hi >= n ? lo : hi) * c;
          for (int ch = 0; ch < c; ++ch)
            dst[ch] = std::uint8_t(std::lround((1 - t) * a[ch] + t * b[ch]));
        }
      i = end;
    }
  };
  const auto index = [](int i) { return i; };
  for (int y : {0, h - 1}) {
    const auto row = [y](int) { return y; };
    fill(w, row, index);
  }
  for (int x : {0, w - 1}) {
    const auto column = [x](int) { return x; };
    fill(h, index, column);
  }
}

void inpaint_one(Baseline kind, float radius, const float* damaged, const float* mask, ops::Dims d,
                 cv::Mat& dst) {
  cv::Mat image = to_mat(damaged, d, true);
  const cv::Mat holes = mask_mat(mask, d);
  fill_edge_damage(image, holes);
  cv::Mat ringed, ringed_holes, out;
  cv::copyMakeBorder(image, ringed, 1, 1, 1, 1, cv::BORDER_REPLICATE);
  cv::copyMakeBorder(holes, ringed_holes, 1, 1, 1, 1, cv::BORDER_CONSTANT, 0);
  cv::inpaint(ringed, ringed_holes, out, radius,
              kind == Baseline::telea ? cv::INPAINT_TELEA : cv::INPAINT_NS);
  dst = out(cv::Rect(1, 1, d.w, d.h)).clone();
}

// cv::inpaint of one image, written into out (NCHW floats holding the damaged image) at the
// damaged pixels of the crop's `owned` label only, or at every damaged pixel when owned is 0.
void inpaint_crop(Baseline kind, float radius, const float* damaged, const float* mask,
                  ops::Dims d, cv::Rect crop, const cv::Mat& labels, int owned, float* out) {
  // The crop's NCHW planes, so that inpaint_one sees the crop as a whole image.
  const ops::Dims cd{d.c, crop.height, crop.width};
  const std::size_t plane = std::size_t(d.h) * d.w, crop_plane = std::size_t(cd.h) * cd.w;
  std::vector<float> image(cd.size()), holes(crop_plane);
  for (int y = 0; y < cd.h; ++y)
    for (int x = 0; x < cd.w; ++x) {
      const std::size_t from = std::size_t(crop.y + y) * d.w + crop.x + x, to = std::size_t(y) * cd.w + x;
      holes[to] = mask[from];
      for (int c = 0; c < d.c; ++c) image[c * crop_plane + to] = damaged[c * plane + from];
    }
  cv::Mat dst;
  inpaint_one(kind, radius, image.data(), holes.data(), cd, dst);
  for (int y = 0; y < cd.h; ++y)
    for (int x = 0; x < cd.w; ++x) {
      const std::size_t at = std::size_t(crop.y + y) * d.w + crop.x + x;
      if (!(mask[at] > 0.5f) || (owned && labels.at<int>(crop.y + y, crop.x + x) != owned)) continue;
      for (int c = 0; c < d.c; ++c) out[c * plane + at] = dst.ptr<std::uint8_t>(y)[x * d.c + c] / 255.f;
    }
}

// Images from this many pixels up are inpainted piece by piece (below); smaller ones (training
// patches) whole, where finding the pieces would cost more than it saves.
constexpr std::size_t kPiecewisePixels = 512 * 512;

// cv::inpaint of a large image, piece by piece: each group of damage lying farther than
// 2·(radius + 1) from any other is repaired on a crop of its own, reaching radius + 1 pixels
// and as many again beyond it. cv::inpaint fills a pixel from the known and filled pixels within
// radius, so no group reaches another, and a crop holds everything its group reads: the result
// is the whole image's bit for bit (tests/test_photo_eval.cpp compares them), while the work
// follows the damage rather than the photo (a scratch on 12 megapixels: milliseconds instead of
// seconds). Returns false, having done nothing, when the crops would cover half the image or more.
bool inpaint_pieces(Baseline kind, float radius, const float* damaged, const float* mask,
                    ops::Dims d, float* out) {
  const int reach = int(std::ceil(radius)) + 1;
  const cv::Mat holes = mask_mat(mask, d);
  cv::Mat near, labels, stats, centroids;
  cv::dilate(holes, near, cv::getStructuringElement(cv::MORPH_RECT, {2 * reach + 1, 2 * reach + 1}));
  const int groups = cv::connectedComponentsWithStats(near, labels, stats, centroids, 8, CV_32S);
  std::vector<cv::Rect> crops;
  double area = 0;
  const cv::Rect whole(0, 0, d.w, d.h);
  for (int k = 1; k < groups; ++k) {  // label 0 is the undamaged background
    const cv::Rect box(stats.at<int>(k, cv::CC_STAT_LEFT), stats.at<int>(k, cv::CC_STAT_TOP),
                       stats.at<int>(k, cv::CC_STAT_WIDTH), stats.at<int>(k, cv::CC_STAT_HEIGHT));
    crops.push_back(cv::Rect(box.x - reach, box.y - reach, box.width + 2 * reach,
                             box.height + 2 * reach) & whole);
    area += crops.back().area();
  }
  if (area >= 0.5 * whole.area()) return false;
  for (int k = 1; k < groups; ++k)
    inpaint_crop(kind, radius, damaged, mask, d, crops[k - 1], labels, k, out);
  return true;
}

void filter_one(Baseline kind, float param, const float* noisy, const float* mask, float* out,
                ops::Dims d, bool piecewise = true) {
  if (piecewise && baseline_inpaints(kind) && std::size_t(d.h) * d.w >= kPiecewisePixels) {
    std::copy(noisy, noisy + d.size(), out);
    if (inpaint_pieces(kind, param, noisy, mask, d, out)) return;
  }
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
    case Baseline::telea:
    case Baseline::navier_stokes:
      inpaint_one(kind, param, noisy, mask, d, dst);
      break;
  }
  from_mat(dst, out, d);
  if (baseline_inpaints(kind)) keep_outside_mask(noisy, mask, out, d);
}

}  // namespace

void apply_baseline(Baseline kind, float param, const float* noisy, float* out, int count,
                    ops::Dims d, const float* mask) {
  if (d.c != 1 && d.c != 3)
    throw Error("baseline " + std::string(baseline_name(kind)) + ": images of " +
                std::to_string(d.c) + " channels, expected 1 or 3");
  if (kind == Baseline::median && (int(param) % 2 == 0 || param < 3))
    throw Error("baseline median: kernel " + std::to_string(param) + ", expected odd >= 3");
  if (baseline_inpaints(kind) && !mask)
    throw Error("baseline " + std::string(baseline_name(kind)) + ": needs the damage mask");
  if (baseline_inpaints(kind) && !(param > 0))
    throw Error("baseline " + std::string(baseline_name(kind)) + ": radius " +
                std::to_string(param) + ", expected > 0");
  // One image per thread: OpenCV's own threads would only oversubscribe the cores. A single
  // image (a whole photo) keeps OpenCV's threads, which split it by rows.
  const int cv_threads = cv::getNumThreads();
  if (count > 1) cv::setNumThreads(0);
  const std::size_t image = d.size(), plane = std::size_t(d.h) * d.w;
#pragma omp parallel for schedule(dynamic, 8)
  for (int b = 0; b < count; ++b)
    filter_one(kind, param, noisy + b * image, mask ? mask + b * plane : nullptr, out + b * image,
               d);
  cv::setNumThreads(cv_threads);
}

void inpaint_whole(Baseline kind, float radius, const float* damaged, float* out, ops::Dims d,
                   const float* mask) {
  if (!baseline_inpaints(kind) || !mask || (d.c != 1 && d.c != 3))
    throw Error("inpaint_whole: an inpainter, its mask and 1 or 3 channels are needed");
  filter_one(kind, radius, damaged, mask, out, d, false);
}

}  // namespace cae::train
