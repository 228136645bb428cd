#include "runtime/loaded_model.h"

#include <chrono>

#include "core/error.h"
#include "core/log.h"

namespace dsinfer {

const Tokenizer& LoadedModel::require_tokenizer() const {
  if (!tokenizer) fail("model directory '", dir.path, "' has no tokenizer.json: give token ids instead of text");
  return *tokenizer;
}

LoadedModel load_for_generation(const std::string& path, const std::string& device) {
  auto start = std::chrono::steady_clock::now();
  LoadedModel m;
  m.dir = ModelDir::open(path);
  m.backend = make_backend(parse_device(device));
  m.model = load_model(m.dir, *m.backend);
  if (m.dir.tokenizer_json) m.tokenizer = Tokenizer::from_model_dir(m.dir);
  m.defaults = generation_defaults(m.dir, m.model->config());
  m.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("loaded in ", m.load_seconds, " s (", m.model->weight_bytes() / (1 << 20), " MiB of weights)");
  return m;
}

}  // namespace dsinfer
