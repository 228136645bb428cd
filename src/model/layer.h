// The building blocks a decoder layer is made of: an attention block and a feed-forward block,
// each a function of the normalized hidden states [T, hidden] to a new [T, hidden] that the layer
// adds to its residual stream before the next norm (the residual step, ResidualNorm).
#pragma once
#include "backend/arena.h"
#include "backend/backend.h"

namespace dsinfer {

struct LayerContext {
  Backend& be;
  Arena& arena;
  const ForwardBatch& batch;
  KvLayer kv;
  DType act;  // the backend's activation dtype

  Tensor tensor(Shape shape) { return arena.tensor(act, std::move(shape)); }
};

class AttentionBlock {
 public:
  virtual ~AttentionBlock() = default;
  virtual Tensor forward(LayerContext& ctx, const Tensor& x) = 0;
};

// A feed-forward block ends with the layer's residual step itself, so that a block may hand the
// backend its last op and the step as one (the MoE's combine).
class FeedForward {
 public:
  virtual ~FeedForward() = default;
  // The residual step r with the block's output for the normed hidden states x.
  virtual void forward_residual(LayerContext& ctx, const Tensor& x, const ResidualNorm& r) = 0;
};

}  // namespace dsinfer
