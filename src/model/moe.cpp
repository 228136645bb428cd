#include "model/moe.h"

namespace dsinfer {

MoeRouting routing_from_config(const ModelConfig& c) {
  MoeRouting r;
  r.top_k = c.num_experts_per_tok;
  r.n_group = c.n_group;
  r.topk_group = c.topk_group;
  r.sigmoid = c.scoring_func == "sigmoid";
  r.group_limited = c.topk_method != "greedy" && c.n_group > 1;
  r.group_by_top2_sum = c.topk_method == "noaux_tc";
  r.normalize = c.norm_topk_prob && c.num_experts_per_tok > 1;
  r.scaling = static_cast<float>(c.routed_scaling_factor);
  return r;
}

Moe::Moe(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const Shard& shard, bool expert_parallel)
    : routing_(routing_from_config(c)), split_(shard.size > 1) {
  const int h = c.hidden_size, inter = c.moe_intermediate_size;
  gate_ = w.get(prefix + "gate.weight", {c.n_routed_experts, h});
  if (c.topk_method == "noaux_tc") bias_ = w.get(prefix + "gate.e_score_correction_bias", {c.n_routed_experts});
  // Whole experts [first, first + count) under expert parallelism; every expert's features part
  // otherwise.
  const bool whole = expert_parallel && split_;
  const int64_t share = whole ? inter : shard_share(inter, shard, "expert intermediate features");
  const Shard features = whole ? Shard{} : shard;
  if (whole) {
    local_experts_ = static_cast<int>(shard_share(c.n_routed_experts, shard, "routed experts"));
    first_expert_ = shard.rank * local_experts_;
  }
  const int count = whole ? local_experts_ : c.n_routed_experts;
  for (int e = first_expert_; e < first_expert_ + count; ++e) {
    std::string p = prefix + "experts." + std::to_string(e) + ".";
    experts_.push_back({w.get(p + "gate_proj.weight", {inter, h}, shard_rows(share, features)),
                        w.get(p + "up_proj.weight", {inter, h}, shard_rows(share, features)),
                        w.get(p + "down_proj.weight", {h, inter}, shard_cols(share, features))});
  }
  if (c.n_shared_experts > 0)
    shared_ = std::make_unique<DenseMlp>(w, prefix + "shared_experts.", h, inter * c.n_shared_experts, shard);
}

// The shared experts run in the routed experts' launches where the device fuses them; otherwise
// as a branch: on a GPU they stream their weights while the router's short kernels (gate product,
// routing, permutation) run on the main line, and the combine of the routed experts' outputs
// joins it. Split over a tensor-parallel group, the rank's parts of the routed and shared experts
// are summed over the group once, before the residual step.
void Moe::forward_residual(LayerContext& ctx, const Tensor& x, const ResidualNorm& r) {
  const int64_t t = x.dim(0);
  Tensor logits = ctx.arena.tensor(DType::F32, {t, gate_.out_features()});
  Tensor ids = ctx.arena.tensor(DType::I32, {t, routing_.top_k});
  Tensor weights = ctx.arena.tensor(DType::F32, {t, routing_.top_k});
  SharedExperts shared;
  Tensor shared_out;
  if (shared_ && !split_ && ctx.be.fuses_shared_experts(ids, experts_, shared_->weights())) {
    shared.weights = &shared_->weights();
  } else if (shared_) {
    ctx.be.begin_branch();
    shared_out = shared_->forward_part(ctx, x);  // the whole output unless split
    ctx.be.end_branch();
    shared.out = &shared_out;
  }
  ctx.be.moe_gate_route(x, gate_, bias_.empty() ? nullptr : &bias_, routing_, logits, ids, weights);
  Tensor out = ctx.tensor({t, x.dim(1)});
  if (!split_) return ctx.be.moe_experts_residual(x, ids, weights, experts_, shared, out, r);
  if (local_experts_ > 0) ctx.be.moe_local_ids(ids, first_expert_, local_experts_);
  ctx.be.moe_experts(x, ids, weights, experts_, out);
  if (shared.out) {
    ctx.be.join_branch();
    ctx.be.add(out, *shared.out);
  }
  ctx.be.all_reduce_sum(out);
  ctx.be.add_rmsnorm(r.x, out, *r.norm, r.eps, r.normed);
}

}  // namespace dsinfer
