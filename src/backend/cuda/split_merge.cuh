// Merging decode attention's splits of the keys: each live split writes its partial output
// (normalized by its own softmax sum) and the log2 of that sum, and the merge weighs the partials
// by exp2(lse - max) / sum.
// * merge_live_splits: inside the GQA decode kernel, by the last live split of a (token, head
//   block) to arrive (last_block_arrives counts them), so no combine kernel is launched.
// * list_live_splits and merge_live_columns: for a kernel after the attention, whose splits may
//   see keys in any pattern (combine_splits_kernel, and MLA's merge with W_UV, mla_output.cu).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {

// Splits whose loads (of lse, or of partial rows) a thread issues together, before it uses any:
// a merge is a chain of L2 round trips, so their number is its length.
constexpr int kSplitBatch = 8;

// Warp-level (every lane calls it): the splits of partial row `row` (of `rows` a split) that saw
// keys, in order, with their weights exp2(lse - max): weight[i] and live[i] for i below the count
// returned (each array holds s.splits entries); inv_den = 1 / the weights' sum (0: no keys). A
// plan made for every context length leaves most splits of a short context empty; each lse is
// read once, in batches of kSplitBatch loads.
__device__ inline int list_live_splits(const SplitKv& s, int64_t rows, int64_t row, float* weight, int* live,
                                       float& inv_den) {
  constexpr float kNoKeys = -__builtin_huge_valf();
  const int lane = threadIdx.x % 32;
  float mx = kNoKeys;
  for (int z0 = lane; z0 < s.splits; z0 += kSplitBatch * 32) {
    float lse[kSplitBatch];
#pragma unroll
    for (int u = 0; u < kSplitBatch; ++u) {
      const int z = z0 + 32 * u;
      lse[u] = z < s.splits ? s.part_lse[z * rows + row] : kNoKeys;
    }
#pragma unroll
    for (int u = 0; u < kSplitBatch; ++u) {
      if (z0 + 32 * u < s.splits) weight[z0 + 32 * u] = lse[u];  // staged: the lane reads its own back
      mx = fmaxf(mx, lse[u]);
    }
  }
  mx = warp_max(mx);
  int n = 0;
  float den = 0.0f;
  for (int z0 = 0; z0 < s.splits; z0 += 32) {
    const int z = z0 + lane;
    const float lse = z < s.splits ? weight[z] : kNoKeys;
    // Every lane has read its entry before any lane writes (the barrier): a live split's entry
    // moves down to its rank among the live ones, below the entries of later rounds.
    const unsigned has_keys = __ballot_sync(0xffffffffu, lse != kNoKeys);
    __syncwarp();
    if (lse != kNoKeys) {
      const int at = n + __popc(has_keys & ((1u << lane) - 1));
      weight[at] = exp2f(lse - mx);
      live[at] = z;
      den += weight[at];
    }
    n += __popc(has_keys);
  }
  den = warp_sum(den);
  inv_den = den > 0.0f ? 1.0f / den : 0.0f;
  __syncwarp();
  return n;
}

// acc[j] += the listed splits' partials of row `row`, column d + j (j < 4 with kVec, else j = 0),
// by their weights (list_live_splits; not yet divided by the sum), from the list's entry `from`
// on, in batches of kSplitBatch splits whose loads are all issued before any is used: a few
// dependent L2 round trips, not one a split.
template <bool kVec>
__device__ __forceinline__ void merge_live_columns(const SplitKv& s, int64_t rows, int64_t row, int dim, int d,
                                                   const float* weight, const int* live, int n_live,
                                                   float (&acc)[4], int from = 0) {
  for (int i0 = from; i0 < n_live; i0 += kSplitBatch) {
    float v[kSplitBatch][4];
#pragma unroll
    for (int u = 0; u < kSplitBatch; ++u) {
      const int i = i0 + u < n_live ? i0 + u : i0;  // past the live ones: a repeat, weighed 0
      const float* part = s.part_o + (live[i] * rows + row) * dim + d;
      if constexpr (kVec) {
        const float4 p4 = *reinterpret_cast<const float4*>(part);
        v[u][0] = p4.x, v[u][1] = p4.y, v[u][2] = p4.z, v[u][3] = p4.w;
      } else {
        v[u][0] = part[0];
      }
    }
#pragma unroll
    for (int u = 0; u < kSplitBatch; ++u) {
      const float w = i0 + u < n_live ? weight[i0 + u] : 0.0f;
#pragma unroll
      for (int j = 0; j < (kVec ? 4 : 1); ++j) acc[j] += w * v[u][j];
    }
  }
}

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
