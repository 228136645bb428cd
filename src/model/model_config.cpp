#include "model/model_config.h"

#include <algorithm>

#include "core/error.h"

namespace dsinfer {
using nlohmann::json;

namespace {

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail("config.json: field '", key, "' has the wrong type (", it->dump(), ")");
  }
}

int required_int(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) fail("config.json: missing or non-integer field '", key, "'");
  int v = it->get<int>();
  if (v < 0) fail("config.json: field '", key, "' is negative (", v, ")");
  return v;
}

RopeScaling parse_rope(const json& j) {
  RopeScaling r;
  const json* s = nullptr;
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) s = &j["rope_scaling"];
  else if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) s = &j["rope_parameters"];
  if (!s) return r;
  std::string type = get_or<std::string>(*s, "rope_type", get_or<std::string>(*s, "type", "default"));
  r.factor = get_or<double>(*s, "factor", 1.0);
  r.original_max_position_embeddings = get_or<int>(*s, "original_max_position_embeddings", 0);
  if (type == "default") r.type = RopeType::Default;
  else if (type == "linear") r.type = RopeType::Linear;
  else if (type == "llama3") {
    r.type = RopeType::Llama3;
    r.low_freq_factor = get_or<double>(*s, "low_freq_factor", 1.0);
    r.high_freq_factor = get_or<double>(*s, "high_freq_factor", 4.0);
  } else if (type == "yarn" || type == "deepseek_yarn") {
    r.type = RopeType::Yarn;
    r.beta_fast = get_or<double>(*s, "beta_fast", 32.0);
    r.beta_slow = get_or<double>(*s, "beta_slow", 1.0);
    r.mscale = get_or<double>(*s, "mscale", 0.0);
    r.mscale_all_dim = get_or<double>(*s, "mscale_all_dim", 0.0);
    r.attention_factor = get_or<double>(*s, "attention_factor", 0.0);
    r.truncate = get_or<bool>(*s, "truncate", true);
  } else {
    fail("config.json: unsupported rope scaling type '", type, "' (supported: default, linear, llama3, yarn)");
  }
  return r;
}

std::vector<int> parse_ids(const json& v) {
  std::vector<int> ids;
  if (v.is_number_integer()) ids.push_back(v.get<int>());
  else if (v.is_array())
    for (const json& x : v)
      if (x.is_number_integer()) ids.push_back(x.get<int>());
  return ids;
}

}  // namespace

std::string ModelConfig::supported_architectures() {
  return "DeepseekV3ForCausalLM, DeepseekV2ForCausalLM, Qwen2ForCausalLM, LlamaForCausalLM";
}

bool ModelConfig::is_moe_layer(int layer) const {
  return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % std::max(1, moe_layer_freq) == 0;
}

int ModelConfig::kv_values_per_token_per_layer() const {
  if (is_deepseek()) return kv_lora_rank + qk_rope_head_dim;
  return 2 * num_kv_heads * head_dim;
}

ModelConfig ModelConfig::from_json(const json& j) {
  ModelConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    fail("config.json: missing \"architectures\" (supported: ", supported_architectures(), ")");
  c.architecture = j["architectures"][0].get<std::string>();
  if (c.architecture == "DeepseekV3ForCausalLM") c.arch = Arch::DeepseekV3;
  else if (c.architecture == "DeepseekV2ForCausalLM") c.arch = Arch::DeepseekV2;
  else if (c.architecture == "Qwen2ForCausalLM") c.arch = Arch::Qwen2;
  else if (c.architecture == "LlamaForCausalLM") c.arch = Arch::Llama;
  else fail("unsupported architecture '", c.architecture, "' (supported: ", supported_architectures(), ")");
  c.model_type = get_or<std::string>(j, "model_type", "");

  c.vocab_size = required_int(j, "vocab_size");
  c.hidden_size = required_int(j, "hidden_size");
  c.intermediate_size = required_int(j, "intermediate_size");
  c.num_layers = required_int(j, "num_hidden_layers");
  c.num_heads = required_int(j, "num_attention_heads");
  c.num_kv_heads = get_or<int>(j, "num_key_value_heads", c.num_heads);
  if (c.num_heads == 0 || c.hidden_size == 0 || c.num_kv_heads == 0 || c.num_heads % c.num_kv_heads)
    fail("config.json: num_attention_heads (", c.num_heads, ") must be a positive multiple of num_key_value_heads (",
         c.num_kv_heads, ")");
  c.head_dim = get_or<int>(j, "head_dim", c.hidden_size / c.num_heads);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
  c.rope_theta = get_or<double>(j, "rope_theta", 10000.0);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    c.rope_theta = get_or<double>(j["rope_parameters"], "rope_theta", c.rope_theta);
  c.max_position_embeddings = get_or<int>(j, "max_position_embeddings", 4096);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
  c.qkv_bias = c.arch == Arch::Qwen2 || get_or<bool>(j, "attention_bias", false);
  c.bos_token_id = get_or<int>(j, "bos_token_id", -1);
  if (j.contains("eos_token_id")) c.eos_token_ids = parse_ids(j["eos_token_id"]);
  c.rope = parse_rope(j);

  if (c.is_deepseek()) {
    c.q_lora_rank = get_or<int>(j, "q_lora_rank", 0);
    c.kv_lora_rank = required_int(j, "kv_lora_rank");
    c.qk_nope_head_dim = required_int(j, "qk_nope_head_dim");
    c.qk_rope_head_dim = required_int(j, "qk_rope_head_dim");
    c.v_head_dim = required_int(j, "v_head_dim");
    if (c.qk_rope_head_dim % 2) fail("config.json: qk_rope_head_dim must be even (", c.qk_rope_head_dim, ")");
    c.head_dim = c.qk_rope_head_dim;  // the rotary dimension, as transformers sets it
    c.n_routed_experts = get_or<int>(j, "n_routed_experts", 0);
    c.n_shared_experts = get_or<int>(j, "n_shared_experts", 0);
    c.moe_intermediate_size = get_or<int>(j, "moe_intermediate_size", 0);
    c.num_experts_per_tok = get_or<int>(j, "num_experts_per_tok", 0);
    c.first_k_dense_replace = get_or<int>(j, "first_k_dense_replace", 0);
    c.moe_layer_freq = get_or<int>(j, "moe_layer_freq", 1);
    c.n_group = get_or<int>(j, "n_group", 1);
    c.topk_group = get_or<int>(j, "topk_group", 1);
    c.norm_topk_prob = get_or<bool>(j, "norm_topk_prob", false);
    c.routed_scaling_factor = get_or<double>(j, "routed_scaling_factor", 1.0);
    c.scoring_func = get_or<std::string>(j, "scoring_func", "softmax");
    c.topk_method = get_or<std::string>(j, "topk_method", c.arch == Arch::DeepseekV3 ? "noaux_tc" : "greedy");
    c.num_nextn_predict_layers = get_or<int>(j, "num_nextn_predict_layers", 0);
    if (c.scoring_func != "softmax" && c.scoring_func != "sigmoid")
      fail("config.json: unsupported scoring_func '", c.scoring_func, "' (supported: softmax, sigmoid)");
    if (c.topk_method != "greedy" && c.topk_method != "group_limited_greedy" && c.topk_method != "noaux_tc")
      fail("config.json: unsupported topk_method '", c.topk_method, "' (supported: greedy, group_limited_greedy, noaux_tc)");
    if (c.n_routed_experts > 0) {
      if (c.n_group <= 0 || c.n_routed_experts % c.n_group || c.topk_group > c.n_group ||
          c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.n_routed_experts)
        fail("config.json: inconsistent MoE routing (n_routed_experts ", c.n_routed_experts, ", n_group ", c.n_group,
             ", topk_group ", c.topk_group, ", num_experts_per_tok ", c.num_experts_per_tok, ")");
    }
  }

  if (j.contains("quantization_config") && j["quantization_config"].is_object()) {
    const json& q = j["quantization_config"];
    std::string method = get_or<std::string>(q, "quant_method", "");
    if (method != "fp8") fail("config.json: unsupported quantization_config.quant_method '", method, "' (supported: fp8)");
    c.fp8_checkpoint = true;
    if (q.contains("weight_block_size") && q["weight_block_size"].is_array() && q["weight_block_size"].size() == 2) {
      c.fp8_block_rows = q["weight_block_size"][0].get<int>();
      c.fp8_block_cols = q["weight_block_size"][1].get<int>();
    }
  }
  return c;
}

}  // namespace dsinfer
