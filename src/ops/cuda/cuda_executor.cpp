// The public functions of cuda_executor.h; the executor itself is executor_impl.h's CudaExecutor.
#include "ops/cuda/cuda_executor.h"

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "ops/cuda/executor_impl.h"

namespace cae::ops {

std::string cuda_unavailable_reason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it, so that it does not surface in a later call
    return std::string("no CUDA device or driver (") + cudaGetErrorString(e) + ")";
  }
  if (count == 0) return "no CUDA device or driver (no device found)";
  return cuda_kernels::probe();
}

std::unique_ptr<Executor> make_cuda_executor(const NetDesc& net, const ExecutorOptions& options) {
  return std::make_unique<cuda_exec::CudaExecutor>(net, options);
}

}  // namespace cae::ops
