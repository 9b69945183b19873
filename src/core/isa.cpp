#include "core/isa.h"

#include <algorithm>
#include <cctype>
#include <cpuid.h>

#include <cstdlib>
#include <cstring>

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

std::string cpu_model() {
  static const std::string model = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    std::string brand;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
      char text[49] = {};
      for (unsigned leaf = 0; leaf < 3; ++leaf) {
        __get_cpuid(0x80000002u + leaf, &a, &b, &c, &d);
        const unsigned regs[4] = {a, b, c, d};
        std::memcpy(text + 16 * leaf, regs, 16);
      }
      brand = text;
      while (!brand.empty() && brand.back() == ' ') brand.pop_back();
      brand.erase(0, brand.find_first_not_of(' '));
    }
    if (brand.empty()) brand = "unknown CPU";
    if (!__get_cpuid(1, &a, &b, &c, &d)) return brand;
    // CPUID leaf 1's signature: the extended family adds to a base family of 15, the extended
    // model goes above the base model on families 6 and 15 and later.
    const unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    const unsigned family = base_family == 15 ? base_family + ((a >> 20) & 0xff) : base_family;
    const unsigned model =
        base_family >= 6 ? base_model | (((a >> 16) & 0xf) << 4) : base_model;
    return brand + " (family " + std::to_string(family) + ", model " + std::to_string(model) +
           ", stepping " + std::to_string(a & 0xf) + ")";
  }();
  return model;
}

}  // namespace cae
