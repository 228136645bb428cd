// The SiLU-gated MLP: down(silu(gate(x)) * up(x)). Dense layers, DeepSeek's shared experts. Under
// tensor parallelism a rank keeps 1/size of the intermediate features (gate/up rows, down
// columns); the output is summed over the group.
#pragma once
#include <string>

#include "model/layer.h"
#include "model/weight_loader.h"

namespace dsinfer {

class DenseMlp final : public FeedForward {
 public:
  DenseMlp(WeightLoader& w, const std::string& prefix, int hidden, int intermediate, const Shard& shard = {});
  // The block's output (also the MoE's shared experts).
  Tensor forward(LayerContext& ctx, const Tensor& x);
  // This rank's part of it: the whole output unless split, which forward sums over the group.
  Tensor forward_part(LayerContext& ctx, const Tensor& x);
  void forward_residual(LayerContext& ctx, const Tensor& x, const ResidualNorm& r) override {
    ctx.be.add_rmsnorm(r.x, forward(ctx, x), *r.norm, r.eps, r.normed);
  }
  const ExpertWeights& weights() const { return w_; }

 private:
  ExpertWeights w_;
};

}  // namespace dsinfer
