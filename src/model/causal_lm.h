// CausalLM: the decoder stack shared by every family: embedding, pre-norm layers of
// (attention block, feed-forward block) with residuals, final norm, LM head on the rows that
// need logits. Family files (dense_model.cpp, deepseek_model.cpp) only choose the blocks.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "backend/arena.h"
#include "core/progress.h"
#include "io/safetensors.h"
#include "model/layer.h"
#include "model/model.h"
#include "model/mtp_layer.h"
#include "model/rope.h"
#include "model/step_graphs.h"
#include "model/weight_loader.h"

namespace dsinfer {

struct DecoderLayer {
  Weight input_norm, post_attention_norm;
  std::unique_ptr<AttentionBlock> attention;
  std::unique_ptr<FeedForward> ffn;
};

class CausalLM : public Model {
 public:
  CausalLM(const ModelConfig& config, Backend& backend, std::shared_ptr<const TensorStore> store,
           const ModelOptions& options);

  const ModelConfig& config() const override { return config_; }
  KvCacheSpec kv_spec() const override;
  size_t weight_bytes() const override;
  Tensor forward(const ForwardBatch& batch, KvCache& cache) override;
  void record_decode_steps(int max_batch, KvCache& cache, bool drafts = false) override;
  bool has_mtp() const override { return mtp_ != nullptr; }
  Tensor mtp_forward(const ForwardBatch& batch, const std::vector<int>& hidden_rows, KvCache& cache,
                     bool chained = false) override;

 protected:
  // Loads the embedding, final norm, head and per-layer norms; the family adds the blocks (and
  // the MTP layer, when `mtp`).
  void load_common(WeightLoader& w, bool mtp = false);
  WeightLoader loader() {
    return WeightLoader(*store_, backend_, config_, storage_, weight_bytes_, quantized_ ? &*quantized_ : nullptr);
  }
  // Reports layer l loaded (a log line every few seconds of a long load).
  void layer_loaded(int l);

  ModelConfig config_;
  Backend& backend_;
  std::shared_ptr<const TensorStore> store_;
  Shard shard_;
  std::optional<LinearWeightNames> quantized_;  // --quantization fp8: the weights to quantize as they load
  KvCacheDtype kv_dtype_;
  std::vector<Buffer> storage_;  // device copies of weights (none when weights are used in place)
  size_t weight_bytes_ = 0;      // of the weights the model holds (WeightLoader counts them)
  RopeParams rope_;
  Weight embed_, norm_, lm_head_;  // embed_ and lm_head_: this rank's slice of the vocabulary
  int64_t vocab_share_ = 0;         // its entries
  std::vector<DecoderLayer> layers_;
  std::unique_ptr<MtpLayer> mtp_;  // the family loads it under ModelOptions::mtp

 private:
  // What run_ops leaves: the step's output, and the final hidden states of every token.
  struct Pass {
    StepOutput out;
    Tensor token_hidden;
  };
  // The layers, final norm and head over a batch already uploaded by begin_forward.
  Pass run_ops(const ForwardBatch& batch, KvCache& cache, Arena& arena);
  // The batch's token embeddings [T, hidden] (summed over a tensor-parallel group's vocabulary slices).
  Tensor embed(const ForwardBatch& batch, Arena& arena);
  // The head's logits [rows, vocab] (F32) of normalized hidden states [rows, hidden].
  Tensor logits(const Tensor& rows, Arena& arena);

  Arena arena_;
  Arena mtp_arena_;     // the MTP layer's scratch: its pass reads the last forward's hidden states
  Tensor step_hidden_;  // the last forward's final hidden states, a row per token, for the MTP layer
  Buffer mtp_rows_;     // the MTP layer's output at its last logit rows, for a chained pass
  Tensor mtp_hidden_;   // those rows, in mtp_rows_
  Progress load_progress_;
  std::unique_ptr<StepGraphs> graphs_;  // set by record_decode_steps
};

std::unique_ptr<Model> make_dense_model(const ModelConfig& c, Backend& backend, std::shared_ptr<const TensorStore> store,
                                        const ModelOptions& options);
std::unique_ptr<Model> make_deepseek_model(const ModelConfig& c, Backend& backend,
                                          std::shared_ptr<const TensorStore> store, const ModelOptions& options);

}  // namespace dsinfer
