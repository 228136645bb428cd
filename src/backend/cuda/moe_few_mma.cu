// FP8 experts at decode sizes (up to kFewMmaMaxTokens tokens, kFewMaxPairs pairs) on tensor cores,
// by DeepSeek's recipe: the few-token kernels' work (moe_few.cu: the router's ids read directly,
// no permutation, act and y indexed by pair, the shared experts' chunks as more slots) with
// gemv_fp8_mma.cu's products: a warp owns a tile of 16 rows of an expert's matrix (gate and up together) as
// mma.m16n8k32's e4m3 A operand, the pairs that chose the expert are the B columns, and each
// group's f32 sums are added times the weight block's scale and the column's group scale.
// moe_few.cu's CUDA-core dots widen every e4m3 pair and cost ~40 instructions a 16-byte piece a
// token, so beyond 2 tokens the grouped FP8 GEMM won there (session 50); here a piece costs a
// quarter of an mma whatever the tokens (up to the mma's 8 columns). Measured (H100, V3 8 layers,
// 3 rounds, session 53): batch 1 348.6 -> 360.7 tok/s (the MoE layer's down 60.4 -> 47.8 us and
// gate/up 95.1 -> 93.0 in session 52's trace), batch 2 506 -> 533; since each warp takes at least
// kMinWarpSteps steps of K (below), batch 2 517 -> 545 and 3-4 tokens ~1.3 % ahead of the grouped
// FP8 GEMM (session 54), so it takes up to kFewMmaTokens = 4.
//
// A block's columns are quantized once, by the whole block, into its shared memory (x's rows for
// gate/up, act's for down: per token and 128 columns, as quantize_fp8.cu does, so the products
// equal the grouped FP8 GEMM's up to summation order), not by every warp as gemv_fp8_mma.cu does:
// that work grows with the tokens (5-8 tokens there cost V3 23 %).
//
// Grid: (row tiles, slots); slots 0 .. chunks - 1 are the shared experts' chunks, which need no
// ids, so in gate/up they run whole while the router runs, never waiting (they read x, written two
// kernels back, and write the shared rows of act, which the router never touches: the exception
// dependent_launch.cuh allows moe_few_fused_kernel too); slot chunks + p serves pair p's
// expert unless a lower pair chose it too. A block's warps own kWarps / splits tiles, each over
// `splits` warps that share its K groups and add their sums in shared memory (the count costed in
// waves of resident warps, as gemv_fp8_mma.cu).
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/fp8_act_recipe.cuh"
#include "backend/cuda/fp8_mma_tile.cuh"
#include "backend/cuda/kernel_residency.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_few_pairs.cuh"
#include "backend/cuda/moe_kernels.h"
#include "backend/cuda/skinny_product.cuh"  // with_rows

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8, kMaxSplits = 8;
constexpr int kRowPad = 64;  // bytes after each staged column: its 4 lanes' reads start 64 bytes apart in the banks

// Groups of 128 columns a warp takes a step: 8 loads of 16 bytes in flight a lane either way.
template <bool kGateUp>
constexpr int kStepGroups = kGateUp ? 1 : 2;

struct MmaArgs {
  GroupedExperts ex;
  const int* ids = nullptr;  // [n]: the router's choices, pair p = t * k + j
  int n = 0, k = 1;
  SharedChunks shared;
  const bf16* in = nullptr;  // gate/up: x [T, hidden]; down: act [rows, inter]
  bf16* act = nullptr;       // gate/up output [rows, inter]
  float* y = nullptr;        // down output [rows, hidden]
  int splits = 1;            // warps a tile
};

// What a block applies: an expert's (or a shared chunk's) gate and up, or down, with their scales.
template <bool kGateUp>
struct TileMatrices {
  static constexpr int M = kGateUp ? 2 : 1;
  const uint8_t* w[M];
  const float* sc[M];
  int64_t stride = 0, scale_cols = 0;  // a row's bytes apart; a scale row's floats apart
};

template <bool kGateUp>
__device__ __forceinline__ TileMatrices<kGateUp> expert_matrices(const GroupedExperts& ex, const ExpertPtrs& e) {
  TileMatrices<kGateUp> m;
  if constexpr (kGateUp) {
    m.w[0] = static_cast<const uint8_t*>(e.gate), m.w[1] = static_cast<const uint8_t*>(e.up);
    m.sc[0] = e.gate_scale, m.sc[1] = e.up_scale;
    m.stride = ex.hidden, m.scale_cols = ex.gate_up_scale_cols;
  } else {
    m.w[0] = static_cast<const uint8_t*>(e.down), m.sc[0] = e.down_scale;
    m.stride = ex.inter, m.scale_cols = ex.down_scale_cols;
  }
  return m;
}

// Chunk j of the shared experts: rows [j inter, (j + 1) inter) of gate and up, those columns of
// down (whole scale blocks: shared_chunks checks).
template <bool kGateUp>
__device__ __forceinline__ TileMatrices<kGateUp> chunk_matrices(const GroupedExperts& ex, const SharedChunks& sh,
                                                                int j) {
  const int64_t first = j * ex.inter;
  TileMatrices<kGateUp> m;
  if constexpr (kGateUp) {
    m.w[0] = static_cast<const uint8_t*>(sh.gate) + first * ex.hidden;
    m.w[1] = static_cast<const uint8_t*>(sh.up) + first * ex.hidden;
    m.sc[0] = sh.gate_scale + first / ex.block_rows * ex.gate_up_scale_cols;
    m.sc[1] = sh.up_scale + first / ex.block_rows * ex.gate_up_scale_cols;
    m.stride = ex.hidden, m.scale_cols = ex.gate_up_scale_cols;
  } else {
    m.w[0] = static_cast<const uint8_t*>(sh.down) + first;
    m.sc[0] = sh.down_scale + first / ex.block_cols;
    m.stride = sh.chunks * ex.inter, m.scale_cols = sh.down_scale_cols;
  }
  return m;
}

// v[c] for a c known only at run time, without spilling v to local memory.
template <int T>
__device__ __forceinline__ int pick(const int (&v)[T], int c) {
  int r = v[0];
#pragma unroll
  for (int i = 1; i < T; ++i)
    if (i == c) r = v[i];
  return r;
}

// Columns 0 .. nt - 1 (rows[c] of `in`, k_in values each) quantized per 128 into q [c][pitch] and
// scale [c][groups], by the whole block: a half-warp a (column, group), as quantize_fp8.cu.
template <int T>
__device__ __forceinline__ void stage_columns(uint8_t* q, float* scale, const bf16* in, const int (&rows)[T], int nt,
                                              int64_t k_in, int groups, int pitch) {
  const int tasks = nt * groups, half = threadIdx.x % 32 / 16, c8 = threadIdx.x % 16 * 8;
  for (int i = threadIdx.x / 32; 2 * i < tasks; i += kWarps) {  // warp-uniform: group_scale shuffles
    const int task = 2 * i + half;
    const bool live = task < tasks;
    const int c = live ? task / groups : 0, j = live ? task % groups : 0;
    // act (down) is the previous kernel's output: read past L1.
    const uint4 raw = live ? __ldcg(reinterpret_cast<const uint4*>(in + pick(rows, c) * k_in + j * kActGroup + c8))
                           : make_uint4(0, 0, 0, 0);
    float v[8];
    bf16x8_to_float(raw, v);
    const float s = group_scale(v);
    if (!live) continue;
    *reinterpret_cast<uint2*>(q + c * pitch + j * kActGroup + c8) = quantize8(v, s);
    if (c8 == 0) scale[c * groups + j] = s;
  }
}

template <bool kGateUp, int T>
__global__ void __launch_bounds__(kWarps * 32) moe_few_mma_kernel(MmaArgs a) {
  constexpr int M = kGateUp ? 2 : 1, kStep = kStepGroups<kGateUp>;
  extern __shared__ __align__(16) uint8_t staged[];  // [T][pitch] e4m3 columns, then [T][groups] scales
  __shared__ float part[kWarps][32][4 * M];
  const GroupedExperts& ex = a.ex;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t n_out = kGateUp ? ex.inter : ex.hidden, k_in = kGateUp ? ex.hidden : ex.inter;
  const int groups = static_cast<int>(k_in / kActGroup), pitch = static_cast<int>(k_in) + kRowPad;
  float* col_scale = reinterpret_cast<float*>(staged + T * pitch);
  const int chunks = a.shared.chunks, slot = blockIdx.y;
  const bool shared = slot < chunks;
  const int tiles_per_block = kWarps / a.splits;
  const int64_t block_row0 = static_cast<int64_t>(blockIdx.x) * tiles_per_block * kFp8Tile;
  const int64_t row0 = block_row0 + warp / a.splits * kFp8Tile;

  TileMatrices<kGateUp> mats;
  unsigned pairs = 0;  // the routed pairs the block serves, a bit each
  if (shared) {
    mats = chunk_matrices<kGateUp>(ex, a.shared, slot);
  } else {
    const int p = slot - chunks;
    // gate/up: the ids are the previous kernel's output. down: they were written two kernels
    // back, final once gate/up's blocks run (gate/up allows this launch only after its wait).
    if constexpr (kGateUp) dependent_kernel_start();
    const int my_id = lane < a.n ? __ldcg(a.ids + lane) : -1;
    const int e = __shfl_sync(0xffffffffu, my_id, p);
    if (e < 0 || e >= ex.experts) {  // a pair with no expert adds nothing
      if constexpr (!kGateUp) {
        dependent_kernel_start();
        for (int r = threadIdx.x; r < tiles_per_block * kFp8Tile; r += blockDim.x)
          a.y[p * n_out + block_row0 + r] = 0.0f;
      }
      return;
    }
    pairs = __ballot_sync(0xffffffffu, my_id == e);
    if (__ffs(pairs) - 1 != p) return;  // a lower pair's blocks serve e (the whole block returns)
    mats = expert_matrices<kGateUp>(ex, ex.table[e]);
  }

  // The warp's K groups [begin, end) of its tile. Every tile is whole and has a warp: n_out is a
  // multiple of 128 (moe_few_mma_takes), i.e. of 8 tiles, and a block owns 8 / splits of them. The
  // tile lies in one block row of scales.
  const int per_part = ceil_div(groups, a.splits), begin = min(groups, warp % a.splits * per_part);
  const int end = min(groups, begin + per_part);
  const uint8_t *lo[M], *hi[M];
#pragma unroll
  for (int m = 0; m < M; ++m) {
    lo[m] = mats.w[m] + (row0 + g) * mats.stride + 16 * t;
    hi[m] = mats.w[m] + (row0 + g + 8) * mats.stride + 16 * t;
  }
  const int64_t scale_row = row0 / ex.block_rows * mats.scale_cols;
  const int groups_per_scale = ex.block_cols / kActGroup;
  GroupWords wv[kStep][M];
  const auto load_step = [&](int j0) {
#pragma unroll
    for (int s = 0; s < kStep; ++s)
#pragma unroll
      for (int m = 0; m < M; ++m)
        if (j0 + s < end) load_group(wv[s][m], lo[m], hi[m], j0 + s);
  };
  load_step(begin);  // no kernel writes weights
  if constexpr (!kGateUp) dependent_kernel_start();  // act is gate/up's output

  const int passes = shared ? 1 : ceil_div(__popc(pairs), T);
  for (int pass = 0; pass < passes; ++pass) {
    int pr[T], nt = T;  // the pass's columns: their rows of act / y
    if (shared) {
#pragma unroll
      for (int c = 0; c < T; ++c) pr[c] = a.n + slot * T + c;
    } else {
      nt = pass_pairs<T>(pairs, pass, pr);
    }
    int in_rows[T];  // the columns' rows of the input
#pragma unroll
    for (int c = 0; c < T; ++c) in_rows[c] = !kGateUp ? pr[c] : shared ? c : pr[c] / a.k;
    if (pass > 0) {
      __syncthreads();  // every warp is done with the previous pass's columns
      load_step(begin);
    }
    stage_columns<T>(staged, col_scale, a.in, in_rows, nt, k_in, groups, pitch);
    __syncthreads();

    float acc[M][4] = {};
    for (int j0 = begin; j0 < end; j0 += kStep) {
#pragma unroll
      for (int s = 0; s < kStep; ++s) {
        const int j = j0 + s;
        if (j >= end) continue;
        uint4 b[2] = {};
        if (g < nt) {
          const uint8_t* col = staged + g * pitch + j * kActGroup + 16 * t;
          b[0] = *reinterpret_cast<const uint4*>(col);
          b[1] = *reinterpret_cast<const uint4*>(col + 64);
        }
        float c[M][4];
#pragma unroll
        for (int m = 0; m < M; ++m) {
          group_product(c[m], wv[s][m], b);
          // The group's registers are free once its products are issued: they take the next
          // step's group, whose loads stream while this step finishes.
          if (j + kStep < end) load_group(wv[s][m], lo[m], hi[m], j + kStep);
        }
        // c: rows g, g + 8 x columns 2t, 2t + 1.
        const float xs0 = 2 * t < nt ? col_scale[2 * t * groups + j] : 0.0f;
        const float xs1 = 2 * t + 1 < nt ? col_scale[(2 * t + 1) * groups + j] : 0.0f;
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const float ws = __ldg(mats.sc[m] + scale_row + j / groups_per_scale);
          acc[m][0] = fmaf(c[m][0], ws * xs0, acc[m][0]);
          acc[m][1] = fmaf(c[m][1], ws * xs1, acc[m][1]);
          acc[m][2] = fmaf(c[m][2], ws * xs0, acc[m][2]);
          acc[m][3] = fmaf(c[m][3], ws * xs1, acc[m][3]);
        }
      }
    }
    if (a.splits > 1) {  // the tile's warps add their sums into its first
#pragma unroll
      for (int m = 0; m < M; ++m)
#pragma unroll
        for (int i = 0; i < 4; ++i) part[warp][lane][4 * m + i] = acc[m][i];
      __syncthreads();
      if (warp % a.splits == 0)
        for (int w = 1; w < a.splits; ++w)
#pragma unroll
          for (int m = 0; m < M; ++m)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[m][i] += part[warp + w][lane][4 * m + i];
    }
    if (warp % a.splits != 0) continue;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int c = 2 * t + i % 2;
      const int64_t row = row0 + g + 8 * (i / 2);
      if (c >= nt) continue;
      const int64_t at = pick(pr, c) * n_out + row;
      if constexpr (kGateUp)
        a.act[at] = __float2bfloat16(acc[0][i] / (1.0f + expf(-acc[0][i])) * acc[1][i]);
      else
        a.y[at] = acc[0][i];
    }
  }
}

// Steps of K a warp takes at least (DSINFER_FP8_FEW_MMA_MIN_STEPS=N moves it, for measurement). The
// wave rule alone gave V3's down at 2 tokens (448 tiles x 17 slots) 8 warps a tile of one step
// each (3.6 against 4 waves' worth), and that launch streamed 250 MB in 127 us, 65 % of copy,
// where one token's down (8-step warps) ran at 94 % (H100 traces, session 53): with 4 it takes
// 8-step warps, and V3's other launches at 1-2 tokens keep their splits. V3 8 layers (H100,
// session 54, 2 rounds): batch 2 517.1 / 517.8 -> 546.2 / 543.5 tok/s.
constexpr int kMinWarpSteps = 4;
int min_warp_steps() {
  static const int steps = std::max(1, switch_value("DSINFER_FP8_FEW_MMA_MIN_STEPS", kMinWarpSteps));
  return steps;
}

template <bool kGateUp, int T>
void launch_tokens(MmaArgs a, int sm_count, cudaStream_t s) {
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden, k_in = kGateUp ? a.ex.hidden : a.ex.inter;
  const size_t smem = T * (k_in + kRowPad) + T * (k_in / kActGroup) * sizeof(float);
  const auto kernel = moe_few_mma_kernel<kGateUp, T>;
  const Residency r = kernel_residency(reinterpret_cast<const void*>(kernel), kWarps * 32, smem);
  // Warps a tile: costed in whole waves of resident warps over every slot's tiles (a slot whose
  // expert a lower pair chose too ends at once), each warp taking at least min_warp_steps() steps
  // of K.
  const int slots = a.n + a.shared.chunks, groups = static_cast<int>(k_in / kActGroup);
  const int64_t tiles = ceil_div(n_out, int64_t{kFp8Tile});
  const int least = kStepGroups<kGateUp> * min_warp_steps();
  a.splits = fewest_wave_splits(tiles * slots, int64_t{sm_count} * r.per_sm * kWarps, kMaxSplits,
                                [&](int sp) { return kWarps % sp == 0 && groups >= sp * least; });
  const dim3 grid(static_cast<unsigned>(ceil_div(tiles, int64_t{kWarps / a.splits})), static_cast<unsigned>(slots));
  // With the shared experts fused the launch is part of the fused MoE chain, under the decode
  // chain's split (docs/cuda.md).
  const int carveout = a.shared.chunks > 0 ? decode_chain_carveout(r.per_sm, r.bytes) : -1;
  launch_dependent(kGateUp ? "moe_few_mma_kernel (gate/up)" : "moe_few_mma_kernel (down)",
                   kernel, grid, kWarps * 32, {smem, carveout}, s, a);
}

template <bool kGateUp>
void launch_mma(const MmaArgs& a, int sm_count, cudaStream_t s) {
  if (a.n <= 0) return;
  const int tokens = ceil_div(a.n, a.k);
  if (a.n > kFewMaxPairs || tokens > kFewMmaMaxTokens)
    fail("moe_few_mma: ", a.n, " pairs of ", tokens, " tokens (at most ", kFewMaxPairs, " of ", kFewMmaMaxTokens, ")");
  if (!moe_few_mma_fits(a.ex))
    fail("moe_few_mma: experts of ", dtype_name(a.ex.dtype), ", ", a.ex.hidden, " x ", a.ex.inter, " in blocks of ",
         a.ex.block_rows, " x ", a.ex.block_cols, " (FP8 with K and blocks whole groups of 128, blocks whole tiles of 16 rows)");
  if (a.shared.chunks < 0 || a.shared.chunks > kMaxSharedChunks || (a.shared.chunks > 0 && a.n % a.k != 0))
    fail("moe_few_mma: ", a.shared.chunks, " shared chunks with ", a.n, " pairs of top-", a.k,
         " (at most ", kMaxSharedChunks, ", whole tokens only)");
  // The kernels are templates on the launch's tokens (the most pairs that can share an expert),
  // as the skinny products are on their rows: with_rows instantiates 1-4.
  static_assert(kFewMmaMaxTokens == 4);
  with_rows(tokens, [&](auto t) { launch_tokens<kGateUp, t.value>(a, sm_count, s); });
}

// kFewMmaTokens, or DSINFER_FP8_FEW_MMA_TOKENS within [0, kFewMmaMaxTokens].
int few_mma_tokens() {
  static const int tokens = std::clamp(switch_value("DSINFER_FP8_FEW_MMA_TOKENS", kFewMmaTokens), 0, kFewMmaMaxTokens);
  return tokens;
}

}  // namespace

bool moe_few_mma_fits(const GroupedExperts& ex) {
  return ex.dtype == DType::F8_E4M3 && ex.hidden % kActGroup == 0 && ex.inter % kActGroup == 0 &&
         ex.block_cols % kActGroup == 0 && ex.block_rows % kFp8Tile == 0;
}

bool moe_few_mma_takes(const GroupedExperts& ex, int tokens) {
  return tokens <= few_mma_tokens() && moe_few_mma_fits(ex);
}

void launch_moe_few_mma_gate_up(const GroupedExperts& ex, const int* ids, int n, int k, const bf16* x,
                                const SharedChunks& shared, bf16* act, int sm_count, cudaStream_t s) {
  launch_mma<true>(MmaArgs{ex, ids, n, k, shared, x, act, nullptr}, sm_count, s);
}

void launch_moe_few_mma_down(const GroupedExperts& ex, const int* ids, int n, int k, const bf16* act,
                             const SharedChunks& shared, float* y, int sm_count, cudaStream_t s) {
  launch_mma<false>(MmaArgs{ex, ids, n, k, shared, act, nullptr, y}, sm_count, s);
}

}  // namespace dsinfer::cuda
