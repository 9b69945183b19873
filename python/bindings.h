// The parts of the Python module cae (module.cpp puts them together; docs/python.md says how
// they are used). Each bind_* adds its classes and functions to the module.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cae/cae.h"

namespace cae::python {

namespace py = pybind11;

// A model as Python holds it: the engine, and the model file it came from (save() writes it
// out again, evaluate() reads the network from it).
struct Model {
  std::string name;                // the path, or the name given to from_bytes()
  std::vector<std::uint8_t> file;  // the model file's bytes
  Autoencoder engine;
};

// The Python type name of object ("int", "NoneType"), for messages.
std::string type_name(const py::handle& object);
// The text of a path given as str or os.PathLike; throws cae::Error naming `what` otherwise.
std::string path_text(const std::string& what, const py::handle& path);

// Requires the bytes of a model or checkpoint file; throws cae::Error naming `name` otherwise.
Model model_from_bytes(std::vector<std::uint8_t> file, const std::string& name);

// The kernels' threads. OpenMP keeps the count per calling thread, so the count set here is
// applied in whichever thread calls into the engine: every call that runs kernels starts with
// apply_thread_count().
int thread_count();
void set_thread_count(int n);  // throws cae::Error unless 1 <= n <= 1024
void apply_thread_count();

void bind_autoencoder(py::module_& m);
void bind_train(py::module_& m);  // train, evaluate, corrupt (train.cpp)

}  // namespace cae::python
