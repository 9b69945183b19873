// Whole training steps on the device (Executor's fused_begin, fused_step, fused_end): the noise,
// forward, the loss, backward and Adam, double-buffered so that the next batch uploads while one
// trains, replayed from captured CUDA graphs.
#include <cstring>
#include <limits>

#include "ops/cuda/executor_impl.h"

namespace cae::ops::cuda_exec {

bool CudaExecutor::fused_begin(const FusedStepConfig& config, std::span<const float> m,
                               std::span<const float> v, std::int64_t t) {
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

double CudaExecutor::fused_step(const float* clean, const float* noisy, const NoiseKey& key) {
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

double CudaExecutor::fused_end(std::span<float> m, std::span<float> v) {
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

void CudaExecutor::enqueue_step(int slot, bool device_noise) {
  const FusedStepConfig& c = fused_config_;
  ck::step_begin(state_dev_.get(), slot, c.lr, c.beta1, c.beta2, stream_);
  if (device_noise)
    ck::corrupt(clean_dev_[slot].get(), x_dev_.get(), net_.batch, net_.input.size(), c.noise_sigma,
                key_dev_.get() + slot, stream_);
  enqueue_forward();
  ck::loss(acts_.back().get(), clean_dev_[slot].get(), d_acts_.back().get(), acts_.back().size(),
           c.bce, state_dev_.get(), slot, stream_);
  enqueue_backward(false);
  ck::adam(params_dev_.get(), grads_dev_.get(), m_dev_.get(), v_dev_.get(), params_dev_.size(),
           state_dev_.get(), c.beta1, c.beta2, c.epsilon, stream_);
  CUDA_CHECK(cudaMemcpyAsync(loss_host_.get() + slot, &state_dev_.get()->loss_sum[slot],
                             sizeof(double), cudaMemcpyDeviceToHost, stream_));
}

void CudaExecutor::run_step(int slot, bool device_noise) {
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

void CudaExecutor::drop_graphs() {
  for (auto& g : graphs_) g.reset();
}

}  // namespace cae::ops::cuda_exec
