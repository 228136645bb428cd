#include "runtime/loaded_model.h"

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "model/dummy_weights.h"
#include "model/tensor_parallel.h"
#include "plan/model_catalog.h"

namespace dsinfer {

const Tokenizer& LoadedModel::require_tokenizer() const {
  if (!tokenizer) fail("model directory '", dir.path, "' has no tokenizer.json: give token ids instead of text");
  return *tokenizer;
}

namespace {

// The config of a dummy model: a catalog name or a directory, optionally truncated in depth.
ModelDir dummy_model_dir(const std::string& spec, int num_layers) {
  ModelDir d;
  if (std::filesystem::is_directory(spec)) {
    d = ModelDir::open(spec);
  } else {
    d.path = spec;
    d.config = plan::catalog_config(spec);
  }
  if (num_layers < 0) fail("--num-layers must be at least 1, got ", num_layers);
  if (num_layers > 0) {
    if (num_layers > d.config.value("num_hidden_layers", 0))
      fail("--num-layers ", num_layers, " exceeds the model's ", d.config.value("num_hidden_layers", 0), " layers");
    d.config["num_hidden_layers"] = num_layers;
  }
  return d;
}

}  // namespace

LoadedModel load_for_generation(const std::string& path, const LoadOptions& options) {
  auto start = std::chrono::steady_clock::now();
  LoadedModel m;
  std::vector<std::unique_ptr<Backend>> backends = make_backend_group(parse_device(options.device), options.tensor_parallel);
  if (options.dummy_weights) {
    m.dir = dummy_model_dir(path, options.num_layers);
  } else {
    if (options.num_layers != 0) fail("--num-layers needs --dummy-weights");
    m.dir = ModelDir::open(path);
  }
  // The quantized config already here: dummy weights are made in the format the model runs.
  const ModelConfig config = quantized_config(ModelConfig::from_json(m.dir.config), options.model.quantization);
  if (!options.dummy_weights) log_info("loading ", config.architecture, " from ", m.dir.path);
  auto store = std::make_shared<const TensorStore>(options.dummy_weights ? dummy_weights(m.dir.config, config)
                                                                         : TensorStore::open_dir(m.dir.path));
  m.model = load_tensor_parallel(config, std::move(store), backends, options.model);
  m.backend = std::move(backends.front());
  if (m.dir.tokenizer_json) m.tokenizer = Tokenizer::from_model_dir(m.dir);
  m.defaults = generation_defaults(m.dir, m.model->config());
  m.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("loaded in ", m.load_seconds, " s (", m.model->weight_bytes() / (1 << 20), " MiB of weights",
           options.model.quantization == Quantization::Fp8 ? ", linear ones in FP8" : "", ")");
  return m;
}

}  // namespace dsinfer
