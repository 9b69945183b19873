#include "data/grid.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "cae/error.h"

namespace cae::data {

namespace {

std::string cell_name(std::size_t r, std::size_t k) {
  return "make_grid: image at row " + std::to_string(r) + ", column " + std::to_string(k);
}

}  // namespace

Image make_grid(const std::vector<std::vector<Image>>& rows, int gap, std::uint8_t background) {
  if (gap < 0) throw Error("make_grid: gap " + std::to_string(gap) + ", expected >= 0");

  int cell_h = 0;
  int channels = 1;
  std::vector<int> column_w;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t k = 0; k < rows[r].size(); ++k) {
      const Image& image = rows[r][k];
      if (image.h <= 0 || image.w <= 0 || (image.c != 1 && image.c != 3))
        throw Error(cell_name(r, k) + " is " + std::to_string(image.h) + "×" +
                    std::to_string(image.w) + "×" + std::to_string(image.c) +
                    ", expected h, w > 0 and c = 1 or 3");
      if (image.pixels.size() != std::size_t(image.h) * image.w * image.c)
        throw Error(cell_name(r, k) + " has " + std::to_string(image.pixels.size()) +
                    " bytes of pixels, expected " +
                    std::to_string(std::size_t(image.h) * image.w * image.c));
      if (cell_h == 0) cell_h = image.h;
      if (image.h != cell_h)
        throw Error(cell_name(r, k) + " has height " + std::to_string(image.h) + ", expected " +
                    std::to_string(cell_h) + " like the first image");
      if (image.c == 3) channels = 3;
      if (column_w.size() <= k) column_w.resize(k + 1, 0);
      column_w[k] = std::max(column_w[k], image.w);
    }
  }
  if (cell_h == 0) throw Error("make_grid: no images, expected at least one");

  std::vector<std::int64_t> column_x(column_w.size(), 0);
  std::int64_t width = 0;
  for (std::size_t k = 0; k < column_w.size(); ++k) {
    column_x[k] = k == 0 ? 0 : width + gap;
    width = column_x[k] + column_w[k];
  }
  const auto n_rows = std::int64_t(rows.size());
  const std::int64_t height = n_rows * cell_h + (n_rows - 1) * gap;
  if (width > INT_MAX || height > INT_MAX)
    throw Error("make_grid: the grid would be " + std::to_string(height) + "×" +
                std::to_string(width) + " pixels, more than an Image can hold");
  Image grid;
  grid.h = int(height);
  grid.w = int(width);
  grid.c = channels;
  grid.pixels.assign(std::size_t(grid.h) * grid.w * grid.c, background);

  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::size_t y0 = r * std::size_t(cell_h + gap);
    for (std::size_t k = 0; k < rows[r].size(); ++k) {
      const Image& image = rows[r][k];
      for (int y = 0; y < image.h; ++y) {
        std::uint8_t* dst =
            grid.pixels.data() + ((y0 + y) * grid.w + std::size_t(column_x[k])) * grid.c;
        const std::uint8_t* src = image.pixels.data() + std::size_t(y) * image.w * image.c;
        if (image.c == grid.c) {
          std::copy(src, src + std::size_t(image.w) * image.c, dst);
        } else {  // gray into RGB
          for (int x = 0; x < image.w; ++x) std::fill_n(dst + 3 * x, 3, src[x]);
        }
      }
    }
  }
  return grid;
}

}  // namespace cae::data
