// The CUDA executor's buffers: every one made once by the constructor (activations, gradients,
// parameters, the conv plans and their workspace), and the Executor calls that move activations,
// gradients and parameters between host and device.
#include <algorithm>
#include <string>

#include "ops/canonical.h"
#include "ops/cuda/executor_impl.h"
#include "ops/net_check.h"

namespace cae::ops::cuda_exec {

CudaExecutor::CudaExecutor(const NetDesc& net, const ExecutorOptions& options)
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
    if (!op_info(op.kind).convolution) continue;
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

CudaExecutor::~CudaExecutor() {
  // Queued work still reads the buffers; errors are of no use here, and the members release
  // everything else.
  cudaStreamSynchronize(copy_stream_);
  cudaStreamSynchronize(stream_);
}

void CudaExecutor::forward(const float* x) {
  require_not_fused("forward");
  params_to_device();
  CUDA_CHECK(cudaMemcpyAsync(x_dev_.get(), x, batch_size(net_.input) * sizeof(float),
                             cudaMemcpyHostToDevice, stream_));
  enqueue_forward();
  forwarded_ = true;
  output_fresh_ = false;
}

const float* CudaExecutor::output() {
  if (!output_fresh_) {
    CUDA_CHECK(cudaMemcpyAsync(out_host_.get(), acts_.back().get(),
                               acts_.back().size() * sizeof(float), cudaMemcpyDeviceToHost,
                               stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    output_fresh_ = true;
  }
  return out_host_.get();
}

void CudaExecutor::read_activation(int k, float* out) {
  if (k < 0 || k >= int(acts_.size()))
    throw Error("cuda backend: read_activation: op index expected in [0, " +
                std::to_string(acts_.size()) + "), found " + std::to_string(k));
  CUDA_CHECK(cudaMemcpyAsync(out, acts_[k].get(), acts_[k].size() * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaExecutor::backward(const float* d_output, float* d_input) {
  require_not_fused("backward");
  if (!forwarded_) throw Error("cuda backend: backward() called before forward()");
  params_to_device();
  CUDA_CHECK(cudaMemcpyAsync(d_acts_.back().get(), d_output, d_acts_.back().size() * sizeof(float),
                             cudaMemcpyHostToDevice, stream_));
  enqueue_backward(d_input != nullptr);
  grads_stale_ = true;
  if (d_input)
    CUDA_CHECK(cudaMemcpyAsync(d_input, dx_dev_.get(), dx_dev_.size() * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  // The gradients are final only once they are all on the host: one range, all of them.
  if (grads_ready_) grads_ready_(grads());
}

std::span<float> CudaExecutor::params() {
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

std::span<float> CudaExecutor::grads() {
  require_not_fused("grads");
  if (grads_stale_) {
    CUDA_CHECK(cudaMemcpyAsync(grads_host_.get(), grads_dev_.get(),
                               grads_dev_.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    grads_stale_ = false;
  }
  return grads_host_.span();
}

std::vector<std::vector<float>> CudaExecutor::to_canonical(std::span<const float> flat) {
  return split_canonical(infos_, flat, "cuda");
}

void CudaExecutor::from_canonical(const std::vector<std::vector<float>>& tensors,
                                  std::span<float> flat) {
  join_canonical(infos_, tensors, flat, "cuda");
}

void CudaExecutor::check_flat_size(std::size_t found, const char* where) const {
  if (found != params_dev_.size())
    throw Error(std::string("cuda backend: ") + where + ": flat buffer size expected " +
                std::to_string(params_dev_.size()) + ", found " + std::to_string(found));
}

void CudaExecutor::require_not_fused(const char* what) const {
  if (fused_)
    throw Error(std::string("cuda backend: ") + what +
                "() called between fused_begin() and fused_end()");
}

void CudaExecutor::params_to_device() {
  if (params_fresh_ != Fresh::host) return;
  CUDA_CHECK(cudaMemcpyAsync(params_dev_.get(), params_host_.get(),
                             params_dev_.size() * sizeof(float), cudaMemcpyHostToDevice, stream_));
  params_fresh_ = Fresh::both;
}

}  // namespace cae::ops::cuda_exec
