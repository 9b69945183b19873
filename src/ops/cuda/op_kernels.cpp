// The kernels of each op kind, forward and backward: cuDNN's for the convolutions
// (conv_plans.cpp), ours (kernels.cu) for the rest, enqueued on the executor's stream.
#include <string>
#include <vector>

#include "ops/cuda/executor_impl.h"

namespace cae::ops::cuda_exec {

ck::Act CudaExecutor::act_of(Activation a) {
  switch (a) {
    case Activation::none:
      return ck::Act::none;
    case Activation::relu:
      return ck::Act::relu;
    case Activation::sigmoid:
      return ck::Act::sigmoid;
  }
  throw Error("cuda backend: unknown activation " + std::to_string(int(a)));
}

void CudaExecutor::enqueue_forward() {
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
        ck::axpby(in, op.kind == OpKind::sub ? -1.f : 1.f, other_of(op), 1.f, out, count, stream_);
        break;
      case OpKind::batchnorm:  // refused by make_executor: the op table's cuda column
        throw Error("cuda backend: no batchnorm kernel");
    }
    if (op.kind == OpKind::conv || op.kind == OpKind::tconv)
      ck::bias_act(out, bias(k), n, op.out.c, op.out.h * op.out.w, act_of(op.act), stream_);
  }
}

void CudaExecutor::enqueue_backward(bool want_dx) {
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

ck::PoolGeometry CudaExecutor::pool_geometry(const OpDesc& op) const {
  return {net_.batch * op.in.c, op.in.h,    op.in.w, op.out.h, op.out.w, op.kernel, op.stride,
          op.pad_top,           op.pad_left};
}

std::vector<KernelUse> CudaExecutor::kernels() const {
  std::vector<KernelUse> all;
  const int n = int(net_.ops.size());
  auto cudnn = [](const char* what, int algo) {
    return std::string("cudnn:") + what + " algo " + std::to_string(algo);
  };
  for (int k = 0; k < n; ++k) {
    const OpDesc& op = net_.ops[k];
    const ConvPlan* p = plans_[k].get();
    const std::string impl = !p              ? std::string("cae-cuda:") + op_kind_name(op.kind)
                             : p->transposed ? cudnn("backward data", int(p->bwd_data_algo))
                                             : cudnn("forward", int(p->fwd_algo));
    all.push_back({k, "forward", "forward", impl});
  }
  for (int k = n - 1; k >= 0; --k) {
    const OpDesc& op = net_.ops[k];
    const ConvPlan* p = plans_[k].get();
    if (!p) {
      all.push_back({k, "backward", "backward", std::string("cae-cuda:") + op_kind_name(op.kind)});
      continue;
    }
    all.push_back(
        {k, "backward", "backward weights", cudnn("backward filter", int(p->bwd_filter_algo))});
    all.push_back({k, "backward", "backward data",
                   p->transposed ? cudnn("forward", int(p->fwd_algo))
                                 : cudnn("backward data", int(p->bwd_data_algo))});
  }
  return all;
}

}  // namespace cae::ops::cuda_exec
