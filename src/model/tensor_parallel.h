// TensorParallelModel: one model split over the backends of a tensor-parallel group, behind the
// Model interface, so the engine runs it as it runs one. Every rank holds its part of the weights
// (model/shard.h) and of the KV cache (its key/value heads), runs the same forward pass on its own
// host thread, and meets the others in the all-reduces; the logits are rank 0's.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/rank_threads.h"
#include "model/model.h"

namespace dsinfer {

class TensorParallelModel final : public Model {
 public:
  // models[r] runs on backends[r], on threads[r]; backends[0] stays the caller's (the engine
  // samples on it). The models split their MoE's experts whole under expert_parallel.
  TensorParallelModel(Backend& first, std::vector<std::unique_ptr<Backend>> others,
                      std::vector<std::unique_ptr<Model>> models, std::unique_ptr<RankThreads> threads,
                      bool expert_parallel);

  const ModelConfig& config() const override { return models_[0]->config(); }
  // Per rank: what one device holds.
  KvCacheSpec kv_spec() const override { return models_[0]->kv_spec(); }
  size_t weight_bytes() const override { return models_[0]->weight_bytes(); }
  plan::Layout layout() const override { return layout_; }
  std::string failure() const override;
  // `cache` is rank 0's; every other rank keeps a cache of the same blocks on its device.
  Tensor forward(const ForwardBatch& batch, KvCache& cache) override;
  void record_decode_steps(int max_batch, KvCache& cache, bool drafts = false) override;
  bool has_mtp() const override { return models_[0]->has_mtp(); }
  Tensor mtp_forward(const ForwardBatch& batch, const std::vector<int>& hidden_rows, KvCache& cache,
                     bool chained = false) override;

 private:
  // Every rank's cache: `first` (the engine's, rank 0's) and the others' of the same blocks.
  std::vector<KvCache*> caches_like(KvCache& first);
  // Runs job(r) on every rank's thread. The first failure aborts the group's collectives (ranks
  // waiting in one are released), and the group refuses every later call: its communicators are
  // gone, and recorded steps would replay collectives on them.
  void on_every_rank(const std::function<void(int)>& job);

  // Declared in this order so that the threads stop, then the caches and models go, before the
  // backends they live on.
  Backend& first_;
  std::vector<std::unique_ptr<Backend>> others_;
  std::vector<std::unique_ptr<Model>> models_;
  std::vector<std::unique_ptr<KvCache>> caches_;  // ranks 1..: rank r's at r - 1
  std::unique_ptr<RankThreads> threads_;
  plan::Layout layout_;
  std::atomic<bool> aborting_{false};
  mutable std::mutex failure_mu_;
  std::string failure_;  // the first failure's message, once a step failed
};

// Loads rank r's part of the model on backends[r] for every rank, the ranks at once; rank 0's
// backend stays the caller's. One rank: the model itself.
std::unique_ptr<Model> load_tensor_parallel(const ModelConfig& config, std::shared_ptr<const TensorStore> store,
                                            std::vector<std::unique_ptr<Backend>>& backends, const ModelOptions& options);

}  // namespace dsinfer
