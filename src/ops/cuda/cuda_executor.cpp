#include "ops/cuda/cuda_executor.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cae/error.h"
#include "ops/canonical.h"
#include "ops/cuda/kernels.h"
#include "ops/net_check.h"

namespace cae::ops {
namespace {

namespace ck = cuda_kernels;

void check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess)
    throw Error(std::string("cuda backend: ") + call + ": " + cudaGetErrorString(e));
}

void check_cudnn(cudnnStatus_t s, const char* call) {
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

Stream make_stream() {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

Event make_event() {
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

TensorDesc tensor_desc(int n, Dims d) {
  TensorDesc t(cudnnCreateTensorDescriptor);
  CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(t.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, d.c, d.h, d.w));
  return t;
}

// ---- cuDNN algorithm choice: measured once per shape in the process ----

struct AlgoChoice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

std::mutex algo_cache_mutex;
std::map<std::string, AlgoChoice> algo_cache;

// No single convolution of these nets needs more; an algorithm that asks for more is skipped.
constexpr std::size_t max_workspace = std::size_t(1) << 30;

// The fastest successful result, deterministic ones first (so that a rerun and a resumed run
// take the same steps), within the workspace limit and, without TF32, on FMA units only.
template <class Perf>
AlgoChoice pick_algo(const Perf* results, int count, bool tf32, const std::string& what) {
  const Perf* best = nullptr;
  auto deterministic = [](const Perf* r) { return r->determinism == CUDNN_DETERMINISTIC; };
  for (int i = 0; i < count; ++i) {
    const Perf* r = &results[i];
    if (r->status != CUDNN_STATUS_SUCCESS || r->memory > max_workspace) continue;
    if (!tf32 && (r->mathType == CUDNN_TENSOR_OP_MATH ||
                  r->mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    if (!best || (deterministic(r) && !deterministic(best)) ||
        (deterministic(r) == deterministic(best) && r->time < best->time))
      best = r;
  }
  if (!best) throw Error("cuda backend: cuDNN offers no usable algorithm for " + what);
  return {int(best->algo), best->mathType};
}

// ---- per-op plans ----

// A conv or tconv in cuDNN's terms: a convolution from X (C channels) to Y (K channels) with
// filter [K][C][k][k]. conv: X = the op's input, Y = its output, filter OIHW. tconv: X = the op's
// output, Y = its input, filter IOHW; its forward pass is cuDNN's backward-data. cuDNN pads
// symmetrically only: other paddings run on an explicitly padded copy of X with no padding.
struct ConvPlan {
  bool transposed = false;
  bool padded = false;  // X is a padded copy (xp) of the op's X
  Dims x_dims;          // X as cuDNN sees it (padded when `padded`)
  int pad_top = 0, pad_left = 0;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc fwd, bwd_data, bwd_filter;  // one per direction: each keeps its own math type
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
  DeviceBuffer<float> xp;  // conv: the padded input, kept for backward; tconv: the padded output
};

class CudaExecutor final : public Executor {
 public:
  CudaExecutor(const NetDesc& net, const ExecutorOptions& options)
      : net_(net), infos_(param_infos(net)) {
    check_net_desc(net_);
    if (const std::string why = cuda_unavailable_reason(); !why.empty())
      throw Error("cuda backend: " + why);
    use_graphs_ = options.cuda_graphs;
    tf32_ = options.cuda_tf32;
    CUDA_CHECK(cudaGetDevice(&device_));
    stream_owner_ = make_stream();
    copy_stream_owner_ = make_stream();
    stream_ = stream_owner_.get();
    copy_stream_ = copy_stream_owner_.get();
    for (int s = 0; s < 2; ++s) {
      copied_[s] = make_event();
      step_done_[s] = make_event();
    }
    cudnnHandle_t handle = nullptr;
    CUDNN_CHECK(cudnnCreate(&handle));
    cudnn_owner_.reset(handle);
    cudnn_ = handle;
    CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));

    const int n = net_.batch;
    weight_at_.assign(net_.ops.size(), no_param);
    bias_at_.assign(net_.ops.size(), no_param);
    std::size_t offset = 0;
    for (const ParamInfo& info : infos_) {
      (info.name == "weight" ? weight_at_ : bias_at_)[info.op] = offset;
      offset += info.size();
    }
    params_dev_ = DeviceBuffer<float>(offset);
    grads_dev_ = DeviceBuffer<float>(offset);
    m_dev_ = DeviceBuffer<float>(offset);
    v_dev_ = DeviceBuffer<float>(offset);
    params_host_ = PinnedBuffer<float>(offset);
    grads_host_ = PinnedBuffer<float>(offset);
    std::fill_n(params_host_.get(), offset, 0.f);
    std::fill_n(grads_host_.get(), offset, 0.f);
    params_fresh_ = Fresh::host;

    x_dev_ = DeviceBuffer<float>(batch_size(net_.input));
    dx_dev_ = DeviceBuffer<float>(batch_size(net_.input));
    out_host_ = PinnedBuffer<float>(batch_size(net_.output()));
    for (int s = 0; s < 2; ++s) {
      clean_dev_[s] = DeviceBuffer<float>(batch_size(net_.input));
      clean_host_[s] = PinnedBuffer<float>(batch_size(net_.input));
      noisy_host_[s] = PinnedBuffer<float>(batch_size(net_.input));
    }
    key_dev_ = DeviceBuffer<ck::BatchKey>(2);
    key_host_ = PinnedBuffer<ck::BatchKey>(2);
    state_dev_ = DeviceBuffer<ck::StepState>(1);
    loss_host_ = PinnedBuffer<double>(2);

    plans_.resize(net_.ops.size());
    argmax_.resize(net_.ops.size());
    std::size_t workspace = 0, partial = 0, pad_scratch = 0;
    for (int k = 0; k < int(net_.ops.size()); ++k) {
      const OpDesc& op = net_.ops[k];
      acts_.emplace_back(batch_size(op.out));
      d_acts_.emplace_back(batch_size(op.out));
      // A join's gradient for its second operand, summed into the chain's later.
      skip_grads_.emplace_back(is_join(op.kind) ? batch_size(net_.act_dims(op.other)) : 0);
      if (op.kind == OpKind::maxpool) argmax_[k] = DeviceBuffer<int>(batch_size(op.out));
      if (op.kind != OpKind::conv && op.kind != OpKind::tconv) continue;
      plans_[k] = std::make_unique<ConvPlan>(make_plan(k, workspace));
      if (plans_[k]->padded) pad_scratch = std::max(pad_scratch, batch_size(plans_[k]->x_dims));
      if (op.bias)
        partial = std::max(partial, ck::bias_grad_scratch(n, op.out.c, op.out.h * op.out.w));
    }
    workspace_ = DeviceBuffer<unsigned char>(workspace);
    partial_ = DeviceBuffer<float>(partial);
    pad_scratch_ = DeviceBuffer<float>(pad_scratch);

    // NaN everywhere a kernel writes: a cell some kernel fails to write shows in the parity tests
    // instead of passing with leftovers.
    auto poison = [&](float* p, std::size_t count) {
      if (count) CUDA_CHECK(cudaMemsetAsync(p, 0xFF, count * sizeof(float), stream_));
    };
    for (auto& a : acts_) poison(a.get(), a.size());
    for (auto& d : d_acts_) poison(d.get(), d.size());
    for (auto& d : skip_grads_) poison(d.get(), d.size());
    join_readers_ = net_.join_readers();
    poison(grads_dev_.get(), grads_dev_.size());
    poison(dx_dev_.get(), dx_dev_.size());
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ~CudaExecutor() override {
    // Queued work still reads the buffers; errors are of no use here, and the members release
    // everything else.
    cudaStreamSynchronize(copy_stream_);
    cudaStreamSynchronize(stream_);
  }

  void forward(const float* x) override {
    require_not_fused("forward");
    params_to_device();
    CUDA_CHECK(cudaMemcpyAsync(x_dev_.get(), x, batch_size(net_.input) * sizeof(float),
                               cudaMemcpyHostToDevice, stream_));
    enqueue_forward();
    forwarded_ = true;
    output_fresh_ = false;
  }

  const float* output() override {
    if (!output_fresh_) {
      CUDA_CHECK(cudaMemcpyAsync(out_host_.get(), acts_.back().get(),
                                 acts_.back().size() * sizeof(float), cudaMemcpyDeviceToHost,
                                 stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));
      output_fresh_ = true;
    }
    return out_host_.get();
  }

  void read_activation(int k, float* out) override {
    if (k < 0 || k >= int(acts_.size()))
      throw Error("cuda backend: read_activation: op index expected in [0, " +
                  std::to_string(acts_.size()) + "), found " + std::to_string(k));
    CUDA_CHECK(cudaMemcpyAsync(out, acts_[k].get(), acts_[k].size() * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void backward(const float* d_output, float* d_input) override {
    require_not_fused("backward");
    if (!forwarded_) throw Error("cuda backend: backward() called before forward()");
    params_to_device();
    CUDA_CHECK(cudaMemcpyAsync(d_acts_.back().get(), d_output,
                               d_acts_.back().size() * sizeof(float), cudaMemcpyHostToDevice,
                               stream_));
    enqueue_backward(d_input != nullptr);
    grads_stale_ = true;
    if (d_input)
      CUDA_CHECK(cudaMemcpyAsync(d_input, dx_dev_.get(), dx_dev_.size() * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    // The gradients are final only once they are all on the host: one range, all of them.
    if (grads_ready_) grads_ready_(grads());
  }

  std::span<float> params() override {
    require_not_fused("params");
    if (params_fresh_ == Fresh::device) {
      CUDA_CHECK(cudaMemcpyAsync(params_host_.get(), params_dev_.get(),
                                 params_dev_.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                 stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    params_fresh_ = Fresh::host;  // the caller may write through the span
    return params_host_.span();
  }

  std::span<float> grads() override {
    require_not_fused("grads");
    if (grads_stale_) {
      CUDA_CHECK(cudaMemcpyAsync(grads_host_.get(), grads_dev_.get(),
                                 grads_dev_.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                 stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));
      grads_stale_ = false;
    }
    return grads_host_.span();
  }

  std::vector<std::vector<float>> to_canonical(std::span<const float> flat) override {
    return split_canonical(infos_, flat, "cuda");
  }

  void from_canonical(const std::vector<std::vector<float>>& tensors,
                      std::span<float> flat) override {
    join_canonical(infos_, tensors, flat, "cuda");
  }

  const NetDesc& desc() const override { return net_; }

  // The steps of enqueue_forward and enqueue_backward, with cuDNN's algorithm for each conv
  // (chosen when the plan was built, fastest deterministic first) and our kernels elsewhere.
  // The fused steps run the same kernels, plus the noise, the loss and Adam.
  std::vector<KernelUse> kernels() const override {
    std::vector<KernelUse> all;
    const int n = int(net_.ops.size());
    auto cudnn = [](const char* what, int algo) {
      return std::string("cudnn:") + what + " algo " + std::to_string(algo);
    };
    for (int k = 0; k < n; ++k) {
      const OpDesc& op = net_.ops[k];
      const ConvPlan* p = plans_[k].get();
      const std::string impl = !p ? std::string("cae-cuda:") + op_kind_name(op.kind)
                               : p->transposed ? cudnn("backward data", int(p->bwd_data_algo))
                                               : cudnn("forward", int(p->fwd_algo));
      all.push_back({k, "forward", "forward", impl});
    }
    for (int k = n - 1; k >= 0; --k) {
      const OpDesc& op = net_.ops[k];
      const ConvPlan* p = plans_[k].get();
      if (!p) {
        all.push_back(
            {k, "backward", "backward", std::string("cae-cuda:") + op_kind_name(op.kind)});
        continue;
      }
      all.push_back({k, "backward", "backward weights", cudnn("backward filter",
                                                              int(p->bwd_filter_algo))});
      all.push_back({k, "backward", "backward data",
                     p->transposed ? cudnn("forward", int(p->fwd_algo))
                                   : cudnn("backward data", int(p->bwd_data_algo))});
    }
    return all;
  }
  // cuDNN runs every conv; no op is moved to another kernel than the one chosen for it.
  std::vector<std::string> fallbacks() const override { return {}; }
  // No batchnorm kernels here: make_executor refuses such a net before this backend sees it.
  std::vector<FlatRange> statistics_ranges() const override { return {}; }

  bool fused_begin(const FusedStepConfig& config, std::span<const float> m,
                   std::span<const float> v, std::int64_t t) override {
    require_not_fused("fused_begin");
    check_flat_size(m.size(), "fused_begin (m)");
    check_flat_size(v.size(), "fused_begin (v)");
    if (!(config == fused_config_)) {
      // Settings are baked into captured graphs as kernel arguments.
      drop_graphs();
      fused_config_ = config;
    }
    params_to_device();
    const std::size_t bytes = m.size() * sizeof(float);
    CUDA_CHECK(cudaMemcpyAsync(m_dev_.get(), m.data(), bytes, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(v_dev_.get(), v.data(), bytes, cudaMemcpyHostToDevice, stream_));
    const ck::StepState state{t, 0.f, {0.0, 0.0}};
    CUDA_CHECK(
        cudaMemcpyAsync(state_dev_.get(), &state, sizeof state, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    fused_ = true;
    queued_ = 0;
    return true;
  }

  double fused_step(const float* clean, const float* noisy, const NoiseKey& key) override {
    if (!fused_) throw Error("cuda backend: fused_step() called before fused_begin()");
    const int slot = int(steps_ % 2);
    // The step two calls back used this slot's buffers; it finished before the last call
    // returned, but the wait also covers a first call.
    CUDA_CHECK(cudaEventSynchronize(step_done_[slot].get()));
    const std::size_t n = batch_size(net_.input);
    std::memcpy(clean_host_[slot].get(), clean, n * sizeof(float));
    const bool host_noise = noisy != nullptr;
    if (host_noise) std::memcpy(noisy_host_[slot].get(), noisy, n * sizeof(float));
    key_host_.get()[slot] = {key.seed, key.stream, key.epoch, key.first_index};
    // The upload runs on its own stream, overlapping the step before this one.
    CUDA_CHECK(cudaMemcpyAsync(clean_dev_[slot].get(), clean_host_[slot].get(), n * sizeof(float),
                               cudaMemcpyHostToDevice, copy_stream_));
    CUDA_CHECK(cudaMemcpyAsync(key_dev_.get() + slot, key_host_.get() + slot, sizeof(ck::BatchKey),
                               cudaMemcpyHostToDevice, copy_stream_));
    CUDA_CHECK(cudaEventRecord(copied_[slot].get(), copy_stream_));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, copied_[slot].get(), 0));
    if (host_noise)  // the step's graph reads x_dev_, which only the stream itself may write
      CUDA_CHECK(cudaMemcpyAsync(x_dev_.get(), noisy_host_[slot].get(), n * sizeof(float),
                                 cudaMemcpyHostToDevice, stream_));
    run_step(slot, !host_noise);
    CUDA_CHECK(cudaEventRecord(step_done_[slot].get(), stream_));
    ++steps_;
    ++queued_;
    forwarded_ = true;
    output_fresh_ = false;
    if (queued_ == 1) return std::numeric_limits<double>::quiet_NaN();
    const int previous = 1 - slot;
    CUDA_CHECK(cudaEventSynchronize(step_done_[previous].get()));
    return loss_host_.get()[previous] / double(batch_size(net_.output()));
  }

  double fused_end(std::span<float> m, std::span<float> v) override {
    if (!fused_) throw Error("cuda backend: fused_end() called before fused_begin()");
    check_flat_size(m.size(), "fused_end (m)");
    check_flat_size(v.size(), "fused_end (v)");
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    const std::size_t bytes = m.size() * sizeof(float);
    CUDA_CHECK(cudaMemcpy(m.data(), m_dev_.get(), bytes, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(v.data(), v_dev_.get(), bytes, cudaMemcpyDeviceToHost));
    fused_ = false;
    params_fresh_ = Fresh::device;
    grads_stale_ = true;
    if (queued_ == 0) return std::numeric_limits<double>::quiet_NaN();
    return loss_host_.get()[(steps_ - 1) % 2] / double(batch_size(net_.output()));
  }

 private:
  static constexpr std::size_t no_param = std::size_t(-1);
  enum class Fresh { both, host, device };  // where the current parameters are

  std::size_t batch_size(const Dims& d) const { return std::size_t(net_.batch) * d.size(); }

  void check_flat_size(std::size_t found, const char* where) const {
    if (found != params_dev_.size())
      throw Error(std::string("cuda backend: ") + where + ": flat buffer size expected " +
                  std::to_string(params_dev_.size()) + ", found " + std::to_string(found));
  }

  void require_not_fused(const char* what) const {
    if (fused_)
      throw Error(std::string("cuda backend: ") + what +
                  "() called between fused_begin() and fused_end()");
  }

  void params_to_device() {
    if (params_fresh_ != Fresh::host) return;
    CUDA_CHECK(cudaMemcpyAsync(params_dev_.get(), params_host_.get(),
                               params_dev_.size() * sizeof(float), cudaMemcpyHostToDevice,
                               stream_));
    params_fresh_ = Fresh::both;
  }

  const float* weight(int k) const { return params_dev_.get() + weight_at_[k]; }
  const float* bias(int k) const {
    return bias_at_[k] == no_param ? nullptr : params_dev_.get() + bias_at_[k];
  }
  float* weight_grad(int k) const { return grads_dev_.get() + weight_at_[k]; }
  float* bias_grad(int k) const {
    return bias_at_[k] == no_param ? nullptr : grads_dev_.get() + bias_at_[k];
  }
  const float* input_of(int k) const { return k ? acts_[k - 1].get() : x_dev_.get(); }
  const float* other_of(const OpDesc& op) const {
    return op.other == OpDesc::kNetInput ? x_dev_.get() : acts_[op.other].get();
  }

  static ck::Act act_of(Activation a) {
    switch (a) {
      case Activation::none: return ck::Act::none;
      case Activation::relu: return ck::Act::relu;
      case Activation::sigmoid: return ck::Act::sigmoid;
    }
    throw Error("cuda backend: unknown activation " + std::to_string(int(a)));
  }

  // cuDNN's descriptors and algorithms for conv/tconv op k; grows workspace to what they need.
  ConvPlan make_plan(int k, std::size_t& workspace) {
    const OpDesc& op = net_.ops[k];
    ConvPlan p;
    p.transposed = op.kind == OpKind::tconv;
    const Dims x_role = p.transposed ? op.out : op.in, y_role = p.transposed ? op.in : op.out;
    p.padded = op.pad_top != op.pad_bottom || op.pad_left != op.pad_right;
    p.pad_top = op.pad_top;
    p.pad_left = op.pad_left;
    p.x_dims = x_role;
    int pad_h = op.pad_top, pad_w = op.pad_left;
    if (p.padded) {
      p.x_dims.h += op.pad_top + op.pad_bottom;
      p.x_dims.w += op.pad_left + op.pad_right;
      pad_h = pad_w = 0;
      p.xp = DeviceBuffer<float>(batch_size(p.x_dims));
    }
    const int n = net_.batch;
    p.x = tensor_desc(n, p.x_dims);
    p.y = tensor_desc(n, y_role);
    p.w = FilterDesc(cudnnCreateFilterDescriptor);
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w.get(), CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, y_role.c,
                                           x_role.c, op.kernel, op.kernel));
    const cudnnMathType_t math = tf32_ ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    for (ConvDesc* c : {&p.fwd, &p.bwd_data, &p.bwd_filter}) {
      *c = ConvDesc(cudnnCreateConvolutionDescriptor);
      CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c->get(), pad_h, pad_w, op.stride, op.stride, 1,
                                                  1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      CUDNN_CHECK(cudnnSetConvolutionMathType(c->get(), math));
    }
    int on = 0, oc = 0, oh = 0, ow = 0;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.fwd.get(), p.x.get(), p.w.get(), &on, &oc,
                                                      &oh, &ow));
    if (on != n || oc != y_role.c || oh != y_role.h || ow != y_role.w)
      throw Error("cuda backend: op " + std::to_string(k) + " (" + op_kind_name(op.kind) +
                  "): cuDNN's convolution maps " + dims_string(p.x_dims) + " to " +
                  std::to_string(oc) + "x" + std::to_string(oh) + "x" + std::to_string(ow) +
                  ", expected " + dims_string(y_role));

    const std::string shape =
        std::to_string(device_) + ":" + std::to_string(n) + ":" + dims_string(p.x_dims) + ">" +
        dims_string(y_role) + ":k" + std::to_string(op.kernel) + "s" + std::to_string(op.stride) +
        "p" + std::to_string(pad_h) + "," + std::to_string(pad_w) + (tf32_ ? ":tf32" : ":fma");
    const std::string what = std::string(op_kind_name(op.kind)) + " op " + std::to_string(k) +
                             " (" + dims_string(p.x_dims) + " -> " + dims_string(y_role) + ")";
    std::lock_guard<std::mutex> lock(algo_cache_mutex);
    auto choose = [&](const std::string& dir, auto find) {
      auto [it, fresh] = algo_cache.try_emplace(dir + "/" + shape);
      if (fresh) {
        try {
          it->second = find();
        } catch (...) {
          algo_cache.erase(it);
          throw;
        }
      }
      return it->second;
    };
    const AlgoChoice fwd = choose("fwd", [&] {
      int max = 0, found = 0;
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(cudnn_, &max));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> r(std::max(max, 1));
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(cudnn_, p.x.get(), p.w.get(), p.fwd.get(),
                                                       p.y.get(), max, &found, r.data()));
      return pick_algo(r.data(), found, tf32_, "the forward pass of " + what);
    });
    const AlgoChoice data = choose("bwd_data", [&] {
      int max = 0, found = 0;
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnn_, &max));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> r(std::max(max, 1));
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(
          cudnn_, p.w.get(), p.y.get(), p.bwd_data.get(), p.x.get(), max, &found, r.data()));
      return pick_algo(r.data(), found, tf32_, "the backward-data pass of " + what);
    });
    const AlgoChoice filter = choose("bwd_filter", [&] {
      int max = 0, found = 0;
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnn_, &max));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> r(std::max(max, 1));
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
          cudnn_, p.x.get(), p.y.get(), p.bwd_filter.get(), p.w.get(), max, &found, r.data()));
      return pick_algo(r.data(), found, tf32_, "the backward-filter pass of " + what);
    });
    p.fwd_algo = cudnnConvolutionFwdAlgo_t(fwd.algo);
    p.bwd_data_algo = cudnnConvolutionBwdDataAlgo_t(data.algo);
    p.bwd_filter_algo = cudnnConvolutionBwdFilterAlgo_t(filter.algo);
    if (tf32_) {  // cuDNN's advice: run each algorithm with the math type it was measured in
      CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd.get(), fwd.math));
      CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data.get(), data.math));
      CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter.get(), filter.math));
    }
    std::size_t bytes = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cudnn_, p.x.get(), p.w.get(), p.fwd.get(),
                                                        p.y.get(), p.fwd_algo, &bytes));
    workspace = std::max(workspace, bytes);
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        cudnn_, p.w.get(), p.y.get(), p.bwd_data.get(), p.x.get(), p.bwd_data_algo, &bytes));
    workspace = std::max(workspace, bytes);
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        cudnn_, p.x.get(), p.y.get(), p.bwd_filter.get(), p.w.get(), p.bwd_filter_algo, &bytes));
    workspace = std::max(workspace, bytes);
    return p;
  }

  // cuDNN's Y = conv(X, W), overwriting Y.
  void conv_fwd(const ConvPlan& p, const float* x, const float* w, float* y) {
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnConvolutionForward(cudnn_, &one, p.x.get(), x, p.w.get(), w, p.fwd.get(),
                                        p.fwd_algo, workspace_.get(), workspace_.size(), &zero,
                                        p.y.get(), y));
  }
  // cuDNN's dX from dY, overwriting dX.
  void conv_bwd_data(const ConvPlan& p, const float* w, const float* dy, float* dx) {
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn_, &one, p.w.get(), w, p.y.get(), dy,
                                             p.bwd_data.get(), p.bwd_data_algo, workspace_.get(),
                                             workspace_.size(), &zero, p.x.get(), dx));
  }
  // cuDNN's dW from X and dY, overwriting dW.
  void conv_bwd_filter(const ConvPlan& p, const float* x, const float* dy, float* dw) {
    const float one = 1.f, zero = 0.f;
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        cudnn_, &one, p.x.get(), x, p.y.get(), dy, p.bwd_filter.get(), p.bwd_filter_algo,
        workspace_.get(), workspace_.size(), &zero, p.w.get(), dw));
  }

  // Copies an X-role tensor (dims d, op-sized) into the padded frame of p, or back.
  void pad_into(const ConvPlan& p, const float* in, Dims d, float* padded) {
    ck::shift_copy(in, net_.batch * d.c, d.h, d.w, padded, p.x_dims.h, p.x_dims.w, -p.pad_top,
                   -p.pad_left, stream_);
  }
  void crop_from(const ConvPlan& p, const float* padded, Dims d, float* out) {
    ck::shift_copy(padded, net_.batch * d.c, p.x_dims.h, p.x_dims.w, out, d.h, d.w, p.pad_top,
                   p.pad_left, stream_);
  }

  void enqueue_forward() {
    const int n = net_.batch;
    for (int k = 0; k < int(net_.ops.size()); ++k) {
      const OpDesc& op = net_.ops[k];
      const float* in = input_of(k);
      float* out = acts_[k].get();
      const std::size_t count = acts_[k].size();
      switch (op.kind) {
        case OpKind::conv: {
          const ConvPlan& p = *plans_[k];
          const float* x = in;
          if (p.padded) {
            pad_into(p, in, op.in, p.xp.get());
            x = p.xp.get();
          }
          conv_fwd(p, x, weight(k), out);
          break;
        }
        case OpKind::tconv: {
          const ConvPlan& p = *plans_[k];
          conv_bwd_data(p, weight(k), in, p.padded ? p.xp.get() : out);
          if (p.padded) crop_from(p, p.xp.get(), op.out, out);
          break;
        }
        case OpKind::maxpool:
          ck::maxpool_forward(in, out, argmax_[k].get(), pool_geometry(op), stream_);
          break;
        case OpKind::resize:
          ck::resize_forward(in, out, n * op.in.c, op.in.h, op.in.w, op.out.h, op.out.w, stream_);
          break;
        case OpKind::relu:
          ck::act_forward(in, out, count, ck::Act::relu, stream_);
          break;
        case OpKind::sigmoid:
          ck::act_forward(in, out, count, ck::Act::sigmoid, stream_);
          break;
        case OpKind::concat:
          ck::concat_forward(in, op.in.size(), other_of(op), net_.act_dims(op.other).size(), out, n,
                             stream_);
          break;
        case OpKind::add:
        case OpKind::sub:
          ck::axpby(in, op.kind == OpKind::sub ? -1.f : 1.f, other_of(op), 1.f, out, count,
                    stream_);
          break;
        case OpKind::batchnorm:  // refused by make_executor: the op table's cuda column
          throw Error("cuda backend: no batchnorm kernel");
      }
      if (op.kind == OpKind::conv || op.kind == OpKind::tconv)
        ck::bias_act(out, bias(k), n, op.out.c, op.out.h * op.out.w, act_of(op.act), stream_);
    }
  }

  // From d_acts_.back() (d loss / d output) to grads_dev_ and, when want_dx, dx_dev_.
  void enqueue_backward(bool want_dx) {
    const int n = net_.batch;
    for (int k = int(net_.ops.size()) - 1; k >= 0; --k) {
      const OpDesc& op = net_.ops[k];
      const float* in = input_of(k);
      const float* out = acts_[k].get();
      float* dy = d_acts_[k].get();
      float* dx = k ? d_acts_[k - 1].get() : (want_dx ? dx_dev_.get() : nullptr);
      const std::size_t count = acts_[k].size();
      switch (op.kind) {
        case OpKind::conv: {
          const ConvPlan& p = *plans_[k];
          ck::act_backward_bias(dy, out, act_of(op.act), n, op.out.c, op.out.h * op.out.w,
                                bias_grad(k), partial_.get(), stream_);
          conv_bwd_filter(p, p.padded ? p.xp.get() : in, dy, weight_grad(k));
          if (!dx) break;
          conv_bwd_data(p, weight(k), dy, p.padded ? pad_scratch_.get() : dx);
          if (p.padded) crop_from(p, pad_scratch_.get(), op.in, dx);
          break;
        }
        case OpKind::tconv: {
          const ConvPlan& p = *plans_[k];
          ck::act_backward_bias(dy, out, act_of(op.act), n, op.out.c, op.out.h * op.out.w,
                                bias_grad(k), partial_.get(), stream_);
          const float* dx_role = dy;  // the tconv's output gradient is cuDNN's X
          if (p.padded) {
            pad_into(p, dy, op.out, pad_scratch_.get());
            dx_role = pad_scratch_.get();
          }
          conv_bwd_filter(p, dx_role, in, weight_grad(k));
          if (dx) conv_fwd(p, dx_role, weight(k), dx);
          break;
        }
        case OpKind::maxpool:
          if (dx) ck::maxpool_backward(dy, argmax_[k].get(), dx, pool_geometry(op), stream_);
          break;
        case OpKind::resize:
          if (dx)
            ck::resize_backward(dy, dx, n * op.in.c, op.in.h, op.in.w, op.out.h, op.out.w, stream_);
          break;
        case OpKind::relu:
          if (dx) ck::act_backward(out, dy, dx, count, ck::Act::relu, stream_);
          break;
        case OpKind::sigmoid:
          if (dx) ck::act_backward(out, dy, dx, count, ck::Act::sigmoid, stream_);
          break;
        case OpKind::concat:
          ck::concat_backward(dy, dx, op.in.size(), skip_grads_[k].get(),
                              net_.act_dims(op.other).size(), n, stream_);
          break;
        case OpKind::add:
        case OpKind::sub:
          ck::scale(dy, op.kind == OpKind::sub ? -1.f : 1.f, dx, count, stream_);
          ck::scale(dy, 1.f, skip_grads_[k].get(), count, stream_);
          break;
        case OpKind::batchnorm:
          throw Error("cuda backend: no batchnorm kernel");
      }
      // d(act k-1) is complete: the chain's part from op k, then each join's.
      if (dx)
        for (int join : join_readers_[k])
          ck::axpby(skip_grads_[join].get(), 1.f, dx, 1.f, dx, batch_size(net_.act_dims(k - 1)),
                    stream_);
    }
  }

  ck::PoolGeometry pool_geometry(const OpDesc& op) const {
    return {net_.batch * op.in.c, op.in.h,    op.in.w, op.out.h, op.out.w, op.kernel, op.stride,
            op.pad_top,           op.pad_left};
  }

  // One whole training step on slot's buffers: the work a graph captures.
  void enqueue_step(int slot, bool device_noise) {
    const FusedStepConfig& c = fused_config_;
    ck::step_begin(state_dev_.get(), slot, c.lr, c.beta1, c.beta2, stream_);
    if (device_noise)
      ck::corrupt(clean_dev_[slot].get(), x_dev_.get(), net_.batch, net_.input.size(),
                  c.noise_sigma, key_dev_.get() + slot, stream_);
    enqueue_forward();
    ck::loss(acts_.back().get(), clean_dev_[slot].get(), d_acts_.back().get(), acts_.back().size(),
             c.bce, state_dev_.get(), slot, stream_);
    enqueue_backward(false);
    ck::adam(params_dev_.get(), grads_dev_.get(), m_dev_.get(), v_dev_.get(), params_dev_.size(),
             state_dev_.get(), c.beta1, c.beta2, c.epsilon, stream_);
    CUDA_CHECK(cudaMemcpyAsync(loss_host_.get() + slot, &state_dev_.get()->loss_sum[slot],
                               sizeof(double), cudaMemcpyDeviceToHost, stream_));
  }

  // Runs enqueue_step, through a captured graph once the first step has run eagerly (so that
  // anything cuDNN sets up lazily happens outside capture).
  void run_step(int slot, bool device_noise) {
    const int variant = device_noise ? 0 : 1, g = slot + 2 * variant;
    if (!use_graphs_ || !warm_[variant]) {
      enqueue_step(slot, device_noise);
      warm_[variant] = true;
      return;
    }
    if (!graphs_[g]) {
      cudaGraph_t graph = nullptr;
      CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
      try {
        enqueue_step(slot, device_noise);
      } catch (...) {
        cudaStreamEndCapture(stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      check_cuda(e, "cudaGraphInstantiate");
      graphs_[g].reset(exec);
    }
    CUDA_CHECK(cudaGraphLaunch(graphs_[g].get(), stream_));
  }

  void drop_graphs() {
    for (auto& g : graphs_) g.reset();
  }

  NetDesc net_;
  std::vector<ParamInfo> infos_;
  std::vector<std::size_t> weight_at_, bias_at_;  // offsets into the flat buffers, or no_param
  bool use_graphs_ = true, tf32_ = false;         // ExecutorOptions::cuda_graphs, ::cuda_tf32
  int device_ = 0;

  // Declared before everything that queues work on them, so released after it.
  Stream stream_owner_, copy_stream_owner_;
  cudaStream_t stream_ = nullptr, copy_stream_ = nullptr;
  Event copied_[2], step_done_[2];
  Cudnn cudnn_owner_;
  cudnnHandle_t cudnn_ = nullptr;

  DeviceBuffer<float> params_dev_, grads_dev_, m_dev_, v_dev_;
  PinnedBuffer<float> params_host_, grads_host_, out_host_;
  Fresh params_fresh_ = Fresh::both;
  bool grads_stale_ = false, output_fresh_ = false, forwarded_ = false;

  DeviceBuffer<float> x_dev_, dx_dev_;
  std::vector<DeviceBuffer<float>> skip_grads_;     // per join op: d loss / d its other operand
  std::vector<std::vector<int>> join_readers_;      // NetDesc::join_readers()
  std::vector<DeviceBuffer<float>> acts_, d_acts_;  // output of op k and d loss / d it
  std::vector<std::unique_ptr<ConvPlan>> plans_;    // conv / tconv ops only
  std::vector<DeviceBuffer<int>> argmax_;           // maxpool ops only
  DeviceBuffer<unsigned char> workspace_;
  DeviceBuffer<float> partial_, pad_scratch_;

  // Fused steps: double-buffered inputs so that the next batch uploads while one trains.
  FusedStepConfig fused_config_;
  DeviceBuffer<float> clean_dev_[2];
  PinnedBuffer<float> clean_host_[2], noisy_host_[2];
  DeviceBuffer<ck::BatchKey> key_dev_;
  PinnedBuffer<ck::BatchKey> key_host_;
  DeviceBuffer<ck::StepState> state_dev_;
  PinnedBuffer<double> loss_host_;
  GraphExec graphs_[4];  // [slot + 2 * variant], variant 1: noise made by the caller
  bool fused_ = false, warm_[2] = {false, false};
  std::int64_t steps_ = 0;   // fused steps ever queued
  std::int64_t queued_ = 0;  // since fused_begin
};

}  // namespace

std::string cuda_unavailable_reason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it, so that it does not surface in a later call
    return std::string("no CUDA device or driver (") + cudaGetErrorString(e) + ")";
  }
  if (count == 0) return "no CUDA device or driver (no device found)";
  return ck::probe();
}

std::unique_ptr<Executor> make_cuda_executor(const NetDesc& net, const ExecutorOptions& options) {
  return std::make_unique<CudaExecutor>(net, options);
}

}  // namespace cae::ops
