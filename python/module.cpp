// The extension cae._cae: cae's engine for Python (docs/python.md). The package cae
// (python/cae/__init__.py) re-exports it.
#include <filesystem>

#include "bindings.h"
#include "cae/error.h"
#include "environment.h"

PYBIND11_MODULE(_cae, m) {
  namespace py = pybind11;
  // The module is the edge (tools/environment.h): the process's instruction-set cap from
  // CAE_MAX_ISA or ONEDNN_MAX_CPU_ISA, set once at import, before any kernel (a bad value is
  // reported by the first call that runs one); the other variables are read by each call.
  cae::apply_isa_cap_from_environment();
  m.doc() = "cae: convolutional autoencoders on oneDNN, with NumPy arrays in and out";
  // Every failure of the library, and a file system error on its way (a directory that cannot
  // be made), is a cae.Error, a RuntimeError carrying the library's message.
  static py::exception<cae::Error> error(m, "Error", PyExc_RuntimeError);
  error.attr("__module__") = "cae";
  error.doc() = "A failure of cae: bad input, bad file, bad spec, bad option, I/O error. The "
                "message names the file or argument and the expected and found values.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cae::Error& e) {
      error(e.what());
    } catch (const std::filesystem::filesystem_error& e) {
      error(e.what());
    }
  });
  m.def("version", &cae::version, "The version of the cae library, e.g. '0.1.0'.");
  m.attr("__version__") = cae::version();
  m.def("get_num_threads", &cae::python::thread_count,
        "The threads the kernels use: as set_num_threads() set it, else OpenMP's default "
        "(OMP_NUM_THREADS, or every core).");
  m.def("set_num_threads", &cae::python::set_thread_count, py::arg("n"),
        "Sets the threads the kernels use, in every Python thread (what cae train's --threads "
        "does). Raises cae.Error unless 1 <= n <= 1024.");
  cae::python::bind_autoencoder(m);
  cae::python::bind_train(m);
}
