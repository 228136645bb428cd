// What the engine tests share: a fixture model on the CPU backend, and a greedy request.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../fixture_util.h"
#include "backend/backend.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace dsinfer::testing {

struct Loaded {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  std::unique_ptr<Model> model;
  explicit Loaded(const std::string& name) : model(load_model(ModelDir::open(fixture_dir(name)), *backend)) {}
};

// Greedy decoding of exactly max_tokens (EOS ignored).
inline GenerationRequest greedy(std::vector<int> prompt, int max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  return r;
}

}  // namespace dsinfer::testing
