#include "serve/admission.h"

#include "cae/error.h"

namespace cae::serve {

Admission::Admission(int workers, int queue) : workers_(workers), queue_(queue) {
  if (workers < 1 || queue < 0)
    throw Error("admission: workers " + std::to_string(workers) + " and queue " +
                std::to_string(queue) + ", expected workers >= 1 and queue >= 0");
}

Admission::Turn::~Turn() {
  if (owner_) owner_->leave();
}

std::optional<Admission::Turn> Admission::enter() {
  std::unique_lock lock(mutex_);
  if (running_ + waiting_ >= workers_ + queue_) return std::nullopt;
  ++waiting_;
  turn_free_.wait(lock, [this] { return running_ < workers_; });
  --waiting_;
  ++running_;
  return Turn(this);
}

void Admission::leave() {
  {
    std::lock_guard lock(mutex_);
    --running_;
  }
  turn_free_.notify_one();
}

Admission::Load Admission::load() const {
  std::lock_guard lock(mutex_);
  return {running_, waiting_, workers_, queue_};
}

}  // namespace cae::serve
