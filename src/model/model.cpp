#include "model/model.h"

#include "core/log.h"
#include "model/causal_lm.h"

namespace dsinfer {

std::unique_ptr<Model> load_model(const ModelDir& dir, Backend& backend) {
  ModelConfig config = ModelConfig::from_json(dir.config);
  TensorStore store = TensorStore::open_dir(dir.path);
  log_info("loading ", config.architecture, " from ", dir.path, " (", store.size(), " tensors, ", config.num_layers,
           " layers) on ", backend.name());
  if (config.is_deepseek()) return make_deepseek_model(config, backend, std::move(store));
  return make_dense_model(config, backend, std::move(store));
}

}  // namespace dsinfer
