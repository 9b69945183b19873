// cae.Autoencoder: the embedding API (include/cae/cae.h) with NumPy arrays. The kernels run with
// the GIL released; one model runs one call at a time, as the C++ API does.
#include <pybind11/stl.h>

#include "arrays.h"
#include "bindings.h"
#include "core/atomic_file.h"
#include "environment.h"
#include "io/model_file.h"
#include "io/model_store.h"
#include "nn/model.h"

namespace cae::python {

namespace {

// The model as a file of kind "model" (a checkpoint's current weights, when loaded from one).
std::vector<std::uint8_t> model_file_bytes(const Model& m) {
  const nn::Model model = nn::Model::from_file(io::decode_model_file(m.file, m.name), m.name);
  return io::encode_model_file(model.to_file());
}

py::object shape_tuple(const py::object& type, Shape s) {
  return type(s.channels, s.height, s.width);
}

// Calls engine.*what on in's values with the GIL released.
template <class T, class F>
auto run(const EngineInput& in, F&& call) {
  py::gil_scoped_release release;
  apply_thread_count();
  return call(std::span<const T>(static_cast<const T*>(in.values.data()),
                                 std::size_t(in.values.size())));
}

py::array denoise(const Model& m, const py::handle& images, const py::object& layout) {
  const Shape s = m.engine.image_shape();
  const bool bytes = py::isinstance<py::array>(images) &&
                     py::reinterpret_borrow<py::array>(images).dtype().equal(
                         py::dtype::of<std::uint8_t>());
  // Bytes go to the API's pixel path as HWC rows; floats as NCHW planes.
  const Order order = bytes ? Order::nhwc : Order::nchw;
  const EngineInput in = to_engine("denoise", images, layout, s, true, order);
  if (in.count == 0) return py::array(in.values.dtype(), in.shape);
  auto call = [&](auto values) { return m.engine.denoise(values, in.count); };
  if (bytes) return from_engine(run<std::uint8_t>(in, call), in, s, order);
  return from_engine(run<float>(in, call), in, s, order);
}

py::array encode(const Model& m, const py::handle& images, const py::object& layout) {
  const Shape s = m.engine.image_shape(), z = m.engine.latent_shape();
  const EngineInput in = to_engine("encode", images, layout, s, true, Order::nchw);
  if (in.count == 0) return from_engine(std::vector<float>(), in, z, Order::nchw);
  auto call = [&](std::span<const float> values) { return m.engine.encode(values, in.count); };
  if (in.dtype == DType::f32) return from_engine(run<float>(in, call), in, z, Order::nchw);
  return from_engine(run<std::uint8_t>(in,
                                       [&](std::span<const std::uint8_t> bytes) {
                                         return call(bytes_to_floats(bytes));
                                       }),
                     in, z, Order::nchw);
}

py::array decode(const Model& m, const py::handle& codes, const py::object& layout) {
  const Shape s = m.engine.image_shape(), z = m.engine.latent_shape();
  const EngineInput in = to_engine("decode", codes, layout, z, false, Order::nchw);
  if (in.count == 0) return from_engine(std::vector<float>(), in, s, Order::nchw);
  return from_engine(
      run<float>(in, [&](std::span<const float> values) { return m.engine.decode(values, in.count); }),
      in, s, Order::nchw);
}

// The photo's samples as a C-contiguous array of T, its height, width and channels (an HxW
// array is one channel).
template <class T>
py::array_t<T, py::array::c_style> photo_values(const py::array& image) {
  return py::array_t<T, py::array::c_style>::ensure(image);
}

template <class T>
py::array repair_as(const Model& m, const py::array& image, int h, int w, int c,
                    const std::vector<std::uint8_t>& mask, const RepairOptions& options) {
  const py::array_t<T, py::array::c_style> values = photo_values<T>(image);
  const std::span<const T> in(values.data(), std::size_t(values.size()));
  std::vector<T> out;
  {
    py::gil_scoped_release release;
    apply_thread_count();
    out = m.engine.repair(in, h, w, c, mask, options);
  }
  std::vector<py::ssize_t> shape(image.shape(), image.shape() + image.ndim());
  return owning_array(std::move(out), std::move(shape));
}

py::array repair(const Model& m, const py::handle& image_in, const py::handle& mask_in, int adapt,
                 double adapt_lr, int adapt_near, int ensemble, std::uint64_t seed) {
  if (!py::isinstance<py::array>(image_in))
    throw Error("repair: image must be a NumPy array (HxW or HxWxC), found " +
                type_name(image_in));
  const auto image = py::reinterpret_borrow<py::array>(image_in);
  if (image.ndim() != 2 && image.ndim() != 3)
    throw Error("repair: image must be HxW or HxWxC, found " + std::to_string(image.ndim()) +
                " dimensions");
  const int h = int(image.shape(0)), w = int(image.shape(1));
  const int c = image.ndim() == 3 ? int(image.shape(2)) : 1;
  if (!py::isinstance<py::array>(mask_in))
    throw Error("repair: mask must be a NumPy array (HxW), found " + type_name(mask_in));
  auto mask_array = py::reinterpret_borrow<py::array>(mask_in);
  if (mask_array.ndim() == 3 && mask_array.shape(2) == 1)
    mask_array = mask_array.attr("reshape")(mask_array.shape(0), mask_array.shape(1));
  if (mask_array.ndim() != 2 || mask_array.shape(0) != h || mask_array.shape(1) != w)
    throw Error("repair: the mask's shape is " +
                std::string(py::str(py::tuple(mask_array.attr("shape")))) + ", the image is " +
                std::to_string(h) + "x" + std::to_string(w) + ": expected (" + std::to_string(h) +
                ", " + std::to_string(w) + ")");
  // Non-zero = damaged, whatever the mask's dtype (bool, integers, floats).
  const auto damaged = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(
      mask_array.attr("__ne__")(0));
  const std::vector<std::uint8_t> mask(damaged.data(), damaged.data() + damaged.size());
  RepairOptions options;
  options.adapt = adapt;
  options.adapt_lr = adapt_lr;
  options.adapt_near = adapt_near;
  options.ensemble = ensemble;
  options.seed = seed;
  const py::dtype dt = image.dtype();
  if (dt.equal(py::dtype::of<std::uint8_t>()))
    return repair_as<std::uint8_t>(m, image, h, w, c, mask, options);
  if (dt.equal(py::dtype::of<std::uint16_t>()))
    return repair_as<std::uint16_t>(m, image, h, w, c, mask, options);
  if (dt.equal(py::dtype::of<float>())) return repair_as<float>(m, image, h, w, c, mask, options);
  throw Error("repair: image must be uint8 (0-255), uint16 (0-65535) or float32 (0-1), found " +
              std::string(py::str(py::object(dt))));
}

}  // namespace

Model model_from_bytes(std::vector<std::uint8_t> file, const std::string& name) {
  // The CAE_* variables as they are now (the instruction-set cap was set at import).
  Autoencoder engine =
      Autoencoder::load_bytes(file, name, engine_options_from_environment_without_isa());
  return Model{name, std::move(file), std::move(engine)};
}

void bind_autoencoder(py::module_& m) {
  py::object shape_type = py::module_::import("collections")
                              .attr("namedtuple")("Shape", "channels height width");
  shape_type.attr("__module__") = "cae";
  shape_type.attr("__doc__") =
      "The shape of one image or one latent code: channels, height, width (NCHW's order, "
      "whatever layout the arrays use).";
  m.attr("Shape") = shape_type;

  py::class_<Model>(m, "Autoencoder", R"(A trained cae model, ready to run on NumPy arrays.

Load one with Autoencoder.load(path) (a model.cae, or a checkpoint.cae: its current weights),
or get one from cae.train(). Arrays go in and come out in the same layout and dtype:

  * uint8 images are pixels 0-255, float32 images are values in [0, 1];
  * layout= names the axes: "NHWC" (the default for 4-D arrays), "HWC" (3-D), "HW" (2-D,
    one channel), "NCHW", "CHW", or "NHW" (a batch of gray images). No layout is guessed
    from the sizes.

An array already C-contiguous in the engine's order (float32 NCHW; uint8 NHWC; either, for one
channel) is read in place; any other is copied once. The kernels run with the GIL released,
so Python threads can run models at the same time; one model runs one call at a time.)")
      .def_static(
          "load",
          [](const py::object& path) {
            const std::string p = path_text("Autoencoder.load", path);
            py::gil_scoped_release release;
            return model_from_bytes(read_file(p), p);
          },
          py::arg("path"),
          "Reads a model file or checkpoint. Raises cae.Error naming the file when it cannot "
          "be read, is not a cae model, is corrupt, or holds an architecture this version does "
          "not know.")
      .def_static(
          "from_bytes",
          [](const py::object& data, const std::string& name) {
            if (py::isinstance<py::str>(data) || !PyObject_CheckBuffer(data.ptr()))
              throw Error("Autoencoder.from_bytes: expected bytes, bytearray or memoryview, "
                          "found " + type_name(data));
            const std::string_view view = py::bytes(data);
            std::vector<std::uint8_t> file(view.begin(), view.end());
            py::gil_scoped_release release;
            return model_from_bytes(std::move(file), name);
          },
          py::arg("data"), py::arg("name") = "<bytes>",
          "The model whose file's bytes are data (as to_bytes() gives them); name names it in "
          "errors.")
      .def(
          "to_bytes",
          [](const Model& self) {
            const std::vector<std::uint8_t> bytes = model_file_bytes(self);
            return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
          },
          "The model file's bytes (what save() writes).")
      .def(
          "save",
          [](const Model& self, const py::object& path) {
            const std::string p = path_text("Autoencoder.save", path);
            py::gil_scoped_release release;
            write_file_atomic(p, model_file_bytes(self));
          },
          py::arg("path"),
          "Writes the model file (atomically: a reader sees the old file or the whole new one). "
          "A model loaded from a checkpoint is saved as a model of its current weights.")
      .def("denoise", &denoise, py::arg("images"), py::arg("layout") = py::none(),
           R"(Denoises one image or a batch.

images: uint8 (0-255) or float32 ([0, 1], finite) in `layout` (see the class). Returns an
array of the same shape, dtype and layout: uint8 rounded as cae denoise rounds, float32 in
[0, 1]. Raises cae.Error before any work on a wrong dtype, layout or shape.)")
      .def("repair", &repair, py::arg("image"), py::arg("mask"), py::arg("adapt") = 0,
           py::arg("adapt_lr") = 1e-3, py::arg("adapt_near") = 0, py::arg("ensemble") = 1,
           py::arg("seed") = 0,
           R"(Repairs a photo where the mask says it is damaged (an informed model).

image: HxW or HxWxC (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), uint8 (0-255), uint16 (0-65535)
or float32 ([0, 1]), of any size. mask: HxW (or HxWx1), any dtype, non-zero = damaged.
adapt: steps adapting a copy of the model to this photo's undamaged part first (0: off;
adapt_lr, adapt_near and seed as cae repair's --adapt-lr, --adapt-near and --seed); ensemble:
1, 2, 4 or 8 flips and turns averaged. Returns an array of the image's shape and dtype: the
damaged pixels repaired, every other value (alpha too) exactly the input's; the same bits as
cae repair writes for the same photo and mask. Raises cae.Error for a blind model or an array
that does not fit, before any work.)")
      .def_property_readonly(
          "informed", [](const Model& self) { return self.engine.informed(); },
          "True for an informed model (an inpainter: repair), False for a blind one (denoise).")
      .def("encode", &encode, py::arg("images"), py::arg("layout") = py::none(),
           "The latent codes (float32) of images (uint8 or float32, as for denoise), in the "
           "same layout; gray images in a layout without channels ('HW', 'NHW') give codes "
           "with a last channel axis.")
      .def("decode", &decode, py::arg("codes"), py::arg("layout") = py::none(),
           "The float32 images (in [0, 1]) of latent codes of latent_shape, in the codes' "
           "layout: decode(encode(x)) equals denoise(x) for float32 x.")
      .def_property_readonly(
          "image_shape",
          [shape_type](const Model& self) { return shape_tuple(shape_type, self.engine.image_shape()); },
          "Shape(channels, height, width) of the images the model takes and returns.")
      .def_property_readonly(
          "latent_shape",
          [shape_type](const Model& self) { return shape_tuple(shape_type, self.engine.latent_shape()); },
          "Shape(channels, height, width) of a latent code: the activation before the first "
          "upsampling layer. Raises cae.Error for a model without one.")
      .def_property_readonly(
          "metadata",
          [](const Model& self) {
            py::dict meta;
            for (const auto& [key, value] : self.engine.metadata()) meta[py::str(key)] = value;
            return meta;
          },
          "The facts stored with the model, as a dict of str: 'loss', 'corruption', "
          "'epochs', ...")
      .def_property_readonly(
          "name", [](const Model& self) { return self.name; },
          "The path the model was loaded from (or the name given to from_bytes).")
      .def("__repr__",
           [](const Model& self) {
             const Shape s = self.engine.image_shape();
             return "<cae.Autoencoder " + std::to_string(s.channels) + "x" +
                    std::to_string(s.height) + "x" + std::to_string(s.width) + " from '" +
                    self.name + "'>";
           })
      .def(py::pickle(
          [](const Model& self) {
            return py::make_tuple(py::bytes(reinterpret_cast<const char*>(self.file.data()),
                                            self.file.size()),
                                  self.name);
          },
          [](const py::tuple& state) {
            if (state.size() != 2) throw Error("Autoencoder: a pickle of another form");
            std::string_view view = state[0].cast<py::bytes>();
            return model_from_bytes(std::vector<std::uint8_t>(view.begin(), view.end()),
                                    state[1].cast<std::string>());
          }));

  m.def(
      "models",
      [] {
        py::list all;
        EngineOptions only;  // the folder alone: a listing builds no executor
        only.models = models_folder_from_environment();
        for (const ShippedModel& s : Autoencoder::shipped_models(only))
          all.append(py::dict(py::arg("name") = s.name, py::arg("path") = s.path));
        return all;
      },
      "The models that ship with cae (docs/models.md), sorted by name: a dict with 'name' and "
      "'path' for each, found in share/cae/models of the install, then the source tree's "
      "models/ (or only in $CAE_MODELS, when it is set).");
  m.def(
      "load_model",
      [](const py::object& what) {
        const std::string text = path_text("load_model", what);
        py::gil_scoped_release release;
        const std::string path = io::resolve_model(text, models_folder_from_environment());
        return model_from_bytes(read_file(path), path);
      },
      py::arg("name"),
      "A shipped model by name (cae.models(): 'inpaint' repairs what a mask marks, 'denoise' "
      "removes noise), or a model file by path, as the cae command's -m takes them. "
      "Raises cae.Error listing the shipped models when it is neither.");
}

}  // namespace cae::python
