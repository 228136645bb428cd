#include "backend/cuda/gpu_busy.h"

#include <cstdint>

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void busy_kernel(uint64_t ns) {
  const uint64_t start = global_ns();
  while (global_ns() - start < ns) __nanosleep(1000);
}

}  // namespace

void gpu_busy(cudaStream_t s, double seconds) {
  busy_kernel<<<1, 1, 0, s>>>(static_cast<uint64_t>(seconds * 1e9));
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace dsinfer::cuda
