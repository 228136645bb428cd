#include "model/model_config.h"

#include <algorithm>
#include <climits>
#include <optional>

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

// An integer field of at least `min`; absent or null: `fallback`, or an error when there is none.
int int_field(const json& j, const char* key, int min, std::optional<int> fallback = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (!fallback) fail("config.json: missing field '", key, "'");
    return *fallback;
  }
  if (!it->is_number_integer()) fail("config.json: field '", key, "' must be an integer, not ", it->dump());
  const bool is_unsigned = it->is_number_unsigned();
  const int64_t v = is_unsigned ? static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX)) : it->get<int64_t>();
  if (v < min) fail("config.json: field '", key, "' is ", v, "; it must be at least ", min);
  if (v > INT_MAX) fail("config.json: field '", key, "' is ", it->dump(), ", beyond the largest supported (", INT_MAX, ")");
  return static_cast<int>(v);
}

// A number field above zero; absent or null: `fallback`.
double positive_field(const json& j, const char* key, double fallback) {
  const double v = get_or<double>(j, key, fallback);
  if (!(v > 0)) fail("config.json: field '", key, "' is ", v, "; it must be positive");
  return v;
}

const json* rope_object(const json& j) {
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_object()) fail("config.json: field '", key, "' must be an object, not ", it->dump());
    return &*it;
  }
  return nullptr;
}

RopeScaling parse_rope(const json& j) {
  RopeScaling r;
  const json* s = rope_object(j);
  if (!s) return r;
  std::string type = get_or<std::string>(*s, "rope_type", get_or<std::string>(*s, "type", "default"));
  r.factor = positive_field(*s, "factor", 1.0);
  r.original_max_position_embeddings = int_field(*s, "original_max_position_embeddings", 0, 0);
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

// eos_token_id: an id, a list of ids, or null.
std::vector<int> parse_ids(const json& v) {
  std::vector<int> ids;
  const json list = v.is_array() ? v : v.is_null() ? json::array() : json::array({v});
  for (const json& x : list) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT_MAX)
      fail("config.json: eos_token_id must be a token id or a list of them, not ", v.dump());
    ids.push_back(x.get<int>());
  }
  return ids;
}

// Features of the config this engine does not implement, by name.
std::vector<std::string> unsupported_features(const json& j, const ModelConfig& c) {
  std::vector<std::string> out;
  const std::string act = get_or<std::string>(j, "hidden_act", "silu");
  if (act != "silu") out.push_back(cat("hidden_act '", act, "' (supported: silu)"));
  if (get_or<bool>(j, "mlp_bias", false)) out.push_back("mlp_bias (biases on the MLP's products)");
  if (get_or<bool>(j, "use_sliding_window", false) && get_or<int>(j, "max_window_layers", c.num_layers) < c.num_layers)
    out.push_back("use_sliding_window (sliding-window attention)");
  return out;
}

// quantization_config.weight_block_size: two positive integers.
void parse_block_size(const json& q, ModelConfig& c) {
  auto it = q.find("weight_block_size");
  if (it == q.end() || it->is_null()) return;
  if (!it->is_array() || it->size() != 2) fail("config.json: quantization_config.weight_block_size must be [rows, columns], not ", it->dump());
  for (const json& v : *it)
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > INT_MAX)
      fail("config.json: quantization_config.weight_block_size must hold two positive integers, not ", it->dump());
  c.fp8_block_rows = (*it)[0].get<int>();
  c.fp8_block_cols = (*it)[1].get<int>();
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

  c.vocab_size = int_field(j, "vocab_size", 1);
  c.hidden_size = int_field(j, "hidden_size", 1);
  c.intermediate_size = int_field(j, "intermediate_size", 1);
  c.num_layers = int_field(j, "num_hidden_layers", 1);
  c.num_heads = int_field(j, "num_attention_heads", 1);
  c.num_kv_heads = int_field(j, "num_key_value_heads", 1, c.num_heads);
  if (c.num_heads % c.num_kv_heads)
    fail("config.json: num_attention_heads (", c.num_heads, ") must be a multiple of num_key_value_heads (",
         c.num_kv_heads, ")");
  c.head_dim = int_field(j, "head_dim", 1, std::max(1, c.hidden_size / c.num_heads));
  c.rms_norm_eps = positive_field(j, "rms_norm_eps", 1e-6);
  c.rope_theta = positive_field(j, "rope_theta", 10000.0);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    c.rope_theta = positive_field(j["rope_parameters"], "rope_theta", c.rope_theta);
  c.max_position_embeddings = int_field(j, "max_position_embeddings", 1, 4096);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
  c.qkv_bias = c.arch == Arch::Qwen2 || get_or<bool>(j, "attention_bias", false);
  c.bos_token_id = get_or<int>(j, "bos_token_id", -1);
  if (j.contains("eos_token_id")) c.eos_token_ids = parse_ids(j["eos_token_id"]);
  c.rope = parse_rope(j);
  c.unsupported = unsupported_features(j, c);

  if (c.is_deepseek()) {
    c.q_lora_rank = int_field(j, "q_lora_rank", 0, 0);
    c.kv_lora_rank = int_field(j, "kv_lora_rank", 1);
    c.qk_nope_head_dim = int_field(j, "qk_nope_head_dim", 1);
    c.qk_rope_head_dim = int_field(j, "qk_rope_head_dim", 2);
    c.v_head_dim = int_field(j, "v_head_dim", 1);
    if (c.qk_rope_head_dim % 2) fail("config.json: qk_rope_head_dim must be even (", c.qk_rope_head_dim, ")");
    c.head_dim = c.qk_rope_head_dim;  // the rotary dimension, as transformers sets it
    c.n_routed_experts = int_field(j, "n_routed_experts", 0, 0);
    c.n_shared_experts = int_field(j, "n_shared_experts", 0, 0);
    c.moe_intermediate_size = c.n_routed_experts + c.n_shared_experts > 0 ? int_field(j, "moe_intermediate_size", 1)
                                                                          : int_field(j, "moe_intermediate_size", 0, 0);
    c.num_experts_per_tok = int_field(j, "num_experts_per_tok", 0, 0);
    c.first_k_dense_replace = int_field(j, "first_k_dense_replace", 0, 0);
    c.moe_layer_freq = int_field(j, "moe_layer_freq", 1, 1);
    c.n_group = int_field(j, "n_group", 1, 1);
    c.topk_group = int_field(j, "topk_group", 1, 1);
    c.norm_topk_prob = get_or<bool>(j, "norm_topk_prob", false);
    c.routed_scaling_factor = positive_field(j, "routed_scaling_factor", 1.0);
    c.scoring_func = get_or<std::string>(j, "scoring_func", "softmax");
    c.topk_method = get_or<std::string>(j, "topk_method", c.arch == Arch::DeepseekV3 ? "noaux_tc" : "greedy");
    c.num_nextn_predict_layers = int_field(j, "num_nextn_predict_layers", 0, 0);
    if (c.scoring_func != "softmax" && c.scoring_func != "sigmoid")
      fail("config.json: unsupported scoring_func '", c.scoring_func, "' (supported: softmax, sigmoid)");
    if (c.topk_method != "greedy" && c.topk_method != "group_limited_greedy" && c.topk_method != "noaux_tc")
      fail("config.json: unsupported topk_method '", c.topk_method, "' (supported: greedy, group_limited_greedy, noaux_tc)");
    if (c.n_routed_experts > 0) {
      if (c.n_routed_experts % c.n_group || c.topk_group > c.n_group ||
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
    parse_block_size(q, c);
  }
  return c;
}

}  // namespace dsinfer
