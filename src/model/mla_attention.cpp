#include "model/mla_attention.h"

#include <algorithm>

#include "model/rope.h"
#include "model/step_graphs.h"
#include "plan/activations.h"

namespace dsinfer {

MlaAttention::MlaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope,
                           MlaPrefill prefill, const Shard& shard)
    : c_(c),
      rope_(rope),
      prefill_(prefill),
      heads_(static_cast<int>(shard_share(c.num_heads, shard, "attention heads"))),
      scale_(deepseek_softmax_scale(c)) {
  const int h = c.hidden_size, heads = c.num_heads, qk = c.qk_head_dim();
  const Part q_part = shard_rows(heads_ * qk, shard);
  if (c.q_lora_rank > 0) {
    q_a_ = w.get(prefix + "q_a_proj.weight", {c.q_lora_rank, h});
    q_a_norm_ = w.get(prefix + "q_a_layernorm.weight", {c.q_lora_rank});
    q_b_ = w.get(prefix + "q_b_proj.weight", {heads * qk, c.q_lora_rank}, q_part);
  } else {
    q_ = w.get(prefix + "q_proj.weight", {heads * qk, h}, q_part);
  }
  kv_a_ = w.get(prefix + "kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, h});
  kv_a_norm_ = w.get(prefix + "kv_a_layernorm.weight", {c.kv_lora_rank});
  o_ = w.get(prefix + "o_proj.weight", {h, heads * c.v_head_dim}, shard_cols(heads_ * c.v_head_dim, shard));
  // Split this rank's heads of kv_b_proj [H * (nope + v), kv_lora] into the per-head absorption
  // matrices.
  const int per_head = c.qk_nope_head_dim + c.v_head_dim, lora = c.kv_lora_rank;
  std::vector<float> kv_b =
      w.get_f32(prefix + "kv_b_proj.weight", {heads * per_head, lora}, shard_rows(heads_ * per_head, shard));
  std::vector<float> uk(static_cast<size_t>(heads_) * c.qk_nope_head_dim * lora);
  std::vector<float> uv(static_cast<size_t>(heads_) * c.v_head_dim * lora);
  for (int hd = 0; hd < heads_; ++hd) {
    const float* src = kv_b.data() + static_cast<size_t>(hd) * per_head * lora;
    std::copy_n(src, c.qk_nope_head_dim * lora, uk.data() + static_cast<size_t>(hd) * c.qk_nope_head_dim * lora);
    std::copy_n(src + c.qk_nope_head_dim * lora, c.v_head_dim * lora,
                uv.data() + static_cast<size_t>(hd) * c.v_head_dim * lora);
  }
  // In the activation dtype: bf16 on a GPU halves their bytes and lets head_matmul use tensor cores.
  w_uk_ = w.upload_act(uk, {heads_, c.qk_nope_head_dim, lora});
  w_uv_ = w.upload_act(uv, {heads_, c.v_head_dim, lora});
  uk_rows_.w = w_uk_.reshape({heads_ * c.qk_nope_head_dim, lora});
  uv_rows_.w = w_uv_.reshape({heads_ * c.v_head_dim, lora});
}

bool mla_runs_expanded(const ModelConfig& c, MlaPrefill form, const ForwardBatch& batch) {
  // Steps of a few tokens a sequence (decode, speculative decoding's verification) stay absorbed:
  // they are recorded as graphs (StepGraphs), which cannot follow growing contexts.
  bool prompt = false;
  for (const SeqSlice& s : batch.seqs) prompt = prompt || s.query_len > StepGraphs::kMaxWidth;
  if (!prompt || form == MlaPrefill::Absorbed) return false;
  if (form == MlaPrefill::Expanded) return true;
  const int64_t t = batch.num_tokens(), context = batch.context_starts().back(), heads = c.num_heads;
  const int64_t lora = c.kv_lora_rank, width = lora + c.qk_rope_head_dim, qk = c.qk_head_dim(), v = c.v_head_dim;
  int64_t pairs = 0;  // (query, key) pairs, causal
  for (const SeqSlice& s : batch.seqs)
    pairs += static_cast<int64_t>(s.query_len) * (s.context_len - s.query_len) +
             static_cast<int64_t>(s.query_len) * (s.query_len + 1) / 2;
  // Multiply-adds per head: W_UK and W_UV (nope + v rows of lora) per context token or per query
  // token, then per pair qk + v expanded against lora + rope + lora absorbed.
  const int64_t expanded_macs = context * (c.qk_nope_head_dim + v) * lora + pairs * (qk + v);
  const int64_t absorbed_macs = t * (c.qk_nope_head_dim + v) * lora + pairs * (width + lora);
  // Values per context token: the gathered row, its latent, k_nope, K and V of every head.
  const int64_t per_context = width + lora + heads * (c.qk_nope_head_dim + qk + v);
  const int64_t expanded_values = context * per_context + t * heads * qk;
  const int64_t allowed = std::max(t * heads * 2 * lora, plan::kMlaExpandedScratchBytes / 2);  // bf16 values
  return t >= kExpandedMinTokens && expanded_macs < absorbed_macs && expanded_values <= allowed;
}

// q [T, H, nope + rope] and kv [T, lora + rope] (the latent before its norm, the key's rope part
// before rotation). Both read x: without a q LoRA they are one linear_many.
void MlaAttention::project(LayerContext& ctx, const Tensor& x, Tensor q, Tensor kv) {
  const int64_t t = x.dim(0);
  Tensor q2d = q.reshape({t, heads_ * c_.qk_head_dim()});
  if (c_.q_lora_rank > 0) {
    Tensor qa = ctx.tensor({t, c_.q_lora_rank});
    ctx.be.linear_many(x, {{&q_a_, nullptr, qa}, {&kv_a_, nullptr, kv}});
    ctx.be.rmsnorm(qa, q_a_norm_, static_cast<float>(c_.rms_norm_eps), qa);
    ctx.be.linear(qa, q_b_, nullptr, q2d);
  } else {
    ctx.be.linear_many(x, {{&q_, nullptr, q2d}, {&kv_a_, nullptr, kv}});
  }
}

Tensor MlaAttention::forward(LayerContext& ctx, const Tensor& x) {
  const int64_t t = x.dim(0);
  const int heads = heads_, lora = c_.kv_lora_rank;
  Tensor q = ctx.tensor({t, heads, c_.qk_head_dim()});
  Tensor kv = ctx.tensor({t, lora + c_.qk_rope_head_dim});
  project(ctx, x, q, kv);
  // Cache row = [rmsnorm(c_kv), rope(k_rope)]; q split into its nope and rotated rope parts.
  Tensor q_nope = ctx.tensor({t, heads, c_.qk_nope_head_dim});
  Tensor q_rope = ctx.tensor({t, heads, c_.qk_rope_head_dim});
  const float eps = static_cast<float>(c_.rms_norm_eps);
  Tensor attn;
  if (mla_runs_expanded(c_, prefill_, ctx.batch)) {
    ctx.be.mla_rope_and_cache(ctx.batch, q, kv, kv_a_norm_, eps, rope_, q_nope, q_rope, ctx.kv.k);
    attn = attend_expanded(ctx, q_nope, q_rope);
  } else {
    Tensor q_lat = ctx.tensor({t, heads, lora});
    ctx.be.mla_rope_cache_absorb(ctx.batch, q, kv, kv_a_norm_, eps, rope_, w_uk_, q_nope, q_rope, q_lat, ctx.kv.k);
    attn = attend_absorbed(ctx, q_lat, q_rope);
  }
  Tensor out = ctx.tensor({t, c_.hidden_size});
  ctx.be.linear(attn.reshape({t, heads * c_.v_head_dim}), o_, nullptr, out);
  ctx.be.all_reduce_sum(out);  // nothing to add outside a group
  return out;
}

// q_lat [T, H, lora] (q_nope . W_UK), q_rope [T, H, rope] -> [T, H, v_head] over the latent cache.
Tensor MlaAttention::attend_absorbed(LayerContext& ctx, const Tensor& q_lat, const Tensor& q_rope) {
  const int64_t t = q_lat.dim(0);
  const int heads = heads_, lora = c_.kv_lora_rank;
  Tensor out_lat = ctx.tensor({t, heads, lora});
  Tensor attn = ctx.tensor({t, heads, c_.v_head_dim});
  ctx.be.mla_attention_uv(ctx.batch, q_lat, q_rope, ctx.kv.k, lora, scale_, w_uv_, out_lat, attn);
  return attn;
}

// The same through per-head keys and values of every context token (the form transformers runs).
Tensor MlaAttention::attend_expanded(LayerContext& ctx, const Tensor& q_nope, const Tensor& q_rope) {
  const int64_t t = q_nope.dim(0), c = ctx.batch.context_starts().back();
  const int heads = heads_, lora = c_.kv_lora_rank, rope = c_.qk_rope_head_dim;
  const int nope = c_.qk_nope_head_dim, qk = c_.qk_head_dim(), v_dim = c_.v_head_dim;
  Tensor rows = ctx.tensor({c, lora + rope});
  if (ctx.kv.k.dtype == DType::U8) {  // FP8 latent rows: gathered as bytes, then dequantized
    Tensor packed = ctx.arena.tensor(DType::U8, {c, ctx.kv.k.shape.back()});
    ctx.be.gather_context(ctx.batch, ctx.kv.k, packed);
    ctx.be.dequantize_latent(packed, lora, rows);
  } else {
    ctx.be.gather_context(ctx.batch, ctx.kv.k, rows);
  }
  Tensor latent = ctx.tensor({c, lora});
  ctx.be.copy_columns(rows, 0, latent, 0, lora);
  Tensor k_nope = ctx.tensor({c, heads * nope});
  Tensor v = ctx.tensor({c, heads * v_dim});
  // Two products, not linear_many: a device may stack adjacent weights through scratch of its own.
  ctx.be.linear(latent, uk_rows_, nullptr, k_nope);
  ctx.be.linear(latent, uv_rows_, nullptr, v);
  // K [c, H, nope + rope]: each head's k_nope, then the rope key all heads share.
  Tensor k = ctx.tensor({c * heads, qk});
  ctx.be.copy_columns(k_nope.reshape({c * heads, nope}), 0, k, 0, nope);
  ctx.be.copy_columns(rows, lora, k, nope, rope);  // each row repeated over the H heads
  Tensor q = ctx.tensor({t * heads, qk});
  ctx.be.copy_columns(q_nope.reshape({t * heads, nope}), 0, q, 0, nope);
  ctx.be.copy_columns(q_rope.reshape({t * heads, rope}), 0, q, nope, rope);
  Tensor attn = ctx.tensor({t, heads, v_dim});
  const KvLayer packed{k.reshape({c, heads * qk}), v, /*packed=*/true};
  ctx.be.attention(ctx.batch, q.reshape({t, heads, qk}), packed, heads, qk, v_dim, scale_, attn);
  return attn;
}

}  // namespace dsinfer
