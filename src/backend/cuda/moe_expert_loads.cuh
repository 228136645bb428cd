// Reading one expert matrix row of the grouped MoE kernels (moe_grouped.cu, moe_few.cu) in 16-byte
// pieces as bf16, whatever the experts' dtype.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/device_common.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe_kernels.h"

namespace dsinfer::cuda {

// FP8 block sizes and the scale matrix's row stride.
struct ScaleBlocks {
  int rows = 1, cols = 1;
  int64_t scale_cols = 0;
};

// An expert's matrices of one launch, gate and up or down, with their FP8 scales (else null).
template <bool kGateUp>
struct LaunchMatrices {
  static constexpr int M = kGateUp ? 2 : 1;
  const void* w[M];
  const float* sc[M];
  __device__ explicit LaunchMatrices(const ExpertPtrs& p) {
    if constexpr (kGateUp) {
      w[0] = p.gate, w[1] = p.up;
      sc[0] = p.gate_scale, sc[1] = p.up_scale;
    } else {
      w[0] = p.down;
      sc[0] = p.down_scale;
    }
  }
};

__device__ __forceinline__ uint4 pack8(const float (&v)[8]) {
  return make_uint4(pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7]));
}

// Weight values (row, k .. k + 7) as four bf16 pairs, rounded exactly as launch_weight_to_bf16
// rounds them (so every dtype computes with the same bf16 matrix as the cuBLASLt path). Loaded
// with ld.global.cs, which allocates in L1 and L2 as evict-first: a weight is read once a step,
// and the experts' rows (most of a V2-Lite decode step's bytes) then no longer push the latent
// cache, the activations and the kernels' code out of the L2 (session 30, H200, batch 1: MLA
// decode 221 -> 186 us a step, the expert launches 901 -> 843, 509 -> 531 tok/s).
template <DType D>
__device__ __forceinline__ uint4 load8(const void* w, const float* scale, int64_t row, int64_t k, int64_t cols,
                                       const ScaleBlocks& b) {
  const int64_t at = row * cols + k;
  if constexpr (D == DType::BF16) {
    return __ldcs(reinterpret_cast<const uint4*>(static_cast<const bf16*>(w) + at));
  } else if constexpr (D == DType::F16) {
    const uint4 raw = __ldcs(reinterpret_cast<const uint4*>(static_cast<const __half*>(w) + at));
    const __half* h = reinterpret_cast<const __half*>(&raw);
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = __half2float(h[i]);
    return pack8(v);
  } else if constexpr (D == DType::F32) {
    const float4 lo = __ldcs(reinterpret_cast<const float4*>(static_cast<const float*>(w) + at));
    const float4 hi = __ldcs(reinterpret_cast<const float4*>(static_cast<const float*>(w) + at + 4));
    const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    return pack8(v);
  } else {  // FP8 e4m3 with block scales
    const uint2 raw = __ldcs(reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(w) + at));
    const __nv_fp8_e4m3* f = reinterpret_cast<const __nv_fp8_e4m3*>(&raw);
    const float* srow = scale + (row / b.rows) * b.scale_cols;
    const bool one_scale = b.cols % 8 == 0;  // k is a multiple of 8, so the 8 values share a block
    const float s = srow[k / b.cols];
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = static_cast<float>(f[i]) * (one_scale ? s : srow[(k + i) / b.cols]);
    return pack8(v);
  }
}

}  // namespace dsinfer::cuda
