// The CUDA executor's private header: the class and the per-op structs its files share. Included
// only by the files of src/ops/cuda/ that build or run it:
//   cuda_executor.cpp  the public functions of cuda_executor.h
//   buffers.cpp        the constructor (every buffer and plan, made once) and the Executor calls
//                      that move activations, gradients and parameters between host and device
//   conv_plans.cpp     cuDNN's descriptors and algorithms per conv / tconv, and its calls
//   op_kernels.cpp     the kernels of each op kind (kOps), enqueue_forward / enqueue_backward
//   fused_step.cpp     whole training steps (noise, forward, loss, backward, Adam) and their
//                      CUDA graphs
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ops/cuda/cuda_executor.h"
#include "ops/cuda/cuda_resources.h"
#include "ops/cuda/kernels.h"

namespace cae::ops::cuda_exec {

namespace ck = cuda_kernels;

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

// What op k's forward kernels read and write, on the device, NCHW.
struct OpForward {
  int k;
  const OpDesc& op;
  const float* in;    // the previous op's output (the net's input for op 0)
  float* out;         // overwritten
  std::size_t count;  // floats of out
};

// What op k's backward kernels read and write. dy is the gradient of the op's output before its
// fused bias and activation (enqueue_backward applies their gradient first).
struct OpBackward {
  int k;
  const OpDesc& op;
  const float* in;
  const float* out;
  const float* dy;
  float* dx;          // d(input), overwritten; null for op 0's when no d_input is wanted
  std::size_t count;  // floats of out
};

class CudaExecutor final : public Executor {
 public:
  CudaExecutor(const NetDesc& net, const ExecutorOptions& options);
  ~CudaExecutor() override;

  void forward(const float* x) override;
  const float* output() override;
  void read_activation(int k, float* out) override;
  void backward(const float* d_output, float* d_input) override;
  std::span<float> params() override;
  std::span<float> grads() override;
  std::vector<std::vector<float>> to_canonical(std::span<const float> flat) override;
  void from_canonical(const std::vector<std::vector<float>>& tensors,
                      std::span<float> flat) override;
  const NetDesc& desc() const override { return net_; }

  // The steps of enqueue_forward and enqueue_backward, with cuDNN's algorithm for each conv
  // (chosen when the plan was built, fastest deterministic first) and our kernels elsewhere.
  // The fused steps run the same kernels, plus the noise, the loss and Adam.
  std::vector<KernelUse> kernels() const override;
  // cuDNN runs every conv; no op is moved to another kernel than the one chosen for it.
  std::vector<std::string> fallbacks() const override { return {}; }
  // No batchnorm kernels here: make_executor refuses such a net before this backend sees it.
  std::vector<FlatRange> statistics_ranges() const override { return {}; }

  bool fused_begin(const FusedStepConfig& config, std::span<const float> m,
                   std::span<const float> v, std::int64_t t) override;
  double fused_step(const float* clean, const float* noisy, const NoiseKey& key) override;
  double fused_end(std::span<float> m, std::span<float> v) override;

  // The kernels of kOps (op_kernels.cpp), one pair per op kind: each enqueues op k's forward,
  // or its backward, on stream_. A conv's or tconv's bias and fused activation are
  // enqueue_forward's and enqueue_backward's, around these.
  void forward_conv(const OpForward& f);
  void backward_conv(const OpBackward& b);
  void forward_tconv(const OpForward& f);
  void backward_tconv(const OpBackward& b);
  void forward_maxpool(const OpForward& f);
  void backward_maxpool(const OpBackward& b);
  void forward_resize(const OpForward& f);
  void backward_resize(const OpBackward& b);
  void forward_eltwise(const OpForward& f);  // relu, sigmoid: the ck::Act of kOps' entry
  void backward_eltwise(const OpBackward& b);
  void forward_concat(const OpForward& f);
  void backward_concat(const OpBackward& b);
  void forward_sum(const OpForward& f);  // add, sub: the row's join_sign
  void backward_sum(const OpBackward& b);
  // An op without a CUDA kernel (batchnorm; the test build's toy op): throw, naming it. Never
  // reached: make_executor refuses such a net (the op table's cuda column).
  void forward_none(const OpForward& f);
  void backward_none(const OpBackward& b);

 private:
  static constexpr std::size_t no_param = std::size_t(-1);
  enum class Fresh { both, host, device };  // where the current parameters are

  std::size_t batch_size(const Dims& d) const { return std::size_t(net_.batch) * d.size(); }

  void check_flat_size(std::size_t found, const char* where) const;
  void require_not_fused(const char* what) const;
  void params_to_device();

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

  // cuDNN's descriptors and algorithms for conv/tconv op k; grows workspace to what they need.
  ConvPlan make_plan(int k, std::size_t& workspace);
  // cuDNN's Y = conv(X, W), overwriting Y.
  void conv_fwd(const ConvPlan& p, const float* x, const float* w, float* y);
  // cuDNN's dX from dY, overwriting dX.
  void conv_bwd_data(const ConvPlan& p, const float* w, const float* dy, float* dx);
  // cuDNN's dW from X and dY, overwriting dW.
  void conv_bwd_filter(const ConvPlan& p, const float* x, const float* dy, float* dw);
  // Copies an X-role tensor (dims d, op-sized) into the padded frame of p, or back.
  void pad_into(const ConvPlan& p, const float* in, Dims d, float* padded);
  void crop_from(const ConvPlan& p, const float* padded, Dims d, float* out);

  void enqueue_forward();
  // From d_acts_.back() (d loss / d output) to grads_dev_ and, when want_dx, dx_dev_.
  void enqueue_backward(bool want_dx);
  ck::PoolGeometry pool_geometry(const OpDesc& op) const;

  // One whole training step on slot's buffers: the work a graph captures.
  void enqueue_step(int slot, bool device_noise);
  // Runs enqueue_step, through a captured graph once the first step has run eagerly (so that
  // anything cuDNN sets up lazily happens outside capture).
  void run_step(int slot, bool device_noise);
  void drop_graphs();

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

}  // namespace cae::ops::cuda_exec
