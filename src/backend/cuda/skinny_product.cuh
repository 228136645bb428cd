// Pieces shared by the skinny products (gemv.cu, gemv_fp8.cu, the few-token grouped experts of
// moe_grouped.cu): a warp streams weight rows in 16-byte pieces, lane-contiguous.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/device_common.cuh"

namespace dsinfer::cuda {

// The dot product of two 16-byte words of 8 bf16 each, in float.
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

// The 16 e4m3 weights of a 16-byte piece times the 16 bf16 values of x at the same columns (two
// 16-byte words), in float: an e4m3 pair becomes f16 in one instruction.
__device__ __forceinline__ float dot16(const uint4& w, const uint4& x0, const uint4& x1) {
  const uint4 xw[2] = {x0, x1};
  const __nv_fp8x2_storage_t* w2 = reinterpret_cast<const __nv_fp8x2_storage_t*>(&w);
  const __nv_bfloat162* x2 = reinterpret_cast<const __nv_bfloat162*>(xw);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float2 wf = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(w2[i], __NV_E4M3)));
    const float2 xf = __bfloat1622float2(x2[i]);
    s = fmaf(wf.x, xf.x, s);
    s = fmaf(wf.y, xf.y, s);
  }
  return s;
}

// acc[m] += piece wv of a weight row . piece c of row m of x (rows x_stride pieces apart), for
// the M rows of x a product applies the weight row to.
template <int M>
__device__ __forceinline__ void accumulate(float (&acc)[M], const uint4& wv, const uint4* x, int64_t x_stride, int c) {
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] += dot8(wv, __ldg(x + m * x_stride + c));
}

// The lane's batch of U pieces of a row starting at piece c, 32 pieces apart, as streaming loads
// (weights are not reused before eviction); pieces past the row's end are left as they are and
// never used.
template <int U>
__device__ __forceinline__ void load_batch(uint4 (&wv)[U], const uint4* row, int c, int pieces) {
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (c + 32 * u < pieces) wv[u] = __ldcs(row + c + 32 * u);
}

// acc[m] += the weight row's pieces [0, pieces) . row m of x, lane-strided in batches of U loads
// whose first batch is already in wv (issued before the caller's dependent wait). Every batch of
// loads is issued before any is used, the row's last partial batch included (a tail loop would
// wait on its loads one by one).
template <int M, int U>
__device__ __forceinline__ void stream_row(float (&acc)[M], uint4 (&wv)[U], const uint4* row, const uint4* x,
                                           int64_t x_stride, int lane, int pieces) {
  for (int c = lane; c < pieces; c += 32 * U) {
    if (c != lane) load_batch(wv, row, c, pieces);
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (c + 32 * u < pieces) accumulate<M>(acc, wv[u], x, x_stride, c + 32 * u);
  }
}

// acc of the `splits` warps that share a row (consecutive warps of a block of kWarps) summed
// into the first of them, each warp's lanes reduced first. Every warp of the block calls it.
template <int kWarps, int M>
__device__ __forceinline__ void sum_split_parts(float (&acc)[M], int splits) {
  __shared__ float part[kWarps][M];
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    acc[m] = warp_sum(acc[m]);
    if (threadIdx.x % 32 == 0) part[warp][m] = acc[m];
  }
  if (splits == 1) return;
  __syncthreads();
#pragma unroll
  for (int m = 0; m < M; ++m) {
    acc[m] = 0.0f;
    for (int j = 0; j < splits; ++j) acc[m] += part[warp - warp % splits + j][m];
  }
}

// Warps per weight row of a skinny launch of `rows` rows of `pieces` 16-byte pieces each: the
// most (up to max_splits, powers of two) that keep the launch within two full waves of resident
// warps while each lane still streams at least a batch of `unroll` pieces of its part.
inline int skinny_splits(int64_t rows, int pieces, int sm_count, int max_splits, int unroll) {
  const int64_t two_waves = int64_t{sm_count} * 64 * 2;  // 2048 threads per SM
  int splits = 1;
  while (splits < max_splits && rows * splits * 2 <= two_waves && pieces / (splits * 2) >= 32 * unroll) splits *= 2;
  return splits;
}

// Calls launch(std::integral_constant<int, M>{}) for m rows (1-4; more take 4): the skinny
// kernels are templates on their row count.
template <typename F>
void with_rows(int64_t m, F&& launch) {
  switch (m) {
    case 1: return launch(std::integral_constant<int, 1>{});
    case 2: return launch(std::integral_constant<int, 2>{});
    case 3: return launch(std::integral_constant<int, 3>{});
    default: return launch(std::integral_constant<int, 4>{});
  }
}

}  // namespace dsinfer::cuda
