// Host-side launchers of the CUDA kernels, grouped by the .cu file that defines them. All take
// the backend's stream; pointers are device pointers; activations are bf16.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "backend/backend.h"
#include "backend/cuda/device_batch.h"
#include "backend/cuda/device_weight.h"
#include "backend/cuda/skinny_products.h"

namespace dsinfer::cuda {

using bf16 = __nv_bfloat16;

__host__ __device__ constexpr int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// Whether 16-byte vector loads and stores may address p.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
// Dynamic shared memory a launch may have without opting in (cudaFuncAttributeMaxDynamicSharedMemorySize).
constexpr size_t kDefaultSharedBytes = 48 * 1024;

// ---- elementwise.cu: data movement and pointwise math
// out[t] = table[tokens[t] - first_id] for tokens within the table's `rows`, zeros for the rest.
void launch_embedding(const DeviceBatch& b, const DeviceWeight& table, int64_t first_id, int64_t rows, bf16* out,
                      cudaStream_t s);
void launch_add(bf16* x, const bf16* y, int64_t n, cudaStream_t s);
void launch_silu_mul(const bf16* gate, const bf16* up, bf16* out, int64_t n, cudaStream_t s);
// out[i] = x[rows[i]] for rows of `row_bytes` bytes (a multiple of 2).
void launch_gather_rows(const void* x, const int* rows, int n_rows, int64_t row_bytes, void* out, cudaStream_t s);
void launch_cache_write(const DeviceBatch& b, const bf16* src, int64_t width, bf16* cache, cudaStream_t s);
// Byte widths and offsets: dst[r, :n] = src[r / repeat, :n] for rows r of dst (src, dst point at
// the first column copied).
void launch_copy_columns(const char* src, int64_t src_w, char* dst, int64_t dst_w, int64_t rows, int64_t n,
                         int64_t repeat, cudaStream_t s);
// Each sequence's cache rows at positions 0..context_len - 1 into out, packed (row_bytes % 16 == 0).
void launch_gather_context(const DeviceBatch& b, const void* cache, int64_t row_bytes, void* out, cudaStream_t s);
// Weight [rows, cols] of any dtype -> bf16, dequantizing FP8 blocks.
void launch_weight_to_bf16(const DeviceWeight& w, int64_t rows, bf16* out, cudaStream_t s);
// out[r, c] += bias[c]; out is bf16 or f32.
void launch_add_bias(void* out, DType out_dtype, int64_t rows, const DeviceWeight& bias, cudaStream_t s);
// out[r] = index of the largest value of row r of x [rows, cols] (the first one on ties).
void launch_argmax_rows(const float* x, int64_t rows, int64_t cols, int* out, cudaStream_t s);
void launch_bf16_to_f32(const bf16* x, float* out, int64_t n, cudaStream_t s);
void launch_f32_to_bf16(const float* x, bf16* out, int64_t n, cudaStream_t s);

// ---- gemv.cu: out_i[M, N_i] = x[M, K] W_i[N_i, K]^T (+ bias_i) for M <= kGemvMaxRows, bf16 x
// and W_i, bf16 or f32 outputs (all of one dtype); several products of the same x in one launch.
constexpr int kGemvMaxRows = 4, kGemvMaxProducts = 4;
using GemvProducts = SkinnyProducts<const __nv_bfloat16*, kGemvMaxProducts>;
// The weights are read before the previous kernel in the stream has finished (dependent_launch.cuh):
// they must be model weights, which no kernel writes.
// Whether the skinny kernel takes this product of n rows of weights (a launch's largest): few
// rows (3-4 only below 32 MB of weights), K a multiple of 8, 16-byte aligned.
bool gemv_fits(int64_t m, int64_t n, int64_t k, const void* x, const void* w);
// A launch with fewer rows than the GPU's `sm_count` SMs hold warps splits each row over several.
// may_stage: a launch whose blocks all fit on the GPU at once may hold its rows in shared memory
// from its start (gemv.cu); false where other kernels must find room beside it (a branch).
void launch_gemv(const bf16* x, const GemvProducts& products, DType out_dtype, int64_t m, int64_t k, int sm_count,
                 bool may_stage, cudaStream_t s);
// ---- gemv_mma.cu: the same products for 3-4 tokens on tensor cores; launch_gemv takes this path
// where it fits on the main stream (may_stage), launch_gemv_silu leaves such products to it.
bool gemv_mma_fits(int64_t m, int64_t k);
void launch_gemv_mma(const bf16* x, GemvProducts products, DType out_dtype, int64_t m, int64_t k, int sm_count,
                     cudaStream_t s);
// act = silu(x gate^T) * (x up^T) [m, n] bf16 in one launch, the two products rounded to bf16
// before the activation as linear_many + silu_mul round them (the same values). False, launching
// nothing where the tensor-core path takes the products (3-4 tokens on the main stream) or the
// launch would split rows over warps (small products): the caller runs the two ops.
bool launch_gemv_silu(const bf16* x, const bf16* gate, const bf16* up, bf16* act, int64_t m, int64_t n, int64_t k,
                      int sm_count, bool may_stage, cudaStream_t s);
// out = the per-head products of up to kGemvMaxRows tokens, w [heads, n, k] bf16 (head_matmul).
bool head_gemv_fits(int64_t t, int64_t n, int64_t k, const void* x, const void* w);
void launch_head_gemv(const bf16* x, const bf16* w, bool transpose, int64_t t, int64_t heads, int64_t n, int64_t k,
                      bf16* out, cudaStream_t s);

// ---- norm_rope.cu
void launch_rmsnorm(const bf16* x, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out, cudaStream_t s);
// Rope over every dim of q [T, hq, d] and k [T, hk, d] in place, then the rotated k and
// v [T, hk, dv] into the cache rows of the tokens' slots (none for slot -1).
struct RopeCacheParams {
  bf16* q;
  bf16* k;
  const bf16* v;
  bf16* k_cache;
  bf16* v_cache;
  int hq, hk, d, dv;
  const float* inv_freq;
  float attention_factor;
  bool neox;
};
void launch_rope_and_cache(const DeviceBatch& b, const RopeCacheParams& p, cudaStream_t s);
// MLA: q [T, heads, nope + rope] -> q_nope [T, heads, nope] and rotated q_rope [T, heads, rope];
// kv [T, lora + rope] -> cache row [rmsnorm(kv[:lora]) * norm, rope(kv[lora:])] at each token's
// slot (none for slot -1).
struct MlaRopeCacheParams {
  const bf16* q;
  const bf16* kv;
  DeviceWeight norm;
  float eps;
  bf16* q_nope;
  bf16* q_rope;
  bf16* cache;             // bf16 rows [lora | rope], or
  uint8_t* cache_fp8;      // FP8 latent rows (--kv-dtype fp8) of layout fp8
  LatentFp8Layout fp8;
  int heads, nope, rope, lora;
  const float* inv_freq;
  float attention_factor;
  bool neox;
};
void launch_mla_rope_and_cache(const DeviceBatch& b, const MlaRopeCacheParams& p, cudaStream_t s);
// mla_absorb.cu: the same work for 1-4 tokens (kGemvMaxRows) with q's nope part read in place
// (p.q_nope null), and q_lat [T, H, lora] = q_nope . w_uk [H, nope, lora] per head, in one launch.
void launch_mla_absorb(const DeviceBatch& b, const MlaRopeCacheParams& p, const bf16* w_uk, bf16* q_lat,
                       cudaStream_t s);
// x += y, then out = rmsnorm(x) * w, row by row; out must not alias x or y.
void launch_add_rmsnorm(bf16* x, const bf16* y, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out,
                        cudaStream_t s);
void launch_rope(const DeviceBatch& b, bf16* x, int heads, int64_t head_stride, int offset, int rot_dim,
                 const float* inv_freq, float attention_factor, RopeStyle style, cudaStream_t s);

// ---- attention.cu: GQA over the paged cache
struct GqaParams {
  DeviceBatch batch;
  const bf16* q = nullptr;  // [T, heads, head_dim]
  const bf16* k_cache = nullptr;
  const bf16* v_cache = nullptr;
  bf16* out = nullptr;  // [T, heads, v_dim]
  int heads = 0, kv_heads = 0, head_dim = 0, v_dim = 0;
  float scale_log2 = 0.0f;  // softmax scale * log2(e): the kernels exponentiate with exp2
  bool vec = false;         // rows and strides allow 16-byte copies
  bool packed = false;      // k_cache / v_cache hold the contexts packed (KvLayer::packed), not pages
  // The previous kernel wrote cache rows of a sequence other than each token's own (steps of
  // several tokens a sequence through the decode kernel): it copies no tile before its wait.
  bool step_rows_in_cache = false;
  // Decode with rope_and_cache folded in (CudaBackend::rope_cache_attention): q and this step's
  // keys come unrotated, the kernel rotates them over every dim (head_dim % 16 == 0, the 16-byte
  // path) and writes each token's new key and value rows at its slot (none for slot -1).
  struct Rope {
    const bf16* k_new = nullptr;  // [T, kv_heads, head_dim], unrotated; null: no rope in the kernel
    const bf16* v_new = nullptr;  // [T, kv_heads, v_dim]
    bf16* k_cache = nullptr;      // the caches above, written
    bf16* v_cache = nullptr;
    const float* inv_freq = nullptr;  // [head_dim / 2]
    float attention_factor = 1.0f;
    bool neox = true;
  } rope;
};
// Keys split into chunks processed by separate blocks, merged by launch_combine_splits.
// With splits == 1 kernels write the output directly and the partial buffers are unused.
struct SplitKv {
  int splits = 1;
  int chunk = 0;                    // keys per split (a multiple of 64); 0: each context's even share
  float* part_o = nullptr;          // [splits, T, heads, dim], each normalized by its own sum
  float* part_lse = nullptr;        // [splits, T, heads], log2 of each split's softmax sum (-inf: empty)
  // GQA decode only: [T, head blocks] zeros, or null. With counters the decode kernel merges its
  // splits itself (split_merge.cuh) and no combine is launched.
  int* counters = nullptr;
};
// Counters a plan carries at most (the decode kernel merges its own splits only within them).
constexpr int kSplitCounters = 16384;
// Keys [begin, end) of split z over a context of ctx keys. With chunk 0 every context is cut in
// `splits` even shares of whole 64-key tiles, so one plan serves any context length: what a
// recorded decode step, replayed as contexts grow, needs.
__host__ __device__ inline int split_chunk(const SplitKv& s, int ctx) {
  return s.chunk > 0 ? s.chunk : ceil_div(ceil_div(ctx, s.splits), 64) * 64;
}
__host__ __device__ inline void split_range(const SplitKv& s, int ctx, int z, int& begin, int& end) {
  const int chunk = split_chunk(s, ctx);
  begin = z * chunk;
  end = begin + chunk < ctx ? begin + chunk : ctx;
}
// Splits of a plan that see keys of a context of ctx keys (the others return at once).
__host__ __device__ inline int live_splits(const SplitKv& s, int ctx) { return ceil_div(ctx, split_chunk(s, ctx)); }
// Of the split counts s in [1, max_splits] that allowed(s) accepts (1 always is), the one whose
// launch of units * s blocks or warps over `slots` resident at once costs the fewest whole waves
// times the work each: 1/s of a unit's, plus `overhead` (a fixed cost of each block or warp,
// as a fraction of a whole unit's work); ties go to fewer splits (each split adds partials to
// merge). E.g. 128 blocks on 132 slots: 1 split, not 2 (two waves of half the work gain nothing).
template <typename Allowed>
int fewest_wave_splits(int64_t units, int64_t slots, int max_splits, Allowed allowed, double overhead = 0.0) {
  int best = 1;
  double best_cost = 1e30;
  for (int s = 1; s <= max_splits; ++s) {
    if (s > 1 && !allowed(s)) continue;
    const double cost = static_cast<double>((units * s + slots - 1) / slots) * (1.0 / s + overhead);
    if (cost < best_cost - 1e-9) {
      best = s;
      best_cost = cost;
    }
  }
  return best;
}
#ifdef __CUDACC__
// A split that lies past its context's end still owns its partial rows [row, row + n_rows): an
// lse of -inf, which the merge weighs as 0 (it reads the outputs of live splits only).
__device__ inline void write_empty_split(const SplitKv& s, int64_t row, int n_rows) {
  if (threadIdx.x < n_rows) s.part_lse[row + threadIdx.x] = -__builtin_huge_valf();
}
#endif
// Flash-attention over query tiles of 64 tokens; any mix of new and cached tokens.
void launch_gqa_prefill(const GqaParams& p, int max_query_len, cudaStream_t s);
// One query token per sequence; the grid covers (sequence, kv head, split) and up to
// kDecodeHeadsPerBlock query heads of a group per block.
constexpr int kDecodeHeadsPerBlock = 16;
void launch_gqa_decode(const GqaParams& p, const SplitKv& split, cudaStream_t s);
void launch_combine_splits(const SplitKv& split, int tokens, int heads, int dim, bf16* out, cudaStream_t s);
// Largest head dim (query/key or value) the GQA kernels support.
constexpr int kMaxHeadDim = 256;

// ---- mla_attention.cu: absorbed MLA over the latent cache [slots, lora + rope]
struct MlaParams {
  DeviceBatch batch;
  const bf16* q_lat = nullptr;   // [T, heads, lora]
  const bf16* q_rope = nullptr;  // [T, heads, rope]
  const bf16* cache = nullptr;   // bf16 rows of cache_width values, or
  const uint8_t* cache_fp8 = nullptr;  // FP8 latent rows (--kv-dtype fp8) of layout fp8
  LatentFp8Layout fp8;
  bf16* out = nullptr;           // [T, heads, lora]
  int heads = 0, lora = 0, rope = 0;
  int64_t cache_width = 0;
  float scale_log2 = 0.0f;
  bool vec = false;
};
constexpr int kMlaMaxLora = 512, kMlaMaxRope = 64;
// Heads handled by one block (all heads of one token share each cache tile it reads).
int mla_heads_per_block(int heads);
// Either cache form; an FP8 tile is dequantized to bf16 as it loads.
void launch_mla(const MlaParams& p, const SplitKv& split, cudaStream_t s);
// FP8 latent rows U8 [rows, fp8.row_bytes] -> out [rows, lora + rope] bf16.
void launch_dequantize_latent(const uint8_t* rows, const LatentFp8Layout& fp8, int64_t n, bf16* out, cudaStream_t s);
// ---- mla_decode.cu: one query token per sequence on Hopper tensor cores (wgmma), DeepSeek's
// shape only (latent 512 + rope 64, 16-byte aligned rows, an sm_90 device).
bool mla_decode_fits(const MlaParams& p);
// Heads a block of it takes: 16 (narrow Q) at up to 16 heads, and at more heads for launches of
// up to kMlaNarrowTokens tokens (DSINFER_MLA_NARROW_TOKENS=N moves the limit, for measurement),
// where more, smaller blocks finish sooner; otherwise 64 (H100, V3's 128 heads, session 53:
// `bench-mla --batch B --context C`, with the split merge, at batch 1 17.3 -> 15.1 us at 1088
// keys and 33.2 -> 20.9 at 4096, batch 2 19.2 -> 17.4 and 30.4 -> 25.2; batch 4 at 4096 30.8 ->
// 37.4, each tile read by 8 blocks of a token instead of 2).
constexpr int kMlaNarrowTokens = 2;
int mla_decode_heads_per_block(int heads, int tokens);
void launch_mla_decode(const MlaParams& p, const SplitKv& split, cudaStream_t s);
// ---- mla_output.cu: for 1-4 tokens (kGemvMaxRows), the merge of the attention's split partials
// [splits, T, heads, lora] and out [T, heads, n] = w_uv [heads, n, lora] . the merged row per
// head, in one launch (split.splits > 1).
bool mla_output_fits(int64_t tokens, int64_t n, int64_t lora, const SplitKv& split, const void* w_uv);
void launch_mla_output(const SplitKv& split, const bf16* w_uv, int tokens, int heads, int n, int lora, bf16* out,
                       int sm_count, cudaStream_t s);

// ---- moe.cu
struct RouteParams {
  int top_k, n_group, topk_group;
  bool sigmoid, group_limited, group_by_top2_sum, normalize;
  float scaling;
};
void launch_moe_route(const float* logits, int tokens, int experts, const DeviceWeight* bias, const RouteParams& r,
                      int* ids, float* weights, cudaStream_t s);
// The router's product logits = x gate^T (bf16 gate [experts, hidden]) and the routing in one
// launch, for up to 4 tokens; `counter` is an int kept at 0 between launches.
bool moe_gate_route_fits(int tokens, int hidden, const void* x, const void* gate);
void launch_moe_gate_route(const bf16* x, const bf16* gate, int tokens, int hidden, int experts,
                           const DeviceWeight* bias, const RouteParams& r, float* logits, int* ids, float* weights,
                           int* counter, cudaStream_t s);
// out[t] = sum_j weights[t, j] * y[inverse[t * k + j]] with y [T * k, hidden] (float, or bf16
// from the FP8 experts); a null inverse reads y[t * k + j] (y indexed by pair).
template <typename Y>
void launch_moe_combine(const Y* y, const int* inverse, const float* weights, int tokens, int k, int64_t hidden,
                        bf16* out, cudaStream_t s);
// The same, then out[t] += shared[t] (when shared is not null), x[t] += out[t] and normed[t] =
// rmsnorm(x[t]) * norm: the end of a MoE block and the layer's residual step in one launch, for
// rows of a multiple of 4 values up to 8192, 8-byte aligned (moe_combine_residual_fits).
struct CombineResidual {
  const bf16* shared;  // the shared experts' output rows, or null
  bf16* x;
  DeviceWeight norm;
  float eps;
  bf16* normed;
  // Or the shared experts' parts as the fused expert launches leave them (SharedChunks): float
  // rows [shared_chunks][tokens][hidden], summed per token.
  const float* shared_parts = nullptr;
  int shared_chunks = 0;
};
bool moe_combine_residual_fits(int64_t hidden, const std::initializer_list<const void*>& rows);
template <typename Y>
void launch_moe_combine_residual(const Y* y, const int* inverse, const float* weights, int tokens, int k,
                                 int64_t hidden, const CombineResidual& r, bf16* out, cudaStream_t s);

// ---- quantize_fp8.cu: the operands of the block-scaled FP8 GEMM (gemm_fp8.h)
// x [M, K] bf16 (K a multiple of 128, x 16-byte aligned) -> xq [M_pad, K] e4m3 and one float
// scale per token and group of 128 columns, scales [K / 128, M_pad] with tokens contiguous
// (cuBLASLt's VEC128_32F layout): scale = amax / 448, 1 for an all-zero group. Tokens M..M_pad-1
// are padding (zeros).
void launch_quantize_fp8_act(const bf16* x, int64_t m, int64_t m_pad, int64_t k, uint8_t* xq, float* scales,
                             cudaStream_t s);
// The same without padding, in the decode chain (launch_dependent): for the skinny FP8 kernel's
// x (gemv_fp8.h), which may start while this waits for x.
void launch_quantize_fp8_act_chained(const bf16* x, int64_t m, int64_t k, uint8_t* xq, float* scales, cudaStream_t s);
// The same over silu(gate) * up, each value rounded to bf16 as launch_silu_mul rounds it: a gated
// MLP's activation computed in the pass that quantizes it for down's product (padded as
// launch_quantize_fp8_act pads, or chained as launch_quantize_fp8_act_chained).
void launch_silu_mul_quantize_fp8_act(const bf16* gate, const bf16* up, int64_t m, int64_t m_pad, int64_t k,
                                      uint8_t* xq, float* scales, cudaStream_t s);
void launch_silu_mul_quantize_fp8_act_chained(const bf16* gate, const bf16* up, int64_t m, int64_t k, uint8_t* xq,
                                              float* scales, cudaStream_t s);
// dst [rows, pitch] = src [rows, cols] with the columns >= cols set to 1 (pitch >= cols).
void launch_pad_rows_f32(const float* src, int64_t rows, int64_t cols, int64_t pitch, float* dst, cudaStream_t s);

}  // namespace dsinfer::cuda
