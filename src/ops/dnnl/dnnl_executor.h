// The oneDNN backend: primitives built once per net, layouts chosen by oneDNN (format_tag::any)
// and kept between ops; reorders only at the edges. The only folder that includes dnnl.hpp.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace cae::ops {

// Requires nothing. Ensures an executor whose primitives and buffers are all built for net.batch,
// with the kernels and plan that options chooses (its winograd, winograd_tile, thin_convs and
// share_buffers), or throws cae::Error naming the op (index, kind, shapes) that check_net_desc or
// oneDNN rejected, or the option out of range.
std::unique_ptr<Executor> make_dnnl_executor(const NetDesc& net,
                                             const ExecutorOptions& options = {});

// The memory plan, derived from the built steps: one row per planned memory (activations,
// gradients of activations, skip gradients), its bytes, the first and last step (indices into
// forward, then backward, then input-gradient steps, as Executor::kernels() lists them) that
// read or write it, and the buffer it shares with memories whose spans do not overlap.
struct DnnlPlanRow {
  std::string what;  // "act 3", "d act 2", "d act 1 from op 9 (skip)", ...
  std::size_t bytes = 0;
  int first = -1, last = -1;  // last == total steps: kept to the end (output())
  int buffer = -1;            // -1: no step touches it
};
struct DnnlPlan {
  std::vector<DnnlPlanRow> rows;
  std::vector<std::size_t> buffer_bytes;
  std::vector<bool> buffer_holds_activation;
  int forward_steps = 0, backward_steps = 0, input_grad_steps = 0;
  std::vector<std::string> rewrites;  // applied before the build (the ReLU-by-pool fusion)
};

// Requires exec from make_dnnl_executor; throws cae::Error for another backend.
DnnlPlan dnnl_plan(Executor& exec);
// The plan as a table, for `cae info --plan`.
std::string format_dnnl_plan(const DnnlPlan& plan);

// The bytes an executor of this backend holds besides parameters and gradients of parameters.
struct DnnlMemory {
  std::size_t activations = 0;  // the plan's buffers that hold an activation
  std::size_t gradients = 0;    // the plan's buffers that hold gradients only
  std::size_t scratchpad = 0;   // oneDNN's shared scratchpad
};

// Requires exec from make_dnnl_executor; throws cae::Error for another backend.
DnnlMemory dnnl_memory(Executor& exec);

// oneDNN's instruction set in this process after the process's cap (core/isa.h, CAE_MAX_ISA):
// "avx512_core", "avx2", ...
std::string dnnl_isa();

// Which Winograd kernels the executor uses is ExecutorOptions::winograd's (CAE_WINOGRAD, read at
// the edge by executor_options_from_environment): cae (the default) ours on every tier with AVX2
// (own_winograd_chosen), onednn oneDNN's where it has one (winograd_chosen), off none: every
// layer direct. The last two are for comparison.
//
// Whether oneDNN 2.6 has a Winograd kernel for op: 3x3, stride 1, channels in 16-blocks on both
// sides, output at least 14x14, on an AVX-512 tier. Winograd rounds differently from the direct
// sum: within 1e-4 of it per layer.
// any_size drops the size bound (the measured choice times oneDNN's Winograd on every size).
bool onednn_winograd_fits(const OpDesc& op, bool any_size = false);

// Whether an executor built with options asks oneDNN for a Winograd convolution on op:
// options.winograd == onednn and onednn_winograd_fits (it falls back to direct where oneDNN has
// none for the layout, and says so in Executor::fallbacks()).
bool winograd_chosen(const OpDesc& op, const ExecutorOptions& options);

// Whether the executor runs op on our own Winograd kernel (src/ops/dnnl/winograd.h): a 3x3
// stride-1 'same' conv with channels in whole blocks of the CPU's width (8 on AVX2, 16 on
// AVX-512), no activation or ReLU, output at least 4x4 on AVX2 and 14x14 on AVX-512, and
// options.winograd == cae. Rounding: within 1e-5 of the direct sum per layer.
bool own_winograd_chosen(const OpDesc& op, const ExecutorOptions& options);
// Whether op is in our thin kernels' family (thin_conv.h): 1 -> 16k or 16k -> 1 channels,
// stride 1, no activation or ReLU. The executor also needs the layouts around it to fit.
bool thin_conv_fits(const OpDesc& op);

// Whether our F(tile x tile) Winograd kernel can run op at all (own_winograd_chosen without the
// size bound or the option): what a measured choice may time, on an op after the first.
bool own_winograd_fits(const OpDesc& op, int tile);
// The output tile our Winograd kernel uses on op: options.winograd_tile, 4 (F(4x4, 3x3)) or 2
// (F(2x2, 3x3)).
int own_winograd_tile(const OpDesc& op, const ExecutorOptions& options);

// The time of one step of an executor's prebuilt lists (for bench/, never the hot path).
struct StepTime {
  int op = -1;       // -1: a reorder at the edges
  std::string name;  // "fwd forward", "bwd backward weights", "bwd reorder", ...
  double ms = 0;     // mean per run
  std::string impl;  // oneDNN's implementation of the step, or ours ("cae:...")
};

// Requires exec from make_dnnl_executor, x and d_output of its net's sizes (NCHW). Runs forward
// and, when `backward`, backward (without d_input) reps times after one warm-up (unless not
// `warm_up`), each step timed on its own. Ensures one entry per step in execution order, its
// mean. Throws cae::Error for another backend.
std::vector<StepTime> profile_dnnl_steps(Executor& exec, const float* x, const float* d_output,
                                         int reps, bool backward = true, bool warm_up = true);

// The bare oneDNN primitives of one conv (forward training with its bias and activation fused,
// backward data, backward weights; layouts format_tag::any), as in DESIGN.md §5.
struct BareConvTime {
  double fwd_ms = 0, bwd_data_ms = 0, bwd_weights_ms = 0;  // median of reps
  std::string impl;                                         // oneDNN's forward implementation
};

// Requires op.kind == conv. Ensures the medians of reps timed runs after one warm-up.
BareConvTime time_bare_conv(const OpDesc& op, int batch, int reps);

}  // namespace cae::ops
