#include "runtime/engine.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "core/log.h"
#include "plan/kv_cache.h"
#include "runtime/block_manager.h"
#include "runtime/kv_budget.h"
#include "runtime/mtp_batch.h"
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

std::string speculation_summary(const EngineStats& s) {
  const double rate = s.draft_tokens > 0 ? 100.0 * s.accepted_draft_tokens / s.draft_tokens : 0.0;
  std::string by_position;
  for (size_t p = 0; s.drafted_at.size() > 1 && p < s.drafted_at.size(); ++p) {
    const double held = 100.0 * s.accepted_at[p] / std::max<int64_t>(1, s.drafted_at[p]);
    by_position += cat(p ? ", " : "; by position ", static_cast<int>(held + 0.5), " %");
  }
  return cat("speculative decoding: ", s.accepted_draft_tokens, " of ", s.draft_tokens, " drafted tokens accepted (",
             static_cast<int>(rate + 0.5), " %)", by_position);
}

namespace {

bool drafts(const EngineOptions& o) { return o.drafter || o.mtp_drafts > 0; }

// The step samples a token for the sequence: it reaches the end of its tokens and may generate
// (a prompt scored with max_tokens 0 reaches its end and generates nothing).
bool samples_token(const ScheduledSeq& sc) { return sc.samples && sc.seq->request.max_tokens > 0; }

// Whether the request's EOS ids may not be sampled as its next token, after `generated` tokens.
bool eos_barred(const GenerationRequest& r, size_t generated) {
  return r.ignore_eos || static_cast<int64_t>(generated) < r.min_tokens;
}

int64_t cache_tokens(const EngineOptions& o, const Model& model, const Backend& backend) {
  const KvCacheSpec spec = model.kv_spec();
  int64_t tokens = o.kv_cache_tokens;
  if (tokens <= 0 && o.kv_cache_bytes > 0) tokens = static_cast<int64_t>(o.kv_cache_bytes / spec.bytes_per_token());
  if (tokens <= 0) {
    // With drafts every token of a step may be a row of logits; prompts scored for their logprobs
    // add up to Scheduler::kPromptLogprobRows.
    const int logit_rows =
        (drafts(o) ? std::max(o.max_running, o.max_batched_tokens) : o.max_running) + Scheduler::kPromptLogprobRows;
    KvBudget b = plan_kv_cache(model, backend, o.memory_utilization, o.max_batched_tokens, logit_rows, o.block_size);
    log_info("KV cache sized from device memory: ", b.derivation);
    tokens = b.tokens;
  }
  int64_t blocks = tokens / o.block_size;
  if (blocks < 1) fail("KV cache too small: ", tokens, " tokens is less than one block of ", o.block_size);
  return blocks * o.block_size;
}

}  // namespace

struct Engine::Impl {
  Impl(Model& m, Backend& b, const EngineOptions& o)
      : model(checked(m, o)), backend(b), options(o),
        cache(b, m.kv_spec(), static_cast<int>(cache_tokens(o, m, b) / o.block_size), o.block_size),
        blocks(cache.num_blocks(), o.block_size), scheduler(blocks, o) {
    max_len = std::min<int64_t>(m.config().max_position_embeddings, cache.num_tokens());
    stats.kv_blocks_total = blocks.num_blocks();  // before any step publishes (metrics scraped while idle)
    m.record_decode_steps(o.cuda_graphs ? o.max_running : 0, cache, drafts(o));
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

  // The model, once it can do what the options ask of it.
  static Model& checked(Model& m, const EngineOptions& o);
  void loop();
  void intake();
  void step();
  ForwardBatch build_batch(const std::vector<ScheduledSeq>& plan) const;
  // The step's logits where sampling reads them: every row on the host or, where every sampling
  // sequence is greedy without penalties or logprobs, the rows' argmax ids from the device.
  struct StepLogits {
    int64_t vocab = 0;
    float* host = nullptr;
    std::vector<int> argmax;
    std::map<int64_t, std::vector<float>> whole_rows;  // argmax rows whose id is banned, copied whole
    std::map<int64_t, int> masked;  // host rows a grammar has masked already: tokens left
  };
  // Where each sequence's rows of the step's logits begin, in build_batch's order: those scoring
  // its prompt, then those it samples from. Taken before the step changes the sequences.
  struct RowSpan {
    int64_t scored = 0, sampled = 0;
  };
  static std::vector<RowSpan> row_spans(const std::vector<ScheduledSeq>& plan);
  StepLogits fetch_logits(const std::vector<ScheduledSeq>& plan, const std::vector<RowSpan>& spans,
                          const Tensor& logits);
  // Masks each grammar-held sequence's first sampling row of the step at once, on the host's
  // cores (a mask walks the vocabulary: tens of milliseconds inside a JSON string). Rows after a
  // draft are masked when reached: their state depends on the drafts accepted before them.
  void mask_first_rows(const std::vector<ScheduledSeq>& plan, const std::vector<RowSpan>& spans, StepLogits& l);
  SampleResult sample_row(Sequence& s, StepLogits& l, int64_t row);
  // `masked`: the grammar's mask is applied already, leaving this many tokens (-1: not yet).
  SampleResult sample_on_host(Sequence& s, float* row, int masked = -1);
  // Samples a sequence's rows from `row` on, each only while the drafts before it were accepted;
  // returns how many were. `finished`: the sequence ended on one of them.
  int verify(const ScheduledSeq& sc, StepLogits& l, int64_t row, bool& finished);
  // Appends a sampled token and reports it; true when the sequence is finished.
  bool advance(Sequence& s, SampleResult res);
  // Runs the MTP layer over what the step kept (kept[i] positions of plan[i]; -1: the sequence
  // is gone) and stores each decoding sequence's draft for its next step.
  void propose_mtp(const std::vector<ScheduledSeq>& plan, const ForwardBatch& batch, const std::vector<int>& kept,
                   const std::vector<bool>& finished);
  // Appends the logprobs of the prompt tokens the step's rows from `row` score
  // (request.prompt_logprobs).
  void score_prompt(const ScheduledSeq& sc, StepLogits& l, int64_t row);
  // The argmax id of each row of device logits (-1 for a row with NaN).
  std::vector<int> argmax(const Tensor& logits);
  void finish(uint64_t id, FinishReason reason, const std::string& error = "");
  // Runs a request's callback; a callback that throws is logged and asks to stop.
  bool notify(Sequence& s, const TokenEvent& ev);
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
  int64_t prompt_tokens = 0, generated_tokens = 0, steps = 0, draft_tokens = 0, accepted_draft_tokens = 0;
  std::vector<int64_t> drafted_at, accepted_at;  // by draft position
  std::thread thread;
  bool mtp_failed = false;         // an MTP pass failed: no more drafts from it
  std::vector<float> host_logits;  // reused across steps
  Buffer argmax_ids;               // device ids of greedy rows
};

namespace {

// An event carrying the sequence's counts (and, the first time, its prompt logprobs); the caller
// adds the token or the finish reason.
TokenEvent event_for(Sequence& s) {
  TokenEvent ev;
  if (s.request.prompt_logprobs >= 0 && !s.prompt_logprobs_sent) {  // with the first event
    ev.prompt_logprobs = std::move(s.prompt_logprobs);
    s.prompt_logprobs_sent = true;
  }
  ev.request_id = s.id;
  ev.prompt_tokens = s.prompt_len;
  ev.completion_tokens = static_cast<int>(s.generated.size());
  ev.cached_prompt_tokens = s.cached_prompt_tokens;
  return ev;
}

// Greedy rows without penalties or logprobs need only their argmax, which the device computes,
// so only ids cross to the host; the others need their whole row of logits.
bool needs_logits_row(const SamplingParams& p) {
  return !p.greedy() || p.top_logprobs >= 0 || p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f ||
         p.frequency_penalty != 0.0f || !p.logit_bias.empty() || p.grammar;
}

}  // namespace

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
    // They wait in the scheduler now: submit() must keep counting them until the step's stats.
    scheduler_waiting += static_cast<int>(fresh.size());
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
    // Rows scoring prompt tokens (request.prompt_logprobs), then the sampling rows.
    const int scored = s.prompt_logprob_rows(sc.num_tokens);
    for (int r = 0; r < scored; ++r) b.logit_rows.push_back(slice.query_start + s.first_scored() - s.computed + r);
    // A sampling sequence's last token gives its next one; each draft before it gives the token after it.
    if (samples_token(sc))
      for (int d = sc.drafts; d >= 0; --d) b.logit_rows.push_back(b.num_tokens() - 1 - d);
    b.seqs.push_back(std::move(slice));
  }
  return b;
}

Model& Engine::Impl::checked(Model& m, const EngineOptions& o) {
  if (o.mtp_drafts > 0 && o.drafter) fail("speculative decoding takes one drafter: the MTP layer or prompt lookup");
  if (o.mtp_drafts > 0 && !m.has_mtp()) fail("MTP drafts: the model has no multi-token-prediction layer loaded");
  return m;
}

void Engine::Impl::step() {
  std::vector<ScheduledSeq> plan = scheduler.schedule();
  if (plan.empty()) return;
  ForwardBatch batch = build_batch(plan);
  const std::vector<RowSpan> spans = row_spans(plan);
  StepLogits logits;
  try {
    logits = fetch_logits(plan, spans, model.forward(batch, cache));
  } catch (const std::exception& e) {
    log_warn("forward failed for a batch of ", plan.size(), " sequences: ", e.what());
    for (const ScheduledSeq& sc : plan) finish(sc.seq->id, FinishReason::Error, e.what());
    return;
  }
  ++steps;
  mask_first_rows(plan, spans, logits);
  std::vector<int> kept(plan.size(), -1);  // positions each sequence kept; -1: failed, gone
  std::vector<bool> finished(plan.size(), false);
  for (size_t i = 0; i < plan.size(); ++i) {
    const ScheduledSeq& sc = plan[i];
    score_prompt(sc, logits, spans[i].scored);
    if (!samples_token(sc)) {
      scheduler.complete(*sc.seq, sc.num_tokens);
      // A prompt scored with nothing to generate ends once it is computed (and is gone).
      if (sc.samples) finish(sc.seq->id, FinishReason::Length);
      else kept[i] = sc.num_tokens;
      continue;
    }
    const uint64_t id = sc.seq->id;
    bool done = false;
    try {
      const int accepted = verify(sc, logits, spans[i].sampled, done);
      kept[i] = sc.num_tokens - sc.drafts + accepted;
      scheduler.complete(*sc.seq, kept[i]);
      finished[i] = done;
    } catch (const std::exception& e) {  // this sequence's logits cannot be sampled; the others go on
      log_warn("request ", id, ": ", e.what());
      finish(id, FinishReason::Error, e.what());  // removes it
    }
  }
  if (options.mtp_drafts > 0 && !mtp_failed) propose_mtp(plan, batch, kept, finished);
  for (size_t i = 0; i < plan.size(); ++i)
    if (finished[i]) scheduler.remove(plan[i].seq->id);
}

// Finished sequences run too, and so does every step while the batch is too large to draft: the
// layer's cache must hold every position (a finished sequence's blocks may serve a later prompt
// from the prefix cache). Only the drafts themselves are skipped.
void Engine::Impl::propose_mtp(const std::vector<ScheduledSeq>& plan, const ForwardBatch& batch,
                               const std::vector<int>& kept, const std::vector<bool>& finished) {
  const bool drafts = scheduler.drafts_allowed();
  std::vector<MtpSeq> seqs;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (kept[i] < 1) continue;
    Sequence& s = *plan[i].seq;
    const bool decodes = plan[i].samples && !finished[i];
    seqs.push_back({&s, s.computed - kept[i], kept[i], batch.seqs[i].query_start, decodes && drafts});
  }
  if (seqs.empty()) return;
  try {
    MtpBatch m = mtp_batch(seqs, options.block_size);
    Tensor logits = model.mtp_forward(m.batch, m.hidden_rows, cache);
    for (Sequence* s : m.drafting) {
      s->mtp_drafts.clear();
      s->mtp_drafts_for = s->tokens.size();
    }
    // Each link of the chain drafts one more token for the sequences still going.
    for (int link = 0; link < options.mtp_drafts && !m.drafting.empty(); ++link) {
      if (link > 0) {
        m = mtp_chain_batch(m.drafting, options.block_size);
        if (m.drafting.empty()) break;
        logits = model.mtp_forward(m.batch, m.hidden_rows, cache, /*chained=*/true);
      }
      const std::vector<int> ids = argmax(logits);
      for (size_t r = 0; r < m.drafting.size(); ++r) {
        if (ids[r] >= 0) m.drafting[r]->mtp_drafts.push_back(ids[r]);
        else m.drafting[r] = nullptr;  // NaN logits: no more drafts
      }
    }
  } catch (const std::exception& e) {  // drafts only save time: the step's tokens stand
    log_warn("MTP drafts failed for a batch of ", seqs.size(), " sequences, so drafting stops: ", e.what());
    mtp_failed = true;
  }
}

std::vector<Engine::Impl::RowSpan> Engine::Impl::row_spans(const std::vector<ScheduledSeq>& plan) {
  std::vector<RowSpan> spans(plan.size());
  int64_t row = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    spans[i].scored = row;
    row += plan[i].seq->prompt_logprob_rows(plan[i].num_tokens);
    spans[i].sampled = row;
    if (samples_token(plan[i])) row += 1 + plan[i].drafts;
  }
  return spans;
}

void Engine::Impl::score_prompt(const ScheduledSeq& sc, StepLogits& l, int64_t row) {
  Sequence& s = *sc.seq;
  const int rows = s.prompt_logprob_rows(sc.num_tokens);
  const int first = static_cast<int>(s.prompt_logprobs.size());  // row r scores the token at first + r + 1
  s.prompt_logprobs.resize(static_cast<size_t>(first + rows));
  // Each row a log-softmax over the vocabulary, independent of the others: the cores share them.
#pragma omp parallel for if (rows > 1)
  for (int r = 0; r < rows; ++r) {
    const float* logits = l.host + (row + r) * l.vocab;
    s.prompt_logprobs[first + r] =
        token_logprob(logits, static_cast<int>(l.vocab), s.tokens[first + r + 1], s.request.prompt_logprobs);
  }
}

std::vector<int> Engine::Impl::argmax(const Tensor& logits) {
  const int64_t rows = logits.dim(0);
  if (argmax_ids.bytes() < static_cast<size_t>(rows) * sizeof(int)) argmax_ids = backend.alloc(rows * sizeof(int) * 2);
  Tensor ids{DType::I32, {rows}, argmax_ids.data(), backend.device()};
  backend.argmax_rows(logits, ids);
  std::vector<int> out(static_cast<size_t>(rows));
  backend.copy_to_host(ids, out.data());
  return out;
}

Engine::Impl::StepLogits Engine::Impl::fetch_logits(const std::vector<ScheduledSeq>& plan,
                                                    const std::vector<RowSpan>& spans, const Tensor& logits) {
  StepLogits l;
  l.vocab = logits.dim(1);
  if (backend.device().kind == DeviceKind::CPU) {  // the logits are already in host memory
    l.host = logits.ptr<float>();
    return l;
  }
  bool argmax_only = true;
  for (const ScheduledSeq& sc : plan)
    argmax_only = argmax_only && !(samples_token(sc) && needs_logits_row(sc.seq->request.sampling)) &&
                  sc.seq->prompt_logprob_rows(sc.num_tokens) == 0;
  if (!argmax_only) {
    host_logits.resize(static_cast<size_t>(logits.numel()));
    backend.copy_to_host(logits, host_logits.data());
    l.host = host_logits.data();
    return l;
  }
  l.argmax = argmax(logits);
  // An EOS where it may not be sampled (--ignore-eos, before min_tokens): that row's next best is
  // found on the host.
  for (size_t s = 0; s < plan.size(); ++s) {
    const ScheduledSeq& sc = plan[s];
    if (!samples_token(sc)) continue;
    const GenerationRequest& req = sc.seq->request;
    for (int i = 0; i <= sc.drafts; ++i) {
      const int64_t row = spans[s].sampled + i;
      // Row i samples the sequence's token after its drafts 0..i-1.
      const size_t generated = sc.seq->generated.size() + static_cast<size_t>(i);
      if (!eos_barred(req, generated) || !std::count(req.eos_ids.begin(), req.eos_ids.end(), l.argmax[row])) continue;
      std::vector<float>& whole = l.whole_rows[row];
      whole.resize(static_cast<size_t>(l.vocab));
      backend.copy_to_host(logits.slice_rows(row, row + 1), whole.data());
    }
  }
  return l;
}

void Engine::Impl::mask_first_rows(const std::vector<ScheduledSeq>& plan, const std::vector<RowSpan>& spans,
                                   StepLogits& l) {
  if (!l.host) return;
  std::vector<std::pair<const Sequence*, int64_t>> rows;  // (sequence, its first sampling row)
  for (size_t i = 0; i < plan.size(); ++i) {
    const Sequence& s = *plan[i].seq;
    if (samples_token(plan[i]) && s.grammar && s.grammar->active) rows.emplace_back(&s, spans[i].sampled);
  }
  if (rows.size() < 2) return;  // one is masked when sampled, as every later row is
  std::vector<int> left(rows.size());
  const int vocab = static_cast<int>(l.vocab);
#pragma omp parallel for
  for (size_t i = 0; i < rows.size(); ++i) {
    const Sequence& s = *rows[i].first;
    const GenerationRequest& r = s.request;
    try {
      left[i] = r.sampling.grammar->mask(*s.grammar, l.host + rows[i].second * l.vocab, vocab, r.eos_ids,
                                         !eos_barred(r, s.generated.size()));
    } catch (const std::exception&) {
      left[i] = -1;  // masked again when sampled, where the error is the sequence's own
    }
  }
  for (size_t i = 0; i < rows.size(); ++i)
    if (left[i] >= 0) l.masked[rows[i].second] = left[i];
}

SampleResult Engine::Impl::sample_row(Sequence& s, StepLogits& l, int64_t row) {
  if (l.host) {
    auto masked = l.masked.find(row);
    return sample_on_host(s, l.host + row * l.vocab, masked == l.masked.end() ? -1 : masked->second);
  }
  auto whole = l.whole_rows.find(row);
  if (whole != l.whole_rows.end()) return sample_on_host(s, whole->second.data());
  if (l.argmax[row] < 0) fail("the model's logits hold NaN: broken weights or an overflow");
  SampleResult r;
  r.token = l.argmax[row];
  return r;
}

// Row i is sampled only when the tokens sampled from rows 0..i-1 equal the drafts they verify,
// so every token comes from the same logits, penalties and random stream as without drafts.
// (For a draft of one certain token, accepting it when the sample equals it is exactly
// speculative sampling's rule: accepted with probability p(draft), otherwise a token drawn from
// p without the draft.)
int Engine::Impl::verify(const ScheduledSeq& sc, StepLogits& l, int64_t row, bool& finished) {
  Sequence& s = *sc.seq;
  const std::vector<int> drafts(s.tokens.end() - sc.drafts, s.tokens.end());
  s.tokens.resize(s.tokens.size() - sc.drafts);
  draft_tokens += sc.drafts;
  if (static_cast<int>(drafted_at.size()) < sc.drafts) {
    drafted_at.resize(sc.drafts);
    accepted_at.resize(sc.drafts);
  }
  for (int d = 0; d < sc.drafts; ++d) ++drafted_at[d];
  for (int i = 0;; ++i) {
    SampleResult res = sample_row(s, l, row + i);
    const bool accepted = i < sc.drafts && res.token == drafts[i];
    finished = advance(s, std::move(res));
    if (finished || !accepted) {
      const int held = i + (accepted ? 1 : 0);  // a right draft the sequence ended on counts too
      accepted_draft_tokens += held;
      for (int d = 0; d < held; ++d) ++accepted_at[d];
      return i;
    }
  }
}

SampleResult Engine::Impl::sample_on_host(Sequence& s, float* row, int masked) {
  const GenerationRequest& r = s.request;
  const int vocab = model.config().vocab_size;
  const bool barred = eos_barred(r, s.generated.size());
  if (s.grammar && masked < 0) masked = r.sampling.grammar->mask(*s.grammar, row, vocab, r.eos_ids, !barred);
  if (s.grammar && masked == 0) fail("no token of the vocabulary continues the output's grammar");
  // Only the repetition penalty reads the prompt; copy it out of the tokens just then.
  std::vector<int> prompt;
  if (r.sampling.repetition_penalty != 1.0f) prompt.assign(s.tokens.begin(), s.tokens.begin() + s.prompt_len);
  SampleContext ctx{&prompt, &s.generated, barred ? &r.eos_ids : nullptr};
  return sample_token(row, vocab, r.sampling, ctx, s.rng);
}

bool Engine::Impl::advance(Sequence& s, SampleResult res) {
  const GenerationRequest& r = s.request;
  s.tokens.push_back(res.token);
  s.generated.push_back(res.token);
  ++generated_tokens;
  if (s.grammar) r.sampling.grammar->advance(*s.grammar, res.token, r.eos_ids);
  TokenEvent ev = event_for(s);
  ev.token = res.token;
  ev.logprob = res.logprob;
  ev.top_logprobs = std::move(res.top_logprobs);
  // The token was sampled with the EOS ids barred or not (eos_barred before it was appended).
  const bool eos = !eos_barred(r, s.generated.size() - 1) &&
                   std::find(r.eos_ids.begin(), r.eos_ids.end(), res.token) != r.eos_ids.end();
  if (eos || (s.grammar && r.sampling.grammar->done(*s.grammar))) ev.reason = FinishReason::Stop;
  else if (static_cast<int>(s.generated.size()) >= r.max_tokens || static_cast<int64_t>(s.tokens.size()) >= max_len)
    ev.reason = FinishReason::Length;
  ev.finished = ev.reason != FinishReason::None;
  if (!notify(s, ev) && !ev.finished) {
    TokenEvent stop = event_for(s);
    stop.finished = true;
    stop.reason = FinishReason::Stop;
    notify(s, stop);
    return true;
  }
  return ev.finished;
}

bool Engine::Impl::notify(Sequence& s, const TokenEvent& ev) {
  try {
    return s.callback(ev);
  } catch (const std::exception& e) {
    log_warn("callback of request ", s.id, " threw: ", e.what());
    return false;
  }
}

void Engine::Impl::finish(uint64_t id, FinishReason reason, const std::string& error) {
  std::unique_ptr<Sequence> s = scheduler.remove(id);
  if (!s) return;  // already finished
  TokenEvent ev = event_for(*s);
  ev.finished = true;
  ev.reason = reason;
  ev.error = error;
  notify(*s, ev);
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
  stats.draft_tokens = draft_tokens;
  stats.accepted_draft_tokens = accepted_draft_tokens;
  stats.drafted_at = drafted_at;
  stats.accepted_at = accepted_at;
  busy = !scheduler.idle() || !incoming.empty();
  if (!busy) idle_cv.notify_all();
}

int cache_block_size(int block_size, const Model& m) {
  if (block_size < 0) fail("the KV cache's block size must be positive, not ", block_size);
  return block_size > 0 ? block_size : plan::kv_block_tokens(m.config());
}

namespace {

EngineOptions with_block_size(EngineOptions o, const Model& m) {
  o.block_size = cache_block_size(o.block_size, m);
  return o;
}

}  // namespace

Engine::Engine(Model& model, Backend& backend, const EngineOptions& options)
    : impl_(std::make_unique<Impl>(model, backend, with_block_size(options, model))) {}

Engine::~Engine() = default;

uint64_t Engine::submit(GenerationRequest request, TokenCallback callback) {
  Impl& m = *impl_;
  const int vocab = m.model.config().vocab_size;
  if (request.prompt.empty()) fail("the prompt is empty");
  for (int t : request.prompt)
    if (t < 0 || t >= vocab) fail("prompt token id ", t, " is outside the vocabulary of ", vocab);
  for (auto [t, bias] : request.sampling.logit_bias)
    if (t < 0 || t >= vocab) fail("logit_bias token id ", t, " is outside the vocabulary of ", vocab);
  if (request.max_tokens < (request.prompt_logprobs >= 0 ? 0 : 1))
    fail("max_tokens must be at least 1, or 0 with prompt logprobs (got ", request.max_tokens, ")");
  if (request.prompt_logprobs > kMaxTopLogprobs)
    fail("prompt_logprobs must be at most ", kMaxTopLogprobs, " (got ", request.prompt_logprobs, ")");
  if (request.min_tokens < 0 || request.min_tokens > request.max_tokens)
    fail("min_tokens must be 0..max_tokens ", request.max_tokens, " (got ", request.min_tokens, ")");
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (total > m.max_len)
    fail("prompt of ", request.prompt.size(), " tokens + max_tokens ", request.max_tokens, " = ", total,
         " exceeds the maximum sequence length of ", m.max_len);
  auto s = std::make_unique<Sequence>();
  s->prompt_len = static_cast<int>(request.prompt.size());
  s->tokens = request.prompt;
  s->rng.seed(request.sampling.seed ? *request.sampling.seed : std::random_device{}());
  if (request.sampling.grammar) s->grammar = request.sampling.grammar->start();
  s->request = std::move(request);
  s->callback = std::move(callback);
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.stopping) throw EngineStopping("the engine is shutting down");
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
