// The bare oneDNN primitives of one convolution, timed outside any net: the ceiling the per-layer
// table of bench/ compares the executor's steps against.
#include <algorithm>
#include <chrono>
#include <dnnl.hpp>
#include <functional>
#include <vector>

#include "cae/error.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/dnnl/onednn_isa.h"

namespace cae::ops {
namespace {

using dnnl::memory;
using Md = memory::desc;
constexpr auto f32 = memory::data_type::f32;

Md any_md(const memory::dims& dims) { return Md(dims, f32, memory::format_tag::any); }

memory filled(const Md& md, const dnnl::engine& engine, float value) {
  memory m(md, engine);
  float* p = static_cast<float*>(m.get_data_handle());
  std::fill(p, p + md.get_size() / sizeof(float), value);
  return m;
}

double median_ms(const std::function<void()>& run, int reps) {
  run();  // warm-up: first-touch pages, JIT caches
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

BareConvTime time_bare_conv(const OpDesc& op, int batch, int reps) {
  if (op.kind != OpKind::conv) throw Error("time_bare_conv: op is not a conv");
  if (reps < 1) throw Error("time_bare_conv: reps must be at least 1");
  dnnl_backend::apply_isa_cap();
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    const memory::dims src{batch, op.in.c, op.in.h, op.in.w}, dst{batch, op.out.c, op.out.h,
                                                                  op.out.w};
    const memory::dims w{op.out.c, op.in.c, op.kernel, op.kernel}, b{op.out.c};
    const memory::dims strides{op.stride, op.stride}, pad_l{op.pad_top, op.pad_left},
        pad_r{op.pad_bottom, op.pad_right};
    dnnl::primitive_attr attr;
    if (op.act == Activation::relu) {
      dnnl::post_ops po;
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    const Md bias_md(b, f32, memory::format_tag::x);
    // oneDNN at its best on this op: Winograd where it has one, else direct.
    dnnl::algorithm alg = onednn_winograd_fits(op) ? dnnl::algorithm::convolution_winograd
                                                   : dnnl::algorithm::convolution_direct;
    auto first_of = [&](auto make) {
      try {
        return make(alg);
      } catch (const dnnl::error&) {
        if (alg == dnnl::algorithm::convolution_direct) throw;
        return make(dnnl::algorithm::convolution_direct);
      }
    };
    const auto fwd = first_of([&](dnnl::algorithm a) {
      return dnnl::convolution_forward::primitive_desc(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, a, any_md(src),
                                          any_md(w), bias_md, any_md(dst), strides, pad_l, pad_r),
          attr, engine);
    });
    const auto bwd_d = first_of([&](dnnl::algorithm a) {
      return dnnl::convolution_backward_data::primitive_desc(
          dnnl::convolution_backward_data::desc(a, any_md(src), any_md(w), fwd.dst_desc(), strides,
                                                pad_l, pad_r),
          engine, fwd);
    });
    const auto bwd_w = first_of([&](dnnl::algorithm a) {
      return dnnl::convolution_backward_weights::primitive_desc(
          dnnl::convolution_backward_weights::desc(a, fwd.src_desc(), any_md(w), bias_md,
                                                   fwd.dst_desc(), strides, pad_l, pad_r),
          engine, fwd);
    });
    memory x = filled(fwd.src_desc(), engine, 0.5f), wt = filled(fwd.weights_desc(), engine, 0.01f);
    memory bias = filled(bias_md, engine, 0.f), y = filled(fwd.dst_desc(), engine, 0.f);
    memory dy = filled(fwd.dst_desc(), engine, 0.001f);
    memory wt_d = filled(bwd_d.weights_desc(), engine, 0.01f);
    memory dx = filled(bwd_d.diff_src_desc(), engine, 0.f);
    memory dy_w = filled(bwd_w.diff_dst_desc(), engine, 0.001f);
    memory x_w = filled(bwd_w.src_desc(), engine, 0.5f);
    memory dw = filled(bwd_w.diff_weights_desc(), engine, 0.f), db = filled(bias_md, engine, 0.f);
    dnnl::convolution_forward f(fwd);
    dnnl::convolution_backward_data bd(bwd_d);
    dnnl::convolution_backward_weights bw(bwd_w);
    BareConvTime t;
    t.impl = fwd.impl_info_str();
    t.fwd_ms = median_ms(
        [&] {
          f.execute(stream, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wt}, {DNNL_ARG_BIAS, bias},
                             {DNNL_ARG_DST, y}});
          stream.wait();
        },
        reps);
    t.bwd_data_ms = median_ms(
        [&] {
          bd.execute(stream,
                     {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, wt_d}, {DNNL_ARG_DIFF_SRC, dx}});
          stream.wait();
        },
        reps);
    t.bwd_weights_ms = median_ms(
        [&] {
          bw.execute(stream, {{DNNL_ARG_SRC, x_w}, {DNNL_ARG_DIFF_DST, dy_w},
                              {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_BIAS, db}});
          stream.wait();
        },
        reps);
    return t;
  } catch (const dnnl::error& e) {
    throw Error(std::string("time_bare_conv: ") + e.what());
  }
}

}  // namespace cae::ops
