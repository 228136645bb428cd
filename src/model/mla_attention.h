// Multi-head Latent Attention (DeepSeek V2/V3). The cache holds, per token, the normalized
// latent c (kv_lora_rank) and the shared rotated key k_rope. Attention runs in absorbed form:
// W_UK (from kv_b_proj) is folded into the query and W_UV applied after attention, so no
// per-head key or value is ever materialized.
#pragma once
#include <string>

#include "model/layer.h"
#include "model/model_config.h"
#include "model/weight_loader.h"

namespace dsinfer {

class MlaAttention final : public AttentionBlock {
 public:
  MlaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope);
  Tensor forward(LayerContext& ctx, const Tensor& x) override;

 private:
  void project(LayerContext& ctx, const Tensor& x, Tensor q, Tensor kv);

  const ModelConfig& c_;
  const RopeParams& rope_;
  float scale_;
  Weight q_a_, q_a_norm_, q_b_, q_, kv_a_, kv_a_norm_, o_;
  Tensor w_uk_;  // [H, qk_nope, kv_lora], in the backend's activation dtype
  Tensor w_uv_;  // [H, v_head, kv_lora], likewise
};

}  // namespace dsinfer
