// ActiveRequests: the completion requests in progress, from the moment a handler accepts one
// until its last byte is written. Draining on SIGTERM waits for this set to empty, and when the
// drain timeout passes, cancels the generations still in it.
#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

namespace dsinfer {

class Generation;

class ActiveRequests {
 public:
  // Held by a handler (or a stream's writer) for as long as the request is in progress.
  class Ticket {
   public:
    Ticket() = default;
    explicit Ticket(ActiveRequests* owner) : owner_(owner) {}
    Ticket(Ticket&& o) noexcept : owner_(o.owner_), gen_(o.gen_) { o.owner_ = nullptr; }
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    ~Ticket();
    // The generation cancel_all() reaches for this request.
    void watch(Generation* g);

   private:
    ActiveRequests* owner_ = nullptr;
    Generation* gen_ = nullptr;
  };

  Ticket enter();
  // True when the set emptied before `until`.
  bool wait_empty(std::chrono::steady_clock::time_point until);
  void cancel_all();

 private:
  std::mutex mutex_;
  std::condition_variable empty_;
  int count_ = 0;
  std::set<Generation*> generations_;
};

}  // namespace dsinfer
