#include "model/dense_mlp.h"

namespace dsinfer {

DenseMlp::DenseMlp(WeightLoader& w, const std::string& prefix, int hidden, int intermediate, const Shard& shard) {
  const int64_t share = shard_share(intermediate, shard, "intermediate features");
  w_ = {w.get(prefix + "gate_proj.weight", {intermediate, hidden}, shard_rows(share, shard)),
        w.get(prefix + "up_proj.weight", {intermediate, hidden}, shard_rows(share, shard)),
        w.get(prefix + "down_proj.weight", {hidden, intermediate}, shard_cols(share, shard))};
}

Tensor DenseMlp::forward(LayerContext& ctx, const Tensor& x) {
  Tensor out = forward_part(ctx, x);
  ctx.be.all_reduce_sum(out);  // nothing to add outside a group
  return out;
}

Tensor DenseMlp::forward_part(LayerContext& ctx, const Tensor& x) {
  const int64_t t = x.dim(0);
  Tensor act = ctx.tensor({t, w_.gate.out_features()});
  Tensor up = ctx.tensor({t, w_.up.out_features()});
  Tensor out = ctx.tensor({t, w_.down.out_features()});
  ctx.be.gated_mlp(x, w_.gate, w_.up, w_.down, act, up, out);
  return out;
}

}  // namespace dsinfer
