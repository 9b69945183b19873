// The oneDNN executor's private header: the class and the pieces its files share (steps, parameter
// slots, layout helpers). Included only by the files of src/ops/dnnl/ that build or run it:
//   dnnl_executor.cpp      the constructor (one builder per op kind), small helpers, the public
//                          functions of dnnl_executor.h
//   layouts.cpp            activation layouts: the blocked view, tags, same_layout
//   conv_builders.cpp      oneDNN's convolution and deconvolution (direct or Winograd)
//   own_conv_builders.cpp  our thin and Winograd convolutions (thin_conv.h, winograd.h)
//   op_builders.cpp        pooling, element-wise, batch norm, resize, joins
//   memory_plan.cpp        finish(): the step lists, the memory plan, the parameter buffer
//   run.cpp                forward, backward, profiling, reading and writing parameters
//   kernel_rules.cpp       the fixed rules of which conv kernel runs (kernel_choice.cpp measures)
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dnnl.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "cae/error.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/dnnl/join_kernel.h"
#include "ops/dnnl/kernel_choice.h"
#include "ops/dnnl/onednn_isa.h"
#include "ops/dnnl/pool_kernel.h"
#include "ops/dnnl/resize_kernel.h"
#include "ops/dnnl/thin_conv.h"
#include "ops/dnnl/winograd.h"

namespace cae::ops::dnnl_exec {

using dnnl::memory;
using dnnl_backend::BlockedView;
using dnnl_backend::ConcatPlan;
using dnnl_backend::PoolPlan;
using dnnl_backend::ResizePlan;
using dnnl_backend::ThinConvGeom;
using dnnl_backend::ThinConvPlan;
using dnnl_backend::WinogradGeom;
using dnnl_backend::WinogradPlan;
using Md = memory::desc;
using Tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

Md plain_md(int batch, Dims d);
Md any_md(const memory::dims& dims, memory::data_type dt = f32);

// oneDNN's reference kernels are correct but one or two orders of magnitude slower; the builder
// treats them as "this layout is not supported" and tries another.
bool is_ref(const dnnl::primitive_desc_base& pd);

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

// md with its layout and dims, holding elements of type dt.
Md with_type(Md md, memory::data_type dt);

// The [n][cb][h][w][ci] view of an activation layout, or nothing when it is outside that family.
std::optional<BlockedView> blocked_view(const Md& md);
// nChw<block>c, for the block widths oneDNN uses.
std::optional<Tag> blocked_tag(int block);
// The layout `md` has, for other dims: the output of a resize keeps its input's layout.
Md same_layout(const Md& md, const memory::dims& dims);

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
// output (so no copy of its input is kept), those of kOps' entry for the activation's
// element-wise op; undef for none.
std::pair<dnnl::algorithm, dnnl::algorithm> eltwise_algorithms(Activation act);

// The ReLU-by-pool rewrite, chosen before anything is built: a conv or tconv with a fused ReLU
// whose only reader is the max pool after it leaves its ReLU's gradient to that pool. The pool's
// output is the max of ReLU outputs, so the ReLU passes a gradient at the pool's chosen input
// exactly when the pool's output there is > 0: masking the 4x smaller pooled gradient gives the
// same values, and the conv's own output is no longer read by backward, so gradients may take
// its buffer. A join reading the conv's output too (a skip connection) needs the full masked
// gradient, so there the rewrite does not apply.
std::vector<bool> relu_by_pool_rewrite(const NetDesc& net);

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

  // The builders of kOps (dnnl_executor.cpp), one per op kind: each appends op i's forward and
  // backward steps.
  // Op i, a conv, on the kernel options_.conv_kernels asks for, else by the rules.
  void build_any_conv(int i);
  // oneDNN's convolution (or deconvolution), in its Winograd algorithm when `winograd`, on bf16
  // data when `bf16` (ExecutorOptions::precision; f32 where oneDNN has no JIT kernel for it).
  template <class Kinds>
  void build_conv(int i, bool winograd, bool bf16);
  // Op i, a tconv: oneDNN's deconvolution.
  void build_tconv(int i);
  void build_pool(int i);
  bool build_own_pool(int i);
  void build_eltwise(int i);
  void build_resize(int i);
  void build_join(int i);
  void build_batchnorm(int i);

 private:
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
  // Whether forward, backward and profile run with denormals flushed (bf16: run.cpp).
  bool flushes_denormals() const { return options_.precision == ExecutorOptions::Precision::bf16; }
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
  std::deque<PoolPlan> pool_plans_;      // likewise
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

// The dnnl backend's entry for an op kind: its builder and, for an element-wise op, oneDNN's
// algorithms for it (forward, and the backward that reads the forward's output), which a conv's
// fused activation of that op takes too.
struct DnnlOp {
  OpKind kind;
  void (DnnlExecutor::*build)(int);
  dnnl::algorithm eltwise_forward = dnnl::algorithm::undef;
  dnnl::algorithm eltwise_backward = dnnl::algorithm::undef;
};
// kOps' entry for kind (dnnl_executor.cpp).
const DnnlOp& dnnl_op(OpKind kind);

// exec as this backend's executor, for the functions of dnnl_executor.h that only it answers.
DnnlExecutor& as_dnnl(Executor& exec, const char* caller);

}  // namespace cae::ops::dnnl_exec
