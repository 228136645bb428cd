// Device side of the FP8 latent row (core/latent_fp8.h): writing one from float values, and
// turning 16 of its e4m3 values back into bf16.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "backend/cuda/device_common.cuh"
#include "core/latent_fp8.h"

namespace dsinfer::cuda {

__device__ __forceinline__ float latent_scale(const uint8_t* row, const LatentFp8Layout& l, int group) {
  return reinterpret_cast<const float*>(row + l.scale_offset)[group];
}

// 16 e4m3 values (one 16-byte load) as two 16-byte halves of 16-bit values: value pair i
// (exactly, as f16) through `convert`, which returns its 4 output bytes.
template <typename Convert>
__device__ __forceinline__ void convert16(uint4 raw, uint4& lo, uint4& hi, Convert convert) {
  const uint32_t in[4] = {raw.x, raw.y, raw.z, raw.w};
  uint32_t out[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const auto pair = static_cast<__nv_fp8x2_storage_t>(in[i / 2] >> (16 * (i % 2)));
    out[i] = convert(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
  }
  lo = make_uint4(out[0], out[1], out[2], out[3]);
  hi = make_uint4(out[4], out[5], out[6], out[7]);
}

// 16 e4m3 values times `scale` -> 16 bf16.
__device__ __forceinline__ void dequantize16(uint4 raw, float scale, uint4& lo, uint4& hi) {
  convert16(raw, lo, hi, [&](__half2 v) {
    const float2 f = __half22float2(v);
    const __nv_bfloat162 b = __floats2bfloat162_rn(f.x * scale, f.y * scale);
    return *reinterpret_cast<const uint32_t*>(&b);
  });
}

// 16 e4m3 values times `scale` -> 16 f16 (tiles of f16 products): each pair unpacked exactly,
// times the scale in f16, then times 2^-10 when the scale is below f16's normal range (a group
// whose largest |value| is under 0.027: the first factor is then the scale times 2^10). Each
// multiply rounds once (~2^-11); the second is exact unless the value itself is below f16's
// normal range. No branch (one, a chunk or a pair, took 1.25-1.3x as long at 16 heads). The
// writers keep every value within f16's range (kLatentFp8MaxValue).
__device__ __forceinline__ void dequantize16_f16(uint4 raw, float scale, uint4& lo, uint4& hi) {
  const float tiny = scale < 0x1p-14f ? 0x1p-10f : 1.0f;
  const __half2 s2 = __float2half2_rn(scale / tiny), t2 = __float2half2_rn(tiny);
  convert16(raw, lo, hi, [&](__half2 v) {
    const __half2 r = __hmul2(__hmul2(v, s2), t2);
    return *reinterpret_cast<const uint32_t*>(&r);
  });
}

// One value of a row, for shapes the 16-value path does not take.
__device__ __forceinline__ float latent_value(const uint8_t* row, const LatentFp8Layout& l, int i) {
  if (i >= l.lora) return __bfloat162float(reinterpret_cast<const bf16*>(row + l.rope_offset)[i - l.lora]);
  const __half_raw h = __nv_cvt_fp8_to_halfraw(row[i], __NV_E4M3);
  return __half2float(__half(h)) * latent_scale(row, l, i / kLatentFp8Group);
}

// Writes every byte of a row but its rope values, from value(i) (i < lora), by the calling block
// (its size a multiple of 32: whole warps): each group's scale from its largest |value|, its
// values as e4m3, the padding after the values and after the rope part zeroed. Every thread calls
// it; barriers inside, but none before its first write of the shared maxima, so a second call
// needs a barrier between (the callers' block_sum is one). The groups' maxima come from one
// pass, up to kBatch groups at once: a warp's 32 values lie in one group, reduced by shuffles,
// and the warps' maxima meet in shared memory by atomicMax on their bits (non-negative floats
// order as their bits; NaN counts as 0, as fmaxf has it). A block-wide maximum a group, one after
// another, took ~3.5 us a decode layer more than the bf16 row's write (V2-Lite, batch 1, H100).
template <typename Value>
__device__ inline void write_latent_fp8(uint8_t* row, const LatentFp8Layout& l, Value value) {
  constexpr int kBatch = 8;
  __shared__ unsigned int amax_bits[kBatch];
  for (int g0 = 0; g0 < l.groups; g0 += kBatch) {
    const int c0 = g0 * kLatentFp8Group, c1 = min(l.lora, c0 + kBatch * kLatentFp8Group);
    if (g0 > 0) __syncthreads();  // the batch before has read its maxima
    if (threadIdx.x < kBatch) amax_bits[threadIdx.x] = 0;
    __syncthreads();
    for (int base = c0; base < c1; base += blockDim.x) {  // whole warps: the shuffles need every lane
      const int i = base + threadIdx.x;
      const float m = warp_max(i < c1 ? fmaxf(0.0f, fabsf(value(i))) : 0.0f);
      if (threadIdx.x % 32 == 0 && i < c1) atomicMax(&amax_bits[(i - c0) / kLatentFp8Group], __float_as_uint(m));
    }
    __syncthreads();
    for (int i = c0 + threadIdx.x; i < c1; i += blockDim.x) {
      const int g = (i - c0) / kLatentFp8Group;
      const float amax = fminf(__uint_as_float(amax_bits[g]), kLatentFp8MaxValue);
      const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;  // as the CPU's quantize_latent_row
      if ((i - c0) % kLatentFp8Group == 0) reinterpret_cast<float*>(row + l.scale_offset)[g0 + g] = scale;
      row[i] = __nv_cvt_float_to_fp8(value(i) / scale, __NV_SATFINITE, __NV_E4M3);
    }
  }
  for (int i = l.lora + threadIdx.x; i < l.scale_offset; i += blockDim.x) row[i] = 0;
  for (int i = l.rope_offset + 2 * l.rope + threadIdx.x; i < l.row_bytes; i += blockDim.x) row[i] = 0;
}

}  // namespace dsinfer::cuda
