// Generation: one request running on the Engine, seen from an HTTP handler thread: its n
// choices (OpenAI's `n`), each a sequence of its own in the engine.
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

// What one choice of a generation produced since the previous take() of it.
struct GenerationUpdate {
  int index = 0;  // the choice
  std::string text;
  std::vector<int> tokens;
  std::vector<TokenLogprob> logprobs;
  std::vector<TokenLogprob> prompt_logprobs;  // prompt tokens 1.. (echo with logprobs), in the first update
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
  int n = 1;  // choices; with a seed, choice i samples with seed + i
  const Tokenizer* tokenizer = nullptr;  // null: a model without one (no text, only ids)
  std::vector<std::string> stop;
  bool skip_special_tokens = true;
  Clock::time_point arrival;
};

class Generation {
 public:
  // Submits every choice to the engine. Throws EngineFull when its queue is full, Error when the
  // request can never fit (and then no choice runs).
  Generation(Engine& engine, GenerationSpec spec);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  int choices() const { return static_cast<int>(states_.size()); }
  // Waits until a choice has something new or `until` passes; returns that choice's update,
  // merged (choices take turns), nullopt on timeout. A choice whose finished update has been
  // taken has nothing more; once every choice's has, returns nullopt at once.
  std::optional<GenerationUpdate> take(Clock::time_point until);
  // Stops every choice; the engine frees their KV blocks before its next step.
  void cancel();
  bool finished() const;
  // Choice 0's (latency metrics are a sequence's: TTFT, time per output token).
  GenerationTimes times() const;

 private:
  struct Shared;
  struct State;
  Engine& engine_;
  std::shared_ptr<Shared> shared_;               // the choices' one lock and wake-up
  std::vector<std::shared_ptr<State>> states_;   // a choice each, shared with its engine callback
  std::vector<uint64_t> request_ids_;
  size_t next_ = 0;  // the choice take() looks at first
};

}  // namespace dsinfer
