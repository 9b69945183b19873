#include "ops/ops.h"

#include "cae/error.h"
#include "ops/dnnl/dnnl_executor.h"
#include "ops/ref/ref_executor.h"

namespace cae::ops {

const char* op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::conv: return "conv";
    case OpKind::tconv: return "tconv";
    case OpKind::maxpool: return "maxpool";
    case OpKind::resize: return "resize";
    case OpKind::relu: return "relu";
    case OpKind::sigmoid: return "sigmoid";
  }
  return "unknown";
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
    if (op.kind == OpKind::conv) {
      infos.push_back({i, "weight", {op.out.c, op.in.c, op.kernel, op.kernel}});
    } else if (op.kind == OpKind::tconv) {
      infos.push_back({i, "weight", {op.in.c, op.out.c, op.kernel, op.kernel}});
    } else {
      continue;
    }
    if (op.bias) infos.push_back({i, "bias", {op.out.c}});
  }
  return infos;
}

std::unique_ptr<Executor> make_executor(Backend backend, const NetDesc& net) {
  switch (backend) {
    case Backend::ref:
      return make_ref_executor(net);
    case Backend::dnnl:
      return make_dnnl_executor(net);
  }
  throw Error("unknown backend");
}

Backend parse_backend(const std::string& name) {
  if (name == "ref") return Backend::ref;
  if (name == "dnnl") return Backend::dnnl;
  throw Error("unknown backend '" + name + "' (expected 'ref' or 'dnnl')");
}

const char* backend_name(Backend backend) { return backend == Backend::ref ? "ref" : "dnnl"; }

}  // namespace cae::ops
