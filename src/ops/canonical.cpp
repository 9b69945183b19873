#include "ops/canonical.h"

#include <algorithm>
#include <string>

#include "cae/error.h"

namespace cae::ops {
namespace {

void check_flat_size(const std::vector<ParamInfo>& infos, std::size_t found,
                     const std::string& where) {
  std::size_t expected = 0;
  for (const ParamInfo& info : infos) expected += info.size();
  if (found != expected)
    throw Error(where + "flat buffer size expected " + std::to_string(expected) + ", found " +
                std::to_string(found));
}

}  // namespace

std::vector<std::vector<float>> split_canonical(const std::vector<ParamInfo>& infos,
                                                std::span<const float> flat, const char* backend) {
  check_flat_size(infos, flat.size(), std::string(backend) + " backend: to_canonical: ");
  std::vector<std::vector<float>> tensors;
  for (const ParamInfo& info : infos) {
    tensors.emplace_back(flat.begin(), flat.begin() + info.size());
    flat = flat.subspan(info.size());
  }
  return tensors;
}

void join_canonical(const std::vector<ParamInfo>& infos,
                    const std::vector<std::vector<float>>& tensors, std::span<float> flat,
                    const char* backend) {
  const std::string where = std::string(backend) + " backend: from_canonical: ";
  check_flat_size(infos, flat.size(), where);
  if (tensors.size() != infos.size())
    throw Error(where + "tensor count expected " + std::to_string(infos.size()) + ", found " +
                std::to_string(tensors.size()));
  for (std::size_t t = 0; t < infos.size(); ++t) {
    const ParamInfo& info = infos[t];
    if (tensors[t].size() != info.size())
      throw Error(where + "op " + std::to_string(info.op) + " " + info.name + " size expected " +
                  std::to_string(info.size()) + ", found " + std::to_string(tensors[t].size()));
    std::copy(tensors[t].begin(), tensors[t].end(), flat.begin());
    flat = flat.subspan(info.size());
  }
}

}  // namespace cae::ops
