// The door to the other processes of a data-parallel run: who we are (rank, size), sums of
// gradients across ranks (non-blocking, so they overlap the backward pass), and a broadcast of
// rank 0's state. The training loop sees only this interface; MPI stays in mpi_communicator.cpp
// and is optional at build time. A run of one process uses LocalCommunicator, where every
// operation is the identity.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace cae::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;

  // Ensures 0 <= rank() < size(); rank 0 is the one that writes files and prints.
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Starts an element-wise sum of data across all ranks, in place. Requires every rank to start
  // the same sums in the same order with the same lengths, and data to stay alive and untouched
  // until wait(). Ensures nothing yet: the sum is final only after wait().
  virtual void start_sum(std::span<float> data) = 0;
  virtual void start_sum(std::span<double> data) = 0;

  // Ensures every sum started since the last wait() has completed on this rank.
  virtual void wait() = 0;

  // Requires every rank to call it with the same number of bytes. Ensures data holds rank 0's
  // bytes on every rank.
  virtual void broadcast(std::span<std::byte> data) = 0;

  // Ends every process of the job with the given exit status; for the CLI, after it has printed
  // why. Never returns. A single process simply exits.
  [[noreturn]] virtual void abort(int status) = 0;

  // Seconds this rank has spent blocked in communication (in wait(), broadcast() and the calls
  // that start sums), since construction: the part of communication not hidden behind compute.
  virtual double blocked_seconds() const = 0;

  // Blocking sum: start_sum(data) then wait().
  template <class T>
  void sum(std::span<T> data) {
    start_sum(data);
    wait();
  }
};

// One process alone: rank 0 of 1; sums and broadcasts leave the data as it is.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void start_sum(std::span<float>) override {}
  void start_sum(std::span<double>) override {}
  void wait() override {}
  void broadcast(std::span<std::byte>) override {}
  [[noreturn]] void abort(int status) override;
  double blocked_seconds() const override { return 0; }
};

// True when this build has MPI (the CMake option CAE_MPI).
bool built_with_mpi();

// True when an MPI launcher (mpirun, mpiexec, srun with PMI) started this process, judged by the
// environment variables those launchers set.
bool launched_by_mpi();

// Ensures the communicator for this process: MPI's world (initialising MPI; finalised when the
// communicator is destroyed) when built with MPI and launched by an MPI launcher, otherwise a
// LocalCommunicator. Throws cae::Error when MPI cannot start.
std::unique_ptr<Communicator> make_world_communicator();

}  // namespace cae::dist
