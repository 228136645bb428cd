// The scheduler driven without a model: sequences are fed made-up tokens, so thousands of steps
// of admission, preemption and prefix caching run in milliseconds.
#include <gtest/gtest.h>

#include <random>

#include "runtime/scheduler.h"

using namespace dsinfer;

namespace {

// What a sequence "generates" after `length` tokens.
int next_token(size_t length) { return static_cast<int>(length * 7 % 50); }

// Drafts the made-up tokens, every third one wrong.
class MadeUpDrafter final : public Drafter {
 public:
  std::vector<int> propose(const std::vector<int>& tokens, int max_tokens) const override {
    std::vector<int> d;
    for (int i = 0; i < std::min(max_tokens, 5); ++i)
      d.push_back(next_token(tokens.size() + i) + ((tokens.size() + i) % 3 == 0 ? 1 : 0));
    return d;
  }
};

// Runs `seqs` to completion with made-up next tokens (verifying drafts as the engine does);
// returns the steps taken, or -1 when `max_steps` pass with sequences still unfinished.
int drive(Scheduler& sched, std::vector<std::unique_ptr<Sequence>> seqs, int max_steps) {
  size_t left = seqs.size();
  for (auto& s : seqs) sched.add(std::move(s));
  for (int step = 0; step < max_steps; ++step) {
    if (left == 0) return step;
    std::vector<uint64_t> done;
    for (const ScheduledSeq& sc : sched.schedule()) {
      Sequence& s = *sc.seq;
      if (!sc.samples) {
        sched.complete(s, sc.num_tokens);
        continue;
      }
      const std::vector<int> drafts(s.tokens.end() - sc.drafts, s.tokens.end());
      s.tokens.resize(s.tokens.size() - sc.drafts);
      int accepted = 0;
      bool finished = false;
      for (int i = 0; !finished; ++i) {
        const int token = next_token(s.tokens.size());
        s.tokens.push_back(token);
        s.generated.push_back(token);
        finished = static_cast<int>(s.generated.size()) == s.request.max_tokens;
        if (i == sc.drafts || token != drafts[i]) break;
        if (!finished) ++accepted;
      }
      sched.complete(s, sc.num_tokens - sc.drafts + accepted);
      if (finished) done.push_back(s.id);
    }
    for (uint64_t id : done) sched.remove(id);
    left -= done.size();
  }
  return -1;
}

// Queues `n` requests of 4-token prompts and up to 100 tokens.
void add_short_requests(Scheduler& sched, int n) {
  for (int i = 0; i < n; ++i) {
    auto s = std::make_unique<Sequence>();
    s->id = s->arrival = static_cast<uint64_t>(i + 1);
    s->tokens = {1, 2, 3, i};
    s->prompt_len = 4;
    s->request.max_tokens = 100;
    sched.add(std::move(s));
  }
}

struct StepCounts {
  size_t sequences = 0;
  int tokens = 0, drafts = 0;
};

// One step in which every draft is rejected and every sampling sequence gets token 7.
StepCounts step_rejecting_drafts(Scheduler& sched) {
  StepCounts c;
  for (const ScheduledSeq& sc : sched.schedule()) {
    ++c.sequences;
    c.tokens += sc.num_tokens;
    c.drafts += sc.drafts;
    Sequence& s = *sc.seq;
    s.tokens.resize(s.tokens.size() - sc.drafts);
    sched.complete(s, sc.num_tokens - sc.drafts);
    if (sc.samples) s.tokens.push_back(7), s.generated.push_back(7);
  }
  return c;
}

}  // namespace

// Many sequences sharing cached prefixes in a cache far too small for all of them: preempted
// and queued sequences must not keep the blocks their prefixes matched while they wait, or
// they pin the cache and nothing runs again.
TEST(Scheduler, EverySequenceFinishesWhenSharedPrefixesMeetAFullCache) {
  for (uint64_t seed = 0; seed < 80; ++seed) {
    std::mt19937_64 rng(seed);
    BlockManager blocks(24, 16);
    EngineOptions o;
    o.max_batched_tokens = 64;
    if (seed % 2) o.drafter = std::make_shared<MadeUpDrafter>();  // drafts take spare blocks only
    Scheduler sched(blocks, o);
    std::vector<std::unique_ptr<Sequence>> seqs;
    for (uint64_t i = 0; i < 16; ++i) {
      auto s = std::make_unique<Sequence>();
      s->id = s->arrival = i + 1;
      const int shared = static_cast<int>(rng() % 3) * 16, own = 8 + static_cast<int>(rng() % 120);
      for (int j = 0; j < shared; ++j) s->tokens.push_back(j);
      for (int j = 0; j < own; ++j) s->tokens.push_back(100 + static_cast<int>(rng() % 1000));
      s->prompt_len = static_cast<int>(s->tokens.size());
      s->request.max_tokens = 8 + static_cast<int>(rng() % (24 * 16 - s->prompt_len - 8));
      seqs.push_back(std::move(s));
    }
    EXPECT_GT(drive(sched, std::move(seqs), 100000), 0) << "seed " << seed;
    EXPECT_EQ(blocks.used(), 0) << "seed " << seed;
  }
}

// Drafts take only what the running and admitted sequences leave of the step's budget: every
// request is admitted and every decoding sequence gets its token each step, however much the
// drafter proposes.
TEST(Scheduler, DraftsNeverCostARunningSequenceItsStep) {
  BlockManager blocks(64, 16);
  EngineOptions o;
  o.max_batched_tokens = 12;
  o.drafter = std::make_shared<MadeUpDrafter>();
  Scheduler sched(blocks, o);
  add_short_requests(sched, 8);
  for (int step = 0; step < 12; ++step) {
    const StepCounts c = step_rejecting_drafts(sched);
    EXPECT_LE(c.tokens, 12);
    if (step >= 4) {  // the prompts are in: all 8 decode, and drafts fill the rest of the budget
      EXPECT_EQ(c.sequences, 8u) << "step " << step;
      EXPECT_EQ(c.drafts, 4) << "step " << step;
    }
  }
}

// Past a batch size, verification costs more than drafts save: no drafts there.
TEST(Scheduler, NoDraftsFromTheBatchSizeThatDisablesThem) {
  for (int limit : {0, 4, 9}) {
    BlockManager blocks(64, 16);
    EngineOptions o;
    o.max_batched_tokens = 64;
    o.drafter = std::make_shared<MadeUpDrafter>();
    o.draft_below_batch = limit;
    Scheduler sched(blocks, o);
    add_short_requests(sched, 8);
    int drafts = 0;
    for (int step = 0; step < 3; ++step) drafts += step_rejecting_drafts(sched).drafts;
    if (limit == 4) EXPECT_EQ(drafts, 0);
    else EXPECT_GT(drafts, 0) << "limit " << limit;
  }
}
