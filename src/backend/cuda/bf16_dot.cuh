// The dot product of two 16-byte words of 8 bf16 each, in float: the inner step of the skinny
// products (gemv.cu, the few-token grouped experts of moe_grouped.cu).
#pragma once
#include <cuda_bf16.h>

namespace dsinfer::cuda {

__device__ __forceinline__ float dot8(const uint4& a, const uint4& b) {
  const __nv_bfloat162* pa = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* pb = reinterpret_cast<const __nv_bfloat162*>(&b);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(pa[i]), fb = __bfloat1622float2(pb[i]);
    s = fmaf(fa.x, fb.x, s);
    s = fmaf(fa.y, fb.y, s);
  }
  return s;
}

}  // namespace dsinfer::cuda
