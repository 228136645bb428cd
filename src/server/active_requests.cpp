#include "server/active_requests.h"

#include "server/generation.h"

namespace dsinfer {

ActiveRequests::Ticket::~Ticket() {
  if (!owner_) return;
  std::lock_guard lock(owner_->mutex_);
  if (gen_) owner_->generations_.erase(gen_);
  if (--owner_->count_ == 0) owner_->empty_.notify_all();
}

void ActiveRequests::Ticket::watch(Generation* g) {
  std::lock_guard lock(owner_->mutex_);
  if (gen_) owner_->generations_.erase(gen_);
  gen_ = g;
  if (gen_) owner_->generations_.insert(gen_);
}

ActiveRequests::Ticket ActiveRequests::enter() {
  std::lock_guard lock(mutex_);
  count_++;
  return Ticket(this);
}

bool ActiveRequests::wait_empty(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mutex_);
  return empty_.wait_until(lock, until, [&] { return count_ == 0; });
}

void ActiveRequests::cancel_all() {
  std::lock_guard lock(mutex_);
  for (Generation* g : generations_) g->cancel();
}

}  // namespace dsinfer
