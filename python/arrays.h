// NumPy arrays of images and latent codes: the layout an array is read in, the checks it passes
// before any work, and the moves between the caller's layout and the engine's. An array that is
// already C-contiguous in the engine's order is used in place; anything else is copied once.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cae/cae.h"

namespace cae::python {

namespace py = pybind11;

// The axes of an array, outermost first: N the batch, C the channels, H the rows, W the columns.
// "NHWC", "HWC", "NCHW", "CHW", or for one channel "NHW", "HW".
struct Layout {
  std::string axes;
  bool batch() const { return axes.front() == 'N'; }
  bool has_channels() const { return axes.find('C') != std::string::npos; }
  bool channels_first() const { return axes.size() >= 3 && axes[axes.size() - 3] == 'C'; }
};

// Requires layout None or one of the names above. Ensures the layout of an ndim-dimensional
// array: the one named, else channels last by ndim (4: NHWC, 3: HWC, 2: HW). Throws cae::Error
// naming `what` on an unknown name or one whose axes are not ndim.
Layout resolve_layout(const std::string& what, const py::object& layout, int ndim);

// The engine's orders: NCHW floats (the model's own), NHWC bytes (the API's pixel path).
enum class Order { nchw, nhwc };

enum class DType { u8, f32 };

// An array the engine can read: `values` is C-contiguous (count, C, H, W) or (count, H, W, C).
struct EngineInput {
  Layout layout;  // the caller's
  DType dtype;
  int count = 0;
  std::vector<py::ssize_t> shape;  // the caller's array's
  py::array values;
};

// Requires nothing of array. Ensures it holds items of `item` (channels x height x width) in
// the layout given (see resolve_layout), of dtype float32 or (when allow_u8) uint8, and returns
// it in `order`: the array itself when it already is C-contiguous that way, else a copy. Float
// values must be finite. Throws cae::Error naming `what`, the expected and the found shape,
// dtype or value otherwise, before any work.
EngineInput to_engine(const std::string& what, const py::handle& array, const py::object& layout,
                      Shape item, bool allow_u8, Order order);

// Requires values of in.count items of `item` in `order`. Ensures them as an array in in's
// layout, adding a last channel axis where that layout has none and item has several channels
// (codes of gray images). Takes the values without copying them where the layouts agree.
py::array from_engine(std::vector<float>&& values, const EngineInput& in, Shape item, Order order);
py::array from_engine(std::vector<std::uint8_t>&& values, const EngineInput& in, Shape item,
                      Order order);

// Requires values.size() to be the product of shape. Ensures a C-contiguous array of that shape
// that takes the values over without copying them (it frees them when NumPy lets it go).
template <class T>
py::array owning_array(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* heap = new std::vector<T>(std::move(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), heap->data(), owner);
}

// The floats byte / 255 of uint8 values, as the API's pixel path reads them.
std::vector<float> bytes_to_floats(std::span<const std::uint8_t> bytes);

}  // namespace cae::python
