#include "plan/plan_model.h"

#include "core/error.h"

namespace dsinfer::plan {

namespace {

WeightFormat fp8_format(const ModelConfig& c) {
  return WeightFormat{WeightDtype::FP8Block, c.fp8_block_rows, c.fp8_block_cols};
}

// torch_dtype (transformers < 4.56) or dtype (newer) names the 16/32-bit storage type.
WeightDtype stored_float_dtype(const nlohmann::json& j) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) continue;
    const std::string v = it->get<std::string>();
    if (v == "bfloat16") return WeightDtype::BF16;
    if (v == "float16") return WeightDtype::F16;
    if (v == "float32") return WeightDtype::F32;
    fail("config.json: unsupported ", key, " '", v, "' (supported: bfloat16, float16, float32)");
  }
  return WeightDtype::BF16;
}

}  // namespace

PlanModel PlanModel::from_json(const nlohmann::json& j, std::string name) {
  PlanModel m = from_config(ModelConfig::from_json(j), std::move(name));
  auto bias = j.find("mlp_bias");
  m.mlp_bias = bias != j.end() && bias->is_boolean() && bias->get<bool>();
  if (!m.config.fp8_checkpoint) m.stored = WeightFormat{stored_float_dtype(j)};
  return m;
}

PlanModel PlanModel::from_config(const ModelConfig& config, std::string name) {
  PlanModel m;
  m.name = std::move(name);
  m.config = config;
  m.stored = config.fp8_checkpoint ? fp8_format(config) : WeightFormat{WeightDtype::BF16};
  return m;
}

}  // namespace dsinfer::plan
