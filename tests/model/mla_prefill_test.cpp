// MLA's two prefill forms on the CPU reference: expanded (per-head keys and values made from the
// latent, then the GQA attention op over the packed contexts) against absorbed and against
// transformers, for a fresh prompt and for a prompt's second chunk over its cached first one,
// with two sequences in each step so that the packed contexts start past row 0.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "../fixture_util.h"
#include "../float_compare.h"
#include "backend/backend.h"
#include "model/mla_attention.h"
#include "model/model.h"
#include "model/score.h"
#include "plan/model_catalog.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kBlock = 16;

struct Sequence {
  std::vector<int> ids;
  std::vector<int> table;  // blocks for the whole sequence, fixed across steps
};

// One step: tokens [from, to) of each sequence, every row's logits requested.
ForwardBatch step(const std::vector<Sequence>& seqs, const std::vector<std::pair<int, int>>& ranges) {
  ForwardBatch b;
  b.block_size = kBlock;
  for (size_t i = 0; i < seqs.size(); ++i) {
    SeqSlice s;
    s.query_start = b.num_tokens();
    s.query_len = ranges[i].second - ranges[i].first;
    s.context_len = ranges[i].second;
    s.block_table = seqs[i].table;
    for (int p = ranges[i].first; p < ranges[i].second; ++p) {
      b.logit_rows.push_back(b.num_tokens());
      b.tokens.push_back(seqs[i].ids[p]);
      b.positions.push_back(p);
      b.slots.push_back(s.block_table[p / kBlock] * kBlock + p % kBlock);
    }
    b.seqs.push_back(s);
  }
  return b;
}

// Logits of the two steps (each sequence cut at `cut`), rows in batch order.
std::vector<float> run_two_steps(Model& model, Backend& backend, const std::vector<Sequence>& seqs,
                                 const std::vector<int>& cut) {
  KvCache cache(backend, model.kv_spec(), 64, kBlock);
  std::vector<float> out;
  for (int s = 0; s < 2; ++s) {
    std::vector<std::pair<int, int>> ranges;
    for (size_t i = 0; i < seqs.size(); ++i)
      ranges.emplace_back(s == 0 ? 0 : cut[i], s == 0 ? cut[i] : static_cast<int>(seqs[i].ids.size()));
    const ForwardBatch b = step(seqs, ranges);
    Tensor logits = model.forward(b, cache);
    std::vector<float> host(logits.numel());
    backend.copy_to_host(logits, host.data());
    out.insert(out.end(), host.begin(), host.end());
  }
  return out;
}

class MlaPrefill : public ::testing::TestWithParam<std::string> {};

TEST_P(MlaPrefill, ExpandedMatchesTransformersOnEveryPrompt) {
  const std::string name = GetParam();
  auto backend = make_cpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(name)), *backend, {dsinfer::MlaPrefill::Expanded});
  const nlohmann::json ref = fixture_ref(name);
  for (const auto& seq : ref["sequences"]) {
    std::vector<float> got = score_tokens(*model, *backend, seq["input_ids"].get<std::vector<int>>());
    std::vector<float> want = fixture_logits(name, seq, model->config().vocab_size);
    got.erase(got.begin(), got.end() - static_cast<std::ptrdiff_t>(want.size()));
    EXPECT_LE(max_abs_diff(want, got), 1e-4f * max_abs(want)) << name << ": " << seq["input_ids"].size() << " tokens";
  }
}

// Two sequences, each in two chunks: the second chunk attends over its cached first one.
TEST_P(MlaPrefill, ExpandedEqualsAbsorbedOverACachedPrefix) {
  const std::string name = GetParam();
  auto backend = make_cpu_backend();
  const ModelDir dir = ModelDir::open(fixture_dir(name));
  auto expanded = load_model(dir, *backend, {dsinfer::MlaPrefill::Expanded});
  auto absorbed = load_model(dir, *backend, {dsinfer::MlaPrefill::Absorbed});
  const nlohmann::json ref = fixture_ref(name);
  std::vector<Sequence> seqs;
  int next_block = 0;
  for (const auto& r : ref["sequences"]) {
    Sequence s{r["input_ids"].get<std::vector<int>>(), {}};
    for (size_t b = 0; b * kBlock < s.ids.size(); ++b) s.table.push_back(next_block++);
    std::reverse(s.table.begin(), s.table.end());  // blocks out of order, as a real cache has them
    seqs.push_back(s);
  }
  ASSERT_GE(seqs.size(), 2u);
  std::vector<int> cut;
  for (const Sequence& s : seqs) cut.push_back(static_cast<int>(s.ids.size()) * 2 / 3);
  const std::vector<float> a = run_two_steps(*absorbed, *backend, seqs, cut);
  const std::vector<float> e = run_two_steps(*expanded, *backend, seqs, cut);
  ASSERT_EQ(a.size(), e.size());
  EXPECT_LE(max_abs_diff(a, e), 1e-4f * max_abs(a)) << name;
}

INSTANTIATE_TEST_SUITE_P(DeepSeekFixtures, MlaPrefill, ::testing::Values("ds3-tiny", "ds2-lite-tiny"),
                         fixture_test_name);

// Auto takes the expanded form for a long fresh prompt and for chunks over a cached prefix whose
// keys fit the scratch, not for a short prompt, a decode or verification step, a chunk over a
// prefix too long for the scratch, or a step of many decode tokens beside a short chunk (more
// multiply-adds expanded).
TEST(MlaPrefillChoice, AutoExpandsWhereItSavesWorkAndFitsTheScratch) {
  const int n = kExpandedMinTokens;
  auto step = [](int past, int len, int seqs) {
    ForwardBatch b;
    for (int i = 0; i < seqs; ++i) {
      SeqSlice s;
      s.query_start = b.num_tokens();
      s.query_len = len;
      s.context_len = past + len;
      b.tokens.insert(b.tokens.end(), len, 0);
      b.seqs.push_back(s);
    }
    return b;
  };
  for (const char* name : {"deepseek-v2-lite", "deepseek-v3"}) {
    const ModelConfig c = ModelConfig::from_json(plan::catalog_config(name));
    EXPECT_TRUE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(0, n, 1))) << name;
    EXPECT_TRUE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(512, 1024, 2))) << name;
    EXPECT_TRUE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(3584, 512, 1))) << name;
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(0, n - 1, 1))) << name;
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(200000, 512, 1))) << name;
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(500, 1, 64))) << name;
    ForwardBatch mixed = step(0, n, 1);  // a short chunk beside 63 decode tokens at 2k contexts
    for (int i = 0; i < 63; ++i) {
      SeqSlice s;
      s.query_start = mixed.num_tokens();
      s.query_len = 1;
      s.context_len = 2048;
      mixed.tokens.push_back(0);
      mixed.seqs.push_back(s);
    }
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, mixed)) << name;
    EXPECT_TRUE(mla_runs_expanded(c, dsinfer::MlaPrefill::Expanded, step(100000, 9, 1))) << name;
    // Steps of up to 8 tokens a sequence are recorded as graphs: absorbed, whatever the choice.
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Expanded, step(100, 8, 8))) << name;
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Auto, step(0, 8, 8))) << name;
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Expanded, step(500, 1, 64))) << name;
    EXPECT_FALSE(mla_runs_expanded(c, dsinfer::MlaPrefill::Absorbed, step(0, 4096, 1))) << name;
  }
}

}  // namespace
