#include "dist/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cae/error.h"

namespace cae::dist {
namespace {

using Clock = std::chrono::steady_clock;

// Adds the time from construction to destruction to a counter.
class Timed {
 public:
  explicit Timed(double& total) : total_(total), t0_(Clock::now()) {}
  ~Timed() { total_ += std::chrono::duration<double>(Clock::now() - t0_).count(); }

 private:
  double& total_;
  Clock::time_point t0_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error("MPI_Init_thread failed");
      owns_mpi_ = true;
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  ~MpiCommunicator() override {
    if (std::uncaught_exceptions() > 0) return;
    if (!requests_.empty())
      MPI_Waitall(int(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void start_sum(std::span<float> data) override { start(data.data(), data.size(), MPI_FLOAT); }
  void start_sum(std::span<double> data) override { start(data.data(), data.size(), MPI_DOUBLE); }

  void wait() override {
    Timed t(blocked_);
    if (requests_.empty()) return;
    const int rc = MPI_Waitall(int(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
    check(rc, "MPI_Waitall (gradient sums)");
  }

  void broadcast(std::span<std::byte> data) override {
    Timed t(blocked_);
    // MPI counts are int: large buffers go in pieces.
    constexpr std::size_t piece = std::size_t(1) << 30;
    for (std::size_t at = 0; at < data.size(); at += piece)
      check(MPI_Bcast(data.data() + at, int(std::min(piece, data.size() - at)), MPI_BYTE, 0, comm_),
            "MPI_Bcast");
  }

  [[noreturn]] void abort(int status) override {
    MPI_Abort(comm_, status);
    std::_Exit(status);  // MPI_Abort does not return; this is for the compiler
  }

  double blocked_seconds() const override { return blocked_; }

 private:
  void start(void* data, std::size_t n, MPI_Datatype type) {
    Timed t(blocked_);
    if (n > std::size_t(1) << 30)
      throw Error("MPI sum of " + std::to_string(n) + " elements: more than one call may carry");
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, int(n), type, MPI_SUM, comm_, &request),
          "MPI_Iallreduce");
    requests_.push_back(request);
    // Open MPI moves non-blocking collectives forward only inside MPI calls; testing the
    // outstanding ones here lets earlier buckets progress while backward() computes the next.
    int done = 0;
    check(MPI_Testall(int(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE),
          "MPI_Testall");
    if (done) requests_.clear();
  }

  void check(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw Error(std::string(what) + " failed on rank " + std::to_string(rank_) + ": " +
                std::string(text, len));
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false;
  std::vector<MPI_Request> requests_;
  double blocked_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace cae::dist
