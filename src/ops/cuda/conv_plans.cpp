// cuDNN's side of the convolutions: per conv / tconv op, its descriptors and the algorithm of each
// direction (measured once per shape in the process), and the calls that run them.
#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ops/cuda/executor_impl.h"
#include "ops/net_check.h"

namespace cae::ops::cuda_exec {
namespace {

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

}  // namespace

ConvPlan CudaExecutor::make_plan(int k, std::size_t& workspace) {
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
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c->get(), pad_h, pad_w, op.stride, op.stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(c->get(), math));
  }
  int on = 0, oc = 0, oh = 0, ow = 0;
  CUDNN_CHECK(
      cudnnGetConvolution2dForwardOutputDim(p.fwd.get(), p.x.get(), p.w.get(), &on, &oc, &oh, &ow));
  if (on != n || oc != y_role.c || oh != y_role.h || ow != y_role.w)
    throw Error("cuda backend: op " + std::to_string(k) + " (" + op_kind_name(op.kind) +
                "): cuDNN's convolution maps " + dims_string(p.x_dims) + " to " +
                std::to_string(oc) + "x" + std::to_string(oh) + "x" + std::to_string(ow) +
                ", expected " + dims_string(y_role));

  const std::string shape =
      std::to_string(device_) + ":" + std::to_string(n) + ":" + dims_string(p.x_dims) + ">" +
      dims_string(y_role) + ":k" + std::to_string(op.kernel) + "s" + std::to_string(op.stride) +
      "p" + std::to_string(pad_h) + "," + std::to_string(pad_w) + (tf32_ ? ":tf32" : ":fma");
  const std::string what = std::string(op_kind_name(op.kind)) + " op " + std::to_string(k) + " (" +
                           dims_string(p.x_dims) + " -> " + dims_string(y_role) + ")";
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

void CudaExecutor::conv_fwd(const ConvPlan& p, const float* x, const float* w, float* y) {
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnConvolutionForward(cudnn_, &one, p.x.get(), x, p.w.get(), w, p.fwd.get(),
                                      p.fwd_algo, workspace_.get(), workspace_.size(), &zero,
                                      p.y.get(), y));
}

void CudaExecutor::conv_bwd_data(const ConvPlan& p, const float* w, const float* dy, float* dx) {
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn_, &one, p.w.get(), w, p.y.get(), dy,
                                           p.bwd_data.get(), p.bwd_data_algo, workspace_.get(),
                                           workspace_.size(), &zero, p.x.get(), dx));
}

void CudaExecutor::conv_bwd_filter(const ConvPlan& p, const float* x, const float* dy, float* dw) {
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      cudnn_, &one, p.x.get(), x, p.y.get(), dy, p.bwd_filter.get(), p.bwd_filter_algo,
      workspace_.get(), workspace_.size(), &zero, p.w.get(), dw));
}

void CudaExecutor::pad_into(const ConvPlan& p, const float* in, Dims d, float* padded) {
  ck::shift_copy(in, net_.batch * d.c, d.h, d.w, padded, p.x_dims.h, p.x_dims.w, -p.pad_top,
                 -p.pad_left, stream_);
}

void CudaExecutor::crop_from(const ConvPlan& p, const float* padded, Dims d, float* out) {
  ck::shift_copy(padded, net_.batch * d.c, p.x_dims.h, p.x_dims.w, out, d.h, d.w, p.pad_top,
                 p.pad_left, stream_);
}

}  // namespace cae::ops::cuda_exec
