#include "model/mtp_layer.h"

namespace dsinfer {

MtpLayer::MtpLayer(WeightLoader& w, const std::string& prefix, int hidden, std::unique_ptr<AttentionBlock> attention,
                   std::unique_ptr<FeedForward> ffn)
    : attention_(std::move(attention)), ffn_(std::move(ffn)) {
  const int64_t h = hidden;
  enorm_ = w.get(prefix + "enorm.weight", {h});
  hnorm_ = w.get(prefix + "hnorm.weight", {h});
  eh_proj_ = w.get(prefix + "eh_proj.weight", {h, 2 * h});
  input_norm_ = w.get(prefix + "input_layernorm.weight", {h});
  post_attention_norm_ = w.get(prefix + "post_attention_layernorm.weight", {h});
  head_norm_ = w.get(prefix + "shared_head.norm.weight", {h});
}

MtpLayer::Output MtpLayer::forward(LayerContext& ctx, const Tensor& embedded, const Tensor& hidden, float eps) {
  const int64_t t = embedded.dim(0), h = embedded.dim(1);
  // The two normalized halves side by side, for one product with eh_proj.
  Tensor halves = ctx.tensor({t, 2 * h});
  Tensor normed = ctx.tensor({t, h});
  ctx.be.rmsnorm(embedded, enorm_, eps, normed);
  ctx.be.copy_columns(normed, 0, halves, 0, static_cast<int>(h));
  ctx.be.rmsnorm(hidden, hnorm_, eps, normed);
  ctx.be.copy_columns(normed, 0, halves, static_cast<int>(h), static_cast<int>(h));
  Tensor x = ctx.tensor({t, h});
  ctx.be.linear(halves, eh_proj_, nullptr, x);
  // The decoder layer, its residual stream starting at x; its last step normalizes for the head.
  ctx.be.rmsnorm(x, input_norm_, eps, normed);
  ctx.be.add_rmsnorm(x, attention_->forward(ctx, normed), post_attention_norm_, eps, normed);
  ffn_->forward_residual(ctx, normed, {x, &head_norm_, eps, normed});
  return {x, normed};
}

}  // namespace dsinfer
