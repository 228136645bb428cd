// ExpertTableCache: each MoE layer's per-expert weight pointers as a device array, so that one
// grouped launch can reach every expert. Built on the layer's first moe_experts call (during a
// CUDA graph capture too, see upload) and found again afterwards by the experts vector's
// identity and contents. FP8 layers of the grouped FP8 GEMM's shapes also get each expert's TMA
// descriptors on the device.
#pragma once
#include <cuda_runtime.h>

#include <vector>

#include "backend/backend.h"
#include "backend/cuda/moe_gemm_fp8.h"
#include "backend/cuda/moe_kernels.h"

namespace dsinfer::cuda {

struct ExpertTable {
  GroupedExperts ex;
  bool grouped = false;  // the grouped kernels can read these weights (dtype, shapes, alignment)
  const Fp8ExpertMaps* fp8_maps = nullptr;  // device [experts]; null unless the FP8 GEMM can read them
};

class ExpertTableCache {
 public:
  ExpertTableCache() = default;
  ~ExpertTableCache();
  ExpertTableCache(const ExpertTableCache&) = delete;
  ExpertTableCache& operator=(const ExpertTableCache&) = delete;

  // The layer's table; throws when the experts' shapes differ from each other.
  const ExpertTable& get(const std::vector<ExpertWeights>& experts);

 private:
  struct Entry {
    const ExpertWeights* key = nullptr;
    std::vector<ExpertPtrs> host;  // what the device array holds, to recognise the layer again
    void* dev = nullptr;
    void* maps_dev = nullptr;
    ExpertTable table;
  };
  void build(const std::vector<ExpertWeights>& experts, Entry& entry);
  static void upload(const void* host, size_t bytes, void*& dev);

  std::vector<Entry> entries_;
};

}  // namespace dsinfer::cuda
