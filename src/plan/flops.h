// FLOPs of one token through the model (multiply-add = 2 FLOPs).
//
// Linear: 2 x the weights the token multiplies (routed experts at num_experts_per_tok of
// n_routed_experts; the embedding is a lookup; lm_head counts, tied or not).
// Attention: scores and weighted sum over the cached context, per layer.
//   decode, MLA in its absorbed form: W_UK is folded into the query and W_UV into the output,
//     so each head scores the 576-wide cached row and sums 512-wide latents:
//     2 x heads x ctx x (kv_lora + rope) + 2 x heads x ctx x kv_lora. (The absorbed
//     W_UK/W_UV products cost exactly what kv_b_proj's would, so Linear is unchanged.)
//   prefill, MLA decompresses k and v once per token (kv_b_proj, counted as Linear) and runs
//     ordinary attention: 2 x heads x ctx x (qk_nope + rope) + 2 x heads x ctx x v_head_dim.
//   GQA: 2 x heads x ctx x head_dim for scores and again for the sum.
//   ctx is the cached length for decode and the causal average (P + 1) / 2 for a prompt of P.
#pragma once
#include <cstdint>

#include "model/model_config.h"
#include "plan/plan_model.h"

namespace dsinfer::plan {

struct TokenFlops {
  double linear = 0, attention = 0;
  double total() const { return linear + attention; }
};

// Attention FLOPs of one token in one layer (all heads).
double decode_attention_flops_per_layer(const ModelConfig& c, int64_t context);
double prefill_attention_flops_per_layer(const ModelConfig& c, int64_t prompt_len);

// Decode: the token at position `context` (it attends to `context` cached tokens).
TokenFlops decode_flops_per_token(const PlanModel& m, int64_t context);
// Prefill: the average token of a prompt of `prompt_len`.
TokenFlops prefill_flops_per_token(const PlanModel& m, int64_t prompt_len);

}  // namespace dsinfer::plan
