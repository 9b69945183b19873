#include <iterator>
#include <string>
#include <vector>

#include "cae/error.h"
#include "ops/ops.h"

namespace cae::ops {

const std::vector<OpInfo>& op_table() {
  using S = ShapeRule;
  using W = Weights;
  using A = SpecArgs;
  // kind, name, spec word, spec args, kernel, stride, shape, weights, join, fuses activation,
  // ONNX, ref, dnnl, cuda
  static const std::vector<OpInfo> table = {
      {OpKind::conv, "conv", "conv", A::conv, 3, 1, S::window, W::oihw, false, true, "Conv",
       true, true, true},
      {OpKind::tconv, "tconv", "tconv", A::conv, 3, 2, S::transposed, W::iohw, false, true,
       "ConvTranspose", true, true, true},
      {OpKind::maxpool, "maxpool", "pool", A::window, 2, 2, S::pool, W::none, false, false,
       "MaxPool", true, true, true},
      {OpKind::resize, "resize", "resize", A::target, 1, 1, S::resize, W::none, false, false,
       "Resize", true, true, true},
      {OpKind::relu, "relu", "relu", A::nothing, 1, 1, S::same, W::none, false, false, "Relu",
       true, true, true},
      {OpKind::sigmoid, "sigmoid", "sigmoid", A::nothing, 1, 1, S::same, W::none, false, false,
       "Sigmoid", true, true, true},
      {OpKind::concat, "concat", "concat", A::operand, 1, 1, S::concat, W::none, true, false,
       "Concat", true, true, true},
      {OpKind::add, "add", "add", A::operand, 1, 1, S::same, W::none, true, false, "Add", true,
       true, true},
      {OpKind::sub, "sub", "sub", A::operand, 1, 1, S::same, W::none, true, false, "Sub", true,
       true, true},
      // Exported folded into the Conv before it (nn::Model::folded). No cuda kernels yet: that
      // backend refuses a net with it.
      {OpKind::batchnorm, "batchnorm", "bn", A::norm, 1, 1, S::same, W::norm, false, true, "Conv",
       true, true, false},
  };
  return table;
}

const ActivationInfo& activation_info(Activation act) {
  static const ActivationInfo table[] = {
      {Activation::none, "", nullptr, OpKind::relu},
      {Activation::relu, "relu", "Relu", OpKind::relu},
      {Activation::sigmoid, "sigmoid", "Sigmoid", OpKind::sigmoid},
  };
  const auto index = std::size_t(act);
  if (index >= std::size(table) || table[index].act != act)
    throw Error("activation table: no row for activation " + std::to_string(int(act)));
  return table[index];
}

Activation activation_of(OpKind kind) {
  for (Activation act : {Activation::relu, Activation::sigmoid})
    if (activation_info(act).op == kind) return act;
  throw Error(std::string("activation_of: ") + op_kind_name(kind) + " is not an activation");
}

bool OpInfo::runs_on(Backend backend) const {
  switch (backend) {
    case Backend::ref: return ref;
    case Backend::dnnl: return dnnl;
    case Backend::cuda: return cuda;
  }
  return false;
}

const OpInfo& op_info(OpKind kind) {
  const auto& table = op_table();
  const auto index = std::size_t(kind);
  if (index >= table.size() || table[index].kind != kind)
    throw Error("op table: no row for op kind " + std::to_string(int(kind)));
  return table[index];
}

const OpInfo* op_by_spec_word(const std::string& word) {
  for (const OpInfo& info : op_table())
    if (word == info.spec_word) return &info;
  return nullptr;
}

}  // namespace cae::ops
