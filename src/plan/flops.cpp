#include "plan/flops.h"

#include "plan/tensor_inventory.h"

namespace dsinfer::plan {

namespace {

double linear_flops_per_token(const PlanModel& m) {
  const ModelConfig& c = m.config;
  double flops = 0;
  for (const TensorGroup& t : all_tensors(m)) {
    if (!is_product(t.role)) continue;
    const double per_tensor = double(t.rows) * t.cols;
    const double used = t.shard == Shard::RoutedExpert ? c.num_experts_per_tok : t.count;
    flops += 2 * per_tensor * used;
  }
  return flops;
}

}  // namespace

double decode_attention_flops_per_layer(const ModelConfig& c, int64_t context) {
  const double heads = c.num_heads, ctx = double(context);
  if (c.is_deepseek()) return 2 * heads * ctx * (c.kv_lora_rank + c.qk_rope_head_dim) + 2 * heads * ctx * c.kv_lora_rank;
  return 2 * 2 * heads * ctx * c.head_dim;
}

double prefill_attention_flops_per_layer(const ModelConfig& c, int64_t prompt_len) {
  const double heads = c.num_heads, ctx = (double(prompt_len) + 1) / 2;
  if (c.is_deepseek()) return 2 * heads * ctx * c.qk_head_dim() + 2 * heads * ctx * c.v_head_dim;
  return 2 * 2 * heads * ctx * c.head_dim;
}

TokenFlops decode_flops_per_token(const PlanModel& m, int64_t context) {
  return {linear_flops_per_token(m), m.config.num_layers * decode_attention_flops_per_layer(m.config, context)};
}

TokenFlops prefill_flops_per_token(const PlanModel& m, int64_t prompt_len) {
  return {linear_flops_per_token(m), m.config.num_layers * prefill_attention_flops_per_layer(m.config, prompt_len)};
}

}  // namespace dsinfer::plan
