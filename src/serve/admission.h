// The bounded queue in front of the repairs: at most `workers` run at once, at most `queue` more
// wait for a turn, and a request beyond those is turned away at once (the server answers 503 with
// Retry-After) rather than piling up memory and latency behind the others.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>

namespace cae::serve {

class Admission {
 public:
  // Requires workers >= 1 and queue >= 0.
  Admission(int workers, int queue);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A turn to run: held while it lives, given back when destroyed.
  class Turn {
   public:
    Turn(Turn&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Turn& operator=(Turn&&) = delete;
    ~Turn();

   private:
    friend class Admission;
    explicit Turn(Admission* owner) : owner_(owner) {}
    Admission* owner_;
  };

  // Ensures a turn, waiting while `workers` turns are held; nullopt at once when `workers` run
  // and `queue` wait already (the queue is full).
  std::optional<Turn> enter();

  // What is running and waiting now (for /healthz).
  struct Load {
    int running = 0, waiting = 0, workers = 0, queue = 0;
  };
  Load load() const;

 private:
  void leave();
  const int workers_, queue_;
  mutable std::mutex mutex_;
  std::condition_variable turn_free_;
  int running_ = 0, waiting_ = 0;
};

}  // namespace cae::serve
