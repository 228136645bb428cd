// Everything generation needs from a model directory, loaded once: the backend for the
// device, the model, its tokenizer (when the directory has one) and generation defaults.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "io/model_dir.h"
#include "model/model.h"
#include "runtime/generation_defaults.h"
#include "text/tokenizer.h"

namespace dsinfer {

struct LoadedModel {
  ModelDir dir;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tokenizer;
  GenerationDefaults defaults;
  double load_seconds = 0;

  // The tokenizer, or an error naming the directory (e.g. for --prompt on an ids-only model).
  const Tokenizer& require_tokenizer() const;
};

struct LoadOptions {
  std::string device = "cpu";
  bool dummy_weights = false;  // random weights at the real shapes; `path` may name a catalog model
  int num_layers = 0;          // > 0: keep only the first N decoder layers (with dummy weights)
  bool enforce_eager = false;  // decode op by op, never from recorded passes (CUDA graphs)
  int tensor_parallel = 1;     // ranks: devices from `device` on (cuda:N.. or CPU threads)
  ModelOptions model;
};

LoadedModel load_for_generation(const std::string& path, const LoadOptions& options);

}  // namespace dsinfer
