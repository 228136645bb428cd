#include "backend/cuda/device_weight.h"

#include "core/error.h"

namespace dsinfer::cuda {

DeviceWeight device_weight(const Weight& w) {
  if (w.w.device.kind != DeviceKind::CUDA) fail("weight ", shape_str(w.w.shape), " is not on a GPU");
  DeviceWeight d;
  d.data = w.w.data;
  d.dtype = w.w.dtype;
  d.cols = w.w.shape.back();
  switch (w.w.dtype) {
    case DType::F32: case DType::F16: case DType::BF16: break;
    case DType::F8_E4M3:
      if (w.scale.empty() || w.block_rows <= 0 || w.block_cols <= 0) fail("FP8 weight ", shape_str(w.w.shape), " has no block scales");
      d.scale = w.scale.ptr<float>();
      d.scale_cols = w.scale.shape.back();
      d.block_rows = w.block_rows;
      d.block_cols = w.block_cols;
      break;
    default: fail("weight dtype ", dtype_name(w.w.dtype), " is not supported by the CUDA backend");
  }
  return d;
}

}  // namespace dsinfer::cuda
