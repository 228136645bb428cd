#include "model/gqa_attention.h"

#include <cmath>

namespace dsinfer {

GqaAttention::GqaAttention(WeightLoader& w, const std::string& prefix, const ModelConfig& c, const RopeParams& rope)
    : c_(c), rope_(rope) {
  const int h = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  q_ = w.get(prefix + "q_proj.weight", {q_dim, h});
  k_ = w.get(prefix + "k_proj.weight", {kv_dim, h});
  v_ = w.get(prefix + "v_proj.weight", {kv_dim, h});
  o_ = w.get(prefix + "o_proj.weight", {h, q_dim});
  if (c.qkv_bias) {
    q_bias_ = w.get(prefix + "q_proj.bias", {q_dim});
    k_bias_ = w.get(prefix + "k_proj.bias", {kv_dim});
    v_bias_ = w.get(prefix + "v_proj.bias", {kv_dim});
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
  ctx.be.rope_and_cache(ctx.batch, q, k, v, ctx.kv, rope_);
  Tensor attn = ctx.tensor({t, c_.num_heads, d});
  ctx.be.attention(ctx.batch, q, ctx.kv, c_.num_kv_heads, d, d, 1.0f / std::sqrt(static_cast<float>(d)), attn);
  Tensor out = ctx.tensor({t, c_.hidden_size});
  ctx.be.linear(attn.reshape({t, c_.num_heads * d}), o_, nullptr, out);
  return out;
}

}  // namespace dsinfer
