#include "runtime/scheduler.h"

#include <algorithm>

#include "runtime/drafter.h"

namespace dsinfer {

void Scheduler::insert_waiting(std::unique_ptr<Sequence> s) {
  auto pos = std::upper_bound(waiting_.begin(), waiting_.end(), s,
                              [](const auto& a, const auto& b) { return a->before(*b); });
  waiting_.insert(pos, std::move(s));
}

void Scheduler::add(std::unique_ptr<Sequence> seq) { insert_waiting(std::move(seq)); }

int Scheduler::chunk(const Sequence& s, int budget) {
  const bool scored = s.request.prompt_logprobs >= 0 && !s.prompt_logprobs_sent && s.computed < s.prompt_len;
  if (!scored) return std::min(s.remaining(), budget);
  const int n = std::min({s.remaining(), budget, scoring_left_});
  scoring_left_ -= n;
  return n;
}

bool Scheduler::grow_blocks(Sequence& s, int tokens) {
  const int need = (tokens + blocks_.block_size() - 1) / blocks_.block_size();
  while (static_cast<int>(s.blocks.size()) < need) {
    auto b = blocks_.allocate();
    if (!b) return false;
    s.blocks.push_back(*b);
  }
  return true;
}

void Scheduler::add_drafts(std::vector<ScheduledSeq>& out, int& budget) {
  for (ScheduledSeq& sc : out) {
    Sequence& s = *sc.seq;
    if (budget <= 0) return;
    if (!sc.samples || sc.num_tokens != 1) continue;  // only decoding sequences draft
    // Every draft may be accepted, and one more token is sampled after them.
    const int room = std::min(budget, s.request.max_tokens - static_cast<int>(s.generated.size()) - 1);
    if (room <= 0) continue;
    std::vector<int> d = options_.mtp_drafts > 0 ? s.current_mtp_drafts() : options_.drafter->propose(s.tokens, room);
    grow_blocks(s, static_cast<int>(s.tokens.size() + std::min<size_t>(d.size(), room)));  // as many as are free
    const int fits = static_cast<int>(s.blocks.size()) * blocks_.block_size() - static_cast<int>(s.tokens.size());
    d.resize(std::max(0, std::min({static_cast<int>(d.size()), room, fits})));
    s.tokens.insert(s.tokens.end(), d.begin(), d.end());
    sc.num_tokens += static_cast<int>(d.size());
    sc.drafts = static_cast<int>(d.size());
    budget -= sc.drafts;
  }
}

void Scheduler::free_blocks(Sequence& s) {
  // Release the tail first so the prefix blocks are the last to be evicted (LRU order).
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) blocks_.release(*it);
  s.blocks.clear();
  s.hashes.clear();
  s.computed = 0;
}

void Scheduler::preempt(size_t running_index) {
  std::unique_ptr<Sequence> s = std::move(running_[running_index]);
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(running_index));
  free_blocks(*s);
  ++preemptions_;
  insert_waiting(std::move(s));
}

void Scheduler::match_prefix(Sequence& s) {
  // A prompt scored whole computes every position; cached blocks would skip their logits.
  if (!options_.prefix_caching || s.request.prompt_logprobs >= 0) return;
  const int bs = blocks_.block_size();
  // Leave at least one token to compute: its logits give the next token.
  const int max_blocks = (static_cast<int>(s.tokens.size()) - 1) / bs;
  uint64_t parent = 0;
  for (int b = 0; b < max_blocks; ++b) {
    const int* toks = s.tokens.data() + b * bs;
    uint64_t h = BlockManager::block_hash(parent, toks, bs);
    auto block = blocks_.lookup(h, parent, toks);
    if (!block) break;
    s.blocks.push_back(*block);
    s.hashes.push_back(h);
    parent = h;
  }
  s.computed = static_cast<int>(s.blocks.size()) * bs;
}

bool Scheduler::admit_next(int& budget, std::vector<ScheduledSeq>& out) {
  Sequence& s = *waiting_.front();
  match_prefix(s);
  // Admission by memory: the whole remaining prompt must fit, plus one block of reserve for the
  // decode steps of the sequences already running.
  const int bs = blocks_.block_size();
  const int need = (static_cast<int>(s.tokens.size()) + bs - 1) / bs - static_cast<int>(s.blocks.size()) +
                   (running_.empty() ? 0 : 1);
  if (blocks_.available() < need) {
    // A waiting sequence holds no blocks: the prefix it matched stays cached for its next try,
    // but pinned by sequences that cannot run, it could starve the ones that can.
    free_blocks(s);
    return false;
  }
  const int n = chunk(s, budget);
  if (n == 0) {  // a prompt to score, and this step scores no more: next step (it holds no blocks)
    free_blocks(s);
    return false;
  }
  s.cached_prompt_tokens = std::min(s.computed, s.prompt_len);
  prefix_queries_ += s.prompt_len;
  prefix_hits_ += s.cached_prompt_tokens;
  grow_blocks(s, s.computed + n);
  out.push_back({&s, n, s.computed + n == static_cast<int>(s.tokens.size())});
  budget -= n;
  running_.push_back(std::move(waiting_.front()));
  waiting_.erase(waiting_.begin());
  return true;
}

std::vector<ScheduledSeq> Scheduler::schedule() {
  std::vector<ScheduledSeq> out;
  int budget = options_.max_batched_tokens;
  scoring_left_ = kPromptLogprobRows;
  std::sort(running_.begin(), running_.end(), [](const auto& a, const auto& b) { return a->before(*b); });
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& s = *running_[i];
    const int n = chunk(s, budget);
    if (n == 0) continue;  // a prompt to score, and this step scores no more
    while (!grow_blocks(s, s.computed + n) && running_.size() > i + 1) {
      preempt(running_.size() - 1);
      preempted = true;
    }
    if (static_cast<int>(s.blocks.size()) * blocks_.block_size() < s.computed + n) {
      preempt(i);  // not even alone does it fit this step: recompute it later
      preempted = true;
      break;
    }
    out.push_back({&s, n, s.computed + n == static_cast<int>(s.tokens.size())});
    budget -= n;
  }
  // Admit waiting sequences only while nothing had to be preempted this step.
  while (!preempted && budget > 0 && !waiting_.empty() &&
         static_cast<int>(running_.size()) < options_.max_running && admit_next(budget, out)) {
  }
  // Drafts last: they take only what the running and newly admitted sequences leave.
  if ((options_.drafter || options_.mtp_drafts > 0) && !preempted && drafts_allowed()) add_drafts(out, budget);
  return out;
}

void Scheduler::complete(Sequence& s, int tokens) {
  s.computed += tokens;
  if (!options_.prefix_caching) return;
  const int bs = blocks_.block_size();
  for (int b = static_cast<int>(s.hashes.size()); (b + 1) * bs <= s.computed; ++b) {
    const uint64_t parent = s.hashes.empty() ? 0 : s.hashes.back();
    const int* toks = s.tokens.data() + b * bs;
    const uint64_t h = BlockManager::block_hash(parent, toks, bs);
    blocks_.register_full(s.blocks[b], h, parent, toks);
    s.hashes.push_back(h);
  }
}

std::vector<uint64_t> Scheduler::ids() const {
  std::vector<uint64_t> r;
  for (const auto* list : {&running_, &waiting_})
    for (const auto& s : *list) r.push_back(s->id);
  return r;
}

std::unique_ptr<Sequence> Scheduler::remove(uint64_t id) {
  for (auto* list : {&running_, &waiting_}) {
    for (auto it = list->begin(); it != list->end(); ++it) {
      if ((*it)->id != id) continue;
      std::unique_ptr<Sequence> s = std::move(*it);
      list->erase(it);
      free_blocks(*s);
      return s;
    }
  }
  return nullptr;
}

}  // namespace dsinfer
