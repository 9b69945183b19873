// Architecture spec parser and shape logic (src/nn/spec.cpp). Properties: a spec that parses
// prints (format_spec) to text that parses to the same layers, and build_net either resolves
// every shape to a non-empty size or throws cae::Error. The input shape is taken from the first
// bytes so that shape resolution sees more than one size.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cae/error.h"
#include "nn/spec.h"

namespace {

bool same_layers(const cae::nn::Architecture& a, const cae::nn::Architecture& b) {
  if (a.layers.size() != b.layers.size()) return false;
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const auto &x = a.layers[i], &y = b.layers[i];
    if (x.kind != y.kind || x.channels != y.channels || x.kernel != y.kernel ||
        x.stride != y.stride || x.size != y.size || x.out_h != y.out_h || x.out_w != y.out_w ||
        x.act != y.act || x.bias != y.bias)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cae::ops::Dims input{1, 28, 28};
  if (size >= 3) {
    input = {1 + data[0] % 4, 1 + data[1] % 64, 1 + data[2] % 64};
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  cae::nn::Architecture arch;
  try {
    arch = cae::nn::parse_spec(text);
  } catch (const cae::Error&) {
    return 0;
  }
  cae::nn::Architecture again;
  try {
    again = cae::nn::parse_spec(cae::nn::format_spec(arch));
  } catch (const cae::Error&) {
    std::abort();  // format_spec wrote text its own parser refuses
  }
  if (!same_layers(arch, again)) std::abort();
  try {
    const cae::ops::NetDesc net = cae::nn::build_net(arch, input, 2);
    for (const auto& op : net.ops)
      if (op.out.c < 1 || op.out.h < 1 || op.out.w < 1) std::abort();
  } catch (const cae::Error&) {
  }
  return 0;
}
