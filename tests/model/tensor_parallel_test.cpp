// Tensor parallelism on the CPU: every fixture (GQA and MLA attention, dense and MoE blocks) split
// over 2 ranks gives the whole model's logits, with the MoE's experts split by features or whole
// (expert parallelism); what does not split is refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "../fixture_util.h"
#include "../fp8_checkpoint_util.h"
#include "core/error.h"
#include "model/score.h"
#include "model/tensor_parallel.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

namespace {

// A model directory (a fixture's name, or a path) loaded over `size` CPU ranks.
struct Group {
  std::vector<std::unique_ptr<Backend>> backends;
  std::unique_ptr<Model> model;
  Group(const std::string& name, int size, bool expert_parallel = false)
      : backends(make_backend_group(Device{}, size)) {
    ModelDir dir = ModelDir::open(name.find('/') == std::string::npos ? fixture_dir(name) : name);
    auto store = std::make_shared<const TensorStore>(TensorStore::open_dir(dir.path));
    ModelOptions o;
    o.expert_parallel = expert_parallel;
    model = load_tensor_parallel(ModelConfig::from_json(dir.config), store, backends, o);
  }
  Backend& backend() { return *backends.front(); }
};

// The two models' logits of `ids` agree within float32 summation order.
void expect_same_logits(Group& whole, Group& split, const std::vector<int>& ids, const std::string& what) {
  const std::vector<float> a = score_tokens(*whole.model, whole.backend(), ids);
  const std::vector<float> b = score_tokens(*split.model, split.backend(), ids);
  ASSERT_EQ(a.size(), b.size());
  float max_logit = 0.0f, max_diff = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    max_logit = std::max(max_logit, std::fabs(a[i]));
    max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(max_diff, 1e-5f * max_logit) << what << ": max |diff| " << max_diff << " of max |logit| " << max_logit;
}

}  // namespace

class TensorParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallel, TwoRanksGiveTheWholeModelsLogits) {
  const std::string name = GetParam();
  Group whole(name, 1), split(name, 2);
  EXPECT_EQ(split.backends.size(), 1u);  // the model took the other ranks' backends
  EXPECT_EQ(split.model->layout(), (plan::Layout{2, 1, 1, 1}));
  EXPECT_EQ(whole.model->layout(), plan::Layout{});
  // A rank caches its key/value heads; MLA's latent serves every head, so each rank keeps all of it.
  if (whole.model->config().is_deepseek())
    EXPECT_EQ(split.model->kv_spec().bytes_per_token(), whole.model->kv_spec().bytes_per_token());
  else
    EXPECT_EQ(2 * split.model->kv_spec().bytes_per_token(), whole.model->kv_spec().bytes_per_token());
  EXPECT_LT(split.model->weight_bytes(), whole.model->weight_bytes());
  const nlohmann::json ref = fixture_ref(name);
  ASSERT_FALSE(ref["sequences"].empty());
  const std::vector<int> ids = ref["sequences"][0]["input_ids"].get<std::vector<int>>();
  expect_same_logits(whole, split, ids, name);
  if (whole.model->config().n_routed_experts > 0) {  // the experts whole, half of them a rank
    Group experts(name, 2, /*expert_parallel=*/true);
    expect_same_logits(whole, experts, ids, name + ", expert-parallel");
    EXPECT_EQ(experts.model->layout(), (plan::Layout{2, 1, 1, 2}));  // as dsinfer plan --tp 2 --ep 2
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, TensorParallel, ::testing::ValuesIn(all_fixtures()),
                         fixture_test_name);

TEST(TensorParallelErrors, HeadsThatDoNotSplitAreRefusedByName) {
  auto message = [](const std::string& name, int size) {
    try {
      Group g(name, size);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("llama-tiny", 4).find("2 key/value heads do not split evenly over 4 ranks"), std::string::npos);
  EXPECT_NE(message("ds3-tiny", 8).find("4 attention heads do not split evenly over 8 ranks"), std::string::npos);
  try {
    Group g("ds3-tiny", 3, /*expert_parallel=*/true);
    ADD_FAILURE() << "8 experts over 3 ranks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not split evenly over 3 ranks"), std::string::npos) << e.what();
  }
  EXPECT_NE(message("qwen2-tiny", 0).find("tensor-parallel size 0"), std::string::npos);
}

// Each rank holds a slice of the vocabulary, so the whole vocabulary is checked before the lookup,
// and before the ranks start: the group stays whole for the next batch.
TEST(TensorParallelErrors, TokensOutsideTheVocabularyAreRefusedWholeOrSplit) {
  for (int size : {1, 2}) {
    Group g("qwen2-tiny", size);
    const int vocab = g.model->config().vocab_size;
    EXPECT_EQ(g.model->failure(), "");
    for (int bad : {vocab, -1}) {
      try {
        score_tokens(*g.model, g.backend(), {1, bad});
        ADD_FAILURE() << "token " << bad << " accepted on " << size << " ranks";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
      }
    }
    EXPECT_EQ(score_tokens(*g.model, g.backend(), {1, 2}).size(), 2u * vocab);
  }
}

// A step that fails on the ranks after a collective (a slot past the cache, found by the first
// layer's cache write, after the embedding's all-reduce) fails with its cause, and the group, its
// collectives aborted, refuses every later step by name.
TEST(TensorParallelErrors, AFailedStepStopsTheGroupWithItsCause) {
  Group g("qwen2-tiny", 2);
  KvCache cache(g.backend(), g.model->kv_spec(), 1, 16);
  ForwardBatch b;
  b.block_size = 16;
  b.tokens = {1, 2};
  b.positions = {0, 1};
  b.slots = {0, 16};  // one block of 16 slots: 16 is past it
  SeqSlice s;
  s.query_len = s.context_len = 2;
  s.block_table = {0};
  b.seqs.push_back(s);
  b.logit_rows = {1};
  try {
    g.model->forward(b, cache);
    ADD_FAILURE() << "a slot past the cache was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cache_write"), std::string::npos) << e.what();
  }
  EXPECT_NE(g.model->failure().find("cache_write"), std::string::npos) << g.model->failure();
  b.slots = {0, 1};
  try {
    g.model->forward(b, cache);
    ADD_FAILURE() << "the group ran on after a failed step";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stopped after a rank failed"), std::string::npos) << e.what();
  }
}

// FP8 block-scaled weights split on whole scale blocks (8 x 8 here: every part of ds3-tiny is a
// multiple of 8); blocks of 16 would cut the experts' 8-feature parts, and are refused.
TEST(TensorParallelFp8, SplitsOnWholeScaleBlocksAndRefusesToCutOne) {
  const fs::path root = fs::temp_directory_path() / ("dsinfer_tp_fp8_" + std::to_string(::getpid()));
  make_fp8_checkpoints("ds3-tiny", 8, root / "fp8_8", root / "ref_8");
  Group whole((root / "fp8_8").string(), 1), split((root / "fp8_8").string(), 2),
      experts((root / "fp8_8").string(), 2, /*expert_parallel=*/true);
  const std::vector<int> ids = fixture_ref("ds3-tiny")["sequences"][0]["input_ids"].get<std::vector<int>>();
  expect_same_logits(whole, split, ids, "ds3-tiny in FP8, blocks of 8");
  expect_same_logits(whole, experts, ids, "ds3-tiny in FP8, blocks of 8, expert-parallel");
  make_fp8_checkpoints("ds3-tiny", 16, root / "fp8_16", root / "ref_16");
  try {
    Group cut((root / "fp8_16").string(), 2);
    ADD_FAILURE() << "blocks of 16 split into parts of 8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not whole 16x16 scale blocks"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}
