// The environment, read at the edge: the cae program, the Python module, the bench programs and
// the tests' main read the CAE_* variables here, when they are about to use them, into the
// option structs the library takes, which carry them down to the kernels.
#pragma once

#include <string>

#include "core/isa.h"

namespace cae {

// Requires nothing. Ensures the cap CAE_MAX_ISA names (and caps oneDNN to), else the tier of
// oneDNN's own ONEDNN_MAX_CPU_ISA (which oneDNN reads itself), else none. A CAE_MAX_ISA that
// names no tier gives a cap whose error says so (IsaCap::error): it is reported where the first
// kernel is chosen, not here.
IsaCap isa_cap_from_environment();

// set_isa_cap(isa_cap_from_environment()): what every edge does at its start, before any kernel.
void apply_isa_cap_from_environment();

}  // namespace cae
