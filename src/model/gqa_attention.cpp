#include "model/gqa_attention.h"

#include <cmath>

namespace dsinfer {

GqaAttention::GqaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope,
                           const Shard& shard)
    : c_(c),
      rope_(rope),
      heads_(static_cast<int>(shard_share(c.num_heads, shard, "attention heads"))),
      kv_heads_(static_cast<int>(shard_share(c.num_kv_heads, shard, "key/value heads"))) {
  const int h = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  const Part q_part = shard_rows(heads_ * c.head_dim, shard), kv_part = shard_rows(kv_heads_ * c.head_dim, shard);
  // Adjacent, so that a device may run q/k/v as one product (linear_many).
  std::vector<Weight> qkv = w.get_adjacent({{prefix + "q_proj.weight", {q_dim, h}, q_part},
                                            {prefix + "k_proj.weight", {kv_dim, h}, kv_part},
                                            {prefix + "v_proj.weight", {kv_dim, h}, kv_part}});
  q_ = qkv[0];
  k_ = qkv[1];
  v_ = qkv[2];
  o_ = w.get(prefix + "o_proj.weight", {h, q_dim}, shard_cols(heads_ * c.head_dim, shard));
  if (c.qkv_bias) {
    std::vector<Weight> bias = w.get_adjacent({{prefix + "q_proj.bias", {q_dim}, q_part},
                                               {prefix + "k_proj.bias", {kv_dim}, kv_part},
                                               {prefix + "v_proj.bias", {kv_dim}, kv_part}});
    q_bias_ = bias[0];
    k_bias_ = bias[1];
    v_bias_ = bias[2];
  }
}

Tensor GqaAttention::forward(LayerContext& ctx, const Tensor& x) {
  const int64_t t = x.dim(0);
  const int d = c_.head_dim;
  auto bias = [](const Weight& b) { return b.empty() ? nullptr : &b; };
  Tensor q = ctx.tensor({t, heads_, d});
  Tensor k = ctx.tensor({t, kv_heads_, d});
  Tensor v = ctx.tensor({t, kv_heads_, d});
  ctx.be.linear_many(x, {{&q_, bias(q_bias_), q.reshape({t, heads_ * d})},
                         {&k_, bias(k_bias_), k.reshape({t, kv_heads_ * d})},
                         {&v_, bias(v_bias_), v.reshape({t, kv_heads_ * d})}});
  Tensor attn = ctx.tensor({t, heads_, d});
  ctx.be.rope_cache_attention(ctx.batch, q, k, v, ctx.kv, rope_, kv_heads_, 1.0f / std::sqrt(static_cast<float>(d)),
                              attn);
  Tensor out = ctx.tensor({t, c_.hidden_size});
  ctx.be.linear(attn.reshape({t, heads_ * d}), o_, nullptr, out);
  ctx.be.all_reduce_sum(out);  // nothing to add outside a group
  return out;
}

}  // namespace dsinfer
