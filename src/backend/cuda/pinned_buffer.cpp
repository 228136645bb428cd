#include "backend/cuda/pinned_buffer.h"

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {

PinnedBuffer::~PinnedBuffer() {
  if (data_) cudaFreeHost(data_);
}

void* PinnedBuffer::get(size_t bytes) {
  if (bytes <= bytes_) return data_;
  if (data_) CUDA_CHECK(cudaFreeHost(data_));
  data_ = nullptr;
  const size_t want = bytes < 4096 ? 4096 : bytes + bytes / 4;
  CUDA_CHECK(cudaHostAlloc(&data_, want, cudaHostAllocDefault));
  bytes_ = want;
  return data_;
}

}  // namespace dsinfer::cuda
