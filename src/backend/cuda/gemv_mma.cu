// Skinny products of 3-4 tokens on tensor cores: out[M, N] = x[M, K] W[N, K]^T (+ bias), bf16 x
// and W. gemv.cu's kernel does its dots on CUDA cores: each 16-byte piece of a weight row costs a
// load of x and a dot of 8 per token, so at 4 tokens its products take 1.4x their one-token time
// (H200, 7B). Here a warp owns 8 weight rows, the B operand of mma.m16n8k16 (tokens are the A
// rows, padded to 16 with zeros), for any number of tokens up to 8 at the cost of one.
//
// Streaming: versions that loaded each lane's fragment straight from memory walked 8 or 16 rows
// 64 bytes at a time and streamed far slower than gemv.cu (7B batch 2: 297 against 434 tok/s,
// session 20). Here every copy instruction of a warp moves 512 contiguous bytes of one row
// (cp.async, 16 bytes a lane) into the warp's own ring of kStages chunks in shared memory, each
// chunk 256 columns of its 8 rows, and ldmatrix turns a chunk into B fragments. No block barrier:
// a warp waits for its own copies. The first chunks are issued before the dependent wait.
//
// Like gemv.cu: several products of one x in one launch (q/k/v), long rows split over the warps
// of a block (partial sums added in shared memory). Measured against gemv.cu (H200, session 20):
// 7B batch 4 +7 % (674-677 -> 723-724 tok/s) but batch 2 -7 %, so it takes 3-4 tokens; and only
// on the main stream: on a branch (V2-Lite's shared expert) its 100 KB blocks kept the main
// line's kernels off the SMs (V2-Lite batch 4 -19 %).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8;                  // a block: 8 warps, over 8 / splits groups of 8 rows
constexpr int kRows = 8;                   // weight rows a warp owns: the mma's N
constexpr int kChunk = 256;                // columns of a staged chunk: 512 bytes of a row
constexpr int kStride = kChunk + 8;        // a staged row, padded so ldmatrix's 8 rows hit 8 bank groups
constexpr int kStages = 3;                 // chunks of a warp's ring
constexpr int kMaxSplits = 8;
constexpr size_t kWarpBytes = size_t{kStages} * kRows * kStride * sizeof(bf16);
constexpr size_t kSmemBytes = kWarps * kWarpBytes;

// Chunk q of the warp's rows into ring slot `slot`: row r's 512 bytes by one copy instruction of
// the warp; columns past k and rows past n are zero-filled.
__device__ __forceinline__ void issue_chunk(bf16* slot, const bf16* w, int row0, int n, int k, int q, int lane) {
  const int col = q * kChunk + lane * 8;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const bool live = row0 + r < n && col < k;
    const bf16* src = live ? w + static_cast<int64_t>(row0 + r) * k + col : g_zero_src;
    cp_async_16(slot + r * kStride + lane * 8, src, live ? 16 : 0, l2_evict_first());
  }
}

// A fragment (rows: tokens) of x for the 16 columns from k0: token g's columns k0 + 2c, +1 and
// k0 + 2c + 8, +9; zero for tokens past the batch and columns past k.
__device__ __forceinline__ void x_fragment(uint32_t (&a)[4], const bf16* xr, bool token, int k0, int c, int k) {
  const int c0 = k0 + 2 * c, c1 = c0 + 8;
  a[0] = token && c0 < k ? __ldg(reinterpret_cast<const uint32_t*>(xr + c0)) : 0u;
  a[2] = token && c1 < k ? __ldg(reinterpret_cast<const uint32_t*>(xr + c1)) : 0u;
  a[1] = a[3] = 0u;
}

// Two blocks an SM (the rings' shared memory allows no more): the bound keeps the compiler from
// hoisting a whole chunk's x loads into 152 registers, which left room for one.
template <typename Out>
__global__ void __launch_bounds__(kWarps * 32, 2) gemv_mma_kernel(const bf16* x, GemvProducts products, int m, int k,
                                                                int splits) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int p = products.product_of(blockIdx.x);
  const int n = products.n[p], warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int row0 = ((blockIdx.x - products.first_block[p]) * (kWarps / splits) + warp / splits) * kRows;
  // The warp's part of K: chunks [begin, end).
  const int chunks = ceil_div(k, kChunk), per_part = ceil_div(chunks, splits);
  const int begin = min(chunks, warp % splits * per_part), end = min(chunks, begin + per_part);
  const int count = row0 < n ? end - begin : 0;
  bf16* ring = reinterpret_cast<bf16*>(smem + warp * kWarpBytes);
  const bf16* w = products.w[p];
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < count) issue_chunk(ring + s * kRows * kStride, w, row0, n, k, begin + s, lane);
    cp_async_commit();
  }
  dependent_kernel_start();  // x comes from the previous kernel; no kernel writes weights
  const bool token = g < m;
  const bf16* xr = x + static_cast<int64_t>(token ? g : 0) * k;
  // ldmatrix.x4 of 8 rows x 32 columns: lane i gives row i % 8 of the 8-column matrix i / 8.
  const int ld_row = lane % 8, ld_col = (lane / 8) * 8;
  float acc[4] = {};
  for (int i = 0; i < count; ++i) {
    __syncwarp();  // every lane is done with the slot the next copies fill
    if (i + kStages - 1 < count)
      issue_chunk(ring + (i + kStages - 1) % kStages * kRows * kStride, w, row0, n, k, begin + i + kStages - 1, lane);
    cp_async_commit();
    cp_async_wait<kStages - 1>();  // chunk i has landed (this lane's copies)
    __syncwarp();                  // ... and every lane's
    const bf16* slot = ring + i % kStages * kRows * kStride;
    const int k_base = (begin + i) * kChunk;
#pragma unroll
    for (int b = 0; b < kChunk / 32; ++b) {
      uint32_t wf[4], a0[4], a1[4];
      ldmatrix_x4(wf, slot + ld_row * kStride + b * 32 + ld_col);
      x_fragment(a0, xr, token, k_base + b * 32, c, k);
      x_fragment(a1, xr, token, k_base + b * 32 + 16, c, k);
      mma_bf16(acc, a0, wf[0], wf[1]);
      mma_bf16(acc, a1, wf[2], wf[3]);
    }
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
  // Lane (g, c) holds token g's sums for rows 2c and 2c + 1 of the warp's 8.
  if (!token) return;
  const DeviceWeight& bias = products.bias[p];
  Out* out = static_cast<Out*>(products.out[p]) + static_cast<int64_t>(g) * n;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int row = row0 + 2 * c + j;
    if (row < n) out[row] = static_cast<Out>(acc[j] + (bias.data ? weight_at(bias, 0, row) : 0.0f));
  }
}

// Warps per row group (a divisor of kWarps, each streaming at least kStages chunks): a warp's
// rows take long (7B gate/up at 4 tokens: ~27 µs for 8 rows), so the launch is costed in whole
// waves of resident warps (2 blocks an SM). E.g. 4736 groups on 132 SMs: 1 split runs 3 waves
// (2.24 full), 4 splits 9 of a quarter each (8.97 full).
int mma_splits(int64_t groups, int k, int sm_count) {
  const int chunks = ceil_div(k, kChunk);
  return fewest_wave_splits(groups, int64_t{sm_count} * 2 * kWarps, kMaxSplits,
                            [&](int s) { return kWarps % s == 0 && chunks / s >= kStages; });
}

template <typename Out>
void launch_typed(const bf16* x, const GemvProducts& products, int m, int k, int splits, int blocks, cudaStream_t s) {
  CUDA_CHECK(cudaFuncSetAttribute(gemv_mma_kernel<Out>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(kSmemBytes)));
  launch_dependent("gemv_mma_kernel", gemv_mma_kernel<Out>, blocks, kWarps * 32, kSmemBytes, s, x, products, m, k,
                   splits);
}

}  // namespace

bool gemv_mma_fits(int64_t m, int64_t k) { return m >= 3 && m <= kGemvMaxRows && k % 8 == 0; }

void launch_gemv_mma(const bf16* x, GemvProducts products, DType out_dtype, int64_t m, int64_t k, int sm_count,
                     cudaStream_t s) {
  if (products.count == 0) return;
  int64_t groups = 0;
  for (int p = 0; p < products.count; ++p) groups += ceil_div(products.n[p], kRows);
  const int ki = static_cast<int>(k), mi = static_cast<int>(m);
  const int splits = mma_splits(groups, ki, sm_count), blocks = products.place_blocks(kRows * (kWarps / splits));
  if (out_dtype == DType::F32)
    launch_typed<float>(x, products, mi, ki, splits, blocks, s);
  else
    launch_typed<bf16>(x, products, mi, ki, splits, blocks, s);
}

}  // namespace dsinfer::cuda
