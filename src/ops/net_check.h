// Validation of a NetDesc against the geometry rules of ops.h. It lives with the ref backend (the
// oracle states the rules), but depends on ops.h only, so any backend may call it.
#pragma once

#include <string>

#include "ops/ops.h"

namespace cae::ops {

// "CxHxW", e.g. "32x14x14".
std::string dims_string(const Dims& d);

// Requires nothing. Ensures the net is runnable: batch and every size positive, each op's input
// equal to the previous output, and each op's output size equal to its formula (conv / maxpool
// floor((in + pads - k) / s) + 1, tconv (in - 1) * s + k - pads, channels kept by pool / resize,
// element-wise ops shape-preserving). Throws cae::Error naming the op index, the expected and the
// found value otherwise.
void check_net_desc(const NetDesc& net);

}  // namespace cae::ops
