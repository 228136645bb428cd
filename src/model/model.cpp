#include "model/model.h"

#include "core/log.h"
#include "model/causal_lm.h"

namespace dsinfer {

std::unique_ptr<Model> load_model(const ModelDir& dir, Backend& backend) {
  ModelConfig config = ModelConfig::from_json(dir.config);
  log_info("loading ", config.architecture, " from ", dir.path);
  return load_model(config, TensorStore::open_dir(dir.path), backend);
}

std::unique_ptr<Model> load_model(const ModelConfig& config, TensorStore store, Backend& backend) {
  log_info(config.architecture, ": ", store.size(), " tensors, ", config.num_layers, " layers, on ", backend.name());
  if (config.is_deepseek()) return make_deepseek_model(config, backend, std::move(store));
  return make_dense_model(config, backend, std::move(store));
}

}  // namespace dsinfer
