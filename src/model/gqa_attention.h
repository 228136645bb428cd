// Grouped-query attention (Llama, Qwen2): q/k/v projections (optional bias), rope on q and k,
// keys and values written to the paged cache, causal attention, output projection.
#pragma once
#include <string>

#include "model/layer.h"
#include "model/model_config.h"
#include "model/weight_loader.h"

namespace dsinfer {

class GqaAttention final : public AttentionBlock {
 public:
  GqaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope);
  Tensor forward(LayerContext& ctx, const Tensor& x) override;

 private:
  const ModelConfig& c_;
  const RopeParams& rope_;
  Weight q_, k_, v_, o_, q_bias_, k_bias_, v_bias_;
};

}  // namespace dsinfer
