// The vector instruction set cae's own kernels run on, chosen at run time: the best the CPU has,
// capped by the environment so that one machine can exercise every tier (tests, bench).
//
// The cap is read once, on first use, from CAE_MAX_ISA (avx512 | avx2 | baseline), else from
// oneDNN's own ONEDNN_MAX_CPU_ISA (AVX2, AVX512_CORE, ...; so capping oneDNN alone caps ours
// too). The dnnl backend applies CAE_MAX_ISA to oneDNN as well (dnnl::set_max_cpu_isa), so one
// switch moves both. Like OMP_NUM_THREADS, it is a property of the process, not of a call.
#pragma once

#include <string>
#include <string_view>

namespace cae {

// Ordered: a tier can run the code of every tier below it.
enum class Isa {
  baseline = 0,  // the build's x86-64 baseline (SSE2)
  avx2 = 1,      // AVX2 + FMA, 8 float lanes
  avx512 = 2,    // AVX-512 F, VL, DQ, BW (+ FMA), 16 float lanes
};

const char* isa_name(Isa isa);  // "baseline" | "avx2" | "avx512"

// Requires nothing. Returns the tier `name` names (case-insensitive), or throws cae::Error naming
// `what` (the variable or option it came from) and the accepted values.
Isa parse_isa(std::string_view name, std::string_view what);

// The best tier this CPU runs.
Isa detected_isa();

// The cap from the environment (see above); Isa::avx512 when neither variable is set. Throws
// cae::Error, on every call, when CAE_MAX_ISA holds something else than a tier's name.
Isa isa_cap();

// Whether CAE_MAX_ISA (not only ONEDNN_MAX_CPU_ISA) set the cap.
bool isa_cap_is_cae_own();

// min(detected_isa(), isa_cap()): the tier the kernels use.
Isa cpu_isa();

// One line for logs and benches: "avx2 (CPU: avx512, capped by CAE_MAX_ISA=avx2)".
std::string isa_description();

// The CPU by name, from CPUID: its brand string and its family, model and stepping, e.g.
// "AMD EPYC 9R45 (family 26, model 2, stepping 1)". The brand alone does not tell two
// generations apart on some clouds ("AMD EPYC"), the numbers do. Names the CPU beside every
// measured figure and keys the kernel cache (src/ops/dnnl/kernel_choice.h).
std::string cpu_model();

}  // namespace cae
