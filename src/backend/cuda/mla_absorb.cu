// Absorbed MLA's query at decode sizes in one launch: q_lat = q_nope . W_UK per head, q's nope
// part read in place, and MLA's rope-and-cache work (q's rope pairs rotated into q_rope, each
// token's latent cache row) in an extra row of blocks. It replaces mla_rope_cache_kernel and
// head_cols_kernel, two launches of a decode layer's latency chain, with one.
#include <algorithm>

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/head_cols.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mla_rope_cache.cuh"
#include "backend/cuda/skinny_product.cuh"

namespace dsinfer::cuda {
namespace {

// Grid (max(column blocks of W_UK, M), heads + 1): rows h < heads are head_cols_block of head h
// over the M tokens (blocks past W_UK's columns leave at once); row `heads` rotates q's rope pairs
// (its blocks x-strided), then its block t writes token t's cache row, the tokens side by side: a
// row is a chain of dependent loads and a block sum, which one block did token after token.
// W_UK's first loads are issued before the dependent wait. At 3-4 tokens it takes 84-92 registers,
// one 512-thread block an SM; held to two (64 registers, 144-240 bytes of spills) its own cost fell
// 14 -> 12 us a V3 layer at batch 4 but the step lost 1.4 % (H100, session 57): two blocks fill the
// register file, so the kernels after it cannot start under its tail.
template <int M>
__global__ void __launch_bounds__(kHeadSlices * 32) mla_absorb_kernel(DeviceBatch b, MlaRopeCacheParams p,
                                                                      const bf16* w_uk, bf16* q_lat, int col_blocks) {
  if (static_cast<int>(blockIdx.y) < p.heads) {
    if (static_cast<int>(blockIdx.x) >= col_blocks) return;
    return head_cols_block<M>(w_uk, p.q, p.nope + p.rope, q_lat, p.heads, p.nope, p.lora, blockIdx.y, blockIdx.x);
  }
  dependent_kernel_start();
  const int per_token = p.heads * mla_query_values_per_head(p);
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < M * per_token; j += gridDim.x * blockDim.x)
    mla_query_value(b, p, j / per_token, j % per_token);
  for (int t = blockIdx.x; t < M; t += gridDim.x) {
    if (t != static_cast<int>(blockIdx.x)) __syncthreads();  // block_sum's partials of the token before
    mla_cache_row(b, p, t);
  }
}

}  // namespace

void launch_mla_absorb(const DeviceBatch& b, const MlaRopeCacheParams& p, const bf16* w_uk, bf16* q_lat,
                       cudaStream_t s) {
  if (b.num_tokens < 1 || b.num_tokens > kGemvMaxRows || p.q_nope != nullptr)
    fail("mla_absorb: ", b.num_tokens, " tokens (1 to ", kGemvMaxRows, "), q's nope part read in place");
  const int col_blocks = ceil_div(p.lora / 8, 32);
  const dim3 grid(std::max(col_blocks, b.num_tokens), p.heads + 1);
  with_rows(b.num_tokens, [&](auto rows) {
    launch_dependent("mla_absorb_kernel", mla_absorb_kernel<rows.value>, grid, kHeadSlices * 32,
                     {0, kDecodeChainCarveout}, s, b, p, w_uk, q_lat, col_blocks);
  });
}

}  // namespace dsinfer::cuda
