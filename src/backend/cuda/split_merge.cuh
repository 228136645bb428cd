// Decode attention split over the keys, merged inside the kernel: each live split writes its
// partial output (normalized by its own softmax sum) and the log2 of that sum, then counts itself
// in; the last live split of a (token, head block) to arrive merges all of them by their
// log-sum-exp and writes the bf16 output (last_block_arrives counts them), so no combine kernel
// is launched. Used by the GQA decode kernel.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {

// out rows [row0, row0 + n_rows) (rows = (token, head), `dim` values each) = the splits' partials
// weighted by exp2(lse - max) / sum. R: rows a block owns at most; blockDim.x / R threads share a
// row's splits (a power of two up to 32). `smem`: (n_live + 1) * R floats. split_rows: rows per
// split in the partial buffers (tokens x heads).
template <int R>
__device__ void merge_live_splits(const SplitKv& s, int n_live, int64_t row0, int64_t split_rows, int n_rows, int dim,
                                  __nv_bfloat16* out, float* smem) {
  float* weight = smem;  // [n_live][R]
  float* inv_den = smem + n_live * R;
  {
    const int tpr = blockDim.x / R, r = threadIdx.x / tpr, j = threadIdx.x % tpr;
    float mx = -__builtin_huge_valf();
    if (r < n_rows)
      for (int z = j; z < n_live; z += tpr) mx = fmaxf(mx, __ldcg(s.part_lse + z * split_rows + row0 + r));
    for (int off = 1; off < tpr; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    float den = 0.0f;
    if (r < n_rows)
      for (int z = j; z < n_live; z += tpr) {
        const float w = exp2f(__ldcg(s.part_lse + z * split_rows + row0 + r) - mx);
        weight[z * R + r] = w;
        den += w;
      }
    for (int off = 1; off < tpr; off <<= 1) den += __shfl_xor_sync(0xffffffffu, den, off);
    if (r < n_rows && j == 0) inv_den[r] = 1.0f / den;
  }
  __syncthreads();
  const int64_t z_stride = split_rows * dim, base = row0 * dim;
  if (dim % 4 == 0) {  // a thread's 4 columns over every split, their loads in flight together
    for (int i = threadIdx.x * 4; i < n_rows * dim; i += blockDim.x * 4) {
      const int r = i / dim;
      float acc[4] = {};
#pragma unroll 4
      for (int z = 0; z < n_live; ++z) {
        const float4 v = __ldcg(reinterpret_cast<const float4*>(s.part_o + z * z_stride + base + i));
        const float w = weight[z * R + r];
        acc[0] += w * v.x, acc[1] += w * v.y, acc[2] += w * v.z, acc[3] += w * v.w;
      }
      for (int e = 0; e < 4; ++e) out[base + i + e] = __float2bfloat16(acc[e] * inv_den[r]);
    }
  } else {
    for (int i = threadIdx.x; i < n_rows * dim; i += blockDim.x) {
      const int r = i / dim;
      float acc = 0.0f;
      for (int z = 0; z < n_live; ++z) acc += weight[z * R + r] * __ldcg(s.part_o + z * z_stride + base + i);
      out[base + i] = __float2bfloat16(acc * inv_den[r]);
    }
  }
}

}  // namespace dsinfer::cuda
