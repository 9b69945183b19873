// Small conversions of Python values that every part of the module makes.
#include "bindings.h"

namespace cae::python {

std::string type_name(const py::handle& object) {
  return py::str(py::type::of(object).attr("__name__"));
}

std::string path_text(const std::string& what, const py::handle& path) {
  if (py::isinstance<py::str>(path)) return path.cast<std::string>();
  if (py::hasattr(path, "__fspath__")) {
    py::object text = path.attr("__fspath__")();
    if (py::isinstance<py::str>(text)) return text.cast<std::string>();
  }
  throw Error(what + ": expected a path (str or os.PathLike), found " + type_name(path));
}

}  // namespace cae::python
