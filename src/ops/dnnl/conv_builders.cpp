// oneDNN's convolution and deconvolution for an op, and which conv kernel op i is built on.
#include "ops/dnnl/executor_impl.h"

namespace cae::ops::dnnl_exec {

void DnnlExecutor::build_any_conv(int i) {
  using C = ExecutorOptions::ConvKernel;
  const OpDesc& op = net_.ops[i];
  const C asked = i < int(options_.conv_kernels.size()) ? options_.conv_kernels[i] : C::rule;
  const bool bf16 = options_.precision == ExecutorOptions::Precision::bf16;
  switch (asked) {
    case C::rule:
      if (bf16) {
        build_conv<ConvKinds>(i, false, true);
        if (conv_ran_[i] == C::rule) conv_ran_[i] = C::onednn_bf16;
      } else if (build_thin_conv(i, false)) {
        conv_ran_[i] = C::thin;
      } else if (build_own_winograd(i, 0)) {
        conv_ran_[i] = own_winograd_tile(op, options_) == 2 ? C::winograd2 : C::winograd4;
      } else {
        const bool winograd = winograd_chosen(op, options_);
        build_conv<ConvKinds>(i, winograd, false);
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
      build_conv<ConvKinds>(i, true, false);
      if (conv_ran_[i] == C::rule) conv_ran_[i] = C::onednn_winograd;
      return;
    case C::onednn_bf16:
      if (!bf16) {
        note_fallback(i, "asked for onednn-bf16 with precision f32: direct");
        break;
      }
      build_conv<ConvKinds>(i, false, true);
      if (conv_ran_[i] == C::rule) conv_ran_[i] = C::onednn_bf16;
      return;
    case C::direct:
      break;
  }
  build_conv<ConvKinds>(i, false, false);
  conv_ran_[i] = C::direct;
}

template <class Kinds>
void DnnlExecutor::build_conv(int i, bool winograd, bool bf16) {
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
  // The type the conv computes in (ExecutorOptions::precision): with bf16 its input, weights and
  // output gradient are rounded into bf16 copies by reorders, and it writes f32 outputs, input
  // gradients and weight gradients, so that every other op, the params and grads() stay f32.
  memory::data_type dt = bf16 ? memory::data_type::bf16 : f32;

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
                                          any_md(w_dims, dt), bias_md, dst, strides, pad_l, pad_r)
                     : typename Fwd::desc(dnnl::prop_kind::forward_training, alg, src,
                                          any_md(w_dims, dt), dst, strides, pad_l, pad_r);
    return typename Fwd::primitive_desc(d, fwd_attr, engine_);
  };
  // Op 0 reads x, whose layout is ours to choose; later ops take their input as it lies (in
  // bf16 it is copied anyway, into the layout the conv likes).
  if (dt != f32 && is_ref(make_fwd(any_md(src_dims, dt), any_md(dst_dims)))) {
    note_fallback(i, "no bf16 JIT kernel for its shape: f32");
    dt = f32;
    if (op.kind == OpKind::conv) conv_ran_[i] = ExecutorOptions::ConvKernel::direct;
  }
  const Md first_src = i == 0 || dt != f32 ? any_md(src_dims, dt) : have.get_desc();
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
  // Weight gradients go straight into grads() in the params' layout when oneDNN has a fast
  // kernel for it (it does for conv); deconvolution wants its own and is reordered after.
  auto make_bwd_w_from = [&](const Md& bwd_src, const Md& dw, const Md& bwd_d_dst) {
    auto d = op.bias ? typename BwdWeights::desc(alg, bwd_src, dw, bias_md, bwd_d_dst, strides,
                                                 pad_l, pad_r)
                     : typename BwdWeights::desc(alg, bwd_src, dw, bwd_d_dst, strides, pad_l,
                                                 pad_r);
    return typename BwdWeights::primitive_desc(d, attr_, engine_, fwd);
  };
  // The output gradient as the gradient kernels read it: d(dst) itself in f32, else a bf16 copy
  // in its layout, made once for both (backward data runs after backward weights).
  const Md bwd_dst_md = with_type(fwd.dst_desc(), dt);
  auto make_bwd_w = [&](const Md& dw) { return make_bwd_w_from(fwd.src_desc(), dw, bwd_dst_md); };
  // The params take the forward's weight layout. In bf16 that layout pads and pairs input
  // channels, which oneDNN's f32 weight gradient does not write: there they take the layout the
  // weight gradient is written in (f32), and a reorder before each forward rounds them into the
  // bf16 copy it reads.
  const Md param_md =
      dt == f32 ? fwd.weights_desc() : make_bwd_w(any_md(w_dims)).diff_weights_desc();
  // Copies: the slot's reference dies with the next add_param.
  const ParamSlot& w_slot = add_param(param_md, Md(w_dims, f32, is_tconv ? Tag::iohw : Tag::oihw));
  const memory w_param = w_slot.param, d_weights = w_slot.grad;
  const memory weights = converted_input(w_param, fwd.weights_desc(), fsteps, i);
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

  auto bwd_w = with_fallback(make_bwd_w, param_md, "backward weights");
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
  memory bwd_src = src;
  memory bwd_d_dst = converted_input(d_dst, bwd_dst_md, bsteps, i);
  const memory d_dst_for_data = bwd_d_dst;
  if (i == 0 && is_ref(bwd_w) && alg == Kinds::alg) {
    const Md src_nhwc(src_dims, dt, Tag::nhwc), dst_nhwc(dst_dims, dt, Tag::nhwc);
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
    typename BwdData::desc d(alg, diff_src, any_md(w_dims, dt), bwd_dst_md, strides, pad_l, pad_r);
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
  const memory bwd_weights = converted_input(w_param, bwd_d.weights_desc(), dsteps, i);
  Step dsrc_reorder;
  const memory d_src =
      converted_output(target, bwd_d.diff_src_desc(), dsrc_reorder, i, diff_scratch_is_view(i));
  dsteps.push_back(primitive_step(
      i, "backward data", typename BwdData::primitive(bwd_d), bwd_d,
      {{DNNL_ARG_DIFF_DST, d_dst_for_data},
       {DNNL_ARG_WEIGHTS, bwd_weights},
       {DNNL_ARG_DIFF_SRC, d_src}}));
  if (dsrc_reorder.prim) dsteps.push_back(std::move(dsrc_reorder));
}

void DnnlExecutor::build_tconv(int i) {
  build_conv<DeconvKinds>(i, false, options_.precision == ExecutorOptions::Precision::bf16);
}

}  // namespace cae::ops::dnnl_exec
