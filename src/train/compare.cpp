#include "train/compare.h"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "cae/error.h"
#include "data/dataset.h"
#include "train/baselines.h"
#include "train/metrics.h"

namespace cae::train {

namespace {

Scores score(const float* out, const float* clean, ops::Dims d) {
  Scores s;
  s.mse = mse(out, clean, d.size());
  s.psnr = psnr(s.mse);
  s.ssim = ssim(out, clean, d);
  s.bce = image_bce(out, clean, d.size());
  return s;
}

void score_all(Method& m, const std::vector<float>& out, const std::vector<float>& clean,
               ops::Dims d, int n) {
  m.per_image.resize(n);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i)
    m.per_image[i] =
        score(out.data() + std::size_t(i) * d.size(), clean.data() + std::size_t(i) * d.size(), d);
  for (const Scores& s : m.per_image) {
    m.mean.mse += s.mse / n;
    m.mean.psnr += s.psnr / n;
    m.mean.ssim += s.ssim / n;
    m.mean.bce += s.bce / n;
  }
}

double mean_psnr(const float* out, const float* clean, ops::Dims d, int n) {
  double sum = 0;
  for (int i = 0; i < n; ++i)
    sum += psnr(mse(out + std::size_t(i) * d.size(), clean + std::size_t(i) * d.size(), d.size()));
  return sum / n;
}

}  // namespace

Comparison compare(const std::vector<NamedModel>& models, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed,
                   const CompareOptions& options) {
  const ops::Dims d{test.c, test.h, test.w};
  const int n = test.n;
  if (n < 1) throw Error("eval: the test set is empty");
  for (const auto& m : models)
    if (!(m.model->input() == d))
      throw Error("eval: model '" + m.name + "' takes " + std::to_string(m.model->input().h) + "x" +
                  std::to_string(m.model->input().w) + "x" + std::to_string(m.model->input().c) +
                  " images, the test set holds " + std::to_string(d.h) + "x" + std::to_string(d.w) +
                  "x" + std::to_string(d.c));
  const std::size_t image = d.size();
  std::vector<float> clean(std::size_t(n) * image), noisy(clean.size()), out(clean.size());
  std::vector<int> all(n);
  std::iota(all.begin(), all.end(), 0);
  const data::ImageSet* targets = options.targets;
  if (targets && (targets->n != n || targets->h != test.h || targets->w != test.w ||
                  targets->c != test.c))
    throw Error("eval: the targets must be one per test image, of its shape");
  data::to_nchw(targets ? *targets : test, all.data(), n, clean.data());
  std::vector<float> given;
  if (targets) {
    given.resize(clean.size());
    data::to_nchw(test, all.data(), n, given.data());
  }
  // The same damage evaluate() draws: image i's stream is keyed by (seed, test_noise, 0, i).
  data::corrupt(corruption, targets ? given.data() : clean.data(), noisy.data(), n, d, seed,
                Stream::test_noise, 0, 0);

  Comparison c;
  c.corruption = corruption.describe();
  c.seed = seed;
  c.images = n;
  c.tune_images = std::min(options.tune_images, n);
  Method noisy_method{"noisy", "", {}, {}};
  score_all(noisy_method, noisy, clean, d, n);
  c.methods.push_back(std::move(noisy_method));

  for (const auto& named : models) {
    const int batch = std::min(options.batch, n);
    auto exec = named.model->make_inference_executor(options.backend, batch);
    std::vector<float> x(std::size_t(batch) * image);
    for (int first = 0; first < n; first += batch) {
      const int count = std::min(batch, n - first);
      std::copy_n(noisy.begin() + std::size_t(first) * image, std::size_t(count) * image,
                  x.begin());
      std::fill(x.begin() + std::size_t(count) * image, x.end(), 0.f);  // padding
      exec->forward(x.data());
      nn::output_to_image(named.model->loss(), exec->output(),
                          out.data() + std::size_t(first) * image, std::size_t(count) * image);
    }
    Method m{named.name, "", {}, {}};
    score_all(m, out, clean, d, n);
    c.methods.push_back(std::move(m));
  }

  if (options.baselines)
    for (Baseline kind : {Baseline::median, Baseline::gaussian, Baseline::nlm}) {
      float best = 0;
      double best_psnr = -1e300;
      for (float param : baseline_grid(kind)) {
        apply_baseline(kind, param, noisy.data(), out.data(), c.tune_images, d);
        const double p = mean_psnr(out.data(), clean.data(), d, c.tune_images);
        if (p > best_psnr) best_psnr = p, best = param;
      }
      apply_baseline(kind, best, noisy.data(), out.data(), n, d);
      Method m{baseline_name(kind), baseline_setting(kind, best), {}, {}};
      score_all(m, out, clean, d, n);
      c.methods.push_back(std::move(m));
    }
  return c;
}

std::string comparison_table(const Comparison& c) {
  std::ostringstream s;
  s << c.images << " images, corruption '" << c.corruption << "', seed " << c.seed << "\n";
  char line[160];
  std::snprintf(line, sizeof line, "%-22s %10s %10s %8s %8s\n", "method", "MSE", "PSNR dB", "SSIM",
                "BCE");
  s << line;
  for (const Method& m : c.methods) {
    const std::string label = m.setting.empty() ? m.name : m.name + " (" + m.setting + ")";
    std::snprintf(line, sizeof line, "%-22s %10.5f %10.2f %8.4f %8.4f\n", label.c_str(), m.mean.mse,
                  m.mean.psnr, m.mean.ssim, m.mean.bce);
    s << line;
  }
  return s.str();
}

std::string comparison_json(const Comparison& c) {
  nlohmann::json methods = nlohmann::json::array();
  for (const Method& m : c.methods)
    methods.push_back({{"name", m.name},
                       {"setting", m.setting},
                       {"mse", m.mean.mse},
                       {"psnr_db", m.mean.psnr},
                       {"ssim", m.mean.ssim},
                       {"bce", m.mean.bce}});
  nlohmann::json j = {{"corruption", c.corruption},
                      {"seed", c.seed},
                      {"images", c.images},
                      {"tune_images", c.tune_images},
                      {"psnr", "mean over images of 10 log10(1 / MSE)"},
                      {"ssim", "Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, valid windows"},
                      {"methods", methods}};
  return j.dump(2) + "\n";
}

std::string comparison_csv(const Comparison& c) {
  std::ostringstream s;
  s << "image,method,mse,psnr_db,ssim,bce\n" << std::setprecision(8);
  for (int i = 0; i < c.images; ++i)
    for (const Method& m : c.methods) {
      const Scores& p = m.per_image[i];
      s << i << ',' << m.name << ',' << p.mse << ',' << p.psnr << ',' << p.ssim << ',' << p.bce
        << '\n';
    }
  return s.str();
}

}  // namespace cae::train
