// The building blocks a decoder layer is made of: an attention block and a feed-forward block,
// each a function of the normalized hidden states [T, hidden] returning a new [T, hidden] that
// the layer adds to its residual stream before the next norm (the residual step, ResidualNorm).
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

class Block {
 public:
  virtual ~Block() = default;
  // The block's output for the normed hidden states x.
  virtual Tensor forward(LayerContext& ctx, const Tensor& x) = 0;
  // The residual step r with the block's output.
  virtual void forward_residual(LayerContext& ctx, const Tensor& x, const ResidualNorm& r) {
    ctx.be.add_rmsnorm(r.x, forward(ctx, x), *r.norm, r.eps, r.normed);
  }
};

// A block whose output is one last product, body(x) W^T (attention's o_proj, an MLP's
// down_proj): the backend gets that product and the residual step as one op, which a GPU runs
// as one launch at decode instead of two.
class ProjectedBlock : public Block {
 public:
  Tensor forward(LayerContext& ctx, const Tensor& x) final {
    const Tensor in = body(ctx, x);
    Tensor out = ctx.tensor({x.dim(0), output_weight().out_features()});
    ctx.be.linear(in, output_weight(), nullptr, out);
    return out;
  }
  void forward_residual(LayerContext& ctx, const Tensor& x, const ResidualNorm& r) final {
    const Tensor in = body(ctx, x);
    ctx.be.linear_add_rmsnorm(in, output_weight(), nullptr, ctx.tensor({x.dim(0), output_weight().out_features()}), r);
  }

 protected:
  // The last product's input [T, in_features] and weight.
  virtual Tensor body(LayerContext& ctx, const Tensor& x) = 0;
  virtual const Weight& output_weight() const = 0;
};

}  // namespace dsinfer
