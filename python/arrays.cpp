#include "arrays.h"

#include "bindings.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cae/error.h"
#include "data/dataset.h"

namespace cae::python {

namespace {

const std::vector<std::string> kLayouts = {"NHWC", "HWC", "NCHW", "CHW", "NHW", "HW"};

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s;
}

// The shape an array in `layout` has when it holds `count` items of `item`; count -1 shows "N".
std::string expected_text(const Layout& layout, Shape item) {
  std::string s = "(";
  for (std::size_t i = 0; i < layout.axes.size(); ++i) {
    const char axis = layout.axes[i];
    s += i ? ", " : "";
    s += axis == 'N'   ? std::string("N")
         : axis == 'C' ? std::to_string(item.channels)
         : axis == 'H' ? std::to_string(item.height)
                       : std::to_string(item.width);
  }
  return s + ")";
}

py::module_ numpy() { return py::module_::import("numpy"); }

// The caller's array as a 4-D view, (N, H, W, C) for channels-last layouts and (N, C, H, W) for
// channels-first ones: missing N and C axes added as axes of one (views, never copies).
py::object as_4d(const py::handle& array, const Layout& layout) {
  py::object a = py::reinterpret_borrow<py::object>(array);
  if (!layout.batch()) a = numpy().attr("expand_dims")(a, 0);
  if (!layout.has_channels()) a = numpy().attr("expand_dims")(a, 3);
  return a;
}

// The permutation from the caller's 4-D order to `order`, or none.
py::object permutation(bool channels_first, Order order) {
  if (channels_first == (order == Order::nchw)) return py::none();
  return channels_first ? py::make_tuple(0, 2, 3, 1) : py::make_tuple(0, 3, 1, 2);
}

void check_finite(const std::string& what, const float* values, std::size_t n,
                  const std::vector<py::ssize_t>& shape) {
  std::size_t bad = n;
  {
    py::gil_scoped_release release;
    for (std::size_t i = 0; i < n && bad == n; ++i)
      if (!std::isfinite(values[i])) bad = i;
  }
  if (bad == n) return;
  throw Error(what + ": the array holds " + std::to_string(values[bad]) + " (float images and "
              "codes must be finite); array of shape " + shape_text(shape));
}

template <class T>
py::array to_caller(std::vector<T>&& values, const EngineInput& in, Shape item, Order order) {
  const py::ssize_t n = in.count;
  std::vector<py::ssize_t> engine_shape =
      order == Order::nchw
          ? std::vector<py::ssize_t>{n, item.channels, item.height, item.width}
          : std::vector<py::ssize_t>{n, item.height, item.width, item.channels};
  py::object out = owning_array(std::move(values), engine_shape);
  const bool channels_first = in.layout.channels_first();
  // From the engine's order back to the caller's: the inverse of permutation().
  if (channels_first != (order == Order::nchw))
    out = out.attr("transpose")(channels_first ? py::make_tuple(0, 3, 1, 2)
                                               : py::make_tuple(0, 2, 3, 1));
  out = numpy().attr("ascontiguousarray")(out);
  std::vector<py::ssize_t> shape;
  if (in.layout.batch()) shape.push_back(n);
  const bool channel_axis = in.layout.has_channels() || item.channels != 1;
  if (channels_first && channel_axis) shape.push_back(item.channels);
  shape.push_back(item.height);
  shape.push_back(item.width);
  if (!channels_first && channel_axis) shape.push_back(item.channels);
  return out.attr("reshape")(py::tuple(py::cast(shape)));
}

}  // namespace

Layout resolve_layout(const std::string& what, const py::object& layout, int ndim) {
  if (layout.is_none()) {
    if (ndim == 4) return {"NHWC"};
    if (ndim == 3) return {"HWC"};
    if (ndim == 2) return {"HW"};
    throw Error(what + ": an array of " + std::to_string(ndim) +
                " dimension(s) holds no images: expected 4 (N, H, W, C), 3 (H, W, C) or 2 "
                "(H, W), or a layout= of " + joined(kLayouts));
  }
  if (!py::isinstance<py::str>(layout))
    throw Error(what + ": layout must be a string, one of " + joined(kLayouts) + ", found " +
                type_name(layout));
  const std::string name = layout.cast<std::string>();
  if (std::find(kLayouts.begin(), kLayouts.end(), name) == kLayouts.end())
    throw Error(what + ": unknown layout '" + name + "': expected one of " + joined(kLayouts));
  if (int(name.size()) != ndim)
    throw Error(what + ": layout " + name + " needs an array of " + std::to_string(name.size()) +
                " dimensions, found " + std::to_string(ndim));
  return {name};
}

EngineInput to_engine(const std::string& what, const py::handle& array, const py::object& layout,
                      Shape item, bool allow_u8, Order order) {
  if (!py::isinstance<py::array>(array))
    throw Error(what + ": expected a NumPy array, found " +
                type_name(array));
  const auto a = py::reinterpret_borrow<py::array>(array);
  EngineInput in;
  if (a.dtype().equal(py::dtype::of<float>()))
    in.dtype = DType::f32;
  else if (allow_u8 && a.dtype().equal(py::dtype::of<std::uint8_t>()))
    in.dtype = DType::u8;
  else
    throw Error(what + ": dtype " + std::string(py::str(a.dtype())) + " is not " +
                (allow_u8 ? "uint8 or float32" : "float32") +
                " (convert with .astype(numpy.float32); float images are in [0, 1])");
  in.layout = resolve_layout(what, layout, int(a.ndim()));
  in.shape.assign(a.shape(), a.shape() + a.ndim());
  Shape found;
  in.count = 1;
  for (std::size_t i = 0; i < in.layout.axes.size(); ++i) {
    const py::ssize_t size = in.shape[i];
    switch (in.layout.axes[i]) {
      case 'N':
        if (size > std::numeric_limits<int>::max())
          throw Error(what + ": a batch of " + std::to_string(size) + " is too large");
        in.count = int(size);
        break;
      case 'C': found.channels = int(size); break;
      case 'H': found.height = int(size); break;
      default: found.width = int(size);
    }
  }
  if (!in.layout.has_channels()) found.channels = 1;
  if (!(found == item)) {
    std::string hint;
    if (layout.is_none() && in.layout.axes == "HWC" && item.channels == 1 &&
        in.shape[1] == item.height && in.shape[2] == item.width)
      hint = " (a batch of gray images? give layout='NHW')";
    throw Error(what + ": layout " + in.layout.axes + " needs an array of shape " +
                expected_text(in.layout, item) + " here, found " + shape_text(in.shape) + hint);
  }
  py::object view = as_4d(a, in.layout);
  if (py::object perm = permutation(in.layout.channels_first(), order); !perm.is_none())
    view = view.attr("transpose")(perm);
  in.values = numpy().attr("ascontiguousarray")(view);
  if (in.dtype == DType::f32)
    check_finite(what, static_cast<const float*>(in.values.data()), std::size_t(in.values.size()),
                 in.shape);
  return in;
}

py::array from_engine(std::vector<float>&& values, const EngineInput& in, Shape item,
                      Order order) {
  return to_caller(std::move(values), in, item, order);
}

py::array from_engine(std::vector<std::uint8_t>&& values, const EngineInput& in, Shape item,
                      Order order) {
  return to_caller(std::move(values), in, item, order);
}

std::vector<float> bytes_to_floats(std::span<const std::uint8_t> bytes) {
  std::vector<float> out(bytes.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = data::byte_to_float(bytes[i]);
  return out;
}

}  // namespace cae::python
