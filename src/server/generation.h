// Generation: one request running on the Engine, seen from an HTTP handler thread.
// The engine calls back on its own thread for every token; that callback must never block, so
// it only detokenizes, matches stop strings and appends to a pending update. The handler thread
// takes the pending update whenever it is ready to write (updates that pile up while it writes
// are merged, which keeps a slow client from slowing the engine). Destroying a Generation that
// has not finished cancels it, so every way a handler can leave (client gone, timeout, error)
// frees the request's KV blocks.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/completion_result.h"
#include "text/tokenizer.h"

namespace dsinfer {

using Clock = std::chrono::steady_clock;

// What a generation produced since the previous take().
struct GenerationUpdate {
  std::string text;
  std::vector<int> tokens;
  std::vector<TokenLogprob> logprobs;
  bool finished = false;
  FinishReason reason = FinishReason::None;
  std::string error;  // when reason == Error
  int prompt_tokens = 0, completion_tokens = 0, cached_prompt_tokens = 0;
};

struct GenerationTimes {
  Clock::time_point arrival, first_token, last_token;
  int tokens = 0;
};

struct GenerationSpec {
  GenerationRequest request;
  const Tokenizer* tokenizer = nullptr;  // null: a model without one (no text, only ids)
  std::vector<std::string> stop;
  bool skip_special_tokens = true;
  Clock::time_point arrival;
};

class Generation {
 public:
  // Submits to the engine. Throws EngineFull when its queue is full, Error when the request can
  // never fit.
  Generation(Engine& engine, GenerationSpec spec);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Waits until there is something new or `until` passes; returns it merged, nullopt on
  // timeout. After the finished update has been taken, returns nullopt at once.
  std::optional<GenerationUpdate> take(Clock::time_point until);
  // Stops the request; the engine frees its KV blocks before its next step.
  void cancel();
  bool finished() const;
  GenerationTimes times() const;

 private:
  struct State;
  Engine& engine_;
  std::shared_ptr<State> state_;  // shared with the engine callback
  uint64_t request_id_ = 0;
};

}  // namespace dsinfer
