#include "ops/ref/ref_executor.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "cae/error.h"
#include "ops/canonical.h"
#include "ops/net_check.h"
#include "ops/ref/ref_kernels.h"

namespace cae::ops {
namespace {

constexpr std::size_t no_param = std::size_t(-1);

// What one op's forward kernel reads and writes: NCHW, the batch's images one after another.
struct Forward {
  const OpDesc& op;
  int batch;
  const float* in;     // the previous op's output (the net's input for op 0)
  const float* other;  // a join's second operand, else null
  const float* weight;
  const float* bias;  // null: none
  float* out;
  float* mean;  // a batchnorm's batch statistics, kept for backward; else null
  float* var;
};

// What one op's backward kernel reads and writes. dy is the gradient of the op's output before
// its fused activation (the executor applies that first).
struct Backward {
  const OpDesc& op;
  int batch;
  const float* in;
  const float* out;
  const float* dy;
  const float* weight;
  const float* mean;
  const float* var;
  float* dx;        // written unless !want_dx (only op 0's, when the caller wants no d_input)
  bool want_dx;
  float* d_other;   // a join's gradient of its second operand
  float* dweight;   // gradients of the parameters, overwritten
  float* dbias;     // null: no bias; a batchnorm's is followed by its running statistics' slots
};

std::size_t count(const OpDesc& op, int batch) { return std::size_t(batch) * op.out.size(); }

void conv_forward(const Forward& f) {
  ref::conv_forward(f.op, f.batch, f.in, f.weight, f.bias, f.out);
}
void conv_backward(const Backward& b) {
  ref::conv_backward_weights(b.op, b.batch, b.in, b.dy, b.dweight, b.dbias);
  if (b.want_dx) ref::conv_backward_data(b.op, b.batch, b.dy, b.weight, b.dx);
}
void tconv_forward(const Forward& f) {
  ref::tconv_forward(f.op, f.batch, f.in, f.weight, f.bias, f.out);
}
void tconv_backward(const Backward& b) {
  ref::tconv_backward_weights(b.op, b.batch, b.in, b.dy, b.dweight, b.dbias);
  if (b.want_dx) ref::tconv_backward_data(b.op, b.batch, b.dy, b.weight, b.dx);
}
void maxpool_forward(const Forward& f) { ref::maxpool_forward(f.op, f.batch, f.in, f.out); }
void maxpool_backward(const Backward& b) {
  ref::maxpool_backward(b.op, b.batch, b.in, b.dy, b.dx);
}
void resize_forward(const Forward& f) { ref::resize_forward(f.op, f.batch, f.in, f.out); }
void resize_backward(const Backward& b) { ref::resize_backward(b.op, b.batch, b.dy, b.dx); }
void relu_forward(const Forward& f) { ref::relu_forward(count(f.op, f.batch), f.in, f.out); }
void relu_backward(const Backward& b) {
  ref::relu_backward(count(b.op, b.batch), b.out, b.dy, b.dx);
}
void sigmoid_forward(const Forward& f) {
  ref::sigmoid_forward(count(f.op, f.batch), f.in, f.out);
}
void sigmoid_backward(const Backward& b) {
  ref::sigmoid_backward(count(b.op, b.batch), b.out, b.dy, b.dx);
}
void concat_forward(const Forward& f) {
  ref::concat_forward(f.op, f.batch, f.in, f.other, f.out);
}
void concat_backward(const Backward& b) {
  ref::concat_backward(b.op, b.batch, b.dy, b.dx, b.d_other);
}
void add_forward(const Forward& f) { ref::add_forward(count(f.op, f.batch), f.in, f.other, f.out); }
void add_backward(const Backward& b) {
  ref::add_backward(count(b.op, b.batch), b.dy, b.dx, b.d_other);
}
void sub_forward(const Forward& f) { ref::sub_forward(count(f.op, f.batch), f.in, f.other, f.out); }
void sub_backward(const Backward& b) {
  ref::sub_backward(count(b.op, b.batch), b.dy, b.dx, b.d_other);
}
void batchnorm_forward(const Forward& f) {
  ref::batchnorm_forward(f.op, f.batch, f.in, f.weight, f.bias, f.out, f.mean, f.var);
}
void batchnorm_backward(const Backward& b) {
  ref::batchnorm_backward(b.op, b.batch, b.in, b.dy, b.weight, b.mean, b.var, b.dx, b.dweight,
                          b.dbias);
  // The running statistics' slots: the batch mean, then the unbiased variance.
  const int c = b.op.out.c;
  const double n = double(b.batch) * b.op.out.h * b.op.out.w;
  const double unbias = n > 1 ? n / (n - 1) : 1.0;
  float* stats = b.dbias + c;
  for (int j = 0; j < c; ++j) {
    stats[j] = b.mean[j];
    stats[c + j] = float(b.var[j] * unbias);
  }
}

#ifdef CAE_TOY_OP
void toy_forward(const Forward& f) { ref::tanh_forward(count(f.op, f.batch), f.in, f.out); }
void toy_backward(const Backward& b) {
  ref::tanh_backward(count(b.op, b.batch), b.out, b.dy, b.dx);
}
#endif

// The ref backend's kernels, one entry per op kind in OpKind order.
struct RefKernels {
  OpKind kind;
  void (*forward)(const Forward&);
  void (*backward)(const Backward&);
};
constexpr RefKernels kKernels[] = {
    {OpKind::conv, conv_forward, conv_backward},
    {OpKind::tconv, tconv_forward, tconv_backward},
    {OpKind::maxpool, maxpool_forward, maxpool_backward},
    {OpKind::resize, resize_forward, resize_backward},
    {OpKind::relu, relu_forward, relu_backward},
    {OpKind::sigmoid, sigmoid_forward, sigmoid_backward},
    {OpKind::concat, concat_forward, concat_backward},
    {OpKind::add, add_forward, add_backward},
    {OpKind::sub, sub_forward, sub_backward},
    {OpKind::batchnorm, batchnorm_forward, batchnorm_backward},
#ifdef CAE_TOY_OP
    {OpKind::toy, toy_forward, toy_backward},
#endif
};
static_assert(one_per_op_kind(kKernels), "the ref backend needs one entry per OpKind, in order");

const RefKernels& kernels_of(OpKind kind) { return kKernels[std::size_t(kind)]; }

// Runs a NetDesc with the naive kernels. Parameters live in one flat buffer that is already the
// canonical tensors of param_infos() concatenated, so the canonical conversions only split and
// join.
class RefExecutor final : public Executor {
 public:
  explicit RefExecutor(const NetDesc& net) : net_(net), infos_(param_infos(net)) {
    check_net_desc(net_);
    weight_at_.assign(net_.ops.size(), no_param);
    bias_at_.assign(net_.ops.size(), no_param);
    params_end_.assign(net_.ops.size(), 0);
    std::size_t offset = 0;
    for (const ParamInfo& info : infos_) {
      if (info.name == "weight" || info.name == "bias")
        (info.name == "weight" ? weight_at_ : bias_at_)[info.op] = offset;
      else if (info.name == "running_mean")  // running_var follows it
        statistics_.push_back({offset, 2 * info.size()});
      offset += info.size();
      params_end_[info.op] = offset;
    }
    batch_mean_.resize(net_.ops.size());
    batch_var_.resize(net_.ops.size());
    for (std::size_t k = 0; k < net_.ops.size(); ++k)
      if (op_info(net_.ops[k].kind).weights == Weights::norm) {
        batch_mean_[k].resize(net_.ops[k].out.c);
        batch_var_[k].resize(net_.ops[k].out.c);
      }
    params_.assign(offset, 0.f);
    grads_.assign(offset, 0.f);
    for (const OpDesc& op : net_.ops) acts_.emplace_back(batch_size(op.out), 0.f);
  }

  void forward(const float* x) override {
    x_ = x;
    for (int k = 0; k < int(net_.ops.size()); ++k) {
      const OpDesc& op = net_.ops[k];
      const float* in = k ? acts_[k - 1].data() : x;
      float* out = acts_[k].data();
      const float* other = !is_join(op.kind)               ? nullptr
                           : op.other == OpDesc::kNetInput ? x
                                                           : acts_[op.other].data();
      const bool norm = op_info(op.kind).weights == Weights::norm;
      kernels_of(op.kind).forward({op, net_.batch, in, other, weight(k), bias(k), out,
                                   norm ? batch_mean_[k].data() : nullptr,
                                   norm ? batch_var_[k].data() : nullptr});
      // The fused activation: its element-wise op's kernel, in place.
      if (op.act != Activation::none) {
        OpDesc act_op = op;
        act_op.kind = activation_info(op.act).op;
        kernels_of(act_op.kind).forward(
            {act_op, net_.batch, out, nullptr, nullptr, nullptr, out, nullptr, nullptr});
      }
    }
  }

  // Plain loops for every op, forward in order, backward in reverse (its input gradient is part
  // of the same loop); no other kernel to fall back to.
  std::vector<KernelUse> kernels() const override {
    std::vector<KernelUse> all;
    const int n = int(net_.ops.size());
    for (int k = 0; k < n; ++k) all.push_back({k, "forward", "forward", "ref"});
    for (int k = n - 1; k >= 0; --k) all.push_back({k, "backward", "backward", "ref"});
    return all;
  }
  std::vector<std::string> fallbacks() const override { return {}; }
  std::vector<FlatRange> statistics_ranges() const override { return statistics_; }

  const float* output() override { return acts_.back().data(); }

  void read_activation(int k, float* out) override {
    if (k < 0 || k >= int(acts_.size()))
      throw Error("ref backend: read_activation: op index expected in [0, " +
                  std::to_string(acts_.size()) + "), found " + std::to_string(k));
    std::copy(acts_[k].begin(), acts_[k].end(), out);
  }

  void backward(const float* d_output, float* d_input) override {
    if (!x_) throw Error("ref backend: backward() called before forward()");
    std::vector<float> dy(d_output, d_output + acts_.back().size()), d_pre, dx, d_other;
    // pending[k + 1]: the joins' gradients of activation k (pending[0]: of the input), added to
    // the chain's once every reader of it has run (all readers come after it).
    std::vector<std::vector<float>> pending(net_.ops.size() + 1);
    auto add_into = [](std::vector<float>& sum, const std::vector<float>& part) {
      if (sum.empty()) sum.assign(part.size(), 0.f);
      for (std::size_t i = 0; i < part.size(); ++i) sum[i] += part[i];
    };
    for (int k = int(net_.ops.size()) - 1; k >= 0; --k) {
      const OpDesc& op = net_.ops[k];
      if (!pending[k + 1].empty())
        for (std::size_t i = 0; i < dy.size(); ++i) dy[i] += pending[k + 1][i];
      const float* in = k ? acts_[k - 1].data() : x_;
      const float* out = acts_[k].data();
      d_pre.resize(dy.size());
      if (op.act == Activation::none) {
        std::copy(dy.begin(), dy.end(), d_pre.begin());
      } else {
        OpDesc act_op = op;
        act_op.kind = activation_info(op.act).op;
        kernels_of(act_op.kind).backward({act_op, net_.batch, out, out, dy.data(), nullptr,
                                          nullptr, nullptr, d_pre.data(), true, nullptr, nullptr,
                                          nullptr});
      }
      dx.resize(batch_size(op.in));
      // The first op's input gradient is only wanted when the caller asks for d_input.
      const bool want_dx = k > 0 || d_input;
      if (is_join(op.kind)) d_other.assign(batch_size(net_.act_dims(op.other)), 0.f);
      const bool norm = op_info(op.kind).weights == Weights::norm;
      kernels_of(op.kind).backward({op, net_.batch, in, out, d_pre.data(), weight(k),
                                    norm ? batch_mean_[k].data() : nullptr,
                                    norm ? batch_var_[k].data() : nullptr, dx.data(), want_dx,
                                    d_other.data(), weight_grad(k), bias_grad(k)});
      if (is_join(op.kind)) add_into(pending[op.other + 1], d_other);
      // An op's weight and bias lie side by side, weight first: one range.
      if (grads_ready_ && weight_at_[k] != no_param)
        grads_ready_(
            std::span<float>(grads_).subspan(weight_at_[k], params_end_[k] - weight_at_[k]));
      std::swap(dy, dx);
    }
    if (!pending[0].empty())
      for (std::size_t i = 0; i < dy.size(); ++i) dy[i] += pending[0][i];
    if (d_input) std::copy(dy.begin(), dy.end(), d_input);
  }

  std::span<float> params() override { return params_; }
  std::span<float> grads() override { return grads_; }

  std::vector<std::vector<float>> to_canonical(std::span<const float> flat) override {
    return split_canonical(infos_, flat, "ref");
  }

  void from_canonical(const std::vector<std::vector<float>>& tensors,
                      std::span<float> flat) override {
    join_canonical(infos_, tensors, flat, "ref");
  }

  const NetDesc& desc() const override { return net_; }

 private:
  std::size_t batch_size(const Dims& d) const { return std::size_t(net_.batch) * d.size(); }

  // Null for an op without parameters.
  float* weight(int k) { return weight_at_[k] == no_param ? nullptr : params_.data() + weight_at_[k]; }
  float* bias(int k) { return bias_at_[k] == no_param ? nullptr : params_.data() + bias_at_[k]; }
  float* weight_grad(int k) {
    return weight_at_[k] == no_param ? nullptr : grads_.data() + weight_at_[k];
  }
  float* bias_grad(int k) {
    return bias_at_[k] == no_param ? nullptr : grads_.data() + bias_at_[k];
  }

  NetDesc net_;
  std::vector<ParamInfo> infos_;
  std::vector<std::size_t> weight_at_, bias_at_;  // offsets into params_ per op, or no_param
  std::vector<std::size_t> params_end_;            // one past an op's last parameter
  std::vector<FlatRange> statistics_;              // a batchnorm's running statistics
  std::vector<std::vector<float>> batch_mean_, batch_var_;  // per batchnorm op, of forward()
  std::vector<float> params_, grads_;
  std::vector<std::vector<float>> acts_;  // acts_[k]: output of op k, NCHW
  const float* x_ = nullptr;              // input of the last forward()
};

}  // namespace

std::unique_ptr<Executor> make_ref_executor(const NetDesc& net) {
  return std::make_unique<RefExecutor>(net);
}

}  // namespace cae::ops
