#include "server/generation.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "text/stop_matcher.h"
#include "text/incremental_detokenizer.h"

namespace dsinfer {

struct Generation::State {
  State(const GenerationSpec& spec)
      : tokenizer(spec.tokenizer), stop(spec.stop), eos_ids(spec.request.eos_ids),
        want_logprobs(spec.request.sampling.top_logprobs >= 0), prompt_tokens(static_cast<int>(spec.request.prompt.size())) {
    if (tokenizer) detok.emplace(*tokenizer, spec.skip_special_tokens);
    times.arrival = spec.arrival;
  }

  // The engine callback (engine thread): never blocks beyond this short critical section.
  bool on_event(const TokenEvent& ev) {
    std::lock_guard lock(mutex);
    if (finished) return false;
    if (ev.token >= 0) {
      append_token(ev);
      if (stop.stopped()) {
        finish(FinishReason::Stop, ev);
        return false;
      }
    }
    if (ev.finished) finish(ev.reason, ev);
    has_pending = true;
    ready.notify_all();
    return true;
  }

  void append_token(const TokenEvent& ev) {
    auto now = Clock::now();
    if (times.tokens == 0) times.first_token = now;
    times.last_token = now;
    times.tokens++;
    pending.tokens.push_back(ev.token);
    if (want_logprobs) pending.logprobs.push_back({ev.token, ev.logprob, ev.top_logprobs});
    // An end-of-sequence token ends the text; it is never part of it (as in vLLM).
    bool eos = std::find(eos_ids.begin(), eos_ids.end(), ev.token) != eos_ids.end();
    if (detok && !eos) pending.text += stop.push(detok->push(ev.token));
  }

  void finish(FinishReason reason, const TokenEvent& ev) {
    if (detok && !stop.stopped()) {
      pending.text += stop.push(detok->flush());
      if (!stop.stopped()) pending.text += stop.flush();
    }
    if (stop.stopped()) reason = FinishReason::Stop;
    pending.finished = true;
    pending.reason = reason;
    pending.error = ev.error;
    pending.prompt_tokens = prompt_tokens;
    pending.completion_tokens = times.tokens;
    pending.cached_prompt_tokens = ev.cached_prompt_tokens;
    finished = true;
    has_pending = true;
    ready.notify_all();
  }

  const Tokenizer* tokenizer;
  std::optional<IncrementalDetokenizer> detok;
  StopMatcher stop;
  std::vector<int> eos_ids;
  bool want_logprobs;
  int prompt_tokens;

  std::mutex mutex;
  std::condition_variable ready;
  GenerationUpdate pending;
  bool has_pending = false;
  bool finished = false;       // the engine is done with the request, or was told to stop
  bool delivered_end = false;  // the finished update was taken
  GenerationTimes times;
};

Generation::Generation(Engine& engine, GenerationSpec spec)
    : engine_(engine), state_(std::make_shared<State>(spec)) {
  request_id_ = engine_.submit(std::move(spec.request),
                               [state = state_](const TokenEvent& ev) { return state->on_event(ev); });
}

Generation::~Generation() {
  if (!finished()) cancel();
}

std::optional<GenerationUpdate> Generation::take(Clock::time_point until) {
  std::unique_lock lock(state_->mutex);
  if (state_->delivered_end) return std::nullopt;
  if (!state_->ready.wait_until(lock, until, [&] { return state_->has_pending; })) return std::nullopt;
  GenerationUpdate out = std::move(state_->pending);
  state_->pending = GenerationUpdate{};
  state_->has_pending = false;
  if (out.finished) state_->delivered_end = true;
  return out;
}

void Generation::cancel() { engine_.cancel(request_id_); }

bool Generation::finished() const {
  std::lock_guard lock(state_->mutex);
  return state_->finished;
}

GenerationTimes Generation::times() const {
  std::lock_guard lock(state_->mutex);
  return state_->times;
}

}  // namespace dsinfer
