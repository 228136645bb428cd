#include "backend/cpu/host_group.h"

#include "core/error.h"

namespace dsinfer {

HostGroup::HostGroup(int size) : size_(size), data_(size), lengths_(size) {
  if (size < 1) fail("tensor-parallel group of ", size, " ranks");
}

void HostGroup::wait_all() {
  std::unique_lock lock(mu_);
  if (aborted_) fail("tensor-parallel group aborted: another rank failed");
  const uint64_t generation = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != generation || aborted_; });
  if (generation_ == generation) fail("tensor-parallel group aborted: another rank failed");
}

void HostGroup::abort() {
  std::lock_guard lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

void HostGroup::all_reduce_sum(int rank, float* x, int64_t n) {
  if (rank < 0 || rank >= size_) fail("all_reduce_sum: rank ", rank, " of a group of ", size_);
  data_[rank] = x;
  lengths_[rank] = n;
  wait_all();  // every rank's x is published
  for (int r = 0; r < size_; ++r)
    if (lengths_[r] != n) {
      wait_all();  // no rank leaves (and rewrites its entry) before all have compared
      fail("all_reduce_sum: rank ", rank, " has ", n, " values, rank ", r, " ", lengths_[r]);
    }
  const int64_t begin = n * rank / size_, end = n * (rank + 1) / size_;
  for (int64_t i = begin; i < end; ++i) {
    float sum = 0.0f;
    for (int r = 0; r < size_; ++r) sum += data_[r][i];
    for (int r = 0; r < size_; ++r) data_[r][i] = sum;
  }
  wait_all();  // every share is summed before any rank reads its x
}

}  // namespace dsinfer
