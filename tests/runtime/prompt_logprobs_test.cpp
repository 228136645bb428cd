// Prompt logprobs (OpenAI's echo, vLLM's prompt_logprobs): every prompt token after the first
// scored from the logits at the position before it, as transformers computes them, whatever the
// chunking, with or without generation, never from the prefix cache.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <mutex>

#include "engine_test_util.h"
#include "model/score.h"
#include "runtime/engine.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

struct Scored {
  std::vector<SampleResult> prompt;
  std::vector<int> tokens;
  FinishReason reason = FinishReason::None;
};

Scored score(Model& model, Backend& backend, const std::vector<int>& prompt, int max_tokens, int budget, int top_n = 3) {
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  o.max_batched_tokens = budget;
  Engine engine(model, backend, o);
  Scored out;
  std::mutex mu;
  for (int round = 0; round < 2; ++round) {  // the second time its blocks are in the prefix cache
    GenerationRequest r = greedy(prompt, max_tokens);
    r.prompt_logprobs = top_n;
    Scored s;
    engine.submit(r, [&](const TokenEvent& ev) {
      std::lock_guard lock(mu);
      if (!ev.prompt_logprobs.empty()) {
        EXPECT_TRUE(s.prompt.empty()) << "prompt logprobs sent twice";
        s.prompt = ev.prompt_logprobs;
      }
      if (ev.token >= 0) s.tokens.push_back(ev.token);
      if (ev.finished) s.reason = ev.reason;
      return true;
    });
    engine.wait_idle();
    if (round == 1) {
      EXPECT_EQ(s.tokens, out.tokens);
      EXPECT_EQ(s.prompt.size(), out.prompt.size());
      for (size_t i = 0; i < s.prompt.size() && i < out.prompt.size(); ++i)
        EXPECT_FLOAT_EQ(s.prompt[i].logprob, out.prompt[i].logprob) << i;
    }
    if (round == 0) out = s;
  }
  return out;
}

// log_softmax(row)[token].
double reference_logprob(const float* row, int vocab, int token) {
  double mx = row[0], sum = 0;
  for (int v = 0; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
  for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
  return row[token] - mx - std::log(sum);
}

}  // namespace

// ds2-lite-tiny's reference holds every position's logits: the prompt logprobs are theirs.
TEST(PromptLogprobs, AreTransformersLogSoftmaxAtThePositionBefore) {
  Loaded m("ds2-lite-tiny");
  const int vocab = m.model->config().vocab_size;
  for (const auto& seq : fixture_ref("ds2-lite-tiny")["sequences"]) {
    const std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
    ASSERT_EQ(seq["logits_rows"], "all");
    const std::vector<float> ref = fixture_logits("ds2-lite-tiny", seq, vocab);
    const Scored s = score(*m.model, *m.backend, ids, 0, 16);
    EXPECT_EQ(s.reason, FinishReason::Length);
    EXPECT_TRUE(s.tokens.empty());
    ASSERT_EQ(s.prompt.size(), ids.size() - 1);
    for (size_t p = 0; p + 1 < ids.size(); ++p) {
      const float* row = ref.data() + p * vocab;
      EXPECT_EQ(s.prompt[p].token, ids[p + 1]);
      EXPECT_NEAR(s.prompt[p].logprob, reference_logprob(row, vocab, ids[p + 1]), 1e-3) << "position " << p;
      ASSERT_EQ(s.prompt[p].top_logprobs.size(), 3u);
      EXPECT_EQ(s.prompt[p].top_logprobs[0].first, std::max_element(row, row + vocab) - row) << "position " << p;
    }
  }
}

// Every family, chunked or whole, with tokens generated after: the logits `dsinfer score` gives.
TEST(PromptLogprobs, AreTheSameChunkedOrWholeAndBeforeGeneration) {
  for (const std::string& name : all_fixtures()) {
    Loaded m(name);
    const int vocab = m.model->config().vocab_size;
    const std::vector<int> ids = fixture_ref(name)["sequences"][1]["input_ids"].get<std::vector<int>>();
    const std::vector<float> logits = score_tokens(*m.model, *m.backend, ids);
    const Scored whole = score(*m.model, *m.backend, ids, 0, 512, 0);
    const Scored chunked = score(*m.model, *m.backend, ids, 5, 7, 0);
    ASSERT_EQ(whole.prompt.size(), ids.size() - 1) << name;
    ASSERT_EQ(chunked.prompt.size(), ids.size() - 1) << name;
    EXPECT_EQ(chunked.tokens.size(), 5u) << name;
    for (size_t p = 0; p + 1 < ids.size(); ++p) {
      const double want = reference_logprob(logits.data() + p * vocab, vocab, ids[p + 1]);
      EXPECT_NEAR(whole.prompt[p].logprob, want, 1e-4) << name << " position " << p;
      EXPECT_NEAR(chunked.prompt[p].logprob, want, 1e-4) << name << " position " << p;
      EXPECT_TRUE(whole.prompt[p].top_logprobs.empty());
    }
  }
}

TEST(PromptLogprobs, MaxTokensZeroOnlyWithThem) {
  Loaded m("qwen2-tiny");
  EngineOptions o;
  o.kv_cache_tokens = 256;
  Engine engine(*m.model, *m.backend, o);
  GenerationRequest r = greedy({1, 2, 3}, 0);
  EXPECT_THROW(engine.submit(r, [](const TokenEvent&) { return true; }), Error);
  r.prompt_logprobs = 21;
  EXPECT_THROW(engine.submit(r, [](const TokenEvent&) { return true; }), Error);
}

// A prompt scored with nothing to generate, in the same step as a sequence that samples (both
// admitted together): each reads its own rows of logits.
TEST(PromptLogprobs, AScoredPromptBesideASamplingOneInOneStep) {
  Loaded m("qwen2-tiny");
  const int vocab = m.model->config().vocab_size;
  const std::vector<int> scored = fixture_ref("qwen2-tiny")["sequences"][1]["input_ids"].get<std::vector<int>>();
  const std::vector<int> greedy_prompt = {9707, 11, 1879, 374};
  const std::vector<float> logits = score_tokens(*m.model, *m.backend, scored);
  const std::vector<int> alone = score(*m.model, *m.backend, greedy_prompt, 6, 512).tokens;
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  Engine engine(*m.model, *m.backend, o);
  std::mutex mu;
  std::vector<SampleResult> prompt_lps;
  std::vector<int> tokens;
  bool submitted = false;
  // Both are submitted from the first request's callback (the engine's thread), so the next
  // step admits them together.
  engine.submit(greedy({1, 2}, 2), [&](const TokenEvent& ev) {
    if (submitted || ev.token < 0) return true;
    submitted = true;
    GenerationRequest a = greedy(scored, 0);
    a.prompt_logprobs = 0;
    engine.submit(a, [&](const TokenEvent& e) {
      std::lock_guard lock(mu);
      if (!e.prompt_logprobs.empty()) prompt_lps = e.prompt_logprobs;
      return true;
    });
    engine.submit(greedy(greedy_prompt, 6), [&](const TokenEvent& e) {
      std::lock_guard lock(mu);
      if (e.token >= 0) tokens.push_back(e.token);
      return true;
    });
    return true;
  });
  engine.wait_idle();
  EXPECT_EQ(tokens, alone);
  ASSERT_EQ(prompt_lps.size(), scored.size() - 1);
  for (size_t p = 0; p + 1 < scored.size(); ++p)
    EXPECT_NEAR(prompt_lps[p].logprob, reference_logprob(logits.data() + p * vocab, vocab, scored[p + 1]), 1e-4) << p;
}
