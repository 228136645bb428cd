// Attention split over the keys: each split writes its partial output (normalized by its own
// softmax sum) and the log2 of that sum (-inf: it saw no key), and the splits are merged by
// their log-sum-exp. merge_live_splits does it inside the GQA decode kernel: each live split
// counts itself in, and the last of a (token, head block) to arrive merges all of them and writes
// the bf16 output (last_block_arrives counts them), so no combine kernel is launched. The row
// merge below (split_row_weights, merge_split_row) is combine_splits_kernel's, and the MLA
// value kernel's (mla_values.cu), which must equal it bit for bit.
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
    float mx = kNegInf;
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

// One row's merge, as a block: warp 0 lists the splits that saw keys with their weights
// exp2(lse - max) (a plan made for every context length leaves most splits of a short context
// empty) and 1 / their sum; then merge_split_row has each thread merge 4 output columns over just
// those splits, the loads of all splits in flight together: a row is a few dependent steps, not
// one per split and column. weight and live hold split.splits values each.
struct SplitRowWeights {
  int n_live;
  float inv_den;
};

// Warp 0 only (threadIdx.x < 32); the block syncs before merge_split_row reads the results.
__device__ __forceinline__ void split_row_weights(const SplitKv& split, int rows, int64_t row, float* weight, int* live,
                                                  SplitRowWeights& out) {
  const int lane = threadIdx.x;
  float mx = kNegInf;
  for (int z = lane; z < split.splits; z += 32) mx = fmaxf(mx, split.part_lse[z * static_cast<int64_t>(rows) + row]);
  mx = warp_max(mx);
  int n = 0;
  float den = 0.0f;
  for (int z0 = 0; z0 < split.splits; z0 += 32) {
    const int z = z0 + lane;
    const float lse = z < split.splits ? split.part_lse[z * static_cast<int64_t>(rows) + row] : kNegInf;
    const unsigned has_keys = __ballot_sync(0xffffffffu, lse != kNegInf);
    if (lse != kNegInf) {
      const int at = n + __popc(has_keys & ((1u << lane) - 1));
      weight[at] = exp2f(lse - mx);
      live[at] = z;
      den += weight[at];
    }
    n += __popc(has_keys);
  }
  den = warp_sum(den);
  if (lane == 0) out = {n, den > 0.0f ? 1.0f / den : 0.0f};
}

// out[0, dim) = the row's merged output in bf16 (all threads of the block).
template <bool kVec>
__device__ __forceinline__ void merge_split_row(const SplitKv& split, int rows, int64_t row, int dim,
                                                const float* weight, const int* live, const SplitRowWeights& w,
                                                __nv_bfloat16* out) {
  const int per_thread = kVec ? 4 : 1;
  for (int d = threadIdx.x * per_thread; d < dim; d += blockDim.x * per_thread) {
    float acc[4] = {};
#pragma unroll 4
    for (int i = 0; i < w.n_live; ++i) {
      const float* part = split.part_o + (live[i] * static_cast<int64_t>(rows) + row) * dim + d;
      if constexpr (kVec) {
        const float4 v = *reinterpret_cast<const float4*>(part);
        acc[0] += weight[i] * v.x, acc[1] += weight[i] * v.y, acc[2] += weight[i] * v.z, acc[3] += weight[i] * v.w;
      } else {
        acc[0] += weight[i] * part[0];
      }
    }
    for (int j = 0; j < per_thread; ++j) out[d + j] = __float2bfloat16(acc[j] * w.inv_den);
  }
}

}  // namespace dsinfer::cuda
