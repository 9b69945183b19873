#include "train/tiling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <optional>

#include "cae/error.h"
#include "data/corrupt.h"
#include "train/fill.h"

namespace cae::train {

std::vector<int> tile_starts(int length, int tile, int overlap) {
  if (tile < 1 || overlap < 0 || overlap >= tile)
    throw Error("tiling: overlap " + std::to_string(overlap) + " must be 0 to tile size " +
                std::to_string(tile) + " − 1");
  if (length <= tile) return {0};
  const int n = (length - overlap + (tile - overlap) - 1) / (tile - overlap);
  std::vector<int> starts(std::max(n, 2));
  const int last = length - tile;
  for (int k = 0; k < int(starts.size()); ++k)
    starts[k] = int((std::int64_t(k) * last + (starts.size() - 1) / 2) / (starts.size() - 1));
  return starts;
}

std::vector<float> tile_weights(const std::vector<int>& starts, int k, int tile) {
  std::vector<float> w(tile, 1.f);
  const int s = starts[k];
  if (k > 0) {  // rising across [s, end of the previous tile)
    const int len = starts[k - 1] + tile - s;
    for (int i = 0; i < len && i < tile; ++i) {
      const double t = std::sin(std::numbers::pi / 2 * (i + 0.5) / len);
      w[i] *= float(t * t);
    }
  }
  if (k + 1 < int(starts.size())) {  // falling across [start of the next tile, s + tile)
    const int from = starts[k + 1] - s, len = tile - from;
    for (int i = 0; i < len; ++i) {
      const double t = std::cos(std::numbers::pi / 2 * (i + 0.5) / len);
      w[from + i] *= float(t * t);
    }
  }
  return w;
}

namespace {

// The tiles' starts along each axis, for an image of d and tiles of the model's input t.
struct TileGrid {
  std::vector<int> ys, xs;
  int tiles() const { return int(ys.size() * xs.size()); }
};

TileGrid tile_grid(const nn::Model& model, ops::Dims d, const TileOptions& options,
                   const float* mask) {
  const ops::Dims t = model.input();
  const int out_c = model.output().c;  // t.c, or t.c − 1 for an informed model
  if (d.c != out_c)
    throw Error("tiling: the image has " + std::to_string(d.c) + " channels, the model takes " +
                std::to_string(out_c) + (model.informed() ? " and the damage mask" : ""));
  if (model.informed() && !mask)
    throw Error("tiling: the model is informed and needs the damage mask");
  if (d.h < 1 || d.w < 1) throw Error("tiling: the image is empty");
  const int overlap_y = options.overlap >= 0 ? options.overlap : t.h / 4;
  const int overlap_x = options.overlap >= 0 ? options.overlap : t.w / 4;
  return {tile_starts(d.h, t.h, std::min(overlap_y, t.h - 1)),
          tile_starts(d.w, t.w, std::min(overlap_x, t.w - 1))};
}

}  // namespace

namespace {

// An informed repair of float planes through repair_windows: the image and its mask as given,
// the output a copy of the image that the windows write into.
class FloatWindows : public PhotoWindows {
 public:
  FloatWindows(const float* image, const float* mask, ops::Dims d, std::vector<float>& out)
      : image_(image), mask_(mask), d_(d), out_(out) {}
  void damaged_columns(int y, std::vector<int>& xs) const override {
    xs.clear();
    const float* row = mask_ + std::size_t(y) * d_.w;
    for (int x = 0; x < d_.w; ++x)
      if (row[x] != 0.f) xs.push_back(x);
  }
  void read(Rect r, float* planes, float* mask) const override {
    const std::size_t plane = std::size_t(d_.h) * d_.w, rp = std::size_t(r.h) * r.w;
    for (int y = 0; y < r.h; ++y) {
      const std::size_t from = std::size_t(r.y + y) * d_.w + r.x;
      std::copy_n(mask_ + from, r.w, mask + std::size_t(y) * r.w);
      for (int c = 0; c < d_.c; ++c)
        std::copy_n(image_ + c * plane + from, r.w, planes + c * rp + std::size_t(y) * r.w);
    }
  }
  void write(Rect r, const float* planes, const std::uint8_t* take) override {
    const std::size_t plane = std::size_t(d_.h) * d_.w, rp = std::size_t(r.h) * r.w;
    for (int y = 0; y < r.h; ++y)
      for (int x = 0; x < r.w; ++x) {
        const std::size_t at = std::size_t(y) * r.w + x;
        if (!take[at]) continue;
        for (int c = 0; c < d_.c; ++c)
          out_[c * plane + std::size_t(r.y + y) * d_.w + r.x + x] = planes[c * rp + at];
      }
  }

 private:
  const float *image_, *mask_;
  ops::Dims d_;
  std::vector<float>& out_;
};

}  // namespace

bool takes_colours(const nn::Model& model, int colours) {
  const int c = model.output().c;
  return colours == c || (colours == 1 && c == 3);
}

std::vector<float> denoise_photo(const nn::Model& model, const float* image, ops::Dims d,
                                 const TileOptions& options, TileStats* stats) {
  const int c = model.output().c;
  if (d.c == c) return denoise_tiled(model, image, d, options, nullptr, stats);
  if (!takes_colours(model, d.c))
    throw Error("denoise: the image has " + std::to_string(d.c) + " channel(s), the model takes " +
                std::to_string(c));
  const std::size_t hw = std::size_t(d.h) * d.w;
  std::vector<float> rgb(3 * hw);
  for (int k = 0; k < 3; ++k) std::copy_n(image, hw, rgb.data() + k * hw);
  std::vector<float> y = denoise_tiled(model, rgb.data(), {3, d.h, d.w}, options, nullptr, stats);
  for (std::size_t p = 0; p < hw; ++p) y[p] = (y[p] + y[hw + p] + y[2 * hw + p]) / 3.f;
  y.resize(hw);
  return y;
}

std::vector<float> denoise_tiled(const nn::Model& model, const float* image, ops::Dims d,
                                 const TileOptions& options, const float* mask, TileStats* stats) {
  const int tiles = tile_grid(model, d, options, mask).tiles();
  if (model.informed() && ensemble_size(options.ensemble) == 1) {
    // The executor is built for the tiles that run, which only the windows know.
    std::vector<float> out(image, image + d.size());
    FloatWindows io(image, mask, d, out);
    const TileStats ran = repair_windows(model, nullptr, d, options, io);
    if (stats) *stats = ran;
    return out;
  }
  auto exec = model.make_inference_executor(options.backend, std::clamp(options.batch, 1, tiles),
                                            options.executor);
  return denoise_tiled(model, *exec, image, d, options, mask, stats);
}

namespace {

// Symmetry g (0–7) of the square: bit 2 transposes first, then bit 1 reverses the rows and
// bit 0 the columns. Ensures the d.c planes of src moved by g (inverse false: dims d in, d with
// h and w swapped when g transposes out) or by g's inverse (inverse true: the dims of g's
// output in, d out). Every pixel is copied, none is computed.
std::vector<float> dihedral(const float* src, ops::Dims d, int g, bool inverse) {
  const bool transpose = g & 4, vflip = g & 2, hflip = g & 1;
  const int th = transpose ? d.w : d.h, tw = transpose ? d.h : d.w;  // g's output
  const ops::Dims in = inverse ? ops::Dims{d.c, th, tw} : d;
  const ops::Dims out = inverse ? d : ops::Dims{d.c, th, tw};
  std::vector<float> dst(d.size());
  const std::size_t in_plane = std::size_t(in.h) * in.w, out_plane = std::size_t(out.h) * out.w;
  for (int y = 0; y < out.h; ++y)
    for (int x = 0; x < out.w; ++x) {
      int sy, sx;  // where (y, x) of out reads in
      if (!inverse) {  // out is g's frame: undo the flips, then the transpose
        const int y1 = vflip ? th - 1 - y : y, x1 = hflip ? tw - 1 - x : x;
        sy = transpose ? x1 : y1, sx = transpose ? y1 : x1;
      } else {  // in is g's frame: transpose, then flip
        const int y1 = transpose ? x : y, x1 = transpose ? y : x;
        sy = vflip ? th - 1 - y1 : y1, sx = hflip ? tw - 1 - x1 : x1;
      }
      for (int c = 0; c < d.c; ++c)
        dst[c * out_plane + std::size_t(y) * out.w + x] =
            src[c * in_plane + std::size_t(sy) * in.w + sx];
    }
  return dst;
}

// One pass of the tiles over source (the image, or its fill for a model that corrects one):
// the blended output before data::keep_undamaged. An informed model's tiles that hold no
// damaged pixel are not run (keep_undamaged replaces all of their pixels), and a pixel no tile
// ran over is 0. Adds the pass's tiles, and those it ran, to stats.
std::vector<float> tile_pass(const nn::Model& model, ops::Executor& exec, const float* source,
                             ops::Dims d, const TileOptions& options, const float* mask,
                             bool corrects_fill, TileStats& stats) {
  const ops::Dims t = model.input();
  const int out_c = model.output().c;
  const TileGrid grid = tile_grid(model, d, options, mask);
  const std::vector<int>&ys = grid.ys, &xs = grid.xs;
  std::vector<int> todo;  // the tiles run, in row-major order
  for (int k = 0; k < grid.tiles(); ++k) {
    const int y0 = ys[k / xs.size()], x0 = xs[k % xs.size()];
    bool damaged = !model.informed();
    for (int r = 0; r < t.h && y0 + r < d.h && !damaged; ++r)
      for (int q = 0; q < t.w && x0 + q < d.w; ++q)
        if (mask[std::size_t(y0 + r) * d.w + x0 + q] != 0) {
          damaged = true;
          break;
        }
    if (damaged) todo.push_back(k);
  }
  stats.tiles += grid.tiles();
  stats.tiles_run += int(todo.size());
  const int tiles = int(todo.size());
  const int batch = exec.desc().batch;

  const std::size_t plane = std::size_t(d.h) * d.w, tile_size = t.size();
  const std::size_t tile_plane = std::size_t(t.h) * t.w, out_size = tile_plane * out_c;
  std::vector<float> sum(d.size(), 0.f), weight(plane, 0.f);
  std::vector<float> x(batch * tile_size), y(batch * out_size);
  std::vector<float> shifted(corrects_fill ? y.size() : 0);
  for (int first = 0; first < tiles; first += batch) {
    const int count = std::min(batch, tiles - first);
    for (int b = 0; b < count; ++b) {
      const int k = todo[first + b];
      const int y0 = ys[k / xs.size()], x0 = xs[k % xs.size()];
      float* dst = x.data() + b * tile_size;
      for (int c = 0; c < t.c; ++c) {
        // An informed model's last input plane is the mask (data::with_mask_channel's order).
        const float* src = c < d.c ? source + c * plane : mask;
        for (int r = 0; r < t.h; ++r)
          for (int q = 0; q < t.w; ++q)  // beyond a small image's edge: its last row/column
            dst[c * tile_plane + r * t.w + q] =
                src[std::size_t(std::min(y0 + r, d.h - 1)) * d.w + std::min(x0 + q, d.w - 1)];
      }
    }
    std::fill(x.begin() + count * tile_size, x.end(), 0.f);
    exec.forward(x.data());
    const float* net_out = exec.output();
    if (corrects_fill) {  // the net's output corrects the fill, which is the tile's image planes
      for (int b = 0; b < count; ++b)
        for (std::size_t k = 0; k < out_size; ++k)
          shifted[b * out_size + k] = net_out[b * out_size + k] + x[b * tile_size + k];
      net_out = shifted.data();
    }
    nn::output_to_image(model.loss(), net_out, y.data(), count * out_size);
    for (int b = 0; b < count; ++b) {
      const int k = todo[first + b];
      const int ky = k / int(xs.size()), kx = k % int(xs.size());
      const std::vector<float> wy = tile_weights(ys, ky, t.h), wx = tile_weights(xs, kx, t.w);
      const float* src = y.data() + b * out_size;
      for (int r = 0; r < t.h && ys[ky] + r < d.h; ++r)
        for (int q = 0; q < t.w && xs[kx] + q < d.w; ++q) {
          const float w = wy[r] * wx[q];
          const std::size_t p = std::size_t(ys[ky] + r) * d.w + xs[kx] + q;
          weight[p] += w;
          for (int c = 0; c < out_c; ++c)
            sum[c * plane + p] += w * src[c * tile_plane + r * t.w + q];
        }
    }
  }
  for (std::size_t p = 0; p < plane; ++p)
    if (weight[p] > 0)
      for (int c = 0; c < d.c; ++c) sum[c * plane + p] /= weight[p];
  return sum;
}

}  // namespace

int ensemble_size(int n) {
  if (n != 1 && n != 2 && n != 4 && n != 8)
    throw Error("tiling: the ensemble is " + std::to_string(n) +
                " symmetries; it must be 1, 2, 4 or 8");
  return n;
}

std::vector<float> denoise_tiled(const nn::Model& model, ops::Executor& exec, const float* image,
                                 ops::Dims d, const TileOptions& options, const float* mask,
                                 TileStats* stats) {
  tile_grid(model, d, options, mask);  // checks the channels and the mask
  const int n = ensemble_size(options.ensemble);
  if (model.informed() && n == 1) {
    std::vector<float> out(image, image + d.size());
    FloatWindows io(image, mask, d, out);
    const TileStats ran = repair_windows(model, &exec, d, options, io);
    if (stats) *stats = ran;
    return out;
  }
  // A fill repairs the whole image first (as the baseline does), and the tiles carry its repair.
  const std::optional<nn::Fill>& fill = model.fill_settings();
  std::vector<float> filled;
  if (fill) {
    filled.resize(d.size());
    apply_fill(*fill, image, filled.data(), 1, d, mask);
  }
  const float* source = fill ? filled.data() : image;
  const ops::Dims plane{1, d.h, d.w};
  TileStats counted;
  std::vector<float> out =
      tile_pass(model, exec, source, d, options, mask, fill.has_value(), counted);
  for (int g = 1; g < n; ++g) {  // the image (and mask) turned by g, repaired, and turned back
    const std::vector<float> moved = dihedral(source, d, g, false);
    const std::vector<float> moved_mask =
        mask ? dihedral(mask, plane, g, false) : std::vector<float>();
    const ops::Dims gd = g & 4 ? ops::Dims{d.c, d.w, d.h} : d;
    const std::vector<float> pass = tile_pass(model, exec, moved.data(), gd, options,
                                              mask ? moved_mask.data() : nullptr,
                                              fill.has_value(), counted);
    const std::vector<float> back = dihedral(pass.data(), d, g, true);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += back[i];
  }
  if (n > 1)
    for (float& v : out) v /= float(n);
  if (stats) *stats = counted;
  if (model.informed()) data::keep_undamaged(image, mask, 1, d, out.data());
  return out;
}

namespace {

// A group of tiles that overlap or touch, the window that bounds them, and what the repair
// holds for it: the source the tiles read (the photo, or its fill), the mask, and the blend.
struct Window {
  Rect r;
  std::vector<int> tiles;  // indices into the grid, row-major order
  std::vector<float> source, mask, sum, weight;
};

// The tiles (indices into a grid of ys.size() × xs.size()) that hold a damaged pixel.
std::vector<int> damaged_tiles(const PhotoWindows& io, ops::Dims d, const std::vector<int>& ys,
                               const std::vector<int>& xs, ops::Dims t) {
  // For each row and column, the first and last tile that covers it.
  auto covering = [](const std::vector<int>& starts, int length, int tile) {
    std::vector<std::pair<int, int>> span(length, {int(starts.size()), -1});
    for (int k = 0; k < int(starts.size()); ++k)
      for (int i = starts[k]; i < std::min(length, starts[k] + tile); ++i)
        span[i] = {std::min(span[i].first, k), std::max(span[i].second, k)};
    return span;
  };
  const auto rows = covering(ys, d.h, t.h), cols = covering(xs, d.w, t.w);
  const std::size_t nx = xs.size();
  std::vector<std::uint8_t> hit(ys.size() * nx, 0), row_hit(nx);
  std::vector<int> columns;
  for (int y = 0; y < d.h; ++y) {
    io.damaged_columns(y, columns);
    if (columns.empty()) continue;
    std::fill(row_hit.begin(), row_hit.end(), 0);  // the tile columns this row's damage is in
    for (int x : columns)
      for (int j = cols[x].first; j <= cols[x].second; ++j) row_hit[j] = 1;
    for (std::size_t j = 0; j < nx; ++j)
      if (row_hit[j])
        for (int i = rows[y].first; i <= rows[y].second; ++i) hit[i * nx + j] = 1;
  }
  std::vector<int> todo;
  for (int k = 0; k < int(hit.size()); ++k)
    if (hit[k]) todo.push_back(k);
  return todo;
}

// The windows of the tiles todo: groups of tiles whose rectangles overlap or touch (union-find
// over each tile's near neighbours in the grid), each bounded by the box of its tiles, cut to
// the image.
std::vector<Window> group_tiles(const std::vector<int>& todo, const std::vector<int>& ys,
                                const std::vector<int>& xs, ops::Dims t, ops::Dims d) {
  const int nx = int(xs.size());
  std::vector<int> parent(ys.size() * xs.size(), -1);  // -1: not run
  for (int k : todo) parent[k] = k;
  auto find = [&](int k) {
    while (parent[k] != k) k = parent[k] = parent[parent[k]];
    return k;
  };
  auto reach = [](const std::vector<int>& starts, int tile) {  // grid steps a tile can span
    int step = tile;
    for (std::size_t i = 1; i < starts.size(); ++i) step = std::min(step, starts[i] - starts[i - 1]);
    return tile / std::max(step, 1) + 1;
  };
  const int ky = reach(ys, t.h), kx = reach(xs, t.w);
  for (int k : todo) {
    const int i = k / nx, j = k % nx;
    for (int a = std::max(0, i - ky); a <= std::min(int(ys.size()) - 1, i + ky); ++a)
      for (int b = std::max(0, j - kx); b <= std::min(nx - 1, j + kx); ++b) {
        const int other = a * nx + b;
        if (parent[other] < 0 || std::abs(ys[a] - ys[i]) > t.h || std::abs(xs[b] - xs[j]) > t.w)
          continue;
        parent[find(other)] = find(k);
      }
  }
  std::vector<Window> windows;
  std::vector<int> window_of(parent.size(), -1);
  for (int k : todo) {
    const int root = find(k);
    if (window_of[root] < 0) {
      window_of[root] = int(windows.size());
      windows.emplace_back();
      windows.back().r = {ys[k / nx], xs[k % nx], 0, 0};
    }
    Window& w = windows[window_of[root]];
    w.tiles.push_back(k);
    const int y0 = std::min(w.r.y, ys[k / nx]), x0 = std::min(w.r.x, xs[k % nx]);
    const int y1 = std::max(w.r.y + w.r.h, ys[k / nx] + t.h), x1 = std::max(w.r.x + w.r.w, xs[k % nx] + t.w);
    w.r = {y0, x0, y1 - y0, x1 - x0};
  }
  for (Window& w : windows) {
    w.r.h = std::min(w.r.h, d.h - w.r.y);
    w.r.w = std::min(w.r.w, d.w - w.r.x);
  }
  return windows;
}

// Reads the window's photo and mask, and, with a fill, fills the window and a margin around it
// that reaches as far as the fill's pieces do; the window's source is then the fill.
void prepare_window(Window& w, const PhotoWindows& io, ops::Dims d, const nn::Model& model) {
  const std::size_t plane = std::size_t(w.r.h) * w.r.w;
  w.source.resize(plane * d.c);
  w.mask.resize(plane);
  const std::optional<nn::Fill>& fill = model.fill_settings();
  if (!fill) {
    io.read(w.r, w.source.data(), w.mask.data());
    return;
  }
  const int margin = 2 * (fill->radius + 1);
  const int y0 = std::max(0, w.r.y - margin), x0 = std::max(0, w.r.x - margin);
  const Rect around{y0, x0, std::min(d.h, w.r.y + w.r.h + margin) - y0,
                    std::min(d.w, w.r.x + w.r.w + margin) - x0};
  const ops::Dims ad{d.c, around.h, around.w};
  const std::size_t around_plane = std::size_t(around.h) * around.w;
  std::vector<float> image(ad.size()), mask(around_plane), filled(ad.size());
  io.read(around, image.data(), mask.data());
  apply_fill(*fill, image.data(), filled.data(), 1, ad, mask.data());
  for (int y = 0; y < w.r.h; ++y) {
    const std::size_t from = std::size_t(w.r.y - around.y + y) * around.w + (w.r.x - around.x);
    std::copy_n(mask.data() + from, w.r.w, w.mask.data() + std::size_t(y) * w.r.w);
    for (int c = 0; c < d.c; ++c)
      std::copy_n(filled.data() + c * around_plane + from, w.r.w,
                  w.source.data() + c * plane + std::size_t(y) * w.r.w);
  }
}

}  // namespace

TileStats repair_windows(const nn::Model& model, ops::Executor* exec, ops::Dims d,
                         const TileOptions& options, PhotoWindows& io) {
  if (!model.informed()) throw Error("tiling: repair_windows needs an informed model");
  if (ensemble_size(options.ensemble) != 1)
    throw Error("tiling: repair_windows repairs without the symmetries' ensemble");
  const float one = 1;  // tile_grid's checks want a mask; the windows read it
  const TileGrid grid = tile_grid(model, d, options, &one);
  const ops::Dims t = model.input();
  const int out_c = model.output().c, nx = int(grid.xs.size());
  const std::vector<int> todo = damaged_tiles(io, d, grid.ys, grid.xs, t);
  TileStats stats;
  stats.tiles = grid.tiles();
  stats.tiles_run = int(todo.size());
  if (todo.empty()) return stats;
  std::vector<Window> windows = group_tiles(todo, grid.ys, grid.xs, t, d);
  for (Window& w : windows) prepare_window(w, io, d, model);

  std::unique_ptr<ops::Executor> own;
  if (!exec) {
    own = model.make_inference_executor(
        options.backend, std::clamp(options.batch, 1, int(todo.size())), options.executor);
    exec = own.get();
  }
  // The tiles in row-major order, each with its window, run batch by batch.
  std::vector<std::pair<int, Window*>> queue;
  for (Window& w : windows) {
    w.sum.assign(std::size_t(w.r.h) * w.r.w * out_c, 0.f);
    w.weight.assign(std::size_t(w.r.h) * w.r.w, 0.f);
    for (int k : w.tiles) queue.emplace_back(k, &w);
  }
  std::sort(queue.begin(), queue.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  const bool corrects_fill = model.fill_settings().has_value();
  const int batch = exec->desc().batch;
  const std::size_t tile_size = t.size(), tile_plane = std::size_t(t.h) * t.w;
  const std::size_t out_size = tile_plane * out_c;
  std::vector<float> x(batch * tile_size), y(batch * out_size);
  std::vector<float> shifted(corrects_fill ? y.size() : 0);
  for (std::size_t first = 0; first < queue.size(); first += batch) {
    const int count = int(std::min<std::size_t>(batch, queue.size() - first));
    for (int b = 0; b < count; ++b) {
      const auto [k, w] = queue[first + b];
      const int y0 = grid.ys[k / nx], x0 = grid.xs[k % nx];
      const std::size_t wp = std::size_t(w->r.h) * w->r.w;
      float* dst = x.data() + b * tile_size;
      for (int c = 0; c < t.c; ++c) {
        // An informed model's last input plane is the mask (data::with_mask_channel's order).
        const float* src = c < d.c ? w->source.data() + c * wp : w->mask.data();
        for (int r = 0; r < t.h; ++r)
          for (int q = 0; q < t.w; ++q)  // beyond a small photo's edge: its last row/column
            dst[c * tile_plane + r * t.w + q] =
                src[std::size_t(std::min(y0 + r, d.h - 1) - w->r.y) * w->r.w +
                    std::min(x0 + q, d.w - 1) - w->r.x];
      }
    }
    std::fill(x.begin() + count * tile_size, x.end(), 0.f);
    exec->forward(x.data());
    const float* net_out = exec->output();
    if (corrects_fill) {  // the net's output corrects the fill, which is the tile's image planes
      for (int b = 0; b < count; ++b)
        for (std::size_t i = 0; i < out_size; ++i)
          shifted[b * out_size + i] = net_out[b * out_size + i] + x[b * tile_size + i];
      net_out = shifted.data();
    }
    nn::output_to_image(model.loss(), net_out, y.data(), count * out_size);
    for (int b = 0; b < count; ++b) {
      const auto [k, w] = queue[first + b];
      const int ky = k / nx, kx = k % nx;
      const std::vector<float> wy = tile_weights(grid.ys, ky, t.h), wx = tile_weights(grid.xs, kx, t.w);
      const std::size_t wp = std::size_t(w->r.h) * w->r.w;
      const float* src = y.data() + b * out_size;
      for (int r = 0; r < t.h && grid.ys[ky] + r < d.h; ++r)
        for (int q = 0; q < t.w && grid.xs[kx] + q < d.w; ++q) {
          const float wt = wy[r] * wx[q];
          const std::size_t p =
              std::size_t(grid.ys[ky] + r - w->r.y) * w->r.w + grid.xs[kx] + q - w->r.x;
          w->weight[p] += wt;
          for (int c = 0; c < out_c; ++c) w->sum[c * wp + p] += wt * src[c * tile_plane + r * t.w + q];
        }
    }
  }
  for (Window& w : windows) {
    const std::size_t wp = std::size_t(w.r.h) * w.r.w;
    std::vector<std::uint8_t> take(wp);
    for (std::size_t p = 0; p < wp; ++p) {
      take[p] = w.weight[p] > 0 && w.mask[p] != 0;
      if (take[p])
        for (int c = 0; c < out_c; ++c) w.sum[c * wp + p] /= w.weight[p];
    }
    io.write(w.r, w.sum.data(), take.data());
  }
  return stats;
}

}  // namespace cae::train
