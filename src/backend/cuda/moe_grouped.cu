// Grouped expert products for decode-sized batches: one launch covers every expert of a layer,
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
#include "backend/cuda/moe_kernels.h"
#include "backend/cuda/skinny_product.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRows = 16;    // output rows per block: the M of one mma tile
constexpr int kTokens = 8;   // tokens per pass: the N of one mma tile
constexpr int kChunk = 32;   // K per warp step: 4 lanes x 8 values of each row
constexpr int kUnroll = 4;   // steps whose loads are issued before their mma's (loads in flight)

struct ScaleBlocks {
  int rows = 1, cols = 1;
  int64_t scale_cols = 0;
};

struct GroupedArgs {
  GroupedExperts ex;
  MoePermutation perm;
  const bf16* x = nullptr;  // gate/up: the layer input [T, hidden], rows via perm.order; down: act [n, inter]
  bf16* act = nullptr;      // gate/up output [n, inter]
  float* y = nullptr;       // down output [n, hidden]
};

// An expert's matrices of one launch, gate and up or down, with their FP8 scales (else null).
template <bool kGateUp>
struct LaunchMatrices {
  static constexpr int M = kGateUp ? 2 : 1;
  const void* w[M];
  const float* sc[M];
  __device__ explicit LaunchMatrices(const ExpertPtrs& p) {
    if constexpr (kGateUp) {
      w[0] = p.gate, w[1] = p.up;
      sc[0] = p.gate_scale, sc[1] = p.up_scale;
    } else {
      w[0] = p.down;
      sc[0] = p.down_scale;
    }
  }
};

__device__ __forceinline__ uint4 pack8(const float (&v)[8]) {
  return make_uint4(pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7]));
}

// Weight values (row, k .. k + 7) as four bf16 pairs, rounded exactly as launch_weight_to_bf16
// rounds them (so every dtype computes with the same bf16 matrix as the cuBLASLt path).
template <DType D>
__device__ __forceinline__ uint4 load8(const void* w, const float* scale, int64_t row, int64_t k, int64_t cols,
                                       const ScaleBlocks& b) {
  const int64_t at = row * cols + k;
  if constexpr (D == DType::BF16) {
    return __ldg(reinterpret_cast<const uint4*>(static_cast<const bf16*>(w) + at));
  } else if constexpr (D == DType::F16) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(w) + at));
    const __half* h = reinterpret_cast<const __half*>(&raw);
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = __half2float(h[i]);
    return pack8(v);
  } else if constexpr (D == DType::F32) {
    const float4 lo = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(w) + at));
    const float4 hi = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(w) + at + 4));
    const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    return pack8(v);
  } else {  // FP8 e4m3 with block scales
    const uint2 raw = __ldg(reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(w) + at));
    const __nv_fp8_e4m3* f = reinterpret_cast<const __nv_fp8_e4m3*>(&raw);
    const float* srow = scale + (row / b.rows) * b.scale_cols;
    const bool one_scale = b.cols % 8 == 0;  // k is a multiple of 8, so the 8 values share a block
    const float s = srow[k / b.cols];
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = static_cast<float>(f[i]) * (one_scale ? s : srow[(k + i) / b.cols]);
    return pack8(v);
  }
}

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

// Few tokens (decode at batch <= kFewTokens): a GEMV per (active expert, output row). A warp owns
// one output row of its expert (gate/up: the gate and the up row) and streams it once in
// 16-byte pieces, lane-contiguous (a warp's load is 512 bytes of one row), kFewUnroll pieces of
// each matrix in flight per lane, then applies them to each of the expert's rows (kFewTokens at a
// time; more rows re-stream the weights, which only ids that repeat an expert in a token cause).
// The down launch reads the permutation (made two kernels back, so finished once gate/up's
// blocks are running) and issues its first weight loads before waiting for gate/up's output.
constexpr int kFewWarps = 4, kFewUnroll = 8;

template <DType D, bool kGateUp>
__global__ void __launch_bounds__(kFewWarps * 32) moe_grouped_few_kernel(GroupedArgs a) {
  constexpr int M = kGateUp ? 2 : 1;
  const MoePermutation& perm = a.perm;
  if constexpr (kGateUp) dependent_kernel_start();  // the permutation is the previous kernel's output
  // (down: written two kernels back; read past L1, which may hold an earlier layer's copy)
  const int slot = blockIdx.y;
  if (slot >= __ldcg(perm.active_count)) return;
  const int e = __ldcg(perm.active + slot);
  const int begin = __ldcg(perm.offsets + e), end = __ldcg(perm.offsets + e + 1);
  const ExpertPtrs ptrs = a.ex.table[e];
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden, k_in = kGateUp ? a.ex.hidden : a.ex.inter;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kFewWarps + warp;
  if (row >= n_out) return;
  const LaunchMatrices<kGateUp> mats(ptrs);
  const void* const* w = mats.w;
  const float* const* sc = mats.sc;
  const ScaleBlocks blk{a.ex.block_rows, a.ex.block_cols, kGateUp ? a.ex.gate_up_scale_cols : a.ex.down_scale_cols};
  const int pieces = static_cast<int>(k_in / 8);
  uint4 wv[kFewUnroll][M];
  auto load_batch = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kFewUnroll; ++u)
      if (c0 + 32 * u < pieces)
#pragma unroll
        for (int m = 0; m < M; ++m) wv[u][m] = load8<D>(w[m], sc[m], row, 8 * static_cast<int64_t>(c0 + 32 * u), k_in, blk);
  };
  load_batch(lane);
  if constexpr (!kGateUp) dependent_kernel_start();  // act is gate/up's output
  for (int pass = begin; pass < end; pass += kFewTokens) {
    const int nt = min(kFewTokens, end - pass);
    const uint4* xr[kFewTokens];
#pragma unroll
    for (int t = 0; t < kFewTokens; ++t) {
      const int64_t xrow = t < nt ? (kGateUp ? static_cast<int64_t>(perm.order[pass + t]) : pass + t) : 0;
      xr[t] = reinterpret_cast<const uint4*>(a.x + xrow * k_in);
    }
    float acc[kFewTokens][M] = {};
    for (int c0 = lane; c0 < pieces; c0 += 32 * kFewUnroll) {
      if (c0 != lane || pass != begin) load_batch(c0);
#pragma unroll
      for (int u = 0; u < kFewUnroll; ++u)
        if (c0 + 32 * u < pieces)
#pragma unroll
          for (int t = 0; t < kFewTokens; ++t)
            if (t < nt) {
              const uint4 xv = __ldg(xr[t] + c0 + 32 * u);
#pragma unroll
              for (int m = 0; m < M; ++m) acc[t][m] += dot8(wv[u][m], xv);
            }
    }
#pragma unroll
    for (int t = 0; t < kFewTokens; ++t) {
      if (t >= nt) break;
      float v[M];
#pragma unroll
      for (int m = 0; m < M; ++m) v[m] = warp_sum(acc[t][m]);
      if (lane == 0) {
        const int64_t out_row = pass + t;
        if constexpr (kGateUp)
          a.act[out_row * n_out + row] = __float2bfloat16(v[0] / (1.0f + expf(-v[0])) * v[1]);
        else
          a.y[out_row * n_out + row] = v[0];
      }
    }
  }
}

template <bool kGateUp, DType D>
void launch_one(const GroupedArgs& a, int max_active, bool few, cudaStream_t s) {
  const char* name = kGateUp ? "moe_grouped_kernel (gate/up)" : "moe_grouped_kernel (down)";
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden;
  if (few)
    launch_dependent(name, moe_grouped_few_kernel<D, kGateUp>, dim3(ceil_div(n_out, kFewWarps), max_active),
                     kFewWarps * 32, 0, s, a);
  else
    launch_dependent(name, moe_grouped_kernel<D, kGateUp>, dim3(ceil_div(n_out, kRows), max_active), kWarps * 32, 0,
                     s, a);
}

template <bool kGateUp>
void launch_grouped(const GroupedArgs& a, int max_active, int tokens, cudaStream_t s) {
  if (max_active <= 0) return;
  const bool few = tokens <= kFewTokens;
  switch (a.ex.dtype) {
    case DType::BF16: return launch_one<kGateUp, DType::BF16>(a, max_active, few, s);
    case DType::F16: return launch_one<kGateUp, DType::F16>(a, max_active, few, s);
    case DType::F32: return launch_one<kGateUp, DType::F32>(a, max_active, few, s);
    case DType::F8_E4M3: return launch_one<kGateUp, DType::F8_E4M3>(a, max_active, few, s);
    default: fail("grouped MoE: expert weights of dtype ", dtype_name(a.ex.dtype), " are not supported");
  }
}

}  // namespace

void launch_moe_gate_up(const GroupedExperts& ex, const MoePermutation& perm, int max_active, int tokens,
                        const bf16* x, bf16* act, cudaStream_t s) {
  launch_grouped<true>(GroupedArgs{ex, perm, x, act, nullptr}, max_active, tokens, s);
}

void launch_moe_down(const GroupedExperts& ex, const MoePermutation& perm, int max_active, int tokens,
                     const bf16* act, float* y, cudaStream_t s) {
  launch_grouped<false>(GroupedArgs{ex, perm, act, nullptr, y}, max_active, tokens, s);
}

}  // namespace dsinfer::cuda
