#include <omp.h>

#include <atomic>
#include <string>

#include "bindings.h"

namespace cae::python {

namespace {
std::atomic<int> chosen{0};  // 0: OpenMP's own default
}  // namespace

int thread_count() {
  const int n = chosen.load();
  return n > 0 ? n : omp_get_max_threads();
}

void set_thread_count(int n) {
  if (n < 1 || n > 1024)
    throw Error("set_num_threads: value " + std::to_string(n) + " is not in 1 … 1024");
  chosen.store(n);
  omp_set_num_threads(n);
}

void apply_thread_count() {
  if (const int n = chosen.load(); n > 0) omp_set_num_threads(n);
}

}  // namespace cae::python
