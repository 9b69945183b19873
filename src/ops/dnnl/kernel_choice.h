// Kernel choice by measurement (ExecutorOptions::Kernels::measured), as cuDNN's cudnnFind*,
// FFTW's wisdom and torch.backends.cudnn.benchmark do it: a rule fixed from one CPU is wrong on
// the next (docs/performance.md has the tables), so the dnnl backend times each conv's
// candidate kernels on the net's own shapes, batch and thread count and keeps the fastest.
//
// How: the executor is built once per candidate rank (every op on its first candidate, then
// every op on its second, ...; an op with fewer candidates keeps its last), each build runs
// forward (and backward, for training) a few times with every step timed on its own, and each op
// takes the candidate under which its own steps (its reorders included) were quickest. The
// combination is timed once more; should it be slower than the best single build (a layout one
// op's choice forces on the next), that build's kernels are kept instead. Choices go to a JSON
// cache keyed by CPU model, ISA tier, threads, batch, pass and op geometry, so a second build of
// the same net measures nothing. A cache that cannot be read, or is not ours, is ignored with one
// warning (core/warn.h) and rewritten.
#pragma once

#include <string>
#include <vector>

#include "ops/ops.h"

namespace cae::ops {

using ConvKernel = ExecutorOptions::ConvKernel;

struct KernelTime {
  ConvKernel kernel = ConvKernel::direct;
  double ms = 0;  // the op's own steps per pass, this candidate's build
};

// How one conv with more than one candidate got its kernel.
struct OpChoice {
  int op = 0;
  ConvKernel kernel = ConvKernel::direct;  // what it runs
  std::vector<KernelTime> times;           // each candidate's time, measured now or cached
  bool cached = false;                     // read from the cache: nothing timed now
};

struct KernelChoice {
  ExecutorOptions::Kernels policy = ExecutorOptions::Kernels::fixed;
  bool forced = false;    // ExecutorOptions::conv_kernels named the kernels: nothing chosen here
  std::string cache;      // the cache file; empty: none
  std::string machine;    // the part of each cache key that names the machine and the pass
  std::vector<OpChoice> ops;
  double measuring_ms = 0;  // the builds and timed passes of this choice; 0 when all cached
  std::vector<std::string> notes;  // a cache ignored, a combination that lost to one build, ...
};

// The candidates for op i of net, a conv (empty for another op), the rule's kernel (`rule`)
// first: direct always; thin for 1 -> 16k and 16k -> 1 stride-1 convs; our Winograd F(4x4) and
// F(2x2) and oneDNN's where they fit (own_winograd_fits, onednn_winograd_fits without the size
// bound); oneDNN's bf16 kernel when options.precision is bf16. options.winograd off drops every
// Winograd, onednn drops ours; thin_convs false drops thin.
std::vector<ConvKernel> conv_candidates(const NetDesc& net, int i, const ExecutorOptions& options,
                                        ConvKernel rule);

// The executor of options.kernels measured: see above. Requires options.conv_kernels empty.
std::unique_ptr<Executor> make_measured_dnnl_executor(const NetDesc& net,
                                                      const ExecutorOptions& options);

// Requires exec from make_dnnl_executor (throws cae::Error otherwise). How its kernels were
// chosen; for the fixed policy, the rule's kernel per conv and no times.
KernelChoice dnnl_kernel_choice(Executor& exec);

// One line for logs: "measured in 412 ms: op 0 thin, op 2 winograd2, ..." ("fixed rules: ...",
// "from the cache: ...").
std::string kernel_choice_line(const KernelChoice& choice);

// For `cae info --kernels`: one line per conv with its candidates' times, the chosen one marked.
std::string format_kernel_choice(const KernelChoice& choice, const NetDesc& net);

// Between the executor (dnnl_executor.cpp) and the tuner: a build that ignores
// options.kernels, what each op of it runs (ConvKernel::rule for other ops), and the record the
// tuner leaves on the executor it returns.
std::unique_ptr<Executor> build_dnnl_executor(const NetDesc& net, const ExecutorOptions& options);
std::vector<ConvKernel> dnnl_conv_kernels(Executor& exec);
void set_dnnl_kernel_choice(Executor& exec, KernelChoice choice);

}  // namespace cae::ops
