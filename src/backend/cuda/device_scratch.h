// DeviceScratch: a device buffer reused by successive ops on one stream (their use is ordered by
// the stream), grown when an op needs more. Growing waits for the stream before freeing, since
// queued kernels may still read the old buffer.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dsinfer::cuda {

class DeviceScratch {
 public:
  explicit DeviceScratch(cudaStream_t stream) : stream_(stream) {}
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  // At least `bytes`, 256-byte aligned; the previous contents are not kept.
  void* get(size_t bytes);

  // How many times any scratch buffer has moved: a recorded pass that used one is stale after.
  static uint64_t moves() { return moves_.load(); }

 private:
  cudaStream_t stream_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  static inline std::atomic<uint64_t> moves_{0};
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
