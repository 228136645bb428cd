#include "model/tensor_parallel.h"

#include "core/error.h"
#include "core/log.h"

namespace dsinfer {

TensorParallelModel::TensorParallelModel(Backend& first, std::vector<std::unique_ptr<Backend>> others,
                                         std::vector<std::unique_ptr<Model>> models,
                                         std::unique_ptr<RankThreads> threads, bool expert_parallel)
    : first_(first),
      others_(std::move(others)),
      models_(std::move(models)),
      caches_(others_.size()),
      threads_(std::move(threads)) {
  layout_.tp = static_cast<int>(models_.size());
  layout_.ep = expert_parallel ? layout_.tp : 1;
  if (models_.size() != others_.size() + 1 || threads_->ranks() != static_cast<int>(models_.size()))
    fail("tensor-parallel model: ", models_.size(), " ranks for ", others_.size() + 1, " backends and ",
         threads_->ranks(), " threads");
}

// Made (or remade, when the engine's cache changed shape) on the caller's thread, before the
// ranks' threads use them.
std::vector<KvCache*> TensorParallelModel::caches_like(KvCache& first) {
  std::vector<KvCache*> out{&first};
  for (size_t r = 1; r < models_.size(); ++r) {
    std::unique_ptr<KvCache>& c = caches_[r - 1];
    if (!c || c->num_blocks() != first.num_blocks() || c->block_size() != first.block_size()) {
      c.reset();
      c = std::make_unique<KvCache>(*others_[r - 1], first.spec(), first.num_blocks(), first.block_size());
    }
    out.push_back(c.get());
  }
  return out;
}

std::string TensorParallelModel::failure() const {
  std::lock_guard lock(failure_mu_);
  return failure_;
}

void TensorParallelModel::on_every_rank(const std::function<void(int)>& job) {
  if (const std::string f = failure(); !f.empty()) fail("tensor-parallel group stopped after a rank failed: ", f);
  try {
    threads_->run(job, [&] {
      if (aborting_.exchange(true)) return;  // once, whichever rank fails first
      first_.abort_group();
      for (auto& b : others_) b->abort_group();
    });
  } catch (const std::exception& e) {
    std::lock_guard lock(failure_mu_);
    failure_ = e.what();
    throw;
  }
}

Tensor TensorParallelModel::forward(const ForwardBatch& batch, KvCache& cache) {
  check_batch(batch, config().vocab_size);
  const std::vector<KvCache*> caches = caches_like(cache);
  Tensor logits;
  on_every_rank([&](int r) {
    Tensor out = models_[r]->forward(batch, *caches[r]);
    if (r == 0) logits = out;
  });
  return logits;
}

Tensor TensorParallelModel::mtp_forward(const ForwardBatch& batch, const std::vector<int>& hidden_rows,
                                        KvCache& cache, bool chained) {
  // Checked here, before any rank starts: a rank that fails stops the whole group.
  check_batch(batch, config().vocab_size);
  if (hidden_rows.size() != batch.tokens.size())
    fail("mtp_forward: ", hidden_rows.size(), " hidden rows for ", batch.tokens.size(), " tokens");
  const std::vector<KvCache*> caches = caches_like(cache);
  Tensor logits;
  on_every_rank([&](int r) {
    Tensor out = models_[r]->mtp_forward(batch, hidden_rows, *caches[r], chained);
    if (r == 0) logits = out;
  });
  return logits;
}

void TensorParallelModel::record_decode_steps(int max_batch, KvCache& cache, bool drafts) {
  const std::vector<KvCache*> caches = caches_like(cache);
  on_every_rank([&](int r) { models_[r]->record_decode_steps(max_batch, *caches[r], drafts); });
}

std::unique_ptr<Model> load_tensor_parallel(const ModelConfig& config, std::shared_ptr<const TensorStore> store,
                                            std::vector<std::unique_ptr<Backend>>& backends, const ModelOptions& options) {
  const int size = static_cast<int>(backends.size());
  if (size < 1) fail("tensor parallelism over no backend");
  if (options.expert_parallel && (size == 1 || config.n_routed_experts == 0))
    log_warn("--expert-parallel: ", size == 1 ? "one device holds every expert" : "the model has no routed experts",
             ", so there is nothing to split");
  if (size == 1) return load_model(config, std::move(store), *backends[0], options);
  auto threads = std::make_unique<RankThreads>(size);
  std::vector<std::unique_ptr<Model>> models(size);
  threads->run(
      [&](int r) {
        ModelOptions o = options;
        o.shard = Shard{r, size};
        models[r] = load_model(config, store, *backends[r], o);
      },
      [] {});  // loading waits on no other rank
  std::vector<std::unique_ptr<Backend>> others;
  for (int r = 1; r < size; ++r) others.push_back(std::move(backends[r]));
  backends.resize(1);
  return std::make_unique<TensorParallelModel>(*backends[0], std::move(others), std::move(models), std::move(threads),
                                               options.expert_parallel && config.n_routed_experts > 0);
}

}  // namespace dsinfer
