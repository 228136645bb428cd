#include "runtime/generation_defaults.h"

namespace dsinfer {

GenerationDefaults generation_defaults(const ModelDir& dir, const ModelConfig& config) {
  GenerationDefaults d;
  d.eos_ids = config.eos_token_ids;
  d.sampling.temperature = 0.0f;  // greedy unless the model asks to sample
  if (!dir.generation_config || !dir.generation_config->is_object()) return d;
  const nlohmann::json& g = *dir.generation_config;
  if (g.contains("eos_token_id")) {
    const auto& e = g["eos_token_id"];
    std::vector<int> ids;
    if (e.is_number_integer()) ids.push_back(e.get<int>());
    if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) ids.push_back(x.get<int>());
    if (!ids.empty()) d.eos_ids = ids;
  }
  if (g.value("do_sample", false)) {
    d.sampling.temperature = g.value("temperature", 1.0f);
    d.sampling.top_p = g.value("top_p", 1.0f);
    d.sampling.top_k = g.value("top_k", 0);
  }
  if (g.contains("repetition_penalty") && g["repetition_penalty"].is_number())
    d.sampling.repetition_penalty = g["repetition_penalty"].get<float>();
  return d;
}

}  // namespace dsinfer
