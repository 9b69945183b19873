#include "dist/communicator.h"

#include <cstdlib>

#include "dist/mpi_communicator.h"

namespace cae::dist {

void LocalCommunicator::abort(int status) { std::exit(status); }

bool built_with_mpi() {
#ifdef CAE_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  // Open MPI's mpirun, then the PMI/PMIx variables MPICH's Hydra and Slurm's srun set.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

std::unique_ptr<Communicator> make_world_communicator() {
#ifdef CAE_WITH_MPI
  if (launched_by_mpi()) return make_mpi_communicator();
#endif
  return std::make_unique<LocalCommunicator>();
}

}  // namespace cae::dist
