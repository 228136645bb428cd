// Skinny products of 2-4 tokens on tensor cores: out[M, N] = x[M, K] W[N, K]^T (+ bias), bf16 x
// and W. gemv.cu's kernel does its dots on CUDA cores: each 16-byte piece of a weight row costs a
// load of x and a dot of 8 per token, so at 4 tokens its products took 1.4x their one-token time
// (H200, 7B). Here a warp streams 8 weight rows as the B operand of mma.m16n8k16 (tokens are the
// A rows, padded to 16 with zeros): per 16-byte piece of W a lane issues one load of W, one of x
// (shared by the warp's rows) and two mma, for any number of tokens up to 8.
//
// Operand layout without shuffles: a lane (g = lane / 4, c = lane % 4) loads the 16 bytes
// [8c, 8c + 8) of each 32-wide block of K of weight row g, and the same 16 bytes of token g's x.
// The mma sums over K in any order, so the block's 32 columns are assigned to the two mma's
// k-slots to match what each lane loaded: elements 0-3 are k-slots {2c, 2c+1, 2c+8, 2c+9} of the
// first mma, elements 4-7 the same slots of the second (A and B use one assignment, so every
// product pairs x and W at the same column). Lane (g, c) ends with token g's sums for weight rows
// 2c and 2c + 1 of the warp's 8.
//
// Like gemv.cu: several products of one x in one launch (q/k/v), long rows split over the warps
// of a block (partial sums added in shared memory), weights streamed with their first batch of
// loads issued before the dependent wait.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8;        // a block: 8 warps, over 8 / splits groups of 8 weight rows
constexpr int kRowsPerWarp = 8;  // the mma's N
constexpr int kUnroll = 8;       // 16-byte pieces of W a lane has in flight
constexpr int kBlockK = 32;      // columns of K a lane's piece and the warp's two mma cover
constexpr int kMaxSplits = 8;

// The warp's two mma over one 32-wide block of K: w, this lane's piece of its weight row; x, the
// same piece of its token's row (zero for tokens past the batch).
__device__ __forceinline__ void mma_piece(float (&acc)[4], const uint4& w, const uint4& x) {
  const uint32_t a0[4] = {x.x, 0u, x.y, 0u}, a1[4] = {x.z, 0u, x.w, 0u};
  mma_bf16(acc, a0, w.x, w.y);
  mma_bf16(acc, a1, w.z, w.w);
}

template <typename Out>
__global__ void __launch_bounds__(kWarps * 32) gemv_mma_kernel(const bf16* x, GemvProducts products, int m, int k,
                                                                int splits) {
  int p = 0;
  while (p + 1 < products.count && static_cast<int>(blockIdx.x) >= products.first_block[p + 1]) ++p;
  const int n = products.n[p], warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int row0 = ((blockIdx.x - products.first_block[p]) * (kWarps / splits) + warp / splits) * kRowsPerWarp;
  // The warp's part of K: 32-wide blocks [begin, end).
  const int blocks = k / kBlockK, per_part = ceil_div(blocks, splits);
  const int begin = min(blocks, warp % splits * per_part), end = min(blocks, begin + per_part);
  const int pieces = row0 < n ? end - begin : 0;
  // Rows past n read row n - 1 (their sums are never stored); the stride between a lane's pieces
  // is 32 columns = 4 uint4.
  const int my_row = min(row0 + g, n - 1);
  const uint4* wr = reinterpret_cast<const uint4*>(products.w[p] + static_cast<int64_t>(my_row) * k) + begin * 4 + c;
  const uint4* xr = reinterpret_cast<const uint4*>(x + static_cast<int64_t>(min(g, m - 1)) * k) + begin * 4 + c;
  const bool token = g < m;
  float acc[4] = {};
  uint4 wv[kUnroll];
#pragma unroll
  for (int u = 0; u < kUnroll; ++u)
    if (u < pieces) wv[u] = __ldcs(wr + 4 * u);
  dependent_kernel_start();  // x comes from the previous kernel; no kernel writes weights
  for (int b = 0; b < pieces; b += kUnroll) {
    if (b != 0) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (b + u < pieces) wv[u] = __ldcs(wr + 4 * (b + u));
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (b + u < pieces) mma_piece(acc, wv[u], token ? __ldg(xr + 4 * (b + u)) : make_uint4(0, 0, 0, 0));
  }
  // Sums of the `splits` warps of a row group into the first of them.
  __shared__ float part[kWarps][32][2];
  if (splits > 1) {
    part[warp][lane][0] = acc[0];
    part[warp][lane][1] = acc[1];
    __syncthreads();
    if (warp % splits != 0) return;
    for (int j = 1; j < splits; ++j) {
      acc[0] += part[warp + j][lane][0];
      acc[1] += part[warp + j][lane][1];
    }
  }
  if (!token) return;
  const DeviceWeight& bias = products.bias[p];
  Out* out = static_cast<Out*>(products.out[p]) + static_cast<int64_t>(g) * n;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int row = row0 + 2 * c + j;
    if (row < n) out[row] = static_cast<Out>(acc[j] + (bias.data ? weight_at(bias, 0, row) : 0.0f));
  }
}

// Warps per row group: the most (up to kMaxSplits) that keep the launch within two waves of
// resident warps (4 blocks an SM) while each lane still streams at least a batch of pieces.
int mma_splits(int64_t groups, int k, int sm_count) {
  const int64_t two_waves = int64_t{sm_count} * 4 * kWarps * 2;
  int splits = 1;
  while (splits < kMaxSplits && groups * splits * 2 <= two_waves && k / kBlockK / (splits * 2) >= kUnroll) splits *= 2;
  return splits;
}

}  // namespace

bool gemv_mma_fits(int64_t m, int64_t k) { return m >= 2 && m <= kGemvMaxRows && k % kBlockK == 0; }

void launch_gemv_mma(const bf16* x, GemvProducts products, DType out_dtype, int64_t m, int64_t k, int sm_count,
                     cudaStream_t s) {
  if (products.count == 0) return;
  int64_t groups = 0;
  for (int p = 0; p < products.count; ++p) groups += ceil_div(products.n[p], kRowsPerWarp);
  const int ki = static_cast<int>(k), mi = static_cast<int>(m);
  const int splits = mma_splits(groups, ki, sm_count), groups_per_block = kWarps / splits;
  int blocks = 0;
  for (int p = 0; p < products.count; ++p) {
    products.first_block[p] = blocks;
    blocks += ceil_div(ceil_div(products.n[p], kRowsPerWarp), groups_per_block);
  }
  if (out_dtype == DType::F32)
    launch_dependent("gemv_mma_kernel", gemv_mma_kernel<float>, blocks, kWarps * 32, 0, s, x, products, mi, ki, splits);
  else
    launch_dependent("gemv_mma_kernel", gemv_mma_kernel<bf16>, blocks, kWarps * 32, 0, s, x, products, mi, ki, splits);
}

}  // namespace dsinfer::cuda
