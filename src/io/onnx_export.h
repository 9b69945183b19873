// ONNX export of a cae model: the whole network as one ONNX graph (opset 13), built with the ONNX
// project's own protobuf types and checked in-process by its checker and shape inference before
// anything is written. README "Export to ONNX" documents the graph for users.
//
// The graph: input "noisy" [batch, C, H, W] float in [0, 1], output "denoised" of the same
// shape, the batch dimension symbolic ("batch"). Each cae op maps to one ONNX node (a fused
// activation to a second one): Conv, ConvTranspose and MaxPool with cae's explicit padding,
// Resize nearest (asymmetric, floor) to explicit sizes, Relu, Sigmoid. The output is an image:
// a final Sigmoid for models trained on logits (loss bce), a Clip to [0, 1] for mse models, so
// that the ONNX model computes what `cae denoise` does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cae::nn {
class Model;
}

namespace cae::io {

inline constexpr int kOnnxOpset = 13;
inline constexpr const char* kOnnxInputName = "noisy";
inline constexpr const char* kOnnxOutputName = "denoised";

// Ensures the serialized ONNX ModelProto of model, which passed onnx::checker::check_model and
// strict shape inference agreeing with cae's shapes op by op; throws cae::Error naming the op
// and what the checker found otherwise. metadata_props hold "cae_version", "loss", "spec",
// "corruption" ("unknown" when the model does not record one) and the model's other meta. The
// graph is that of model.folded(): no batch normalisation node, its spec the folded one.
std::vector<std::uint8_t> encode_onnx(const nn::Model& model);

// Ensures path holds encode_onnx(model), written atomically; on any error throws cae::Error and
// leaves path as it was (no file when there was none).
void export_onnx(const nn::Model& model, const std::string& path);

}  // namespace cae::io
