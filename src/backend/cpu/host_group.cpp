#include "backend/cpu/host_group.h"

#include <algorithm>

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

void HostGroup::publish(int rank, const float* x, int64_t n) {
  if (rank < 0 || rank >= size_) fail("tensor-parallel rank ", rank, " of a group of ", size_);
  data_[rank] = x;
  lengths_[rank] = n;
  wait_all();
  for (int r = 0; r < size_; ++r)
    if (lengths_[r] != n) {
      wait_all();  // no rank leaves (and rewrites its entry) before all have compared
      fail("tensor-parallel collective: rank ", rank, " has ", n, " values, rank ", r, " ", lengths_[r]);
    }
}

void HostGroup::all_reduce_sum(int rank, float* x, int64_t n) {
  publish(rank, x, n);
  const int64_t begin = n * rank / size_, end = n * (rank + 1) / size_;
  for (int64_t i = begin; i < end; ++i) {
    float sum = 0.0f;
    for (int r = 0; r < size_; ++r) sum += data_[r][i];
    for (int r = 0; r < size_; ++r) const_cast<float*>(data_[r])[i] = sum;  // every rank's own x
  }
  wait_all();  // every share is summed before any rank reads its x
}

void HostGroup::all_gather(int rank, const float* part, int64_t n, float* out) {
  publish(rank, part, n);
  for (int r = 0; r < size_; ++r) std::copy_n(data_[r], n, out + r * n);
  wait_all();  // every rank has read the parts before any rewrites its own
}

}  // namespace dsinfer
