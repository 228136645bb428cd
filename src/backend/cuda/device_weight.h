// DeviceWeight: what a kernel needs to read a weight in any stored dtype (F32, F16, BF16, or
// FP8 e4m3 with DeepSeek's block scales) as float32, element by element.
#pragma once
#include <cstdint>

#include "backend/weight.h"

namespace dsinfer::cuda {

struct DeviceWeight {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t cols = 0;              // row length (the tensor's last dimension)
  const float* scale = nullptr;  // FP8 only: [ceil(rows / block_rows), scale_cols]
  int64_t scale_cols = 0;
  int block_rows = 1, block_cols = 1;
};

// Views a device-resident Weight; throws for dtypes kernels cannot read as float.
DeviceWeight device_weight(const Weight& w);

}  // namespace dsinfer::cuda
