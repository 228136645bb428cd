// HostGroup: the ranks of a tensor-parallel group of CPU backends, threads of one process that
// sum their tensors through shared memory. Every rank calls all_reduce_sum in the same order.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace dsinfer {

class HostGroup {
 public:
  explicit HostGroup(int size);
  int size() const { return size_; }
  // x[0, n) of rank `rank` becomes the sum over the ranks of theirs. Each rank adds up a
  // contiguous share for all of them, always in rank order, so every rank ends with the same
  // values. Throws when the ranks' lengths differ, or once the group is aborted.
  void all_reduce_sum(int rank, float* x, int64_t n);
  // A rank failed and will not come: ranks waiting now, and every later call, throw.
  void abort();

 private:
  void wait_all();  // a barrier of every rank, reusable

  std::mutex mu_;
  std::condition_variable cv_;
  int size_, arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::vector<float*> data_;
  std::vector<int64_t> lengths_;
};

}  // namespace dsinfer
