#include "plan/hardware_catalog.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace dsinfer::plan {

namespace {

// Every figure is from the vendor datasheet named in docs/hardware.md. Sparse ("with
// sparsity") tensor figures are halved to dense; link bandwidth is the bidirectional
// datasheet figure halved.
//  name          GiB  GB/s    BF16    FP8     INT8    link  per node
const std::vector<GpuSpec> kCatalog = {
    {"A100-40", 40, 1555, 312, 0, 624, 300, 8},
    {"A100-80", 80, 2039, 312, 0, 624, 300, 8},
    {"H100-SXM", 80, 3350, 989.5, 1979, 1979, 450, 8},
    {"H100-PCIe", 80, 2000, 756.5, 1513, 1513, 64, 8},
    {"H200", 141, 4800, 989.5, 1979, 1979, 450, 8},
    {"H800", 80, 3350, 989.5, 1979, 1979, 200, 8},
    {"H20", 96, 4000, 148, 296, 296, 450, 8},
    {"L40S", 48, 864, 362.05, 733, 733, 32, 8},
    {"L4", 24, 300, 121, 242.5, 242.5, 32, 8},
    {"A10", 24, 600, 125, 0, 250, 32, 8},
    {"T4", 16, 320, 65, 0, 130, 16, 8},
    {"RTX-3090", 24, 936.2, 71, 0, 284, 32, 4},
    {"RTX-4090", 24, 1008, 165.2, 330.3, 660.6, 32, 4},
    {"RTX-5090", 32, 1792, 209.5, 419, 838, 64, 4},
    {"MI250X", 128, 3276.8, 383, 0, 383, 400, 4},
    {"MI300X", 192, 5300, 1307.4, 2614.9, 2614.9, 448, 8},
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

const std::vector<GpuSpec>& gpu_catalog() { return kCatalog; }

std::string gpu_catalog_names() {
  std::string out;
  for (const GpuSpec& g : kCatalog) out += (out.empty() ? "" : ", ") + g.name;
  return out;
}

const GpuSpec& find_gpu(const std::string& name) {
  for (const GpuSpec& g : kCatalog)
    if (lower(g.name) == lower(name)) return g;
  fail("unknown GPU '", name, "' (known: ", gpu_catalog_names(), "; or describe one with --gpu-mem, --gpu-bw, --gpu-tflops)");
}

}  // namespace dsinfer::plan
