#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cae/error.h"
#include "ops/ops.h"

namespace cae::ops {

namespace {

using S = ShapeRule;
using W = Weights;
using A = SpecArgs;

// One row per op, in OpKind order (checked below). parity and gradient: the generated tests'
// bounds (ops.h): exact for ops that only move or select values, within float rounding for
// those that sum many products.
constexpr OpInfo kTable[] = {
    {.kind = OpKind::conv, .name = "conv", .spec_word = "conv", .spec_args = A::conv,
     .kernel = 3, .stride = 1, .shape = S::window, .weights = W::oihw, .join = Join::none,
     .join_sign = 0, .convolution = true, .upsamples = false, .fuses_activation = true,
     .onnx = "Conv", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-4f,
     .gradient = 1e-2f},
    {.kind = OpKind::tconv, .name = "tconv", .spec_word = "tconv", .spec_args = A::conv,
     .kernel = 3, .stride = 2, .shape = S::transposed, .weights = W::iohw, .join = Join::none,
     .join_sign = 0, .convolution = true, .upsamples = true, .fuses_activation = true,
     .onnx = "ConvTranspose", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-4f,
     .gradient = 1e-2f},
    {.kind = OpKind::maxpool, .name = "maxpool", .spec_word = "pool", .spec_args = A::window,
     .kernel = 2, .stride = 2, .shape = S::pool, .weights = W::none, .join = Join::none,
     .join_sign = 0, .convolution = false, .upsamples = false, .fuses_activation = false,
     .onnx = "MaxPool", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-5f,
     .gradient = 1e-2f},
    {.kind = OpKind::resize, .name = "resize", .spec_word = "resize", .spec_args = A::target,
     .kernel = 1, .stride = 1, .shape = S::resize, .weights = W::none, .join = Join::none,
     .join_sign = 0, .convolution = false, .upsamples = true, .fuses_activation = false,
     .onnx = "Resize", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-5f,
     .gradient = 1e-2f},
    {.kind = OpKind::relu, .name = "relu", .spec_word = "relu", .spec_args = A::nothing,
     .kernel = 1, .stride = 1, .shape = S::same, .weights = W::none, .join = Join::none,
     .join_sign = 0, .convolution = false, .upsamples = false, .fuses_activation = false,
     .onnx = "Relu", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-5f,
     .gradient = 1e-2f},
    {.kind = OpKind::sigmoid, .name = "sigmoid", .spec_word = "sigmoid",
     .spec_args = A::nothing, .kernel = 1, .stride = 1, .shape = S::same, .weights = W::none,
     .join = Join::none, .join_sign = 0, .convolution = false, .upsamples = false,
     .fuses_activation = false, .onnx = "Sigmoid", .ref = true, .dnnl = true, .cuda = true,
     .parity = 1e-5f, .gradient = 1e-2f},
    {.kind = OpKind::concat, .name = "concat", .spec_word = "concat", .spec_args = A::operand,
     .kernel = 1, .stride = 1, .shape = S::concat, .weights = W::none, .join = Join::concat,
     .join_sign = 0, .convolution = false, .upsamples = false, .fuses_activation = false,
     .onnx = "Concat", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-5f,
     .gradient = 1e-2f},
    {.kind = OpKind::add, .name = "add", .spec_word = "add", .spec_args = A::operand,
     .kernel = 1, .stride = 1, .shape = S::same, .weights = W::none, .join = Join::sum,
     .join_sign = 1, .convolution = false, .upsamples = false, .fuses_activation = false,
     .onnx = "Add", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-5f,
     .gradient = 1e-2f},
    {.kind = OpKind::sub, .name = "sub", .spec_word = "sub", .spec_args = A::operand,
     .kernel = 1, .stride = 1, .shape = S::same, .weights = W::none, .join = Join::sum,
     .join_sign = -1, .convolution = false, .upsamples = false, .fuses_activation = false,
     .onnx = "Sub", .ref = true, .dnnl = true, .cuda = true, .parity = 1e-5f,
     .gradient = 1e-2f},
    // Exported folded into the Conv before it (nn::Model::folded). No cuda kernels yet: that
    // backend refuses a net with it.
    {.kind = OpKind::batchnorm, .name = "batchnorm", .spec_word = "bn", .spec_args = A::norm,
     .kernel = 1, .stride = 1, .shape = S::same, .weights = W::norm, .join = Join::none,
     .join_sign = 0, .convolution = false, .upsamples = false, .fuses_activation = true,
     .onnx = "Conv", .ref = true, .dnnl = true, .cuda = false, .parity = 1e-4f,
     .gradient = 2e-2f},
#ifdef CAE_TOY_OP
    {.kind = OpKind::toy, .name = "toy", .spec_word = "toy", .spec_args = A::nothing,
     .kernel = 1, .stride = 1, .shape = S::same, .weights = W::none, .join = Join::none,
     .join_sign = 0, .convolution = false, .upsamples = false, .fuses_activation = false,
     .onnx = "Tanh", .ref = true, .dnnl = true, .cuda = false, .parity = 1e-5f,
     .gradient = 1e-2f},
#endif
};
static_assert(one_per_op_kind(kTable), "the op table needs one row per OpKind, in order");

constexpr ActivationInfo kActivationTable[] = {
    {Activation::none, "", nullptr, OpKind::count},
    {Activation::relu, "relu", "Relu", OpKind::relu},
    {Activation::sigmoid, "sigmoid", "Sigmoid", OpKind::sigmoid},
};
static_assert(one_per_activation(kActivationTable),
              "the activation table needs one row per Activation, in order");

}  // namespace

std::span<const OpInfo> op_table() { return kTable; }

const ActivationInfo& activation_info(Activation act) {
  const auto index = std::size_t(act);
  if (index >= kActivations)
    throw Error("activation table: no row for activation " + std::to_string(int(act)));
  return kActivationTable[index];
}

Activation activation_of(OpKind kind) {
  for (const ActivationInfo& info : kActivationTable)
    if (info.act != Activation::none && info.op == kind) return info.act;
  throw Error(std::string("activation_of: ") + op_kind_name(kind) + " is not an activation");
}

std::optional<Activation> activation_by_spec_word(std::string_view word) {
  if (word == "linear") return Activation::none;
  for (const ActivationInfo& info : kActivationTable)
    if (info.act != Activation::none && word == info.spec_word) return info.act;
  return std::nullopt;
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
  const auto index = std::size_t(kind);
  if (index >= kOpKinds)
    throw Error("op table: no row for op kind " + std::to_string(int(kind)));
  return kTable[index];
}

const OpInfo* op_by_spec_word(const std::string& word) {
  for (const OpInfo& info : op_table())
    if (word == info.spec_word) return &info;
  return nullptr;
}

}  // namespace cae::ops
