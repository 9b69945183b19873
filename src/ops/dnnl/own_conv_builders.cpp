// Our own conv kernels as steps of the executor: the thin kernels (thin_conv.h) and Winograd
// (winograd.h), each false when the op or its neighbours' layouts do not fit.
#include "ops/dnnl/executor_impl.h"

namespace cae::ops::dnnl_exec {

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

}  // namespace cae::ops::dnnl_exec
