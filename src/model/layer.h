// The building blocks a decoder layer is made of: an attention block and a feed-forward block,
// each a function of the normalized hidden states [T, hidden] returning a new [T, hidden].
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

class FeedForward {
 public:
  virtual ~FeedForward() = default;
  virtual Tensor forward(LayerContext& ctx, const Tensor& x) = 0;
};

}  // namespace dsinfer
