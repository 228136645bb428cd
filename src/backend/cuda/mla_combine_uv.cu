// MLA decode's split merge and W_UV product in one launch, for 1-4 tokens: the latent output of
// a (token, head) is merged from its splits' partials in shared memory, rounded to bf16 as
// combine_splits_kernel writes it, and each warp applies one row of W_UV [H, v, lora] to it with
// head_rows_kernel's pieces and order of sums (skinny_product.cuh). So the output equals the two
// launches it replaces bit for bit, and a step's result does not depend on which path it took.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/skinny_product.cuh"
#include "backend/cuda/split_merge.cuh"

namespace dsinfer::cuda {
namespace {

// Warps of a block, one W_UV row each; a block's rows lie in one head (v_dim % kWarps == 0). More
// warps merge each head's partials fewer times over.
constexpr int kWarps = 16, kUnroll = 2;

// Block b: rows [b * kWarps, (b + 1) * kWarps) of W_UV viewed as [H * v, lora], all of head h.
// Shared memory: per token the live splits' weights and indices, then the merged latents [M][lora].
template <int M>
__global__ void __launch_bounds__(kWarps * 32)
    mla_combine_uv_kernel(SplitKv split, int heads, int lora, const bf16* w_uv, int v_dim, bf16* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int n_live[M];
  __shared__ float inv_den[M];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, pieces = lora / 8;
  const int row = blockIdx.x * kWarps + warp, h = blockIdx.x * kWarps / v_dim;
  const uint4* wr = reinterpret_cast<const uint4*>(w_uv) + static_cast<int64_t>(row) * pieces;
  uint4 wv[kUnroll];
  load_batch(wv, wr, lane, pieces);  // the weights do not depend on the attention kernel
  dependent_kernel_start();

  bf16* lat = reinterpret_cast<bf16*>(smem);  // [M][lora]
  float* weight = reinterpret_cast<float*>(lat + M * lora);  // [M][splits]
  int* live = reinterpret_cast<int*>(weight + M * split.splits);  // [M][splits]
  const int64_t rows = static_cast<int64_t>(M) * heads;  // partial rows per split: (token, head)
  if (warp < M) {
    float inv;
    const int n = split_row_weights(split, rows, warp * heads + h, weight + warp * split.splits,
                                    live + warp * split.splits, inv);
    if (lane == 0) n_live[warp] = n, inv_den[warp] = inv;
  }
  __syncthreads();
  // combine_splits_kernel's sums, 4 columns a thread (lora % 8 == 0).
  for (int i = threadIdx.x * 4; i < M * lora; i += blockDim.x * 4) {
    const int m = i / lora, d = i % lora;
    const float* w = weight + m * split.splits;
    const int* z = live + m * split.splits;
    float acc[4] = {};
    for (int j = 0; j < n_live[m]; ++j) {
      const float4 v = *reinterpret_cast<const float4*>(split.part_o + (z[j] * rows + m * heads + h) * lora + d);
      acc[0] += w[j] * v.x, acc[1] += w[j] * v.y, acc[2] += w[j] * v.z, acc[3] += w[j] * v.w;
    }
    for (int e = 0; e < 4; ++e) lat[m * lora + d + e] = __float2bfloat16(acc[e] * inv_den[m]);
  }
  __syncthreads();
  float acc[M] = {};
  stream_row<M, kUnroll, true>(acc, wv, wr, reinterpret_cast<const uint4*>(lat), pieces, lane, pieces);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = warp_sum(acc[m]);
    if (lane == 0) out[(static_cast<int64_t>(m) * heads + h) * v_dim + row % v_dim] = __float2bfloat16(v);
  }
}

}  // namespace

bool mla_combine_uv_fits(int tokens, int lora, int v_dim, const void* w_uv) {
  return tokens >= 1 && tokens <= 4 && lora % 8 == 0 && lora <= kMlaMaxLora && v_dim % kWarps == 0 && aligned16(w_uv);
}

void launch_mla_combine_uv(const SplitKv& split, int tokens, int heads, int lora, const bf16* w_uv, int v_dim,
                           bf16* out, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>(heads * v_dim / kWarps);
  with_rows(tokens, [&](auto m) {
    constexpr int M = m.value;
    const size_t smem = M * lora * sizeof(bf16) + M * split.splits * (sizeof(float) + sizeof(int));
    launch_dependent("mla_combine_uv_kernel", mla_combine_uv_kernel<M>, blocks, kWarps * 32, smem, s, split, heads,
                     lora, w_uv, v_dim, out);
  });
}

}  // namespace dsinfer::cuda
