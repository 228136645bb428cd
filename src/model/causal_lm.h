// CausalLM: the decoder stack shared by every family: embedding, pre-norm layers of
// (attention block, feed-forward block) with residuals, final norm, LM head on the rows that
// need logits. Family files (dense_model.cpp, deepseek_model.cpp) only choose the blocks.
#pragma once
#include <memory>
#include <vector>

#include "backend/arena.h"
#include "core/progress.h"
#include "io/safetensors.h"
#include "model/layer.h"
#include "model/model.h"
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
  CausalLM(const ModelConfig& config, Backend& backend, std::shared_ptr<const TensorStore> store, Shard shard);

  const ModelConfig& config() const override { return config_; }
  KvCacheSpec kv_spec() const override;
  size_t weight_bytes() const override;
  Tensor forward(const ForwardBatch& batch, KvCache& cache) override;
  void record_decode_steps(int max_batch, KvCache& cache, bool drafts = false) override;

 protected:
  // Loads the embedding, final norm, head and per-layer norms; the family adds the blocks.
  void load_common(WeightLoader& w);
  WeightLoader loader() { return WeightLoader(*store_, backend_, config_, storage_, weight_bytes_); }
  // Reports layer l loaded (a log line every few seconds of a long load).
  void layer_loaded(int l);

  ModelConfig config_;
  Backend& backend_;
  std::shared_ptr<const TensorStore> store_;
  Shard shard_;
  std::vector<Buffer> storage_;  // device copies of weights (none when weights are used in place)
  size_t weight_bytes_ = 0;      // of the weights the model holds (WeightLoader counts them)
  RopeParams rope_;
  Weight embed_, norm_, lm_head_;  // embed_ and lm_head_: this rank's slice of the vocabulary
  int64_t vocab_share_ = 0;         // its entries
  std::vector<DecoderLayer> layers_;

 private:
  // The layers, final norm and head over a batch already uploaded by begin_forward.
  Tensor run_ops(const ForwardBatch& batch, KvCache& cache, Arena& arena);

  Arena arena_;
  Progress load_progress_;
  std::unique_ptr<StepGraphs> graphs_;  // set by record_decode_steps
};

std::unique_ptr<Model> make_dense_model(const ModelConfig& c, Backend& backend, std::shared_ptr<const TensorStore> store,
                                        Shard shard);
std::unique_ptr<Model> make_deepseek_model(const ModelConfig& c, Backend& backend,
                                          std::shared_ptr<const TensorStore> store, const ModelOptions& options);

}  // namespace dsinfer
