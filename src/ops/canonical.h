// The canonical parameter layout as one flat buffer: the tensors of param_infos(net) back to
// back, in order. The backends that keep their parameters that way (ref, cuda) split and join it
// here for Executor::to_canonical / from_canonical.
#pragma once

#include <span>
#include <vector>

#include "ops/ops.h"

namespace cae::ops {

// Requires nothing. Ensures one tensor per info, in order, copied from flat. Throws cae::Error,
// starting "<backend> backend: to_canonical:", when flat's size is not the infos' total.
std::vector<std::vector<float>> split_canonical(const std::vector<ParamInfo>& infos,
                                                std::span<const float> flat, const char* backend);

// Requires nothing. Ensures flat holds the tensors back to back. Throws cae::Error, starting
// "<backend> backend: from_canonical:", when flat's size is not the infos' total, or the tensor
// count or a tensor's size differs from infos.
void join_canonical(const std::vector<ParamInfo>& infos,
                    const std::vector<std::vector<float>>& tensors, std::span<float> flat,
                    const char* backend);

}  // namespace cae::ops
