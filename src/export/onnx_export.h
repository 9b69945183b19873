// ONNX export of a cae model: the whole network as one ONNX graph (opset 13), built with the ONNX
// project's own protobuf types and checked in-process by its checker and shape inference before
// anything is written. docs/onnx.md documents the graph for users.
//
// A blind model's graph: input "noisy" [batch, C, H, W] float in [0, 1], output "denoised" of the
// same shape, the batch dimension symbolic ("batch"). Each cae op maps to one ONNX node (a fused
// activation to a second one): Conv, ConvTranspose and MaxPool with cae's explicit padding,
// Resize nearest (asymmetric, floor) to explicit sizes, Relu, Sigmoid. The output is an image:
// a final Sigmoid for models trained on logits (loss bce), a clamp to [0, 1] for mse models, so
// that the ONNX model computes what `cae denoise` does.
//
// An informed model's graph is a repair, what `cae repair` computes on one tile: inputs "image"
// [batch, C, H, W] and "mask" [batch, 1, H, W], damaged where mask > 0 (as in cae, where
// data::keep_undamaged keeps only the pixels whose mask is 0). The net sees the image and that
// mask made 0/1; output "repaired" [batch, C, H, W] is the net's image inside the mask and the
// input image, bit for bit, outside.
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
// An informed model's graph: its two inputs and its output.
inline constexpr const char* kOnnxImageName = "image";
inline constexpr const char* kOnnxMaskName = "mask";
inline constexpr const char* kOnnxRepairName = "repaired";

// Ensures the serialized ONNX ModelProto of model, which passed onnx::checker::check_model and
// strict shape inference agreeing with cae's shapes op by op; throws cae::Error naming the op
// and what the checker found otherwise. metadata_props hold "cae_version", "loss", "spec",
// "corruption" ("unknown" when the model does not record one), "informed" = "1" for an informed
// model, and the model's other meta. The graph is that of model.folded(): no batch
// normalisation node, its spec the folded one. Throws cae::Error, writing nothing, for a model
// that corrects a cv::inpaint fill (ONNX has no such operator) or holds NaN or Inf weights.
std::vector<std::uint8_t> encode_onnx(const nn::Model& model);

// Ensures path holds encode_onnx(model), written atomically; on any error throws cae::Error and
// leaves path as it was (no file when there was none).
void export_onnx(const nn::Model& model, const std::string& path);

}  // namespace cae::io
