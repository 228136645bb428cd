// PinnedBuffer: page-locked host memory for asynchronous copies, grown on demand. The owner
// guarantees no copy from or to it is still queued when it is rewritten or grown.
#pragma once
#include <cstddef>

namespace dsinfer::cuda {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // At least `bytes`; the previous contents are not kept.
  void* get(size_t bytes);

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace dsinfer::cuda
