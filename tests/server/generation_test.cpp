// Generation's n choices against a real engine (a fixture on the CPU): every choice runs to its
// end and is handed out in turn; a request whose later choices the queue refuses leaves none of
// its earlier ones running; cancelling reaches every choice.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "../runtime/engine_test_util.h"
#include "server/generation.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

GenerationSpec spec_of(int n, int max_tokens) {
  GenerationSpec s;
  s.request = greedy({1, 2, 3, 4}, max_tokens);
  s.n = n;
  s.arrival = Clock::now();
  return s;
}

// Long enough that a choice left running would still be running when drains() gives up.
constexpr int kLong = 4000;

EngineOptions options() {
  EngineOptions o;
  o.kv_cache_tokens = 16384;
  return o;
}

// Waits (up to 2 s) until the engine holds no request (cancellations are taken at its next step).
bool drains(const Engine& e) {
  for (int i = 0; i < 200; ++i) {
    const EngineStats s = e.stats();
    if (s.running == 0 && s.waiting == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST(Generation, EveryChoiceRunsToItsEndAndTakesTurns) {
  Loaded m("qwen2-tiny");
  Engine engine(*m.model, *m.backend, options());
  Generation gen(engine, spec_of(3, 6));
  ASSERT_EQ(gen.choices(), 3);
  std::vector<int> tokens(3, 0), ends(3, 0);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (std::optional<GenerationUpdate> u = gen.take(deadline)) {
    ASSERT_GE(u->index, 0);
    ASSERT_LT(u->index, 3);
    EXPECT_EQ(ends[u->index], 0) << "choice " << u->index << " updated after its end";
    tokens[u->index] += static_cast<int>(u->tokens.size());
    if (u->finished) ++ends[u->index];
  }
  EXPECT_EQ(tokens, (std::vector<int>{6, 6, 6}));
  EXPECT_EQ(ends, (std::vector<int>{1, 1, 1}));
  EXPECT_TRUE(gen.finished());
}

TEST(Generation, ChoicesTheQueueRefusesCancelTheOnesBefore) {
  Loaded m("qwen2-tiny");
  EngineOptions o = options();
  o.max_running = 1;  // behind `busy`, every choice waits: the third finds the queue full
  o.max_waiting = 2;
  Engine engine(*m.model, *m.backend, o);
  Generation busy(engine, spec_of(1, kLong));
  EXPECT_THROW(Generation(engine, spec_of(3, kLong)), EngineFull);
  busy.cancel();
  EXPECT_TRUE(drains(engine));
}

TEST(Generation, CancelReachesEveryChoice) {
  Loaded m("qwen2-tiny");
  Engine engine(*m.model, *m.backend, options());
  Generation gen(engine, spec_of(3, kLong));
  gen.cancel();
  EXPECT_TRUE(drains(engine));
}
