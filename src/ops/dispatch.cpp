#include "ops/ops.h"

#include "cae/error.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/ref/ref_executor.h"
#ifdef CAE_HAVE_CUDA
#include "ops/cuda/cuda_executor.h"
#endif

namespace cae::ops {

std::vector<std::vector<int>> NetDesc::join_readers() const {
  std::vector<std::vector<int>> readers(ops.size() + 1);
  for (int i = 0; i < int(ops.size()); ++i)
    if (is_join(ops[i].kind) && ops[i].other >= OpDesc::kNetInput && ops[i].other < int(ops.size()))
      readers[ops[i].other + 1].push_back(i);
  return readers;
}

std::size_t ParamInfo::size() const {
  std::size_t n = 1;
  for (int d : shape) n *= std::size_t(d);
  return n;
}

std::vector<ParamInfo> param_infos(const NetDesc& net) {
  std::vector<ParamInfo> infos;
  for (int i = 0; i < int(net.ops.size()); ++i) {
    const OpDesc& op = net.ops[i];
    switch (op_info(op.kind).weights) {
      case Weights::none: continue;
      case Weights::oihw:
        infos.push_back({i, "weight", {op.out.c, op.in.c, op.kernel, op.kernel}});
        break;
      case Weights::iohw:
        infos.push_back({i, "weight", {op.in.c, op.out.c, op.kernel, op.kernel}});
        break;
      case Weights::norm:
        for (const char* name : {"weight", "bias", "running_mean", "running_var"})
          infos.push_back({i, name, {op.out.c}});
        continue;
    }
    if (op.bias) infos.push_back({i, "bias", {op.out.c}});
  }
  return infos;
}

// The CPU backends have no fused step: the caller runs the step's pieces itself.
bool Executor::fused_begin(const FusedStepConfig&, std::span<const float>, std::span<const float>,
                           std::int64_t) {
  return false;
}

double Executor::fused_step(const float*, const float*, const NoiseKey&) {
  throw Error("fused_step: the backend has no fused training step (fused_begin returned false)");
}

double Executor::fused_end(std::span<float>, std::span<float>) {
  throw Error("fused_end: the backend has no fused training step (fused_begin returned false)");
}

std::unique_ptr<Executor> make_executor(Backend backend, const NetDesc& net,
                                        const ExecutorOptions& options) {
  // The op table's backend columns are the one statement of what runs where: an op a backend
  // has no kernel for is refused here, by name, before the backend sees it.
  for (int i = 0; i < int(net.ops.size()); ++i)
    if (!op_info(net.ops[i].kind).runs_on(backend))
      throw Error(std::string(backend_name(backend)) + " backend: op " + std::to_string(i) +
                  " (" + op_kind_name(net.ops[i].kind) + ") has no kernel on this backend");
  if (const std::string why = precision_unavailable_reason(backend, options.precision);
      !why.empty())
    throw Error(why);
  switch (backend) {
    case Backend::ref:
      return make_ref_executor(net);
    case Backend::dnnl:
      return make_dnnl_executor(net, options);
    case Backend::cuda:
#ifdef CAE_HAVE_CUDA
      return make_cuda_executor(net, options);
#else
      throw Error("cuda backend: " + backend_unavailable_reason(backend));
#endif
  }
  throw Error("unknown backend");
}

const char* conv_kernel_name(ExecutorOptions::ConvKernel kernel) {
  using C = ExecutorOptions::ConvKernel;
  switch (kernel) {
    case C::rule: return "rule";
    case C::direct: return "direct";
    case C::onednn_winograd: return "onednn-winograd";
    case C::winograd4: return "winograd4";
    case C::winograd2: return "winograd2";
    case C::thin: return "thin";
    case C::onednn_bf16: return "onednn-bf16";
  }
  return "unknown";
}

ExecutorOptions::ConvKernel parse_conv_kernel(const std::string& word) {
  using C = ExecutorOptions::ConvKernel;
  for (C kernel : {C::rule, C::direct, C::onednn_winograd, C::winograd4, C::winograd2, C::thin,
                   C::onednn_bf16})
    if (word == conv_kernel_name(kernel)) return kernel;
  throw Error("unknown conv kernel '" + word +
              "' (expected rule, direct, onednn-winograd, winograd4, winograd2, thin or "
              "onednn-bf16)");
}

const char* precision_name(ExecutorOptions::Precision precision) {
  return precision == ExecutorOptions::Precision::bf16 ? "bf16" : "f32";
}

ExecutorOptions::Precision parse_precision(const std::string& word, const std::string& what) {
  using P = ExecutorOptions::Precision;
  for (P p : {P::f32, P::bf16})
    if (word == precision_name(p)) return p;
  throw Error(what + " '" + word + "': expected f32 or bf16");
}

std::string precision_unavailable_reason(Backend backend, ExecutorOptions::Precision precision) {
  if (precision == ExecutorOptions::Precision::f32) return "";
  if (backend != Backend::dnnl)
    return std::string(backend_name(backend)) +
           " backend: bf16 runs on the CPU's dnnl backend only (precision f32 here)";
  return bf16_unavailable_reason();
}

std::string backend_unavailable_reason(Backend backend) {
  if (backend != Backend::cuda) return "";
#ifdef CAE_HAVE_CUDA
  return cuda_unavailable_reason();
#else
  return "built without CUDA (configure with a CUDA toolkit and cuDNN found, -DCAE_CUDA=ON)";
#endif
}

Backend parse_backend(const std::string& name) {
  if (name == "ref") return Backend::ref;
  if (name == "dnnl") return Backend::dnnl;
  if (name == "cuda") return Backend::cuda;
  throw Error("unknown backend '" + name + "' (expected 'ref', 'dnnl' or 'cuda')");
}

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::ref: return "ref";
    case Backend::dnnl: return "dnnl";
    case Backend::cuda: return "cuda";
  }
  return "unknown";
}

}  // namespace cae::ops
