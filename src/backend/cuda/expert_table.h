// ExpertTableCache: each MoE layer's per-expert weight pointers as a device array, so that one
// grouped launch can reach every expert. Built on the layer's first moe_experts call (during a
// CUDA graph capture too, see upload) and found again afterwards by the experts vector's
// identity and contents.
#pragma once
#include <cuda_runtime.h>

#include <vector>

#include "backend/backend.h"
#include "backend/cuda/moe_kernels.h"

namespace dsinfer::cuda {

struct ExpertTable {
  GroupedExperts ex;
  bool grouped = false;  // the grouped kernels can read these weights (dtype, shapes, alignment)
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
    ExpertTable table;
  };
  void build(const std::vector<ExpertWeights>& experts, Entry& entry);
  void upload(Entry& entry);

  std::vector<Entry> entries_;
};

}  // namespace dsinfer::cuda
