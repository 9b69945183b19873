#include "ops/dnnl/onednn_isa.h"

#include <mutex>

#include "cae/error.h"
#include "core/isa.h"
#include "ops/ops.h"

namespace cae::ops::dnnl_backend {
namespace {

// oneDNN's tiers ordered as ours: its avx512_* and amx variants are our avx512; avx2 and
// avx2_vnni our avx2; sse41 and avx our baseline.
Isa tier_of(dnnl::cpu_isa isa) {
  using dnnl::cpu_isa;
  switch (isa) {
    case cpu_isa::sse41:
    case cpu_isa::avx: return Isa::baseline;
    case cpu_isa::avx2:
    case cpu_isa::avx2_vnni: return Isa::avx2;
    default: return Isa::avx512;
  }
}

}  // namespace

void apply_isa_cap() {
  static std::once_flag once;
  static std::string error;
  const IsaCap& cap = isa_cap_in_force();  // fixes the cap; throws for a bad one, on every call
  std::call_once(once, [&cap] {
    if (!cap.onednn || cap.isa == Isa::avx512) return;
    const dnnl::cpu_isa want = cap.isa == Isa::avx2 ? dnnl::cpu_isa::avx2 : dnnl::cpu_isa::sse41;
    if (dnnl::set_max_cpu_isa(want) != dnnl::status::success)
      error = cap.source + ": oneDNN refused the cap (it had already chosen its instruction set)";
    else if (tier_of(dnnl::get_effective_cpu_isa()) > cap.isa)
      error = cap.source + ": oneDNN still runs " + onednn_isa_name();
  });
  if (!error.empty()) throw Error(error);
}

std::string onednn_isa_name() {
  using dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case cpu_isa::sse41: return "sse41";
    case cpu_isa::avx: return "avx";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx2_vnni: return "avx2_vnni";
    case cpu_isa::avx512_core: return "avx512_core";
    case cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

}  // namespace cae::ops::dnnl_backend

namespace cae::ops {

std::string bf16_unavailable_reason() {
  dnnl_backend::apply_isa_cap();
  using dnnl::cpu_isa;
  const cpu_isa isa = dnnl::get_effective_cpu_isa();
  if (isa == cpu_isa::avx512_core_bf16 || isa == cpu_isa::avx512_core_amx) return "";
  return "bf16 needs a CPU with AVX512_BF16 (oneDNN's avx512_core_bf16 kernels): oneDNN runs " +
         dnnl_backend::onednn_isa_name() + " on this " + cpu_model() + " (cae's tier: " +
         isa_description() + "); use --precision f32";
}

}  // namespace cae::ops

namespace cae::ops::dnnl_backend {

int conv_block_width(const dnnl::engine& engine, int n, int c, int h, int w) {
  using dnnl::memory;
  const memory::dims act{n, c, h, w}, weights{c, c, 3, 3};
  const auto any = [](const memory::dims& d) {
    return memory::desc(d, memory::data_type::f32, memory::format_tag::any);
  };
  const dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::convolution_direct, any(act), any(weights),
                                      any(act), {1, 1}, {1, 1}, {1, 1}),
      engine);
  const auto& b = pd.src_desc().data.format_desc.blocking;
  return b.inner_nblks == 1 && b.inner_idxs[0] == 1 ? int(b.inner_blks[0]) : 0;
}

}  // namespace cae::ops::dnnl_backend
