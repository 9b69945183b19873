#include "serve/job_queue.h"

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
  std::packaged_task<void()> task(std::move(job));
  std::future<void> done = task.get_future();
  {
    std::lock_guard lock(mutex_);
    if (running_ + int(jobs_.size()) >= workers_ + queue_) return std::nullopt;
    jobs_.push_back(std::move(task));
  }
  job_ready_.notify_one();
  return done;
}

void JobQueue::work() {
  if (start_) start_();
  for (;;) {
    std::packaged_task<void()> task;
    {
      std::unique_lock lock(mutex_);
      job_ready_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // closing, and nothing left
      task = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    task();  // an exception goes into the future
    std::lock_guard lock(mutex_);
    --running_;
  }
}

JobQueue::Load JobQueue::load() const {
  std::lock_guard lock(mutex_);
  return {running_, int(jobs_.size()), workers_, queue_};
}

}  // namespace cae::serve
