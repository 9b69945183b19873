#include "train/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <sstream>

#include "cae/error.h"
#include "data/dataset.h"
#include "train/baselines.h"
#include "train/fill.h"
#include "train/metrics.h"

namespace cae::train {

std::vector<Baseline> baselines_for(const data::Corruption& corruption) {
  std::vector<Baseline> kinds{Baseline::median, Baseline::gaussian, Baseline::nlm};
  if (corruption.spatial()) kinds.insert(kinds.end(), {Baseline::telea, Baseline::navier_stokes});
  return kinds;
}

Scores score_image(const float* out, const float* clean, const float* mask, ops::Dims d) {
  Scores s;
  s.mse = mse(out, clean, d.size());
  s.psnr = psnr(s.mse);
  s.ssim = ssim(out, clean, d);
  s.bce = image_bce(out, clean, d.size());
  const double region_mse = mask ? masked_mse(out, clean, mask, d) : std::nan("");
  s.psnr_region = std::isnan(region_mse) ? region_mse : psnr(region_mse);
  s.ssim_region = mask ? masked_ssim(out, clean, mask, d) : std::nan("");
  return s;
}

void take_means(Method& m) {
  const int n = int(m.per_image.size());
  int regions = 0, ssim_regions = 0;
  m.mean = Scores{};
  for (const Scores& s : m.per_image) {
    m.mean.mse += s.mse / n;
    m.mean.psnr += s.psnr / n;
    m.mean.ssim += s.ssim / n;
    m.mean.bce += s.bce / n;
    if (!std::isnan(s.psnr_region)) m.mean.psnr_region += s.psnr_region, ++regions;
    if (!std::isnan(s.ssim_region)) m.mean.ssim_region += s.ssim_region, ++ssim_regions;
  }
  m.mean.psnr_region = regions ? m.mean.psnr_region / regions : std::nan("");
  m.mean.ssim_region = ssim_regions ? m.mean.ssim_region / ssim_regions : std::nan("");
}

double tuning_score(Baseline kind, const float* out, const float* clean, const float* mask,
                    ops::Dims d) {
  const double e =
      baseline_inpaints(kind) ? masked_mse(out, clean, mask, d) : mse(out, clean, d.size());
  return std::isnan(e) ? e : psnr(e);
}

namespace {

void score_all(Method& m, const std::vector<float>& out, const std::vector<float>& clean,
               const float* mask, ops::Dims d, int n) {
  m.per_image.resize(n);
  const std::size_t plane = std::size_t(d.h) * d.w;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i)
    m.per_image[i] =
        score_image(out.data() + std::size_t(i) * d.size(),
                    clean.data() + std::size_t(i) * d.size(), mask ? mask + i * plane : nullptr, d);
  take_means(m);
}

// The mean tuning score of a baseline on the first n images (those that have one).
double mean_tuning_score(Baseline kind, const float* out, const float* clean, const float* mask,
                         ops::Dims d, int n) {
  double sum = 0;
  int counted = 0;
  const std::size_t plane = std::size_t(d.h) * d.w;
  for (int i = 0; i < n; ++i) {
    const double s =
        tuning_score(kind, out + std::size_t(i) * d.size(), clean + std::size_t(i) * d.size(),
                     mask ? mask + i * plane : nullptr, d);
    if (!std::isnan(s)) sum += s, ++counted;
  }
  return counted ? sum / counted : -1e300;
}

void check_model_takes(const NamedModel& m, ops::Dims image) {
  const ops::Dims out = m.model->output(), in = m.model->input();
  if (!(out == image))
    throw Error("eval: model '" + m.name + "' takes " + std::to_string(in.h) + "x" +
                std::to_string(in.w) + "x" + std::to_string(in.c) +
                (m.model->informed() ? " (informed: the image's channels and the mask)" : "") +
                " images, the test set holds " + std::to_string(image.h) + "x" +
                std::to_string(image.w) + "x" + std::to_string(image.c));
}

}  // namespace

Comparison compare(const std::vector<NamedModel>& models, const data::ImageSet& test,
                   const data::Corruption& corruption, std::uint64_t seed,
                   const CompareOptions& options) {
  const ops::Dims d{test.c, test.h, test.w};
  const int n = test.n;
  if (n < 1) throw Error("eval: the test set is empty");
  bool any_informed = false;
  for (const auto& m : models) {
    check_model_takes(m, d);
    require_damage_mask(*m.model, corruption);
    any_informed |= m.model->informed();
  }
  const std::size_t image = d.size(), plane = std::size_t(d.h) * d.w;
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
  // Where the damage went: the inpainters' and informed models' input, and the region scored.
  std::vector<float> mask_buffer(corruption.spatial() || any_informed ? n * plane : 0);
  float* mask = mask_buffer.empty() ? nullptr : mask_buffer.data();
  // The same damage evaluate() draws: image i's stream is keyed by (seed, test_noise, 0, i).
  data::corrupt(corruption, targets ? given.data() : clean.data(), noisy.data(), n, d, seed,
                Stream::test_noise, 0, 0, mask);
  const float* region = corruption.spatial() ? mask : nullptr;

  Comparison c;
  c.corruption = corruption.describe();
  c.seed = seed;
  c.images = n;
  c.tune_images = std::min(options.tune_images, n);
  c.region = corruption.spatial();
  Method noisy_method{"noisy", "", {}, {}};
  score_all(noisy_method, noisy, clean, region, d, n);
  c.methods.push_back(std::move(noisy_method));

  for (const auto& named : models) {
    const ops::Dims in = named.model->input();
    const int batch = std::min(options.batch, n);
    auto exec = named.model->make_inference_executor(options.backend, batch, options.executor);
    std::vector<float> x(std::size_t(batch) * in.size());
    std::optional<InformedRun> run;
    if (named.model->informed()) run.emplace(*named.model, batch);
    for (int first = 0; first < n; first += batch) {
      const int count = std::min(batch, n - first);
      if (run)
        std::copy_n(
            run->input(noisy.data() + std::size_t(first) * image, mask + first * plane, count),
            std::size_t(count) * in.size(), x.begin());
      else
        std::copy_n(noisy.begin() + std::size_t(first) * image, std::size_t(count) * image,
                    x.begin());
      std::fill(x.begin() + std::size_t(count) * in.size(), x.end(), 0.f);  // padding
      exec->forward(x.data());
      nn::output_to_image(named.model->loss(),
                          run ? run->output(exec->output(), count) : exec->output(),
                          out.data() + std::size_t(first) * image, std::size_t(count) * image);
    }
    if (named.model->informed())  // the repair changes only what it was told is damaged
      data::keep_undamaged(noisy.data(), mask, n, d, out.data());
    Method m{named.name, "", {}, {}};
    score_all(m, out, clean, region, d, n);
    c.methods.push_back(std::move(m));
  }

  if (options.baselines)
    for (Baseline kind : baselines_for(corruption)) {
      float best = 0;
      double best_score = -1e300;
      for (float param : baseline_grid(kind)) {
        apply_baseline(kind, param, noisy.data(), out.data(), c.tune_images, d, mask);
        const double p = mean_tuning_score(kind, out.data(), clean.data(), mask, d, c.tune_images);
        if (p > best_score) best_score = p, best = param;
      }
      apply_baseline(kind, best, noisy.data(), out.data(), n, d, mask);
      Method m{baseline_name(kind), baseline_setting(kind, best), {}, {}};
      score_all(m, out, clean, region, d, n);
      c.methods.push_back(std::move(m));
    }
  return c;
}

namespace {

std::string tuned_line(const Comparison& c) {
  return "baseline parameters tuned on " +
         (c.tuned_on == "val" ? std::to_string(c.tune_images) + " validation image(s)"
                              : "the first " + std::to_string(c.tune_images) + " test image(s)") +
         (c.region ? " (inpainters by PSNR inside the damage, the others by PSNR)" : " by PSNR") +
         "\n";
}

}  // namespace

std::string comparison_table(const Comparison& c) {
  std::ostringstream s;
  s << c.images << " images, corruption '" << c.corruption << "', seed " << c.seed << "\n";
  char line[400];
  auto label_of = [](const Method& m) {
    return m.setting.empty() ? m.name : m.name + " (" + m.setting + ")";
  };
  int width = 22;  // the method column: as wide as its longest label
  for (const Method& m : c.methods) width = std::max(width, int(label_of(m).size()));
  width = std::min(width, 200);
  std::snprintf(line, sizeof line, "%-*s %10s %10s %8s %8s", width, "method", "MSE", "PSNR dB",
                "SSIM", "BCE");
  s << line;
  if (c.region) {
    std::snprintf(line, sizeof line, " %12s %11s", "PSNR damage", "SSIM damage");
    s << line;
  }
  s << "\n";
  for (const Method& m : c.methods) {
    std::snprintf(line, sizeof line, "%-*s %10.5f %10.2f %8.4f %8.4f", width, label_of(m).c_str(),
                  m.mean.mse, m.mean.psnr, m.mean.ssim, m.mean.bce);
    s << line;
    if (c.region) {
      std::snprintf(line, sizeof line, " %12.2f %11.4f", m.mean.psnr_region, m.mean.ssim_region);
      s << line;
    }
    s << "\n";
  }
  if (std::any_of(c.methods.begin(), c.methods.end(),
                  [](const Method& m) { return !m.setting.empty(); }))
    s << tuned_line(c);
  return s.str();
}

namespace {

// JSON has no NaN: a region score an image lacks is null.
nlohmann::json number(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

}  // namespace

std::string comparison_json(const Comparison& c) {
  nlohmann::json methods = nlohmann::json::array();
  for (const Method& m : c.methods) {
    nlohmann::json j = {{"name", m.name},         {"setting", m.setting}, {"mse", m.mean.mse},
                        {"psnr_db", m.mean.psnr}, {"ssim", m.mean.ssim},  {"bce", m.mean.bce}};
    if (c.region) {
      j["psnr_db_region"] = number(m.mean.psnr_region);
      j["ssim_region"] = number(m.mean.ssim_region);
    }
    methods.push_back(j);
  }
  nlohmann::json j = {{"corruption", c.corruption},
                      {"seed", c.seed},
                      {"images", c.images},
                      {"tune_images", c.tune_images},
                      {"tuned_on", c.tuned_on},
                      {"psnr", "mean over images of 10 log10(1 / MSE)"},
                      {"ssim", "Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, valid windows"},
                      {"methods", methods}};
  if (c.region)
    j["region"] =
        "inside the damage mask only: PSNR of the MSE over its pixels; SSIM the mean of the SSIM "
        "map over its pixels whose window lies inside the image";
  return j.dump(2) + "\n";
}

std::string comparison_csv(const Comparison& c) {
  std::ostringstream s;
  s << "image,method,mse,psnr_db,ssim,bce" << (c.region ? ",psnr_db_region,ssim_region" : "")
    << "\n"
    << std::setprecision(8);
  for (int i = 0; i < c.images; ++i)
    for (const Method& m : c.methods) {
      const Scores& p = m.per_image[i];
      if (c.image_names.empty())
        s << i;
      else
        s << c.image_names[i];
      s << ',' << m.name << ',' << p.mse << ',' << p.psnr << ',' << p.ssim << ',' << p.bce;
      if (c.region) s << ',' << p.psnr_region << ',' << p.ssim_region;
      s << '\n';
    }
  return s.str();
}

}  // namespace cae::train
