#include "core/rank_threads.h"

#include "core/error.h"

namespace dsinfer {

RankThreads::RankThreads(int ranks) {
  if (ranks < 1) fail("a group of ", ranks, " ranks");
  for (int r = 1; r < ranks; ++r) workers_.emplace_back([this, r] { work(r); });
}

RankThreads::~RankThreads() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void RankThreads::attempt(int rank) {
  try {
    (*job_)(rank);
  } catch (...) {
    {
      std::lock_guard lock(mu_);
      if (!first_error_) first_error_ = std::current_exception();
    }
    (*on_failure_)();
  }
}

void RankThreads::work(int rank) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    attempt(rank);
    std::lock_guard lock(mu_);
    if (--pending_ == 0) done_.notify_all();
  }
}

void RankThreads::run(const std::function<void(int)>& job, const std::function<void()>& on_failure) {
  {
    std::lock_guard lock(mu_);
    job_ = &job;
    on_failure_ = &on_failure;
    first_error_ = nullptr;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  attempt(0);
  std::unique_lock lock(mu_);
  done_.wait(lock, [&] { return pending_ == 0; });
  if (first_error_) std::rethrow_exception(first_error_);
}

}  // namespace dsinfer
