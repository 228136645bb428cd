// Rotary position embedding parameters as transformers computes them: default, linear,
// llama3 and YaRN inverse frequencies, the YaRN attention factor, and DeepSeek's softmax scale.
#pragma once
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"

namespace dsinfer {

struct RopeSpec {
  std::vector<float> inv_freq;  // [rot_dim / 2]
  float attention_factor = 1.0f;
  RopeStyle style = RopeStyle::Neox;
  int rot_dim = 0;
};

RopeSpec compute_rope(const ModelConfig& c);

// DeepSeek MLA: qk_head_dim^-0.5, times yarn_mscale(factor, mscale_all_dim)^2 under YaRN.
float deepseek_softmax_scale(const ModelConfig& c);

}  // namespace dsinfer
