// DeviceScratch: a device buffer reused by successive ops on one stream (their use is ordered by
// the stream), grown when an op needs more. Growing waits for the stream before freeing, since
// queued kernels may still read the old buffer, and counts the move on its owner's counter: a
// recorded pass that used one of the owner's buffers is stale after. The counter is the owner's
// (a backend's), not the process's: the ranks of a tensor-parallel group record and replay at
// once, and one rank's move must not make another re-record (it would then run its
// collectives twice).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace dsinfer::cuda {

class DeviceScratch {
 public:
  DeviceScratch(cudaStream_t stream, uint64_t& moves) : stream_(stream), moves_(moves) {}
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  // At least `bytes`, 256-byte aligned; the previous contents are not kept.
  void* get(size_t bytes);

 private:
  cudaStream_t stream_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  uint64_t& moves_;
};

// Carves consecutive 256-byte-aligned pieces out of one scratch request.
class ScratchCarver {
 public:
  // Adds a piece of `bytes`; returns its offset.
  size_t add(size_t bytes) {
    const size_t at = total_;
    total_ += (bytes + 255) / 256 * 256;
    return at;
  }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};

}  // namespace dsinfer::cuda
