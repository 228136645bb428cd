#include "plan/tensor_inventory.h"

namespace dsinfer::plan {

namespace {

using Groups = std::vector<TensorGroup>;

std::string layer_name(const std::string& suffix) { return "model.layers.N." + suffix; }

void add(Groups& g, const std::string& suffix, int64_t rows, int64_t cols, TensorRole role, Shard shard,
         int64_t count = 1) {
  g.push_back(TensorGroup{layer_name(suffix), rows, cols, count, role, shard, true});
}

// A linear layer and, when present, its bias. A column-parallel layer splits its bias with
// it; a row-parallel one adds the whole bias once, so every GPU holds all of it.
void add_linear(Groups& g, const std::string& prefix, int64_t out, int64_t in, Shard shard, bool bias,
                bool row_parallel = false) {
  add(g, prefix + ".weight", out, in, TensorRole::Linear, shard);
  if (bias) add(g, prefix + ".bias", out, 1, TensorRole::Bias, row_parallel ? Shard::Replicated : shard);
}

void add_mla(Groups& g, const ModelConfig& c) {
  const int64_t h = c.hidden_size, heads = c.num_heads;
  const bool bias = c.qkv_bias;  // DeepSeek's attention_bias: on the down-projections and o_proj
  if (c.q_lora_rank > 0) {
    // The down-projections are small and shared by all heads: engines replicate them.
    add_linear(g, "self_attn.q_a_proj", c.q_lora_rank, h, Shard::Replicated, bias);
    add(g, "self_attn.q_a_layernorm.weight", c.q_lora_rank, 1, TensorRole::Norm, Shard::Replicated);
    add_linear(g, "self_attn.q_b_proj", heads * c.qk_head_dim(), c.q_lora_rank, Shard::Split, false);
  } else {
    add_linear(g, "self_attn.q_proj", heads * c.qk_head_dim(), h, Shard::Split, false);
  }
  add_linear(g, "self_attn.kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_head_dim, h, Shard::Replicated, bias);
  add(g, "self_attn.kv_a_layernorm.weight", c.kv_lora_rank, 1, TensorRole::Norm, Shard::Replicated);
  add(g, "self_attn.kv_b_proj.weight", heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank,
      TensorRole::Absorbed, Shard::Split);
  add_linear(g, "self_attn.o_proj", h, heads * c.v_head_dim, Shard::Split, bias, true);
}

void add_gqa(Groups& g, const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = int64_t(c.num_heads) * c.head_dim, kv = int64_t(c.num_kv_heads) * c.head_dim;
  // Qwen2 always biases q/k/v and never o; Llama's attention_bias biases all four.
  const bool o_bias = c.qkv_bias && c.arch != Arch::Qwen2;
  add_linear(g, "self_attn.q_proj", q, h, Shard::Split, c.qkv_bias);
  add_linear(g, "self_attn.k_proj", kv, h, Shard::KvHeads, c.qkv_bias);
  add_linear(g, "self_attn.v_proj", kv, h, Shard::KvHeads, c.qkv_bias);
  add_linear(g, "self_attn.o_proj", h, q, Shard::Split, o_bias, true);
}

void add_mlp(Groups& g, const std::string& prefix, int64_t hidden, int64_t inter, bool bias) {
  add_linear(g, prefix + ".gate_proj", inter, hidden, Shard::Split, bias);
  add_linear(g, prefix + ".up_proj", inter, hidden, Shard::Split, bias);
  add_linear(g, prefix + ".down_proj", hidden, inter, Shard::Split, bias, true);
}

void add_moe(Groups& g, const ModelConfig& c) {
  const int64_t h = c.hidden_size, e = c.n_routed_experts, inter = c.moe_intermediate_size;
  add(g, "mlp.gate.weight", e, h, TensorRole::Router, Shard::Replicated);
  // Only the aux-loss-free router (V3's noaux_tc) learns a per-expert score bias.
  if (c.topk_method == "noaux_tc") add(g, "mlp.gate.e_score_correction_bias", e, 1, TensorRole::RouterBias, Shard::Replicated);
  add(g, "mlp.experts.E.gate_proj.weight", inter, h, TensorRole::Linear, Shard::RoutedExpert, e);
  add(g, "mlp.experts.E.up_proj.weight", inter, h, TensorRole::Linear, Shard::RoutedExpert, e);
  add(g, "mlp.experts.E.down_proj.weight", h, inter, TensorRole::Linear, Shard::RoutedExpert, e);
  // The shared experts are one MLP n_shared_experts times as wide, run for every token.
  if (c.n_shared_experts > 0) add_mlp(g, "mlp.shared_experts", h, inter * c.n_shared_experts, false);
}

}  // namespace

std::vector<TensorGroup> layer_tensors(const PlanModel& m, int layer) {
  const ModelConfig& c = m.config;
  Groups g;
  add(g, "input_layernorm.weight", c.hidden_size, 1, TensorRole::Norm, Shard::Replicated);
  if (c.is_deepseek()) add_mla(g, c);
  else add_gqa(g, c);
  add(g, "post_attention_layernorm.weight", c.hidden_size, 1, TensorRole::Norm, Shard::Replicated);
  if (c.is_moe_layer(layer)) add_moe(g, c);
  else add_mlp(g, "mlp", c.hidden_size, c.intermediate_size, m.mlp_bias);
  return g;
}

std::vector<TensorGroup> embedding_tensors(const PlanModel& m) {
  return {TensorGroup{"model.embed_tokens.weight", m.config.vocab_size, m.config.hidden_size, 1, TensorRole::Embedding,
                      Shard::Split, true}};
}

std::vector<TensorGroup> head_tensors(const PlanModel& m) {
  const ModelConfig& c = m.config;
  return {TensorGroup{"model.norm.weight", c.hidden_size, 1, 1, TensorRole::Norm, Shard::Replicated, true},
          TensorGroup{"lm_head.weight", c.vocab_size, c.hidden_size, 1, TensorRole::LmHead, Shard::Split,
                      !c.tie_word_embeddings}};
}

std::vector<TensorGroup> mtp_tensors(const PlanModel& m) {
  const ModelConfig& c = m.config;
  if (c.num_nextn_predict_layers < 1) return {};
  Groups g = layer_tensors(m, c.num_layers);
  add(g, "enorm.weight", c.hidden_size, 1, TensorRole::Norm, Shard::Replicated);
  add(g, "hnorm.weight", c.hidden_size, 1, TensorRole::Norm, Shard::Replicated);
  add(g, "eh_proj.weight", c.hidden_size, 2 * c.hidden_size, TensorRole::Linear, Shard::Replicated);
  add(g, "shared_head.norm.weight", c.hidden_size, 1, TensorRole::Norm, Shard::Replicated);
  return g;
}

std::vector<TensorGroup> all_tensors(const PlanModel& m) {
  Groups all = embedding_tensors(m);
  for (int l = 0; l < m.config.num_layers; ++l) {
    Groups layer = layer_tensors(m, l);
    all.insert(all.end(), layer.begin(), layer.end());
  }
  Groups head = head_tensors(m);
  all.insert(all.end(), head.begin(), head.end());
  return all;
}

bool is_product(TensorRole r) {
  return r == TensorRole::Linear || r == TensorRole::LmHead || r == TensorRole::Router || r == TensorRole::Absorbed;
}

int64_t tensor_bytes(const TensorGroup& t, const WeightFormat& f) {
  switch (t.role) {
    case TensorRole::Linear: return linear_weight_bytes(f, t.rows, t.cols) * t.count;
    case TensorRole::RouterBias: return t.elements() * 4;
    default: return unquantized_bytes(f.dtype, t.elements());
  }
}

}  // namespace dsinfer::plan
