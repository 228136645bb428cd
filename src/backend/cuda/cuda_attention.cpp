// CudaBackend's attention ops: argument checks, the choice between prefill and decode kernels,
// and how many splits of the context keep every multiprocessor busy.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
// Most splits of one sequence's keys: enough to fill the GPU from a single sequence.
constexpr int kMaxSplits = 64;

}  // namespace

// Splits of the keys that keep the GPU busy when `blocks` blocks cover the batch otherwise.
// With `per_context` the plan ignores context lengths (each sequence is cut in even shares),
// so the same launch fits every later step of a recorded decode batch.
SplitKv CudaBackend::plan_splits(int blocks, int blocks_per_sm, int tokens, int heads, int dim, bool per_context) {
  const int max_ctx = std::max(db_.max_context, 1);
  const int target = sm_count_ * blocks_per_sm;
  SplitKv sp;
  if (per_context) {
    sp.splits = blocks >= target ? 1 : std::min(ceil_div(target, blocks), kMaxSplits);
  } else {
    const int splits = blocks >= target ? 1 : std::min(ceil_div(target, blocks), ceil_div(max_ctx, 64));
    sp.chunk = ceil_div(ceil_div(max_ctx, splits), 64) * 64;
    sp.splits = ceil_div(max_ctx, sp.chunk);
  }
  if (sp.splits > 1) {
    // The counters come first, at the same place in every plan, so they keep their zeros (each
    // merge resets its own) for as long as the workspace does not move.
    ScratchCarver carve;
    const size_t counters_at = carve.add(kSplitCounters * sizeof(int));
    const size_t rows = static_cast<size_t>(sp.splits) * tokens * heads;
    const size_t o_at = carve.add(rows * dim * sizeof(float)), lse_at = carve.add(rows * sizeof(float));
    const uint64_t moves = scratch_moves_;
    char* ws = static_cast<char*>(attn_ws_.get(carve.total()));
    if (scratch_moves_ != moves)
      CUDA_CHECK(cudaMemsetAsync(ws + counters_at, 0, kSplitCounters * sizeof(int), stream_));
    sp.part_o = reinterpret_cast<float*>(ws + o_at);
    sp.part_lse = reinterpret_cast<float*>(ws + lse_at);
    sp.counters = reinterpret_cast<int*>(ws + counters_at);
  }
  return sp;
}

GqaParams CudaBackend::gqa_params(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads,
                                  int head_dim, int v_head_dim, float scale, Tensor out) {
  const DeviceBatch& db = device_batch(batch);
  expect(q, DType::BF16, "attention", "q");
  expect(kv.k, DType::BF16, "attention", "k cache");
  expect(kv.v, DType::BF16, "attention", "v cache");
  expect(out, DType::BF16, "attention", "output");
  const int t = batch.num_tokens(), heads = static_cast<int>(q.dim(1));
  expect_shape(q, {t, heads, head_dim}, "attention", "q");
  expect_shape(out, {t, heads, v_head_dim}, "attention", "output");
  if (kv_heads <= 0 || heads % kv_heads || std::max(head_dim, v_head_dim) > kMaxHeadDim ||
      kv.k.shape.back() != static_cast<int64_t>(kv_heads) * head_dim ||
      kv.v.shape.back() != static_cast<int64_t>(kv_heads) * v_head_dim)
    fail("attention: ", heads, " query heads over ", kv_heads, " kv heads of dims ", head_dim, "/", v_head_dim,
         " (at most ", kMaxHeadDim, "), caches ", shape_str(kv.k.shape), " and ", shape_str(kv.v.shape));
  if (kv.packed && (kv.k.rows() != batch.context_starts().back() || kv.v.rows() != kv.k.rows()))
    fail("attention: packed keys ", shape_str(kv.k.shape), " and values ", shape_str(kv.v.shape), " for ",
         batch.context_starts().back(), " context tokens");
  GqaParams p;
  p.batch = db;
  p.q = q.ptr<bf16>();
  p.k_cache = kv.k.ptr<bf16>();
  p.v_cache = kv.v.ptr<bf16>();
  p.out = out.ptr<bf16>();
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.head_dim = head_dim;
  p.v_dim = v_head_dim;
  p.scale_log2 = scale * kLog2e;
  p.vec = head_dim % 8 == 0 && v_head_dim % 8 == 0 && aligned16(p.q) && aligned16(p.k_cache) && aligned16(p.v_cache);
  p.packed = kv.packed;
  return p;
}

namespace {

// Up to this many query tokens a sequence (speculative decoding's verification steps, short
// prompt chunks), a step attends as one-token sequences: the prefill kernel gives a short query
// one block per (sequence, kv head), which walks the whole context alone (a 7B sequence: 4
// blocks), where the decode kernel splits the keys over the machine.
constexpr int kShortQuery = 8;

// The step read as one-token sequences, each with its own causal context (the decode kernel
// takes a token's context from its position) and its sequence's block table.
DeviceBatch short_query_view(const DeviceBatch& b) {
  DeviceBatch v = b;
  v.num_seqs = b.num_tokens;
  v.max_query_len = 1;
  v.query_start = b.token_index;
  v.token_seq = b.token_index;
  v.query_len = b.ones;
  v.block_table_start = b.token_table_start;
  v.context_len = b.token_context;
  v.context_start = nullptr;  // packed contexts never take this view
  return v;
}

}  // namespace

void CudaBackend::attention(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads, int head_dim,
                            int v_head_dim, float scale, Tensor out) {
  GqaParams p = gqa_params(batch, q, kv, kv_heads, head_dim, v_head_dim, scale, out);
  if (batch.num_tokens() == 0) return;
  // Packed contexts only come with prefill steps (MLA's expanded form): the decode kernel reads pages.
  if (kv.packed || p.batch.max_query_len > kShortQuery) return launch_gqa_prefill(p, p.batch.max_query_len, stream_);
  if (p.batch.max_query_len > 1) {
    p.batch = short_query_view(p.batch);
    p.step_rows_in_cache = true;  // rope_and_cache wrote every token's row just before
  }
  gqa_decode(p);
}

// Decode steps fold rope_and_cache into the decode kernel (one launch fewer a layer, H200 7B
// batch 1: see docs/cuda.md); other steps, and head dims the kernel's rotation does not cover,
// run the two ops.
void CudaBackend::rope_cache_attention(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v,
                                       const KvLayer& kv, const RopeParams& rp, int kv_heads, float scale, Tensor out) {
  const RopeCacheParams r = rope_cache_params(batch, q, k, v, kv, rp);
  GqaParams p = gqa_params(batch, q, kv, kv_heads, r.d, r.dv, scale, out);
  if (p.batch.max_query_len != 1 || kv.packed || !p.vec || r.d % 16 != 0 || !aligned16(r.k) || !aligned16(r.v))
    return Backend::rope_cache_attention(batch, q, k, v, kv, rp, kv_heads, scale, out);
  if (batch.num_tokens() == 0) return;
  p.rope = {r.k, r.v, r.k_cache, r.v_cache, r.inv_freq, r.attention_factor, r.neox};
  gqa_decode(p);
}

void CudaBackend::gqa_decode(const GqaParams& p) {
  const int t = p.batch.num_tokens, heads = p.heads, kv_heads = p.kv_heads, v_head_dim = p.v_dim;
  // Decode splits (H200, Qwen2-7B shape, GpuBench.DISABLED_DecodeAttention): none once the batch
  // alone puts 1.5 blocks on a multiprocessor (64 x 1088: 52.6 us against 59.5 with 3 splits, 70.0
  // with 2: each split adds partials, a merge and, past one wave, a tail); below that, enough for
  // 2 blocks a multiprocessor (8 x 8192: 55.5 us against 68.3 for 4 and 72.6 for 1). The kernel
  // merges its splits itself where the counters cover its rows.
  const int head_blocks = kv_heads * ceil_div(heads / kv_heads, kDecodeHeadsPerBlock);
  const int blocks = p.batch.num_seqs * head_blocks;
  SplitKv sp = plan_splits(blocks, 2 * blocks >= 3 * sm_count_ ? 1 : 2, t, heads, v_head_dim, true);
  if (static_cast<int64_t>(t) * head_blocks > kSplitCounters) sp.counters = nullptr;
  launch_gqa_decode(p, sp, stream_);
  if (sp.splits > 1 && sp.counters == nullptr) launch_combine_splits(sp, t, heads, v_head_dim, p.out, stream_);
}

SplitKv CudaBackend::launch_mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                                          const Tensor& latent_cache, int kv_lora_rank, float scale, Tensor out_lat) {
  const DeviceBatch& db = device_batch(batch);
  expect(q_lat, DType::BF16, "mla_attention", "q_lat");
  expect(q_rope, DType::BF16, "mla_attention", "q_rope");
  expect(out_lat, DType::BF16, "mla_attention", "output");
  const int t = batch.num_tokens(), heads = static_cast<int>(q_lat.dim(1)), rope = static_cast<int>(q_rope.dim(2));
  expect_shape(q_lat, {t, heads, kv_lora_rank}, "mla_attention", "q_lat");
  expect_shape(q_rope, {t, heads, rope}, "mla_attention", "q_rope");
  expect_shape(out_lat, {t, heads, kv_lora_rank}, "mla_attention", "output");
  const bool fp8 = latent_cache.dtype == DType::U8;  // --kv-dtype fp8
  const LatentFp8Layout fp8_layout = fp8 ? latent_fp8_layout(kv_lora_rank, rope) : LatentFp8Layout{};
  if (fp8)
    check_latent_fp8_cache(latent_cache, fp8_layout, "mla_attention");
  else
    expect(latent_cache, DType::BF16, "mla_attention", "latent cache");
  if (kv_lora_rank > kMlaMaxLora || rope > kMlaMaxRope || (!fp8 && latent_cache.shape.back() != kv_lora_rank + rope))
    fail("mla_attention: latent ", kv_lora_rank, " (at most ", kMlaMaxLora, ") + rope ", rope, " (at most ",
         kMlaMaxRope, ") over a cache of ", shape_str(latent_cache.shape));
  if (t == 0) return {};

  MlaParams p;
  p.batch = db;
  p.q_lat = q_lat.ptr<bf16>();
  p.q_rope = q_rope.ptr<bf16>();
  if (fp8) {
    p.fp8 = fp8_layout;
    p.cache_fp8 = latent_cache.ptr<uint8_t>();
  } else {
    p.cache = latent_cache.ptr<bf16>();
  }
  p.out = out_lat.ptr<bf16>();
  p.heads = heads;
  p.lora = kv_lora_rank;
  p.rope = rope;
  p.cache_width = latent_cache.shape.back();
  p.scale_log2 = scale * kLog2e;
  p.vec = kv_lora_rank % 8 == 0 && rope % 8 == 0 && aligned16(p.q_lat) && aligned16(p.q_rope) &&
          aligned16(latent_cache.data) && aligned16(p.out);
  // Decode at DeepSeek's shape takes the wgmma kernel (bf16 or FP8 rows); prefill and other
  // shapes the mma.sync one.
  // Either way one block per multiprocessor fits (its tiles take most of shared memory).
  const bool decode = db.max_query_len == 1, wgmma = decode && mla_decode_fits(p);
  const int per_block = wgmma ? mla_decode_heads_per_block(heads, t) : mla_heads_per_block(heads);
  const int blocks = t * ceil_div(heads, per_block);
  // Steps of a few tokens a sequence split each context evenly, like decode: they are recorded
  // as graphs too (speculative decoding's verification).
  SplitKv sp = plan_splits(blocks, 1, t, heads, kv_lora_rank, db.max_query_len <= kShortQuery);
  // One block an SM: the fewest waves of the planned splits or fewer (the workspace fits fewer).
  if (wgmma) sp.splits = fewest_wave_splits(blocks, sm_count_, sp.splits, [](int) { return true; });
  // One block merging the partials of 64 heads x 512 columns is slower than a launch of one
  // block per row (V3 shapes, batch 1 x 4096 keys, H200: 174 us), so the MLA kernels leave the
  // merge to a kernel after them (combine_splits_kernel, or mla_output_kernel with W_UV).
  sp.counters = nullptr;
  if (wgmma)
    launch_mla_decode(p, sp, stream_);
  else
    launch_mla(p, sp, stream_);
  return sp;
}

void CudaBackend::mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                                const Tensor& latent_cache, int kv_lora_rank, float scale, Tensor out_lat) {
  const SplitKv sp = launch_mla_attention(batch, q_lat, q_rope, latent_cache, kv_lora_rank, scale, out_lat);
  if (sp.splits > 1)
    launch_combine_splits(sp, batch.num_tokens(), static_cast<int>(q_lat.dim(1)), kv_lora_rank, out_lat.ptr<bf16>(),
                          stream_);
}

// Split attention of 1-4 tokens merges its splits in the W_UV product's launch (mla_output.cu).
void CudaBackend::mla_attention_uv(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                                   const Tensor& latent_cache, int kv_lora_rank, float scale, const Tensor& w_uv,
                                   Tensor out_lat, Tensor out) {
  expect(w_uv, DType::BF16, "mla_attention_uv", "W_UV");
  expect(out, DType::BF16, "mla_attention_uv", "output");
  const int t = batch.num_tokens(), heads = static_cast<int>(q_lat.dim(1));
  if (w_uv.shape.size() != 3 || w_uv.dim(0) != heads || w_uv.dim(2) != kv_lora_rank)
    fail("mla_attention_uv: W_UV ", shape_str(w_uv.shape), " is not [", heads, " heads, v, ", kv_lora_rank, "]");
  const int n = static_cast<int>(w_uv.dim(1));
  expect_shape(out, {t, heads, n}, "mla_attention_uv", "output");
  const SplitKv sp = launch_mla_attention(batch, q_lat, q_rope, latent_cache, kv_lora_rank, scale, out_lat);
  if (sp.splits > 1 && mla_output_fits(t, n, kv_lora_rank, sp, w_uv.data))
    return launch_mla_output(sp, w_uv.ptr<bf16>(), t, heads, n, kv_lora_rank, out.ptr<bf16>(), sm_count_, stream_);
  if (sp.splits > 1) launch_combine_splits(sp, t, heads, kv_lora_rank, out_lat.ptr<bf16>(), stream_);
  head_matmul(out_lat, w_uv, /*transpose=*/false, out);
}

}  // namespace dsinfer::cuda
