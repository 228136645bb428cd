#include "model/dense_mlp.h"

namespace dsinfer {

DenseMlp::DenseMlp(WeightLoader& w, const std::string& prefix, int hidden, int intermediate)
    : gate_(w.get(prefix + "gate_proj.weight", {intermediate, hidden})),
      up_(w.get(prefix + "up_proj.weight", {intermediate, hidden})),
      down_(w.get(prefix + "down_proj.weight", {hidden, intermediate})) {}

Tensor DenseMlp::forward(LayerContext& ctx, const Tensor& x) {
  const int64_t t = x.dim(0);
  Tensor act = ctx.tensor({t, gate_.out_features()});
  Tensor up = ctx.tensor({t, up_.out_features()});
  ctx.be.linear_silu_mul(x, gate_, up_, act, up);
  Tensor out = ctx.tensor({t, down_.out_features()});
  ctx.be.linear(act, down_, nullptr, out);
  return out;
}

}  // namespace dsinfer
