// Grouped expert products for decode-sized batches of more than kFewTokens tokens (moe_few.cu
// takes fewer): one launch covers every expert of a layer,
// reading the permutation (offsets, active experts) on the device, so nothing waits for the host.
// A block owns (one active expert, 16 output rows) and streams those rows of the weight exactly
// once in 16-byte pieces, applying them to all of that expert's tokens, 8 per pass, on tensor
// cores: one m16n8k16 tile = 16 weight rows x 8 tokens. Decode gives experts few tokens each,
// so this is memory-bound and the tensor cores only keep the arithmetic off the critical path
// (plain FMA would cost 8 multiply-adds per weight element and token, compute-bound at 8 tokens).
//
// The dot products run over K in any order, so each lane loads 8 consecutive K values of a
// weight row (one 16-byte load) and of a token row and feeds them to two mma's as fragment
// columns {2q, 2q+1, 2q+8, 2q+9}: A and B see the same permutation of K, so the sum is the same.
// The 4 warps of a block split K and add their tiles through shared memory.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe_expert_loads.cuh"
#include "backend/cuda/moe_kernels.h"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRows = 16;    // output rows per block: the M of one mma tile
constexpr int kTokens = 8;   // tokens per pass: the N of one mma tile
constexpr int kChunk = 32;   // K per warp step: 4 lanes x 8 values of each row
constexpr int kUnroll = 4;   // steps whose loads are issued before their mma's (loads in flight)

struct GroupedArgs {
  GroupedExperts ex;
  MoePermutation perm;
  const bf16* x = nullptr;  // gate/up: the layer input [T, hidden], rows via perm.order; down: act [n, inter]
  bf16* act = nullptr;      // gate/up output [n, inter]
  float* y = nullptr;       // down output [n, hidden]
};

template <DType D, bool kGateUp>
__global__ void __launch_bounds__(kWarps * 32) moe_grouped_kernel(GroupedArgs a) {
  constexpr int M = kGateUp ? 2 : 1;  // matrices applied to the same inputs (gate and up)
  const MoePermutation& perm = a.perm;
  dependent_kernel_start();
  if (static_cast<int>(blockIdx.y) >= *perm.active_count) return;
  const int e = perm.active[blockIdx.y];
  const int begin = perm.offsets[e], end = perm.offsets[e + 1];
  const ExpertPtrs ptrs = a.ex.table[e];
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden, k_in = kGateUp ? a.ex.hidden : a.ex.inter;
  const LaunchMatrices<kGateUp> mats(ptrs);
  const void* const* w = mats.w;
  const float* const* sc = mats.sc;
  const ScaleBlocks blk{a.ex.block_rows, a.ex.block_cols, kGateUp ? a.ex.gate_up_scale_cols : a.ex.down_scale_cols};
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t ra = row0 + g, rb = row0 + g + 8;  // the A fragment's two rows
  const int chunks = ceil_div(k_in, kChunk);
  __shared__ float red[kWarps][M][kRows][kTokens];
  const uint4 zero = make_uint4(0, 0, 0, 0);

  for (int pass = begin; pass < end; pass += kTokens) {
    const int nt = min(kTokens, end - pass);
    // The B fragment's token: g of this pass (zeros past the expert's last token).
    const bf16* xrow = nullptr;
    if (g < nt)
      xrow = a.x + (kGateUp ? static_cast<int64_t>(perm.order[pass + g]) : static_cast<int64_t>(pass + g)) * k_in;
    float acc[M][4] = {};
    for (int c0 = warp; c0 < chunks; c0 += kWarps * kUnroll) {
      uint4 wa[kUnroll][M], wb[kUnroll][M], xv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t k = static_cast<int64_t>(c0 + u * kWarps) * kChunk + 8 * q;
        const bool live = c0 + u * kWarps < chunks && k < k_in;
        xv[u] = live && xrow ? __ldg(reinterpret_cast<const uint4*>(xrow + k)) : zero;
#pragma unroll
        for (int m = 0; m < M; ++m) {
          wa[u][m] = live && ra < n_out ? load8<D>(w[m], sc[m], ra, k, k_in, blk) : zero;
          wb[u][m] = live && rb < n_out ? load8<D>(w[m], sc[m], rb, k, k_in, blk) : zero;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint32_t lo[4] = {wa[u][m].x, wb[u][m].x, wa[u][m].y, wb[u][m].y};
          mma_bf16(acc[m], lo, xv[u].x, xv[u].y);
          const uint32_t hi[4] = {wa[u][m].z, wb[u][m].z, wa[u][m].w, wb[u][m].w};
          mma_bf16(acc[m], hi, xv[u].z, xv[u].w);
        }
    }
    // C fragment: (row g, tokens 2q and 2q + 1), (row g + 8, the same tokens).
#pragma unroll
    for (int m = 0; m < M; ++m) {
      red[warp][m][g][2 * q] = acc[m][0];
      red[warp][m][g][2 * q + 1] = acc[m][1];
      red[warp][m][g + 8][2 * q] = acc[m][2];
      red[warp][m][g + 8][2 * q + 1] = acc[m][3];
    }
    __syncthreads();
    const int r = threadIdx.x % kRows, t = threadIdx.x / kRows;  // 128 threads = 16 rows x 8 tokens
    const int64_t row = row0 + r;
    if (t < nt && row < n_out) {
      float v[M] = {};
#pragma unroll
      for (int wi = 0; wi < kWarps; ++wi)
#pragma unroll
        for (int m = 0; m < M; ++m) v[m] += red[wi][m][r][t];
      const int64_t out_row = pass + t;
      if constexpr (kGateUp)
        a.act[out_row * n_out + row] = __float2bfloat16(v[0] / (1.0f + expf(-v[0])) * v[1]);
      else
        a.y[out_row * n_out + row] = v[0];
    }
    __syncthreads();  // the next pass rewrites red
  }
}

template <bool kGateUp, DType D>
void launch_one(const GroupedArgs& a, int max_active, cudaStream_t s) {
  const char* name = kGateUp ? "moe_grouped_kernel (gate/up)" : "moe_grouped_kernel (down)";
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden;
  launch_dependent(name, moe_grouped_kernel<D, kGateUp>, dim3(ceil_div(n_out, kRows), max_active), kWarps * 32, 0, s,
                   a);
}

template <bool kGateUp>
void launch_grouped(const GroupedArgs& a, int max_active, cudaStream_t s) {
  if (max_active <= 0) return;
  switch (a.ex.dtype) {
    case DType::BF16: return launch_one<kGateUp, DType::BF16>(a, max_active, s);
    case DType::F16: return launch_one<kGateUp, DType::F16>(a, max_active, s);
    case DType::F32: return launch_one<kGateUp, DType::F32>(a, max_active, s);
    case DType::F8_E4M3: return launch_one<kGateUp, DType::F8_E4M3>(a, max_active, s);
    default: fail("grouped MoE: expert weights of dtype ", dtype_name(a.ex.dtype), " are not supported");
  }
}

}  // namespace

void launch_moe_gate_up(const GroupedExperts& ex, const MoePermutation& perm, int max_active, const bf16* x,
                        bf16* act, cudaStream_t s) {
  launch_grouped<true>(GroupedArgs{ex, perm, x, act, nullptr}, max_active, s);
}

void launch_moe_down(const GroupedExperts& ex, const MoePermutation& perm, int max_active, const bf16* act, float* y,
                     cudaStream_t s) {
  launch_grouped<false>(GroupedArgs{ex, perm, act, nullptr, y}, max_active, s);
}

}  // namespace dsinfer::cuda
