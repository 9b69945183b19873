// The kernel seam. A network is described once as a flat list of ops (NetDesc) for a fixed batch
// size; a backend compiles it into an Executor that runs forward and backward passes. Layers and
// the training loop talk to Executor only and never name a backend; make_executor() is the one
// place that chooses (src/ops/dispatch.cpp).
//
// Canonical layouts at the edges (what every caller sees):
//   activations  NCHW, float, [batch][c][h][w]
//   conv weights OIHW  [c_out][c_in][k][k]       (PyTorch / ONNX Conv)
//   tconv weights IOHW [c_in][c_out][k][k]       (PyTorch / ONNX ConvTranspose)
//   biases       [c_out]
// Inside an executor, activations, parameters and gradients may live in any layout the backend
// prefers (oneDNN's blocked formats); params()/grads() expose the flat parameter buffer in that
// layout so that element-wise optimizers run over it, and to_canonical()/from_canonical()
// convert at the edges (initialisation, checkpoints, model files).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace cae::ops {

// Per-image shape of an activation.
struct Dims {
  int c = 0, h = 0, w = 0;
  std::size_t size() const { return std::size_t(c) * h * w; }
  bool operator==(const Dims&) const = default;
};

enum class OpKind {
  conv,     // 2-D convolution, optional bias and fused activation
  tconv,    // 2-D transposed convolution, optional bias and fused activation
  maxpool,  // max pooling; padded cells never win
  resize,   // nearest-neighbour resize, TF1 map src = min(floor(dst * in / out), in - 1)
  relu,     // max(x, 0)
  sigmoid,  // 1 / (1 + exp(-x))
};

const char* op_kind_name(OpKind kind);  // "conv", "tconv", ...

enum class Activation { none, relu, sigmoid };

// One op with all geometry resolved (the model's shape logic computes padding, not the backend).
struct OpDesc {
  OpKind kind = OpKind::conv;
  Dims in, out;
  // conv / tconv / maxpool window
  int kernel = 1, stride = 1;
  // Explicit padding. conv/maxpool: cells added before/after the input (TF 'same' puts the odd
  // one after). tconv: the padding of the equivalent forward conv, so that
  // out = (in - 1) * stride + kernel - pad_before - pad_after.
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool bias = true;                       // conv / tconv
  Activation act = Activation::none;      // conv / tconv: applied to the output
};

struct NetDesc {
  int batch = 1;
  Dims input;
  std::vector<OpDesc> ops;  // ops[i].in == (i ? ops[i-1].out : input)
  Dims output() const { return ops.empty() ? input : ops.back().out; }
};

// One parameter tensor in canonical layout: op index, "weight" or "bias", shape.
struct ParamInfo {
  int op = 0;
  std::string name;
  std::vector<int> shape;
  std::size_t size() const;
};

// The parameter tensors of a net in order: for each op with parameters, weight then bias.
std::vector<ParamInfo> param_infos(const NetDesc& net);

class Executor {
 public:
  virtual ~Executor() = default;

  // Requires x: batch * input.size() floats, NCHW, valid and unchanged until backward() returns.
  // Ensures the activations needed by backward() and output() are computed.
  virtual void forward(const float* x) = 0;

  // Ensures: the last op's output, NCHW, batch * output().size() floats, valid until the next
  // forward().
  virtual const float* output() = 0;

  // Requires forward() ran. Writes the activation after op k (0-based), NCHW, to out.
  // Not for the hot path: it may reorder.
  virtual void read_activation(int k, float* out) = 0;

  // Requires forward() ran on the same x. d_output: NCHW gradient of the loss w.r.t. output().
  // Ensures grads() holds d loss / d params (overwritten, not accumulated) and, when d_input is
  // not null, d_input receives d loss / d x (NCHW).
  virtual void backward(const float* d_output, float* d_input) = 0;

  // Flat parameter and gradient buffers, same length and layout (the backend's).
  virtual std::span<float> params() = 0;
  virtual std::span<float> grads() = 0;

  // Convert a flat buffer in the backend's layout (params, grads or optimizer state of the same
  // length) to the canonical tensors of param_infos(), and back. Padding cells of a blocked
  // layout are written as zero by from_canonical.
  virtual std::vector<std::vector<float>> to_canonical(std::span<const float> flat) = 0;
  virtual void from_canonical(const std::vector<std::vector<float>>& tensors,
                              std::span<float> flat) = 0;

  virtual const NetDesc& desc() const = 0;
};

enum class Backend { ref, dnnl };

// The single dispatch seam. Throws cae::Error when the backend cannot run the net.
std::unique_ptr<Executor> make_executor(Backend backend, const NetDesc& net);

Backend parse_backend(const std::string& name);  // "ref" | "dnnl"; throws on anything else
const char* backend_name(Backend backend);

}  // namespace cae::ops
