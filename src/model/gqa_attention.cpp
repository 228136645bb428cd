#include "model/gqa_attention.h"

#include <cmath>

namespace dsinfer {

GqaAttention::GqaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope)
    : c_(c), rope_(rope) {
  const int h = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  // Adjacent, so that a device may run q/k/v as one product (linear_many).
  std::vector<Weight> qkv = w.get_adjacent(
      {{prefix + "q_proj.weight", {q_dim, h}}, {prefix + "k_proj.weight", {kv_dim, h}}, {prefix + "v_proj.weight", {kv_dim, h}}});
  q_ = qkv[0];
  k_ = qkv[1];
  v_ = qkv[2];
  o_ = w.get(prefix + "o_proj.weight", {h, q_dim});
  if (c.qkv_bias) {
    std::vector<Weight> bias = w.get_adjacent(
        {{prefix + "q_proj.bias", {q_dim}}, {prefix + "k_proj.bias", {kv_dim}}, {prefix + "v_proj.bias", {kv_dim}}});
    q_bias_ = bias[0];
    k_bias_ = bias[1];
    v_bias_ = bias[2];
  }
}

Tensor GqaAttention::forward(LayerContext& ctx, const Tensor& x) {
  const int64_t t = x.dim(0);
  const int d = c_.head_dim;
  auto bias = [](const Weight& b) { return b.empty() ? nullptr : &b; };
  Tensor q = ctx.tensor({t, c_.num_heads, d});
  Tensor k = ctx.tensor({t, c_.num_kv_heads, d});
  Tensor v = ctx.tensor({t, c_.num_kv_heads, d});
  ctx.be.linear_many(x, {{&q_, bias(q_bias_), q.reshape({t, c_.num_heads * d})},
                         {&k_, bias(k_bias_), k.reshape({t, c_.num_kv_heads * d})},
                         {&v_, bias(v_bias_), v.reshape({t, c_.num_kv_heads * d})}});
  Tensor attn = ctx.tensor({t, c_.num_heads, d});
  ctx.be.rope_cache_attention(ctx.batch, q, k, v, ctx.kv, rope_, c_.num_kv_heads,
                              1.0f / std::sqrt(static_cast<float>(d)), attn);
  Tensor out = ctx.tensor({t, c_.hidden_size});
  ctx.be.linear(attn.reshape({t, c_.num_heads * d}), o_, nullptr, out);
  return out;
}

}  // namespace dsinfer
