// The environment, read at the edge. The library under src/ reads no variable (the MPI launcher's,
// in src/dist/, are the one exception): the cae program, the Python module, the bench programs
// and the tests' main read the CAE_* variables here, when they are about to use them, into the
// option structs the library takes, which carry them down to the kernels. docs/usage.md,
// "Environment", lists the variables.
#pragma once

#include <string>

#include "cae/cae.h"
#include "core/isa.h"
#include "ops/ops.h"

namespace cae {

// Requires nothing. Ensures the defaults of ops::ExecutorOptions with each of CAE_WINOGRAD
// (cae|onednn|0), CAE_WINOGRAD_TILE (4|2), CAE_THIN_CONV (cae|dnnl), CAE_MAXPOOL (cae|dnnl),
// CAE_CUDA_GRAPH (1|0) and CAE_CUDA_TF32 (0|1) that is set and not empty applied, and kernels
// measured (CAE_KERNELS=fixed: the rules) with the cache of CAE_KERNEL_CACHE, else
// $XDG_CACHE_HOME/cae/kernels.json, else $HOME/.cache/cae/kernels.json ("none", or no home: no
// cache). Throws cae::Error naming the variable, its value and the accepted values for any other
// value.
ops::ExecutorOptions executor_options_from_environment();

// Requires nothing. Ensures the cap CAE_MAX_ISA names (and caps oneDNN to), else the tier of
// oneDNN's own ONEDNN_MAX_CPU_ISA (which oneDNN reads itself), else none. A CAE_MAX_ISA that
// names no tier gives a cap whose error says so (IsaCap::error): it is reported where the first
// kernel is chosen, not here.
IsaCap isa_cap_from_environment();

// set_isa_cap(isa_cap_from_environment()): what every edge does at its start, before any kernel.
void apply_isa_cap_from_environment();

// $CAE_DATA, else $HOME/.local/share/cae (where scripts/setup-data.sh installs MNIST), else ".":
// the data directory when --data gives none.
std::string data_dir_from_environment();

// $CAE_MODELS, or "" when it is unset: the one folder searched for shipped models when it is set
// (io::model_folders).
std::string models_folder_from_environment();

// EngineOptions::from_environment() less max_isa: for an edge that has set the process's cap
// already (apply_isa_cap_from_environment), as the Python module does when it is imported.
EngineOptions engine_options_from_environment_without_isa();

}  // namespace cae
