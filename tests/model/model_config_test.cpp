// config.json is checked field by field: every size the model is built from is in range, and an
// error names the field and what it holds, before anything is allocated or divided by it.
#include <gtest/gtest.h>

#include "../fixture_util.h"
#include "core/error.h"
#include "io/json_file.h"
#include "model/model_config.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

nlohmann::json patched(const std::string& fixture, const nlohmann::json& patch) {
  nlohmann::json config = read_json_file(fixture_dir(fixture) + "/config.json");
  config.merge_patch(patch);
  return config;
}

std::string config_error(const std::string& fixture, const nlohmann::json& patch) {
  try {
    ModelConfig::from_json(patched(fixture, patch));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ModelConfig, OutOfRangeFieldsAreNamedWithTheirValue) {
  const std::vector<std::tuple<std::string, nlohmann::json, std::string>> cases = {
      {"qwen2-tiny", {{"num_hidden_layers", 0}}, "'num_hidden_layers' is 0; it must be at least 1"},
      {"qwen2-tiny", {{"hidden_size", 4294967328LL}}, "'hidden_size' is 4294967328, beyond the largest"},
      {"qwen2-tiny", {{"num_key_value_heads", -2}}, "'num_key_value_heads' is -2"},
      {"qwen2-tiny", {{"head_dim", -8}}, "'head_dim' is -8"},
      {"qwen2-tiny", {{"max_position_embeddings", -5}}, "'max_position_embeddings' is -5"},
      {"qwen2-tiny", {{"vocab_size", 0}}, "'vocab_size' is 0"},
      {"qwen2-tiny", {{"rms_norm_eps", -1}}, "'rms_norm_eps' is -1; it must be positive"},
      {"qwen2-tiny", {{"rope_theta", 0}}, "'rope_theta' is 0"},
      {"qwen2-tiny", {{"rope_scaling", {1, 2}}}, "'rope_scaling' must be an object"},
      {"qwen2-tiny", {{"rope_scaling", {{"type", "linear"}, {"factor", 0}}}}, "'factor' is 0"},
      {"qwen2-tiny", {{"eos_token_id", "151643"}}, "eos_token_id must be a token id"},
      {"qwen2-tiny", {{"num_attention_heads", 4}, {"num_key_value_heads", 3}}, "must be a multiple of num_key_value_heads"},
      {"ds3-tiny", {{"topk_group", -1}}, "'topk_group' is -1"},
      {"ds3-tiny", {{"n_shared_experts", -1}}, "'n_shared_experts' is -1"},
      {"ds3-tiny", {{"qk_rope_head_dim", 7}}, "qk_rope_head_dim must be even"},
      {"ds3-tiny", {{"quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {0, 128}}}}},
       "weight_block_size must hold two positive integers"},
      {"ds3-tiny", {{"quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {"a", "b"}}}}},
       "weight_block_size must hold two positive integers"},
  };
  for (const auto& [fixture, patch, want] : cases) {
    const std::string e = config_error(fixture, patch);
    EXPECT_NE(e.find(want), std::string::npos) << patch.dump() << " gave: '" << e << "'";
    EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  }
}

TEST(ModelConfig, FeaturesTheEngineLacksAreListedNotIgnored) {
  EXPECT_TRUE(ModelConfig::from_json(patched("llama-tiny", nlohmann::json::object())).unsupported.empty());
  const ModelConfig c = ModelConfig::from_json(
      patched("llama-tiny", {{"hidden_act", "gelu_pytorch_tanh"}, {"mlp_bias", true}}));
  ASSERT_EQ(c.unsupported.size(), 2u);
  EXPECT_NE(c.unsupported[0].find("gelu_pytorch_tanh"), std::string::npos);
  EXPECT_NE(c.unsupported[1].find("mlp_bias"), std::string::npos);
  // Qwen2's sliding window only matters when some layer uses it.
  EXPECT_TRUE(ModelConfig::from_json(patched("qwen2-tiny", {{"use_sliding_window", true}, {"max_window_layers", 99}}))
                  .unsupported.empty());
  EXPECT_EQ(ModelConfig::from_json(patched("qwen2-tiny", {{"use_sliding_window", true}, {"max_window_layers", 0}}))
                .unsupported.size(),
            1u);
}
