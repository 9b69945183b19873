#include "environment.h"

#include <cctype>
#include <cstdlib>
#include <string_view>

#include "cae/error.h"

namespace cae {
namespace {

// The variable's value, or null when it is unset or empty.
const char* variable(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// oneDNN's names (dnnl_cpu_isa_t, as ONEDNN_MAX_CPU_ISA takes them) by the tier they allow.
Isa tier_of_onednn_name(std::string_view name) {
  std::string n(name);
  for (char& c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (n.starts_with("avx512") || n.starts_with("amx") || n == "all") return Isa::avx512;
  if (n.starts_with("avx2")) return Isa::avx2;
  return Isa::baseline;  // sse41, avx: below our AVX2 code
}

}  // namespace

IsaCap isa_cap_from_environment() {
  IsaCap cap;
  if (const char* own = variable("CAE_MAX_ISA")) {
    cap.source = std::string("CAE_MAX_ISA=") + own;
    cap.onednn = true;
    try {
      cap.isa = parse_isa(own, "CAE_MAX_ISA");
    } catch (const Error& e) {
      cap.error = e.what();
    }
  } else if (const char* dnnl = variable("ONEDNN_MAX_CPU_ISA")) {
    cap.source = std::string("ONEDNN_MAX_CPU_ISA=") + dnnl;
    cap.isa = tier_of_onednn_name(dnnl);
  }
  return cap;
}

void apply_isa_cap_from_environment() { set_isa_cap(isa_cap_from_environment()); }

}  // namespace cae
