// The builders of every op but the convolutions: pooling, element-wise, batch norm, resize, joins.
#include "ops/dnnl/executor_impl.h"

namespace cae::ops::dnnl_exec {

std::pair<dnnl::algorithm, dnnl::algorithm> eltwise_algorithms(Activation act) {
  if (act == Activation::none) return {dnnl::algorithm::undef, dnnl::algorithm::undef};
  const DnnlOp& entry = dnnl_op(activation_info(act).op);
  return {entry.eltwise_forward, entry.eltwise_backward};
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
    rewrite[i] = op_info(op.kind).convolution &&
                 op.act == Activation::relu && net.ops[i + 1].kind == OpKind::maxpool &&
                 readers[i + 1].empty();
  }
  return rewrite;
}

void DnnlExecutor::build_pool(int i) {
  if (options_.own_maxpool && build_own_pool(i)) return;
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

// Our kernel (pool_kernel.h) on the input's own layout: the output takes that layout, backward
// writes d(input) in the layout of whatever receives it, and a ReLU left to this pool
// (relu_by_pool_) is applied within it. False, with nothing built, where the geometry or a
// layout is outside the kernel's family.
bool DnnlExecutor::build_own_pool(int i) {
  const OpDesc& op = net_.ops[i];
  const memory have = input_of(i);  // copies: act_ and dact_ grow below
  const memory target = diff_input_of(i);
  const auto src_view = blocked_view(have.get_desc());
  const auto target_view = blocked_view(target.get_desc());
  if (!src_view || !target_view || target_view->cb != src_view->cb ||
      target_view->ci != src_view->ci ||
      !dnnl_backend::pool_kernel_fits(op.kernel, op.stride, op.pad_top, op.pad_left, op.in.h,
                                      op.in.w, op.out.h, op.out.w)) {
    note_fallback(i, "max-pool: geometry or layout outside cae's kernel; oneDNN's pooling");
    return false;
  }
  const bool relu = i > 0 && relu_by_pool_[i - 1];
  const Md dst_md = same_layout(have.get_desc(), {net_.batch, op.out.c, op.out.h, op.out.w});
  const memory dst = new_activation(i, dst_md);
  const auto dst_view = *blocked_view(dst_md);
  const PoolPlan& fwd_plan = pool_plans_.emplace_back(dnnl_backend::make_pool_plan(
      *src_view, dst_view, op.kernel, op.stride, op.pad_top, op.pad_left, relu));
  const PoolPlan& bwd_plan = pool_plans_.emplace_back(dnnl_backend::make_pool_plan(
      *target_view, dst_view, op.kernel, op.stride, op.pad_top, op.pad_left, relu));
  const memory positions = new_memory(
      Md({memory::dim(dnnl_backend::pool_positions_bytes(fwd_plan))}, memory::data_type::u8,
         Tag::x));
  const std::string impl = std::string("cae:maxpool:") + isa_name(fwd_plan.isa);
  Step fwd;
  fwd.op = i;
  fwd.name = "forward";
  fwd.impl = impl;
  fwd.kernel = [&fwd_plan, have, dst, positions] {
    dnnl_backend::maxpool_forward(fwd_plan, static_cast<const float*>(have.get_data_handle()),
                                  static_cast<float*>(dst.get_data_handle()),
                                  static_cast<std::uint8_t*>(positions.get_data_handle()));
  };
  fwd.mems = {have, dst, positions};
  op_fwd_[i].push_back(std::move(fwd));

  const memory d_dst = make_diff(i, dst_md, false);
  dact_.push_back(d_dst);
  Step bwd;
  bwd.op = i;
  bwd.name = relu ? "backward, the ReLU of the conv before folded in" : "backward";
  bwd.impl = impl;
  bwd.kernel = [&bwd_plan, d_dst, positions, target] {
    dnnl_backend::maxpool_backward(
        bwd_plan, static_cast<const float*>(d_dst.get_data_handle()),
        static_cast<const std::uint8_t*>(positions.get_data_handle()),
        static_cast<float*>(target.get_data_handle()));
  };
  bwd.mems = {d_dst, positions, target};
  data_grad_steps(i).push_back(std::move(bwd));
  return true;
}

void DnnlExecutor::build_eltwise(int i) {
  const OpDesc& op = net_.ops[i];
  const memory have = input_of(i);  // a copy: act_ grows below
  const Md md = have.get_desc();
  // The *_use_dst_for_bwd forms let backward read the saved output; no copy of the input kept.
  const dnnl::algorithm alg = dnnl_op(op.kind).eltwise_backward;
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
  const OpInfo& info = op_info(op.kind);
  if (info.join == Join::concat) {
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
  const float sign = info.join_sign;  // Join::sum: sign * x + y
  const ConcatPlan* plan = nullptr;
  if (info.join == Join::concat)
    plan = &concat_plans_.emplace_back(ConcatPlan{
        *blocked_view(xs.get_desc()), *blocked_view(ys.get_desc()), *blocked_view(z_md)});
  const char* impl = info.join == Join::concat ? "cae:concat" : "cae:add";
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

}  // namespace cae::ops::dnnl_exec
