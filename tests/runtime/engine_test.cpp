// The engine on real fixture models: greedy output as transformers, batching, preemption,
// prefix caching, priorities, cancellation and limits.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>

#include "engine_test_util.h"
#include "backend/backend.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/model.h"
#include "runtime/engine.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

// Collects every request's tokens and final event.
struct Collector {
  std::mutex mu;
  std::map<uint64_t, std::vector<int>> tokens;
  std::map<uint64_t, TokenEvent> finals;

  TokenCallback callback() {
    return [this](const TokenEvent& ev) {
      std::lock_guard<std::mutex> lock(mu);
      if (ev.token >= 0) tokens[ev.request_id].push_back(ev.token);
      if (ev.finished) finals[ev.request_id] = ev;
      return true;
    };
  }
};

std::vector<int> run_alone(Loaded& m, const GenerationRequest& r, EngineOptions o = {}) {
  o.kv_cache_tokens = 4096;
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  uint64_t id = engine.submit(r, c.callback());
  engine.wait_idle();
  return c.tokens[id];
}

}  // namespace

class FixtureGreedy : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureGreedy, MatchesTransformersTokenForToken) {
  Loaded m(GetParam());
  nlohmann::json g = fixture_ref(GetParam())["greedy"];
  GenerationRequest r = greedy(g["prompt_ids"].get<std::vector<int>>(), static_cast<int>(g["output_ids"].size()));
  r.eos_ids = m.model->config().eos_token_ids;
  EXPECT_EQ(run_alone(m, r), g["output_ids"].get<std::vector<int>>());
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, FixtureGreedy, ::testing::ValuesIn(all_fixtures()), fixture_test_name);

TEST(Engine, BatchedGreedyEqualsSoloAndChunkedPrefillToo) {
  Loaded m("ds2-lite-tiny");
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 12; ++i) {
    std::vector<int> prompt;
    for (int j = 0; j < 5 + 7 * i; ++j) prompt.push_back((i * 131 + j * 17) % 1000 + 2);
    reqs.push_back(greedy(prompt, 6 + i % 4));
  }
  std::vector<std::vector<int>> solo;
  for (auto& r : reqs) solo.push_back(run_alone(m, r));
  EngineOptions o;
  o.kv_cache_tokens = 4096;
  o.max_batched_tokens = 40;  // forces chunked prefill of the longer prompts
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  std::vector<uint64_t> ids;
  for (auto& r : reqs) ids.push_back(engine.submit(r, c.callback()));
  engine.wait_idle();
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(c.tokens[ids[i]], solo[i]) << "request " << i;
    EXPECT_EQ(c.finals[ids[i]].reason, FinishReason::Length);
  }
}

TEST(Engine, PreemptsWhenTheCacheRunsOutAndStillFinishesEveryRequestCorrectly) {
  Loaded m("ds2-lite-tiny");
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 6; ++i) {
    std::vector<int> prompt(20, 0);
    for (int j = 0; j < 20; ++j) prompt[j] = (i * 37 + j * 11) % 1000 + 2;
    reqs.push_back(greedy(prompt, 40));
  }
  std::vector<std::vector<int>> solo;
  for (auto& r : reqs) solo.push_back(run_alone(m, r));
  EngineOptions o;
  o.block_size = 16;
  o.kv_cache_tokens = 160;  // 10 blocks: room for 2-3 of the 60-token sequences at once
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  std::vector<uint64_t> ids;
  for (auto& r : reqs) ids.push_back(engine.submit(r, c.callback()));
  engine.wait_idle();
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(c.tokens[ids[i]], solo[i]) << "request " << i;
  EXPECT_GT(engine.stats().preemptions, 0);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

// The cache's block size: as asked, or the model's (64 for MLA's latent cache, 16 otherwise), as
// the engine allocates it; a negative one is refused.
TEST(Engine, CacheBlocksOfTheModelsSizeUnlessAsked) {
  Loaded ds("ds2-lite-tiny"), qwen("qwen2-tiny");
  EXPECT_EQ(cache_block_size(0, *ds.model), 64);
  EXPECT_EQ(cache_block_size(0, *qwen.model), 16);
  EXPECT_EQ(cache_block_size(32, *ds.model), 32);
  EXPECT_THROW(cache_block_size(-16, *qwen.model), Error);
  EngineOptions o;
  o.kv_cache_tokens = 1000;  // 15 blocks of 64
  Engine engine(*ds.model, *ds.backend, o);
  EXPECT_EQ(engine.kv_cache_tokens(), 960);
  EXPECT_EQ(engine.stats().kv_blocks_total, 15);
}

TEST(Engine, PrefixCacheReusesASharedSystemPromptAndGivesTheSameTokens) {
  Loaded m("ds2-lite-tiny");
  const int shared = 3 * cache_block_size(0, *m.model);  // the prefix cache keeps whole blocks (64 for MLA)
  std::vector<int> system(shared);
  for (int j = 0; j < shared; ++j) system[j] = (j * 29) % 1000 + 2;
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  std::vector<uint64_t> ids;
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 3; ++i) {
    std::vector<int> p = system;
    p.push_back(100 + i);
    reqs.push_back(greedy(p, 5));
    ids.push_back(engine.submit(reqs.back(), c.callback()));
    engine.wait_idle();  // one after another, so the later ones find the first one's blocks
  }
  EXPECT_EQ(c.finals[ids[0]].cached_prompt_tokens, 0);
  EXPECT_EQ(c.finals[ids[1]].cached_prompt_tokens, shared);
  EXPECT_EQ(c.finals[ids[2]].cached_prompt_tokens, shared);
  EXPECT_EQ(engine.stats().prefix_cache_hits, 2 * shared);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(c.tokens[ids[i]], run_alone(m, reqs[i])) << i;
}

TEST(Engine, HigherPriorityRunsFirst) {
  Loaded m("ds2-lite-tiny");
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  o.max_running = 1;
  Engine engine(*m.model, *m.backend, o);
  std::mutex mu;
  std::vector<int> order;
  auto cb = [&](int tag) {
    return [&, tag](const TokenEvent& ev) {
      if (ev.finished) {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(tag);
      }
      return true;
    };
  };
  std::atomic<bool> started{false};
  engine.submit(greedy({5, 6, 7}, 30), [&](const TokenEvent& ev) {
    started = true;
    return cb(0)(ev);
  });
  while (!started) std::this_thread::yield();  // the blocker runs before the others arrive
  GenerationRequest low = greedy({8, 9}, 3), high = greedy({10, 11}, 3);
  low.priority = 5;
  high.priority = -1;
  engine.submit(low, cb(1));
  engine.submit(high, cb(2));
  engine.wait_idle();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[1], 2);
  EXPECT_EQ(order[2], 1);
}

TEST(Engine, CancelFreesBlocksAndStopsAtEosOrCallback) {
  Loaded m("ds2-lite-tiny");
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  o.prefix_caching = false;
  Engine engine(*m.model, *m.backend, o);
  std::atomic<int> seen{0};
  std::atomic<int> reason{-1};
  uint64_t id = engine.submit(greedy({3, 4, 5}, 1000), [&](const TokenEvent& ev) {
    ++seen;
    if (ev.finished) reason = static_cast<int>(ev.reason);
    return true;
  });
  while (seen < 3) std::this_thread::yield();
  engine.cancel(id);
  engine.wait_idle();
  EXPECT_EQ(reason.load(), static_cast<int>(FinishReason::Cancelled));
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  // A callback returning false ends the request with reason Stop.
  Collector c;
  int n = 0;
  uint64_t id2 = engine.submit(greedy({3, 4, 5}, 50), [&](const TokenEvent& ev) {
    c.callback()(ev);
    return ++n < 4;
  });
  engine.wait_idle();
  EXPECT_EQ(c.tokens[id2].size(), 4u);
  EXPECT_EQ(c.finals[id2].reason, FinishReason::Stop);
  // EOS stops generation unless ignored.
  std::vector<int> free_run = run_alone(m, greedy({3, 4, 5}, 8));
  GenerationRequest r = greedy({3, 4, 5}, 8);
  r.ignore_eos = false;
  r.eos_ids = {free_run[2]};
  Collector c3;
  uint64_t id3 = engine.submit(r, c3.callback());
  engine.wait_idle();
  EXPECT_EQ(c3.tokens[id3].size(), 3u);
  EXPECT_EQ(c3.finals[id3].reason, FinishReason::Stop);
}

// min_tokens bars the EOS ids until that many tokens: a run that would stop at its third token
// goes on (the EOS's next best is taken, so no EOS among the first min_tokens), and may stop at
// an EOS after them; min_tokens past max_tokens is refused.
TEST(Engine, MinTokensBarsEosUntilReached) {
  Loaded m("ds2-lite-tiny");
  EngineOptions o;
  o.kv_cache_tokens = 256;
  Engine engine(*m.model, *m.backend, o);
  const std::vector<int> free_run = run_alone(m, greedy({3, 4, 5}, 8));
  GenerationRequest r = greedy({3, 4, 5}, 12);
  r.ignore_eos = false;
  r.eos_ids = {free_run[2]};
  r.min_tokens = 6;
  Collector c;
  const uint64_t id = engine.submit(r, c.callback());
  engine.wait_idle();
  const std::vector<int>& out = c.tokens[id];
  ASSERT_GE(out.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_NE(out[i], free_run[2]) << "EOS sampled at token " << i;
  EXPECT_EQ(std::vector<int>(out.begin(), out.begin() + 2), std::vector<int>(free_run.begin(), free_run.begin() + 2));
  if (out.size() < 12u) {  // stopped early: only at an EOS after min_tokens
    EXPECT_EQ(out.back(), free_run[2]);
    EXPECT_EQ(c.finals[id].reason, FinishReason::Stop);
  }
  r.min_tokens = 13;
  EXPECT_THROW(engine.submit(r, [](const TokenEvent&) { return true; }), Error);
}

TEST(Engine, RunsARequestThatFillsTheWholeCache) {
  Loaded m("ds2-lite-tiny");
  EngineOptions o;
  o.block_size = 16;
  o.kv_cache_tokens = 16;  // one block: prompt and output together fill it
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  uint64_t id = engine.submit(greedy({3, 4, 5}, 13), c.callback());
  engine.wait_idle();
  EXPECT_EQ(c.tokens[id].size(), 13u);
  EXPECT_EQ(c.finals[id].reason, FinishReason::Length);
}

TEST(Engine, RejectsRequestsThatCanNeverFitAndRefusesWhenTheQueueIsFull) {
  Loaded m("ds2-lite-tiny");
  EngineOptions o;
  o.kv_cache_tokens = 64;
  o.max_waiting = 2;
  o.max_running = 1;
  Engine engine(*m.model, *m.backend, o);
  EXPECT_THROW(engine.submit(greedy(std::vector<int>(60, 3), 10), [](const TokenEvent&) { return true; }), Error);
  EXPECT_THROW(engine.submit(greedy({}, 10), [](const TokenEvent&) { return true; }), Error);
  EXPECT_THROW(engine.submit(greedy({5000}, 10), [](const TokenEvent&) { return true; }), Error);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 8; ++i) {
    try {
      engine.submit(greedy({3, 4}, 20), [](const TokenEvent&) { return true; });
      ++accepted;
    } catch (const EngineFull&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GE(accepted, 2);
  engine.wait_idle();
}

// Sequences that wait hold no blocks: prefixes matched by a sequence that cannot be admitted yet
// are released, so preempted and queued sequences sharing cached prefixes cannot pin the whole
// cache and starve the running ones (which once spun forever with every request waiting).
TEST(Engine, WaitingSequencesSharingCachedPrefixesNeverStarveTheCache) {
  Loaded m("ds2-lite-tiny");
  EngineOptions o;
  o.block_size = 16;
  o.kv_cache_tokens = 128;  // 8 blocks for 12 sequences of up to 7 blocks
  o.max_batched_tokens = 32;
  Engine engine(*m.model, *m.backend, o);
  Collector c;
  std::vector<uint64_t> ids;
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 12; ++i) {
    std::vector<int> prompt(32 + 4 * i);
    for (size_t j = 0; j < prompt.size(); ++j) prompt[j] = j < 32 ? static_cast<int>(j) + 2 : (i * 53 + j * 7) % 1000 + 2;
    reqs.push_back(greedy(prompt, 24));
    ids.push_back(engine.submit(reqs.back(), c.callback()));
  }
  auto idle = std::async(std::launch::async, [&] { engine.wait_idle(); });
  ASSERT_EQ(idle.wait_for(std::chrono::seconds(120)), std::future_status::ready) << "requests never finished";
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(c.tokens[ids[i]], run_alone(m, reqs[i])) << "request " << i;
  EXPECT_GT(engine.stats().preemptions, 0);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

// A model whose logits are NaN (broken weights) fails its requests by name and frees them;
// it does not hand them token 0.
TEST(Engine, NanLogitsFailTheRequestWithAClearError) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dsinfer_nan_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  TensorStore store = TensorStore::open_dir(fixture_dir("ds2-lite-tiny"));
  std::map<std::string, OwnedTensor> out;
  for (const std::string& name : store.names()) {
    const Tensor& t = store.get(name).view;
    OwnedTensor o{t.dtype, t.shape, {}};
    o.bytes.assign(static_cast<const unsigned char*>(t.data), static_cast<const unsigned char*>(t.data) + t.nbytes());
    if (name == "lm_head.weight")
      for (size_t i = 0; i + 1 < o.bytes.size(); i += 2) o.bytes[i] = 0xC0, o.bytes[i + 1] = 0x7F;  // bf16 NaN
    out[name] = std::move(o);
  }
  write_safetensors((dir / "model.safetensors").string(), out);
  std::filesystem::copy_file(fixture_dir("ds2-lite-tiny") + "/config.json", dir / "config.json");
  auto backend = make_cpu_backend();
  auto model = load_model(ModelDir::open(dir.string()), *backend);
  EngineOptions o;
  o.kv_cache_tokens = 256;
  Engine engine(*model, *backend, o);
  Collector c;
  const uint64_t id = engine.submit(greedy({3, 4, 5}, 4), c.callback());
  engine.wait_idle();
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(c.tokens[id].empty());
  EXPECT_EQ(c.finals[id].reason, FinishReason::Error);
  EXPECT_NE(c.finals[id].error.find("NaN"), std::string::npos) << c.finals[id].error;
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}
