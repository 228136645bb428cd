#include "model/dense_mlp.h"

namespace dsinfer {

DenseMlp::DenseMlp(WeightLoader& w, const std::string& prefix, int hidden, int intermediate)
    : gate_(w.get(prefix + "gate_proj.weight", {intermediate, hidden})),
      up_(w.get(prefix + "up_proj.weight", {intermediate, hidden})),
      down_(w.get(prefix + "down_proj.weight", {hidden, intermediate})) {}

Tensor DenseMlp::forward(LayerContext& ctx, const Tensor& x) {
  const int64_t t = x.dim(0);
  Tensor gate = ctx.tensor({t, gate_.out_features()});
  Tensor up = ctx.tensor({t, up_.out_features()});
  ctx.be.linear_many(x, {{&gate_, nullptr, gate}, {&up_, nullptr, up}});
  ctx.be.silu_mul(gate, up, gate);
  Tensor out = ctx.tensor({t, down_.out_features()});
  ctx.be.linear(gate, down_, nullptr, out);
  return out;
}

}  // namespace dsinfer
