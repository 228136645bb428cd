// MoE router (exactly the CPU reference's selection rules), the permutation of the (token,
// choice) pairs by expert, and the weighted combine of the expert outputs back into token order.
#include <algorithm>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/kernel_residency.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_kernels.h"
#include "backend/cuda/mma.cuh"  // smem_addr
#include "backend/cuda/skinny_product.cuh"
#include "backend/cuda/wgmma_fp8.cuh"  // the cluster's barrier and stores

namespace dsinfer::cuda {
namespace {

constexpr int kRouteWarps = 4;
// Logits (and biases) a routing lane loads at once, and 16-byte pieces of a router row.
constexpr int kRouteLoads = 8, kRouteRowLoads = 8;

// A float's bits in an order the integer max agrees with (larger float, larger key; -0 and +0
// alike). 0 is no float's key (it would be a NaN's): it stands for "no candidate".
__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t u = __float_as_uint(v == 0.0f ? 0.0f : v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The warp's arg max: each lane offers its best candidate (key 0: none) and its index, and every
// lane gets the index of the largest, ties to the lower index as the CPU's sort comparator. Two
// integer reductions, where pairwise shuffles took five rounds.
__device__ __forceinline__ int warp_pick(uint32_t key, int index) {
  const uint32_t best = __reduce_max_sync(0xffffffffu, key);
  return static_cast<int>(__reduce_min_sync(0xffffffffu, key == best ? static_cast<uint32_t>(index) : 0xffffffffu));
}

__device__ __forceinline__ bool better(float v, int i, float best, int best_i) {
  return v > best || (v == best && i < best_i);
}

// Shared memory per routing warp: scores[E], choice[E], the top_k picks.
__host__ __device__ constexpr int route_warp_floats(int experts, int top_k) { return 2 * experts + top_k; }

// The cluster router's shape (moe_gate_route_cluster_kernel): blocks of a cluster (the portable
// most), warps a block, a warp per expert row.
constexpr int kClusterBlocks = 8, kClusterWarps = 8, kClusterRouteExperts = kClusterBlocks * kClusterWarps;

// Token t's logits in global memory, read past L1 (another block may have written them in this
// launch).
struct GlobalLogits {
  const float* l;
  __device__ float operator()(int e) const { return __ldcg(l + e); }
};
__device__ __forceinline__ GlobalLogits global_logits(const float* logits, int t, int experts) {
  return {logits + static_cast<int64_t>(t) * experts};
}

// Token t's choice by one warp, from its logits (logit(e), each read once); `scratch` is the
// warp's shared memory. Lane l holds experts l, l + 32, ...; which of them are taken is a bit each
// in a register (experts <= 1024).
template <typename Logit>
__device__ void route_token(Logit logit, int t, int experts, const DeviceWeight& bias, bool has_bias,
                            const RouteParams& r, float* scratch, int* ids, float* weights) {
  const int lane = threadIdx.x % 32;
  float* scores = scratch;
  float* choice = scores + experts;
  int* pick = reinterpret_cast<int*>(choice + experts);

  // The logits and the correction bias land in shared memory first, kRouteLoads a lane issued
  // together: a loop that used each value as it came waited for every load in turn (V3's 256
  // experts: ~10 us of a ~26 us router launch at batch 1, H100).
  for (int base = 0; base < experts; base += 32 * kRouteLoads) {
    float lg[kRouteLoads], bs[kRouteLoads];
#pragma unroll
    for (int j = 0; j < kRouteLoads; ++j) {
      const int e = base + lane + 32 * j;
      lg[j] = e < experts ? logit(e) : 0.0f;
      bs[j] = e < experts && has_bias ? weight_at(bias, 0, e) : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kRouteLoads; ++j) {
      const int e = base + lane + 32 * j;
      if (e < experts) {
        scores[e] = lg[j];
        choice[e] = bs[j];
      }
    }
  }
  if (r.sigmoid) {
    for (int e = lane; e < experts; e += 32) scores[e] = 1.0f / (1.0f + expf(-scores[e]));
  } else {
    float mx = kNegInf;
    for (int e = lane; e < experts; e += 32) mx = fmaxf(mx, scores[e]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int e = lane; e < experts; e += 32) sum += (scores[e] = expf(scores[e] - mx));
    sum = warp_sum(sum);
    for (int e = lane; e < experts; e += 32) scores[e] /= sum;
  }
  // The correction bias steers which experts are chosen, never their weights.
  for (int e = lane; e < experts; e += 32) choice[e] += scores[e];
  __syncwarp();

  if (r.group_limited) {
    // Lane g scores group g (its max, or the sum of its top two), then the best groups are kept.
    const int per_group = experts / r.n_group;
    float gscore = kNegInf;
    if (lane < r.n_group) {
      float top1 = kNegInf, top2 = kNegInf;
      for (int e = lane * per_group; e < (lane + 1) * per_group; ++e) {
        const float v = choice[e];
        if (v > top1) {
          top2 = top1;
          top1 = v;
        } else if (v > top2) {
          top2 = v;
        }
      }
      gscore = r.group_by_top2_sum ? top1 + (per_group > 1 ? top2 : 0.0f) : top1;
    }
    bool kept = false;
    for (int k = 0; k < r.topk_group; ++k)
      if (lane == warp_pick(lane < r.n_group && !kept ? order_key(gscore) : 0u, lane)) kept = true;
    const unsigned kept_mask = __ballot_sync(0xffffffffu, kept);
    for (int e = lane; e < experts; e += 32)
      if (!((kept_mask >> (e / per_group)) & 1u)) choice[e] = 0.0f;
    __syncwarp();
  }

  uint32_t taken = 0;  // bit j: expert lane + 32 j
  for (int k = 0; k < r.top_k; ++k) {
    float best = kNegInf;
    int best_i = 0x7fffffff;
    for (int e = lane, j = 0; e < experts; e += 32, ++j)
      if (!((taken >> j) & 1u) && (best_i == 0x7fffffff || better(choice[e], e, best, best_i))) {
        best = choice[e];
        best_i = e;
      }
    const int chosen = warp_pick(best_i == 0x7fffffff ? 0u : order_key(best), best_i);
    if (chosen % 32 == lane) taken |= 1u << (chosen / 32);
    if (lane == 0) pick[k] = chosen;
  }
  __syncwarp();
  // The sum in selection order, as the CPU adds it; then the picks leave in one parallel store each.
  float sum = 0.0f;
  for (int k = 0; k < r.top_k; ++k) sum += scores[pick[k]];
  for (int k = lane; k < r.top_k; k += 32) {
    const int e = pick[k];
    const int64_t at = static_cast<int64_t>(t) * r.top_k + k;
    ids[at] = e;
    weights[at] = (r.normalize ? scores[e] / (sum + 1e-20f) : scores[e]) * r.scaling;
  }
}

// One warp per token.
__global__ void moe_route_kernel(const float* logits, int tokens, int experts, DeviceWeight bias, bool has_bias,
                                 RouteParams r, int* ids, float* weights) {
  extern __shared__ float smem[];
  dependent_kernel_start();  // the logits are the previous kernel's output
  const int warp = threadIdx.x / 32, t = blockIdx.x * kRouteWarps + warp;
  if (t >= tokens) return;
  route_token(global_logits(logits, t, experts), t, experts, bias, has_bias, r,
              smem + warp * route_warp_floats(experts, r.top_k), ids, weights);
}

// The router's product and the routing of up to kRouteWarps tokens in one launch (decode): the
// `splits` warps w of block b with the same w / splits own expert row b * kRouteWarps / splits +
// w / splits, each streaming its part as the skinny products do (batches of 8 16-byte loads a
// lane, the first issued before the dependent wait: no kernel writes weights) against every
// token's x, the parts added in shared memory; the last block to finish routes the tokens, a
// warp each. One launch fewer per MoE layer than the product and moe_route_kernel. V3's rows
// (896 pieces) a warp each took four batches of loads in turn, each a round trip to memory; in
// four parts each lane's part is one batch.
template <int M>
__global__ void __launch_bounds__(kRouteWarps * 32)
    moe_gate_route_kernel(const bf16* x, const bf16* gate, int hidden, int experts, DeviceWeight bias, bool has_bias,
                          RouteParams r, float* logits, int* ids, float* weights, int* counter, int splits) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int e = blockIdx.x * (kRouteWarps / splits) + warp / splits, all_pieces = hidden / 8;
  const int per_part = ceil_div(all_pieces, splits), begin = min(all_pieces, warp % splits * per_part);
  const int pieces = min(all_pieces, begin + per_part) - begin;
  const uint4* wr = reinterpret_cast<const uint4*>(gate) + static_cast<int64_t>(min(e, experts - 1)) * all_pieces + begin;
  const uint4* xs = reinterpret_cast<const uint4*>(x) + begin;
  uint4 wv[kRouteRowLoads];
  load_batch(wv, wr, lane, pieces);
  dependent_kernel_start();  // x is the previous kernel's output
  float acc[M] = {};
  stream_row<M>(acc, wv, wr, xs, all_pieces, lane, pieces);
  sum_split_parts<kRouteWarps, M>(acc, splits);
#pragma unroll
  for (int m = 0; m < M; ++m)
    if (lane == 0 && warp % splits == 0 && e < experts) logits[static_cast<int64_t>(m) * experts + e] = acc[m];
  if (!last_block_arrives(counter, gridDim.x) || warp >= M) return;
  route_token(global_logits(logits, warp, experts), warp, experts, bias, has_bias, r,
              smem + warp * route_warp_floats(experts, r.top_k), ids, weights);
}

// Up to kClusterRouteExperts experts (V2's 64): the same in one cluster of kClusterBlocks blocks,
// a warp per expert row, each row's logits stored into block 0's shared memory (and to `logits`,
// which nothing in the launch reads). One cluster barrier then stands where the grid has a fence,
// an atomic count and the last block's read-back of the logits from L2, which queue behind the
// fused shared experts' weight loads streaming beside the router. (V3's 256 rows on a cluster's 8
// SMs cost 6 % at batch 1 in session 17: more experts keep the grid.)
template <int M>
__global__ void __cluster_dims__(kClusterBlocks, 1, 1) __launch_bounds__(kClusterWarps * 32)
    moe_gate_route_cluster_kernel(const bf16* x, const bf16* gate, int hidden, int experts, DeviceWeight bias,
                                  bool has_bias, RouteParams r, float* logits, int* ids, float* weights) {
  extern __shared__ float smem[];  // block 0's: the logits [M][experts], then the routing warps' scratch
  constexpr int kUnroll = 8;
  // Another block's shared memory may be written only once that block has started: every thread
  // arrives here and waits before the first store, which the row's stream hides.
  cluster_arrive_relaxed();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int e = blockIdx.x * kClusterWarps + warp, pieces = hidden / 8;
  const bool live = e < experts;
  const uint4* wr = reinterpret_cast<const uint4*>(gate) + static_cast<int64_t>(live ? e : 0) * pieces;
  uint4 wv[kUnroll];
  if (live) load_batch(wv, wr, lane, pieces);
  dependent_kernel_start();  // x is the previous kernel's output
  float acc[M] = {};
  if (live) stream_row<M>(acc, wv, wr, reinterpret_cast<const uint4*>(x), pieces, lane, pieces);
  cluster_wait();
  if (live) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) {
        logits[static_cast<int64_t>(m) * experts + e] = v;
        st_shared_cluster_f32(smem_addr(smem + m * experts + e), 0, v);
      }
    }
  }
  cluster_sync();  // every block, block 0 included, before block 0 reads the logits
  if (cluster_rank() != 0 || warp >= M) return;
  const float* l = smem + warp * experts;
  route_token([l](int i) { return l[i]; }, warp, experts, bias, has_bias, r,
              smem + M * experts + warp * route_warp_floats(experts, r.top_k), ids, weights);
}

// out[t] = sum_j w[t, j] * y[row(t, j)], row = inverse[t, j] or, without an inverse, the pair
// t * k + j itself; summed in float in choice order (deterministic, unlike atomics into the
// output); pairs with no row add nothing. A block covers 128 x 4 columns of token blockIdx.x,
// and a thread's loads of weights, rows and y are issued together, y's after the rows where an
// inverse gives them (combine_columns): one token (decode) is a few short blocks, not one block
// walking the row one dependent load after another.
constexpr int kCombineThreads = 128;
// The residual kernel: a thread's columns, and as many such chunks as make the longest row.
constexpr int kCombineResidualThreads = 1024, kResidualCols = 2, kCombineChunks = 4;
// Up to kCombineClusterTokens tokens a row longer than one chunk is combined by a cluster of
// kCombineParts blocks (moe_combine_residual_cluster_kernel).
constexpr int kCombineParts = 4, kCombineClusterTokens = 16;

// N (1, 2, 4) values at p (aligned to N values) as floats, and back as bf16.
template <int N>
__device__ __forceinline__ void load_n(const float* p, float (&v)[N]) {
  if constexpr (N == 4) {
    const float4 u = *reinterpret_cast<const float4*>(p);
    v[0] = u.x, v[1] = u.y, v[2] = u.z, v[3] = u.w;
  } else if constexpr (N == 2) {
    const float2 u = *reinterpret_cast<const float2*>(p);
    v[0] = u.x, v[1] = u.y;
  } else {
    v[0] = *p;
  }
}
// N bf16 values (2 or 4) as one 4- or 8-byte access.
template <int N>
using Bf16Vec = std::conditional_t<N == 4, uint2, uint32_t>;
template <int N>
__device__ __forceinline__ void load_n(const bf16* p, float (&v)[N]) {
  if constexpr (N == 1) {
    v[0] = __bfloat162float(*p);
  } else {
    const Bf16Vec<N> u = *reinterpret_cast<const Bf16Vec<N>*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
  }
}
template <int N>
__device__ __forceinline__ void store_n(bf16* p, const float (&v)[N]) {
  if constexpr (N == 1) {
    *p = __float2bfloat16(v[0]);
  } else {
    Bf16Vec<N> u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<Bf16Vec<N>*>(p) = u;
  }
}

// Columns [d, d + kCols) of token t's combine, added in choice order. Up to kCombineBatch choices
// at a time, every load issued before any is summed and none behind a branch (a choice past k
// repeats the last one's loads, a pair with no row loads row 0; neither is added), so no load
// waits on a check of another choice. Session 29, V2-Lite batch 1: the residual combine's loads
// after its wait took 4.5 us of the 5.75 a layer it cost (clock64); this form took it to 5.45
// (batch 1 +0.3 %, batch 2 +1.1 %). Most of the rest is L2 latency under the next layer's weight
// stream: with that launch held back until the combine's loads were in, the combine cost 3.4 us
// and the stream 4.3 us more.
template <int kCols, typename Y>
__device__ __forceinline__ void combine_columns(const Y* y, const int* inverse, const float* weights, int64_t t,
                                                int k, int64_t hidden, int64_t d, float (&acc)[kCols]) {
  constexpr int kCombineBatch = 8;
  for (int j0 = 0; j0 < k; j0 += kCombineBatch) {
    float v[kCombineBatch][kCols], w[kCombineBatch];
    bool live[kCombineBatch];
#pragma unroll
    for (int b = 0; b < kCombineBatch; ++b) {
      const int64_t pair = t * k + min(j0 + b, k - 1);
      const int64_t row = inverse ? inverse[pair] : pair;
      live[b] = j0 + b < k && row >= 0;
      w[b] = weights[pair];
      load_n<kCols>(y + max(row, int64_t{0}) * hidden + d, v[b]);
    }
#pragma unroll
    for (int b = 0; b < kCombineBatch; ++b)
      if (live[b])
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[c] += w[b] * v[b][c];
  }
}

template <bool kVec, typename Y>
__global__ void __launch_bounds__(kCombineThreads) moe_combine_kernel(const Y* y, const int* inverse,
                                                                      const float* weights, int k, int64_t hidden,
                                                                      bf16* out) {
  dependent_kernel_start();
  const int64_t t = blockIdx.x;
  constexpr int kCols = kVec ? 4 : 1;
  const int64_t d = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * kCols;
  if (d >= hidden) return;
  float acc[kCols] = {};
  combine_columns<kCols>(y, inverse, weights, t, k, hidden, d, acc);
  store_n<kCols>(out + t * hidden + d, acc);
}

// The combine with the rest of the MoE block's end, one block per token (its whole row, for the
// norm's sum) or kBlocks blocks of a cluster (below): out = the combine (+ shared, or the sum of
// its fused parts), x += out, normed = rmsnorm(x) * norm, each rounded to bf16 where the ops in
// sequence round (moe_experts' output, add, add_rmsnorm), so only the norm's order of summation
// differs. Two launches fewer per MoE layer than those ops. A thread holds its (up to
// kCombineChunks) chunks of kResidualCols columns in registers from the combine to the norm, whose
// weights it loads before the dependent wait (no kernel writes weights). Two columns a thread, not
// four: the eight choices' loads in flight together then fit the 64 registers of 1024 threads.
// Block `part` of a token's kBlocks takes its chunks part, part + kBlocks, ...
template <typename Y, int kBlocks>
__device__ __forceinline__ void combine_residual(const Y* y, const int* inverse, const float* weights, int k,
                                                 int64_t hidden, const CombineResidual& r, bf16* out) {
  constexpr int N = kResidualCols;
  const int64_t t = blockIdx.x / kBlocks, row = t * hidden, tokens = gridDim.x / kBlocks;
  const int part = static_cast<int>(blockIdx.x % kBlocks);
  const auto column = [&](int i) { return (threadIdx.x + (static_cast<int64_t>(i) * kBlocks + part) * blockDim.x) * N; };
  float g[kCombineChunks][N] = {}, xv[kCombineChunks][N] = {};
#pragma unroll
  for (int i = 0; i < kCombineChunks; ++i) {
    const int64_t d = column(i);
    if (d < hidden)
      for (int c = 0; c < N; ++c) g[i][c] = weight_at(r.norm, 0, d + c);
  }
  dependent_kernel_start();
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kCombineChunks; ++i) {
    const int64_t d = column(i);
    if (d >= hidden) break;
    // Every load before any use: one wait on L2, not one per row the sums go through. Fused
    // shared parts come only with the few-token kernels' float rows (bf16 rows keep no registers
    // for them).
    constexpr int kParts = std::is_same_v<Y, float> ? kMaxSharedChunks : 0;
    float o[N] = {}, sh[N] = {}, parts[kParts > 0 ? kParts : 1][N];
    load_n<N>(r.x + row + d, xv[i]);
    if (r.shared) load_n<N>(r.shared + row + d, sh);
#pragma unroll
    for (int j = 0; j < kParts; ++j)
      if (j < r.shared_chunks)
        load_n<N>(r.shared_parts + (static_cast<int64_t>(j) * tokens + t) * hidden + d, parts[j]);
    combine_columns<N>(y, inverse, weights, t, k, hidden, d, o);
#pragma unroll
    for (int j = 0; j < kParts; ++j)
      if (j < r.shared_chunks)
#pragma unroll
        for (int c = 0; c < N; ++c) sh[c] += parts[j][c];
    const bool with_shared = r.shared || r.shared_chunks > 0;
#pragma unroll
    for (int c = 0; c < N; ++c) {
      o[c] = __bfloat162float(__float2bfloat16(o[c]));
      // Fused parts are rounded once summed, as the shared experts' own output would be.
      if (r.shared_chunks > 0) sh[c] = __bfloat162float(__float2bfloat16(sh[c]));
      if (with_shared) o[c] = __bfloat162float(__float2bfloat16(o[c] + sh[c]));
      xv[i][c] = __bfloat162float(__float2bfloat16(xv[i][c] + o[c]));
      ss += xv[i][c] * xv[i][c];
    }
    store_n<N>(out + row + d, o);
    store_n<N>(r.x + row + d, xv[i]);
  }
  float sum = block_sum(ss);
  if constexpr (kBlocks > 1) {
    // Each block's sum into every block's shared memory (the cluster's blocks have all started:
    // the caller's arrival at entry, the wait here), then all of them once the barrier has made
    // the stores visible.
    __shared__ float sums[kBlocks];
    cluster_wait();
    if (threadIdx.x < kBlocks) st_shared_cluster_f32(smem_addr(&sums[part]), threadIdx.x, sum);
    cluster_sync();
    sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kBlocks; ++j) sum += sums[j];
  }
  const float inv = rsqrtf(sum / static_cast<float>(hidden) + r.eps);
#pragma unroll
  for (int i = 0; i < kCombineChunks; ++i) {
    const int64_t d = column(i);
    if (d >= hidden) break;
#pragma unroll
    for (int c = 0; c < N; ++c) xv[i][c] = g[i][c] * (xv[i][c] * inv);
    store_n<N>(r.normed + row + d, xv[i]);
  }
}

template <typename Y>
__global__ void __launch_bounds__(kCombineResidualThreads)
    moe_combine_residual_kernel(const Y* y, const int* inverse, const float* weights, int k, int64_t hidden,
                                CombineResidual r, bf16* out) {
  combine_residual<Y, 1>(y, inverse, weights, k, hidden, r, out);
}

// At a few tokens one block a token walked V3's 7168 columns in 4 chunks, one round of loads
// after another (~10 us a MoE layer, H100 trace at batch 1, session 54): here a token's chunks
// are spread over a cluster of kCombineParts blocks, one chunk each, and the norm's sum of
// squares is added over distributed shared memory.
template <typename Y>
__global__ void __cluster_dims__(kCombineParts, 1, 1) __launch_bounds__(kCombineResidualThreads)
    moe_combine_residual_cluster_kernel(const Y* y, const int* inverse, const float* weights, int k, int64_t hidden,
                                        CombineResidual r, bf16* out) {
  cluster_arrive_relaxed();  // this block has started: the others may store its sum, after their wait
  combine_residual<Y, kCombineParts>(y, inverse, weights, k, hidden, r, out);
}

// Exclusive prefix sum of one value per thread over the block (blockDim.x = kMoeMaxExperts);
// `total` receives the sum of all. `scratch` holds 33 ints of shared memory.
__device__ int block_exclusive_scan(int v, int* scratch, int& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  int incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    const int w = lane < warps ? scratch[lane] : 0;
    int w_incl = w;
    for (int o = 1; o < 32; o <<= 1) {
      const int n = __shfl_up_sync(0xffffffffu, w_incl, o);
      if (lane >= o) w_incl += n;
    }
    scratch[lane] = w_incl - w;
    if (lane == 31) scratch[32] = w_incl;
  }
  __syncthreads();
  const int excl = incl - v + scratch[warp];
  total = scratch[32];
  __syncthreads();  // scratch is reused by the next scan
  return excl;
}

__global__ void moe_local_ids_kernel(int* ids, int64_t n, int first, int count) {
  dependent_kernel_start();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int id = ids[i];
    ids[i] = id >= first && id < first + count ? id - first : -1;
  }
}

// One block of kMoeMaxExperts threads, thread e owning expert e's count. Rows inside an expert
// are placed by shared-memory atomics, so their order varies between runs; every row is
// computed on its own and the combine sums in choice order, so the result does not.
__global__ void __launch_bounds__(kMoeMaxExperts) moe_permute_kernel(const int* ids, int n, int k, int experts,
                                                                     MoePermutation perm) {
  __shared__ int count[kMoeMaxExperts], cursor[kMoeMaxExperts], scratch[33];
  dependent_kernel_start();
  const int e = threadIdx.x;
  count[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int id = ids[i];
    if (id >= 0 && id < experts) atomicAdd(&count[id], 1);
  }
  __syncthreads();
  const int c = e < experts ? count[e] : 0;
  int total = 0, n_active = 0;
  const int start = block_exclusive_scan(c, scratch, total);
  const int slot = block_exclusive_scan(c > 0 ? 1 : 0, scratch, n_active);
  if (e < experts) {
    cursor[e] = start;
    perm.offsets[e] = start;
    if (c > 0) perm.active[slot] = e;
  }
  if (e == 0) {
    perm.offsets[experts] = total;
    *perm.active_count = n_active;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int id = ids[i];
    int row = -1;
    if (id >= 0 && id < experts) {
      row = atomicAdd(&cursor[id], 1);
      perm.order[row] = i / k;
    }
    perm.inverse[i] = row;
  }
}

// Whether the cluster router takes `experts` rows: at most kClusterRouteExperts, where a cluster
// of its largest launch (kRouteWarps tokens) fits the current device (cluster_fits), and
// unless DSINFER_ROUTE_CLUSTER=0 (the grid always: for measuring what the cluster buys).
bool route_cluster_fits(int experts) {
  static const bool enabled = switched_on("DSINFER_ROUTE_CLUSTER");
  if (!enabled || experts > kClusterRouteExperts) return false;
  constexpr int kMostFloats = kClusterRouteExperts + route_warp_floats(kClusterRouteExperts, kClusterRouteExperts);
  return cluster_fits(reinterpret_cast<const void*>(moe_gate_route_cluster_kernel<kRouteWarps>), kClusterBlocks,
                      kClusterWarps * 32, static_cast<size_t>(kRouteWarps) * kMostFloats * sizeof(float));
}

// The router's split: at one token it starts the MoE chain with the shared experts fused (the
// experts' launches, the combine), which runs under the decode chain's split; its few blocks land
// one an SM. (At two tokens, also fused, the router keeps its own split: measured only so.)
int route_carveout(int tokens, size_t smem) { return tokens == 1 ? decode_chain_carveout(1, smem) : -1; }

}  // namespace

void launch_moe_route(const float* logits, int tokens, int experts, const DeviceWeight* bias, const RouteParams& r,
                      int* ids, float* weights, cudaStream_t s) {
  if (tokens == 0) return;
  const size_t smem = static_cast<size_t>(kRouteWarps) * route_warp_floats(experts, r.top_k) * sizeof(float);
  CUDA_CHECK(
      cudaFuncSetAttribute(moe_route_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  launch_dependent("moe_route_kernel", moe_route_kernel, ceil_div(tokens, kRouteWarps), kRouteWarps * 32, smem, s,
                   logits, tokens, experts, bias ? *bias : DeviceWeight{}, bias != nullptr, r, ids, weights);
}

bool moe_gate_route_fits(int tokens, int hidden, const void* x, const void* gate) {
  return tokens >= 1 && tokens <= kRouteWarps && hidden % 8 == 0 && aligned16(x) && aligned16(gate);
}

void launch_moe_gate_route(const bf16* x, const bf16* gate, int tokens, int hidden, int experts,
                           const DeviceWeight* bias, const RouteParams& r, float* logits, int* ids, float* weights,
                           int* counter, cudaStream_t s) {
  if (!moe_gate_route_fits(tokens, hidden, x, gate))
    fail("moe gate+route: ", tokens, " tokens (1 to ", kRouteWarps, "), hidden ", hidden,
         " (a multiple of 8), 16-byte aligned x and gate");
  if (route_cluster_fits(experts)) {
    const size_t smem = static_cast<size_t>(tokens) * (experts + route_warp_floats(experts, r.top_k)) * sizeof(float);
    return with_rows(tokens, [&](auto m) {
      launch_dependent("moe_gate_route_cluster_kernel", moe_gate_route_cluster_kernel<m.value>, kClusterBlocks,
                       kClusterWarps * 32, {smem, route_carveout(tokens, smem)}, s, x, gate, hidden, experts,
                       bias ? *bias : DeviceWeight{}, bias != nullptr, r, logits, ids, weights);
    });
  }
  const size_t smem = static_cast<size_t>(kRouteWarps) * route_warp_floats(experts, r.top_k) * sizeof(float);
  // Warps a row: enough that each lane's part is one batch of loads (kRouteWarps at most).
  int splits = 1;
  while (splits < kRouteWarps && hidden / 8 > splits * 32 * kRouteRowLoads) splits *= 2;
  const int blocks = ceil_div(experts, kRouteWarps / splits), carveout = route_carveout(tokens, smem);
  with_rows(tokens, [&](auto m) {
    const auto kernel = moe_gate_route_kernel<m.value>;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    launch_dependent("moe_gate_route_kernel", kernel, blocks, kRouteWarps * 32, {smem, carveout}, s, x, gate, hidden,
                     experts, bias ? *bias : DeviceWeight{}, bias != nullptr, r, logits, ids, weights, counter,
                     splits);
  });
}

void launch_moe_local_ids(int* ids, int64_t n, int first, int count, cudaStream_t s) {
  if (n == 0) return;
  const int threads = 256, blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 1024));
  launch_dependent("moe_local_ids_kernel", moe_local_ids_kernel, blocks, threads, 0, s, ids, n, first, count);
}

void launch_moe_permute(const int* ids, int tokens, int k, int experts, const MoePermutation& perm, cudaStream_t s) {
  if (experts < 1 || experts > kMoeMaxExperts)
    fail("moe permutation: ", experts, " experts (1 to ", kMoeMaxExperts, ")");
  launch_dependent("moe_permute_kernel", moe_permute_kernel, 1, kMoeMaxExperts, 0, s, ids, tokens * k, k, experts,
                   perm);
}

bool moe_combine_residual_fits(int64_t hidden, const std::initializer_list<const void*>& rows) {
  if (hidden % 4 != 0 || hidden > int64_t{kResidualCols} * kCombineChunks * kCombineResidualThreads) return false;
  for (const void* p : rows)
    if (reinterpret_cast<uintptr_t>(p) % 8 != 0) return false;
  return true;
}

// Whether a few tokens' rows of `hidden` values take the cluster kernel: longer than one block's
// chunk, and a cluster of it fits the current device (cluster_fits); unless
// DSINFER_COMBINE_CLUSTER=0 (one block a token always: for measuring what the cluster buys).
template <typename Y>
bool combine_cluster_fits(int tokens, int64_t hidden) {
  static const bool enabled = switched_on("DSINFER_COMBINE_CLUSTER");
  return enabled && tokens <= kCombineClusterTokens && hidden > int64_t{kResidualCols} * kCombineResidualThreads &&
         cluster_fits(reinterpret_cast<const void*>(moe_combine_residual_cluster_kernel<Y>), kCombineParts,
                      kCombineResidualThreads, 0);
}

template <typename Y>
void launch_moe_combine_residual(const Y* y, const int* inverse, const float* weights, int tokens, int k,
                                 int64_t hidden, const CombineResidual& r, bf16* out, cudaStream_t s) {
  if (tokens == 0) return;
  if (!moe_combine_residual_fits(hidden, {r.shared, r.x, r.normed, out}) || !aligned16(y))
    fail("moe combine: the residual step takes rows of a multiple of 4 values (up to ",
         kResidualCols * kCombineChunks * kCombineResidualThreads, "), 8-byte aligned");
  if (r.shared_chunks < 0 || r.shared_chunks > (std::is_same_v<Y, float> ? kMaxSharedChunks : 0) ||
      !aligned16(r.shared_parts) || (r.shared_chunks > 0 && r.shared))
    fail("moe combine: ", r.shared_chunks, " fused shared parts (at most ", kMaxSharedChunks,
         ", with float expert rows, 16-byte aligned, and no shared output beside them)");
  // Fused shared parts: the end of the fused MoE chain, under the decode chain's split.
  const int carveout = r.shared_chunks > 0 ? kDecodeChainCarveout : -1;
  if (combine_cluster_fits<Y>(tokens, hidden)) {  // a chunk a block
    const int threads = static_cast<int>(ceil_div(ceil_div(hidden, int64_t{kCombineParts} * kResidualCols), 32) * 32);
    return launch_dependent("moe_combine_residual_cluster_kernel", moe_combine_residual_cluster_kernel<Y>,
                            tokens * kCombineParts, threads, {0, carveout}, s, y, inverse, weights, k, hidden, r, out);
  }
  const int threads =
      static_cast<int>(std::min<int64_t>(kCombineResidualThreads, ceil_div(hidden / kResidualCols, 32) * 32));
  launch_dependent("moe_combine_residual_kernel", moe_combine_residual_kernel<Y>, tokens, threads, {0, carveout}, s, y,
                   inverse, weights, k, hidden, r, out);
}
template void launch_moe_combine_residual(const float*, const int*, const float*, int, int, int64_t,
                                          const CombineResidual&, bf16*, cudaStream_t);
template void launch_moe_combine_residual(const bf16*, const int*, const float*, int, int, int64_t,
                                          const CombineResidual&, bf16*, cudaStream_t);

template <typename Y>
void launch_moe_combine(const Y* y, const int* inverse, const float* weights, int tokens, int k, int64_t hidden,
                        bf16* out, cudaStream_t s) {
  if (tokens == 0) return;
  const bool vec = hidden % 4 == 0 && aligned16(y) && reinterpret_cast<uintptr_t>(out) % 8 == 0;
  const int64_t threads = vec ? hidden / 4 : hidden;
  const dim3 grid(tokens, ceil_div(threads, kCombineThreads));
  launch_dependent("moe_combine_kernel", vec ? moe_combine_kernel<true, Y> : moe_combine_kernel<false, Y>, grid,
                   kCombineThreads, 0, s, y, inverse, weights, k, hidden, out);
}
template void launch_moe_combine(const float*, const int*, const float*, int, int, int64_t, bf16*, cudaStream_t);
template void launch_moe_combine(const bf16*, const int*, const float*, int, int, int64_t, bf16*, cudaStream_t);

}  // namespace dsinfer::cuda
