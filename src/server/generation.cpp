#include "server/generation.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "text/stop_matcher.h"
#include "text/incremental_detokenizer.h"

namespace dsinfer {

// One lock for all choices of a generation: take() waits for any of them.
struct Generation::Shared {
  std::mutex mutex;
  std::condition_variable ready;
};

struct Generation::State {
  State(const GenerationSpec& spec, std::shared_ptr<Shared> shared, int index)
      : shared(std::move(shared)), tokenizer(spec.tokenizer), stop(spec.stop), eos_ids(spec.request.eos_ids),
        want_logprobs(spec.request.sampling.top_logprobs >= 0), prompt_tokens(static_cast<int>(spec.request.prompt.size())) {
    if (tokenizer) detok.emplace(*tokenizer, spec.skip_special_tokens);
    times.arrival = spec.arrival;
    pending.index = index;
  }

  // The engine callback (engine thread): never blocks beyond this short critical section.
  bool on_event(const TokenEvent& ev) {
    std::lock_guard lock(shared->mutex);
    if (finished) return false;
    for (const SampleResult& p : ev.prompt_logprobs)  // only when the request asked for them
      pending.prompt_logprobs.push_back({p.token, p.logprob, p.top_logprobs, p.rank});
    if (ev.token >= 0) {
      append_token(ev);
      if (stop.stopped()) {
        finish(FinishReason::Stop, ev);
        return false;
      }
    }
    if (ev.finished) finish(ev.reason, ev);
    has_pending = true;
    shared->ready.notify_all();
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
    shared->ready.notify_all();
  }

  // The update since the last take (under the shared lock).
  GenerationUpdate take() {
    GenerationUpdate out = std::move(pending);
    pending = GenerationUpdate{};
    pending.index = out.index;
    has_pending = false;
    if (out.finished) delivered_end = true;
    return out;
  }

  std::shared_ptr<Shared> shared;
  const Tokenizer* tokenizer;
  std::optional<IncrementalDetokenizer> detok;
  StopMatcher stop;
  std::vector<int> eos_ids;
  bool want_logprobs;
  int prompt_tokens;

  GenerationUpdate pending;
  bool has_pending = false;
  bool finished = false;       // the engine is done with the request, or was told to stop
  bool delivered_end = false;  // the finished update was taken
  GenerationTimes times;
};

Generation::Generation(Engine& engine, GenerationSpec spec) : engine_(engine), shared_(std::make_shared<Shared>()) {
  for (int i = 0; i < std::max(spec.n, 1); ++i) states_.push_back(std::make_shared<State>(spec, shared_, i));
  try {
    for (int i = 0; i < choices(); ++i) {
      GenerationRequest r = spec.request;
      if (r.sampling.seed) *r.sampling.seed += static_cast<uint64_t>(i);
      request_ids_.push_back(engine_.submit(std::move(r), [state = states_[i]](const TokenEvent& ev) {
        return state->on_event(ev);
      }));
    }
  } catch (...) {
    cancel();  // the choices submitted before the one refused
    throw;
  }
}

Generation::~Generation() {
  if (!finished()) cancel();
}

std::optional<GenerationUpdate> Generation::take(Clock::time_point until) {
  std::unique_lock lock(shared_->mutex);
  auto waiting = [&]() -> State* {
    for (size_t k = 0; k < states_.size(); ++k) {
      State* s = states_[(next_ + k) % states_.size()].get();
      if (s->has_pending && !s->delivered_end) return s;
    }
    return nullptr;
  };
  auto all_delivered = [&] {
    return std::all_of(states_.begin(), states_.end(), [](const auto& s) { return s->delivered_end; });
  };
  if (all_delivered()) return std::nullopt;
  State* s = nullptr;
  if (!shared_->ready.wait_until(lock, until, [&] { return (s = waiting()) != nullptr; })) return std::nullopt;
  next_ = (static_cast<size_t>(s->pending.index) + 1) % states_.size();
  return s->take();
}

void Generation::cancel() {
  for (uint64_t id : request_ids_) engine_.cancel(id);
}

bool Generation::finished() const {
  std::lock_guard lock(shared_->mutex);
  return std::all_of(states_.begin(), states_.end(), [](const auto& s) { return s->finished; });
}

GenerationTimes Generation::times() const {
  std::lock_guard lock(shared_->mutex);
  return states_.front()->times;
}

}  // namespace dsinfer
