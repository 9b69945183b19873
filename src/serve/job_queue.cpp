#include "serve/job_queue.h"

#include <exception>

#include "cae/error.h"

namespace cae::serve {

JobQueue::JobQueue(int workers, int queue, std::function<void()> start)
    : workers_(workers), queue_(queue), start_(std::move(start)) {
  if (workers < 1 || queue < 0)
    throw Error("job queue: workers " + std::to_string(workers) + " and queue " +
                std::to_string(queue) + ", expected workers >= 1 and queue >= 0");
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

JobQueue::~JobQueue() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  job_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::optional<std::future<void>> JobQueue::submit(std::function<void()> job) {
  Job j{std::move(job), {}};
  std::future<void> done = j.done.get_future();
  {
    std::lock_guard lock(mutex_);
    if (running_ + int(jobs_.size()) >= workers_ + queue_) return std::nullopt;
    jobs_.push_back(std::move(j));
  }
  job_ready_.notify_one();
  return done;
}

void JobQueue::work() {
  if (start_) start_();
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      job_ready_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // closing, and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    std::exception_ptr error;
    try {
      job.run();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    // Only now the waiting client hears of it: the job is no longer running.
    if (error)
      job.done.set_exception(error);
    else
      job.done.set_value();
  }
}

JobQueue::Load JobQueue::load() const {
  std::lock_guard lock(mutex_);
  return {running_, int(jobs_.size()), workers_, queue_};
}

}  // namespace cae::serve
