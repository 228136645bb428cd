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
  // out[0, size * n) = every rank's part[0, n), in rank order.
  void all_gather(int rank, const float* part, int64_t n, float* out);
  // A rank failed and will not come: ranks waiting now, and every later call, throw.
  void abort();

 private:
  void wait_all();  // a barrier of every rank, reusable

  std::mutex mu_;
  std::condition_variable cv_;
  int size_, arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  // Publishes this rank's (pointer, length), then waits for every rank's; throws, once all have
  // compared, when the lengths differ.
  void publish(int rank, const float* x, int64_t n);

  std::vector<const float*> data_;
  std::vector<int64_t> lengths_;
};

}  // namespace dsinfer
