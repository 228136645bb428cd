// What a model directory says about generation: its EOS ids (generation_config.json, else
// config.json) and its sampling defaults (generation_config.json with do_sample, else greedy).
#pragma once
#include <vector>

#include "io/model_dir.h"
#include "model/model_config.h"
#include "runtime/sampling_params.h"

namespace dsinfer {

struct GenerationDefaults {
  std::vector<int> eos_ids;
  SamplingParams sampling;
};

GenerationDefaults generation_defaults(const ModelDir& dir, const ModelConfig& config);

}  // namespace dsinfer
