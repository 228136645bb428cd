// Skinny products for decode: out[M, N] = x[M, K] W[N, K]^T (+ bias) for a few rows of x and
// bf16 weights. Such a product only streams W, so it is bound by memory bandwidth: a warp per
// weight row (or part of one, below), 16-byte loads with eight in flight per lane (enough bytes
// in flight per SM to cover the memory latency; four left o_proj- and down-sized rows at 1.7-2.5
// TB/s), the weights read once and marked streaming (they will not be reused before eviction),
// and every row of x, which all warps share, read through the L1 cache. The kernel is a
// dependent launch: its first loads of weights overlap the kernel before it (all of its weights,
// staged in shared memory, when its blocks all fit on the GPU at once: kStaged below).
// Launches of 3-4 rows on the main stream go to the tensor-core kernel instead (gemv_mma.cu).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/head_cols.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/skinny_product.cuh"
#include "backend/cuda/static_shared.h"

namespace dsinfer::cuda {
namespace {

// A block is four warps. When a launch has fewer rows than the GPU holds warps, a row is split
// over several warps (each streams a contiguous part of it and the parts add in shared memory):
// the weight loads in flight per SM, and so the bandwidth, grow with the warps resident, and a
// warp's row then takes fewer serial batches of loads. down_proj of the 7B shape (3584 rows of
// 37 KB) ran at 2.0 TB/s with one warp per row, against gate/up's 2.9 (37888 rows); split in 4
// it took 7B decode at batch 1 from 170.2 to 173.7 tok/s. Short rows stay whole: V2-Lite's
// (2048-2816 wide) lost 2 % split, each lane then holding too few loads to cover the latency.
constexpr int kWarps = 4, kUnroll = 8, kMaxSplits = 4;

// act[m, row] = silu(gate) * up from the block's gate warps (0-1) and up warps (2-3), each
// product rounded to bf16 first, as linear_many's bf16 outputs are before silu_mul.
template <int M>
__device__ __forceinline__ void silu_epilogue(const float (&acc)[M], bf16* act, int n, int row, bool live) {
  __shared__ float up_part[2][M];
  const int warp = threadIdx.x / 32;
  if (warp >= 2 && threadIdx.x % 32 == 0)
#pragma unroll
    for (int m = 0; m < M; ++m) up_part[warp - 2][m] = __bfloat162float(__float2bfloat16(acc[m]));
  __syncthreads();
  if (warp >= 2 || threadIdx.x % 32 != 0 || !live) return;
#pragma unroll
  for (int m = 0; m < M; ++m)
    act[static_cast<int64_t>(m) * n + row] =
        __float2bfloat16(silu_times(__bfloat162float(__float2bfloat16(acc[m])), up_part[warp][m]));
}

// Occupancy, measured on an H200 (7B decode, same call): one row runs 9 blocks an SM (56
// registers, no spills) instead of the 8 its 60 registers allowed, more weight loads in flight
// (b1 219 -> 223 tok/s); 2-4 rows state one block an SM as enough, so the compiler keeps more of
// each step's loads of x and W in registers (4 rows: 75 -> 85 registers, b4 548 -> 631 tok/s).
// kStaged (a launch whose blocks are all resident at once): each warp copies its whole part of
// its row into shared memory before the dependent wait, rather than only a first batch of loads
// into registers, so the whole product streams while the kernel before it runs. That kernel is
// o_proj's attention, a latency chain over a few blocks: o then only does its dots after it.
// kSilu: products 0 and 1 are gate and up of the same rows, one warp a row (splits 1); a block's
// warps 0-1 take gate rows 2b, 2b + 1 and warps 2-3 the same rows of up, so the block ends with
// both halves of its two activations (silu_epilogue).
template <int M, typename Out, bool kStaged, bool kSilu>
__global__ void __launch_bounds__(kWarps * 32, M == 1 ? 9 : 1)
    gemv_kernel(const bf16* x, GemvProducts products, int k, int splits) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // This block's product: the one whose run of blocks holds blockIdx.x (kSilu: the warp's half).
  int p = 0, row = 0;
  if constexpr (kSilu) {
    p = warp / 2;
    row = blockIdx.x * 2 + warp % 2;
  } else {
    p = products.product_of(blockIdx.x);
    row = (blockIdx.x - products.first_block[p]) * (kWarps / splits) + warp / splits;
  }
  const int n = products.n[p];
  // The warp's part of the row: pieces [begin, end) of its 16-byte pieces.
  const int chunks = k / 8, per_part = ceil_div(chunks, splits);
  const int begin = min(chunks, warp % splits * per_part), end = min(chunks, begin + per_part);
  const bool live = row < n;
  const int pieces = live ? end - begin : 0;
  const uint4* wr = reinterpret_cast<const uint4*>(products.w[p]) + static_cast<int64_t>(live ? row : 0) * chunks + begin;
  const uint4* xs = reinterpret_cast<const uint4*>(x) + begin;
  // No kernel writes the weights: they stream in while the previous kernel (the norm or
  // attention that makes x) is still running.
  float acc[M] = {};
  if constexpr (kStaged) {
    extern __shared__ uint4 staged[];
    uint4* part = staged + warp * per_part;
    const uint64_t once = l2_evict_first();
    for (int c = lane; c < pieces; c += 32)
      cp_async_16(reinterpret_cast<bf16*>(part + c), reinterpret_cast<const bf16*>(wr + c), 16, once);
    cp_async_commit();
    dependent_kernel_start();
    cp_async_wait_all();  // a lane reads back only the pieces it copied: no barrier
    for (int c = lane; c < pieces; c += 32) accumulate<M>(acc, part[c], xs, chunks, c);
  } else {
    uint4 wv[kUnroll];
    load_batch(wv, wr, lane, pieces);
    dependent_kernel_start();
    stream_row<M>(acc, wv, wr, xs, chunks, lane, pieces);
  }
  sum_split_parts<kWarps, M>(acc, splits);
  if constexpr (kSilu) {
    silu_epilogue<M>(acc, static_cast<bf16*>(products.out[0]), n, row, live);  // no biases
  } else {
    if (!live || lane != 0 || warp % splits != 0) return;
    const DeviceWeight& bias = products.bias[p];
    Out* out = static_cast<Out*>(products.out[p]);
#pragma unroll
    for (int m = 0; m < M; ++m)
      out[static_cast<int64_t>(m) * n + row] = static_cast<Out>(acc[m] + (bias.data ? weight_at(bias, 0, row) : 0.0f));
  }
}

// Warps per row over all the launch's products (skinny_splits).
int gemv_splits(const GemvProducts& products, int k, int sm_count) {
  int64_t rows = 0;
  for (int p = 0; p < products.count; ++p) rows += products.n[p];
  return skinny_splits(rows, k / 8, sm_count, kMaxSplits, kUnroll);
}

// False with DSINFER_STAGE=0: every product streams its rows through registers, for measuring
// what staging costs the kernel it overlaps (the 7B's batch-1 attention beside o_proj).
bool staging_enabled() {
  static const bool on = switched_on("DSINFER_STAGE");
  return on;
}

template <int M, typename Out, bool kSilu = false>
void launch_rows(const bf16* x, const GemvProducts& products, int k, int splits, int blocks, int sm_count,
                 bool may_stage, cudaStream_t s) {
  const size_t staged_bytes = size_t{kWarps} * ceil_div(k / 8, splits) * sizeof(uint4);
  int per_sm = 0;
  // A staged block takes at most the default shared memory, its static arrays included: no opt-in.
  if (may_stage && staging_enabled() &&
      staged_bytes + static_shared_bytes<gemv_kernel<M, Out, true, kSilu>>() <= kDefaultSharedBytes)
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel<M, Out, true, kSilu>, kWarps * 32,
                                                             staged_bytes));
  if (blocks <= per_sm * sm_count) {
    // Staged blocks that fit the decode chain's split ask for it, so that they land beside the
    // kernels before them (V2-Lite's o_proj beside MLA's W_UV product); larger ones (the 7B's
    // o_proj: 7 blocks of 28 KB an SM) keep the split that holds them all.
    launch_dependent("gemv_kernel", gemv_kernel<M, Out, true, kSilu>, blocks, kWarps * 32,
                     {staged_bytes, decode_chain_carveout(ceil_div(blocks, sm_count), staged_bytes)}, s, x, products,
                     k, splits);
  } else {
    launch_dependent("gemv_kernel", gemv_kernel<M, Out, false, kSilu>, blocks, kWarps * 32, 0, s, x, products, k,
                     splits);
  }
}

template <int M>
void gemv_rows(const bf16* x, GemvProducts products, DType out_dtype, int k, int sm_count, bool may_stage,
               cudaStream_t s) {
  const int splits = gemv_splits(products, k, sm_count), blocks = products.place_blocks(kWarps / splits);
  if (out_dtype == DType::F32)
    launch_rows<M, float>(x, products, k, splits, blocks, sm_count, may_stage, s);
  else
    launch_rows<M, bf16>(x, products, k, splits, blocks, sm_count, may_stage, s);
}

}  // namespace

// 3-4 rows of a product of 32 MB of weights or more go to cuBLASLt, which streams large weights
// faster than the tensor-core GEMV at that width; smaller ones are latency-bound, where the GEMV's
// launch costs less. H200 (session 34): 7B batch 3 541.8 -> 622.9 and batch 4 723.3 -> 828.5
// tok/s (gate/up, down, head; q/k/v's 33 MB either way: the same at a 100 MB bound); V2-Lite's
// 2-13 MB products all on cuBLASLt lost 5 %.
constexpr int64_t kMmaMaxWeightBytes = int64_t{32} << 20;

bool gemv_fits(int64_t m, int64_t n, int64_t k, const void* x, const void* w) {
  if (m > 2 && n * k * static_cast<int64_t>(sizeof(bf16)) >= kMmaMaxWeightBytes) return false;
  return m >= 1 && m <= kGemvMaxRows && k % 8 == 0 && k <= (int64_t{1} << 30) && aligned16(x) && aligned16(w);
}

void launch_gemv(const bf16* x, const GemvProducts& products, DType out_dtype, int64_t m, int64_t k, int sm_count,
                 bool may_stage, cudaStream_t s) {
  if (products.count == 0) return;
  if (may_stage && gemv_mma_fits(m, k)) return launch_gemv_mma(x, products, out_dtype, m, k, sm_count, s);
  const int ki = static_cast<int>(k);
  with_rows(m, [&](auto rows) { gemv_rows<rows.value>(x, products, out_dtype, ki, sm_count, may_stage, s); });
}

bool launch_gemv_silu(const bf16* x, const bf16* gate, const bf16* up, bf16* act, int64_t m, int64_t n, int64_t k,
                      int sm_count, bool may_stage, cudaStream_t s) {
  GemvProducts products;
  products.add(gate, DeviceWeight{}, act, n);
  products.add(up, DeviceWeight{}, nullptr, n);
  const int ki = static_cast<int>(k);
  if ((may_stage && gemv_mma_fits(m, k)) || gemv_splits(products, ki, sm_count) != 1) return false;
  const int blocks = static_cast<int>(ceil_div(n, int64_t{2}));
  with_rows(m, [&](auto rows) {
    launch_rows<rows.value, bf16, true>(x, products, ki, 1, blocks, sm_count, may_stage, s);
  });
  return true;
}

// ---- Per-head products of absorbed MLA at decode sizes (CudaBackend::head_matmul, t <= 4):
// w [H, N, K] bf16, x [T, H, in], out [T, H, out]. The whole w is streamed once, its loads
// issued before waiting for the previous kernel (no kernel writes weights).
namespace {

// out[t, h, n] = sum_k w[h, n, k] x[t, h, k]: a warp per row of w (H * N rows of K).
template <int M>
__global__ void __launch_bounds__(kWarps * 32) head_rows_kernel(const bf16* w, const bf16* x, bf16* out, int heads,
                                                                int n, int k) {
  const int row = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= heads * n) return;
  const int h = row / n, chunks = k / 8;
  const uint4* wr = reinterpret_cast<const uint4*>(w) + static_cast<int64_t>(row) * chunks;
  allow_next_kernel();  // before the wait: o_proj's staging starts sooner (dependent_launch.cuh)
  uint4 wv[kUnroll];
  load_batch(wv, wr, lane, chunks);
  wait_for_previous_kernels();
  const uint4* xs = reinterpret_cast<const uint4*>(x) + static_cast<int64_t>(h) * chunks;
  const int64_t x_stride = static_cast<int64_t>(heads) * chunks;  // one token's x, in pieces
  float acc[M] = {};
  stream_row<M>(acc, wv, wr, xs, x_stride, lane, chunks);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = warp_sum(acc[m]);
    if (lane == 0) out[(static_cast<int64_t>(m) * heads + h) * n + row % n] = __float2bfloat16(v);
  }
}

// out[t, h, c] = sum_n w[h, n, c] x[t, h, n]: a block per (head, 256 columns).
template <int M>
__global__ void __launch_bounds__(kHeadSlices * 32) head_cols_kernel(const bf16* w, const bf16* x, bf16* out,
                                                                     int heads, int n, int k) {
  head_cols_block<M>(w, x, n, out, heads, n, k, blockIdx.y, blockIdx.x);
}

template <int M>
void head_products(const bf16* x, const bf16* w, bool transpose, int heads, int n, int k, bf16* out, cudaStream_t s) {
  if (transpose) {
    launch_dependent("head_cols_kernel", head_cols_kernel<M>, dim3(ceil_div(k / 8, 32), heads), kHeadSlices * 32, 0, s,
                     w, x, out, heads, n, k);
  } else {
    launch_dependent("head_rows_kernel", head_rows_kernel<M>, ceil_div(heads * n, kWarps), kWarps * 32,
                     {0, kDecodeChainCarveout}, s, w, x, out, heads, n, k);
  }
}

}  // namespace

bool head_gemv_fits(int64_t t, int64_t n, int64_t k, const void* x, const void* w) {
  return t >= 1 && t <= kGemvMaxRows && k % 8 == 0 && n * k <= (int64_t{1} << 30) && aligned16(x) && aligned16(w);
}

void launch_head_gemv(const bf16* x, const bf16* w, bool transpose, int64_t t, int64_t heads, int64_t n, int64_t k,
                      bf16* out, cudaStream_t s) {
  const int h = static_cast<int>(heads), ni = static_cast<int>(n), ki = static_cast<int>(k);
  with_rows(t, [&](auto rows) { head_products<rows.value>(x, w, transpose, h, ni, ki, out, s); });
}

}  // namespace dsinfer::cuda
