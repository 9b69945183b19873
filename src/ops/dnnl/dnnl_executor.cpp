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
#include "ops/dnnl/executor_impl.h"

#include <string>

#include "ops/net_check.h"

namespace cae::ops::dnnl_exec {

namespace {

using Alg = dnnl::algorithm;
using E = DnnlExecutor;

// One entry per op kind, in OpKind order (checked below).
constexpr DnnlOp kOps[] = {
    {OpKind::conv, &E::build_any_conv},
    {OpKind::tconv, &E::build_tconv},
    {OpKind::maxpool, &E::build_pool},
    {OpKind::resize, &E::build_resize},
    {OpKind::relu, &E::build_eltwise, Alg::eltwise_relu, Alg::eltwise_relu_use_dst_for_bwd},
    {OpKind::sigmoid, &E::build_eltwise, Alg::eltwise_logistic,
     Alg::eltwise_logistic_use_dst_for_bwd},
    {OpKind::concat, &E::build_join},
    {OpKind::add, &E::build_join},
    {OpKind::sub, &E::build_join},
    {OpKind::batchnorm, &E::build_batchnorm},
#ifdef CAE_TOY_OP
    {OpKind::toy, &E::build_eltwise, Alg::eltwise_tanh, Alg::eltwise_tanh_use_dst_for_bwd},
#endif
};
static_assert(one_per_op_kind(kOps), "the dnnl backend needs one entry per OpKind, in order");

}  // namespace

const DnnlOp& dnnl_op(OpKind kind) {
  if (std::size_t(kind) >= kOpKinds)
    throw Error("dnnl backend: no entry for op kind " + std::to_string(int(kind)));
  return kOps[std::size_t(kind)];
}

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
      (this->*dnnl_op(op.kind).build)(i);
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
    if (op_info(op.kind).convolution)
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

DnnlExecutor& as_dnnl(Executor& exec, const char* caller) {
  auto* dnnl_exec = dynamic_cast<DnnlExecutor*>(&exec);
  if (!dnnl_exec)
    throw Error(std::string(caller) + ": the executor is not the dnnl backend's");
  return *dnnl_exec;
}

}  // namespace cae::ops::dnnl_exec

namespace cae::ops {

using dnnl_exec::as_dnnl;
using dnnl_exec::DnnlExecutor;

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

DnnlMemory dnnl_memory(Executor& exec) { return as_dnnl(exec, "dnnl_memory").memory_held(); }

}  // namespace cae::ops
