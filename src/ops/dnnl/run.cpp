// Running the prebuilt steps: forward, backward, profiling, activations and parameters in and out.
#include "ops/dnnl/executor_impl.h"

#include <immintrin.h>
#include <omp.h>
#include <chrono>

namespace cae::ops::dnnl_exec {

namespace {

// Each thread's MXCSR before a FlushDenormals.
thread_local unsigned saved_csr = 0;

// Flush-to-zero and denormals-are-zero (MXCSR bits 15 and 6) on every thread of the team the
// steps run on, for one forward, backward or profile, then each thread's own setting back. The
// bf16 kernels' own instructions treat denormals so; the f32 ops around them (ReLU backward,
// reorders, the resize's sums) met denormal gradients in bf16 training and ran each small step
// 10-30x slower. Set once per pass, not per run() of a few steps: its two parallel regions stay
// out of the per-step times the tuner compares and out of each op's gradient announcement.
class FlushDenormals {
 public:
  explicit FlushDenormals(bool on) : on_(on) {
    if (!on_) return;
#pragma omp parallel
    {
      saved_csr = _mm_getcsr();
      _mm_setcsr(saved_csr | kBits);
    }
  }
  ~FlushDenormals() {
    if (!on_) return;
#pragma omp parallel
    _mm_setcsr(saved_csr);
  }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  static constexpr unsigned kBits = 0x8040;
  bool on_;
};

}  // namespace

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
  const FlushDenormals flush(flushes_denormals());
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
  const FlushDenormals flush(flushes_denormals());
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
  const FlushDenormals flush(flushes_denormals());
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

}  // namespace cae::ops::dnnl_exec

namespace cae::ops {

using dnnl_exec::as_dnnl;
using dnnl_exec::DnnlExecutor;

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
