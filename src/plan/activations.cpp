#include "plan/activations.h"

#include <algorithm>

namespace dsinfer::plan {

namespace {

constexpr int64_t kAct = 2;     // activations are bf16
constexpr int64_t kLogit = 4;   // logits are float32 for sampling

// Values per token of the attention block on one GPU (heads divided across tp).
int64_t attention_values(const ModelConfig& c, int tp) {
  const int64_t heads = c.num_heads / tp;
  if (c.is_deepseek()) {
    // The absorbed form: q, q split in its nope and rotated rope parts, q_lat and the attention's
    // latent output (kv_lora per head each), the output, and the latents (q and kv). The engine
    // takes the expanded form only where its scratch is no larger (mla_runs_expanded).
    return heads * (2 * c.qk_head_dim() + 2 * c.kv_lora_rank + c.v_head_dim) + c.q_lora_rank + c.kv_lora_rank +
           c.qk_rope_head_dim;
  }
  const int64_t kv_heads = c.num_kv_heads / std::min(tp, c.num_kv_heads);
  return (2 * heads + 2 * kv_heads) * c.head_dim;  // q, k, v and the output
}

// Gate and up outputs plus the activated product: 3 x intermediate values per token.
int64_t mlp_values(int64_t intermediate, int tp) { return 3 * intermediate / tp; }

int64_t moe_bytes(const ModelConfig& c, const Layout& l, int64_t tokens, bool all_pairs) {
  const int64_t k = c.num_experts_per_tok;
  // Token-expert pairs a GPU computes: all of them at 1/tp width (ep = 1), or its 1/tp of
  // the stage's pairs at full width (ep = tp x dp): the same product either way. Without an
  // all-to-all, an expert-parallel GPU's buffers hold all pairs at full width.
  const bool full_width = l.ep > 1;
  const int64_t pair_values = full_width && all_pairs
                                  ? k * (3 * c.moe_intermediate_size + c.hidden_size)
                                  : k * (3 * c.moe_intermediate_size / l.tp + c.hidden_size / (full_width ? l.tp : 1));
  const int64_t router = tokens * c.n_routed_experts * 4;  // float32 scores
  const int64_t shared = tokens * mlp_values(int64_t(c.moe_intermediate_size) * c.n_shared_experts, l.tp) * kAct;
  return tokens * pair_values * kAct + router + shared;
}

}  // namespace

int64_t ActivationEstimate::total() const {
  return residual_bytes + std::max(attention_bytes, mlp_bytes) + logits_bytes + runtime_bytes + mtp_bytes;
}

ActivationEstimate with_mtp_scratch(ActivationEstimate a) {
  a.mtp_bytes = 0;
  a.mtp_bytes = a.total() - a.runtime_bytes;
  return a;
}

ActivationEstimate estimate_activations(const ModelConfig& c, const Layout& l, int64_t step_tokens, int64_t sampled,
                                        bool all_pairs) {
  ActivationEstimate a;
  const int64_t t = a.step_tokens = step_tokens;
  a.residual_bytes = 2 * t * c.hidden_size * kAct;
  a.attention_bytes = t * attention_values(c, l.tp) * kAct;
  if (c.is_deepseek()) {
    // What both forms hold, plus the larger of q_lat and the latent output (absorbed) and the
    // expanded form's keys and values, as mla_runs_expanded bounds them.
    const int64_t latents = t * (c.num_heads / l.tp) * 2 * c.kv_lora_rank * kAct;
    a.attention_bytes += std::max<int64_t>(0, kMlaExpandedScratchBytes - latents);
  }
  bool has_dense = false;
  for (int layer = 0; layer < c.num_layers; ++layer) has_dense = has_dense || !c.is_moe_layer(layer);
  const int64_t dense = has_dense ? t * mlp_values(c.intermediate_size, l.tp) * kAct : 0;
  a.mlp_bytes = std::max(dense, c.n_routed_experts > 0 ? moe_bytes(c, l, t, all_pairs) : 0);
  // The vocabulary-parallel head gathers whole rows, so each GPU holds full logits.
  a.logits_bytes = std::min(t, sampled) * c.vocab_size * kLogit;
  return a;
}

}  // namespace dsinfer::plan
