// DeepSeek mixture of experts: a router picks top-k routed experts per token (V3: sigmoid scores
// with a selection-only correction bias and group-limited top-k; V2: softmax, greedy or
// group-limited greedy), their weighted outputs are summed, and shared experts are added. Under
// tensor parallelism every rank routes every token and keeps 1/size of each expert's
// intermediate features (shared ones too); the experts' sum is summed over the group once. With
// expert parallelism a rank keeps 1/size of the routed experts whole instead, and runs the pairs
// that chose them (the others' ids become -1), summed the same way: DeepSeek's deployment, less
// the all-to-all (every rank holds every token's hidden state already).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/dense_mlp.h"
#include "model/layer.h"
#include "model/model_config.h"
#include "model/weight_loader.h"

namespace dsinfer {

MoeRouting routing_from_config(const ModelConfig& c);

class Moe final : public FeedForward {
 public:
  Moe(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const Shard& shard, bool expert_parallel);
  void forward_residual(LayerContext& ctx, const Tensor& x, const ResidualNorm& r) override;

 private:
  MoeRouting routing_;
  bool split_;
  int first_expert_ = 0, local_experts_ = 0;  // expert parallelism: the routed experts held here; 0 held: all
  Weight gate_, bias_;
  std::vector<ExpertWeights> experts_;
  std::unique_ptr<DenseMlp> shared_;
};

}  // namespace dsinfer
