#include "environment.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "cae/error.h"

namespace cae {
namespace {

// The variable's value, or null when it is unset or empty.
const char* variable(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// The value of one executor variable among its accepted spellings (values[i] gives results[i]);
// unset or empty: fallback. Anything else throws, naming the variable and what it takes.
template <class T, std::size_t N>
T choice(const char* name, const char* const (&values)[N], const T (&results)[N], T fallback) {
  const char* v = variable(name);
  if (!v) return fallback;
  std::string accepted;
  for (std::size_t i = 0; i < N; ++i) {
    if (std::strcmp(v, values[i]) == 0) return results[i];
    if (i) accepted += '|';
    accepted += values[i];
  }
  throw Error(std::string(name) + "='" + v + "': expected " + accepted + " (or unset)");
}

// CAE_KERNEL_CACHE, else $XDG_CACHE_HOME/cae/kernels.json, else $HOME/.cache/cae/kernels.json;
// "none", or no home at all: "" (measure every time, keep nothing).
std::string kernel_cache() {
  if (const char* v = variable("CAE_KERNEL_CACHE")) return std::strcmp(v, "none") == 0 ? "" : v;
  if (const char* xdg = variable("XDG_CACHE_HOME")) return std::string(xdg) + "/cae/kernels.json";
  if (const char* home = variable("HOME")) return std::string(home) + "/.cache/cae/kernels.json";
  return "";
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

ops::ExecutorOptions executor_options_from_environment() {
  using W = ops::ExecutorOptions::Winograd;
  using K = ops::ExecutorOptions::Kernels;
  ops::ExecutorOptions o;
  o.winograd =
      choice("CAE_WINOGRAD", {"cae", "onednn", "0"}, {W::cae, W::onednn, W::off}, o.winograd);
  o.winograd_tile = choice("CAE_WINOGRAD_TILE", {"4", "2"}, {4, 2}, o.winograd_tile);
  o.thin_convs = choice("CAE_THIN_CONV", {"cae", "dnnl"}, {true, false}, o.thin_convs);
  o.own_maxpool = choice("CAE_MAXPOOL", {"cae", "dnnl"}, {true, false}, o.own_maxpool);
  o.cuda_graphs = choice("CAE_CUDA_GRAPH", {"1", "0"}, {true, false}, o.cuda_graphs);
  o.cuda_tf32 = choice("CAE_CUDA_TF32", {"0", "1"}, {false, true}, o.cuda_tf32);
  o.kernels = choice("CAE_KERNELS", {"measured", "fixed"}, {K::measured, K::fixed}, K::measured);
  o.kernel_cache = kernel_cache();
  using P = ops::ExecutorOptions::Precision;
  o.precision = choice("CAE_PRECISION", {"f32", "bf16"}, {P::f32, P::bf16}, o.precision);
  return o;
}

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

std::string data_dir_from_environment() {
  if (const char* dir = variable("CAE_DATA")) return dir;
  if (const char* home = variable("HOME")) return std::string(home) + "/.local/share/cae";
  return ".";
}

std::string models_folder_from_environment() {
  const char* dir = std::getenv("CAE_MODELS");
  return dir ? dir : "";
}

EngineOptions engine_options_from_environment_without_isa() {
  using W = ops::ExecutorOptions::Winograd;
  const ops::ExecutorOptions e = executor_options_from_environment();
  EngineOptions o;
  o.kernels = e.kernels == ops::ExecutorOptions::Kernels::fixed ? EngineOptions::Kernels::fixed
                                                                : EngineOptions::Kernels::measured;
  o.kernel_cache = e.kernel_cache;
  o.winograd = e.winograd == W::cae      ? EngineOptions::Winograd::cae
               : e.winograd == W::onednn ? EngineOptions::Winograd::onednn
                                         : EngineOptions::Winograd::off;
  o.winograd_tile = e.winograd_tile;
  o.thin_convs = e.thin_convs;
  o.own_maxpool = e.own_maxpool;
  o.precision = e.precision == ops::ExecutorOptions::Precision::bf16
                    ? EngineOptions::Precision::bf16
                    : EngineOptions::Precision::f32;
  o.models = models_folder_from_environment();
  return o;
}

// Declared in the public header (include/cae/cae.h) as the API's default options; defined here,
// with the edge's other readers, and carried by libcae.so (cmake/install.cmake).
EngineOptions EngineOptions::from_environment() {
  EngineOptions o = engine_options_from_environment_without_isa();
  if (const char* own = variable("CAE_MAX_ISA")) {
    parse_isa(own, "CAE_MAX_ISA");  // a name of no tier: the cae program's message, here
    o.max_isa = own;
  }
  return o;
}

}  // namespace cae
