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

// Splits whose loads (of lse, or of partial rows) a thread issues together, before it uses any:
// a merge is a chain of L2 round trips, so their number is its length.
constexpr int kSplitBatch = 8;

// out rows [row0, row0 + n_rows) (rows = (token, head), `dim` values each) = the splits' partials
// weighted by exp2(lse - max) / sum. R: rows a block owns at most; blockDim.x / R threads share a
// row's splits (a power of two up to 32). `smem`: (n_live + 1) * R floats. split_rows: rows per
// split in the partial buffers (tokens x heads).
template <int R>
__device__ void merge_live_splits(const SplitKv& s, int n_live, int64_t row0, int64_t split_rows, int n_rows, int dim,
                                  __nv_bfloat16* out, float* smem) {
  constexpr float kNoKeys = -__builtin_huge_valf();
  float* weight = smem;  // [n_live][R]: the splits' lse, then their weights
  float* inv_den = smem + n_live * R;
  {
    // Each lse is read once, in batches of kSplitBatch loads.
    const int tpr = blockDim.x / R, r = threadIdx.x / tpr, j = threadIdx.x % tpr;
    float mx = kNoKeys;
    for (int z0 = j; z0 < n_live; z0 += kSplitBatch * tpr) {
      float lse[kSplitBatch];
#pragma unroll
      for (int u = 0; u < kSplitBatch; ++u) {
        const int z = z0 + u * tpr;
        lse[u] = r < n_rows && z < n_live ? __ldcg(s.part_lse + z * split_rows + row0 + r) : kNoKeys;
      }
#pragma unroll
      for (int u = 0; u < kSplitBatch; ++u) {
        const int z = z0 + u * tpr;
        if (r < n_rows && z < n_live) weight[z * R + r] = lse[u];
        mx = fmaxf(mx, lse[u]);
      }
    }
    for (int off = 1; off < tpr; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    float den = 0.0f;
    if (r < n_rows)
      for (int z = j; z < n_live; z += tpr) {  // the entries this thread wrote
        const float w = exp2f(weight[z * R + r] - mx);
        weight[z * R + r] = w;
        den += w;
      }
    for (int off = 1; off < tpr; off <<= 1) den += __shfl_xor_sync(0xffffffffu, den, off);
    if (r < n_rows && j == 0) inv_den[r] = 1.0f / den;
  }
  __syncthreads();
  const int64_t z_stride = split_rows * dim, base = row0 * dim;
  const int total = n_rows * dim;
  if (dim % 4 == 0) {
    // A thread's 4 columns at two places a pass, over the splits in batches (past the last
    // split: a repeat of split 0, weighed 0).
    const int step = blockDim.x * 4;
    for (int i = threadIdx.x * 4; i < total; i += 2 * step) {
      const int i2 = i + step;
      const bool two = i2 < total;
      const int r = i / dim, r2 = two ? i2 / dim : r;
      float acc[4] = {}, acc2[4] = {};
      for (int z0 = 0; z0 < n_live; z0 += kSplitBatch) {
        float4 v[kSplitBatch], v2[kSplitBatch];
#pragma unroll
        for (int u = 0; u < kSplitBatch; ++u) {
          const float* part = s.part_o + (z0 + u < n_live ? z0 + u : 0) * z_stride + base;
          v[u] = __ldcg(reinterpret_cast<const float4*>(part + i));
          v2[u] = two ? __ldcg(reinterpret_cast<const float4*>(part + i2)) : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kSplitBatch; ++u) {
          const bool in = z0 + u < n_live;
          const float w = in ? weight[(z0 + u) * R + r] : 0.0f, w2 = in ? weight[(z0 + u) * R + r2] : 0.0f;
          acc[0] += w * v[u].x, acc[1] += w * v[u].y, acc[2] += w * v[u].z, acc[3] += w * v[u].w;
          acc2[0] += w2 * v2[u].x, acc2[1] += w2 * v2[u].y, acc2[2] += w2 * v2[u].z, acc2[3] += w2 * v2[u].w;
        }
      }
      for (int e = 0; e < 4; ++e) out[base + i + e] = __float2bfloat16(acc[e] * inv_den[r]);
      if (two)
        for (int e = 0; e < 4; ++e) out[base + i2 + e] = __float2bfloat16(acc2[e] * inv_den[r2]);
    }
  } else {
    for (int i = threadIdx.x; i < total; i += blockDim.x) {
      const int r = i / dim;
      float acc = 0.0f;
      for (int z = 0; z < n_live; ++z) acc += weight[z * R + r] * __ldcg(s.part_o + z * z_stride + base + i);
      out[base + i] = __float2bfloat16(acc * inv_den[r]);
    }
  }
}

}  // namespace dsinfer::cuda
