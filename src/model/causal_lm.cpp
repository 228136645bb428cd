#include "model/causal_lm.h"

#include "core/error.h"

namespace dsinfer {

CausalLM::CausalLM(const ModelConfig& config, Backend& backend, TensorStore store)
    : config_(config), backend_(backend), store_(std::move(store)), arena_(backend) {
  RopeSpec spec = compute_rope(config_);
  WeightLoader w = loader();
  rope_.inv_freq = w.upload_f32(spec.inv_freq, {static_cast<int64_t>(spec.inv_freq.size())});
  rope_.attention_factor = spec.attention_factor;
  rope_.style = spec.style;
}

void CausalLM::load_common(WeightLoader& w) {
  const int h = config_.hidden_size, v = config_.vocab_size;
  embed_ = w.get("model.embed_tokens.weight", {v, h});
  norm_ = w.get("model.norm.weight", {h});
  lm_head_ = config_.tie_word_embeddings && !w.has("lm_head.weight") ? embed_ : w.get("lm_head.weight", {v, h});
  layers_.resize(config_.num_layers);
  for (int l = 0; l < config_.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    layers_[l].input_norm = w.get(p + "input_layernorm.weight", {h});
    layers_[l].post_attention_norm = w.get(p + "post_attention_layernorm.weight", {h});
  }
}

KvCacheSpec CausalLM::kv_spec() const {
  KvCacheSpec s;
  s.num_layers = config_.num_layers;
  s.dtype = backend_.act_dtype();
  if (config_.is_deepseek()) {
    s.k_width = config_.kv_lora_rank + config_.qk_rope_head_dim;
  } else {
    s.k_width = s.v_width = config_.num_kv_heads * config_.head_dim;
  }
  return s;
}

size_t CausalLM::weight_bytes() const {
  size_t total = 0;
  for (const std::string& name : store_.names()) total += store_.get(name).view.nbytes();
  return total;
}

Tensor CausalLM::forward(const ForwardBatch& batch, KvCache& cache) {
  const int64_t t = batch.num_tokens(), h = config_.hidden_size;
  if (t == 0) fail("forward: empty batch");
  arena_.reset();
  backend_.begin_forward(batch);
  const DType act = backend_.act_dtype();
  Tensor x = arena_.tensor(act, {t, h});
  backend_.embedding(batch, embed_, x);
  Tensor normed = arena_.tensor(act, {t, h});
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (int l = 0; l < config_.num_layers; ++l) {
    LayerContext ctx{backend_, arena_, batch, cache.layer(l), act};
    DecoderLayer& layer = layers_[l];
    backend_.rmsnorm(x, layer.input_norm, eps, normed);
    backend_.add(x, layer.attention->forward(ctx, normed));
    backend_.rmsnorm(x, layer.post_attention_norm, eps, normed);
    backend_.add(x, layer.ffn->forward(ctx, normed));
  }
  const int64_t rows = static_cast<int64_t>(batch.logit_rows.size());
  Tensor last = arena_.tensor(act, {rows, h});
  backend_.gather_rows(x, batch.logit_rows, last);
  backend_.rmsnorm(last, norm_, eps, last);
  Tensor logits = arena_.tensor(DType::F32, {rows, config_.vocab_size});
  backend_.linear(last, lm_head_, nullptr, logits);
  return logits;
}

}  // namespace dsinfer
