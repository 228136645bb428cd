// Skinny products of block-scaled FP8 weights on tensor cores, DeepSeek's recipe at 1-4 tokens:
// out[M, N] = x[M, K] W[N, K]^T (+ bias) with x quantized to e4m3 per token in groups of 128 as the
// kernel reads it, mma.m16n8k32 on e4m3 operands, and each group's f32 sums multiplied by the
// weight block's scale times the x group's scale. gemv_fp8.cu's CUDA-core dots convert every
// weight (e4m3 pair -> f16 pair -> two floats) before its multiply-adds: under ncu its loop issued
// 2.4 conversions a multiply-add and streamed V3's gate/up at 2.33 TB/s (70 % of the H100's
// peak). Here a 16-byte weight load costs a quarter of an mma and no conversion.
//
// Measured (H100, session 51, V3 4 layers, CUPTI trace at batch 1): the large products gained
// (gate + up, 264 MB, 99 us a launch: 2.7 TB/s; o_proj 117 MB, 47 us of the step), the step +1.5 %
// at batch 1, +6 % at 4 tokens. The small ones traced slower (q_a + kv_a 10.9 us, q_b 19 us,
// against gemv_fp8.cu's 8.4 and ~16), yet sending launches under 64 MiB back to gemv_fp8.cu cost
// the step 1 % (session 53, V3 8 layers batch 1, 3 rounds: 360.7 against 364.2 tok/s), so every
// launch that fits takes this kernel. At 5-8 tokens (the mma's N allows 8) quantizing x in every
// warp cost V3 batch 8 23 % against the GEMM, so it takes the skinny kernel's 1-4.
// DSINFER_FP8_GEMV_MMA=0 keeps gemv_fp8.cu's kernel, for measurement.
//
// A warp owns 16 weight rows (the mma's A rows) and a part of K; tokens are the B columns (8, of
// which M are live). Each lane loads its A fragments straight from the rows, 16 contiguous bytes a
// load: mma only needs A and B to agree on which k each slot holds, so within a group of 128 lane
// (g, t) takes bytes [16t, 16t + 16) and [64 + 16t, 80 + 16t) of rows g and g + 8, and the B
// fragment of token g is read from the same columns of the quantized x. The warp quantizes x as it
// goes, two groups per step (half a warp a group and token, as quantize_fp8.cu), through 1 KB of
// its own shared memory.
//
// At 2-4 tokens on the main stream x comes quantized instead (gemv_fp8_quantizes_first; kQuantized):
// a chained pass (launch_quantize_fp8_act_chained) quantizes it once, letting this kernel start and
// issue its first weight loads before the pass's own wait, and each lane reads its B words and the
// scales straight from the pass's rows, the same bits as its own quantizing. H100, session 59, same
// binary, 2 rounds: the 7B FP8 batch 3 / 4 706-707 -> 790, 935-937 -> 1047-1048 tok/s (+12 %), V3
// 8 layers +2 %; at 1 token the pass's hop costs more than the warps' quantizing saves (7B -4 %,
// V3 -3 %; 2 tokens level). Timed alone in bench-gemm's skinny rows, pass included, it loses at 3
// tokens on the large products (V3's dense gate + up 101 -> 105 us) and gains at 4 (108.5 -> 105).
// Since session 61 the deep form keeps the next step in flight over x quantized too, and at 2
// tokens the pass computes a gated MLP's activation (CudaBackend::gated_mlp): there the 7B FP8
// batch 2 gains 5 % (539-541 -> 566-569 tok/s, H100, 2 rounds; V3 8 layers level, 602 -> 604),
// though alone its products lose (the 7B's four a layer 101 -> 104 us at 2 tokens): in the chain
// the pass waits beside the previous kernel. At one token it still loses (7B 285 -> 277).
//
// As in gemv_fp8.cu: several products of one x a launch (q_a and kv_a), the first weight loads
// issued before the dependent wait, and a launch with few rows splits K over up to 8 warps of a
// block, whose sums add in shared memory (the count costed in waves of resident warps).
//
// Each launch takes one of two forms of the kernel (gemv_fp8_mma_plan): wide, held to three blocks
// an SM (80 registers; it spills 4-16 bytes at 3 tokens, 36-48 at 4), or deep, two blocks an SM
// whose warps keep the next step's x and weight scales in flight at 1-2 tokens (94-100 registers,
// 121-128 over x quantized first; at 3-4 tokens as wide's loop without the limit, 96-98).
// Residency pays only where a launch's warps outnumber what two blocks an SM hold; elsewhere a
// warp's long part of K pays for its latency. Timed alone (H100, session 57, bench-gemm's skinny
// rows, us): V3's o_proj at 1 token 48.4 -> 42.8 deep, its dense gate + up at 4 tokens 136.5 ->
// 116.7 wide, the 7B's q/k/v at 4 tokens 21.7 -> 13.0 wide; wide took V3's o_proj at 4 tokens 61.1
// -> 78.1, deep at 1 token its q_b 15.5 -> 17.4: the rule picks the faster form of all 24 rows of
// V3's and the 7B's products at 1, 2 and 4 tokens (fitted before session 58's cheaper quantizing;
// not refitted since). In the model: V3 8 layers batch 1 / 2 / 4 +2.4 / +1.2 / +3.5 %, the 7B FP8
// batch 2 / 4 +2.0 / +14.9 %, batch 1 level.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/fp8_act_recipe.cuh"
#include "backend/cuda/fp8_mma_tile.cuh"
#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernel_residency.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/skinny_product.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8, kMaxSplits = 8;
constexpr int kTile = kFp8Tile;
constexpr int kStep = 2;  // groups of 128 columns a warp takes a step (its weight loads in flight: 8 a lane)
// A warp's fixed cost (its start, x's first staging, the pipeline's fill and drain, the parts'
// sum), in groups of its streaming: without it the wave rule took 8 splits of V3's dense gate +
// up (2304 tiles) at 2-4 tokens in 9 waves of 7 groups a warp, and 4 of q_b (1536 tiles) in 3 of
// 3 (then 2 blocks an SM at 2-4 tokens). Fitted to bench-gemm's skinny rows under splits of
// 1/2/4/8 forced by a branch's switch (H100, session 56, one kernel of 2 blocks an SM at 2-4
// tokens): with 5 the rule picked the fastest count at every V3 shape and 1, 2 and 4 tokens (gate
// + up at 4 tokens 189 -> 136 us with 4 splits; q_b 41.5 -> 24.4 us with 1). Since session 57 the
// count is taken in the wide form's slots (3 blocks an SM; gemv_fp8_mma_plan).
constexpr double kWarpOverheadGroups = 5.0;

// A warp's staging: the quantized x of a step's groups (read as 16-byte words), and their scales.
template <int M>
struct alignas(16) Staged {
  uint8_t q[kStep][M][kActGroup];
  float scale[kStep][M];
};

// Groups j0 and j0 + 1 (those before `end`) of every token of x: lanes 0-15 take the first, 16-31
// the second, 8 columns a lane. A group past `end` reads zeros.
template <int M>
__device__ __forceinline__ void load_x(uint4 (&raw)[M], const bf16* x, int k, int j0, int end, int lane) {
  const int s = lane / 16, c = lane % 16 * 8;
  const bool live = j0 + s < end;
#pragma unroll
  for (int m = 0; m < M; ++m)
    raw[m] = live ? __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * k + (j0 + s) * kActGroup + c))
                  : make_uint4(0, 0, 0, 0);
}

// The groups load_x read, quantized into st.
template <int M>
__device__ __forceinline__ void quantize_x(Staged<M>& st, const uint4 (&raw)[M], int lane) {
  const int s = lane / 16, c = lane % 16 * 8;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v[8];
    bf16x8_to_float(raw[m], v);
    const float scale = group_scale(v);
    *reinterpret_cast<uint2*>(&st.q[s][m][c]) = quantize8(v, scale);
    if (c == 0) st.scale[s][m] = scale;
  }
}

// From x quantized before the launch (Fp8Act), the step's B words of token g (zeros past M) and
// the scales of tokens 2t and 2t + 1 (0 past M): the words quantize_x would have staged.
template <int M>
__device__ __forceinline__ void load_act(uint4 (&b)[kStep][2], float (&xs)[kStep][2], const Fp8Act& act, int k,
                                         int j0, int end, int g, int t) {
#pragma unroll
  for (int s = 0; s < kStep; ++s) {
    const bool live = j0 + s < end;
    const uint4* row = reinterpret_cast<const uint4*>(act.q + static_cast<int64_t>(g) * k + (j0 + s) * kActGroup) + t;
    b[s][0] = live && g < M ? __ldg(row) : make_uint4(0, 0, 0, 0);
    b[s][1] = live && g < M ? __ldg(row + 4) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < 2; ++i) xs[s][i] = live && 2 * t + i < M ? __ldg(act.scale + (j0 + s) * M + 2 * t + i) : 0.0f;
  }
}

// A group's sums c (rows g, g + 8 x tokens 2t, 2t + 1) into acc, times each token's scale product
// (weight block's scale x the token's group scale).
__device__ __forceinline__ void add_scaled(float (&acc)[4], const float (&c)[4], float s0, float s1) {
  acc[0] = fmaf(c[0], s0, acc[0]);
  acc[1] = fmaf(c[1], s1, acc[1]);
  acc[2] = fmaf(c[2], s0, acc[2]);
  acc[3] = fmaf(c[3], s1, acc[3]);
}

// The weight scales of the step's groups j0 and j0 + 1 (0 past `end`).
__device__ __forceinline__ void load_scales(float (&ws)[kStep], const float* scale_row, int groups_per_scale, int j0,
                                            int end) {
#pragma unroll
  for (int s = 0; s < kStep; ++s) ws[s] = j0 + s < end ? __ldg(scale_row + (j0 + s) / groups_per_scale) : 0.0f;
}

// Warp w of block b of product p owns rows [16 r, 16 r + 16), r = (b - first_block[p]) * (kWarps /
// splits) + w / splits, over part w % splits of the K groups.
// kAhead: the next step's x and weight scales load while this step's products run (the deep form
// at 1-2 tokens, x quantized or not; at 3-4 their registers cost more than the latency they hide).
// kQuantized: x comes quantized (act), and each step reads its B words and scales straight from it.
template <int M, typename Out, bool kMany, bool kAhead, bool kQuantized>
__device__ __forceinline__ void gemv_fp8_mma_body(const bf16* x, const Fp8Act& act, GemvFp8Products products, int k,
                                                  int splits) {
  __shared__ Staged<M> staged[kWarps];
  __shared__ float part[kWarps][32][4];
  int p = 0;
  if constexpr (kMany) p = products.product_of(blockIdx.x);
  const DeviceWeight& w = products.w[p];
  const int n = products.n[p], warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int row0 = ((static_cast<int>(blockIdx.x) - products.first_block[p]) * (kWarps / splits) + warp / splits) * kTile;
  const int groups = k / kActGroup, per_part = ceil_div(groups, splits);
  const int begin = min(groups, warp % splits * per_part);
  const int end = row0 < n ? min(groups, begin + per_part) : begin;
  // Rows past n read row n - 1 (their sums are dropped); the tile lies in one block row of scales.
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + 16 * t;
  const uint8_t* lo = base + static_cast<int64_t>(min(row0 + g, n - 1)) * k;
  const uint8_t* hi = base + static_cast<int64_t>(min(row0 + g + 8, n - 1)) * k;
  const float* scale_row = w.scale + (row0 < n ? row0 / w.block_rows : 0) * w.scale_cols;
  const int groups_per_scale = w.block_cols / kActGroup;
  GroupWords wv[kStep];
#pragma unroll
  for (int s = 0; s < kStep; ++s)
    if (begin + s < end) load_group(wv[s], lo, hi, begin + s);
  dependent_kernel_start();  // x comes from the previous kernel; no kernel writes weights
  float acc[4] = {};
  float ws[kStep];
  if constexpr (kQuantized) {
    uint4 b[kStep][2];
    float xs[kStep][2];
    if constexpr (kAhead) {
      load_act<M>(b, xs, act, k, begin, end, g, t);
      load_scales(ws, scale_row, groups_per_scale, begin, end);
    }
    for (int j0 = begin; j0 < end; j0 += kStep) {
      if constexpr (!kAhead) {
        load_act<M>(b, xs, act, k, j0, end, g, t);
        load_scales(ws, scale_row, groups_per_scale, j0, end);
      }
      uint4 step_b[kStep][2];
      float step_s[kStep][2];
#pragma unroll
      for (int s = 0; s < kStep; ++s) {
        step_b[s][0] = b[s][0], step_b[s][1] = b[s][1];
        step_s[s][0] = ws[s] * xs[s][0], step_s[s][1] = ws[s] * xs[s][1];
      }
      if (kAhead && j0 + kStep < end) {
        load_act<M>(b, xs, act, k, j0 + kStep, end, g, t);
        load_scales(ws, scale_row, groups_per_scale, j0 + kStep, end);
      }
#pragma unroll
      for (int s = 0; s < kStep; ++s) {
        if (j0 + s >= end) continue;
        float c[4];
        group_product(c, wv[s], step_b[s]);
        if (j0 + kStep + s < end) load_group(wv[s], lo, hi, j0 + kStep + s);
        add_scaled(acc, c, step_s[s][0], step_s[s][1]);
      }
    }
  } else {
    Staged<M>& st = staged[warp];
    uint4 raw[M];
    if constexpr (kAhead) {
      load_x<M>(raw, x, k, begin, end, lane);
      load_scales(ws, scale_row, groups_per_scale, begin, end);
    }
    for (int j0 = begin; j0 < end; j0 += kStep) {
      __syncwarp();  // every lane is done with the previous step's staging
      if constexpr (!kAhead) {
        load_x<M>(raw, x, k, j0, end, lane);
        load_scales(ws, scale_row, groups_per_scale, j0, end);
      }
      quantize_x<M>(st, raw, lane);
      float step_ws[kStep];
#pragma unroll
      for (int s = 0; s < kStep; ++s) step_ws[s] = ws[s];
      if (kAhead && j0 + kStep < end) {
        load_x<M>(raw, x, k, j0 + kStep, end, lane);
        load_scales(ws, scale_row, groups_per_scale, j0 + kStep, end);
      }
      __syncwarp();
#pragma unroll
      for (int s = 0; s < kStep; ++s) {
        if (j0 + s >= end) continue;
        uint4 b[2] = {};
        if (g < M) {
          b[0] = *reinterpret_cast<const uint4*>(&st.q[s][g][16 * t]);
          b[1] = *reinterpret_cast<const uint4*>(&st.q[s][g][64 + 16 * t]);
        }
        float c[4];
        group_product(c, wv[s], b);
        // The group's registers are free once its products are issued: they take the next step's
        // group, whose loads stream while this step finishes and the next one's x is staged.
        if (j0 + kStep + s < end) load_group(wv[s], lo, hi, j0 + kStep + s);
        const float s0 = 2 * t < M ? step_ws[s] * st.scale[s][2 * t] : 0.0f;
        const float s1 = 2 * t + 1 < M ? step_ws[s] * st.scale[s][2 * t + 1] : 0.0f;
        add_scaled(acc, c, s0, s1);
      }
    }
  }
  if (splits > 1) {
#pragma unroll
    for (int i = 0; i < 4; ++i) part[warp][lane][i] = acc[i];
    __syncthreads();
    if (warp % splits != 0) return;
    for (int j = 1; j < splits; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i] += part[warp + j][lane][i];
  }
  if (row0 >= n) return;
  const DeviceWeight& bias = products.bias[p];
  Out* out = static_cast<Out*>(products.out[p]);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int token = 2 * t + i % 2, row = row0 + g + 8 * (i / 2);
    if (token < M && row < n)
      out[static_cast<int64_t>(token) * n + row] =
          static_cast<Out>(acc[i] + (bias.data ? weight_at(bias, 0, row) : 0.0f));
  }
}

// The two forms. No block count in deep's bounds: an explicit count of one took the kernel at one
// token from 80 registers to 108 (session 56). Over x quantized first, neither keeps x ahead.
template <int M, typename Out, bool kMany, bool kQuantized>
__global__ void __launch_bounds__(kWarps * 32, 3) gemv_fp8_mma_wide(const bf16* x, Fp8Act act, GemvFp8Products products,
                                                                    int k, int splits) {
  gemv_fp8_mma_body<M, Out, kMany, false, kQuantized>(x, act, products, k, splits);
}
template <int M, typename Out, bool kMany, bool kQuantized>
__global__ void __launch_bounds__(kWarps * 32) gemv_fp8_mma_deep(const bf16* x, Fp8Act act, GemvFp8Products products,
                                                                 int k, int splits) {
  gemv_fp8_mma_body<M, Out, kMany, (M <= 2), kQuantized>(x, act, products, k, splits);
}

using KernelFn = void (*)(const bf16*, Fp8Act, GemvFp8Products, int, int);

// A launch's plan on this device, and its kernel with the kernel's residency.
struct Launch {
  GemvFp8MmaPlan plan;
  KernelFn kernel;
  Residency r;
};
template <int M, typename Out, bool kMany, bool kQuantized = false>
Launch plan_launch(int64_t tiles, int k, int sm_count) {
  const KernelFn wide = gemv_fp8_mma_wide<M, Out, kMany, kQuantized>, deep = gemv_fp8_mma_deep<M, Out, kMany, kQuantized>;
  const Residency rw = kernel_residency(reinterpret_cast<const void*>(wide), kWarps * 32, 0);
  const Residency rd = kernel_residency(reinterpret_cast<const void*>(deep), kWarps * 32, 0);
  const GemvFp8MmaPlan plan = gemv_fp8_mma_plan(tiles, k, int64_t{sm_count} * rw.per_sm * kWarps,
                                                int64_t{sm_count} * rd.per_sm * kWarps);
  return {plan, plan.deep ? deep : wide, plan.deep ? rd : rw};
}

template <int M, typename Out, bool kMany>
void launch_kernel(const bf16* x, Fp8Act act, GemvFp8Products products, int64_t tiles, int k, int sm_count,
                   cudaStream_t s) {
  const Launch l = act.q != nullptr ? plan_launch<M, Out, kMany, true>(tiles, k, sm_count)
                                    : plan_launch<M, Out, kMany>(tiles, k, sm_count);
  const int blocks = products.place_blocks(kTile * (kWarps / l.plan.splits));
  // Under the decode chain's split where its resident blocks fit it (dependent_launch.cuh): at 2
  // tokens V3's o_proj took 63.4 us a layer under its own split, 53.7 under this one, starting as
  // early after MLA's output kernel either way (H100, session 55; 1 and 4 tokens unchanged or a
  // little faster).
  launch_dependent(l.plan.deep ? "gemv_fp8_mma_deep" : "gemv_fp8_mma_wide", l.kernel, blocks, kWarps * 32,
                   {0, decode_chain_carveout(l.r.per_sm, l.r.bytes)}, s, x, act, products, k, l.plan.splits);
}

template <int M, bool kMany>
void launch_m(const bf16* x, Fp8Act act, const GemvFp8Products& products, DType out_dtype, int64_t tiles, int k,
              int sm_count, cudaStream_t s) {
  if (out_dtype == DType::F32) return launch_kernel<M, float, kMany>(x, act, products, tiles, k, sm_count, s);
  launch_kernel<M, bf16, kMany>(x, act, products, tiles, k, sm_count, s);
}

// The plan launch_m's launch takes.
template <int M, bool kMany, bool kQuantized>
GemvFp8MmaPlan plan_m(DType out_dtype, int64_t tiles, int k, int sm_count) {
  if (out_dtype == DType::F32) return plan_launch<M, float, kMany, kQuantized>(tiles, k, sm_count).plan;
  return plan_launch<M, bf16, kMany, kQuantized>(tiles, k, sm_count).plan;
}

}  // namespace

// Warps per tile: the launch is costed in whole waves of resident warps, each warp's work its
// groups plus kWarpOverheadGroups, and each warp takes at least a step of K.
int gemv_fp8_mma_splits(int64_t tiles, int64_t k, int64_t warp_slots) {
  const int64_t groups = k / kActGroup;
  if (groups < 2 * kStep) return 1;  // no split leaves a warp a whole step
  return fewest_wave_splits(tiles, warp_slots, kMaxSplits,
                            [&](int sp) { return kWarps % sp == 0 && groups >= sp * kStep; },
                            kWarpOverheadGroups / static_cast<double>(groups));
}

// Deep where the splits the wide form's slots take leave every warp room in deep's; wide's split
// count either way (deep's own rule takes the same count there: those counts fit one wave of both).
GemvFp8MmaPlan gemv_fp8_mma_plan(int64_t tiles, int64_t k, int64_t wide_slots, int64_t deep_slots) {
  const int splits = gemv_fp8_mma_splits(tiles, k, wide_slots);
  return {tiles * splits <= deep_slots, splits};
}

GemvFp8MmaPlan gemv_fp8_mma_device_plan(int64_t m, int64_t tiles, int64_t k, bool many, DType out_dtype, int sm_count,
                                        bool quantized) {
  GemvFp8MmaPlan plan;
  const int ki = static_cast<int>(k);
  with_rows(m, [&](auto r) {
    if (quantized)
      plan = many ? plan_m<r.value, true, true>(out_dtype, tiles, ki, sm_count)
                  : plan_m<r.value, false, true>(out_dtype, tiles, ki, sm_count);
    else
      plan = many ? plan_m<r.value, true, false>(out_dtype, tiles, ki, sm_count)
                  : plan_m<r.value, false, false>(out_dtype, tiles, ki, sm_count);
  });
  return plan;
}

bool gemv_fp8_mma_fits(int64_t k, const DeviceWeight& w) {
  return k % kActGroup == 0 && w.block_cols % kActGroup == 0 && w.block_rows % kTile == 0;
}

void launch_gemv_fp8_mma(const bf16* x, Fp8Act act, GemvFp8Products products, DType out_dtype, int64_t m, int64_t k,
                         int sm_count, cudaStream_t s) {
  int64_t tiles = 0;
  for (int p = 0; p < products.count; ++p) tiles += ceil_div(products.n[p], kTile);
  if (tiles == 0) return;
  const int ki = static_cast<int>(k);
  with_rows(m, [&](auto r) {
    if (products.count > 1) return launch_m<r.value, true>(x, act, products, out_dtype, tiles, ki, sm_count, s);
    launch_m<r.value, false>(x, act, products, out_dtype, tiles, ki, sm_count, s);
  });
}

}  // namespace dsinfer::cuda
