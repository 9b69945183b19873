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
      if (net_.ops[k].kind == OpKind::batchnorm) {
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
      switch (op.kind) {
        case OpKind::conv:
          ref::conv_forward(op, net_.batch, in, weight(k), bias(k), out);
          break;
        case OpKind::tconv:
          ref::tconv_forward(op, net_.batch, in, weight(k), bias(k), out);
          break;
        case OpKind::maxpool:
          ref::maxpool_forward(op, net_.batch, in, out);
          break;
        case OpKind::resize:
          ref::resize_forward(op, net_.batch, in, out);
          break;
        case OpKind::relu:
          ref::relu_forward(batch_size(op.out), in, out);
          break;
        case OpKind::sigmoid:
          ref::sigmoid_forward(batch_size(op.out), in, out);
          break;
        case OpKind::concat:
          ref::concat_forward(op, net_.batch, in, other, out);
          break;
        case OpKind::add:
          ref::add_forward(batch_size(op.out), in, other, out);
          break;
        case OpKind::sub:
          ref::sub_forward(batch_size(op.out), in, other, out);
          break;
        case OpKind::batchnorm:
          ref::batchnorm_forward(op, net_.batch, in, weight(k), bias(k), out,
                                 batch_mean_[k].data(), batch_var_[k].data());
          break;
      }
      ref::activation_forward(op.act, batch_size(op.out), out);
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
      ref::activation_backward(op.act, dy.size(), out, dy.data(), d_pre.data());
      dx.resize(batch_size(op.in));
      // The first op's input gradient is only wanted when the caller asks for d_input.
      const bool want_dx = k > 0 || d_input;
      switch (op.kind) {
        case OpKind::conv:
          ref::conv_backward_weights(op, net_.batch, in, d_pre.data(), weight_grad(k),
                                     bias_grad(k));
          if (want_dx) ref::conv_backward_data(op, net_.batch, d_pre.data(), weight(k), dx.data());
          break;
        case OpKind::tconv:
          ref::tconv_backward_weights(op, net_.batch, in, d_pre.data(), weight_grad(k),
                                      bias_grad(k));
          if (want_dx) ref::tconv_backward_data(op, net_.batch, d_pre.data(), weight(k), dx.data());
          break;
        case OpKind::maxpool:
          ref::maxpool_backward(op, net_.batch, in, d_pre.data(), dx.data());
          break;
        case OpKind::resize:
          ref::resize_backward(op, net_.batch, d_pre.data(), dx.data());
          break;
        case OpKind::relu:
          ref::relu_backward(dx.size(), out, d_pre.data(), dx.data());
          break;
        case OpKind::sigmoid:
          ref::sigmoid_backward(dx.size(), out, d_pre.data(), dx.data());
          break;
        case OpKind::concat:
        case OpKind::add:
        case OpKind::sub:
          d_other.resize(batch_size(net_.act_dims(op.other)));
          if (op.kind == OpKind::concat)
            ref::concat_backward(op, net_.batch, d_pre.data(), dx.data(), d_other.data());
          else if (op.kind == OpKind::add)
            ref::add_backward(dx.size(), d_pre.data(), dx.data(), d_other.data());
          else if (op.kind == OpKind::sub)
            ref::sub_backward(dx.size(), d_pre.data(), dx.data(), d_other.data());
          else
            throw Error("ref backend: no backward for join " + std::string(op_kind_name(op.kind)));
          add_into(pending[op.other + 1], d_other);
          break;
        case OpKind::batchnorm: {
          ref::batchnorm_backward(op, net_.batch, in, d_pre.data(), weight(k),
                                  batch_mean_[k].data(), batch_var_[k].data(), dx.data(),
                                  weight_grad(k), bias_grad(k));
          // The running statistics' slots: the batch mean, then the unbiased variance.
          const int c = op.out.c;
          const double count = double(net_.batch) * op.out.h * op.out.w;
          const double unbias = count > 1 ? count / (count - 1) : 1.0;
          float* stats = bias_grad(k) + c;
          for (int j = 0; j < c; ++j) {
            stats[j] = batch_mean_[k][j];
            stats[c + j] = float(batch_var_[k][j] * unbias);
          }
          break;
        }
      }
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

  float* weight(int k) { return params_.data() + weight_at_[k]; }
  float* bias(int k) { return bias_at_[k] == no_param ? nullptr : params_.data() + bias_at_[k]; }
  float* weight_grad(int k) { return grads_.data() + weight_at_[k]; }
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
