// Grouped-query attention (Llama, Qwen2): q/k/v projections (optional bias), rope on q and k,
// keys and values written to the paged cache, causal attention, output projection. Under tensor
// parallelism a rank keeps 1/size of the query and key/value heads (its cache holds its key/value
// heads) and o's matching columns; the output is summed over the group.
#pragma once
#include <string>

#include "model/layer.h"
#include "model/model_config.h"
#include "model/shard.h"
#include "model/weight_loader.h"

namespace dsinfer {

class GqaAttention final : public AttentionBlock {
 public:
  GqaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope,
               const Shard& shard);
  Tensor forward(LayerContext& ctx, const Tensor& x) override;

 private:
  const ModelConfig& c_;
  const RopeParams& rope_;
  int heads_, kv_heads_;  // this rank's
  Weight q_, k_, v_, o_, q_bias_, k_bias_, v_bias_;
};

}  // namespace dsinfer
