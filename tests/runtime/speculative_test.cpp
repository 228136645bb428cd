// Speculative decoding: the prompt-lookup drafter, and the engine's verification, which must
// give every request exactly what it gets without drafts (greedy and seeded sampling, stops,
// preemption, prefix caching), whatever the drafts are.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "engine_test_util.h"
#include "backend/backend.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/ngram_drafter.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

std::vector<int> ngram(const std::vector<int>& tokens, int max_tokens, int min_n, int max_n, int option_max = 8) {
  return NgramDrafter({option_max, min_n, max_n}).propose(tokens, max_tokens);
}

struct Output {
  std::vector<int> tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<std::pair<int, float>>> top;
  TokenEvent final;
};

// Collects every request's tokens, logprobs and final event; `stop_after` (> 0) ends a request
// through its callback once it has that many tokens.
struct Collector {
  std::mutex mu;
  std::map<uint64_t, Output> out;
  int stop_after = 0;

  TokenCallback callback() {
    return [this](const TokenEvent& ev) {
      std::lock_guard<std::mutex> lock(mu);
      Output& o = out[ev.request_id];
      if (ev.token >= 0) {
        o.tokens.push_back(ev.token);
        o.logprobs.push_back(ev.logprob);
        o.top.push_back(ev.top_logprobs);
      }
      if (ev.finished) o.final = ev;
      return stop_after <= 0 || static_cast<int>(o.tokens.size()) < stop_after;
    };
  }
};

// Proposes what the model is known to produce after each prompt (from runs without drafts),
// spoiling the tokens at every `spoil`-th position, so that steps accept all, some or none.
class KnownDrafter final : public Drafter {
 public:
  KnownDrafter(std::vector<std::vector<int>> sequences, int max_tokens, int spoil, int vocab)
      : sequences_(std::move(sequences)), max_tokens_(max_tokens), spoil_(spoil), vocab_(vocab) {}

  std::vector<int> propose(const std::vector<int>& tokens, int max_tokens) const override {
    ++calls;
    for (const std::vector<int>& s : sequences_) {
      if (s.size() <= tokens.size() || !std::equal(tokens.begin(), tokens.end(), s.begin())) continue;
      std::vector<int> d;
      for (size_t p = tokens.size(); p < s.size() && static_cast<int>(d.size()) < std::min(max_tokens, max_tokens_); ++p)
        d.push_back(spoil_ > 0 && p % spoil_ == 0 ? (s[p] + 1) % vocab_ : s[p]);
      return d;
    }
    return {};
  }

  mutable int calls = 0;

 private:
  std::vector<std::vector<int>> sequences_;
  int max_tokens_, spoil_, vocab_;
};

// Runs the requests at once, returning each one's output in order.
std::vector<Output> run(Loaded& m, const std::vector<GenerationRequest>& reqs, EngineOptions o, EngineStats* stats = nullptr,
                        int stop_after = 0) {
  if (o.kv_cache_tokens == 0) o.kv_cache_tokens = 4096;
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  c.stop_after = stop_after;
  std::vector<uint64_t> ids;
  for (const GenerationRequest& r : reqs) ids.push_back(engine.submit(r, c.callback()));
  engine.wait_idle();
  if (stats) *stats = engine.stats();
  std::vector<Output> outs;
  for (uint64_t id : ids) outs.push_back(c.out[id]);
  return outs;
}

std::vector<GenerationRequest> prompts(int count, int vocab, int max_tokens) {
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < count; ++i) {
    std::vector<int> p;
    for (int j = 0; j < 4 + 5 * i; ++j) p.push_back((i * 131 + j * 17) % (vocab - 2) + 2);
    reqs.push_back(greedy(p, max_tokens));
  }
  return reqs;
}

// Prompt + output of each request, as run without drafts.
std::vector<std::vector<int>> known(const std::vector<GenerationRequest>& reqs, const std::vector<Output>& outs) {
  std::vector<std::vector<int>> s;
  for (size_t i = 0; i < reqs.size(); ++i) {
    s.push_back(reqs[i].prompt);
    s.back().insert(s.back().end(), outs[i].tokens.begin(), outs[i].tokens.end());
  }
  return s;
}

void expect_same(const std::vector<Output>& got, const std::vector<Output>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].final.reason, want[i].final.reason) << "request " << i;
    EXPECT_EQ(got[i].final.completion_tokens, want[i].final.completion_tokens) << "request " << i;
  }
}

}  // namespace

TEST(NgramDrafter, ProposesWhatFollowedTheLatestEarlierOccurrenceOfTheSuffix) {
  // [1 2 3] occurs at 0 and 4; the latest earlier one (4) was followed by 7 5.
  EXPECT_EQ(ngram({1, 2, 3, 9, 1, 2, 3, 7, 5, 1, 2, 3}, 2, 2, 3), (std::vector<int>{7, 5}));
  // A match near the end proposes only what follows it, running into the suffix itself.
  EXPECT_EQ(ngram({4, 6, 4, 6}, 8, 2, 2), (std::vector<int>{4, 6}));
}

TEST(NgramDrafter, TriesTheLongestSuffixFirstAndNoneShorterThanTheMinimum) {
  // [4 3] was followed by 8 5; the single [3], latest at 4, by 9.
  EXPECT_EQ(ngram({4, 3, 8, 5, 3, 9, 4, 3}, 3, 1, 2), (std::vector<int>{8, 5, 3}));
  EXPECT_EQ(ngram({7, 3, 8, 5, 3, 9, 4, 3}, 3, 1, 2), (std::vector<int>{9, 4, 3}));
  EXPECT_TRUE(ngram({7, 3, 8, 5, 3, 9, 4, 3}, 3, 2, 4).empty());
  EXPECT_TRUE(ngram({1}, 3, 1, 4).empty());
  EXPECT_TRUE(ngram({}, 3, 1, 4).empty());
}

TEST(NgramDrafter, ProposesAtMostTheSmallerOfItsAndTheCallersLimits) {
  const std::vector<int> t{1, 2, 3, 4, 5, 6, 1, 2};
  EXPECT_EQ(ngram(t, 10, 2, 2, 3), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(ngram(t, 2, 2, 2, 3), (std::vector<int>{3, 4}));
  EXPECT_TRUE(ngram(t, 0, 2, 2, 3).empty());
}

TEST(NgramDrafter, RefusesSuffixLengthsOutOfOrderAndOffWithoutTokens) {
  EXPECT_THROW(NgramDrafter({4, 3, 2}), Error);
  EXPECT_THROW(NgramDrafter({4, 0, 2}), Error);
  EXPECT_EQ(make_ngram_drafter({0, 2, 4}), nullptr);
  EXPECT_NE(make_ngram_drafter({4, 2, 4}), nullptr);
}

// Drafts right, half right and wrong, on MLA + MoE and GQA fixtures, batched with chunked
// prefill: every token is the one decoding without drafts gives, and drafts were accepted.
TEST(Speculative, GreedyOutputIsExactlyTheOutputWithoutDrafts) {
  for (const std::string name : {"ds2-lite-tiny", "qwen2-tiny", "ds3-tiny"}) {
    Loaded m(name);
    const int vocab = m.model->config().vocab_size;
    std::vector<GenerationRequest> reqs = prompts(6, vocab, 20);
    EngineOptions plain;
    plain.max_batched_tokens = 24;  // chunked prefill, and drafts cut by the budget
    const std::vector<Output> want = run(m, reqs, plain);
    for (int spoil : {0, 3, 1}) {
      auto drafter = std::make_shared<KnownDrafter>(known(reqs, want), 5, spoil, vocab);
      EngineOptions o = plain;
      o.drafter = drafter;
      EngineStats stats;
      expect_same(run(m, reqs, o, &stats), want);
      EXPECT_GT(stats.draft_tokens, 0) << name;
      if (spoil == 1) EXPECT_EQ(stats.accepted_draft_tokens, 0) << name;
      else EXPECT_GT(stats.accepted_draft_tokens, 0) << name;
      if (spoil == 0) EXPECT_EQ(stats.accepted_draft_tokens, stats.draft_tokens) << name;
      // Every accepted draft saves a step.
      if (spoil == 0) EXPECT_LT(stats.steps, 6 * 20) << name;
    }
  }
}

// Sampling at temperature with penalties and a seed draws the same tokens from the same
// random stream, with the same logprobs: a row is sampled only once the drafts before it hold.
TEST(Speculative, SeededSamplingDrawsTheSameTokensAndLogprobs) {
  Loaded m("qwen2-tiny");
  const int vocab = m.model->config().vocab_size;
  std::vector<GenerationRequest> reqs = prompts(4, vocab, 16);
  for (size_t i = 0; i < reqs.size(); ++i) {
    SamplingParams& p = reqs[i].sampling;
    p.temperature = 1.5f;
    p.top_p = 0.95f;
    p.repetition_penalty = 1.1f;
    p.frequency_penalty = 0.2f;
    p.seed = 7 + i;
    p.top_logprobs = 2;
  }
  const std::vector<Output> want = run(m, reqs, {});
  EngineOptions o;
  o.drafter = std::make_shared<KnownDrafter>(known(reqs, want), 4, 4, vocab);
  EngineStats stats;
  const std::vector<Output> got = run(m, reqs, o, &stats);
  expect_same(got, want);
  EXPECT_GT(stats.accepted_draft_tokens, 0);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].logprobs.size(), want[i].logprobs.size());
    for (size_t t = 0; t < got[i].logprobs.size(); ++t) {
      EXPECT_NEAR(got[i].logprobs[t], want[i].logprobs[t], 1e-4) << i << " " << t;
      ASSERT_EQ(got[i].top[t].size(), 2u);
      EXPECT_EQ(got[i].top[t][0].first, want[i].top[t][0].first);
    }
  }
}

// Accepted drafts never carry a request past max_tokens, an EOS, or a callback's stop.
TEST(Speculative, StopsWhereDecodingWithoutDraftsStops) {
  Loaded m("ds2-lite-tiny");
  const int vocab = m.model->config().vocab_size;
  std::vector<GenerationRequest> reqs = prompts(3, vocab, 13);
  const std::vector<Output> free_run = run(m, reqs, {});
  EngineOptions o;
  o.drafter = std::make_shared<KnownDrafter>(known(reqs, free_run), 6, 0, vocab);
  expect_same(run(m, reqs, o), free_run);  // 13 tokens: drafts of 6 cannot all fit at the end
  // An EOS inside an accepted draft ends the request there.
  std::vector<GenerationRequest> eos = reqs;
  for (size_t i = 0; i < eos.size(); ++i) {
    eos[i].ignore_eos = false;
    eos[i].eos_ids = {free_run[i].tokens[5 + i]};
  }
  const std::vector<Output> want_eos = run(m, eos, {});
  for (size_t i = 0; i < eos.size(); ++i) EXPECT_EQ(want_eos[i].final.reason, FinishReason::Stop);
  expect_same(run(m, eos, o), want_eos);
  // A callback that stops after 4 tokens gets 4.
  const std::vector<Output> stopped = run(m, reqs, o, nullptr, 4);
  for (const Output& out : stopped) {
    EXPECT_EQ(out.tokens.size(), 4u);
    EXPECT_EQ(out.final.reason, FinishReason::Stop);
  }
}

// A cache too small for every sequence at once: drafts take only spare blocks, preempted
// sequences are recomputed from their real tokens, and every block is returned.
TEST(Speculative, PreemptionAndPrefixCachingKeepOnlyRealTokens) {
  Loaded m("ds2-lite-tiny");
  const int vocab = m.model->config().vocab_size;
  std::vector<GenerationRequest> reqs = prompts(6, vocab, 40);
  const std::vector<Output> want = run(m, reqs, {});
  EngineOptions o;
  o.block_size = 16;
  o.kv_cache_tokens = 160;  // 10 blocks
  o.drafter = std::make_shared<KnownDrafter>(known(reqs, want), 5, 7, vocab);
  EngineStats stats;
  expect_same(run(m, reqs, o, &stats), want);
  EXPECT_GT(stats.preemptions, 0);
  EXPECT_GT(stats.accepted_draft_tokens, 0);
  EXPECT_EQ(stats.kv_blocks_used, 0);
  // The blocks a drafting sequence filled are cached under its real tokens: a request that
  // continues from its prompt and output finds them, and decodes as it would alone.
  o.kv_cache_tokens = 1024;
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  const uint64_t first = engine.submit(reqs[5], c.callback());
  engine.wait_idle();
  GenerationRequest next = greedy(known({reqs[5]}, {c.out[first]})[0], 8);
  const uint64_t second = engine.submit(next, c.callback());
  engine.wait_idle();
  EXPECT_GE(c.out[second].final.cached_prompt_tokens, 48);
  EXPECT_EQ(c.out[second].tokens, run(m, {next}, {})[0].tokens);
}

// The prompt-lookup drafter end to end: a prompt that repeats drafts, and the output is the
// output without drafts.
TEST(Speculative, PromptLookupGivesTheOutputWithoutDrafts) {
  Loaded m("ds2-lite-tiny");
  std::vector<int> prompt;
  for (int r = 0; r < 4; ++r)
    for (int t : {11, 12, 13, 14, 15, 16}) prompt.push_back(t);
  std::vector<GenerationRequest> reqs{greedy(prompt, 24), greedy({5, 6, 5, 6, 5}, 24)};
  const std::vector<Output> want = run(m, reqs, {});
  EngineOptions o;
  o.drafter = make_ngram_drafter({4, 1, 3});
  EngineStats stats;
  expect_same(run(m, reqs, o, &stats), want);
  EXPECT_GT(stats.draft_tokens, 0);
}
