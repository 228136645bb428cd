// Device helpers shared by the kernels: bf16 types, reading weights of any dtype as float,
// warp reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/device_weight.h"

namespace dsinfer::cuda {

using bf16 = __nv_bfloat16;

constexpr float kNegInf = -__builtin_huge_valf();

// 2^x on the special-function unit, subnormal results flushed to 0 and exp2(-inf) = 0 (exp2f adds
// two multiplies to keep the subnormals): the softmaxes' exponential.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Element (r, c) of a weight as float; FP8 values are multiplied by their block's scale.
__device__ __forceinline__ float weight_at(const DeviceWeight& w, int64_t r, int64_t c) {
  const int64_t i = r * w.cols + c;
  switch (w.dtype) {
    case DType::BF16: return __bfloat162float(static_cast<const bf16*>(w.data)[i]);
    case DType::F16: return __half2float(static_cast<const __half*>(w.data)[i]);
    case DType::F8_E4M3: {
      const float v = static_cast<float>(static_cast<const __nv_fp8_e4m3*>(w.data)[i]);
      return v * w.scale[(r / w.block_rows) * w.scale_cols + c / w.block_cols];
    }
    default: return static_cast<const float*>(w.data)[i];
  }
}

// silu(g) * u, the SiLU-gated MLP's activation (every kernel that forms it computes it this way).
__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// v summed over the calling block (any multiple of 32 threads up to 1024; every thread gets it).
// A second call may reuse the shared partials only after a barrier.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total += partial[i];
  return total;
}

// For kernels whose last block to finish does a final step over every block's output: called by
// every thread of a block once its outputs are written, true in the last of `blocks` blocks to
// arrive, which resets the counter to 0 for the next launch (a recorded step replays the same
// launch) and then sees every other block's writes (read them past L1: __ldcg).
//
// The barrier orders the block's writes before thread 0's count, whose release publishes them
// (cumulative at GPU scope) and whose acquire, in the last block, orders every block's writes
// before its reads, which the second barrier hands to the block's other threads. No full fence:
// a __threadfence() in every thread was a sequentially consistent MEMBAR.SC.GPU per warp.
__device__ inline bool last_block_arrives(int* counter, int blocks) {
  __shared__ int last;
  __syncthreads();
  if (threadIdx.x == 0) {
    int before;
    asm volatile("atom.acq_rel.gpu.add.s32 %0, [%1], 1;\n" : "=r"(before) : "l"(counter) : "memory");
    last = before == blocks - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  return last;
}

}  // namespace dsinfer::cuda
