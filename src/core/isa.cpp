#include "core/isa.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cpuid.h>

#include <cstring>
#include <mutex>

#include "cae/error.h"

namespace cae {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The process's cap: set by set_isa_cap until its first use fixes it, read without the lock after.
std::mutex cap_mutex;
IsaCap cap_value;
std::atomic<bool> cap_fixed{false};

// How a message names a cap.
std::string cap_words(const IsaCap& c) {
  if (!c.error.empty()) return "'" + c.source + "'";
  return c.source.empty() ? std::string("none") : c.source;
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

void set_isa_cap(IsaCap cap) {
  const std::lock_guard lock(cap_mutex);
  // The same effect (the same tier, and oneDNN capped alike: capping it to avx512 caps nothing)
  // keeps the cap as it is, with its source.
  const bool same_onednn = cap.onednn == cap_value.onednn || cap.isa == Isa::avx512;
  if (cap.error == cap_value.error && cap.isa == cap_value.isa && same_onednn) return;
  if (!cap_fixed.load(std::memory_order_acquire)) {
    cap_value = std::move(cap);
    return;
  }
  throw Error("instruction-set cap " + cap_words(cap) + ": the kernels already run under cap " +
              cap_words(cap_value) + ", fixed when the first kernel was chosen; set the cap " +
              "before that (it holds for the whole process)");
}

const IsaCap& isa_cap_in_force() {
  if (!cap_fixed.load(std::memory_order_acquire)) {
    const std::lock_guard lock(cap_mutex);
    cap_fixed.store(true, std::memory_order_release);
  }
  if (!cap_value.error.empty()) throw Error(cap_value.error);
  return cap_value;
}

Isa isa_cap() { return isa_cap_in_force().isa; }

Isa cpu_isa() { return std::min(detected_isa(), isa_cap()); }

std::string isa_description() {
  std::string s = std::string(isa_name(cpu_isa())) + " (CPU: " + isa_name(detected_isa());
  if (const IsaCap& cap = isa_cap_in_force(); !cap.source.empty()) s += ", capped by " + cap.source;
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
