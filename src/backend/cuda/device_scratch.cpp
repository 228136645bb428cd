#include "backend/cuda/device_scratch.h"

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {

DeviceScratch::~DeviceScratch() {
  if (data_) cudaFree(data_);
}

void* DeviceScratch::get(size_t bytes) {
  if (bytes <= bytes_) return data_;
  if (data_) {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    CUDA_CHECK(cudaFree(data_));
    data_ = nullptr;
    bytes_ = 0;
  }
  const size_t want = bytes + bytes / 4;  // headroom, so slowly growing requests rarely reallocate
  CUDA_CHECK(cudaMalloc(&data_, want));
  bytes_ = want;
  ++moves_;
  return data_;
}

}  // namespace dsinfer::cuda
