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
#include <optional>
#include <span>
#include <string_view>
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
  // Batch normalisation (Ioffe & Szegedy 2015) of a conv's or tconv's output, per channel:
  // scale (x - mean) / sqrt(var + kBatchNormEpsilon) + shift, optionally ReLU. Executors run it
  // with the batch's own statistics (training); inference folds it into the conv before it
  // (nn::Model::folded()), so no executor runs it with running statistics.
  batchnorm,
#ifdef CAE_TOY_OP
  toy,  // tanh: the op docs/architecture.md adds in "How to add an op" (CAE_TOY_OP test builds)
#endif
  count,  // not an op: the number of kinds, which the table and every per-op array are checked against
};
inline constexpr std::size_t kOpKinds = std::size_t(OpKind::count);

// PyTorch's BatchNorm2d defaults: what cae's measurement of batch normalisation used.
inline constexpr float kBatchNormEpsilon = 1e-5f;
// Each optimizer step moves the running statistics this far toward the step's batch statistics
// (train/batch_statistics.h).
inline constexpr float kBatchNormMomentum = 0.1f;

enum class Backend { ref, dnnl, cuda };

// ---- The op table: everything about an op that is not a kernel, in one row per op ----
// Adding an op (docs/architecture.md, "How to add an op"): its OpKind above, its row in
// op_table() (src/ops/op_table.cpp), its entry in each backend's kernel array (ref, dnnl, cuda)
// and in the ONNX exporter's, and the docs. Each array is checked against kOpKinds at compile
// time (one_per_op_kind); its tests come from the row (tests/test_op_rows.cpp).

// How an op's output dims follow from its input and geometry (check_net_desc, build_net).
enum class ShapeRule {
  window,      // conv: (in + pads - kernel) / stride + 1, channels the op's own
  pool,        // maxpool: the same size as window, the input's channels
  transposed,  // tconv: (in - 1) * stride + kernel - pads, channels the op's own
  resize,      // the size given in the op, the input's channels
  same,        // element-wise: the input's dims
  concat,      // the operands' channels together, the input's size
};

// The parameters an op holds (param_infos): a weight in this canonical layout, then a bias when
// OpDesc::bias is set; norm: "weight" (scale), "bias" (shift), "running_mean", "running_var",
// each [c]. The running statistics are not trained: their gradient slots carry the batch's
// statistics instead (Executor::statistics_ranges).
enum class Weights { none, oihw, iohw, norm };

// What follows an op's keyword on a spec line (src/nn/spec.cpp parses it, docs/spec.md).
enum class SpecArgs {
  conv,     // C [kK] [sS] [size word] [relu|sigmoid|linear] [nobias]; size words by ShapeRule
  window,   // [kK] [sS] [same|valid]
  target,   // mirror | HxW | N
  nothing,  // the keyword alone
  operand,  // NAME, the join's second operand
  norm,     // [relu|linear]; follows a conv or tconv line that has no activation and no name
};

// How a join combines the previous op's output x with its second operand y (OpDesc::other).
enum class Join {
  none,    // not a join
  concat,  // [x ; y] along channels
  sum,     // join_sign * x + y, element by element: linear, so its gradient is the signs
};

struct OpInfo {
  OpKind kind;
  const char* name;        // in messages and dumps: "conv", "maxpool", ...
  const char* spec_word;   // its keyword in a spec: "conv", "pool", ...
  SpecArgs spec_args;
  int kernel, stride;      // the spec's defaults for an op with a window
  ShapeRule shape;
  Weights weights;
  Join join;               // whether it reads a second operand, OpDesc::other, and how
  float join_sign;         // Join::sum: x's sign (add 1, sub -1); else 0
  bool convolution;        // a conv or tconv: weights over a window, the bulk of the work
  bool upsamples;          // its output is larger than its input (a decoder's op)
  bool fuses_activation;   // OpDesc::act may be set
  const char* onnx;        // the ONNX operator it exports to (src/export/onnx_export.cpp)
  bool ref, dnnl, cuda;    // the backends that have its kernels
  // The tests generated from the row (tests/test_op_rows.cpp), on its one-op net: a backend's
  // forward output and gradients within `parity` (absolute, after scaling by the largest
  // reference value when that is above 1) of the ref backend's, and each backend's gradients
  // within `gradient` (relative) of central finite differences.
  float parity, gradient;
  bool runs_on(Backend backend) const;
};

// Every op, in OpKind order.
std::span<const OpInfo> op_table();
const OpInfo& op_info(OpKind kind);
// The op whose spec keyword is word, or nullptr.
const OpInfo* op_by_spec_word(const std::string& word);

inline bool is_join(OpKind kind) { return op_info(kind).join != Join::none; }
inline const char* op_kind_name(OpKind kind) { return op_info(kind).name; }

// Whether a per-op array (a backend's kernels, the exporter's) has one entry per OpKind, in
// OpKind order, each naming its kind: where each array is defined, static_assert checks it, so
// that an op without a kernel there does not compile.
template <class Entry, std::size_t N>
constexpr bool one_per_op_kind(const Entry (&entries)[N]) {
  if (N != kOpKinds) return false;
  for (std::size_t i = 0; i < N; ++i)
    if (entries[i].kind != OpKind(i)) return false;
  return true;
}

enum class Activation {
  none,
  relu,
  sigmoid,
  count,  // not an activation: the number of them
};
inline constexpr std::size_t kActivations = std::size_t(Activation::count);

// Whether a per-activation array has one entry per Activation, in order (as one_per_op_kind).
template <class Entry, std::size_t N>
constexpr bool one_per_activation(const Entry (&entries)[N]) {
  if (N != kActivations) return false;
  for (std::size_t i = 0; i < N; ++i)
    if (entries[i].act != Activation(i)) return false;
  return true;
}

// One row per activation, in Activation order: everything that names it outside a kernel. A new
// activation is a row here (and its element-wise op's row above, when it has one).
struct ActivationInfo {
  Activation act;
  const char* spec_word;  // after a conv in a spec; "" for none (a spec may write "linear")
  const char* onnx;       // the ONNX operator a fused one exports as; nullptr for none
  OpKind op;              // the element-wise op computing it (OpKind::relu, ...); none: count
};
const ActivationInfo& activation_info(Activation act);
// The activation an element-wise op (relu, sigmoid) computes; throws cae::Error for another op.
Activation activation_of(OpKind kind);
// The activation a spec names after a conv ("relu", "sigmoid", "linear" for none), or nothing.
std::optional<Activation> activation_by_spec_word(std::string_view word);

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

// One parameter tensor in canonical layout: op index, "weight", "bias" (or a batchnorm's
// "running_mean" and "running_var"), shape.
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

// One step of an executor's prebuilt lists, as built (nothing runs): the kernel it runs.
struct KernelUse {
  int op = -1;       // -1: a reorder or copy at the edges
  std::string pass;  // "forward" | "backward" | "input gradient" (only when d_input is asked)
  std::string name;  // what the step does: "forward", "backward weights", "reorder", ...
  std::string impl;  // the kernel: oneDNN's implementation ("jit:avx2", "ref:any", ...), ours
                     // ("cae:winograd_4x3:avx512", "cae:concat", "ref"), cuDNN's
                     // ("cudnn:forward algo 1"), ...
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Every step of forward(), backward() and the input-gradient steps in execution order, with
  // the kernel each runs. Backends report here what they run, so that no choice is silent.
  virtual std::vector<KernelUse> kernels() const = 0;
  // One line per place where the builder ran an op on another kernel or layout than the one it
  // asked for first, naming the op and why; empty when every op got its first choice. A backend
  // falls back to another kernel only where it says so here.
  virtual std::vector<std::string> fallbacks() const = 0;

  // Requires x: batch * input.size() floats, NCHW, valid and unchanged until backward() returns.
  // Ensures the activations needed by backward() and output() are computed. A batchnorm
  // normalises with the batch's own mean and biased variance, as in training.
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
  // (NCHW). In statistics_ranges() it holds the last forward()'s batch statistics instead.
  virtual void backward(const float* d_output, float* d_input) = 0;

  // Where a batchnorm's running statistics lie in params() (and so in grads()): one range per
  // op, its running_mean then running_var, 2 * c floats. After backward() grads() holds there
  // the batch mean and the unbiased batch variance of the last forward(), so that they add up
  // across micro-batches and ranks like gradients; train::fold_batch_statistics moves them into
  // the running statistics and zeroes them before the optimizer step (which then leaves those
  // parameters as they are). Empty for a net without batchnorm.
  struct FlatRange {
    std::size_t offset = 0, size = 0;
  };
  virtual std::vector<FlatRange> statistics_ranges() const = 0;

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

// How a backend builds an executor: the kernel choices kept selectable for comparison and
// debugging. Each backend reads its own fields and ignores the rest (ref reads none); the
// defaults are the fast paths.
//
// The library reads no environment variable: the variables of the same names (CAE_WINOGRAD, ...)
// are read at the edge, by executor_options_from_environment() (tools/environment.h) in the cae
// program, the Python module, the bench programs and the tests, and the struct is carried down
// from there (train::TrainConfig::executor, TileOptions, AdaptOptions, ...) to make_executor().
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
  // dnnl: our max-pool kernel (pool_kernel.h: the ReLU backward of the conv before folded in,
  // each input cell written once) on the layouts it takes; false gives the pools to oneDNN.
  // CAE_MAXPOOL=cae|dnnl.
  bool own_maxpool = true;
  // dnnl: the memory plan shares buffers between memories whose spans do not overlap; false
  // gives each memory a buffer of its own (to test that sharing changes no bit). No variable.
  bool share_buffers = true;
  // cuda: fused training steps replay a captured CUDA graph; false runs them eagerly.
  // CAE_CUDA_GRAPH=1|0.
  bool cuda_graphs = true;
  // cuda: cuDNN may use TF32 tensor cores (about 10 bits of mantissa: too coarse for the parity
  // tests). CAE_CUDA_TF32=0|1.
  bool cuda_tf32 = false;

  // dnnl: how each conv's kernel is chosen among its candidates (ConvKernel). fixed: the rules
  // above (winograd, winograd_tile, thin_convs), the same on every run: deterministic, what the
  // tests use and the library's default. measured: each candidate is timed on the net's own
  // shapes, batch and thread count when the executor is built, and the fastest kept
  // (src/ops/dnnl/kernel_choice.h); the CLI's, Python's and the bench's default through
  // executor_options_from_environment. CAE_KERNELS=measured|fixed.
  enum class Kernels { fixed, measured };
  Kernels kernels = Kernels::fixed;
  // dnnl, measured: the cache of measured choices, a JSON file keyed by CPU model, ISA tier,
  // thread count, batch, pass and op; empty: measure at every build and keep nothing.
  // CAE_KERNEL_CACHE (default $XDG_CACHE_HOME/cae/kernels.json, else ~/.cache/cae/kernels.json;
  // "none": no file).
  std::string kernel_cache{};
  // dnnl, measured: the executor runs forward passes only (inference), so candidates are timed on
  // the forward pass alone; false times forward and backward (training).
  bool forward_only = false;

  // dnnl: the number format of the convolutions' arithmetic. f32 everywhere, or bf16: oneDNN's
  // direct bf16 kernel (ConvKernel::onednn_bf16) joins each conv's candidates; the fixed rules
  // run every conv on it, the measured choice keeps it where it is fastest (the others stay
  // f32), and tconvs run it. A bf16 conv rounds its input, weights and output gradient into bf16
  // copies, sums in f32 and writes f32 outputs and gradients: every other op, the params and
  // grads() stay f32 (the master weights and Adam's state too). The executor's threads flush
  // denormals to zero (FTZ and DAZ, as the bf16 instructions do themselves) while it runs:
  // denormal gradients made each small f32 step 10-30x slower. bf16 needs oneDNN's
  // avx512_core_bf16 tier (a CPU with AVX512_BF16, not capped below it): elsewhere, and on the
  // ref and cuda backends, make_executor refuses it (cae::Error) rather than run it slowly. An
  // op oneDNN has no bf16 JIT kernel for runs f32 and says so (fallbacks()).
  // CAE_PRECISION=f32|bf16; --precision on the commands that build executors.
  enum class Precision { f32, bf16 };
  Precision precision = Precision::f32;

  // dnnl: per op, the conv kernel to build, overriding the rule (the tuner's result, and the
  // parity tests' way of running every candidate); empty, or ConvKernel::rule at an op, leaves
  // the choice to `kernels`. An op that cannot run the kernel falls back and says so.
  enum class ConvKernel { rule, direct, onednn_winograd, winograd4, winograd2, thin, onednn_bf16 };
  std::vector<ConvKernel> conv_kernels{};
  // For tests of the tuner: every step of this kernel waits slowed_ms longer, so that a
  // measured choice can be shown never to pick it. rule: none.
  ConvKernel slowed = ConvKernel::rule;
  double slowed_ms = 0;

  bool operator==(const ExecutorOptions&) const = default;
};

// The word for a conv kernel in the cache, `cae info --kernels` and messages: "rule", "direct",
// "onednn-winograd", "winograd4", "winograd2", "thin", "onednn-bf16"; parse_conv_kernel reads it
// back (throws cae::Error for another word).
const char* conv_kernel_name(ExecutorOptions::ConvKernel kernel);
ExecutorOptions::ConvKernel parse_conv_kernel(const std::string& word);

// "f32" | "bf16"; parse_precision reads it back (throws cae::Error naming `what`, the option or
// variable it came from, for another word).
const char* precision_name(ExecutorOptions::Precision precision);
ExecutorOptions::Precision parse_precision(const std::string& word, const std::string& what);

// Requires nothing. Returns "" when the dnnl backend runs bf16 convolutions on this CPU, under the
// process's ISA cap (core/isa.h; fixes it), else why not: "bf16 needs a CPU with AVX512_BF16
// (oneDNN runs avx2 here, ...)".
std::string bf16_unavailable_reason();

// Requires nothing. Returns "" when `backend` can run convolutions in `precision` here, else the
// message make_executor refuses it with ("ref backend: bf16 runs on the CPU's dnnl backend only
// ...", or bf16_unavailable_reason()). The commands ask it before they load anything.
std::string precision_unavailable_reason(Backend backend, ExecutorOptions::Precision precision);

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
