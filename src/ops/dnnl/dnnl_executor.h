// The oneDNN backend: primitives built once per net, layouts chosen by oneDNN (format_tag::any)
// and kept between ops; reorders only at the edges. The only folder that includes dnnl.hpp.
#pragma once

#include <memory>

#include "ops/ops.h"

namespace cae::ops {

// Requires nothing. Ensures an executor whose primitives and buffers are all built for net.batch,
// or throws cae::Error naming the op (index, kind, shapes) that check_net_desc or oneDNN rejected.
std::unique_ptr<Executor> make_dnnl_executor(const NetDesc& net);

}  // namespace cae::ops
