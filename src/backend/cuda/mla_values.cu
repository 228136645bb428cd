// The last two steps of absorbed MLA for a few tokens, in one launch: the attention's split
// partials merged into each head's latent output (combine_splits_kernel's merge), and that output
// through the head's value weights w_uv [v, lora] (head_rows_kernel's order of sums), equal bit
// for bit to the two launches it replaces. A block owns one head for every token of the launch:
// the head's w_uv (128 KB at DeepSeek's shapes) is copied whole into shared memory by the bulk
// copy engine before the dependent wait, so those bytes stream in while the attention kernel
// still runs, and the merged latent never leaves the multiprocessor.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/skinny_product.cuh"
#include "backend/cuda/split_merge.cuh"
#include "backend/cuda/wgmma_fp8.cuh"  // mbarrier and bulk-copy helpers

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 512;
constexpr uint32_t kPiece = 32 * 1024;  // bytes a bulk copy moves

// Shared memory: w [v][lora] bf16, the merged latent [M][lora] bf16, then the merge's weights
// and live split indices [splits] each.
size_t values_smem(int m, int v, int lora, int splits) {
  return (static_cast<size_t>(v) + m) * lora * sizeof(bf16) + static_cast<size_t>(splits) * (sizeof(float) + sizeof(int));
}

template <int M>
__global__ void __launch_bounds__(kThreads) mla_values_kernel(SplitKv split, const bf16* w_uv, int heads, int v_dim,
                                                              int lora, bf16* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ __align__(8) uint64_t bar;
  __shared__ SplitRowWeights rw;
  bf16* sw = reinterpret_cast<bf16*>(smem);
  bf16* lat = sw + static_cast<int64_t>(v_dim) * lora;
  float* weight = reinterpret_cast<float*>(lat + M * lora);
  int* live = reinterpret_cast<int*>(weight + split.splits);
  const int h = blockIdx.x;
  const uint32_t bytes = static_cast<uint32_t>(v_dim) * lora * sizeof(bf16);
  if (threadIdx.x == 0) {  // no kernel writes weights: they load before the wait
    mbarrier_init(smem_addr(&bar), 1);
    mbarrier_init_fence();
    mbarrier_arrive_expect_tx(smem_addr(&bar), bytes);
    const char* src = reinterpret_cast<const char*>(w_uv + static_cast<int64_t>(h) * v_dim * lora);
    for (uint32_t at = 0; at < bytes; at += kPiece)
      bulk_load(smem_addr(smem) + at, src + at, min(kPiece, bytes - at), smem_addr(&bar));
  }
  dependent_kernel_start();
  const int rows = M * heads;
  for (int m = 0; m < M; ++m) {
    const int64_t row = static_cast<int64_t>(m) * heads + h;
    if (threadIdx.x < 32) split_row_weights(split, rows, row, weight, live, rw);
    __syncthreads();
    merge_split_row<true>(split, rows, row, lora, weight, live, rw, lat + m * lora);
    __syncthreads();  // weight, live and rw are the next token's
  }
  mbarrier_wait(smem_addr(&bar), 0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, chunks = lora / 8;
  const uint4* w4 = reinterpret_cast<const uint4*>(sw);
  const uint4* x4 = reinterpret_cast<const uint4*>(lat);
  for (int n = warp; n < v_dim; n += kThreads / 32) {
    float acc[M] = {};
    for (int c = lane; c < chunks; c += 32)
#pragma unroll
      for (int m = 0; m < M; ++m) acc[m] += dot8(w4[n * chunks + c], x4[m * chunks + c]);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) out[(static_cast<int64_t>(m) * heads + h) * v_dim + n] = __float2bfloat16(v);
    }
  }
}

}  // namespace

bool mla_values_fits(int64_t t, int64_t v_dim, int64_t lora, int splits, const void* w_uv, int max_smem) {
  return t >= 1 && t <= kGemvMaxRows && lora % 8 == 0 && v_dim >= 1 && aligned16(w_uv) &&
         values_smem(static_cast<int>(t), static_cast<int>(v_dim), static_cast<int>(lora), splits) <=
             static_cast<size_t>(max_smem);
}

void launch_mla_values(const SplitKv& split, const bf16* w_uv, int t, int heads, int v_dim, int lora, bf16* out,
                       cudaStream_t s) {
  with_rows(t, [&](auto rows) {
    const auto kernel = mla_values_kernel<rows.value>;
    const size_t smem = values_smem(rows.value, v_dim, lora, split.splits);
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    launch_dependent("mla_values_kernel", kernel, heads, kThreads, smem, s, split, w_uv, heads, v_dim, lora, out);
  });
}

}  // namespace dsinfer::cuda
