// Absorbed MLA's output at decode sizes (1-4 tokens): the merge of the attention's splits of the
// keys and the per-head W_UV product in one launch (CudaBackend::mla_attention_uv), where the
// split merge (combine_splits_kernel) and the product (head_rows_kernel) ran as two kernels of
// the decode chain, each paying its launch and its wait on the one before.
//
// Block (slice, h) owns rows [slice * rows_per_block, ...) of head h's w_uv [n, lora]: it copies
// them into shared memory before the dependent wait (no kernel writes weights, so they stream
// during the attention), then merges the head's partial rows of every token into shared memory
// (bf16, as the separate merge rounds them) and applies its rows to them, a warp a row. Slices
// of a head each merge its partials again, so their number is held to kMergeReads split reads.
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/skinny_product.cuh"
#include "backend/cuda/split_merge.cuh"
#include "backend/cuda/static_shared.h"

namespace dsinfer::cuda {
namespace {

constexpr int kOutWarps = 8;
constexpr int kOutMaxPieces = 2;   // 16-byte pieces of a row a lane holds: lora up to 512
constexpr int kMergeReads = 512;   // slices of a head x planned splits, at most

struct OutArgs {
  SplitKv split;
  const bf16* w = nullptr;  // [heads, n, lora]
  bf16* out = nullptr;      // [T, heads, n]
  int heads = 0, n = 0, lora = 0, rows_per_block = 0;
};

// Shared memory of a block: its rows of w, the merged rows of x, then the live splits' weights and
// indices of every token.
size_t output_smem_bytes(int tokens, int rows_per_block, int lora, int splits) {
  return (static_cast<size_t>(rows_per_block) + tokens) * lora * sizeof(bf16) +
         static_cast<size_t>(tokens) * splits * (sizeof(float) + sizeof(int));
}

template <int T>
__global__ void __launch_bounds__(kOutWarps * 32) mla_output_kernel(OutArgs a) {
  extern __shared__ uint4 smem[];
  const int h = blockIdx.y, row0 = blockIdx.x * a.rows_per_block, pieces = a.lora / 8, S = a.split.splits;
  const int rows = min(a.rows_per_block, a.n - row0);
  uint4* ws = smem;                                      // [rows_per_block][pieces]
  uint4* xs = ws + a.rows_per_block * pieces;            // [T][pieces]
  float* weight = reinterpret_cast<float*>(xs + T * pieces);  // [T][S]
  int* live = reinterpret_cast<int*>(weight + T * S);         // [T][S]
  __shared__ int n_live[T];
  __shared__ float inv_den[T];
  const bf16* src = a.w + (static_cast<int64_t>(h) * a.n + row0) * a.lora;
  const uint64_t once = l2_evict_first();
  for (int i = threadIdx.x; i < rows * pieces; i += blockDim.x)
    cp_async_16(reinterpret_cast<bf16*>(ws + i), src + 8 * static_cast<int64_t>(i), 16, once);
  cp_async_commit();
  allow_next_kernel();  // before the wait: o_proj's staging starts sooner (dependent_launch.cuh)
  wait_for_previous_kernels();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t split_rows = static_cast<int64_t>(T) * a.heads;  // (token, head) rows of a split
  // A thread's first (token, 4 columns) of the merge: the partials of splits 0 to kSplitBatch - 1,
  // loaded beside the lse, since a context's live splits are its first (split_range): the merge's
  // first batch then waits on no round trip of its own after the list.
  const int quads = a.lora / 4;
  float4 first[kSplitBatch];
  if (threadIdx.x < T * quads) {
    const int64_t row = (threadIdx.x / quads) * a.heads + h;
    const int d = (threadIdx.x % quads) * 4;
#pragma unroll
    for (int u = 0; u < kSplitBatch; ++u)
      if (u < S) first[u] = __ldcg(reinterpret_cast<const float4*>(a.split.part_o + (u * split_rows + row) * a.lora + d));
  }
  if (warp < T) {
    float inv = 0.0f;
    const int n = list_live_splits(a.split, split_rows, warp * a.heads + h, weight + warp * S, live + warp * S, inv);
    if (lane == 0) n_live[warp] = n, inv_den[warp] = inv;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < T * quads; i += blockDim.x) {
    const int t = i / quads, d = (i % quads) * 4, n = n_live[t];
    const float* wt = weight + t * S;
    const int* lt = live + t * S;
    float acc[4] = {};
    int from = 0;
    if (i == threadIdx.x && (n == 0 || lt[n - 1] == n - 1)) {  // the live splits are 0 .. n - 1
      from = min(n, kSplitBatch);
#pragma unroll
      for (int u = 0; u < kSplitBatch; ++u) {
        const float w = u < from ? wt[u] : 0.0f;
        if (u < from) acc[0] += w * first[u].x, acc[1] += w * first[u].y, acc[2] += w * first[u].z, acc[3] += w * first[u].w;
      }
    }
    merge_live_columns<true>(a.split, split_rows, t * a.heads + h, a.lora, d, wt, lt, n, acc, from);
    const __nv_bfloat162 lo = __floats2bfloat162_rn(acc[0] * inv_den[t], acc[1] * inv_den[t]);
    const __nv_bfloat162 hi = __floats2bfloat162_rn(acc[2] * inv_den[t], acc[3] * inv_den[t]);
    __nv_bfloat162* dst = reinterpret_cast<__nv_bfloat162*>(reinterpret_cast<bf16*>(xs) + t * a.lora + d);
    dst[0] = lo, dst[1] = hi;
  }
  cp_async_wait_all();
  __syncthreads();

  // A lane's pieces of every token's merged row stay in registers over the warp's rows.
  uint4 xv[T][kOutMaxPieces];
#pragma unroll
  for (int t = 0; t < T; ++t)
#pragma unroll
    for (int j = 0; j < kOutMaxPieces; ++j)
      if (lane + 32 * j < pieces) xv[t][j] = xs[t * pieces + lane + 32 * j];
  for (int r = warp; r < rows; r += kOutWarps) {
    float acc[T] = {};
#pragma unroll
    for (int j = 0; j < kOutMaxPieces; ++j)
      if (lane + 32 * j < pieces) {
        const uint4 wv = ws[r * pieces + lane + 32 * j];
#pragma unroll
        for (int t = 0; t < T; ++t) acc[t] += dot8(wv, xv[t][j]);
      }
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float v = warp_sum(acc[t]);
      if (lane == 0) a.out[(static_cast<int64_t>(t) * a.heads + h) * a.n + row0 + r] = __float2bfloat16(v);
    }
  }
}

int max_block_smem() {
  int device = 0, most = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return most;
}

template <int T>
void launch_output(const OutArgs& args, int sm_count, cudaStream_t s) {
  OutArgs a = args;
  // Slices of a head: enough blocks for every SM, within the merge's budget of split reads and
  // the shared memory a block may have.
  const int slices = std::clamp(std::min(sm_count / a.heads, kMergeReads / a.split.splits), 1,
                                static_cast<int>(ceil_div(a.n, kOutWarps)));
  a.rows_per_block = static_cast<int>(ceil_div(a.n, slices));
  // The dynamic bytes may fill what the kernel's static arrays leave of each limit.
  const size_t fixed = static_shared_bytes<mla_output_kernel<T>>();
  const size_t most = static_cast<size_t>(max_block_smem()) - fixed;
  while (a.rows_per_block > 1 && output_smem_bytes(T, a.rows_per_block, a.lora, a.split.splits) > most)
    a.rows_per_block = static_cast<int>(ceil_div(a.rows_per_block, 2));
  const size_t smem = output_smem_bytes(T, a.rows_per_block, a.lora, a.split.splits);
  if (smem > most)
    fail("mla output: ", smem + fixed, " bytes of shared memory a block, more than the device's ", most + fixed);
  const auto kernel = mla_output_kernel<T>;
  if (smem + fixed > kDefaultSharedBytes)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>(ceil_div(a.n, a.rows_per_block)), static_cast<unsigned>(a.heads));
  const int blocks_per_sm = static_cast<int>(ceil_div(static_cast<int64_t>(grid.x) * grid.y, sm_count));
  launch_dependent("mla_output_kernel", kernel, grid, kOutWarps * 32, {smem, decode_chain_carveout(blocks_per_sm, smem)},
                   s, a);
}

}  // namespace

bool mla_output_fits(int64_t tokens, int64_t n, int64_t lora, const SplitKv& split, const void* w_uv) {
  return tokens >= 1 && tokens <= kGemvMaxRows && n >= 1 && lora % 8 == 0 && lora <= 8 * 32 * kOutMaxPieces &&
         split.splits > 1 && split.splits <= kMergeReads && aligned16(w_uv);
}

void launch_mla_output(const SplitKv& split, const bf16* w_uv, int tokens, int heads, int n, int lora, bf16* out,
                       int sm_count, cudaStream_t s) {
  if (!mla_output_fits(tokens, n, lora, split, w_uv))
    fail("mla output: ", tokens, " tokens (1 to ", kGemvMaxRows, "), rows of ", lora, " (a multiple of 8, at most ",
         8 * 32 * kOutMaxPieces, "), ", split.splits, " splits (2 to ", kMergeReads, "), 16-byte aligned weights");
  OutArgs a;
  a.split = split;
  a.w = w_uv;
  a.out = out;
  a.heads = heads;
  a.n = n;
  a.lora = lora;
  with_rows(tokens, [&](auto t) { launch_output<t.value>(a, sm_count, s); });
}

}  // namespace dsinfer::cuda
