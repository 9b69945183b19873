// cae.train(), cae.evaluate() and cae.corrupt(). Training and evaluation take the options of
// `cae train` and `cae eval` as keyword arguments and hand them to the CLI's own parser
// (tools/cae/train_command.h, eval_command.h): the same names, defaults and checks, and the same
// run, so that the same options and seed give the CLI's weights.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>

#include "arrays.h"
#include "bindings.h"
#include "core/atomic_file.h"
#include "data/corrupt.h"
#include "eval_command.h"
#include "io/model_file.h"
#include "train/checkpoint.h"
#include "train/figures.h"
#include "train_command.h"
#include "usage.h"

namespace cae::python {

namespace {

// Thrown by the progress bridge when the callback returns False: it unwinds the training loop,
// which leaves the last epoch's checkpoint as it is.
struct StopRequested {};

// The loop's reports, handed to Python: the console lines (verbose), Ctrl-C, and the callback.
class ProgressBridge : public train::Progress {
 public:
  ProgressBridge(py::object callback, bool verbose)
      : callback_(std::move(callback)),
        console_(verbose ? cli::make_console_progress() : std::make_unique<train::Progress>()) {}

  void on_start(int first_epoch, int epochs, int batches) override {
    console_->on_start(first_epoch, epochs, batches);
  }
  void on_batch(int epoch, int batch, int batches, double loss, double ips) override {
    console_->on_batch(epoch, batch, batches, loss, ips);
    py::gil_scoped_acquire gil;
    // A Ctrl-C that came while the kernels ran raises KeyboardInterrupt here, after a whole
    // step: it unwinds the loop like any exception of the callback.
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (callback_.is_none()) return;
    const py::object answer = callback_(epoch, batch, loss, ips);
    if (!answer.is_none() && !PyObject_IsTrue(answer.ptr())) throw StopRequested{};
  }
  void on_epoch(const train::EpochStats& e) override { console_->on_epoch(e); }

 private:
  py::object callback_;
  std::unique_ptr<train::Progress> console_;
};

// "micro_batch" -> "--micro-batch".
std::string option_name(const std::string& key) {
  std::string name = "--" + key;
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

std::string option_list(const CLI::App* cmd, const std::vector<std::string>& skip) {
  std::string list;
  for (const CLI::Option* opt : cmd->get_options()) {
    std::string name = opt->get_lnames().empty() ? "" : opt->get_lnames().front();
    std::replace(name.begin(), name.end(), '-', '_');
    if (name.empty() || name == "help" ||
        std::find(skip.begin(), skip.end(), name) != skip.end())
      continue;
    list += (list.empty() ? "" : ", ") + name;
  }
  return list;
}

// The command line the keyword arguments spell for cmd: key=value becomes --key=value (as the
// CLI reads it: str() of the value, os.fspath() of a path), key=True a flag given, False and
// None an option left out. Keys in `reserved` are arguments of the Python function itself.
std::vector<std::string> command_line(const std::string& what, CLI::App* cmd,
                                      const py::dict& options,
                                      const std::vector<std::string>& reserved) {
  std::vector<std::string> args = {cmd->get_name()};
  for (const auto& [key_object, value] : options) {
    const std::string key = key_object.cast<std::string>();
    const std::string name = option_name(key);
    const CLI::Option* opt = std::find(reserved.begin(), reserved.end(), key) == reserved.end()
                                 ? cmd->get_option_no_throw(name)
                                 : nullptr;
    if (!opt || key == "help")
      throw Error(what + ": unknown option '" + key + "' (the options of cae " + cmd->get_name() +
                  ": " + option_list(cmd, reserved) + ")");
    if (value.is_none()) continue;
    if (opt->get_expected_max() == 0) {  // a flag
      if (!py::isinstance<py::bool_>(value))
        throw Error(what + ": " + key + " is a flag: give True or False, found " +
                    type_name(value));
      if (value.cast<bool>()) args.push_back(name);
      continue;
    }
    if (py::isinstance<py::bool_>(value))
      throw Error(what + ": " + key + " takes a value, not " +
                  std::string(py::str(value)));
    const std::string text = py::hasattr(value, "__fspath__") ? path_text(what, value)
                                                               : std::string(py::str(value));
    args.push_back(name + "=" + text);
  }
  return args;
}

// Parses args (command name first) with app, whose one subcommand they name; a parse error
// becomes the cae.Error the CLI's usage line says.
void parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes them last to first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    throw Error(cli::usage_error(app, e));
  }
}

bool given(const py::dict& options, const char* key) {
  return options.contains(key) && !options[key].is_none();
}

// An ImageSet of a uint8 array of images (N, H, W) or (N, H, W, C), copied.
data::ImageSet image_set(const std::string& what, const py::handle& object) {
  if (!py::isinstance<py::array>(object))
    throw Error(what + ": expected a NumPy array of uint8 images, found " + type_name(object));
  const auto a = py::reinterpret_borrow<py::array>(object);
  if (!a.dtype().equal(py::dtype::of<std::uint8_t>()))
    throw Error(what + ": dtype " + std::string(py::str(a.dtype())) +
                " is not uint8 (training images are pixels 0-255)");
  if (a.ndim() != 3 && a.ndim() != 4)
    throw Error(what + ": an array of " + std::to_string(a.ndim()) +
                " dimension(s): expected (N, H, W) or (N, H, W, C) images");
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) < 1 || a.shape(i) > 1 << 24)
      throw Error(what + ": axis " + std::to_string(i) + " has size " +
                  std::to_string(a.shape(i)) + " (expected 1 to 16777216)");
  data::ImageSet set;
  set.n = int(a.shape(0));
  set.h = int(a.shape(1));
  set.w = int(a.shape(2));
  set.c = a.ndim() == 4 ? int(a.shape(3)) : 1;
  const py::array values = py::module_::import("numpy").attr("ascontiguousarray")(a);
  set.pixels.resize(set.image_size() * std::size_t(set.n));
  std::memcpy(set.pixels.data(), values.data(), set.pixels.size());
  return set;
}

// A dataset given as arrays: (train, test), or a dict of "train", "test" and optionally
// "train_targets", "test_targets", "name".
data::Dataset array_dataset(const std::string& what, const py::handle& object) {
  data::Dataset ds;
  ds.name = "arrays";
  if (py::isinstance<py::dict>(object)) {
    const auto d = py::reinterpret_borrow<py::dict>(object);
    for (const auto& [key, value] : d) {
      const std::string k = py::str(key);
      if (k != "train" && k != "test" && k != "train_targets" && k != "test_targets" &&
          k != "name")
        throw Error(what + ": dataset has key '" + k +
                    "': expected train, test, train_targets, test_targets, name");
    }
    for (const char* key : {"train", "test"})
      if (!d.contains(key)) throw Error(what + ": the dataset dict needs '" + key + "'");
    ds.train = image_set(what + ": dataset['train']", d["train"]);
    ds.test = image_set(what + ": dataset['test']", d["test"]);
    if (d.contains("train_targets") != d.contains("test_targets"))
      throw Error(what + ": give both train_targets and test_targets, or neither");
    if (d.contains("train_targets")) {
      ds.train_targets = image_set(what + ": dataset['train_targets']", d["train_targets"]);
      ds.test_targets = image_set(what + ": dataset['test_targets']", d["test_targets"]);
    }
    if (d.contains("name")) ds.name = py::str(d["name"]);
  } else if (py::isinstance<py::tuple>(object) || py::isinstance<py::list>(object)) {
    const auto t = py::reinterpret_borrow<py::sequence>(object);
    if (t.size() != 2)
      throw Error(what + ": a dataset of arrays is (train, test), found " +
                  std::to_string(t.size()) + " items");
    ds.train = image_set(what + ": dataset[0] (train)", t[0]);
    ds.test = image_set(what + ": dataset[1] (test)", t[1]);
  } else {
    throw Error(what + ": dataset must be a name or path (str, os.PathLike), (train, test) "
                "arrays or a dict of arrays, found " + type_name(object));
  }
  data::check_dataset(ds);
  return ds;
}

bool is_path(const py::handle& object) {
  return py::isinstance<py::str>(object) || py::hasattr(object, "__fspath__");
}

// What train() and evaluate() do with their dataset and threads: a name or path goes on to the
// parser as --dataset, arrays become the returned dataset; the module's thread count is the
// default of --threads.
std::optional<data::Dataset> dataset_and_threads(const std::string& what,
                                                 const py::object& dataset,
                                                 const py::dict& options,
                                                 std::vector<std::string>& args) {
  if (!given(options, "threads")) args.push_back("--threads=" + std::to_string(thread_count()));
  if (!is_path(dataset)) return array_dataset(what, dataset);
  args.push_back("--dataset=" + path_text(what, dataset));
  return std::nullopt;
}

py::dict epoch_dict(const train::EpochStats& e) {
  py::dict d;
  d["epoch"] = e.epoch;
  d["train_loss"] = e.train_loss;
  d["test_loss"] = e.test.loss;
  d["test_bce"] = e.test.bce;
  d["test_psnr_noisy"] = e.test.psnr_noisy;
  d["test_psnr_output"] = e.test.psnr_output;
  d["seconds"] = e.seconds;
  d["images_per_second"] = e.images_per_second;
  if (e.validated) {
    d["val_loss"] = e.val.loss;
    d["val_bce"] = e.val.bce;
    d["val_psnr_noisy"] = e.val.psnr_noisy;
    d["val_psnr_output"] = e.val.psnr_output;
  }
  return d;
}

py::object json_loads(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

const std::vector<std::string> kCorruptionKeys = {
    "corruption", "noise",     "speckle",        "salt_pepper",    "masks",      "mask_min",
    "mask_max",   "mask_value", "lines",         "crosshair",      "line_thickness", "jitter",
    "line_value", "strokes",   "stroke_min",     "stroke_max",     "stroke_value"};

py::dict train(const py::object& dataset, const py::object& progress, bool verbose,
               const py::dict& options) {
  if (!progress.is_none() && !PyCallable_Check(progress.ptr()))
    throw Error("train: progress must be callable (epoch, step, loss, images_per_second), found " +
                type_name(progress));
  cli::TrainOptions o;
  CLI::App app{"cae.train"};
  CLI::App* cmd = app.add_subcommand("train");
  cli::add_train_options(cmd, o);
  std::vector<std::string> args =
      command_line("train", cmd, options, {"dataset", "progress", "verbose"});
  const std::optional<data::Dataset> arrays = dataset_and_threads("train", dataset, options, args);
  // Pairs are trained as given, unless a corruption is asked for.
  if (arrays && arrays->paired() &&
      std::none_of(kCorruptionKeys.begin(), kCorruptionKeys.end(),
                   [&](const std::string& k) { return given(options, k.c_str()); }))
    args.push_back("--corruption=none");
  parse(app, args);

  dist::LocalCommunicator alone;
  ProgressBridge bridge(progress, verbose);
  cli::TrainOutcome outcome;
  bool stopped = false;
  {
    py::gil_scoped_release release;
    try {
      outcome = cli::run_training(o, alone, bridge, arrays ? &*arrays : nullptr,
                                  {.lines = verbose, .json = false});
    } catch (const StopRequested&) {
      stopped = true;
    }
  }
  const std::string dir = o.config.out_dir;
  py::dict result;
  result["out"] = dir;
  result["stopped"] = stopped;
  py::list history;
  if (stopped) {
    // The epochs the checkpoint holds: what a resume continues from.
    const std::string csv = dir + "/losses.csv";
    if (std::filesystem::exists(csv)) {
      const std::vector<std::uint8_t> text = read_file(csv);
      for (const auto& e : train::parse_history(std::string(text.begin(), text.end())))
        history.append(epoch_dict(e));
    }
    const std::string checkpoint = dir + "/checkpoint.cae";
    result["model"] = std::filesystem::exists(checkpoint)
                          ? py::cast(model_from_bytes(read_file(checkpoint), checkpoint))
                          : py::none();
    result["metrics"] = py::none();
  } else {
    for (const auto& e : outcome.history) history.append(epoch_dict(e));
    const std::string model = dir + "/model.cae";
    result["model"] = py::cast(model_from_bytes(read_file(model), model));
    result["metrics"] = json_loads(outcome.metrics_json);
  }
  result["history"] = history;
  return result;
}

py::dict evaluate(const py::object& model, const py::object& dataset, const py::dict& options) {
  cli::EvalOptions o;
  CLI::App app{"cae.evaluate"};
  CLI::App* cmd = app.add_subcommand("eval");
  cli::add_eval_options(cmd, o, false);
  std::vector<std::string> args =
      command_line("evaluate", cmd, options, {"model", "m", "dataset"});
  const std::optional<data::Dataset> arrays =
      dataset_and_threads("evaluate", dataset, options, args);
  std::optional<nn::Model> net;
  if (py::isinstance<Model>(model)) {
    const Model& m = model.cast<const Model&>();
    net = nn::Model::from_file(io::decode_model_file(m.file, m.name), m.name);
    o.model_path = m.name;
  } else {
    args.push_back("--model=" + path_text("evaluate: model", model));
  }
  parse(app, args);
  train::Comparison c;
  {
    py::gil_scoped_release release;
    c = cli::run_evaluation(o, net ? &*net : nullptr, arrays ? &*arrays : nullptr);
  }
  py::dict table = json_loads(train::comparison_json(c));
  // Per image too, as cae eval --csv writes them: one array per method and score.
  py::dict per_image;
  std::vector<std::pair<const char*, double train::Scores::*>> columns = {
      {"mse", &train::Scores::mse},
      {"psnr_db", &train::Scores::psnr},
      {"ssim", &train::Scores::ssim},
      {"bce", &train::Scores::bce}};
  if (c.region) {  // NaN where an image has no damaged pixel
    columns.emplace_back("psnr_db_region", &train::Scores::psnr_region);
    columns.emplace_back("ssim_region", &train::Scores::ssim_region);
  }
  for (const train::Method& m : c.methods) {
    py::dict scores;
    for (const auto& [key, member] : columns) {
      py::array_t<double> values(py::ssize_t(m.per_image.size()));
      auto v = values.mutable_unchecked<1>();
      for (std::size_t i = 0; i < m.per_image.size(); ++i) v(py::ssize_t(i)) = m.per_image[i].*member;
      scores[key] = values;
    }
    per_image[py::str(m.name)] = scores;
  }
  table["per_image"] = per_image;
  return table;
}

py::array corrupt(const py::handle& images, const std::string& text, std::uint64_t seed,
                  const py::object& layout, std::uint64_t first_index) {
  const data::Corruption c = data::parse_corruption(text);
  c.validate();
  if (!py::isinstance<py::array>(images))
    throw Error("corrupt: expected a NumPy array, found " + type_name(images));
  const auto a = py::reinterpret_borrow<py::array>(images);
  const Layout l = resolve_layout("corrupt", layout, int(a.ndim()));
  Shape item{1, 0, 0};
  for (std::size_t i = 0; i < l.axes.size(); ++i) {
    const int size = int(std::min<py::ssize_t>(a.shape(py::ssize_t(i)), 1 << 30));
    if (l.axes[i] == 'C') item.channels = size;
    if (l.axes[i] == 'H') item.height = size;
    if (l.axes[i] == 'W') item.width = size;
  }
  if (item.channels < 1 || item.height < 1 || item.width < 1)
    throw Error("corrupt: images of " + std::to_string(item.height) + "x" +
                std::to_string(item.width) + "x" + std::to_string(item.channels) +
                " hold no pixels");
  const EngineInput in = to_engine("corrupt", images, layout, item, true, Order::nchw);
  const ops::Dims dims{item.channels, item.height, item.width};
  const std::size_t size = dims.size() * std::size_t(in.count);
  std::vector<float> clean, noisy(size);
  {
    py::gil_scoped_release release;
    if (in.dtype == DType::u8)
      clean = bytes_to_floats({static_cast<const std::uint8_t*>(in.values.data()), size});
    else
      clean.assign(static_cast<const float*>(in.values.data()),
                   static_cast<const float*>(in.values.data()) + size);
    if (in.count > 0)
      data::corrupt(c, clean.data(), noisy.data(), in.count, dims, seed, Stream::test_noise, 0,
                    first_index);
  }
  if (in.dtype == DType::f32) return from_engine(std::move(noisy), in, item, Order::nchw);
  std::vector<std::uint8_t> bytes(size);
  for (int i = 0; i < in.count; ++i) {
    const data::Image image = train::to_image(noisy.data() + std::size_t(i) * dims.size(), dims);
    std::copy(image.pixels.begin(), image.pixels.end(), bytes.begin() + std::size_t(i) * dims.size());
  }
  return from_engine(std::move(bytes), in, item, Order::nhwc);
}

// The images of set as an array (N, H, W, C), a copy.
py::array images_array(const data::ImageSet& set) {
  return owning_array(std::vector<std::uint8_t>(set.pixels),
                      {py::ssize_t(set.n), py::ssize_t(set.h), py::ssize_t(set.w),
                       py::ssize_t(set.c)});
}

py::dict load_dataset(const py::object& name, const py::object& data_dir, const std::string& size,
                      const std::string& fit) {
  cli::DataOptions o;
  o.dataset = path_text("load_dataset", name);
  if (!data_dir.is_none()) o.data_dir = path_text("load_dataset: data", data_dir);
  o.size = size;
  o.fit = fit;
  data::Dataset ds;
  {
    py::gil_scoped_release release;
    ds = o.load();
  }
  py::dict d;
  d["name"] = ds.name;
  d["train"] = images_array(ds.train);
  if (ds.val.n > 0) d["val"] = images_array(ds.val);
  d["test"] = images_array(ds.test);
  return d;
}

}  // namespace

void bind_train(py::module_& m) {
  m.def("load_dataset", &load_dataset, py::arg("name") = "mnist", py::arg("data") = py::none(),
        py::arg("size") = "", py::arg("fit") = "resize",
        R"(The images of a dataset, as cae train reads them, as NumPy arrays.

name: what cae train's --dataset takes ("mnist", "fashion-mnist", "photos", a directory of IDX
files, a folder of images); data: the data directory (default $CAE_DATA or ~/.local/share/cae); size
("HxW") and fit ("resize" or "crop"): for image folders. Returns {"name", "train", "test"},
and "val" for a folder with a validation split (DIR/val), the images as uint8 arrays
(N, H, W, C); cae.train() takes train and test back as a dataset. Raises
cae.Error saying where it looked and how to install a dataset it does not find.)");
  m.def("_train", &train, py::arg("dataset"), py::arg("progress"), py::arg("verbose"),
        py::arg("options"));
  m.def("_evaluate", &evaluate, py::arg("model"), py::arg("dataset"), py::arg("options"));
  m.def("corrupt", &corrupt, py::arg("images"), py::arg("corruption") = "gaussian sigma=0.5",
        py::arg("seed") = 0, py::arg("layout") = py::none(), py::arg("first_index") = 0,
        R"(Damages images as cae damages test images (docs/evaluation.md).

images: uint8 (0-255) or float32 ([0, 1]) in `layout` (as for Autoencoder.denoise), of any
size. corruption: the text cae's --corruption takes, e.g. "gaussian sigma=0.5 + masks
count=2". Image i of the array is damaged from its own random stream, keyed by (seed,
first_index + i), as cae eval and the test scores of cae train damage test image
first_index + i: corrupt(test, model.metadata['corruption'], seed=0) is the damage cae eval
scores. Returns an array of the same shape, dtype and layout (uint8 rounded as cae rounds).
Raises cae.Error on a bad text, value, dtype or layout.)");
}

}  // namespace cae::python
