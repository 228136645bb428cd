// The model as the planner sees it: the parsed ModelConfig plus the few config.json facts
// that ModelConfig does not carry (Llama's mlp_bias, the checkpoint's storage dtype).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "model/model_config.h"
#include "plan/precision.h"

namespace dsinfer::plan {

struct PlanModel {
  std::string name;  // catalog name, or the path it was read from
  ModelConfig config;
  bool mlp_bias = false;                      // LlamaConfig.mlp_bias: biases on gate/up/down
  WeightFormat stored{WeightDtype::BF16};     // what the checkpoint stores (--weights-dtype as-stored)

  static PlanModel from_json(const nlohmann::json& config_json, std::string name);
  // For callers that hold only a ModelConfig (the engine): no MLP bias, bf16 unless FP8.
  static PlanModel from_config(const ModelConfig& config, std::string name);
};

}  // namespace dsinfer::plan
