// Random weights at the real shapes of a config (for benchmarks without a download): every
// tensor the checkpoint would store, BF16 (or FP8 e4m3 with 128x128 block scales for an FP8
// checkpoint config), scaled so activations stay in a sane range. The text they generate is
// gibberish.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"
#include "model/model_config.h"

namespace dsinfer {

TensorStore dummy_weights(const nlohmann::json& config_json, const ModelConfig& config);

}  // namespace dsinfer
