// The SiLU-gated MLP: down(silu(gate(x)) * up(x)). Dense layers, DeepSeek's shared experts.
#pragma once
#include <string>

#include "model/layer.h"
#include "model/weight_loader.h"

namespace dsinfer {

class DenseMlp final : public FeedForward {
 public:
  DenseMlp(WeightLoader& w, const std::string& prefix, int hidden, int intermediate);
  Tensor forward(LayerContext& ctx, const Tensor& x) override;

 private:
  Weight gate_, up_, down_;
};

}  // namespace dsinfer
