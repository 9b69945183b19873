// The oneDNN backend: primitives built once per net, layouts chosen by oneDNN (format_tag::any)
// and kept between ops; reorders only at the edges. The only folder that includes dnnl.hpp.
#pragma once

#include <memory>

#include "ops/ops.h"

namespace cae::ops {
std::unique_ptr<Executor> make_dnnl_executor(const NetDesc& net);
}
