// The CUDA backend: cuDNN convolutions and the small kernels of kernels.cu, activations NCHW on
// the device, parameters in the canonical layout (so the flat buffer is the canonical tensors
// concatenated, as in the ref backend). This header includes neither CUDA's nor cuDNN's; only
// the files of src/ops/cuda/ do (executor_impl.h lists them). Built when CMake's CAE_CUDA is on
// (cmake/cuda.cmake).
#pragma once

#include <memory>
#include <string>

#include "ops/ops.h"

namespace cae::ops {

// Requires nothing (safe without a driver). Returns "" when a CUDA device can run this build's
// kernels, else the reason, starting "no CUDA device or driver" when there is none.
std::string cuda_unavailable_reason();

// Requires a net that passes check_net_desc. Ensures an executor whose buffers, cuDNN algorithms
// (chosen once per shape, by measurement) and workspace are all made here, so steps allocate
// nothing and can be captured in a CUDA graph; options.cuda_graphs and options.cuda_tf32 say
// whether fused steps replay a graph and whether cuDNN may use TF32. Throws cae::Error naming the
// reason where no device is usable or cuDNN cannot run an op.
std::unique_ptr<Executor> make_cuda_executor(const NetDesc& net,
                                             const ExecutorOptions& options = {});

}  // namespace cae::ops
