// The vector instruction set cae's own kernels run on, chosen at run time: the best the CPU has,
// capped so that one machine can exercise every tier (tests, bench).
//
// The cap is the process's, like OMP_NUM_THREADS, not a call's: the edge sets it (set_isa_cap)
// before the first kernel runs, and it is fixed from then on. The library reads no variable:
// the cae program, the Python module, the bench programs and the tests' main read CAE_MAX_ISA
// (avx512 | avx2 | baseline), else oneDNN's own ONEDNN_MAX_CPU_ISA (so capping oneDNN alone caps
// ours too), in isa_cap_from_environment() (tools/environment.h). The dnnl backend applies a cap
// that says so to oneDNN as well (dnnl::set_max_cpu_isa), so one switch moves both.
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

// A cap on the tier, as the edge chose it.
struct IsaCap {
  Isa isa = Isa::avx512;  // no kernel runs a tier above this one
  std::string source{};   // where it came from, for logs and messages: "CAE_MAX_ISA=avx2"; "": none
  bool onednn = false;    // cap oneDNN to it too (CAE_MAX_ISA); false where oneDNN caps itself
                          // (ONEDNN_MAX_CPU_ISA, which oneDNN reads) or is left alone
  // Not empty: the cap asked for names no tier (a bad CAE_MAX_ISA). Every use of the tier then
  // throws cae::Error with this message, so that the run fails where a kernel is first chosen
  // and a command that runs none is not stopped by it.
  std::string error{};
  bool operator==(const IsaCap&) const = default;
};

// Requires nothing. Ensures `cap` is the process's cap from the first use of the tier on
// (isa_cap, cpu_isa, isa_description, the dnnl backend's first primitive), which fixes it. A cap
// of the same effect as the one set (its tier, oneDNN capped alike) changes nothing, whenever it
// comes; another replaces it before the first use, and throws cae::Error naming both after it:
// oneDNN cannot be capped once it has chosen its instruction set, and kernels built for one tier
// must not meet layouts of another.
void set_isa_cap(IsaCap cap);

// The cap in force (IsaCap{}, no cap, unless set_isa_cap gave one), fixed by this call. Throws
// cae::Error, on every call, with the cap's error when it has one.
const IsaCap& isa_cap_in_force();

// isa_cap_in_force().isa: Isa::avx512 when no cap was set.
Isa isa_cap();

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
