// The engine over a tensor-parallel group (load_for_generation with tensor_parallel 2, CPU
// ranks): batched greedy generation gives the tokens of the unsplit model, GQA and MLA + MoE.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "../fixture_util.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

std::vector<std::vector<int>> generate_all(const std::string& fixture, int tensor_parallel,
                                           const std::vector<std::vector<int>>& prompts, bool expert_parallel = false) {
  LoadOptions lo;
  lo.tensor_parallel = tensor_parallel;
  lo.model.expert_parallel = expert_parallel;
  LoadedModel m = load_for_generation(fixture_dir(fixture), lo);
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  o.max_batched_tokens = 16;  // chunked prefill too
  Engine engine(*m.model, *m.backend, o);
  std::mutex mu;
  std::map<uint64_t, std::vector<int>> tokens;
  std::vector<uint64_t> ids;
  for (const auto& p : prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.max_tokens = 10;
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    ids.push_back(engine.submit(r, [&](const TokenEvent& ev) {
      std::lock_guard lock(mu);
      if (ev.token >= 0) tokens[ev.request_id].push_back(ev.token);
      return true;
    }));
  }
  engine.wait_idle();
  std::vector<std::vector<int>> out;
  for (uint64_t id : ids) out.push_back(tokens[id]);
  return out;
}

}  // namespace

class TensorParallelEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallelEngine, BatchedGreedyOnTwoRanksEqualsOneRank) {
  const std::vector<std::vector<int>> prompts = {{9707, 11, 1879}, {785, 6722, 315, 9625, 374, 12095, 13, 576, 1207, 2038, 3791, 20001, 11, 400, 16, 17, 18}, {1}};
  const auto split = generate_all(GetParam(), 2, prompts);
  EXPECT_EQ(split, generate_all(GetParam(), 1, prompts));
  for (const auto& t : split) EXPECT_EQ(t.size(), 10u);
  if (GetParam() == "ds3-tiny") EXPECT_EQ(generate_all(GetParam(), 2, prompts, /*expert_parallel=*/true), split);
}

INSTANTIATE_TEST_SUITE_P(GqaAndMla, TensorParallelEngine, ::testing::Values("qwen2-tiny", "ds3-tiny"),
                         fixture_test_name);
