#include "runtime/engine.h"

#include <algorithm>
#include <deque>
#include <set>

#include "core/log.h"
#include "runtime/block_manager.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"
#include "runtime/sequence.h"

namespace dsinfer {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::None: break;
  }
  return "none";
}

namespace {

int64_t cache_tokens(const EngineOptions& o, const KvCacheSpec& spec) {
  int64_t tokens = o.kv_cache_tokens > 0 ? o.kv_cache_tokens
                                         : static_cast<int64_t>(o.kv_cache_bytes / std::max<size_t>(1, spec.bytes_per_token()));
  int64_t blocks = tokens / o.block_size;
  if (blocks < 1) fail("KV cache too small: ", tokens, " tokens is less than one block of ", o.block_size);
  return blocks * o.block_size;
}

}  // namespace

struct Engine::Impl {
  Impl(Model& m, Backend& b, const EngineOptions& o)
      : model(m), backend(b), options(o),
        cache(b, m.kv_spec(), static_cast<int>(cache_tokens(o, m.kv_spec()) / o.block_size), o.block_size),
        blocks(cache.num_blocks(), o.block_size), scheduler(blocks, o) {
    max_len = std::min<int64_t>(m.config().max_position_embeddings, cache.num_tokens());
    log_info("KV cache: ", cache.num_tokens(), " tokens (", cache.num_blocks(), " blocks of ", o.block_size, ", ",
             cache.bytes() / (1 << 20), " MiB); max sequence length ", max_len);
    thread = std::thread([this] { loop(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    thread.join();
  }

  void loop();
  void intake();
  void step();
  ForwardBatch build_batch(const std::vector<ScheduledSeq>& plan) const;
  // Samples one token and reports it; true when the sequence is finished.
  bool advance(Sequence& s, float* logits);
  void finish(uint64_t id, FinishReason reason, const std::string& error = "");
  void publish_stats();

  Model& model;
  Backend& backend;
  EngineOptions options;
  KvCache cache;
  BlockManager blocks;
  Scheduler scheduler;
  int64_t max_len = 0;

  mutable std::mutex mu;
  std::condition_variable cv, idle_cv;
  std::deque<std::unique_ptr<Sequence>> incoming;
  std::set<uint64_t> cancels;
  uint64_t next_id = 1;
  bool stopping = false;
  bool busy = false;
  int scheduler_waiting = 0;
  EngineStats stats;
  int64_t prompt_tokens = 0, generated_tokens = 0, steps = 0;
  std::thread thread;
};

void Engine::Impl::loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stopping || !incoming.empty() || !cancels.empty() || !scheduler.idle(); });
      if (stopping) break;
      busy = true;
    }
    intake();
    step();
    publish_stats();
  }
  // Shutting down: every request still held gets a final event.
  intake();
  for (uint64_t id : scheduler.ids()) finish(id, FinishReason::Cancelled);
}

void Engine::Impl::intake() {
  std::deque<std::unique_ptr<Sequence>> fresh;
  std::set<uint64_t> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu);
    fresh.swap(incoming);
    cancelled.swap(cancels);
  }
  for (auto& s : fresh) {
    prompt_tokens += s->prompt_len;
    scheduler.add(std::move(s));
  }
  for (uint64_t id : cancelled) finish(id, FinishReason::Cancelled);
}

ForwardBatch Engine::Impl::build_batch(const std::vector<ScheduledSeq>& plan) const {
  ForwardBatch b;
  b.block_size = options.block_size;
  for (const ScheduledSeq& sc : plan) {
    const Sequence& s = *sc.seq;
    SeqSlice slice;
    slice.query_start = b.num_tokens();
    slice.query_len = sc.num_tokens;
    slice.context_len = s.computed + sc.num_tokens;
    slice.block_table = s.blocks;
    for (int p = s.computed; p < slice.context_len; ++p) {
      b.tokens.push_back(s.tokens[p]);
      b.positions.push_back(p);
      b.slots.push_back(s.blocks[p / b.block_size] * b.block_size + p % b.block_size);
    }
    if (sc.samples) b.logit_rows.push_back(b.num_tokens() - 1);
    b.seqs.push_back(std::move(slice));
  }
  return b;
}

void Engine::Impl::step() {
  std::vector<ScheduledSeq> plan = scheduler.schedule();
  if (plan.empty()) return;
  ForwardBatch batch = build_batch(plan);
  std::vector<float> logits;
  try {
    Tensor out = model.forward(batch, cache);
    logits.resize(out.numel());
    backend.copy_to_host(out, logits.data());
  } catch (const std::exception& e) {
    log_warn("forward failed for a batch of ", plan.size(), " sequences: ", e.what());
    for (const ScheduledSeq& sc : plan) finish(sc.seq->id, FinishReason::Error, e.what());
    return;
  }
  ++steps;
  const int vocab = model.config().vocab_size;
  int row = 0;
  std::vector<uint64_t> done;
  for (const ScheduledSeq& sc : plan) {
    scheduler.complete(sc);
    if (sc.samples && advance(*sc.seq, logits.data() + static_cast<size_t>(row++) * vocab)) done.push_back(sc.seq->id);
  }
  for (uint64_t id : done) scheduler.remove(id);
}

bool Engine::Impl::advance(Sequence& s, float* logits) {
  const GenerationRequest& r = s.request;
  SampleContext ctx{&s.tokens, &s.generated, r.ignore_eos ? &r.eos_ids : nullptr};
  std::vector<int> prompt(s.tokens.begin(), s.tokens.begin() + s.prompt_len);
  ctx.prompt = &prompt;
  SampleResult res = sample_token(logits, model.config().vocab_size, r.sampling, ctx, s.rng);
  s.tokens.push_back(res.token);
  s.generated.push_back(res.token);
  ++generated_tokens;
  TokenEvent ev;
  ev.request_id = s.id;
  ev.token = res.token;
  ev.logprob = res.logprob;
  ev.top_logprobs = std::move(res.top_logprobs);
  ev.prompt_tokens = s.prompt_len;
  ev.completion_tokens = static_cast<int>(s.generated.size());
  ev.cached_prompt_tokens = s.cached_prompt_tokens;
  const bool eos = !r.ignore_eos && std::find(r.eos_ids.begin(), r.eos_ids.end(), res.token) != r.eos_ids.end();
  if (eos) ev.reason = FinishReason::Stop;
  else if (static_cast<int>(s.generated.size()) >= r.max_tokens || static_cast<int64_t>(s.tokens.size()) >= max_len)
    ev.reason = FinishReason::Length;
  ev.finished = ev.reason != FinishReason::None;
  bool keep_going = true;
  try {
    keep_going = s.callback(ev);
  } catch (const std::exception& e) {
    log_warn("callback of request ", s.id, " threw: ", e.what());
    keep_going = false;
  }
  if (!ev.finished && !keep_going) {
    TokenEvent stop;
    stop.request_id = s.id;
    stop.finished = true;
    stop.reason = FinishReason::Stop;
    stop.prompt_tokens = ev.prompt_tokens;
    stop.completion_tokens = ev.completion_tokens;
    stop.cached_prompt_tokens = ev.cached_prompt_tokens;
    s.callback(stop);
    return true;
  }
  return ev.finished;
}

void Engine::Impl::finish(uint64_t id, FinishReason reason, const std::string& error) {
  std::unique_ptr<Sequence> s = scheduler.remove(id);
  if (!s) return;  // already finished
  TokenEvent ev;
  ev.request_id = id;
  ev.finished = true;
  ev.reason = reason;
  ev.error = error;
  ev.prompt_tokens = s->prompt_len;
  ev.completion_tokens = static_cast<int>(s->generated.size());
  ev.cached_prompt_tokens = s->cached_prompt_tokens;
  try {
    s->callback(ev);
  } catch (const std::exception& e) {
    log_warn("callback of request ", id, " threw: ", e.what());
  }
}

void Engine::Impl::publish_stats() {
  std::lock_guard<std::mutex> lock(mu);
  stats.running = scheduler.num_running();
  scheduler_waiting = scheduler.num_waiting();
  stats.kv_blocks_used = blocks.used();
  stats.kv_blocks_total = blocks.num_blocks();
  stats.prefix_cache_queries = scheduler.prefix_queries();
  stats.prefix_cache_hits = scheduler.prefix_hits();
  stats.prompt_tokens = prompt_tokens;
  stats.generated_tokens = generated_tokens;
  stats.preemptions = scheduler.preemptions();
  stats.steps = steps;
  busy = !scheduler.idle() || !incoming.empty();
  if (!busy) idle_cv.notify_all();
}

Engine::Engine(Model& model, Backend& backend, const EngineOptions& options)
    : impl_(std::make_unique<Impl>(model, backend, options)) {}

Engine::~Engine() = default;

uint64_t Engine::submit(GenerationRequest request, TokenCallback callback) {
  Impl& m = *impl_;
  const int vocab = m.model.config().vocab_size;
  if (request.prompt.empty()) fail("the prompt is empty");
  for (int t : request.prompt)
    if (t < 0 || t >= vocab) fail("prompt token id ", t, " is outside the vocabulary of ", vocab);
  if (request.max_tokens < 1) fail("max_tokens must be at least 1 (got ", request.max_tokens, ")");
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (total > m.max_len)
    fail("prompt of ", request.prompt.size(), " tokens + max_tokens ", request.max_tokens, " = ", total,
         " exceeds the maximum sequence length of ", m.max_len);
  auto s = std::make_unique<Sequence>();
  s->prompt_len = static_cast<int>(request.prompt.size());
  s->tokens = request.prompt;
  s->rng.seed(request.sampling.seed ? *request.sampling.seed : std::random_device{}());
  s->request = std::move(request);
  s->callback = std::move(callback);
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.stopping) fail("the engine is shutting down");
  const int waiting = m.scheduler_waiting + static_cast<int>(m.incoming.size());
  if (waiting >= m.options.max_waiting) throw EngineFull(cat("the queue is full (", waiting, " requests waiting)"));
  s->id = m.next_id++;
  s->arrival = s->id;
  uint64_t id = s->id;
  m.incoming.push_back(std::move(s));
  m.busy = true;
  m.cv.notify_all();
  return id;
}

void Engine::cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->cancels.insert(request_id);
  impl_->cv.notify_all();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  EngineStats s = impl_->stats;
  s.waiting = impl_->scheduler_waiting + static_cast<int>(impl_->incoming.size());
  return s;
}

int64_t Engine::kv_cache_tokens() const { return impl_->cache.num_tokens(); }
int Engine::max_model_len() const { return static_cast<int>(impl_->max_len); }

void Engine::wait_idle() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] { return !impl_->busy; });
}

}  // namespace dsinfer
