#include "train/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "data/dataset.h"
#include "data/grid.h"

namespace cae::train {

data::Image to_image(const float* nchw, ops::Dims d) {
  data::Image img;
  img.h = d.h;
  img.w = d.w;
  img.c = d.c;
  img.pixels.resize(d.size());
  const int hw = d.h * d.w;
  for (int p = 0; p < hw; ++p)
    for (int c = 0; c < d.c; ++c)
      img.pixels[std::size_t(p) * d.c + c] =
          std::uint8_t(std::lround(std::clamp(nchw[std::size_t(c) * hw + p], 0.f, 1.f) * 255.f));
  return img;
}

void from_image(const data::Image& image, float* nchw) {
  const int hw = image.h * image.w;
  for (int p = 0; p < hw; ++p)
    for (int c = 0; c < image.c; ++c)
      nchw[std::size_t(c) * hw + p] = data::byte_to_float(image.pixels[std::size_t(p) * image.c + c]);
}

namespace {
data::Image upscale(const data::Image& in, int scale) {
  data::Image out;
  out.h = in.h * scale;
  out.w = in.w * scale;
  out.c = in.c;
  out.pixels.resize(std::size_t(out.h) * out.w * out.c);
  for (int y = 0; y < out.h; ++y)
    for (int x = 0; x < out.w; ++x)
      for (int c = 0; c < in.c; ++c)
        out.pixels[(std::size_t(y) * out.w + x) * out.c + c] =
            in.pixels[(std::size_t(y / scale) * in.w + x / scale) * in.c + c];
  return out;
}

// A figure's input: the set's first `count` images (NCHW, `dims` each), clean and corrupted with
// the test noise of `seed`. Checks count and scale first; `what` names the figure in the error.
struct FigureInput {
  std::vector<float> clean, noisy;
};
FigureInput figure_input(const std::string& what, const data::ImageSet& set, ops::Dims dims,
                         const data::Corruption& corruption, std::uint64_t seed, int count,
                         int scale) {
  if (count < 1 || count > set.n)
    throw Error(what + ": asked for " + std::to_string(count) + " images, the set has " +
                std::to_string(set.n));
  if (scale < 1 || scale > 32) throw Error(what + ": scale must be 1 to 32");
  const std::size_t image = dims.size();
  std::vector<int> indices(count);
  std::iota(indices.begin(), indices.end(), 0);
  FigureInput input{std::vector<float>(count * image), std::vector<float>(count * image)};
  data::to_nchw(set, indices.data(), count, input.clean.data());
  data::corrupt(corruption, input.clean.data(), input.noisy.data(), count, dims, seed,
                Stream::test_noise, 0, 0);
  return input;
}
}  // namespace

data::Image denoising_figure(const nn::Model& model, ops::Backend backend,
                             const ops::ExecutorOptions& options, const data::ImageSet& set,
                             const data::Corruption& corruption, std::uint64_t seed, int count,
                             int scale) {
  const ops::Dims dims = model.input();
  const std::size_t image = dims.size();
  const auto [clean, noisy] = figure_input("figure", set, dims, corruption, seed, count, scale);
  std::vector<float> out(count * image);
  auto exec = model.make_inference_executor(backend, count, options);
  exec->forward(noisy.data());
  nn::output_to_image(model.loss(), exec->output(), out.data(), count * image);
  std::vector<std::vector<data::Image>> rows(3);
  for (int b = 0; b < count; ++b) {
    rows[0].push_back(upscale(to_image(noisy.data() + b * image, dims), scale));
    rows[1].push_back(upscale(to_image(out.data() + b * image, dims), scale));
    rows[2].push_back(upscale(to_image(clean.data() + b * image, dims), scale));
  }
  return data::make_grid(rows, 2 * scale, 255);
}

namespace {

// Nearest-neighbour resampling of one plane of floats to an h×w gray image, v/scale_max → byte.
data::Image plane_image(const float* plane, int ph, int pw, int h, int w, float scale_max) {
  data::Image img;
  img.h = h;
  img.w = w;
  img.c = 1;
  img.pixels.resize(std::size_t(h) * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float v = plane[std::size_t(y * ph / h) * pw + x * pw / w];
      img.pixels[std::size_t(y) * w + x] =
          std::uint8_t(std::lround(std::clamp(v / scale_max, 0.f, 1.f) * 255.f));
    }
  return img;
}

}  // namespace

data::Image latent_figure(const nn::Model& model, ops::Backend backend,
                          const ops::ExecutorOptions& options, const data::ImageSet& set,
                          const data::Corruption& corruption, std::uint64_t seed, int count,
                          int scale) {
  const ops::Dims dims = model.input();
  const std::size_t image = dims.size();
  const auto [clean, noisy] =
      figure_input("latent figure", set, dims, corruption, seed, count, scale);
  const ops::NetDesc net = model.net(count);
  int latent = 0;
  for (int k = 0; k < int(net.ops.size()); ++k)
    if (std::size_t(net.ops[k].out.h) * net.ops[k].out.w <
        std::size_t(net.ops[latent].out.h) * net.ops[latent].out.w)
      latent = k;
  const ops::Dims code = net.ops[latent].out;
  std::vector<float> codes(count * code.size());
  auto exec = model.make_inference_executor(backend, count, options);
  exec->forward(noisy.data());
  exec->read_activation(latent, codes.data());
  const std::size_t plane = std::size_t(code.h) * code.w;
  std::vector<float> channel_max(code.c, 1e-12f);
  for (int b = 0; b < count; ++b)
    for (int c = 0; c < code.c; ++c)
      for (std::size_t p = 0; p < plane; ++p)
        channel_max[c] = std::max(channel_max[c], codes[(b * code.c + c) * plane + p]);
  const int h = dims.h * scale;
  const int w = std::max(1, int(std::lround(double(h) * code.w / code.h)));
  std::vector<std::vector<data::Image>> rows(count);
  for (int b = 0; b < count; ++b) {
    rows[b].push_back(upscale(to_image(noisy.data() + b * image, dims), scale));
    for (int c = 0; c < code.c; ++c)
      rows[b].push_back(plane_image(codes.data() + (b * code.c + c) * plane, code.h, code.w, h, w,
                                    channel_max[c]));
  }
  return data::make_grid(rows, std::max(2, scale), 255);
}

data::Image comparison_figure(const std::vector<const nn::Model*>& models, ops::Backend backend,
                              const ops::ExecutorOptions& options, const data::ImageSet& set,
                              const data::Corruption& corruption, std::uint64_t seed, int count,
                              int scale, float gain) {
  const ops::Dims dims{set.c, set.h, set.w};
  const std::size_t image = dims.size();
  const auto [clean, noisy] = figure_input("figure", set, dims, corruption, seed, count, scale);
  std::vector<float> out(count * image);
  std::vector<std::vector<data::Image>> rows(models.size() + 3);
  for (int b = 0; b < count; ++b) {
    rows.front().push_back(upscale(to_image(noisy.data() + b * image, dims), scale));
    rows[models.size() + 1].push_back(upscale(to_image(clean.data() + b * image, dims), scale));
  }
  std::vector<float> flat(image, 0.5f), flat_out(image);
  for (std::size_t m = 0; m < models.size(); ++m) {
    if (!(models[m]->input() == dims)) throw Error("figure: a model takes another image shape");
    auto exec = models[m]->make_inference_executor(backend, count, options);
    exec->forward(noisy.data());
    nn::output_to_image(models[m]->loss(), exec->output(), out.data(), count * image);
    for (int b = 0; b < count; ++b)
      rows[m + 1].push_back(upscale(to_image(out.data() + b * image, dims), scale));
    auto one = models[m]->make_inference_executor(backend, 1, options);
    one->forward(flat.data());
    nn::output_to_image(models[m]->loss(), one->output(), flat_out.data(), image);
    const double mean = std::accumulate(flat_out.begin(), flat_out.end(), 0.0) / double(image);
    for (float& v : flat_out) v = float(0.5 + gain * (v - mean));
    rows.back().push_back(upscale(to_image(flat_out.data(), dims), scale));
  }
  return data::make_grid(rows, 2 * scale, 255);
}

int label_height(int w) { return std::clamp(w / 16, 16, 48); }

namespace {

// The panel with a white strip above it holding `text` in black, shrunk to fit the width.
data::Image labelled(const data::Image& panel, const std::string& text) {
  const int strip = label_height(panel.w);
  data::Image out;
  out.h = panel.h + strip;
  out.w = panel.w;
  out.c = panel.c;
  out.pixels.assign(std::size_t(strip) * panel.w * panel.c, 255);
  // Drawn on the strip alone, so that no descender reaches into the picture.
  cv::Mat m(strip, out.w, panel.c == 3 ? CV_8UC3 : CV_8UC1, out.pixels.data());
  double scale = strip / 40.0;
  int base = 0;
  cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
  if (size.width > panel.w - 4) {
    scale *= double(panel.w - 4) / size.width;
    size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
  }
  cv::putText(m, text, cv::Point(2, (strip + size.height) / 2), cv::FONT_HERSHEY_SIMPLEX, scale,
              cv::Scalar::all(0), std::max(1, strip / 24), cv::LINE_AA);
  out.pixels.insert(out.pixels.end(), panel.pixels.begin(), panel.pixels.end());
  return out;
}

// The (h/zoom)×(w/zoom) window of the image centred on (cy, cx), kept inside it, resampled to
// h×w by nearest neighbour.
data::Image zoomed(const data::Image& in, int zoom, int cy, int cx) {
  const int ch = std::max(1, in.h / zoom), cw = std::max(1, in.w / zoom);
  const int y0 = std::clamp(cy - ch / 2, 0, in.h - ch), x0 = std::clamp(cx - cw / 2, 0, in.w - cw);
  data::Image out = in;
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < in.w; ++x)
      for (int c = 0; c < in.c; ++c)
        out.pixels[(std::size_t(y) * in.w + x) * in.c + c] =
            in.pixels[(std::size_t(y0 + y * ch / in.h) * in.w + x0 + x * cw / in.w) * in.c + c];
  return out;
}

std::string damage_db(const char* name, double psnr_region) {
  char text[96];
  std::snprintf(text, sizeof text, "%s: %.2f dB in damage", name, psnr_region);
  return text;
}

}  // namespace

data::Image repair_figure(const PhotoRepair& r, int zoom) {
  if (zoom < 1 || zoom > 32) throw Error("repair figure: zoom must be 1 to 32");
  const DamagedPhoto& p = r.photo;
  const ops::Dims d = p.dims;
  double sy = 0, sx = 0, n = 0;  // the damage's centroid; the centre when nothing is damaged
  for (int y = 0; y < d.h; ++y)
    for (int x = 0; x < d.w; ++x)
      if (p.mask[std::size_t(y) * d.w + x] > 0.5f) sy += y, sx += x, ++n;
  const int cy = n > 0 ? int(sy / n) : d.h / 2, cx = n > 0 ? int(sx / n) : d.w / 2;
  char telea[32];
  std::snprintf(telea, sizeof telea, "Telea r=%g", r.telea_radius);
  const std::vector<std::pair<const std::vector<float>*, std::string>> panels = {
      {&p.damaged, damage_db("damaged", r.damaged.psnr_region)},
      {&r.model_out, damage_db(r.adapted ? "cae adapted" : "cae", r.model.psnr_region)},
      {&r.telea_out, damage_db(telea, r.telea.psnr_region)},
      {&p.clean, "original"}};
  std::vector<std::vector<data::Image>> rows(2);
  const std::string zoom_label = std::to_string(zoom) + "x zoom on the damage";
  for (const auto& [pixels, label] : panels) {
    const data::Image image = to_image(pixels->data(), d);
    rows[0].push_back(labelled(image, label));
    rows[1].push_back(labelled(zoomed(image, zoom, cy, cx), zoom_label));
  }
  return data::make_grid(rows, 2 * zoom, 255);
}

void plot_losses(const std::string& losses_csv, const std::string& png_path,
                 const std::string& title) {
  namespace fs = std::filesystem;
  for (const std::string* s : {&losses_csv, &png_path, &title})
    if (s->find_first_of("'\n") != std::string::npos)
      throw Error("plot: '" + *s + "' holds a quote or newline, which gnuplot cannot take");
  {
    std::ifstream in(losses_csv);
    std::string header, row;
    if (!std::getline(in, header) || !std::getline(in, row) ||
        header.rfind("epoch,train_loss,test_loss", 0) != 0)
      throw Error(losses_csv + ": expected a losses.csv with a header and at least one epoch");
  }
  char dir_template[] = "/tmp/cae-plot-XXXXXX";
  if (!::mkdtemp(dir_template)) throw Error("plot: cannot make a temporary directory in /tmp");
  const fs::path dir = dir_template;
  const std::string script = (dir / "plot.gp").string(), png = (dir / "plot.png").string(),
                    log = (dir / "gnuplot.log").string();
  {
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 900,540 font 'sans,11'\n"
       << "set output '" << png << "'\n"
       << "set datafile separator ','\n"
       << "set title '" << title << "'\n"
       << "set xlabel 'epoch'\nset ylabel 'loss (mean per pixel)'\n"
       << "set y2label 'test PSNR of the output (dB)'\nset ytics nomirror\nset y2tics\n"
       << "set grid\nset key top center\n"
       << "plot '" << losses_csv << "' skip 1 using 1:2 with linespoints lw 2 title 'train loss', "
       << "'' skip 1 using 1:3 with linespoints lw 2 title 'test loss', "
       << "'' skip 1 using 1:6 axes x1y2 with lines dt 2 lw 2 title 'test PSNR (right)'\n";
  }
  const std::string command = "gnuplot '" + script + "' > '" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  std::string message;
  if (status != 0 || !fs::exists(png)) {
    std::ifstream in(log);
    std::getline(in, message, '\0');
  }
  std::vector<std::uint8_t> bytes;
  if (status == 0 && fs::exists(png)) bytes = read_file(png);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (bytes.empty())
    throw Error("plot: gnuplot failed (status " + std::to_string(status) + "; install Debian's " +
                "gnuplot-nox): " + message);
  write_file_atomic(png_path, bytes);
}

}  // namespace cae::train
