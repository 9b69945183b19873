// The CUDA backend's resource wrappers: errors of CUDA and cuDNN calls as cae::Error, and the
// streams, events, device and pinned host buffers and cuDNN descriptors, each released with its
// owner. Included only by the files of src/ops/cuda/ (through executor_impl.h).
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "cae/error.h"
#include "ops/ops.h"

namespace cae::ops::cuda_exec {

inline void check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess)
    throw Error(std::string("cuda backend: ") + call + ": " + cudaGetErrorString(e));
}

inline void check_cudnn(cudnnStatus_t s, const char* call) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw Error(std::string("cuda backend: ") + call + ": " + cudnnGetErrorString(s));
}

#define CUDA_CHECK(call) check_cuda((call), #call)
#define CUDNN_CHECK(call) check_cudnn((call), #call)

// A CUDA or cuDNN handle released with its owner.
template <class T, auto Destroy>
struct Release {
  void operator()(T* h) const { Destroy(h); }
};
using Stream = std::unique_ptr<CUstream_st, Release<CUstream_st, cudaStreamDestroy>>;
using Event = std::unique_ptr<CUevent_st, Release<CUevent_st, cudaEventDestroy>>;
using GraphExec = std::unique_ptr<CUgraphExec_st, Release<CUgraphExec_st, cudaGraphExecDestroy>>;
using Cudnn = std::unique_ptr<cudnnContext, Release<cudnnContext, cudnnDestroy>>;

inline Stream make_stream() {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

inline Event make_event() {
  cudaEvent_t e = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return Event(e);
}

// Device memory of n T's, freed with its owner.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n) CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// Page-locked host memory: copies from it run asynchronously, overlapping the GPU's work.
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t n) : n_(n) {
    if (n) CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
  }
  T* get() const { return p_; }
  std::span<T> span() const { return {p_, n_}; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// A cuDNN descriptor destroyed with its owner.
template <class H, cudnnStatus_t (*Destroy)(H)>
class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(cudnnStatus_t (*create)(H*)) { CUDNN_CHECK(create(&h_)); }
  Descriptor(Descriptor&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Descriptor& operator=(Descriptor&& o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~Descriptor() {
    if (h_) Destroy(h_);
  }
  H get() const { return h_; }

 private:
  H h_ = nullptr;
};

using TensorDesc = Descriptor<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDesc = Descriptor<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvDesc = Descriptor<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;

inline TensorDesc tensor_desc(int n, Dims d) {
  TensorDesc t(cudnnCreateTensorDescriptor);
  CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(t.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, d.c, d.h, d.w));
  return t;
}

}  // namespace cae::ops::cuda_exec
