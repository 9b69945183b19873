// The oneDNN executor, after oneDNN's examples/cnn_training_f32.cpp: every primitive and memory
// is created once in the constructor for the fixed batch; forward() and backward() run prebuilt
// step lists through the C API (no allocation, no primitive creation per call).
//
// Layouts: convolutions choose theirs (format_tag::any); pooling, eltwise and resize follow their
// input's, and a convolution after another op is asked to take that op's output as it is, so
// activations are reordered only at the edges (x, output, d_output, d_input). Should oneDNN have
// only its reference implementation for a forced layout, the builder falls back to its own choice
// plus a reorder: slower, never wrong.
//
// Memory: activations, gradients of activations and the skip connections' gradients are
// "planned" memories without a buffer while the steps are built. finish() then derives the memory
// plan in one pass over the built steps: per planned memory the first and last step that touches
// it, and gives memories whose spans do not overlap the same buffer (make_memory_plan). Every
// step lists the memories it reads or writes, so the plan needs no liveness noted by hand.
#include "ops/dnnl/dnnl_executor.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dnnl.hpp>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "cae/error.h"
#include "ops/dnnl/join_kernel.h"
#include "ops/dnnl/kernel_choice.h"
#include "ops/dnnl/onednn_isa.h"
#include "ops/dnnl/resize_kernel.h"
#include "ops/dnnl/thin_conv.h"
#include "ops/dnnl/winograd.h"
#include "ops/net_check.h"

namespace cae::ops {
namespace {

using dnnl::memory;
using dnnl_backend::BlockedView;
using dnnl_backend::ConcatPlan;
using dnnl_backend::ResizePlan;
using dnnl_backend::ThinConvGeom;
using dnnl_backend::ThinConvPlan;
using dnnl_backend::WinogradGeom;
using dnnl_backend::WinogradPlan;
using Md = memory::desc;
using Tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;


Md plain_md(int batch, Dims d) { return Md({batch, d.c, d.h, d.w}, f32, Tag::nchw); }
Md any_md(const memory::dims& dims) { return Md(dims, f32, Tag::any); }

// oneDNN's reference kernels are correct but one or two orders of magnitude slower; the builder
// treats them as "this layout is not supported" and tries another.
bool is_ref(const dnnl::primitive_desc_base& pd) {
  return std::string_view(pd.impl_info_str()).starts_with("ref");
}

// A 64-byte aligned float buffer, zero-filled. One of 2 MB or more is aligned to 2 MB and asks
// the kernel for transparent huge pages (madvise), so that zero-filling it (and the kernels'
// first touch) takes one page fault per 2 MB instead of one per 4 KB: building an executor for
// a repair spent half its time in those faults. Where huge pages are off, the advice is ignored.
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(std::size_t n) : size_(n) {
    if (n == 0) return;
    constexpr std::size_t huge = std::size_t(2) << 20;
    const std::size_t wanted = n * sizeof(float);
    const std::size_t align = wanted >= huge ? huge : 64;
    const std::size_t bytes = (wanted + align - 1) / align * align;
    data_.reset(static_cast<float*>(std::aligned_alloc(align, bytes)));
    if (!data_)
      throw Error("dnnl backend: out of memory allocating " + std::to_string(bytes) + " bytes");
    if (align == huge) madvise(data_.get(), bytes, MADV_HUGEPAGE);
    std::memset(data_.get(), 0, bytes);
  }
  float* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t size_ = 0;
};

// The [n][cb][h][w][ci] view of an activation layout, or nothing when it is outside that family.
std::optional<BlockedView> blocked_view(const Md& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 4 || d.format_kind != dnnl_blocked) return std::nullopt;
  const auto& b = d.format_desc.blocking;
  BlockedView v;
  v.n = int(d.dims[0]);
  v.h = int(d.dims[2]);
  v.w = int(d.dims[3]);
  v.stride_n = b.strides[0];
  v.stride_h = b.strides[2];
  v.stride_w = b.strides[3];
  if (b.inner_nblks == 0) {
    const bool channels_last = b.strides[1] == 1;
    v.cb = channels_last ? 1 : int(d.dims[1]);
    v.ci = channels_last ? int(d.dims[1]) : 1;
    v.stride_cb = channels_last ? 0 : b.strides[1];
    return v;
  }
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) {
    v.ci = int(b.inner_blks[0]);
    v.cb = int(d.padded_dims[1] / b.inner_blks[0]);
    v.stride_cb = b.strides[1];
    return v;
  }
  return std::nullopt;
}

// nChw<block>c, for the block widths oneDNN uses.
std::optional<Tag> blocked_tag(int block) {
  switch (block) {
    case 16: return Tag::nChw16c;
    case 8: return Tag::nChw8c;
    case 4: return Tag::nChw4c;
  }
  return std::nullopt;
}

// The layout `md` has, for other dims: the output of a resize keeps its input's layout.
Md same_layout(const Md& md, const memory::dims& dims) {
  const auto& b = md.data.format_desc.blocking;
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) {
    if (const auto tag = blocked_tag(int(b.inner_blks[0]))) return Md(dims, f32, *tag);
  } else if (b.inner_nblks == 0) {
    return Md(dims, f32, b.strides[1] == 1 && md.data.dims[1] > 1 ? Tag::nhwc : Tag::nchw);
  }
  throw Error("activation layout outside the resize kernel's family");
}

// The oneDNN primitive kinds behind conv and tconv; their descriptors share one signature.
struct ConvKinds {
  using Fwd = dnnl::convolution_forward;
  using BwdData = dnnl::convolution_backward_data;
  using BwdWeights = dnnl::convolution_backward_weights;
  static constexpr dnnl::algorithm alg = dnnl::algorithm::convolution_direct;
  static constexpr bool has_winograd = true;
};
struct DeconvKinds {
  using Fwd = dnnl::deconvolution_forward;
  using BwdData = dnnl::deconvolution_backward_data;
  using BwdWeights = dnnl::deconvolution_backward_weights;
  static constexpr dnnl::algorithm alg = dnnl::algorithm::deconvolution_direct;
  static constexpr bool has_winograd = false;
};

// One entry of a prebuilt list: a primitive with its arguments bound, or one of our kernels.
struct Step {
  int op = -1;  // for error messages; -1 at the edges
  const char* name = "";
  dnnl::primitive prim;
  // Every memory the step reads or writes: for a primitive those `args` points at (kept alive
  // here), for one of our kernels those its closure uses. The memory plan is derived from them.
  std::vector<memory> mems;
  std::vector<dnnl_exec_arg_t> args;
  std::size_t scratchpad_bytes = 0;
  std::function<void()> kernel;
  std::string impl;  // oneDNN's implementation ("jit_wino_4x3:avx512_core", ...) or ours ("cae:...")
  double delay_ms = 0;  // ExecutorOptions::slowed: a wait planted after the step, for tests only
};

struct ParamSlot {
  Md md;                   // the backend's layout (oneDNN's choice for the forward primitive)
  Md canonical;            // OIHW, IOHW or x
  std::size_t offset = 0;  // into params_ / grads_, set by finish()
  memory param, grad;      // views into params_ / grads_
};

// oneDNN's forward algorithm of an activation and the backward one that reads the forward's
// output (so no copy of its input is kept); undef for none. Every activation named: a new one
// fails to compile here until it has its oneDNN algorithms.
std::pair<dnnl::algorithm, dnnl::algorithm> eltwise_algorithms(Activation act) {
  switch (act) {
    case Activation::none:
      return {dnnl::algorithm::undef, dnnl::algorithm::undef};
    case Activation::relu:
      return {dnnl::algorithm::eltwise_relu, dnnl::algorithm::eltwise_relu_use_dst_for_bwd};
    case Activation::sigmoid:
      return {dnnl::algorithm::eltwise_logistic,
              dnnl::algorithm::eltwise_logistic_use_dst_for_bwd};
  }
  throw Error("dnnl backend: unknown activation " + std::to_string(int(act)));
}

// The ReLU-by-pool rewrite, chosen before anything is built: a conv or tconv with a fused ReLU
// whose only reader is the max pool after it leaves its ReLU's gradient to that pool. The pool's
// output is the max of ReLU outputs, so the ReLU passes a gradient at the pool's chosen input
// exactly when the pool's output there is > 0: masking the 4x smaller pooled gradient gives the
// same values, and the conv's own output is no longer read by backward, so gradients may take
// its buffer. A join reading the conv's output too (a skip connection) needs the full masked
// gradient, so there the rewrite does not apply.
std::vector<bool> relu_by_pool_rewrite(const NetDesc& net) {
  const auto readers = net.join_readers();
  std::vector<bool> rewrite(net.ops.size(), false);
  for (int i = 0; i + 1 < int(net.ops.size()); ++i) {
    const OpDesc& op = net.ops[i];
    rewrite[i] = (op.kind == OpKind::conv || op.kind == OpKind::tconv) &&
                 op.act == Activation::relu && net.ops[i + 1].kind == OpKind::maxpool &&
                 readers[i + 1].empty();
  }
  return rewrite;
}

class DnnlExecutor final : public Executor {
 public:
  DnnlExecutor(const NetDesc& net, const ExecutorOptions& options);

  void forward(const float* x) override;
  const float* output() override { return output_ptr_; }
  void read_activation(int k, float* out) override;
  void backward(const float* d_output, float* d_input) override;
  std::span<float> params() override { return {params_.data(), params_.size()}; }
  std::span<float> grads() override { return {grads_.data(), grads_.size()}; }
  std::vector<std::vector<float>> to_canonical(std::span<const float> flat) override;
  void from_canonical(const std::vector<std::vector<float>>& tensors,
                      std::span<float> flat) override;
  const NetDesc& desc() const override { return net_; }

  DnnlMemory memory_held() const;
  const DnnlPlan& plan() const { return plan_; }
  std::vector<KernelUse> kernels() const override;
  std::vector<std::string> fallbacks() const override { return fallbacks_; }
  std::vector<FlatRange> statistics_ranges() const override;
  // One forward and, when `backward`, one backward with every step timed on its own (see
  // profile_dnnl_steps).
  void profile(const float* x, const float* d_output, std::vector<StepTime>& acc, bool backward);
  // The conv kernel each op runs (ConvKernel::rule for an op that is not a conv).
  const std::vector<ExecutorOptions::ConvKernel>& conv_kernels() const { return conv_ran_; }
  KernelChoice& choice() { return choice_; }

 private:
  // Op i, a conv, on the kernel options_.conv_kernels asks for, else by the rules.
  void build_any_conv(int i);
  // oneDNN's convolution (or deconvolution), in its Winograd algorithm when `winograd`.
  template <class Kinds>
  void build_conv(int i, bool winograd);
  void build_pool(int i);
  void build_eltwise(int i);
  void build_resize(int i);
  void build_join(int i);
  void build_batchnorm(int i);
  // The gradient a join hands to its second operand, activation k, summed into d(act k) right
  // after op k+1 has written it (or into d_input for the net's input).
  void add_skip_gradient(int i, int k, const memory& d_skip);
  // Our direct kernel for a 1 -> 16k or 16k -> 1 conv (thin_conv.h); false when op i is outside
  // its family or its neighbours' layouts do not fit, and oneDNN builds it. `asked`: the kernel
  // was asked for by name (ExecutorOptions::conv_kernels), so options_.thin_convs does not
  // matter and a geometry outside the family is a fallback to note.
  bool build_thin_conv(int i, bool asked);
  // Our Winograd kernel for a wide 3x3 conv (own_winograd_chosen when tile is 0, else the
  // F(tile x tile) kernel asked for by name); false when the op or the input's layout does not
  // fit, and oneDNN builds it.
  bool build_own_winograd(int i, int tile);
  void finish();
  // Derives the plan from the steps and binds every planned memory to its buffer.
  void make_memory_plan();

  // The memory holding the input of op i (x for op 0) and the one op i's backward writes to.
  const memory& input_of(int i) const { return i == 0 ? x_user_ : act_[i - 1]; }
  const memory& diff_input_of(int i) const { return i == 0 ? dx_user_ : dact_[i - 1]; }
  // Op 0's d_input scratch (when oneDNN writes d_input in another layout) is a gradient view too,
  // of "activation -1"; later ops' targets are gradient views themselves.
  static bool diff_scratch_is_view(int i) { return i == 0; }
  // Where op i's data-gradient steps go: op 0's run only when d_input is asked for.
  std::vector<Step>& data_grad_steps(int i) { return i == 0 ? input_grad_steps_ : op_bwd_[i]; }

  memory new_memory(const Md& md) { return memory(md, engine_); }
  // A memory the plan gives a buffer in finish(); `what` names it in dnnl_plan().
  memory planned_memory(const Md& md, std::string what, bool activation = false);
  // Op i's output, planned.
  memory new_activation(int i, const Md& md);
  // The channel block oneDNN lays activations of size d out in on this CPU (asked, not assumed).
  int block_width(Dims d) const { return dnnl_backend::conv_block_width(engine_, net_.batch, d.c, d.h, d.w); }
  // Records that op i runs on another kernel or layout than the one asked for, and why.
  void note_fallback(int i, const std::string& what);
  // The memory that receives d(act i): a gradient view (its buffer chosen in finish()), or
  // d_output itself for the last op when it is already in the right layout and nothing writes
  // it in place.
  memory make_diff(int i, const Md& md, bool written_in_place);

  // Returns `have` when it is already laid out as `want`, else a new memory that a reorder step
  // (appended to `steps`) fills from it.
  memory converted_input(const memory& have, const Md& want, std::vector<Step>& steps, int op);
  // Returns `target` when it is laid out as `produced`, else a scratch memory for the primitive
  // to write, with a reorder into `target` stored in `after` to run once the primitive has. The
  // scratch is a gradient view of "activation -1" when `is_view`, else memory of its own.
  memory converted_output(const memory& target, const Md& produced, Step& after, int op,
                          bool is_view = false);
  Step reorder_step(const memory& from, const memory& to, int op);
  Step primitive_step(int op, const char* name, const dnnl::primitive& prim,
                      const dnnl::primitive_desc_base& pd,
                      const std::vector<std::pair<int, memory>>& args);
  ParamSlot& add_param(const Md& md, const Md& canonical);

  void run(std::span<Step> steps);
  // backward_steps_ in pieces, announcing each op's gradients to grads_ready_ once final.
  void run_announcing_grads();

  NetDesc net_;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  dnnl::primitive_attr attr_;  // user scratchpad, shared by all primitives

  memory x_user_, d_output_user_, dx_user_;  // plain NCHW views of caller buffers
  std::vector<memory> act_, dact_;
  struct Planned {
    memory mem;
    std::string what;
    bool activation = false;
  };
  std::vector<Planned> planned_;      // planned_memory(), in creation order
  std::vector<FloatBuffer> buffers_;  // the plan's buffers
  DnnlPlan plan_;
  // The rewrites chosen before the build (relu_by_pool_rewrite), per op.
  std::vector<bool> relu_by_pool_;
  const float* output_ptr_ = nullptr;
  bool output_is_last_act_ = false;  // output() is the last activation's buffer itself

  std::vector<ParamSlot> slots_;
  std::vector<std::size_t> statistics_slots_;  // a batchnorm's running_mean slot (var follows)
  std::size_t flat_size_ = 0;
  FloatBuffer params_, grads_;

  std::deque<ResizePlan> resize_plans_;  // deque: steps point into it
  std::deque<ThinConvPlan> thin_plans_;  // likewise
  std::deque<WinogradPlan> winograd_plans_;  // likewise
  std::deque<ConcatPlan> concat_plans_;      // likewise
  const ExecutorOptions options_;            // which kernels, and whether the plan shares buffers
  std::vector<ExecutorOptions::ConvKernel> conv_ran_;  // per op, what build_any_conv built
  KernelChoice choice_;                                // how they were chosen (kernel_choice.h)
  std::vector<std::vector<Step>> op_fwd_, op_bwd_;
  std::vector<Step> forward_steps_, backward_steps_, input_grad_steps_;
  memory scratchpad_;
  std::vector<std::string> fallbacks_;  // note_fallback()
  // forward() runs on one thread: below kAloneMacs multiply-adds a second thread costs more in
  // handing over each op's share than it saves (the seed at batch 1: 0.072 ms on one thread,
  // 0.088 on two; at batch 2 two threads are 1.7x faster).
  static constexpr double kAloneMacs = 16e6;
  bool alone_ = false;
};

DnnlExecutor::DnnlExecutor(const NetDesc& net, const ExecutorOptions& options)
    : net_(net), options_(options) {
  check_net_desc(net_);
  if (options_.winograd_tile != 2 && options_.winograd_tile != 4)
    throw Error("dnnl backend: ExecutorOptions::winograd_tile " +
                std::to_string(options_.winograd_tile) + ": expected 4 or 2");
  attr_.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const int n_ops = int(net_.ops.size());
  x_user_ = memory(plain_md(net_.batch, net_.input), engine_, DNNL_MEMORY_NONE);
  dx_user_ = memory(plain_md(net_.batch, net_.input), engine_, DNNL_MEMORY_NONE);
  d_output_user_ = memory(plain_md(net_.batch, net_.output()), engine_, DNNL_MEMORY_NONE);
  op_fwd_.resize(n_ops);
  op_bwd_.resize(n_ops);
  conv_ran_.assign(n_ops, ExecutorOptions::ConvKernel::rule);
  relu_by_pool_ = relu_by_pool_rewrite(net_);
  for (int i = 0; i < n_ops; ++i) {
    const OpDesc& op = net_.ops[i];
    try {
      switch (op.kind) {
        case OpKind::conv:
          build_any_conv(i);
          break;
        case OpKind::tconv:
          build_conv<DeconvKinds>(i, false);
          break;
        case OpKind::maxpool:
          build_pool(i);
          break;
        case OpKind::resize:
          build_resize(i);
          break;
        case OpKind::relu:
        case OpKind::sigmoid:
          build_eltwise(i);
          break;
        case OpKind::concat:
        case OpKind::add:
        case OpKind::sub:
          build_join(i);
          break;
        case OpKind::batchnorm:
          build_batchnorm(i);
          break;
      }
    } catch (const dnnl::error& e) {
      throw Error("dnnl backend: op " + std::to_string(i) + " (" + op_kind_name(op.kind) + ", " +
                  dims_string(op.in) + " -> " + dims_string(op.out) + "): " + e.what());
    } catch (const Error& e) {
      throw Error("dnnl backend: op " + std::to_string(i) + " (" + op_kind_name(op.kind) +
                  "): " + e.what());
    }
  }
  if (options_.slowed != ExecutorOptions::ConvKernel::rule)
    for (int i = 0; i < n_ops; ++i)
      if (conv_ran_[i] == options_.slowed)
        for (auto* steps : {&op_fwd_[i], &op_bwd_[i]})
          for (Step& s : *steps) s.delay_ms = options_.slowed_ms;
  double macs = 0;
  for (const OpDesc& op : net_.ops)
    if (op.kind == OpKind::conv || op.kind == OpKind::tconv)
      macs += double(net_.batch) * op.out.size() * op.in.c * op.kernel * op.kernel;
  alone_ = macs < kAloneMacs;
  try {
    finish();
  } catch (const dnnl::error& e) {
    throw Error(std::string("dnnl backend: finishing the net: ") + e.what());
  }
}

memory DnnlExecutor::make_diff(int i, const Md& md, bool written_in_place) {
  const bool last = i == int(net_.ops.size()) - 1;
  if (last && !written_in_place && md == d_output_user_.get_desc()) return d_output_user_;
  memory m = planned_memory(md, "d act " + std::to_string(i));
  if (last) backward_steps_.push_back(reorder_step(d_output_user_, m, -1));
  return m;
}

memory DnnlExecutor::planned_memory(const Md& md, std::string what, bool activation) {
  memory m(md, engine_, DNNL_MEMORY_NONE);
  planned_.push_back({m, std::move(what), activation});
  return m;
}

memory DnnlExecutor::new_activation(int i, const Md& md) {
  memory m = planned_memory(md, "act " + std::to_string(i), true);
  act_.push_back(m);
  return m;
}

Step DnnlExecutor::reorder_step(const memory& from, const memory& to, int op) {
  dnnl::reorder::primitive_desc pd(engine_, from.get_desc(), engine_, to.get_desc(), attr_);
  return primitive_step(op, "reorder", dnnl::reorder(pd), pd,
                        {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

Step DnnlExecutor::primitive_step(int op, const char* name, const dnnl::primitive& prim,
                                  const dnnl::primitive_desc_base& pd,
                                  const std::vector<std::pair<int, memory>>& args) {
  Step s;
  s.op = op;
  s.name = name;
  s.prim = prim;
  for (const auto& [arg, mem] : args) {
    s.mems.push_back(mem);
    s.args.push_back({arg, mem.get()});
  }
  s.scratchpad_bytes = pd.scratchpad_desc().get_size();
  s.impl = pd.impl_info_str();
  // The last resort, 10-60x slower than a JIT kernel: never unseen (on SSE4.1, oneDNN 2.6 has
  // no JIT backward convolution for blocked layouts).
  if (is_ref(pd)) note_fallback(op, std::string(name) + ": only oneDNN's reference kernel (" +
                                        s.impl + ") runs it on this CPU");
  return s;
}

memory DnnlExecutor::converted_input(const memory& have, const Md& want, std::vector<Step>& steps,
                                     int op) {
  if (have.get_desc() == want) return have;
  memory m = new_memory(want);
  steps.push_back(reorder_step(have, m, op));
  return m;
}

memory DnnlExecutor::converted_output(const memory& target, const Md& produced, Step& after, int op,
                                      bool is_view) {
  if (target.get_desc() == produced) return target;
  memory m = is_view ? planned_memory(produced, "d input scratch") : new_memory(produced);
  after = reorder_step(m, target, op);
  return m;
}

ParamSlot& DnnlExecutor::add_param(const Md& md, const Md& canonical) {
  ParamSlot s;
  s.md = md;
  s.canonical = canonical;
  s.param = memory(md, engine_, DNNL_MEMORY_NONE);
  s.grad = memory(md, engine_, DNNL_MEMORY_NONE);
  slots_.push_back(s);
  return slots_.back();
}

void DnnlExecutor::build_any_conv(int i) {
  using C = ExecutorOptions::ConvKernel;
  const OpDesc& op = net_.ops[i];
  const C asked = i < int(options_.conv_kernels.size()) ? options_.conv_kernels[i] : C::rule;
  switch (asked) {
    case C::rule:
      if (build_thin_conv(i, false)) {
        conv_ran_[i] = C::thin;
      } else if (build_own_winograd(i, 0)) {
        conv_ran_[i] = own_winograd_tile(op, options_) == 2 ? C::winograd2 : C::winograd4;
      } else {
        const bool winograd = winograd_chosen(op, options_);
        build_conv<ConvKinds>(i, winograd);
        if (conv_ran_[i] == C::rule) conv_ran_[i] = winograd ? C::onednn_winograd : C::direct;
      }
      return;
    case C::thin:
      if (build_thin_conv(i, true)) {
        conv_ran_[i] = C::thin;
        return;
      }
      break;
    case C::winograd4:
    case C::winograd2:
      if (build_own_winograd(i, asked == C::winograd2 ? 2 : 4)) {
        conv_ran_[i] = asked;
        return;
      }
      break;
    case C::onednn_winograd:
      if (!onednn_winograd_fits(op, true)) {
        note_fallback(i, "asked for onednn-winograd, which oneDNN has not for this op here: direct");
        break;
      }
      build_conv<ConvKinds>(i, true);
      if (conv_ran_[i] == C::rule) conv_ran_[i] = C::onednn_winograd;
      return;
    case C::direct:
      break;
  }
  build_conv<ConvKinds>(i, false);
  conv_ran_[i] = C::direct;
}

template <class Kinds>
void DnnlExecutor::build_conv(int i, bool winograd) {
  using Fwd = typename Kinds::Fwd;
  using BwdData = typename Kinds::BwdData;
  using BwdWeights = typename Kinds::BwdWeights;
  const OpDesc& op = net_.ops[i];
  const int batch = net_.batch;
  const bool is_tconv = op.kind == OpKind::tconv;
  const memory::dims src_dims{batch, op.in.c, op.in.h, op.in.w};
  const memory::dims dst_dims{batch, op.out.c, op.out.h, op.out.w};
  const memory::dims w_dims{op.out.c, op.in.c, op.kernel, op.kernel};
  const memory::dims strides{op.stride, op.stride};
  const memory::dims pad_l{op.pad_top, op.pad_left}, pad_r{op.pad_bottom, op.pad_right};
  const Md bias_md({op.out.c}, f32, Tag::x);
  const memory have = input_of(i);  // a copy: act_ grows below
  dnnl::algorithm alg = Kinds::alg;
  if (Kinds::has_winograd && winograd) alg = dnnl::algorithm::convolution_winograd;

  // A fresh attr: primitive_attr is a shared handle, so a copy of attr_ would put the post-op
  // on every later primitive.
  dnnl::primitive_attr fwd_attr;
  fwd_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto [act_alg, act_bwd_alg] = eltwise_algorithms(op.act);
  if (op.act != Activation::none) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, act_alg, 0.f, 0.f);
    fwd_attr.set_post_ops(po);
  }

  auto make_fwd = [&](const Md& src, const Md& dst) {
    auto d = op.bias ? typename Fwd::desc(dnnl::prop_kind::forward_training, alg, src,
                                          any_md(w_dims), bias_md, dst, strides, pad_l, pad_r)
                     : typename Fwd::desc(dnnl::prop_kind::forward_training, alg, src,
                                          any_md(w_dims), dst, strides, pad_l, pad_r);
    return typename Fwd::primitive_desc(d, fwd_attr, engine_);
  };
  // Op 0 reads x, whose layout is ours to choose; later ops take their input as it lies.
  const Md first_src = i == 0 ? any_md(src_dims) : have.get_desc();
  auto fwd = [&] {
    try {
      return make_fwd(first_src, any_md(dst_dims));
    } catch (const dnnl::error&) {
      if (alg == Kinds::alg) throw;
      alg = Kinds::alg;  // no Winograd kernel for this layout: every pass direct
      note_fallback(i, "no Winograd forward for its layouts: every pass direct");
      if (op.kind == OpKind::conv) conv_ran_[i] = ExecutorOptions::ConvKernel::direct;
      return make_fwd(first_src, any_md(dst_dims));
    }
  }();
  // A backward primitive in `alg`, or the direct one where oneDNN has no Winograd kernel for it.
  auto with_fallback = [&](auto make, const Md& md, const char* pass) {
    if (alg == Kinds::alg) return make(md);
    try {
      return make(md);
    } catch (const dnnl::error&) {
      note_fallback(i, std::string("no Winograd ") + pass + ": direct");
      const dnnl::algorithm chosen = std::exchange(alg, Kinds::alg);
      auto pd = make(md);
      alg = chosen;
      return pd;
    }
  };
  if (i > 0 && is_ref(fwd)) {
    auto own_choice = make_fwd(any_md(src_dims), any_md(dst_dims));
    if (!is_ref(own_choice)) {
      note_fallback(i, "forward: only a reference kernel takes the input's layout; input reordered");
      fwd = own_choice;
    }
  }
  // The resize kernel reads blocked or plain layouts; a conv feeding it gets the CPU's block.
  const bool feeds_resize = i + 1 < int(net_.ops.size()) && net_.ops[i + 1].kind == OpKind::resize;
  if (feeds_resize && !blocked_view(fwd.dst_desc())) {
    const auto tag = blocked_tag(block_width(op.out));
    fwd = make_fwd(fwd.src_desc(), Md(dst_dims, f32, tag ? *tag : Tag::nchw));
  }

  std::vector<Step>& fsteps = op_fwd_[i];
  const memory src = converted_input(have, fwd.src_desc(), fsteps, i);
  const memory dst = new_activation(i, fwd.dst_desc());
  ParamSlot& w_slot =
      add_param(fwd.weights_desc(), Md(w_dims, f32, is_tconv ? Tag::iohw : Tag::oihw));
  const memory weights = w_slot.param, d_weights = w_slot.grad;
  memory bias, d_bias;
  if (op.bias) {
    ParamSlot& b_slot = add_param(bias_md, bias_md);
    bias = b_slot.param;
    d_bias = b_slot.grad;
  }
  if (op.bias)
    fsteps.push_back(primitive_step(i, "forward", typename Fwd::primitive(fwd), fwd,
                                    {{DNNL_ARG_SRC, src},
                                     {DNNL_ARG_WEIGHTS, weights},
                                     {DNNL_ARG_BIAS, bias},
                                     {DNNL_ARG_DST, dst}}));
  else
    fsteps.push_back(
        primitive_step(i, "forward", typename Fwd::primitive(fwd), fwd,
                       {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}}));

  // Backward. The fused activation's gradient is applied in place to d(dst), from the saved
  // post-activation dst, unless the pool after it does that.
  const bool act_backward = op.act != Activation::none && !relu_by_pool_[i];
  const memory d_dst = make_diff(i, fwd.dst_desc(), act_backward);
  dact_.push_back(d_dst);
  std::vector<Step>& bsteps = op_bwd_[i];
  if (act_backward) {
    dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, act_bwd_alg, fwd.dst_desc(),
                                    0.f, 0.f),
        attr_, engine_);
    dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(act_bwd_alg, fwd.dst_desc(), fwd.dst_desc(), 0.f, 0.f), attr_,
        engine_, hint);
    bsteps.push_back(primitive_step(
        i, "activation backward", dnnl::eltwise_backward(pd), pd,
        {{DNNL_ARG_DIFF_DST, d_dst}, {DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_SRC, d_dst}}));
  }

  // Weight gradients go straight into grads() in the params' layout when oneDNN has a fast
  // kernel for it (it does for conv); deconvolution wants its own and is reordered after.
  auto make_bwd_w_from = [&](const Md& bwd_src, const Md& dw, const Md& bwd_d_dst) {
    auto d = op.bias ? typename BwdWeights::desc(alg, bwd_src, dw, bias_md, bwd_d_dst, strides,
                                                 pad_l, pad_r)
                     : typename BwdWeights::desc(alg, bwd_src, dw, bwd_d_dst, strides, pad_l,
                                                 pad_r);
    return typename BwdWeights::primitive_desc(d, attr_, engine_, fwd);
  };
  auto make_bwd_w = [&](const Md& dw) {
    return make_bwd_w_from(fwd.src_desc(), dw, fwd.dst_desc());
  };
  auto bwd_w = with_fallback(make_bwd_w, fwd.weights_desc(), "backward weights");
  if (is_ref(bwd_w)) {
    auto own_choice = make_bwd_w(any_md(w_dims));
    if (!is_ref(own_choice)) {
      note_fallback(i, "backward weights: only a reference kernel writes the params' layout; "
                       "gradient reordered");
      bwd_w = own_choice;
    }
  }
  // Op 0's input is ours to lay out: oneDNN 2.6 has a JIT forward for a plain input of 4 to 8
  // channels (an RGB photo and its damage mask) but a JIT weights gradient only from NHWC input
  // and output gradient, and its reference kernel ran the informed model 70x slower than the
  // blind one. Then the weights gradient reads both reordered to NHWC, and the fallback says so.
  memory bwd_src = src, bwd_d_dst = d_dst;
  if (i == 0 && is_ref(bwd_w) && alg == Kinds::alg) {
    const Md src_nhwc(src_dims, f32, Tag::nhwc), dst_nhwc(dst_dims, f32, Tag::nhwc);
    auto from_nhwc = make_bwd_w_from(src_nhwc, any_md(w_dims), dst_nhwc);
    if (!is_ref(from_nhwc)) {
      note_fallback(i, "backward weights: no JIT kernel reads the forward's layouts; input and "
                       "output gradient reordered to NHWC for it");
      bwd_w = from_nhwc;
      bwd_src = converted_input(have, src_nhwc, bsteps, i);
      bwd_d_dst = converted_input(d_dst, dst_nhwc, bsteps, i);
    }
  }
  Step dw_reorder;
  const memory dw = converted_output(d_weights, bwd_w.diff_weights_desc(), dw_reorder, i);
  if (op.bias)
    bsteps.push_back(primitive_step(i, "backward weights", typename BwdWeights::primitive(bwd_w),
                                    bwd_w,
                                    {{DNNL_ARG_SRC, bwd_src},
                                     {DNNL_ARG_DIFF_DST, bwd_d_dst},
                                     {DNNL_ARG_DIFF_WEIGHTS, dw},
                                     {DNNL_ARG_DIFF_BIAS, d_bias}}));
  else
    bsteps.push_back(primitive_step(
        i, "backward weights", typename BwdWeights::primitive(bwd_w), bwd_w,
        {{DNNL_ARG_SRC, bwd_src}, {DNNL_ARG_DIFF_DST, bwd_d_dst}, {DNNL_ARG_DIFF_WEIGHTS, dw}}));
  if (dw_reorder.prim) bsteps.push_back(std::move(dw_reorder));

  // Data gradient. Its kernels want the weights in another block order than the forward
  // (OIhw16o16i vs OIhw16i16o): a reorder of the small weight tensor, once per step.
  const memory target = diff_input_of(i);
  auto make_bwd_d = [&](const Md& diff_src) {
    typename BwdData::desc d(alg, diff_src, any_md(w_dims), fwd.dst_desc(), strides, pad_l, pad_r);
    return typename BwdData::primitive_desc(d, attr_, engine_, fwd);
  };
  auto bwd_d = with_fallback(make_bwd_d, target.get_desc(), "backward data");
  if (is_ref(bwd_d)) {
    auto own_choice = make_bwd_d(any_md(src_dims));
    if (!is_ref(own_choice)) {
      note_fallback(i, "backward data: only a reference kernel writes the input's layout; "
                       "gradient reordered");
      bwd_d = own_choice;
    }
  }
  std::vector<Step>& dsteps = data_grad_steps(i);
  const memory bwd_weights = converted_input(weights, bwd_d.weights_desc(), dsteps, i);
  Step dsrc_reorder;
  const memory d_src =
      converted_output(target, bwd_d.diff_src_desc(), dsrc_reorder, i, diff_scratch_is_view(i));
  dsteps.push_back(primitive_step(
      i, "backward data", typename BwdData::primitive(bwd_d), bwd_d,
      {{DNNL_ARG_DIFF_DST, d_dst}, {DNNL_ARG_WEIGHTS, bwd_weights}, {DNNL_ARG_DIFF_SRC, d_src}}));
  if (dsrc_reorder.prim) dsteps.push_back(std::move(dsrc_reorder));
}

bool DnnlExecutor::build_thin_conv(int i, bool asked) {
  const OpDesc& op = net_.ops[i];
  const bool widen = op.in.c == 1, narrow = !widen;  // within thin_conv_fits
  if (!asked && !options_.thin_convs) return false;
  // narrow masks its ReLU's gradient itself: a rewrite that leaves it to a pool is oneDNN's.
  if (!thin_conv_fits(op) || (narrow && relu_by_pool_[i])) {
    if (asked)
      note_fallback(i, "asked for thin, which is for 1 -> 16k or 16k -> 1 stride-1 convs "
                       "(16k -> 1 not before a pool that takes its ReLU): oneDNN's");
    return false;
  }
  ThinConvGeom g;
  g.n = net_.batch;
  g.c = widen ? op.out.c : op.in.c;
  // The wide side in the block oneDNN uses here, so the ops around take it without a reorder.
  g.lanes = block_width(widen ? op.out : op.in);
  g.h = op.in.h;
  g.w = op.in.w;
  g.oh = op.out.h;
  g.ow = op.out.w;
  g.k = op.kernel;
  g.pad_top = op.pad_top;
  g.pad_left = op.pad_left;
  g.relu = op.act == Activation::relu;
  if (!dnnl_backend::thin_conv_tier(g.lanes)) {
    note_fallback(i, "no direct thin kernel for " + std::to_string(g.lanes) +
                         "-channel blocks on this CPU (" + isa_description() + "): oneDNN's");
    return false;
  }
  if (!dnnl_backend::thin_conv_supported(g)) {  // another geometry: oneDNN's own op
    if (asked) note_fallback(i, "asked for thin, which has no kernel for this geometry: oneDNN's");
    return false;
  }
  const memory::dims src_dims{net_.batch, op.in.c, op.in.h, op.in.w};
  const memory::dims dst_dims{net_.batch, op.out.c, op.out.h, op.out.w};
  // The thin side is plain, the wide side dense nChw<lanes>c; the producer of the input must
  // already give that layout (then its gradient buffer has it too), or oneDNN takes the op.
  const memory have = input_of(i);
  const Tag wide_tag = *blocked_tag(g.lanes);
  const Md want_src = widen ? plain_md(net_.batch, op.in) : Md(src_dims, f32, wide_tag);
  if (have.get_desc() != want_src) {
    note_fallback(i, "the direct thin kernel wants its input in nChw" + std::to_string(g.lanes) +
                         "c or plain; the input is laid out otherwise: oneDNN's");
    return false;
  }
  const Md dst_md = widen ? Md(dst_dims, f32, wide_tag) : plain_md(net_.batch, op.out);
  const memory::dims w_dims{op.out.c, op.in.c, op.kernel, op.kernel};
  // [kh][kw][c]: hwio for 1 -> c, ohwi for c -> 1.
  ParamSlot& w_slot = add_param(Md(w_dims, f32, widen ? Tag::hwio : Tag::ohwi),
                                Md(w_dims, f32, Tag::oihw));
  const memory weights = w_slot.param, d_weights = w_slot.grad;
  memory bias, d_bias;
  if (op.bias) {
    const Md bias_md({op.out.c}, f32, Tag::x);
    ParamSlot& b_slot = add_param(bias_md, bias_md);
    bias = b_slot.param;
    d_bias = b_slot.grad;
  }
  const memory dst = new_activation(i, dst_md);
  ThinConvPlan& plan = thin_plans_.emplace_back(dnnl_backend::make_thin_conv_plan(g));
  auto ptr = [](const memory& m) { return static_cast<float*>(m.get_data_handle()); };
  auto maybe = [ptr](const memory& m) { return m ? ptr(m) : nullptr; };

  const std::string impl = dnnl_backend::thin_conv_impl(plan);
  Step fwd;
  fwd.op = i;
  fwd.name = "forward (direct)";
  fwd.impl = impl;
  fwd.kernel = [&plan, widen, have, weights, bias, dst, ptr, maybe] {
    (widen ? dnnl_backend::widen_forward : dnnl_backend::narrow_forward)(
        plan, ptr(have), ptr(weights), maybe(bias), ptr(dst));
  };
  fwd.mems = {have, weights, dst};
  op_fwd_[i].push_back(std::move(fwd));

  // widen masks d(dst) in place by the ReLU (unless the pool after it does); narrow only reads
  // it. Both read their input; narrow reads dst in the pass that writes d(input).
  // The ReLU-by-pool rewrite holds for widen only: narrow has no ReLU before a pool.
  const memory d_dst = make_diff(i, dst_md, widen && g.relu && !relu_by_pool_[i]);
  dact_.push_back(d_dst);
  const memory target = diff_input_of(i);
  Step bwd;
  bwd.op = i;
  bwd.name = "backward weights (direct)";
  bwd.impl = impl;
  if (widen) {
    ThinConvPlan* bwd_plan = &plan;
    if (relu_by_pool_[i]) {
      ThinConvGeom unmasked = g;
      unmasked.relu = false;
      bwd_plan = &thin_plans_.emplace_back(dnnl_backend::make_thin_conv_plan(unmasked));
    }
    bwd.kernel = [bwd_plan, have, dst, d_dst, d_weights, d_bias, ptr, maybe] {
      dnnl_backend::widen_backward_weights(*bwd_plan, ptr(have), ptr(dst), ptr(d_dst),
                                           ptr(d_weights), maybe(d_bias));
    };
    // dst is read for the ReLU's mask unless the pool after applies it.
    bwd.mems = {have, d_dst, d_weights};
    if (!relu_by_pool_[i]) bwd.mems.push_back(dst);
    Step data;
    data.op = i;
    data.name = "backward data (direct)";
    data.impl = impl;
    data.kernel = [&plan, d_dst, weights, target, ptr] {
      dnnl_backend::widen_backward_data(plan, ptr(d_dst), ptr(weights), ptr(target));
    };
    data.mems = {d_dst, weights, target};
    op_bwd_[i].push_back(std::move(bwd));
    data_grad_steps(i).push_back(std::move(data));
    return true;
  }
  // narrow: weights and data gradients in one pass over the input. Op 0's data gradient is only
  // wanted on request, so there the pass runs without it, and again with it when asked.
  auto narrow_step = [&, ptr, maybe](const char* name, bool with_dx) {
    Step s;
    s.op = i;
    s.name = name;
    s.impl = impl;
    s.kernel = [&plan, have, dst, d_dst, weights, target, d_weights, d_bias, with_dx, ptr, maybe] {
      dnnl_backend::narrow_backward(plan, ptr(have), ptr(dst), ptr(d_dst), ptr(weights),
                                    with_dx ? ptr(target) : nullptr, ptr(d_weights),
                                    maybe(d_bias));
    };
    s.mems = {have, dst, d_dst, weights, d_weights};
    if (with_dx) s.mems.push_back(target);
    return s;
  };
  op_bwd_[i].push_back(narrow_step("backward (direct)", i > 0));
  if (i == 0) input_grad_steps_.push_back(narrow_step("backward data (direct)", true));
  return true;
}

bool DnnlExecutor::build_own_winograd(int i, int tile) {
  const OpDesc& op = net_.ops[i];
  if (tile == 0) {
    if (i == 0 || !own_winograd_chosen(op, options_)) return false;
    tile = own_winograd_tile(op, options_);
  } else if (i == 0 || !own_winograd_fits(op, tile)) {
    note_fallback(i, "asked for winograd" + std::to_string(tile) +
                         ", which is for 3x3 'same' convs after the first with whole channel "
                         "blocks: oneDNN's direct kernel");
    return false;
  }
  const memory::dims src_dims{net_.batch, op.in.c, op.in.h, op.in.w};
  const memory::dims dst_dims{net_.batch, op.out.c, op.out.h, op.out.w};
  const memory have = input_of(i);
  const int lanes = block_width(op.in);
  const auto tag = blocked_tag(lanes);
  if (!tag || have.get_desc() != Md(src_dims, f32, *tag)) {
    note_fallback(i, "the Winograd kernel wants its input in nChw" + std::to_string(lanes) +
                         "c; the input is laid out otherwise: oneDNN's direct kernel");
    return false;
  }
  const Md dst_md(dst_dims, f32, *tag);
  // Checked before anything is added: a false return leaves the op to build_conv.
  const WinogradGeom g{net_.batch,
                       op.in.c,
                       op.out.c,
                       op.in.h,
                       op.in.w,
                       op.act == Activation::relu,
                       tile,
                       lanes};
  if (!dnnl_backend::winograd_supported(g)) {
    note_fallback(i, "no Winograd kernel of ours for " + std::to_string(lanes) +
                         "-channel blocks here: oneDNN's direct kernel");
    return false;
  }
  const memory::dims w_dims{op.out.c, op.in.c, 3, 3};
  ParamSlot& w_slot = add_param(Md(w_dims, f32, Tag::oihw), Md(w_dims, f32, Tag::oihw));
  const memory weights = w_slot.param, d_weights = w_slot.grad;
  memory bias, d_bias;
  if (op.bias) {
    const Md bias_md({op.out.c}, f32, Tag::x);
    ParamSlot& b_slot = add_param(bias_md, bias_md);
    bias = b_slot.param;
    d_bias = b_slot.grad;
  }
  const memory dst = new_activation(i, dst_md);
  WinogradPlan& plan = winograd_plans_.emplace_back(dnnl_backend::make_winograd_plan(g));
  auto ptr = [](const memory& m) { return static_cast<float*>(m.get_data_handle()); };
  auto maybe = [ptr](const memory& m) { return m ? ptr(m) : nullptr; };
  auto step = [&](const char* name, std::vector<memory> mems, std::function<void()> kernel) {
    Step s;
    s.op = i;
    s.name = name;
    s.impl = dnnl_backend::winograd_impl(plan);
    s.mems = std::move(mems);
    s.kernel = std::move(kernel);
    return s;
  };
  op_fwd_[i].push_back(step(
      "forward (winograd)", {have, weights, dst}, [&plan, have, weights, bias, dst, ptr, maybe] {
        dnnl_backend::winograd_forward(plan, ptr(have), ptr(weights), maybe(bias), ptr(dst));
      }));

  // Backward: the ReLU's gradient on d(dst) in place (oneDNN's eltwise, from the saved output)
  // unless the pool after it applies it; then the weights' and the input's gradients.
  const bool act_backward = op.act == Activation::relu && !relu_by_pool_[i];
  const memory d_dst = make_diff(i, dst_md, act_backward);
  dact_.push_back(d_dst);
  if (act_backward) {
    const auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, dst_md, 0.f, 0.f),
        attr_, engine_);
    dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(alg, dst_md, dst_md, 0.f, 0.f), attr_, engine_, hint);
    op_bwd_[i].push_back(primitive_step(
        i, "activation backward", dnnl::eltwise_backward(pd), pd,
        {{DNNL_ARG_DIFF_DST, d_dst}, {DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_SRC, d_dst}}));
  }
  op_bwd_[i].push_back(step("backward weights (winograd)", {have, d_dst, d_weights},
                            [&plan, have, d_dst, d_weights, d_bias, ptr, maybe] {
                              dnnl_backend::winograd_backward_weights(
                                  plan, ptr(have), ptr(d_dst), ptr(d_weights), maybe(d_bias));
                            }));
  const memory target = diff_input_of(i);
  data_grad_steps(i).push_back(step(
      "backward data (winograd)", {d_dst, weights, target}, [&plan, d_dst, weights, target, ptr] {
        dnnl_backend::winograd_backward_data(plan, ptr(d_dst), ptr(weights), ptr(target));
      }));
  return true;
}

void DnnlExecutor::build_pool(int i) {
  const OpDesc& op = net_.ops[i];
  const memory have = input_of(i);  // a copy: act_ grows below
  const memory::dims dst_dims{net_.batch, op.out.c, op.out.h, op.out.w};
  const memory::dims strides{op.stride, op.stride}, kernel{op.kernel, op.kernel};
  const memory::dims pad_l{op.pad_top, op.pad_left}, pad_r{op.pad_bottom, op.pad_right};
  dnnl::pooling_forward::primitive_desc fwd(
      dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max,
                                  have.get_desc(), any_md(dst_dims), strides, kernel, pad_l, pad_r),
      attr_, engine_);
  const memory dst = new_activation(i, fwd.dst_desc());
  const memory workspace = new_memory(fwd.workspace_desc());
  op_fwd_[i].push_back(
      primitive_step(i, "forward", dnnl::pooling_forward(fwd), fwd,
                     {{DNNL_ARG_SRC, have}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, workspace}}));

  const memory d_dst = make_diff(i, fwd.dst_desc(), false);
  dact_.push_back(d_dst);
  const memory target = diff_input_of(i);
  if (i > 0 && relu_by_pool_[i - 1]) {
    // The ReLU of the conv before, on the pooled gradient (relu_left_to_pool), in place.
    const auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, fwd.dst_desc(), 0.f,
                                    0.f),
        attr_, engine_);
    dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(alg, fwd.dst_desc(), fwd.dst_desc(), 0.f, 0.f), attr_,
        engine_, hint);
    op_bwd_[i].push_back(primitive_step(
        i, "ReLU backward of the conv before", dnnl::eltwise_backward(pd), pd,
        {{DNNL_ARG_DIFF_DST, d_dst}, {DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_SRC, d_dst}}));
  }
  auto make_bwd = [&](const Md& diff_src) {
    return dnnl::pooling_backward::primitive_desc(
        dnnl::pooling_backward::desc(dnnl::algorithm::pooling_max, diff_src, fwd.dst_desc(),
                                     strides, kernel, pad_l, pad_r),
        attr_, engine_, fwd);
  };
  auto bwd = make_bwd(target.get_desc());
  if (is_ref(bwd)) {
    auto own_choice = make_bwd(any_md({net_.batch, op.in.c, op.in.h, op.in.w}));
    if (!is_ref(own_choice)) {
      note_fallback(i, "backward: only a reference kernel writes the input's layout; "
                       "gradient reordered");
      bwd = own_choice;
    }
  }
  Step reorder;
  const memory d_src =
      converted_output(target, bwd.diff_src_desc(), reorder, i, diff_scratch_is_view(i));
  std::vector<Step>& dsteps = data_grad_steps(i);
  dsteps.push_back(primitive_step(
      i, "backward", dnnl::pooling_backward(bwd), bwd,
      {{DNNL_ARG_DIFF_DST, d_dst}, {DNNL_ARG_WORKSPACE, workspace}, {DNNL_ARG_DIFF_SRC, d_src}}));
  if (reorder.prim) dsteps.push_back(std::move(reorder));
}

void DnnlExecutor::build_eltwise(int i) {
  const OpDesc& op = net_.ops[i];
  const memory have = input_of(i);  // a copy: act_ grows below
  const Md md = have.get_desc();
  // The *_use_dst_for_bwd forms let backward read the saved output; no copy of the input kept.
  const dnnl::algorithm alg = eltwise_algorithms(activation_of(op.kind)).second;
  dnnl::eltwise_forward::primitive_desc fwd(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, md, 0.f, 0.f), attr_,
      engine_);
  const memory dst = new_activation(i, fwd.dst_desc());
  op_fwd_[i].push_back(primitive_step(i, "forward", dnnl::eltwise_forward(fwd), fwd,
                                      {{DNNL_ARG_SRC, have}, {DNNL_ARG_DST, dst}}));

  const memory d_dst = make_diff(i, fwd.dst_desc(), false);
  dact_.push_back(d_dst);
  dnnl::eltwise_backward::primitive_desc bwd(
      dnnl::eltwise_backward::desc(alg, fwd.dst_desc(), fwd.dst_desc(), 0.f, 0.f), attr_, engine_,
      fwd);
  const memory target = diff_input_of(i);
  Step reorder;
  const memory d_src =
      converted_output(target, bwd.diff_src_desc(), reorder, i, diff_scratch_is_view(i));
  std::vector<Step>& dsteps = data_grad_steps(i);
  dsteps.push_back(primitive_step(
      i, "backward", dnnl::eltwise_backward(bwd), bwd,
      {{DNNL_ARG_DIFF_DST, d_dst}, {DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_SRC, d_src}}));
  if (reorder.prim) dsteps.push_back(std::move(reorder));
}

// oneDNN's batch normalisation with the batch's statistics, its ReLU fused (a workspace keeps
// the mask for backward), scale and shift as separate vectors. Backward writes d(src), d(scale)
// and d(shift) in one primitive (oneDNN 2.6 refuses to run it without the shift among its
// arguments, though it reads none of it), then a step of ours puts the forward's mean and unbiased
// variance in the running statistics' gradient slots (Executor::statistics_ranges).
void DnnlExecutor::build_batchnorm(int i) {
  const OpDesc& op = net_.ops[i];
  if (i == 0) throw Error("a batchnorm needs the conv before it");
  const memory have = input_of(i);  // a copy: act_ grows below
  const Md md = have.get_desc();
  auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  if (op.act == Activation::relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
  dnnl::batch_normalization_forward::primitive_desc fwd(
      dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, md,
                                              kBatchNormEpsilon, flags),
      attr_, engine_);
  const Md vec_md({op.out.c}, f32, Tag::x);
  // Four slots of c floats, param_infos() order: scale, shift, running mean, running variance.
  std::vector<memory> param, grad;
  for (int k = 0; k < 4; ++k) {
    if (k == 2) statistics_slots_.push_back(slots_.size());
    const ParamSlot& slot = add_param(vec_md, vec_md);
    param.push_back(slot.param);
    grad.push_back(slot.grad);
  }
  const memory dst = new_activation(i, fwd.dst_desc());
  const memory mean = planned_memory(fwd.mean_desc(), "batch mean " + std::to_string(i));
  const memory var = planned_memory(fwd.variance_desc(), "batch variance " + std::to_string(i));
  const bool relu = op.act == Activation::relu;
  const memory workspace =
      relu ? planned_memory(fwd.workspace_desc(), "relu mask " + std::to_string(i)) : memory();
  std::vector<std::pair<int, memory>> fwd_args = {
      {DNNL_ARG_SRC, have},  {DNNL_ARG_SCALE, param[0]}, {DNNL_ARG_SHIFT, param[1]},
      {DNNL_ARG_DST, dst},   {DNNL_ARG_MEAN, mean},      {DNNL_ARG_VARIANCE, var}};
  if (relu) fwd_args.push_back({DNNL_ARG_WORKSPACE, workspace});
  op_fwd_[i].push_back(
      primitive_step(i, "forward", dnnl::batch_normalization_forward(fwd), fwd, fwd_args));

  const memory d_dst = make_diff(i, fwd.dst_desc(), false);
  dact_.push_back(d_dst);
  dnnl::batch_normalization_backward::primitive_desc bwd(
      dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, fwd.dst_desc(), md,
                                               kBatchNormEpsilon, flags),
      attr_, engine_, fwd);
  const memory target = diff_input_of(i);
  Step reorder;
  const memory d_src =
      converted_output(target, bwd.diff_src_desc(), reorder, i, diff_scratch_is_view(i));
  std::vector<Step>& bsteps = op_bwd_[i];
  std::vector<std::pair<int, memory>> bwd_args = {
      {DNNL_ARG_SRC, have},        {DNNL_ARG_MEAN, mean},         {DNNL_ARG_VARIANCE, var},
      {DNNL_ARG_DIFF_DST, d_dst},  {DNNL_ARG_SCALE, param[0]},    {DNNL_ARG_SHIFT, param[1]},
      {DNNL_ARG_DIFF_SRC, d_src},  {DNNL_ARG_DIFF_SCALE, grad[0]}, {DNNL_ARG_DIFF_SHIFT, grad[1]}};
  if (relu) bwd_args.push_back({DNNL_ARG_WORKSPACE, workspace});
  bsteps.push_back(
      primitive_step(i, "backward", dnnl::batch_normalization_backward(bwd), bwd, bwd_args));
  if (reorder.prim) bsteps.push_back(std::move(reorder));

  Step stats;
  stats.op = i;
  stats.name = "batch statistics";
  stats.impl = "cae:copy";
  const int c = op.out.c;
  const double count = double(net_.batch) * op.out.h * op.out.w;
  const float unbias = float(count > 1 ? count / (count - 1) : 1.0);
  stats.kernel = [c, unbias, mean, var, to_mean = grad[2], to_var = grad[3]] {
    const auto* m = static_cast<const float*>(mean.get_data_handle());
    const auto* v = static_cast<const float*>(var.get_data_handle());
    auto* gm = static_cast<float*>(to_mean.get_data_handle());
    auto* gv = static_cast<float*>(to_var.get_data_handle());
    for (int j = 0; j < c; ++j) {
      gm[j] = m[j];
      gv[j] = v[j] * unbias;
    }
  };
  stats.mems = {mean, var};
  bsteps.push_back(std::move(stats));
}

std::vector<Executor::FlatRange> DnnlExecutor::statistics_ranges() const {
  std::vector<FlatRange> ranges;
  for (std::size_t k : statistics_slots_)
    ranges.push_back({slots_[k].offset, 2 * slots_[k].md.get_size() / sizeof(float)});
  return ranges;
}

void DnnlExecutor::build_resize(int i) {
  const OpDesc& op = net_.ops[i];
  const memory have = input_of(i);  // a copy: act_ grows below
  const Md src_md = have.get_desc();
  const auto src_view = blocked_view(src_md);
  if (!src_view) throw Error("input layout is outside the resize kernel's family");
  const Md dst_md = same_layout(src_md, {net_.batch, op.out.c, op.out.h, op.out.w});
  const memory dst = new_activation(i, dst_md);
  const ResizePlan& plan =
      resize_plans_.emplace_back(dnnl_backend::make_resize_plan(*src_view, *blocked_view(dst_md)));
  Step fwd;
  fwd.op = i;
  fwd.name = "forward";
  fwd.impl = "cae:resize";
  fwd.kernel = [&plan, have, dst] {
    dnnl_backend::resize_forward(plan, static_cast<const float*>(have.get_data_handle()),
                                 static_cast<float*>(dst.get_data_handle()));
  };
  fwd.mems = {have, dst};
  op_fwd_[i].push_back(std::move(fwd));

  const memory d_dst = make_diff(i, dst_md, false);
  dact_.push_back(d_dst);
  // d(src) is written in the layout of src, which is the layout of whatever receives it.
  const memory target = diff_input_of(i);
  Step bwd;
  bwd.op = i;
  bwd.name = "backward";
  bwd.impl = "cae:resize";
  bwd.kernel = [&plan, d_dst, target] {
    dnnl_backend::resize_backward(plan, static_cast<const float*>(d_dst.get_data_handle()),
                                  static_cast<float*>(target.get_data_handle()));
  };
  bwd.mems = {d_dst, target};
  data_grad_steps(i).push_back(std::move(bwd));
}

void DnnlExecutor::build_join(int i) {
  const OpDesc& op = net_.ops[i];
  const memory x = input_of(i);  // copies: act_ grows below
  const memory y = op.other == OpDesc::kNetInput ? x_user_ : act_[op.other];
  const Dims y_dims = net_.act_dims(op.other);
  const memory::dims z_dims{net_.batch, op.out.c, op.out.h, op.out.w};
  std::vector<Step>& fsteps = op_fwd_[i];
  memory xs = x, ys = y;
  Md z_md;
  const std::string other_name =
      op.other == OpDesc::kNetInput ? "the input" : "act " + std::to_string(op.other);
  if (op.kind == OpKind::concat) {
    // Block copies: y's blocks follow x's, both in x's block family.
    auto fits = [&](const Md& a, const Md& b) {
      const auto av = blocked_view(a), bv = blocked_view(b);
      if (!av || !bv || op.in.c % av->ci != 0) return false;
      Md z;
      try {
        z = same_layout(a, z_dims);
      } catch (const Error&) {
        return false;
      }
      const auto zv = blocked_view(z);
      if (!zv || !dnnl_backend::concat_fits(*av, *bv, *zv)) return false;
      z_md = z;
      return true;
    };
    if (!fits(x.get_desc(), y.get_desc())) {
      std::optional<Md> y_like_x;
      try {
        y_like_x = same_layout(x.get_desc(), {net_.batch, y_dims.c, y_dims.h, y_dims.w});
      } catch (const Error&) {
      }
      if (y_like_x && fits(x.get_desc(), *y_like_x)) {
        note_fallback(i, other_name + " is laid out otherwise than its first operand: reordered");
        ys = converted_input(y, *y_like_x, fsteps, i);
      } else {
        note_fallback(i, "operands outside one block family: both reordered to nchw");
        xs = converted_input(x, plain_md(net_.batch, op.in), fsteps, i);
        ys = converted_input(y, plain_md(net_.batch, y_dims), fsteps, i);
        z_md = plain_md(net_.batch, op.out);
      }
    }
  } else {
    z_md = x.get_desc();
    if (y.get_desc() != z_md) {
      note_fallback(i, other_name + " is laid out otherwise than its first operand: reordered");
      ys = converted_input(y, z_md, fsteps, i);
    }
  }
  const memory dst = new_activation(i, z_md);
  auto ptr = [](const memory& m) { return static_cast<float*>(m.get_data_handle()); };
  const std::size_t floats = z_md.get_size() / sizeof(float);
  const float sign = op.kind == OpKind::sub ? -1.f : 1.f;
  const ConcatPlan* plan = nullptr;
  if (op.kind == OpKind::concat)
    plan = &concat_plans_.emplace_back(ConcatPlan{
        *blocked_view(xs.get_desc()), *blocked_view(ys.get_desc()), *blocked_view(z_md)});
  const char* impl = op.kind == OpKind::concat ? "cae:concat" : "cae:add";
  Step fwd;
  fwd.op = i;
  fwd.name = "forward";
  fwd.impl = impl;
  fwd.mems = {xs, ys, dst};
  if (plan)
    fwd.kernel = [plan, xs, ys, dst, ptr] {
      dnnl_backend::concat_forward(*plan, ptr(xs), ptr(ys), ptr(dst));
    };
  else
    fwd.kernel = [floats, sign, xs, ys, dst, ptr] {
      dnnl_backend::add_forward(floats, sign, ptr(xs), ptr(ys), ptr(dst));
    };
  fsteps.push_back(std::move(fwd));

  // Backward: d(x) into the chain's gradient of act i-1, d(y) into a skip gradient that is
  // summed into d(y's activation) once the chain has written it.
  const memory d_dst = make_diff(i, z_md, false);
  dact_.push_back(d_dst);
  Step after;
  const memory d_x = converted_output(diff_input_of(i), xs.get_desc(), after, i);
  const memory d_y = planned_memory(
      ys.get_desc(), "d " + other_name + " from op " + std::to_string(i) + " (skip)");
  Step bwd;
  bwd.op = i;
  bwd.name = "backward";
  bwd.impl = impl;
  bwd.mems = {d_dst, d_x, d_y};
  if (plan)
    bwd.kernel = [plan, d_dst, d_x, d_y, ptr] {
      dnnl_backend::concat_backward(*plan, ptr(d_dst), ptr(d_x), ptr(d_y));
    };
  else
    bwd.kernel = [floats, sign, d_dst, d_x, d_y, ptr] {
      dnnl_backend::add_backward(floats, sign, ptr(d_dst), ptr(d_x), ptr(d_y));
    };
  op_bwd_[i].push_back(std::move(bwd));
  if (after.prim) op_bwd_[i].push_back(std::move(after));
  add_skip_gradient(i, op.other, d_y);
}

void DnnlExecutor::add_skip_gradient(int i, int k, const memory& d_skip) {
  // d(act k) is complete once op k+1's backward has written it and every join reading act k
  // (all after op k+1, so all earlier in backward) has handed over its share.
  const memory target = k == OpDesc::kNetInput ? dx_user_ : dact_[k];
  std::vector<Step>& steps = k == OpDesc::kNetInput ? input_grad_steps_ : op_bwd_[k + 1];
  if (d_skip.get_desc() == target.get_desc()) {
    Step s;
    s.op = i;
    s.name = "skip gradient sum";
    s.impl = "cae:accumulate";
    s.mems = {d_skip, target};
    const std::size_t floats = target.get_desc().get_size() / sizeof(float);
    s.kernel = [floats, d_skip, target] {
      dnnl_backend::accumulate(floats, static_cast<const float*>(d_skip.get_data_handle()),
                               static_cast<float*>(target.get_data_handle()));
    };
    steps.push_back(std::move(s));
    return;
  }
  // Another layout: a reorder that adds to its destination.
  dnnl::primitive_attr sum_attr;
  sum_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops po;
  po.append_sum(1.f);
  sum_attr.set_post_ops(po);
  dnnl::reorder::primitive_desc pd(engine_, d_skip.get_desc(), engine_, target.get_desc(),
                                   sum_attr);
  steps.push_back(primitive_step(i, "skip gradient sum (reorder)", dnnl::reorder(pd), pd,
                                 {{DNNL_ARG_FROM, d_skip}, {DNNL_ARG_TO, target}}));
}

void DnnlExecutor::finish() {
  const int n_ops = int(net_.ops.size());
  const memory last = act_.back();
  const Md out_md = plain_md(net_.batch, net_.output());
  memory out = last;
  if (last.get_desc() != out_md) {
    out = new_memory(out_md);
    op_fwd_[n_ops - 1].push_back(reorder_step(last, out, -1));
  }
  for (auto& steps : op_fwd_)
    for (auto& s : steps) forward_steps_.push_back(std::move(s));
  for (int i = n_ops - 1; i >= 0; --i)
    for (auto& s : op_bwd_[i]) backward_steps_.push_back(std::move(s));
  op_fwd_.clear();
  op_bwd_.clear();

  output_is_last_act_ = out.get() == last.get();
  make_memory_plan();
  output_ptr_ = static_cast<const float*>(out.get_data_handle());

  // Weights first, then biases, packed without gaps: blocked weight sizes are multiples of 16
  // floats, so every weight region stays 64-byte aligned, and every cell of grads() is written
  // by backward().
  for (bool weights : {true, false})
    for (ParamSlot& s : slots_)
      if ((s.md.data.ndims == 4) == weights) {
        s.offset = flat_size_;
        flat_size_ += s.md.get_size() / sizeof(float);
      }
  params_ = FloatBuffer(flat_size_);
  grads_ = FloatBuffer(flat_size_);
  for (const ParamSlot& s : slots_) {
    s.param.set_data_handle(params_.data() + s.offset);
    s.grad.set_data_handle(grads_.data() + s.offset);
  }

  std::size_t scratch_bytes = 0;
  for (auto* list : {&forward_steps_, &backward_steps_, &input_grad_steps_})
    for (const Step& s : *list) scratch_bytes = std::max(scratch_bytes, s.scratchpad_bytes);
  if (scratch_bytes > 0) {
    scratchpad_ =
        memory(Md({dnnl::memory::dim(scratch_bytes)}, memory::data_type::u8, Tag::x), engine_);
    for (auto* list : {&forward_steps_, &backward_steps_, &input_grad_steps_})
      for (Step& s : *list)
        if (s.scratchpad_bytes > 0) {
          s.mems.push_back(scratchpad_);
          s.args.push_back({DNNL_ARG_SCRATCHPAD, scratchpad_.get()});
        }
  }
}

// One pass over the steps in execution order (forward, backward, input gradient) gives each
// planned memory its span: the first and the last step that lists it. Activations are kept
// through the whole forward pass (read_activation may ask for any of them until backward), and
// the last one to the end when it is output() itself. Then, in order of first use, a memory
// takes a buffer none of whose memories' spans overlaps its own: among those of activations the
// smallest that is large enough, else the largest of the gradients' buffers (grown if need be),
// else a new one. Spans are closed, so a step never reads and writes through one buffer unless
// it is one memory (the in-place ReLU backward).
void DnnlExecutor::make_memory_plan() {
  std::map<dnnl_memory_t, int> row_of;
  plan_.rows.clear();
  for (const Planned& p : planned_) {
    row_of[p.mem.get()] = int(plan_.rows.size());
    plan_.rows.push_back({p.what, p.mem.get_desc().get_size(), -1, -1, -1});
  }
  plan_.forward_steps = int(forward_steps_.size());
  plan_.backward_steps = int(backward_steps_.size());
  plan_.input_grad_steps = int(input_grad_steps_.size());
  const int total = plan_.forward_steps + plan_.backward_steps + plan_.input_grad_steps;
  int t = 0;
  for (auto* list : {&forward_steps_, &backward_steps_, &input_grad_steps_})
    for (const Step& s : *list) {
      for (const memory& m : s.mems)
        if (auto it = row_of.find(m.get()); it != row_of.end()) {
          DnnlPlanRow& r = plan_.rows[it->second];
          if (r.first < 0) r.first = t;
          r.last = t;
        }
      ++t;
    }
  for (std::size_t k = 0; k < planned_.size(); ++k) {
    DnnlPlanRow& r = plan_.rows[k];
    if (!planned_[k].activation) continue;
    if (r.first < 0) r.first = 0;
    r.last = std::max(r.last, plan_.forward_steps - 1);
  }
  if (output_is_last_act_) plan_.rows[row_of.at(act_.back().get())].last = total;

  std::vector<int> order(plan_.rows.size());
  for (int k = 0; k < int(order.size()); ++k) order[k] = k;
  std::ranges::stable_sort(order,
                           [&](int a, int b) { return plan_.rows[a].first < plan_.rows[b].first; });
  struct Buffer {
    std::size_t bytes = 0;
    int busy_until = -1;  // the last step of the spans it holds
    bool activation = false;
  };
  std::vector<Buffer> buffers;
  for (int k : order) {
    DnnlPlanRow& r = plan_.rows[k];
    if (r.first < 0) continue;  // no step touches it: no buffer
    int best = -1;
    if (options_.share_buffers && !planned_[k].activation) {
      for (int b = 0; b < int(buffers.size()); ++b)
        if (buffers[b].activation && buffers[b].busy_until < r.first &&
            buffers[b].bytes >= r.bytes && (best < 0 || buffers[b].bytes < buffers[best].bytes))
          best = b;
      if (best < 0)
        for (int b = 0; b < int(buffers.size()); ++b)
          if (!buffers[b].activation && buffers[b].busy_until < r.first &&
              (best < 0 || buffers[b].bytes > buffers[best].bytes))
            best = b;
    }
    if (best < 0) {
      best = int(buffers.size());
      buffers.push_back({0, -1, planned_[k].activation});
    }
    buffers[best].bytes = std::max(buffers[best].bytes, r.bytes);
    buffers[best].busy_until = r.last;
    r.buffer = best;
  }
  plan_.buffer_bytes.clear();
  plan_.buffer_holds_activation.clear();
  buffers_.clear();
  for (const Buffer& b : buffers) {
    plan_.buffer_bytes.push_back(b.bytes);
    plan_.buffer_holds_activation.push_back(b.activation);
    buffers_.emplace_back(b.bytes / sizeof(float));
  }
  for (std::size_t k = 0; k < planned_.size(); ++k)
    if (plan_.rows[k].buffer >= 0)
      planned_[k].mem.set_data_handle(buffers_[plan_.rows[k].buffer].data());
  plan_.rewrites.clear();
  for (int i = 0; i < int(net_.ops.size()); ++i)
    if (relu_by_pool_[i])
      plan_.rewrites.push_back("op " + std::to_string(i) + " (" + op_kind_name(net_.ops[i].kind) +
                               "): its ReLU's gradient is applied by op " + std::to_string(i + 1) +
                               " (maxpool) to the pooled gradient; its output is not read by "
                               "backward");
}

void DnnlExecutor::run(std::span<Step> steps) {
  for (Step& s : steps) {
    if (s.kernel) {
      s.kernel();
    } else {
      const dnnl_status_t status =
          dnnl_primitive_execute(s.prim.get(), stream_.get(), int(s.args.size()), s.args.data());
      if (status != dnnl_success)
        throw Error("dnnl backend: op " + std::to_string(s.op) + " " + s.name +
                    " failed with oneDNN status " + std::to_string(int(status)));
    }
    if (s.delay_ms > 0) {  // a planted slow kernel (tests of the tuner): waits, busy like a kernel
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::duration<double, std::milli>(s.delay_ms);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
  }
  if (dnnl_stream_wait(stream_.get()) != dnnl_success)
    throw Error("dnnl backend: waiting for the CPU stream failed");
}

void DnnlExecutor::profile(const float* x, const float* d_output, std::vector<StepTime>& acc,
                           bool backward) {
  x_user_.set_data_handle(const_cast<float*>(x));
  d_output_user_.set_data_handle(const_cast<float*>(d_output));
  std::size_t k = 0;
  for (auto* list : {&forward_steps_, &backward_steps_}) {
    const bool fwd = list == &forward_steps_;
    if (!fwd && !backward) break;
    for (Step& s : *list) {
      std::vector<Step> one;
      one.push_back(s);
      const auto t0 = std::chrono::steady_clock::now();
      run(one);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (acc.size() <= k)
        acc.push_back({s.op, std::string(fwd ? "fwd " : "bwd ") + s.name, 0.0, s.impl});
      acc[k++].ms += ms;
    }
  }
}

void DnnlExecutor::forward(const float* x) {
  // oneDNN only reads its sources; the const_cast lets x be bound without a copy.
  x_user_.set_data_handle(const_cast<float*>(x));
  if (!alone_) {
    run(forward_steps_);
    return;
  }
  // Too little work to share: one thread, then the caller's thread count back.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  try {
    run(forward_steps_);
  } catch (...) {
    omp_set_num_threads(threads);
    throw;
  }
  omp_set_num_threads(threads);
}

void DnnlExecutor::backward(const float* d_output, float* d_input) {
  d_output_user_.set_data_handle(const_cast<float*>(d_output));
  if (grads_ready_)
    run_announcing_grads();
  else
    run(backward_steps_);
  if (d_input) {
    dx_user_.set_data_handle(d_input);
    run(input_grad_steps_);
  }
}

void DnnlExecutor::run_announcing_grads() {
  // slots_ follow param_infos() order, which names each slot's op. An op's weight and bias are
  // apart in grads() (weights are packed first), so each is its own range.
  const std::vector<ParamInfo> infos = param_infos(net_);
  std::vector<std::size_t> end_of_op(net_.ops.size(), 0);
  for (std::size_t j = 0; j < backward_steps_.size(); ++j)
    if (backward_steps_[j].op >= 0) end_of_op[backward_steps_[j].op] = j + 1;
  const std::span<Step> steps(backward_steps_);
  std::size_t done = 0;
  for (std::size_t j = 0; j < steps.size(); ++j) {
    const int op = steps[j].op;
    if (op < 0 || end_of_op[op] != j + 1) continue;
    run(steps.subspan(done, j + 1 - done));
    done = j + 1;
    for (std::size_t k = 0; k < slots_.size(); ++k)
      if (infos[k].op == op)
        grads_ready_({grads_.data() + slots_[k].offset, slots_[k].md.get_size() / sizeof(float)});
  }
  run(steps.subspan(done));
}

void DnnlExecutor::read_activation(int k, float* out) {
  if (k < 0 || k >= int(net_.ops.size()))
    throw Error("dnnl backend: read_activation: op index " + std::to_string(k) + " outside [0, " +
                std::to_string(net_.ops.size()) + ")");
  try {
    memory to(plain_md(net_.batch, net_.ops[k].out), engine_, out);
    dnnl::reorder(act_[k], to).execute(stream_, act_[k], to);
    stream_.wait();
  } catch (const dnnl::error& e) {
    throw Error("dnnl backend: read_activation(" + std::to_string(k) + "): " + e.what());
  }
}

std::vector<std::vector<float>> DnnlExecutor::to_canonical(std::span<const float> flat) {
  if (flat.size() != flat_size_)
    throw Error("dnnl backend: to_canonical: flat buffer has " + std::to_string(flat.size()) +
                " floats, expected " + std::to_string(flat_size_));
  std::vector<std::vector<float>> tensors;
  try {
    for (const ParamSlot& s : slots_) {
      std::vector<float>& t = tensors.emplace_back(s.canonical.get_size() / sizeof(float));
      memory from(s.md, engine_, const_cast<float*>(flat.data()) + s.offset);
      memory to(s.canonical, engine_, t.data());
      dnnl::reorder(from, to).execute(stream_, from, to);
    }
    stream_.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("dnnl backend: to_canonical: ") + e.what());
  }
  return tensors;
}

void DnnlExecutor::from_canonical(const std::vector<std::vector<float>>& tensors,
                                  std::span<float> flat) {
  if (flat.size() != flat_size_)
    throw Error("dnnl backend: from_canonical: flat buffer has " + std::to_string(flat.size()) +
                " floats, expected " + std::to_string(flat_size_));
  if (tensors.size() != slots_.size())
    throw Error("dnnl backend: from_canonical: got " + std::to_string(tensors.size()) +
                " tensors, expected " + std::to_string(slots_.size()));
  for (std::size_t k = 0; k < slots_.size(); ++k)
    if (tensors[k].size() != slots_[k].canonical.get_size() / sizeof(float))
      throw Error("dnnl backend: from_canonical: tensor " + std::to_string(k) + " has " +
                  std::to_string(tensors[k].size()) + " floats, expected " +
                  std::to_string(slots_[k].canonical.get_size() / sizeof(float)));
  std::fill(flat.begin(), flat.end(), 0.f);
  try {
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      const ParamSlot& s = slots_[k];
      memory from(s.canonical, engine_, const_cast<float*>(tensors[k].data()));
      memory to(s.md, engine_, flat.data() + s.offset);
      dnnl::reorder(from, to).execute(stream_, from, to);
    }
    stream_.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("dnnl backend: from_canonical: ") + e.what());
  }
}

void DnnlExecutor::note_fallback(int i, const std::string& what) {
  if (i < 0) {
    fallbacks_.push_back("a reorder at the net's edge: " + what);
    return;
  }
  const OpDesc& op = net_.ops[i];
  fallbacks_.push_back("op " + std::to_string(i) + " (" + op_kind_name(op.kind) + " " +
                       dims_string(op.in) + " -> " + dims_string(op.out) + "): " + what);
}

std::vector<KernelUse> DnnlExecutor::kernels() const {
  std::vector<KernelUse> all;
  for (const auto& [list, pass] : {std::pair{&forward_steps_, "forward"},
                                   std::pair{&backward_steps_, "backward"},
                                   std::pair{&input_grad_steps_, "input gradient"}})
    for (const Step& s : *list) all.push_back({s.op, pass, s.name, s.impl});
  return all;
}

DnnlMemory DnnlExecutor::memory_held() const {
  DnnlMemory m;
  for (std::size_t b = 0; b < plan_.buffer_bytes.size(); ++b)
    (plan_.buffer_holds_activation[b] ? m.activations : m.gradients) += plan_.buffer_bytes[b];
  if (scratchpad_) m.scratchpad = scratchpad_.get_desc().get_size();
  return m;
}

// exec as this backend's executor, for the functions below that only it answers.
DnnlExecutor& as_dnnl(Executor& exec, const char* caller) {
  auto* dnnl_exec = dynamic_cast<DnnlExecutor*>(&exec);
  if (!dnnl_exec)
    throw Error(std::string(caller) + ": the executor is not the dnnl backend's");
  return *dnnl_exec;
}

}  // namespace

std::unique_ptr<Executor> build_dnnl_executor(const NetDesc& net, const ExecutorOptions& options) {
  dnnl_backend::apply_isa_cap();  // before the first primitive: oneDNN fixes its ISA then
  auto exec = std::make_unique<DnnlExecutor>(net, options);
  KernelChoice& choice = exec->choice();
  choice.forced = !options.conv_kernels.empty();
  for (int i = 0; i < int(net.ops.size()); ++i)
    if (net.ops[i].kind == OpKind::conv) choice.ops.push_back({i, exec->conv_kernels()[i], {}});
  return exec;
}

std::unique_ptr<Executor> make_dnnl_executor(const NetDesc& net, const ExecutorOptions& options) {
  if (options.kernels == ExecutorOptions::Kernels::measured && options.conv_kernels.empty())
    return make_measured_dnnl_executor(net, options);
  return build_dnnl_executor(net, options);
}

std::vector<ConvKernel> dnnl_conv_kernels(Executor& exec) {
  return as_dnnl(exec, "dnnl_conv_kernels").conv_kernels();
}

void set_dnnl_kernel_choice(Executor& exec, KernelChoice choice) {
  as_dnnl(exec, "set_dnnl_kernel_choice").choice() = std::move(choice);
}

KernelChoice dnnl_kernel_choice(Executor& exec) { return as_dnnl(exec, "dnnl_kernel_choice").choice(); }

DnnlPlan dnnl_plan(Executor& exec) { return as_dnnl(exec, "dnnl_plan").plan(); }

std::string format_dnnl_plan(const DnnlPlan& plan) {
  auto mb = [](std::size_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f MB", double(bytes) / 1e6);
    return std::string(text);
  };
  std::string out = "steps: " + std::to_string(plan.forward_steps) + " forward (0-" +
                    std::to_string(plan.forward_steps - 1) + "), " +
                    std::to_string(plan.backward_steps) + " backward, " +
                    std::to_string(plan.input_grad_steps) + " input gradient\n";
  for (const std::string& r : plan.rewrites) out += "rewrite: " + r + "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-36s %12s %6s %6s %7s\n", "memory", "bytes", "first", "last",
                "buffer");
  out += line;
  const int end = plan.forward_steps + plan.backward_steps + plan.input_grad_steps;
  for (const DnnlPlanRow& r : plan.rows) {
    const std::string last = r.last >= end ? "end" : std::to_string(r.last);
    char buffer[16] = "none";
    if (r.buffer >= 0) std::snprintf(buffer, sizeof buffer, "B%d", r.buffer);
    std::snprintf(line, sizeof line, "%-36s %12zu %6d %6s %7s\n", r.what.c_str(), r.bytes, r.first,
                  last.c_str(), buffer);
    out += line;
  }
  std::size_t total = 0;
  for (std::size_t b = 0; b < plan.buffer_bytes.size(); ++b) {
    total += plan.buffer_bytes[b];
    std::snprintf(line, sizeof line, "B%zu: %s (%s)\n", b, mb(plan.buffer_bytes[b]).c_str(),
                  plan.buffer_holds_activation[b] ? "an activation's" : "gradients only");
    out += line;
  }
  out += "total: " + mb(total) + " in " + std::to_string(plan.buffer_bytes.size()) +
         " buffers, for " + std::to_string(plan.rows.size()) + " memories\n";
  return out;
}

DnnlMemory dnnl_memory(Executor& exec) { return as_dnnl(exec, "dnnl_memory").memory_held(); }

std::string dnnl_isa() {
  dnnl_backend::apply_isa_cap();
  return dnnl_backend::onednn_isa_name();
}

// oneDNN 2.6's Winograd (jit_wino_4x3) exists for AVX-512 only, for 16-channel blocks; on 7x7
// maps it is no faster than its direct kernels (the rule's bound; a measured choice times it).
bool onednn_winograd_fits(const OpDesc& op, bool any_size) {
  dnnl_backend::apply_isa_cap();
  return dnnl_backend::onednn_isa_name().starts_with("avx512") && op.kind == OpKind::conv &&
         op.kernel == 3 && op.stride == 1 && op.in.c % 16 == 0 && op.out.c % 16 == 0 &&
         (any_size || op.out.h * op.out.w >= 14 * 14);
}

bool winograd_chosen(const OpDesc& op, const ExecutorOptions& options) {
  return options.winograd == ExecutorOptions::Winograd::onednn && onednn_winograd_fits(op);
}

// F(4x4) is 1.5-2.3x faster than oneDNN's direct AVX2 kernels on every seed layer, 28x28 to 7x7
// (partial tiles included), F(2x2) only 1.2-1.6x (docs/performance.md); winograd_tile 2
// (CAE_WINOGRAD_TILE=2) keeps F(2x2), for comparison.
int own_winograd_tile(const OpDesc&, const ExecutorOptions& options) {
  return options.winograd_tile;
}

// Our Winograd kernel (winograd.h) on 3x3 'same' convs with whole channel blocks: on AVX2,
// where oneDNN 2.6 has none, from 4x4 up (1.5-2.4x its direct kernels, 7x7 maps included); on
// AVX-512 from 14x14 up, where it makes the training step 1.2x and inference 1.3x faster than
// oneDNN's jit_wino_4x3; on 7x7 maps oneDNN's direct AVX-512 kernels are faster there
// (docs/performance.md).
bool own_winograd_chosen(const OpDesc& op, const ExecutorOptions& options) {
  if (options.winograd != ExecutorOptions::Winograd::cae) return false;
  dnnl_backend::apply_isa_cap();
  const bool avx512 = dnnl_backend::onednn_isa_name().starts_with("avx512");
  return own_winograd_fits(op, own_winograd_tile(op, options)) &&
         (avx512 ? op.out.h * op.out.w >= 14 * 14 : op.out.h >= 4 && op.out.w >= 4);
}

bool thin_conv_fits(const OpDesc& op) {
  const bool widen = op.in.c == 1 && op.out.c % 16 == 0;
  const bool narrow = op.out.c == 1 && op.in.c % 16 == 0;
  return op.kind == OpKind::conv && (widen || narrow) && op.stride == 1 &&
         (op.act == Activation::none || op.act == Activation::relu);
}

bool own_winograd_fits(const OpDesc& op, int tile) {
  dnnl_backend::apply_isa_cap();
  const int lanes = dnnl_backend::onednn_isa_name().starts_with("avx512") ? 16 : 8;
  const dnnl_backend::WinogradGeom g{1, op.in.c, op.out.c, op.in.h, op.in.w, false, tile, lanes};
  return op.kind == OpKind::conv && op.kernel == 3 && op.stride == 1 && op.pad_top == 1 &&
         op.pad_left == 1 && op.pad_bottom == 1 && op.pad_right == 1 && op.in.h == op.out.h &&
         op.in.w == op.out.w && (op.act == Activation::none || op.act == Activation::relu) &&
         dnnl_backend::winograd_supported(g);
}

std::vector<StepTime> profile_dnnl_steps(Executor& exec, const float* x, const float* d_output,
                                         int reps, bool backward, bool warm_up) {
  DnnlExecutor& dnnl_exec = as_dnnl(exec, "profile_dnnl_steps");
  if (reps < 1) throw Error("profile_dnnl_steps: reps must be at least 1");
  std::vector<StepTime> acc;
  if (warm_up) {
    dnnl_exec.profile(x, d_output, acc, backward);  // not counted
    for (StepTime& t : acc) t.ms = 0;
  }
  for (int r = 0; r < reps; ++r) dnnl_exec.profile(x, d_output, acc, backward);
  for (StepTime& t : acc) t.ms /= reps;
  return acc;
}

}  // namespace cae::ops
