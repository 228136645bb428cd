// Multi-head Latent Attention (DeepSeek V2/V3). The cache holds, per token, the normalized
// latent c (kv_lora_rank) and the shared rotated key k_rope. Decode runs in absorbed form: W_UK
// (from kv_b_proj) is folded into the query and W_UV applied after attention, so attention reads
// only the latent cache, and no per-head key or value is ever made. Under tensor parallelism a
// rank keeps 1/size of the heads (q_b / q rows, kv_b's heads, o's columns) and the whole latent
// cache (every head reads all of it); the output is summed over the group.
// A step with a prompt may run expanded instead: each context token's per-head key
// [W_UK c, k_rope] and value W_UV c are made from the latent (gathered from the cache), then the
// GQA attention op runs over them with one kv head per query head. Per (query, key) pair and head
// that is qk_head + v_head multiply-adds (192 + 128 for V3) against kv_lora + rope + kv_lora
// (576 + 512) absorbed; the price is making K and V for every context token rather than folding
// W_UK and W_UV into every query token.
#pragma once
#include <string>

#include "model/layer.h"
#include "model/model.h"
#include "model/model_config.h"
#include "model/weight_loader.h"

namespace dsinfer {

// Whether a step runs MLA expanded. Decode steps never do. Auto: a step of at least
// kExpandedMinTokens tokens with a prompt, where the expanded form does fewer multiply-adds
// (making K and V for every context token against folding W_UK and W_UV into every query token,
// plus the attention itself) and its scratch (K, V and their makings for every context token, the
// joined query) is no larger than the absorbed form's (q_lat and out_lat per query token) or
// plan::kMlaExpandedScratchBytes: so a fresh prompt, or a chunk of a long prompt over its cached
// prefix (V2-Lite: up to 32k tokens of context), and the planner's workspace holds either way.
// Expanded (forced, for measuring) expands every step with a prompt, whatever its scratch.
bool mla_runs_expanded(const ModelConfig& c, MlaPrefill form, const ForwardBatch& batch);
constexpr int kExpandedMinTokens = 64;

class MlaAttention final : public AttentionBlock {
 public:
  MlaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope,
               MlaPrefill prefill, const Shard& shard);
  Tensor forward(LayerContext& ctx, const Tensor& x) override;

 private:
  void project(LayerContext& ctx, const Tensor& x, Tensor q, Tensor kv);
  Tensor attend_absorbed(LayerContext& ctx, const Tensor& q_lat, const Tensor& q_rope);
  Tensor attend_expanded(LayerContext& ctx, const Tensor& q_nope, const Tensor& q_rope);

  const ModelConfig& c_;
  const RopeParams& rope_;
  MlaPrefill prefill_;
  int heads_;  // this rank's
  float scale_;
  Weight q_a_, q_a_norm_, q_b_, q_, kv_a_, kv_a_norm_, o_;
  Tensor w_uk_;  // [H, qk_nope, kv_lora], in the backend's activation dtype
  Tensor w_uv_;  // [H, v_head, kv_lora], likewise
  Weight uk_rows_, uv_rows_;  // the same as [H * qk_nope, kv_lora] and [H * v_head, kv_lora] (expanded form)
};

}  // namespace dsinfer
