#include "core/isa.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "cae/error.h"

namespace cae {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Cap {
  Isa isa = Isa::avx512;
  std::string source;  // "" (none), "CAE_MAX_ISA=...", "ONEDNN_MAX_CPU_ISA=..."
  std::string error;   // a bad CAE_MAX_ISA, reported on every use
};

// oneDNN's names (dnnl_cpu_isa_t, as ONEDNN_MAX_CPU_ISA takes them) by the tier they allow.
Isa tier_of_onednn_name(std::string_view name) {
  const std::string n = lower(name);
  if (n.starts_with("avx512") || n.starts_with("amx") || n == "all") return Isa::avx512;
  if (n.starts_with("avx2")) return Isa::avx2;
  return Isa::baseline;  // sse41, avx: below our AVX2 code
}

const Cap& cap() {
  static const Cap value = [] {
    Cap c;
    if (const char* own = std::getenv("CAE_MAX_ISA"); own && *own) {
      c.source = std::string("CAE_MAX_ISA=") + own;
      try {
        c.isa = parse_isa(own, "CAE_MAX_ISA");
      } catch (const Error& e) {
        c.error = e.what();
      }
    } else if (const char* dnnl = std::getenv("ONEDNN_MAX_CPU_ISA"); dnnl && *dnnl) {
      c.source = std::string("ONEDNN_MAX_CPU_ISA=") + dnnl;
      c.isa = tier_of_onednn_name(dnnl);
    }
    return c;
  }();
  if (!value.error.empty()) throw Error(value.error);
  return value;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(std::string_view name, std::string_view what) {
  const std::string n = lower(name);
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (n == isa_name(isa)) return isa;
  throw Error(std::string(what) + ": '" + std::string(name) +
              "' is not an instruction-set tier (expected avx512, avx2 or baseline)");
}

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::baseline;
  }();
  return isa;
}

Isa isa_cap() { return cap().isa; }

bool isa_cap_is_cae_own() { return cap().source.starts_with("CAE_MAX_ISA"); }

Isa cpu_isa() { return std::min(detected_isa(), isa_cap()); }

std::string isa_description() {
  std::string s = std::string(isa_name(cpu_isa())) + " (CPU: " + isa_name(detected_isa());
  if (!cap().source.empty()) s += ", capped by " + cap().source;
  return s + ")";
}

}  // namespace cae
