#include "backend/cuda/kernel_residency.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {

Residency kernel_residency(const void* kernel, int threads, size_t dynamic) {
  static std::mutex mutex;
  static std::map<std::tuple<int, const void*, int, size_t>, Residency> found;
  static std::map<std::pair<int, const void*>, size_t> opted;  // the dynamic bytes opted in
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(device, kernel, threads, dynamic);
  if (const auto at = found.find(key); at != found.end()) return at->second;
  // Kept only once every query has succeeded: a failed one fails again on the next launch.
  Residency r;
  cudaFuncAttributes attributes{};
  CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  r.bytes = attributes.sharedSizeBytes + dynamic;
  size_t& limit = opted[{device, kernel}];
  if (r.bytes > kDefaultSharedBytes && dynamic > limit) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic)));
    limit = dynamic;
  }
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.per_sm, kernel, threads, dynamic));
  r.per_sm = std::max(1, r.per_sm);
  found.emplace(key, r);
  return r;
}

bool cluster_fits(const void* kernel, int blocks, int threads, size_t dynamic) {
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, bool> fits;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(device, kernel);
  if (const auto at = fits.find(key); at != fits.end()) return at->second;
  cudaLaunchConfig_t config = {};
  config.gridDim = blocks;
  config.blockDim = threads;
  config.dynamicSmemBytes = dynamic;
  int clusters = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config));
  return fits[key] = clusters >= 1;
}

}  // namespace dsinfer::cuda
