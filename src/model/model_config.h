// ModelConfig: the architecture facts of a Hugging Face config.json that dsinfer uses.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dsinfer {

enum class Arch { DeepseekV3, DeepseekV2, Qwen2, Llama };

enum class RopeType { Default, Linear, Llama3, Yarn };

struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position_embeddings = 0;
  // yarn
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 0.0, mscale_all_dim = 0.0;
  double attention_factor = 0.0;  // 0: derive from factor / mscale as transformers does
  bool truncate = true;
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string architecture;  // as written in config.json
  std::string model_type;

  int vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0;
  int num_heads = 0, num_kv_heads = 0, head_dim = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  int max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2, or attention_bias
  std::vector<int> eos_token_ids;
  int bos_token_id = -1;
  RopeScaling rope;

  // MLA (DeepSeek); q_lora_rank 0 means a plain q_proj (V2-Lite).
  int q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;

  // MoE (DeepSeek)
  int n_routed_experts = 0, n_shared_experts = 0, moe_intermediate_size = 0, num_experts_per_tok = 0;
  int first_k_dense_replace = 0, moe_layer_freq = 1, n_group = 1, topk_group = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  std::string scoring_func = "softmax";  // softmax | sigmoid
  std::string topk_method = "greedy";    // greedy | group_limited_greedy | noaux_tc
  int num_nextn_predict_layers = 0;

  // Checkpoint stored as FP8 e4m3 with block scales (quantization_config.quant_method == "fp8").
  bool fp8_checkpoint = false;
  int fp8_block_rows = 128, fp8_block_cols = 128;

  // What the config asks for that the engine does not implement (another activation, MLP
  // biases, sliding-window attention); `dsinfer plan` still counts such a model, loading refuses it.
  std::vector<std::string> unsupported;

  bool is_deepseek() const { return arch == Arch::DeepseekV3 || arch == Arch::DeepseekV2; }
  bool is_moe_layer(int layer) const;
  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Values one token stores in the KV cache per layer (MLA latent + rope key, or K and V).
  int kv_values_per_token_per_layer() const;

  static ModelConfig from_json(const nlohmann::json& j);
  static std::string supported_architectures();
};

}  // namespace dsinfer
