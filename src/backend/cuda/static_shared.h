// Static shared memory of a kernel. A block may hold 48 KB in all, its static __shared__ arrays
// and the launch's dynamic bytes together, without opting in
// (cudaFuncAttributeMaxDynamicSharedMemorySize), and at most the device's opt-in maximum after:
// launchers that size dynamic shared memory near either limit must count the static bytes too.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {

// Bytes of Kernel's static __shared__ arrays (fixed when it is compiled: asked once).
template <auto Kernel>
size_t static_shared_bytes() {
  static const size_t bytes = [] {
    cudaFuncAttributes a{};
    CUDA_CHECK(cudaFuncGetAttributes(&a, Kernel));
    return a.sharedSizeBytes;
  }();
  return bytes;
}

}  // namespace dsinfer::cuda
