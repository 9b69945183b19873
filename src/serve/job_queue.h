// The bounded queue in front of the repairs: `workers` threads of their own run the jobs, at most
// `queue` more jobs wait for one, and a job beyond those is turned away at once (the server
// answers 503 with Retry-After) rather than piling up memory and latency behind the others.
// Jobs run on these threads, not on the connections' threads, so that each worker keeps one
// OpenMP team and one malloc arena however many connections come and go.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace cae::serve {

class JobQueue {
 public:
  // Requires workers >= 1 and queue >= 0. Each worker thread first calls start (its OpenMP
  // thread count, say).
  JobQueue(int workers, int queue, std::function<void()> start = {});
  // Runs the jobs already queued, then joins the workers.
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Ensures job runs on a worker and the future says when it is done (with its exception, if it
  // threw); nullopt at once when `workers` jobs run and `queue` wait already (the queue is full).
  // A job no longer counts as running when its future becomes ready, so a client that submits
  // again as soon as its answer comes is never refused for its own finished job.
  std::optional<std::future<void>> submit(std::function<void()> job);

  // What is running and waiting now (for /healthz and the 503's message).
  struct Load {
    int running = 0, waiting = 0, workers = 0, queue = 0;
  };
  Load load() const;

 private:
  void work();
  const int workers_, queue_;
  std::function<void()> start_;
  mutable std::mutex mutex_;
  std::condition_variable job_ready_;
  struct Job {
    std::function<void()> run;
    std::promise<void> done;
  };
  std::deque<Job> jobs_;
  int running_ = 0;
  bool closing_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cae::serve
