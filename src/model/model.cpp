#include "model/model.h"

#include "core/error.h"
#include "core/log.h"
#include "model/causal_lm.h"

namespace dsinfer {

MlaPrefill parse_mla_prefill(const std::string& s) {
  if (s == "auto") return MlaPrefill::Auto;
  if (s == "absorbed") return MlaPrefill::Absorbed;
  if (s == "expanded") return MlaPrefill::Expanded;
  fail("MLA prefill form '", s, "': expected auto, absorbed or expanded");
}

KvCacheDtype parse_kv_cache_dtype(const std::string& s) {
  if (s == "auto") return KvCacheDtype::Auto;
  if (s == "fp8") return KvCacheDtype::Fp8;
  fail("KV cache dtype '", s, "': expected auto or fp8");
}

Tensor Model::mtp_forward(const ForwardBatch&, const std::vector<int>&, KvCache&, bool) {
  fail("this model has no multi-token-prediction layer loaded");
}

void check_batch(const ForwardBatch& batch, int vocab) {
  if (batch.num_tokens() == 0) fail("forward: empty batch");
  for (int t = 0; t < batch.num_tokens(); ++t)
    if (batch.tokens[t] < 0 || batch.tokens[t] >= vocab)
      fail("token id ", batch.tokens[t], " at position ", t, " is outside the vocabulary of ", vocab);
}

std::unique_ptr<Model> load_model(const ModelDir& dir, Backend& backend, const ModelOptions& options) {
  ModelConfig config = ModelConfig::from_json(dir.config);
  log_info("loading ", config.architecture, " from ", dir.path);
  return load_model(config, std::make_shared<const TensorStore>(TensorStore::open_dir(dir.path)), backend, options);
}

std::unique_ptr<Model> load_model(const ModelConfig& stored_config, std::shared_ptr<const TensorStore> store,
                                  Backend& backend, const ModelOptions& options) {
  const ModelConfig config = quantized_config(stored_config, options.quantization);
  const Shard& shard = options.shard;
  if (shard.size < 1 || shard.rank < 0 || shard.rank >= shard.size)
    fail("tensor-parallel rank ", shard.rank, " of ", shard.size);
  if (!config.unsupported.empty()) {
    std::string what;
    for (const std::string& f : config.unsupported) what += (what.empty() ? "" : ", ") + f;
    fail("config.json: this ", config.architecture, " asks for what the engine does not implement: ", what);
  }
  log_info(config.architecture, ": ", store->size(), " tensors, ", config.num_layers, " layers, on ", backend.name(),
           shard.size > 1 ? cat(" (tensor-parallel rank ", shard.rank, " of ", shard.size, ")") : std::string());
  if (options.mtp && !config.is_deepseek())
    fail("this ", config.architecture, " has no multi-token-prediction layer to draft with (DeepSeek-V3 / R1 ship one)");
  if (config.is_deepseek()) return make_deepseek_model(config, backend, std::move(store), options);
  return make_dense_model(config, backend, std::move(store), options);
}

}  // namespace dsinfer
