#include "model/causal_lm.h"

#include <chrono>

#include "core/error.h"
#include "core/latent_fp8.h"
#include "core/log.h"

namespace dsinfer {

CausalLM::CausalLM(const ModelConfig& config, Backend& backend, std::shared_ptr<const TensorStore> store,
                   const ModelOptions& options)
    : config_(config),
      backend_(backend),
      store_(std::move(store)),
      shard_(options.shard),
      kv_dtype_(options.kv_dtype),
      arena_(backend),
      mtp_arena_(backend),
      load_progress_(options.shard.size > 1 ? cat("rank ", options.shard.rank, ": loading layers")
                                            : std::string("loading layers"),
                     config.num_layers) {
  if (options.quantization == Quantization::Fp8) quantized_.emplace(config_);
  if (kv_dtype_ == KvCacheDtype::Fp8 && !config_.is_deepseek())
    fail("--kv-dtype fp8: the FP8 cache holds MLA latent rows (DeepSeek V2 / V3); ", config_.architecture,
         " caches per-head keys and values");
  RopeSpec spec = compute_rope(config_);
  WeightLoader w = loader();
  rope_.inv_freq = w.upload_f32(spec.inv_freq, {static_cast<int64_t>(spec.inv_freq.size())});
  rope_.attention_factor = spec.attention_factor;
  rope_.style = spec.style;
}

// Under tensor parallelism the embedding and the head are split by vocabulary: a rank looks up
// only the tokens in its slice (zeros for the others, summed over the group) and computes the
// logits of its slice, gathered from every rank.
void CausalLM::load_common(WeightLoader& w, bool mtp) {
  if (shard_.rank == 0) log_unused_layers(*store_, config_, mtp);  // once a group
  const int h = config_.hidden_size, v = config_.vocab_size;
  vocab_share_ = shard_share(v, shard_, "vocabulary entries");
  const Part part = shard_rows(vocab_share_, shard_);
  embed_ = w.get("model.embed_tokens.weight", {v, h}, part);
  norm_ = w.get("model.norm.weight", {h});
  lm_head_ = config_.tie_word_embeddings && !w.has("lm_head.weight") ? embed_ : w.get("lm_head.weight", {v, h}, part);
  layers_.resize(config_.num_layers);
  for (int l = 0; l < config_.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    layers_[l].input_norm = w.get(p + "input_layernorm.weight", {h});
    layers_[l].post_attention_norm = w.get(p + "post_attention_layernorm.weight", {h});
  }
}

void CausalLM::layer_loaded(int l) {
  load_progress_.step(l + 1, cat(weight_bytes_ >> 20, " MiB of weights"));
}

KvCacheSpec CausalLM::kv_spec() const {
  KvCacheSpec s;
  s.num_layers = config_.num_layers + (mtp_ ? 1 : 0);  // the MTP layer's cache last
  s.dtype = backend_.act_dtype();
  if (config_.is_deepseek() && kv_dtype_ == KvCacheDtype::Fp8) {
    s.dtype = DType::U8;  // whole rows of bytes
    s.k_width = latent_fp8_layout(config_.kv_lora_rank, config_.qk_rope_head_dim).row_bytes;
  } else if (config_.is_deepseek()) {
    s.k_width = config_.kv_lora_rank + config_.qk_rope_head_dim;
  } else {
    s.k_width = s.v_width = config_.num_kv_heads / shard_.size * config_.head_dim;
  }
  return s;
}

size_t CausalLM::weight_bytes() const { return weight_bytes_; }

void CausalLM::record_decode_steps(int max_batch, KvCache& cache, bool drafts) {
  graphs_.reset();
  if (max_batch <= 0 || !backend_.can_record()) return;
  graphs_ = std::make_unique<StepGraphs>(backend_, max_batch, cache.block_size());
  const auto start = std::chrono::steady_clock::now();
  const int recorded =
      graphs_->record_all([&](const ForwardBatch& b, Arena& a) { return run_ops(b, cache, a).out; }, drafts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (recorded > 0)
    log_info("recorded decode steps of 1 to ", max_batch, " sequences", drafts ? " (with drafts: up to 8 tokens each)" : "",
             " as ", recorded, " CUDA graphs in ", seconds, " s");
}

Tensor CausalLM::forward(const ForwardBatch& batch, KvCache& cache) {
  check_batch(batch, config_.vocab_size);
  if (graphs_) {
    // A recorded step's tokens are its logit rows, in order.
    auto out = graphs_->run(batch, [&](const ForwardBatch& b, Arena& a) { return run_ops(b, cache, a).out; });
    if (out) {
      step_hidden_ = out->hidden;
      return out->logits;
    }
  }
  arena_.reset();
  backend_.begin_forward(batch);
  Pass pass = run_ops(batch, cache, arena_);
  step_hidden_ = pass.token_hidden;
  return pass.out.logits;
}

Tensor CausalLM::mtp_forward(const ForwardBatch& batch, const std::vector<int>& hidden_rows, KvCache& cache,
                             bool chained) {
  if (!mtp_) return Model::mtp_forward(batch, hidden_rows, cache, chained);
  check_batch(batch, config_.vocab_size);
  const Tensor& source = chained ? mtp_hidden_ : step_hidden_;
  if (hidden_rows.size() != batch.tokens.size())
    fail("mtp_forward: ", hidden_rows.size(), " hidden rows for ", batch.tokens.size(), " tokens");
  const int64_t available = source.data ? source.dim(0) : 0;
  for (int r : hidden_rows)
    if (r < 0 || r >= available)
      fail("mtp_forward: hidden row ", r, " of ", chained ? "an MTP pass" : "a forward", " of ", available, " rows");
  const int64_t t = batch.num_tokens(), h = config_.hidden_size, rows = static_cast<int64_t>(batch.logit_rows.size());
  const DType act = backend_.act_dtype();
  mtp_arena_.reset();
  backend_.begin_forward(batch);
  Tensor hidden = mtp_arena_.tensor(act, {t, h});
  backend_.gather_rows(source, hidden_rows, hidden);
  LayerContext ctx{backend_, mtp_arena_, batch, cache.layer(config_.num_layers), act};
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const MtpLayer::Output out = mtp_->forward(ctx, embed(batch, mtp_arena_), hidden, eps);
  // The logit rows' outputs outlive this pass's scratch, which the next pass reuses as it reads them.
  // A chained pass has no more rows than the pass before it, so only a first pass (which reads
  // the main model's hidden states) may grow the buffer.
  const size_t bytes = static_cast<size_t>(rows * h) * dtype_size(act);
  if (mtp_rows_.bytes() < bytes) mtp_rows_ = backend_.alloc(bytes);
  mtp_hidden_ = Tensor{act, {rows, h}, mtp_rows_.data(), backend_.device()};
  backend_.gather_rows(out.hidden, batch.logit_rows, mtp_hidden_);
  Tensor normed = ctx.tensor({rows, h});
  backend_.gather_rows(out.normed, batch.logit_rows, normed);
  return logits(normed, mtp_arena_);
}

Tensor CausalLM::embed(const ForwardBatch& batch, Arena& arena) {
  Tensor x = arena.tensor(backend_.act_dtype(), {batch.num_tokens(), config_.hidden_size});
  backend_.embedding(batch, embed_, shard_.rank * vocab_share_, x);
  backend_.all_reduce_sum(x);  // nothing to add outside a group
  return x;
}

// Each residual add is fused with the norm that follows it: the next layer's input norm, or
// the final norm after the last layer (over every token: cheap, and it keeps one op sequence).
CausalLM::Pass CausalLM::run_ops(const ForwardBatch& batch, KvCache& cache, Arena& arena) {
  const int64_t t = batch.num_tokens(), h = config_.hidden_size;
  const DType act = backend_.act_dtype();
  const float eps = static_cast<float>(config_.rms_norm_eps);
  Tensor x = embed(batch, arena);
  Tensor normed = arena.tensor(act, {t, h});
  backend_.rmsnorm(x, layers_.front().input_norm, eps, normed);
  // A block's scratch is dead once its residual add is queued: the next block reuses it.
  const Arena::Mark block_start = arena.mark();
  for (int l = 0; l < config_.num_layers; ++l) {
    LayerContext ctx{backend_, arena, batch, cache.layer(l), act};
    DecoderLayer& layer = layers_[l];
    backend_.add_rmsnorm(x, layer.attention->forward(ctx, normed), layer.post_attention_norm, eps, normed);
    arena.rewind(block_start);
    const Weight& next_norm = l + 1 < config_.num_layers ? layers_[l + 1].input_norm : norm_;
    layer.ffn->forward_residual(ctx, normed, {x, &next_norm, eps, normed});
    arena.rewind(block_start);
  }
  Tensor last = arena.tensor(act, {static_cast<int64_t>(batch.logit_rows.size()), h});
  backend_.gather_rows(normed, batch.logit_rows, last);
  return Pass{StepOutput{logits(last, arena), last}, normed};
}

Tensor CausalLM::logits(const Tensor& rows_hidden, Arena& arena) {
  const int64_t rows = rows_hidden.dim(0);
  Tensor out = arena.tensor(DType::F32, {rows, config_.vocab_size});
  if (rows == 0) return out;  // nothing to sample (prompt chunks that go on)
  if (shard_.size == 1) {
    backend_.linear(rows_hidden, lm_head_, nullptr, out);
    return out;
  }
  Tensor part = arena.tensor(DType::F32, {rows, vocab_share_});
  backend_.linear(rows_hidden, lm_head_, nullptr, part);
  Tensor parts = arena.tensor(DType::F32, {shard_.size, rows, vocab_share_});
  backend_.all_gather(part, parts);
  const int n = static_cast<int>(vocab_share_);
  for (int r = 0; r < shard_.size; ++r)
    backend_.copy_columns(parts.slice_rows(r, r + 1).reshape({rows, vocab_share_}), 0, out, r * n, n);
  return out;
}

}  // namespace dsinfer
