// GPU kinds the planner knows: datasheet figures, one row each (sources in docs/hardware.md).
#pragma once
#include <string>
#include <vector>

namespace dsinfer::plan {

struct GpuSpec {
  std::string name;
  double memory_gib = 0;        // capacity; the datasheet's "GB" of HBM/GDDR is binary (80 GB = 80 GiB)
  double bandwidth_gbs = 0;     // memory bandwidth, 1e9 bytes/s
  double bf16_tflops = 0;       // dense tensor-core BF16 (FP16 where the GPU has no BF16), FP32 accumulate
  double fp8_tflops = 0;        // dense FP8; 0 = no FP8 tensor cores
  double int8_tops = 0;         // dense INT8; 0 = none
  double link_gbs = 0;          // GPU-to-GPU bandwidth inside a node, one direction, 1e9 bytes/s
  int gpus_per_node = 8;        // the TP group never leaves a node
  double memory_bytes() const { return memory_gib * 1024.0 * 1024.0 * 1024.0; }
};

const std::vector<GpuSpec>& gpu_catalog();
// Case-insensitive; throws listing the catalog when unknown.
const GpuSpec& find_gpu(const std::string& name);
std::string gpu_catalog_names();

}  // namespace dsinfer::plan
