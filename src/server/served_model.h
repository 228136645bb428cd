// ServedModel: the one model a server answers for, with what turning requests into engine
// work needs: tokenizer and chat template, EOS ids, sampling defaults, reasoning split, engine.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/loaded_model.h"
#include "server/server_options.h"
#include "text/chat_template.h"
#include "text/token_trie.h"

namespace dsinfer {

struct ServedModel {
  std::string name;
  LoadedModel loaded;
  std::optional<ChatTemplate> chat_template;
  std::vector<int> eos_ids;
  SamplingParams defaults;  // what a request that omits a sampling field gets
  bool reasoning = false;   // split <think> ... </think> into reasoning_content
  bool tool_calls = false;  // split DeepSeek tool-call blocks into tool_calls (requests with tools)
  int64_t created = 0;      // Unix time the model was loaded (/v1/models)
  std::unique_ptr<Engine> engine;  // last: destroyed first, while the model it runs exists

  const Tokenizer* tokenizer() const { return loaded.tokenizer ? &*loaded.tokenizer : nullptr; }
  // The tokenizer's vocabulary as a trie, for structured outputs: made on first use (null
  // without a tokenizer). Safe from any thread.
  std::shared_ptr<const TokenTrie> token_trie() const;

 private:
  mutable std::once_flag trie_once_;
  mutable std::shared_ptr<const TokenTrie> trie_;
};

// Loads the model, sizes the KV cache and starts the engine; throws Error naming what failed.
std::unique_ptr<ServedModel> load_served_model(const ServerOptions& options);

}  // namespace dsinfer
