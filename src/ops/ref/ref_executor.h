// The naive backend: plain loops in canonical layouts, the oracle every fast kernel is tested
// against. Never optimised.
#pragma once

#include <memory>

#include "ops/ops.h"

namespace cae::ops {
std::unique_ptr<Executor> make_ref_executor(const NetDesc& net);
}
