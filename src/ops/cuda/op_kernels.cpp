// The kernels of each op kind, forward and backward: cuDNN's for the convolutions
// (conv_plans.cpp), ours (kernels.cu) for the rest, enqueued on the executor's stream.
#include <string>
#include <vector>

#include "ops/cuda/executor_impl.h"

namespace cae::ops::cuda_exec {

namespace {

using E = CudaExecutor;

// The CUDA backend's entry for an op kind: its forward and backward kernels and, for an
// element-wise op, the kernels' activation for it, which a conv's fused activation of that op
// takes too.
struct CudaOp {
  OpKind kind;
  void (CudaExecutor::*forward)(const OpForward&);
  void (CudaExecutor::*backward)(const OpBackward&);
  ck::Act act = ck::Act::none;
};

// One entry per op kind, in OpKind order (checked below).
constexpr CudaOp kOps[] = {
    {OpKind::conv, &E::forward_conv, &E::backward_conv},
    {OpKind::tconv, &E::forward_tconv, &E::backward_tconv},
    {OpKind::maxpool, &E::forward_maxpool, &E::backward_maxpool},
    {OpKind::resize, &E::forward_resize, &E::backward_resize},
    {OpKind::relu, &E::forward_eltwise, &E::backward_eltwise, ck::Act::relu},
    {OpKind::sigmoid, &E::forward_eltwise, &E::backward_eltwise, ck::Act::sigmoid},
    {OpKind::concat, &E::forward_concat, &E::backward_concat},
    {OpKind::add, &E::forward_sum, &E::backward_sum},
    {OpKind::sub, &E::forward_sum, &E::backward_sum},
    {OpKind::batchnorm, &E::forward_none, &E::backward_none},
#ifdef CAE_TOY_OP
    {OpKind::toy, &E::forward_none, &E::backward_none},
#endif
};
static_assert(one_per_op_kind(kOps), "the cuda backend needs one entry per OpKind, in order");

const CudaOp& cuda_op(OpKind kind) {
  if (std::size_t(kind) >= kOpKinds)
    throw Error("cuda backend: no entry for op kind " + std::to_string(int(kind)));
  return kOps[std::size_t(kind)];
}

// The kernels' activation for a fused one: that of its element-wise op's entry.
ck::Act act_of(Activation a) {
  if (std::size_t(a) >= kActivations)
    throw Error("cuda backend: unknown activation " + std::to_string(int(a)));
  if (a == Activation::none) return ck::Act::none;
  const ck::Act act = cuda_op(activation_info(a).op).act;
  if (act == ck::Act::none)
    throw Error(std::string("cuda backend: no kernel for the fused activation ") +
                activation_info(a).spec_word);
  return act;
}

}  // namespace

// ---- The kernels of kOps: op k's forward, or its backward, on stream_ ----

void CudaExecutor::forward_conv(const OpForward& f) {
  const ConvPlan& p = *plans_[f.k];
  const float* x = f.in;
  if (p.padded) {
    pad_into(p, f.in, f.op.in, p.xp.get());
    x = p.xp.get();
  }
  conv_fwd(p, x, weight(f.k), f.out);
}
void CudaExecutor::backward_conv(const OpBackward& b) {
  const ConvPlan& p = *plans_[b.k];
  conv_bwd_filter(p, p.padded ? p.xp.get() : b.in, b.dy, weight_grad(b.k));
  if (!b.dx) return;
  conv_bwd_data(p, weight(b.k), b.dy, p.padded ? pad_scratch_.get() : b.dx);
  if (p.padded) crop_from(p, pad_scratch_.get(), b.op.in, b.dx);
}

void CudaExecutor::forward_tconv(const OpForward& f) {
  const ConvPlan& p = *plans_[f.k];
  conv_bwd_data(p, weight(f.k), f.in, p.padded ? p.xp.get() : f.out);
  if (p.padded) crop_from(p, p.xp.get(), f.op.out, f.out);
}
void CudaExecutor::backward_tconv(const OpBackward& b) {
  const ConvPlan& p = *plans_[b.k];
  const float* dx_role = b.dy;  // the tconv's output gradient is cuDNN's X
  if (p.padded) {
    pad_into(p, b.dy, b.op.out, pad_scratch_.get());
    dx_role = pad_scratch_.get();
  }
  conv_bwd_filter(p, dx_role, b.in, weight_grad(b.k));
  if (b.dx) conv_fwd(p, dx_role, weight(b.k), b.dx);
}

void CudaExecutor::forward_maxpool(const OpForward& f) {
  ck::maxpool_forward(f.in, f.out, argmax_[f.k].get(), pool_geometry(f.op), stream_);
}
void CudaExecutor::backward_maxpool(const OpBackward& b) {
  if (b.dx) ck::maxpool_backward(b.dy, argmax_[b.k].get(), b.dx, pool_geometry(b.op), stream_);
}

void CudaExecutor::forward_resize(const OpForward& f) {
  const OpDesc& op = f.op;
  ck::resize_forward(f.in, f.out, net_.batch * op.in.c, op.in.h, op.in.w, op.out.h, op.out.w,
                     stream_);
}
void CudaExecutor::backward_resize(const OpBackward& b) {
  const OpDesc& op = b.op;
  if (b.dx)
    ck::resize_backward(b.dy, b.dx, net_.batch * op.in.c, op.in.h, op.in.w, op.out.h, op.out.w,
                        stream_);
}

void CudaExecutor::forward_eltwise(const OpForward& f) {
  ck::act_forward(f.in, f.out, f.count, cuda_op(f.op.kind).act, stream_);
}
void CudaExecutor::backward_eltwise(const OpBackward& b) {
  if (b.dx) ck::act_backward(b.out, b.dy, b.dx, b.count, cuda_op(b.op.kind).act, stream_);
}

void CudaExecutor::forward_concat(const OpForward& f) {
  ck::concat_forward(f.in, f.op.in.size(), other_of(f.op), net_.act_dims(f.op.other).size(), f.out,
                     net_.batch, stream_);
}
void CudaExecutor::backward_concat(const OpBackward& b) {
  ck::concat_backward(b.dy, b.dx, b.op.in.size(), skip_grads_[b.k].get(),
                      net_.act_dims(b.op.other).size(), net_.batch, stream_);
}

// z = join_sign * x + y; its gradients: join_sign * dz for x, dz for y.
void CudaExecutor::forward_sum(const OpForward& f) {
  ck::axpby(f.in, op_info(f.op.kind).join_sign, other_of(f.op), 1.f, f.out, f.count, stream_);
}
void CudaExecutor::backward_sum(const OpBackward& b) {
  ck::scale(b.dy, op_info(b.op.kind).join_sign, b.dx, b.count, stream_);
  ck::scale(b.dy, 1.f, skip_grads_[b.k].get(), b.count, stream_);
}

// Refused by make_executor (the op table's cuda column), so never reached.
void CudaExecutor::forward_none(const OpForward& f) {
  throw Error(std::string("cuda backend: no ") + op_kind_name(f.op.kind) + " kernel");
}
void CudaExecutor::backward_none(const OpBackward& b) {
  throw Error(std::string("cuda backend: no ") + op_kind_name(b.op.kind) + " kernel");
}

void CudaExecutor::enqueue_forward() {
  for (int k = 0; k < int(net_.ops.size()); ++k) {
    const OpDesc& op = net_.ops[k];
    float* out = acts_[k].get();
    (this->*cuda_op(op.kind).forward)({k, op, input_of(k), out, acts_[k].size()});
    if (op_info(op.kind).convolution)
      ck::bias_act(out, bias(k), net_.batch, op.out.c, op.out.h * op.out.w, act_of(op.act),
                   stream_);
  }
}

void CudaExecutor::enqueue_backward(bool want_dx) {
  for (int k = int(net_.ops.size()) - 1; k >= 0; --k) {
    const OpDesc& op = net_.ops[k];
    const float* out = acts_[k].get();
    float* dy = d_acts_[k].get();
    float* dx = k ? d_acts_[k - 1].get() : (want_dx ? dx_dev_.get() : nullptr);
    // A convolution's fused activation and bias first: dy, in place, becomes the gradient of the
    // convolution's own output, and the bias's gradient is written.
    if (op_info(op.kind).convolution)
      ck::act_backward_bias(dy, out, act_of(op.act), net_.batch, op.out.c, op.out.h * op.out.w,
                            bias_grad(k), partial_.get(), stream_);
    (this->*cuda_op(op.kind).backward)({k, op, input_of(k), out, dy, dx, acts_[k].size()});
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
