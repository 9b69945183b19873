#include "export/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <exception>

#include "cae/error.h"
#include "core/atomic_file.h"
#include "nn/model.h"
#include "ops/net_check.h"

#ifndef CAE_VERSION
#error "CAE_VERSION must be defined (cmake/onnx.cmake)"
#endif

namespace cae::io {

namespace {

static_assert(std::endian::native == std::endian::little,
              "TensorProto raw_data is little-endian; a big-endian host must swap bytes");

const char* const kBatch = "batch";

// What one op was, for messages: "op 3 (maxpool 7x7x32 -> 4x4x32)" in C x H x W.
std::string op_text(int index, const ops::OpDesc& op) {
  return "op " + std::to_string(index) + " (" + ops::op_kind_name(op.kind) + " " +
         ops::dims_string(op.in) + " -> " + ops::dims_string(op.out) + ")";
}

// batch 0: the symbolic batch dimension.
void set_nchw_type(onnx::ValueInfoProto* value, const std::string& name, int batch, ops::Dims d) {
  value->set_name(name);
  auto* tensor = value->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor->mutable_shape();
  if (batch > 0)
    shape->add_dim()->set_dim_value(batch);
  else
    shape->add_dim()->set_dim_param(kBatch);
  shape->add_dim()->set_dim_value(d.c);
  shape->add_dim()->set_dim_value(d.h);
  shape->add_dim()->set_dim_value(d.w);
}

void add_float_initializer(onnx::GraphProto* graph, const std::string& name,
                           const std::vector<int>& shape, const std::vector<float>& data) {
  onnx::TensorProto* t = graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int d : shape) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * 4));
}

void add_int64_initializer(onnx::GraphProto* graph, const std::string& name,
                           const std::vector<std::int64_t>& values) {
  onnx::TensorProto* t = graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(std::int64_t(values.size()));
  for (std::int64_t v : values) t->add_int64_data(v);
}

void add_ints(onnx::NodeProto* node, const char* name, const std::vector<std::int64_t>& values) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (std::int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto* node, const char* name, std::int64_t value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void add_float(onnx::NodeProto* node, const char* name, float value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void add_string(onnx::NodeProto* node, const char* name, const std::string& value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

onnx::NodeProto* add_node(onnx::GraphProto* graph, const std::string& type, const std::string& name,
                          const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type(type);
  node->set_name(name);
  for (const auto& in : inputs) node->add_input(in);
  node->add_output(output);
  return node;
}

// The graph's output: the denoised image, or an informed model's repair.
const char* output_name(const nn::Model& model) {
  return model.informed() ? kOnnxRepairName : kOnnxOutputName;
}

// Builds the graph op by op. Tensor names: the op's output is "op<i>", a fused activation's
// input "op<i>.pre"; the last node writes output_name(model). An informed model's net reads
// "net_input", the image and the 0/1 mask "damage" concatenated. fixed_batch > 0 builds the twin
// with that batch size fixed, whose Resize sizes are constants, so that ONNX shape inference can
// follow every op (it cannot see through the dynamic graph's computed sizes).
class GraphBuilder {
 public:
  GraphBuilder(const nn::Model& model, onnx::GraphProto* graph, int fixed_batch)
      : model_(model),
        graph_(graph),
        net_(model.net(1)),
        fixed_batch_(fixed_batch),
        first_input_(model.informed() ? kOnnxImageName : kOnnxInputName),
        net_input_(model.informed() ? "net_input" : kOnnxInputName) {}

  void build() {
    graph_->set_name("cae");
    if (model_.informed())
      add_informed_inputs();
    else
      set_nchw_type(graph_->add_input(), kOnnxInputName, fixed_batch_, net_.input);
    set_nchw_type(graph_->add_output(), output_name(model_), fixed_batch_, net_.output());
    std::string x = net_input_;
    for (std::size_t i = 0; i < net_.ops.size(); ++i) x = add_op(int(i), net_.ops[i], x);
    if (model_.informed()) {
      add_output_image(x, "net_image");
      add_repair("net_image");
    } else {
      add_output_image(x, kOnnxOutputName);
    }
    add_initializers();
  }

  const ops::NetDesc& net() const { return net_; }

 private:
  // The ONNX parameter name of op i's weight or bias: the cae model file's tensor name.
  std::string param(int op, const char* which) const {
    return "op" + std::to_string(op) + "." + which;
  }

  // Conv / ConvTranspose inputs: x, the weight and, when the op has one, the bias.
  std::vector<std::string> weights(int i, const ops::OpDesc& op, const std::string& x) const {
    std::vector<std::string> inputs = {x, param(i, "weight")};
    if (op.bias) inputs.push_back(param(i, "bias"));
    return inputs;
  }

  static void add_window(onnx::NodeProto* node, const ops::OpDesc& op) {
    add_ints(node, "kernel_shape", {op.kernel, op.kernel});
    add_ints(node, "strides", {op.stride, op.stride});
    add_ints(node, "dilations", {1, 1});
  }

  // The fused activation of a conv / tconv as its own node, pre -> out (none: pre is out).
  void add_activation(const ops::OpDesc& op, const std::string& name, const std::string& pre,
                      const std::string& out) {
    if (op.act == ops::Activation::none) return;
    add_node(graph_, ops::activation_info(op.act).onnx, name + " activation", {pre}, out);
  }

  // One node (or a few) per op: op i, reading x, writes the tensor `out`; `name` names its nodes
  // and `type` is the op table's ONNX column.
  struct Node {
    const ops::OpDesc& op;
    int i;
    const std::string& x;
    const std::string& out;
    const std::string& name;
    const char* type;
  };

 public:
  // The exporter's entry for an op kind (kOps, below the class, one per kind).
  struct OnnxOp {
    ops::OpKind kind;
    void (GraphBuilder::*add)(const Node&);
  };

  void add_conv(const Node& n) {
    const ops::OpDesc& op = n.op;
    const std::string pre = op.act != ops::Activation::none ? n.out + ".pre" : n.out;
    onnx::NodeProto* node = add_node(graph_, n.type, n.name, weights(n.i, op, n.x), pre);
    add_window(node, op);
    add_ints(node, "pads", {op.pad_top, op.pad_left, op.pad_bottom, op.pad_right});
    add_activation(op, n.name, pre, n.out);
  }

  void add_tconv(const Node& n) {
    const ops::OpDesc& op = n.op;
    const std::string& out = n.out;
    const std::string& name = n.name;
    // cae's padding is that of the forward conv, out = (in-1)*s + k - before - after, which
    // is ONNX's pads exactly. But OpenCV (4.6) refuses asymmetric ConvTranspose pads, and
    // TF 'same' puts the odd cell after (7 -> 14 pads 0 before, 1 after). So: pads
    // `before` on both sides, which keeps output cell o at full-output cell o + before,
    // then a Slice drops the (after - before) extra cells at the end.
    if (op.pad_bottom < op.pad_top || op.pad_right < op.pad_left)
      throw Error(name + ": transposed-conv padding larger before than after (" +
                  std::to_string(op.pad_top) + "," + std::to_string(op.pad_left) + " before, " +
                  std::to_string(op.pad_bottom) + "," + std::to_string(op.pad_right) +
                  " after) has no export");
    const bool crop = op.pad_bottom != op.pad_top || op.pad_right != op.pad_left;
    const bool fused = op.act != ops::Activation::none;
    const std::string full = crop ? out + ".full" : fused ? out + ".pre" : out;
    onnx::NodeProto* node = add_node(graph_, n.type, name, weights(n.i, op, n.x), full);
    add_window(node, op);
    add_ints(node, "pads", {op.pad_top, op.pad_left, op.pad_top, op.pad_left});
    std::string pre = full;
    if (crop) {
      pre = fused ? out + ".pre" : out;
      const std::string prefix = out + ".crop";
      add_int64_initializer(graph_, prefix + ".starts", {0, 0});
      add_int64_initializer(graph_, prefix + ".ends", {op.out.h, op.out.w});
      add_int64_initializer(graph_, prefix + ".axes", {2, 3});
      add_node(graph_, "Slice", name + " crop",
               {full, prefix + ".starts", prefix + ".ends", prefix + ".axes"}, pre);
    }
    add_activation(op, name, pre, out);
  }

  void add_maxpool(const Node& n) {
    // ONNX MaxPool ignores padded cells, as cae's 'same' pooling does (7 -> 4 pads the
    // bottom and right by one).
    const ops::OpDesc& op = n.op;
    onnx::NodeProto* node = add_node(graph_, n.type, n.name, {n.x}, n.out);
    add_ints(node, "kernel_shape", {op.kernel, op.kernel});
    add_ints(node, "strides", {op.stride, op.stride});
    add_ints(node, "pads", {op.pad_top, op.pad_left, op.pad_bottom, op.pad_right});
  }

  void add_resize(const Node& n) {
    // Explicit sizes, not scales: 4 -> 7 has no exact float scale in general, and ONNX
    // derives the coordinate map from sizes as dst * in / out, TF1's map. Sizes must have
    // the input's rank, so the batch entry comes from the input's runtime shape.
    const ops::OpDesc& op = n.op;
    const std::string sizes = n.out + ".sizes";
    if (fixed_batch_ > 0) {
      add_int64_initializer(graph_, sizes, {fixed_batch_, op.out.c, op.out.h, op.out.w});
    } else {
      const std::string chw = n.out + ".chw";
      add_int64_initializer(graph_, chw, {op.out.c, op.out.h, op.out.w});
      add_int(add_node(graph_, "Concat", n.name + " sizes", {batch_dim(), chw}, sizes), "axis",
              0);
    }
    onnx::NodeProto* node = add_node(graph_, n.type, n.name, {n.x, "", "", sizes}, n.out);
    add_string(node, "mode", "nearest");
    add_string(node, "coordinate_transformation_mode", "asymmetric");
    add_string(node, "nearest_mode", "floor");
  }

  void add_elementwise(const Node& n) { add_node(graph_, n.type, n.name, {n.x}, n.out); }

  void add_concat(const Node& n) {
    add_int(add_node(graph_, n.type, n.name, {n.x, tensor_of(n.op.other)}, n.out), "axis", 1);
  }

  // Add is x + y; Sub, y - x, is the ONNX Sub of (y, x): the row's sign says which.
  void add_sum(const Node& n) {
    const std::string y = tensor_of(n.op.other);
    const bool minus_x = ops::op_info(n.op.kind).join_sign < 0;
    add_node(graph_, n.type, n.name, minus_x ? std::vector<std::string>{y, n.x}
                                             : std::vector<std::string>{n.x, y},
             n.out);
  }

  // Batch norm has no node of its own: nn::Model::folded() puts it into the conv before it.
  void add_none(const Node& n) { throw Error(n.name + ": no ONNX form for this op"); }

 private:
  std::string add_op(int i, const ops::OpDesc& op, const std::string& x);

  // The tensor holding activation k: op k's output, or the net's input.
  std::string tensor_of(int k) const {
    return k == ops::OpDesc::kNetInput ? net_input_ : "op" + std::to_string(k);
  }

  // The runtime batch size as a 1-element int64 tensor, made once: Shape(input)[0:1].
  std::string batch_dim() {
    const std::string name = "batch_dim";
    if (!batch_dim_made_) {
      add_node(graph_, "Shape", "input shape", {first_input_}, "input_shape");
      add_int64_initializer(graph_, "slice_starts", {0});
      add_int64_initializer(graph_, "slice_ends", {1});
      add_int64_initializer(graph_, "slice_axes", {0});
      add_node(graph_, "Slice", "batch size",
               {"input_shape", "slice_starts", "slice_ends", "slice_axes"}, name);
      batch_dim_made_ = true;
    }
    return name;
  }

  // The model's image, not its raw output: what nn::output_to_image computes, into out.
  void add_output_image(const std::string& x, const std::string& out) {
    if (model_.loss() == nn::LossKind::bce) {
      add_node(graph_, "Sigmoid", "logits to image", {x}, out);
    } else {
      // clamp(x, 0, 1). HardSigmoid with alpha 1, beta 0 is exactly that; Clip would say it
      // too, but OpenCV (4.6) reads Clip only in its opset-6 form with min/max attributes.
      onnx::NodeProto* node = add_node(graph_, "HardSigmoid", "clamp to image", {x}, out);
      add_float(node, "alpha", 1.f);
      add_float(node, "beta", 0.f);
    }
  }

  // An informed model's inputs "image" and "mask", and what its net reads: "damage", the mask
  // as 0/1 (damaged where mask > 0), then "net_input", the image's planes and damage's
  // (data::with_mask_channel's order). cae's nets only ever see 0/1 masks (data::corrupt
  // makes no other), so the graph gives its net the same whatever the caller's mask holds,
  // and selects with the same 0/1. Sign(Relu(mask)) rather than
  // Cast(Greater(mask, 0)): OpenCV 4.6 reads a comparison with a constant as a layer that
  // fails for batches above 1 (an assertion in shape_utils' total()); the two unary ops are
  // the same map, 1 for mask > 0 and 0 otherwise.
  void add_informed_inputs() {
    const ops::Dims image{net_.input.c - 1, net_.input.h, net_.input.w};
    set_nchw_type(graph_->add_input(), kOnnxImageName, fixed_batch_, image);
    set_nchw_type(graph_->add_input(), kOnnxMaskName, fixed_batch_, {1, image.h, image.w});
    add_float_initializer(graph_, "one", {1}, {1.f});
    add_node(graph_, "Relu", "mask above zero", {kOnnxMaskName}, "mask.positive");
    add_node(graph_, "Sign", "damage as 0/1", {"mask.positive"}, "damage");
    add_int(add_node(graph_, "Concat", "net input", {kOnnxImageName, "damage"}, net_input_), "axis",
            1);
  }

  // repaired = damage * net_image + (1 - damage) * image: data::keep_undamaged's select. With
  // damage exactly 0 or 1 each product is exact (0 * x = 0, 1 * x = x) and so is the sum, so
  // the undamaged pixels are the input's bits and the damaged ones the net's. Arithmetic
  // rather than Where: OpenCV 4.6's ONNX importer has no Where layer ("Can't create layer").
  // And OpenCV 4.6 does not broadcast a 1-channel operand of Mul over C channels for batches
  // above 1 (an assertion in shape_utils' total()), so the mask is repeated to the image's
  // channels with a Concat first.
  void add_repair(const std::string& net_image) {
    const int channels = net_.output().c;
    std::string damage = "damage";
    if (channels > 1) {
      damage = "damage.channels";
      add_int(add_node(graph_, "Concat", "damage for every channel",
                       std::vector<std::string>(std::size_t(channels), "damage"), damage),
              "axis", 1);
    }
    add_node(graph_, "Mul", "net image inside the damage", {damage, net_image}, "repair.inside");
    add_node(graph_, "Sub", "undamaged as 0/1", {"one", damage}, "keep");
    add_node(graph_, "Mul", "input image outside the damage", {"keep", kOnnxImageName},
             "repair.outside");
    add_node(graph_, "Add", "repair", {"repair.inside", "repair.outside"}, kOnnxRepairName);
  }

  void add_initializers() {
    const auto& infos = model_.param_infos();
    for (std::size_t i = 0; i < infos.size(); ++i)
      add_float_initializer(graph_, model_.param_name(i), infos[i].shape, model_.params()[i]);
  }

  const nn::Model& model_;
  onnx::GraphProto* graph_;
  ops::NetDesc net_;
  int fixed_batch_;
  std::string first_input_;  // the input whose shape gives the batch size
  std::string net_input_;    // what the net's first op (and a join's "input") reads
  bool batch_dim_made_ = false;
};

using B = GraphBuilder;

// One entry per op kind, in OpKind order (checked below).
constexpr B::OnnxOp kOps[] = {
    {ops::OpKind::conv, &B::add_conv},
    {ops::OpKind::tconv, &B::add_tconv},
    {ops::OpKind::maxpool, &B::add_maxpool},
    {ops::OpKind::resize, &B::add_resize},
    {ops::OpKind::relu, &B::add_elementwise},
    {ops::OpKind::sigmoid, &B::add_elementwise},
    {ops::OpKind::concat, &B::add_concat},
    {ops::OpKind::add, &B::add_sum},
    {ops::OpKind::sub, &B::add_sum},
    {ops::OpKind::batchnorm, &B::add_none},
#ifdef CAE_TOY_OP
    {ops::OpKind::toy, &B::add_elementwise},
#endif
};
static_assert(ops::one_per_op_kind(kOps), "the ONNX export needs one entry per OpKind, in order");

std::string GraphBuilder::add_op(int i, const ops::OpDesc& op, const std::string& x) {
  const std::string out = "op" + std::to_string(i);
  const std::string name = op_text(i, op);
  (this->*kOps[std::size_t(op.kind)].add)({op, i, x, out, name, ops::op_info(op.kind).onnx});
  return out;
}

void add_meta(onnx::ModelProto& proto, const std::string& key, const std::string& value) {
  for (const auto& entry : proto.metadata_props())
    if (entry.key() == key) return;  // the first writer wins: cae's own keys come first
  onnx::StringStringEntryProto* e = proto.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

// The checker on the graph; on its fixed-batch twin also strict shape inference, which must
// find for every op the shape cae computed (padding, kernel and sizes as ONNX reads them).
void check_graph(const onnx::ModelProto& proto, onnx::ModelProto twin, const ops::NetDesc& net,
                 const std::string& output) {
  try {
    onnx::checker::check_model(proto);
    onnx::checker::check_model(twin);
  } catch (const std::exception& e) {
    throw Error(std::string("the ONNX checker rejected the exported graph: ") + e.what());
  }
  try {
    onnx::shape_inference::InferShapes(twin, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    throw Error(std::string("ONNX shape inference rejected the exported graph: ") + e.what());
  }
  auto find = [&](const std::string& name) -> const onnx::ValueInfoProto* {
    for (const auto& v : twin.graph().value_info())
      if (v.name() == name) return &v;
    for (const auto& v : twin.graph().output())
      if (v.name() == name) return &v;
    return nullptr;
  };
  for (std::size_t i = 0; i <= net.ops.size(); ++i) {
    const bool last = i == net.ops.size();
    const std::string name = last ? output : "op" + std::to_string(i);
    const ops::Dims want = last ? net.output() : net.ops[i].out;
    const std::string what = last ? "the output '" + output + "'" : op_text(int(i), net.ops[i]);
    const onnx::ValueInfoProto* v = find(name);
    if (!v || !v->type().tensor_type().has_shape())
      throw Error("ONNX shape inference found no shape for " + what);
    const auto& shape = v->type().tensor_type().shape();
    const std::int64_t expect[4] = {1, want.c, want.h, want.w};
    std::string found;
    bool ok = shape.dim_size() == 4;
    for (int d = 0; d < shape.dim_size(); ++d) {
      const auto& dim = shape.dim(d);
      if (d) found += 'x';
      found += dim.has_dim_value() ? std::to_string(dim.dim_value()) : std::string("?");
      ok = ok && d < 4 && dim.has_dim_value() && dim.dim_value() == expect[d];
    }
    if (!ok)
      throw Error("ONNX shape inference disagrees with cae on " + what + ": ONNX finds " + found +
                  " (NCHW), cae 1x" + ops::dims_string(want));
  }
}

// A ModelProto around the graph builder's graph, with opset, producer and metadata.
onnx::ModelProto make_proto(const nn::Model& model, int fixed_batch, ops::NetDesc* net) {
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("cae");
  proto.set_producer_version(CAE_VERSION);
  if (model.informed())
    proto.set_doc_string("cae informed repair: inputs '" + std::string(kOnnxImageName) +
                         "' NCHW float in [0, 1] and '" + kOnnxMaskName +
                         "' Nx1xHxW (damaged where > 0), output '" + kOnnxRepairName +
                         "' the image's shape, equal to the input outside the damage");
  else
    proto.set_doc_string("cae denoising autoencoder: input '" + std::string(kOnnxInputName) +
                         "' NCHW float in [0, 1], output '" + kOnnxOutputName + "' the same shape");
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);

  GraphBuilder builder(model, proto.mutable_graph(), fixed_batch);
  builder.build();
  if (net) *net = builder.net();

  add_meta(proto, "cae_version", CAE_VERSION);
  add_meta(proto, "loss", nn::loss_name(model.loss()));
  add_meta(proto, "spec", model.arch().text);
  if (model.informed()) add_meta(proto, "informed", "1");
  for (const auto& [key, value] : model.meta())
    if (key != "history") add_meta(proto, key, value);  // history is per-epoch CSV, not a fact
  add_meta(proto, "corruption", "unknown");
  return proto;
}

}  // namespace

std::vector<std::uint8_t> encode_onnx(const nn::Model& trained) {
  if (!trained.fill().empty())  // the graph would return a correction, not a repair
    throw Error("cannot export: the model corrects a cv::inpaint fill ('" + trained.fill() +
                "'), which has no ONNX operator");
  // A model trained into NaN is not worth shipping; say so here rather than let a runtime
  // return NaN images.
  for (std::size_t i = 0; i < trained.params().size(); ++i)
    for (float v : trained.params()[i])
      if (!std::isfinite(v))
        throw Error("cannot export: parameter '" + trained.param_name(i) + "' holds NaN or Inf");
  // Batch normalisation leaves as the scales and shifts of the convs before it.
  const nn::Model model = trained.folded();
  ops::NetDesc net;
  const onnx::ModelProto proto = make_proto(model, 0, &net);
  check_graph(proto, make_proto(model, 1, nullptr), net, output_name(model));

  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error("cannot serialize the ONNX model");
  return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
}

void export_onnx(const nn::Model& model, const std::string& path) {
  const std::vector<std::uint8_t> bytes = encode_onnx(model);  // fails before touching path
  write_file_atomic(path, bytes);
}

}  // namespace cae::io
