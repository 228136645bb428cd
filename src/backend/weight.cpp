#include "backend/weight.h"

#include "core/error.h"

namespace dsinfer {

void weight_row_to_f32(const Weight& w, int64_t r, float* out) {
  const int64_t k = w.w.shape.size() == 1 ? w.w.dim(0) : w.w.dim(1);
  const char* row = static_cast<const char*>(w.w.data) + r * k * static_cast<int64_t>(dtype_size(w.w.dtype));
  switch (w.w.dtype) {
    case DType::F32: {
      const float* p = reinterpret_cast<const float*>(row);
      for (int64_t i = 0; i < k; ++i) out[i] = p[i];
      return;
    }
    case DType::BF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < k; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < k; ++i) out[i] = f16_to_f32(p[i]);
      return;
    }
    case DType::F8_E4M3: {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(row);
      const float* scales = w.scale.ptr<float>() + (r / w.block_rows) * w.scale.dim(1);
      for (int64_t i = 0; i < k; ++i) out[i] = fp8e4m3_to_f32(p[i]) * scales[i / w.block_cols];
      return;
    }
    default:
      fail("weight dtype ", dtype_name(w.w.dtype), " cannot be read as float");
  }
}

}  // namespace dsinfer
