// Scheduler: picks each step's work. Running sequences go first (one decode token each, or
// the next chunk of a long prompt), then waiting ones are admitted by priority while the token
// budget, the running limit and the cache allow. When the cache runs out, the newest
// lowest-priority running sequence is preempted: its blocks are freed and it is recomputed later.
#pragma once
#include <memory>
#include <vector>

#include "runtime/block_manager.h"
#include "runtime/engine.h"
#include "runtime/sequence.h"

namespace dsinfer {

struct ScheduledSeq {
  Sequence* seq;
  int num_tokens;  // tokens computed this step, starting at seq->computed
  bool samples;    // this step reaches the end of its tokens, so a new token is sampled
  int drafts = 0;  // of num_tokens, the last ones: drafted tokens appended for this step only
};

class Scheduler {
 public:
  Scheduler(BlockManager& blocks, const EngineOptions& options) : blocks_(blocks), options_(options) {}

  void add(std::unique_ptr<Sequence> seq);
  std::vector<ScheduledSeq> schedule();
  // Marks `tokens` more of the sequence's tokens computed (the scheduled ones, less rejected
  // drafts) and registers newly full blocks in the prefix cache.
  void complete(Sequence& s, int tokens);
  // Removes a sequence (finished or cancelled) and releases its blocks; returns it.
  std::unique_ptr<Sequence> remove(uint64_t id);

  int num_running() const { return static_cast<int>(running_.size()); }
  // Whether the running batch is small enough to draft (EngineOptions::draft_below_batch).
  bool drafts_allowed() const {
    return options_.draft_below_batch <= 0 || num_running() < options_.draft_below_batch;
  }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  std::vector<uint64_t> ids() const;
  int64_t preemptions() const { return preemptions_; }
  int64_t prefix_queries() const { return prefix_queries_; }
  int64_t prefix_hits() const { return prefix_hits_; }

  // Prompt tokens a step scores for their logprobs (GenerationRequest::prompt_logprobs), each a
  // row of logits vocabulary wide: the engine's memory plan holds this many beside its sampling rows.
  static constexpr int kPromptLogprobRows = 64;

 private:
  // Tokens of `s` the step computes, at most `budget`; a prompt being scored takes its tokens from
  // what is left of the step's kPromptLogprobRows, and may get none this step.
  int chunk(const Sequence& s, int budget);
  bool grow_blocks(Sequence& s, int tokens);
  // Appends drafted tokens to the step's decoding sequences, in order, from what the running and
  // admitted sequences left of the budget and of the cache's free blocks (so drafts never cost
  // another sequence its step, nor a waiting one its admission), within each one's max_tokens.
  void add_drafts(std::vector<ScheduledSeq>& out, int& budget);
  void free_blocks(Sequence& s);
  void preempt(size_t running_index);
  void match_prefix(Sequence& s);
  bool admit_next(int& budget, std::vector<ScheduledSeq>& out);
  void insert_waiting(std::unique_ptr<Sequence> s);

  BlockManager& blocks_;
  EngineOptions options_;
  std::vector<std::unique_ptr<Sequence>> waiting_;  // sorted: front runs first
  std::vector<std::unique_ptr<Sequence>> running_;
  int64_t preemptions_ = 0, prefix_queries_ = 0, prefix_hits_ = 0;
  int scoring_left_ = 0;  // of this step's kPromptLogprobRows
};

}  // namespace dsinfer
