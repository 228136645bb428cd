// DeepSeek's activation recipe on the device, shared by the quantizing pass (quantize_fp8.cu) and
// the kernels that quantize x as they read it (gemv_fp8_mma.cu): a group of 128 values of a token
// is stored as e4m3(v / s) with s = amax / 448, so an outlier only coarsens its own group.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/rounded_quotient.h"

namespace dsinfer::cuda {

constexpr int kActGroup = 128;      // values sharing one scale
constexpr float kE4m3Max = 448.0f;  // largest finite e4m3 value

// Two floats -> two e4m3 bytes, round to nearest even, saturating (never inf or NaN).
__device__ __forceinline__ uint32_t to_e4m3x2(float a, float b) {
  return __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
}

// A 16-byte word of 8 bf16 as floats.
__device__ __forceinline__ void bf16x8_to_float(const uint4& raw, float (&v)[8]) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&words[i]));
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ float abs_max8(const float (&v)[8]) {
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
  return amax;
}

// The scale of a group whose largest magnitude is amax: that value lands on e4m3's largest finite
// one. An all-zero group (or one so small that the scale underflows) gets scale 1: its values
// quantize to zero instead of dividing by zero into NaN.
__device__ __forceinline__ float act_scale(float amax) {
  const float scale = amax / kE4m3Max;
  return scale > 0.0f ? scale : 1.0f;
}

// The scale of a group whose 128 values 16 consecutive lanes of a half-warp hold, 8 each (the
// group's magnitude reduced over them). Every lane of the warp calls it.
__device__ __forceinline__ float group_scale(const float (&v)[8]) {
  float amax = abs_max8(v);
  for (int o = 8; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  return act_scale(amax);
}

// 8 values as 8 e4m3 bytes of v / scale, each quotient rounded as IEEE division rounds it (the
// tests reproduce these bytes on the host with `/`), from one reciprocal instead of 8 divisions.
__device__ __forceinline__ uint2 quantize8(const float (&v)[8], float scale) {
  float q[8];
  if (reciprocal_quotient_exact(scale)) {
    const float inv = 1.0f / scale;
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = reciprocal_quotient(v[i], scale, inv);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = v[i] / scale;
  }
  uint2 packed;
  packed.x = to_e4m3x2(q[0], q[1]) | to_e4m3x2(q[2], q[3]) << 16;
  packed.y = to_e4m3x2(q[4], q[5]) | to_e4m3x2(q[6], q[7]) << 16;
  return packed;
}

}  // namespace dsinfer::cuda
