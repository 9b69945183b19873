// The MPI implementation of Communicator, compiled only when the build has MPI (CAE_MPI).
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace cae::dist {

// Ensures MPI is initialised (funneled threads: only the calling thread talks to MPI) and returns
// a communicator over a duplicate of MPI_COMM_WORLD whose errors are returned, not fatal, so they
// become cae::Error. Destroying the last one finalises MPI, unless an exception is in flight: a
// rank that fails must not wait in MPI_Finalize for ranks that still wait for it.
std::unique_ptr<Communicator> make_mpi_communicator();

}  // namespace cae::dist
