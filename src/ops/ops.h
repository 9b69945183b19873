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
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
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
  // Joins: the previous op's output x and an earlier activation y (OpDesc::other).
  concat,  // [x ; y] along channels, x's channels first
  add,     // x + y, same dims
  sub,     // y - x, same dims (DnCNN: the input minus the predicted noise)
};

// Whether an op reads a second operand, an earlier activation named by OpDesc::other.
inline bool is_join(OpKind kind) {
  return kind == OpKind::concat || kind == OpKind::add || kind == OpKind::sub;
}

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
  // Joins only: the op whose output is the second operand (kNetInput: the net's input), always
  // before this op's predecessor, so that the net stays a chain with skips and has no cycle.
  int other = kNoOperand;
  static constexpr int kNoOperand = -2, kNetInput = -1;
};

struct NetDesc {
  int batch = 1;
  Dims input;
  std::vector<OpDesc> ops;  // ops[i].in == (i ? ops[i-1].out : input)
  Dims output() const { return ops.empty() ? input : ops.back().out; }
  // The dims of activation k: op k's output, or the input for OpDesc::kNetInput.
  Dims act_dims(int k) const { return k == OpDesc::kNetInput ? input : ops[k].out; }
  // Per activation k (index k + 1, index 0 the input): the joins that read it as `other`.
  std::vector<std::vector<int>> join_readers() const;
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

// The settings of a training step that a backend runs whole (Executor::fused_begin).
struct FusedStepConfig {
  bool bce = true;           // loss: sigmoid cross-entropy on logits, else mean squared error
  float noise_sigma = 0.5f;  // noise drawn by the backend: input = clip(clean + sigma N(0,1), 0, 1)
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // TF1 Adam
  bool operator==(const FusedStepConfig&) const = default;
};

// What noise drawn by the backend is a function of: row b of the batch is image first_index + b
// of the stream (seed, stream, epoch), from a counter-based generator, whatever the batching.
struct NoiseKey {
  std::uint64_t seed = 0, stream = 0, epoch = 0, first_index = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Requires x: batch * input.size() floats, NCHW, valid and unchanged until backward() returns.
  // Ensures the activations needed by backward() and output() are computed.
  virtual void forward(const float* x) = 0;

  // Ensures: the last op's output, NCHW, batch * output().size() floats, valid until the next
  // forward().
  virtual const float* output() = 0;

  // Requires forward() ran and backward() has not since. Writes the activation after op k
  // (0-based), NCHW, to out. Not for the hot path: it may reorder.
  virtual void read_activation(int k, float* out) = 0;

  // Requires forward() ran on the same x, and no backward() since: backward() may write its
  // gradients over activations it no longer needs (the dnnl backend does, to keep memory down).
  // d_output: NCHW gradient of the loss w.r.t. output(). Ensures grads() holds d loss / d params
  // (overwritten, not accumulated) and, when d_input is not null, d_input receives d loss / d x
  // (NCHW).
  virtual void backward(const float* d_output, float* d_input) = 0;

  // Flat parameter and gradient buffers, same length and layout (the backend's). A backend on a
  // device copies them to the host on each call; writes through params() reach the device at the
  // next forward(), backward() or fused_begin(), so call params() again after those.
  virtual std::span<float> params() = 0;
  virtual std::span<float> grads() = 0;

  // Convert a flat buffer in the backend's layout (params, grads or optimizer state of the same
  // length) to the canonical tensors of param_infos(), and back. Padding cells of a blocked
  // layout are written as zero by from_canonical.
  virtual std::vector<std::vector<float>> to_canonical(std::span<const float> flat) = 0;
  virtual void from_canonical(const std::vector<std::vector<float>>& tensors,
                              std::span<float> flat) = 0;

  virtual const NetDesc& desc() const = 0;

  // Optional: whole training steps run by the backend (noise, forward, loss, backward, Adam), so
  // that a device backend moves only the batch across the bus and queues steps ahead. A backend
  // without them returns false from fused_begin and changes nothing; the caller then corrupts,
  // runs forward, the loss, backward and its own optimizer.
  //
  // fused_begin requires m and v (Adam's state) of params().size() in the flat layout and t, the
  // Adam steps taken so far; it ensures the backend holds them and returns true.
  virtual bool fused_begin(const FusedStepConfig& config, std::span<const float> m,
                           std::span<const float> v, std::int64_t t);
  // Requires fused_begin(). Queues one step on clean (NCHW, host; copied before return) with
  // noisy as the input, or, when noisy is null, noise the backend draws by key. Returns the mean
  // loss of the previous fused_step's batch since fused_begin (NaN for the first one). Only
  // fused_step and fused_end may be called until fused_end.
  virtual double fused_step(const float* clean, const float* noisy, const NoiseKey& key);
  // Requires fused_begin(). Waits for the queued steps, writes Adam's state into m and v and
  // returns the last step's mean loss (NaN when there was none); params() then shows the steps.
  virtual double fused_end(std::span<float> m, std::span<float> v);

  // Called by backward() with each range of grads() as soon as its values are final, while the
  // rest of backward() runs on: ranges disjoint, together all of grads(). Data-parallel training
  // starts reducing a layer's gradients across processes from here. Empty: not called.
  using GradsReady = std::function<void(std::span<float> ready)>;
  void set_grads_ready(GradsReady callback) { grads_ready_ = std::move(callback); }

 protected:
  GradsReady grads_ready_;
};

enum class Backend { ref, dnnl, cuda };

// How a backend builds an executor: the kernel choices kept selectable for comparison and
// debugging. Each backend reads its own fields and ignores the rest (ref reads none); the
// defaults are the fast paths.
//
// The environment variables of the same names (CAE_WINOGRAD, ...) reach an executor only
// through executor_options_from_env(), called by nn::Model::make_executor(backend, batch) (the
// CLI, the trainer, the Python module, cae_bench), by the C++ API (src/api/autoencoder.cpp)
// when it loads a model, and by `cae info --plan`. make_executor() itself never reads the
// environment: tests and library code pass the struct.
struct ExecutorOptions {
  // dnnl: whose Winograd kernels the 3x3 convs use. cae: ours (winograd.h) where
  // own_winograd_chosen; onednn: oneDNN's where it has one (winograd_chosen, AVX-512 only);
  // off: every conv direct. CAE_WINOGRAD=cae|onednn|0.
  enum class Winograd { cae, onednn, off };
  Winograd winograd = Winograd::cae;
  // dnnl: the output tile of our Winograd: 4, F(4x4, 3x3), or 2, F(2x2, 3x3), slower, kept for
  // comparison. CAE_WINOGRAD_TILE=4|2.
  int winograd_tile = 4;
  // dnnl: our direct kernels for the thin convs 1->C and C->1 (thin_conv.h); false gives them
  // to oneDNN. CAE_THIN_CONV=cae|dnnl.
  bool thin_convs = true;
  // dnnl: the memory plan shares buffers between memories whose spans do not overlap; false
  // gives each memory a buffer of its own (to test that sharing changes no bit). No variable.
  bool share_buffers = true;
  // cuda: fused training steps replay a captured CUDA graph; false runs them eagerly.
  // CAE_CUDA_GRAPH=1|0.
  bool cuda_graphs = true;
  // cuda: cuDNN may use TF32 tensor cores (about 10 bits of mantissa: too coarse for the parity
  // tests). CAE_CUDA_TF32=0|1.
  bool cuda_tf32 = false;
  bool operator==(const ExecutorOptions&) const = default;
};

// Requires nothing. Ensures the defaults of ExecutorOptions with each of CAE_WINOGRAD,
// CAE_WINOGRAD_TILE, CAE_THIN_CONV, CAE_CUDA_GRAPH and CAE_CUDA_TF32 that is set and not empty
// applied; throws cae::Error naming the variable, its value and the accepted values otherwise.
// The only place that reads them.
ExecutorOptions executor_options_from_env();

// The single dispatch seam. Passes options to the backend. Throws cae::Error when the backend
// cannot run the net.
std::unique_ptr<Executor> make_executor(Backend backend, const NetDesc& net,
                                        const ExecutorOptions& options = {});

Backend parse_backend(const std::string& name);  // "ref" | "dnnl" | "cuda"; throws otherwise
const char* backend_name(Backend backend);

// Requires nothing. Returns "" when make_executor(backend, ...) can run here, else why not
// ("built without CUDA", "no CUDA device or driver (...)").
std::string backend_unavailable_reason(Backend backend);

}  // namespace cae::ops
