// Speculative decoding with DeepSeek's multi-token-prediction layer: the layer itself (what it
// joins, where it reads and writes its cache), the batch it runs after a step, and the engine,
// whose output must not depend on the drafts, whatever the layer's weights.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <mutex>

#include "../mtp_checkpoint_util.h"
#include "../temp_path.h"
#include "backend/weight.h"
#include "engine_test_util.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"
#include "runtime/mtp_batch.h"
#include "runtime/speculative_options.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kBlock = 4;

std::vector<int> prompt_ids() { return fixture_ref("ds3-tiny")["sequences"][1]["input_ids"].get<std::vector<int>>(); }

struct MtpModel {
  TempPath dir;
  MtpNorms norms;
  std::unique_ptr<Backend> backend = make_cpu_backend();
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;

  MtpModel(MtpWeights kind, const std::string& name) : dir(name) {
    norms = make_mtp_checkpoint("ds3-tiny", kind, dir.path());
    ModelOptions o;
    o.mtp = true;
    model = load_model(ModelDir::open(dir.path().string()), *backend, o);
    cache = std::make_unique<KvCache>(*backend, model->kv_spec(), 64, kBlock);
  }
};

// A sequence holding `tokens` in blocks 0, 1, 2, ...
Sequence sequence(const std::vector<int>& tokens) {
  Sequence s;
  s.tokens = tokens;
  for (int b = 0; b * kBlock < static_cast<int>(tokens.size()) + kBlock; ++b) s.blocks.push_back(b);
  return s;
}

// The main model's step over positions [first, first + n) of `s`, with logits for every row.
ForwardBatch main_step(const Sequence& s, int first, int n) {
  ForwardBatch b;
  b.block_size = kBlock;
  b.seqs.push_back(SeqSlice{0, n, first + n, s.blocks});
  for (int p = first; p < first + n; ++p) {
    b.logit_rows.push_back(b.num_tokens());
    b.tokens.push_back(s.tokens[p]);
    b.positions.push_back(p);
    b.slots.push_back(s.blocks[p / kBlock] * kBlock + p % kBlock);
  }
  return b;
}

std::vector<float> host(const Tensor& t) { return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.numel()); }

// The MTP layer's logits after the main model's step over [first, first + n): every row's, or
// the last one's.
std::vector<float> mtp_after(MtpModel& m, Sequence& s, int first, int n, bool every_row) {
  m.model->forward(main_step(s, first, n), *m.cache);
  MtpBatch mb = mtp_batch({{&s, first, n, 0, true}}, kBlock);
  if (every_row) {
    mb.batch.logit_rows.clear();
    for (int r = 0; r < n; ++r) mb.batch.logit_rows.push_back(r);
  }
  return host(m.model->mtp_forward(mb.batch, mb.hidden_rows, *m.cache));
}

std::vector<float> row_f32(const TensorStore& store, const std::string& name, int64_t row) {
  const Tensor& t = store.get(name).view;
  std::vector<float> out(static_cast<size_t>(t.dim(1)));
  weight_row_to_f32(Weight{t, {}, 0, 0}, row, out.data());
  return out;
}

std::vector<double> rms_norm(const std::vector<double>& v, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double x : v) ss += x * x;
  const double inv = 1.0 / std::sqrt(ss / v.size() + eps);
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] * inv * w[i];
  return out;
}

double max_abs(const std::vector<float>& v, size_t from, size_t n) {
  double m = 0;
  for (size_t i = from; i < from + n; ++i) m = std::max(m, std::fabs(static_cast<double>(v[i])));
  return m;
}

}  // namespace

TEST(MtpLayer, JoinsTheEmbeddingOfTheTokenAfterEachPosition) {
  MtpModel m(MtpWeights::EmbeddingOnly, "mtp_embedding");
  const std::vector<int> ids = prompt_ids();
  Sequence s = sequence(std::vector<int>(ids.begin(), ids.begin() + 10));
  const std::vector<float> got = mtp_after(m, s, 0, 9, true);
  // Each row: head(shared_head.norm(enorm(embed(next token)))), the layer adding nothing.
  TensorStore store = TensorStore::open_dir(m.dir.path().string());
  const int vocab = m.model->config().vocab_size;
  const double eps = m.model->config().rms_norm_eps;
  const std::vector<float> ones(m.norms.enorm.size(), 1.0f);
  for (int i = 0; i < 9; ++i) {
    const std::vector<float> e = row_f32(store, "model.embed_tokens.weight", s.tokens[i + 1]);
    const std::vector<double> x =
        rms_norm(rms_norm(std::vector<double>(e.begin(), e.end()), m.norms.enorm, eps), m.norms.head_norm, eps);
    const double scale = max_abs(got, static_cast<size_t>(i) * vocab, vocab);
    for (int v = 0; v < vocab; v += 97) {
      const std::vector<float> w = row_f32(store, "lm_head.weight", v);
      double want = 0;
      for (size_t k = 0; k < x.size(); ++k) want += x[k] * w[k];
      ASSERT_NEAR(got[static_cast<size_t>(i) * vocab + v], want, 1e-4 * scale) << "position " << i << ", token " << v;
    }
  }
}

TEST(MtpLayer, TakesTheMainModelsFinalHiddenStateAtTheSamePosition) {
  MtpModel m(MtpWeights::HiddenOnly, "mtp_hidden");
  const std::vector<int> ids = prompt_ids();
  Sequence s = sequence(std::vector<int>(ids.begin(), ids.begin() + 12));
  const std::vector<float> main = host(m.model->forward(main_step(s, 0, 11), *m.cache));
  const std::vector<float> got = mtp_after(m, s, 0, 11, true);
  // hnorm and shared_head.norm of ones renormalize the hidden state: each row is the main
  // model's logits at that position over a positive factor.
  const int vocab = m.model->config().vocab_size;
  for (int i = 0; i < 11; ++i) {
    const size_t o = static_cast<size_t>(i) * vocab;
    double dot = 0, norm = 0;
    for (int v = 0; v < vocab; ++v) dot += double(got[o + v]) * main[o + v], norm += double(main[o + v]) * main[o + v];
    const double factor = dot / norm;
    ASSERT_GT(factor, 0.0);
    const double scale = max_abs(got, o, vocab);
    for (int v = 0; v < vocab; ++v) ASSERT_NEAR(got[o + v], factor * main[o + v], 1e-4 * scale) << i << " " << v;
  }
}

TEST(MtpLayer, ReadsItsOwnCacheAndLeavesTheMainOneAlone) {
  const std::vector<int> ids = prompt_ids();
  const std::vector<int> tokens(ids.begin(), ids.begin() + 20);
  // The whole sequence in one step, against chunks and single tokens that read what the layer
  // cached in earlier steps.
  MtpModel whole(MtpWeights::Random, "mtp_whole");
  Sequence s = sequence(tokens);
  const std::vector<float> want = mtp_after(whole, s, 0, 19, false);
  MtpModel steps(MtpWeights::Random, "mtp_steps");
  std::vector<float> got;
  for (auto [first, n] : std::vector<std::pair<int, int>>{{0, 7}, {7, 5}, {12, 1}, {13, 1}, {14, 5}})
    got = mtp_after(steps, s, first, n, false);
  ASSERT_EQ(got.size(), want.size());
  const double scale = max_abs(want, 0, want.size());
  for (size_t v = 0; v < want.size(); ++v) ASSERT_NEAR(got[v], want[v], 1e-4 * scale) << v;
  // The main model's next logits are those of a cache the MTP layer never ran on.
  MtpModel plain(MtpWeights::Random, "mtp_plain");
  plain.model->forward(main_step(s, 0, 19), *plain.cache);
  const std::vector<float> main_want = host(plain.model->forward(main_step(s, 19, 1), *plain.cache));
  const std::vector<float> main_got = host(steps.model->forward(main_step(s, 19, 1), *steps.cache));
  for (size_t v = 0; v < main_want.size(); ++v) ASSERT_FLOAT_EQ(main_got[v], main_want[v]) << v;
}

// A chained pass starts from the layer's own output (before shared_head.norm) at a logit row of
// the pass before. With the hidden half alone, hnorm of ones and a layer that adds nothing, that
// output renormalized is itself: the link's logits are the first pass's at that row. Had the
// link started from the output after shared_head.norm (random here), they would not be.
TEST(MtpLayer, AChainedPassStartsFromTheLayersOwnOutput) {
  MtpModel m(MtpWeights::HiddenOnlyHeadNorm, "mtp_chain");
  const std::vector<int> ids = prompt_ids();
  Sequence s = sequence(std::vector<int>(ids.begin(), ids.begin() + 13));
  m.model->forward(main_step(s, 0, 9), *m.cache);
  MtpBatch first = mtp_batch({{&s, 0, 9, 0, true}}, kBlock);
  first.batch.logit_rows = {2, 5, 7};
  const std::vector<float> want = host(m.model->mtp_forward(first.batch, first.hidden_rows, *m.cache));
  // Three one-token links at positions 9..11, from the first pass's rows 2, 0 and 1.
  ForwardBatch link;
  link.block_size = kBlock;
  for (int i = 0; i < 3; ++i) {
    const int p = 9 + i;
    link.seqs.push_back(SeqSlice{i, 1, p + 1, s.blocks});
    link.tokens.push_back(s.tokens[p + 1]);
    link.positions.push_back(p);
    link.slots.push_back(s.blocks[p / kBlock] * kBlock + p % kBlock);
    link.logit_rows.push_back(i);
  }
  const std::vector<float> got = host(m.model->mtp_forward(link, {2, 0, 1}, *m.cache, /*chained=*/true));
  const int vocab = m.model->config().vocab_size;
  const int from[3] = {2, 0, 1};
  for (int i = 0; i < 3; ++i) {
    const size_t o = static_cast<size_t>(i) * vocab, w = static_cast<size_t>(from[i]) * vocab;
    const double scale = max_abs(want, w, vocab);
    for (int v = 0; v < vocab; ++v) ASSERT_NEAR(got[o + v], want[w + v], 1e-4 * scale) << i << " " << v;
  }
  EXPECT_THROW(m.model->mtp_forward(link, {3, 0, 1}, *m.cache, true), Error);  // the first pass had 3 rows
}

TEST(MtpLayer, LoadsOnlyWhereTheCheckpointHasOne) {
  auto cpu = make_cpu_backend();
  ModelOptions o;
  o.mtp = true;
  for (const std::string fixture : {"ds3-tiny", "qwen2-tiny"}) {
    try {
      load_model(ModelDir::open(fixture_dir(fixture)), *cpu, o);
      ADD_FAILURE() << fixture << " loaded an MTP layer it does not have";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("multi-token-prediction"), std::string::npos) << e.what();
    }
  }
  // With one: its cache is one more layer, and the checkpoint's copies of the embedding and the
  // head stay on disk.
  MtpModel m(MtpWeights::Random, "mtp_load");
  auto plain = load_model(ModelDir::open(m.dir.path().string()), *cpu);
  EXPECT_FALSE(plain->has_mtp());
  EXPECT_TRUE(m.model->has_mtp());
  EXPECT_EQ(m.model->kv_spec().num_layers, plain->kv_spec().num_layers + 1);
  const size_t embed_bytes = 129280ull * 32 * 2;
  EXPECT_GT(m.model->weight_bytes(), plain->weight_bytes());
  EXPECT_LT(m.model->weight_bytes(), plain->weight_bytes() + embed_bytes);
}

TEST(MtpBatch, EachKeptPositionTakesTheTokenAfterItAndItsStepRow) {
  Sequence a = sequence({10, 11, 12, 13, 14, 15});      // a decode step kept positions 3 and 4, sampled 15
  Sequence b = sequence({20, 21, 22, 23, 24, 25, 26});  // a prompt chunk over positions 0..2
  b.blocks = {7, 5};
  const MtpBatch m = mtp_batch({{&a, 3, 2, 0, true}, {&b, 0, 3, 2, false}, {&a, 0, 0, 5, true}}, kBlock);
  EXPECT_EQ(m.batch.tokens, (std::vector<int>{14, 15, 21, 22, 23}));
  EXPECT_EQ(m.batch.positions, (std::vector<int>{3, 4, 0, 1, 2}));
  EXPECT_EQ(m.batch.slots, (std::vector<int>{3, 4, 28, 29, 30}));
  EXPECT_EQ(m.hidden_rows, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(m.batch.logit_rows, (std::vector<int>{1}));  // a's last; b does not decode next
  ASSERT_EQ(m.drafting.size(), 1u);
  EXPECT_EQ(m.drafting[0], &a);
  ASSERT_EQ(m.batch.seqs.size(), 2u);  // nothing kept: no sequence
  EXPECT_EQ(m.batch.seqs[1].query_start, 2);
  EXPECT_EQ(m.batch.seqs[1].context_len, 3);
  // A position whose next token is unknown cannot run.
  EXPECT_THROW(mtp_batch({{&a, 4, 2, 0, true}}, kBlock), Error);
}

TEST(MtpBatch, AChainLinkTakesEachSequencesLastDraftWithinItsBlocks) {
  Sequence a = sequence({10, 11, 12, 13, 14});  // blocks 0, 1: positions up to 7
  a.mtp_drafts = {50, 51};                      // drafts for positions 5, 6: the link is at 5
  Sequence b = sequence({20, 21, 22});
  b.blocks = {9};
  b.mtp_drafts = {60, 61};  // the link would be at position 3, the last of block 9
  Sequence c = sequence({30, 31, 32, 33});
  c.blocks = {4};
  c.mtp_drafts = {70};  // position 3
  Sequence d = sequence({40, 41, 42, 43, 44});
  d.blocks = {2};
  d.mtp_drafts = {80};  // position 4: no block yet, the chain stops
  const MtpBatch m = mtp_chain_batch({&a, nullptr, &b, &c, &d}, kBlock);
  EXPECT_EQ(m.batch.tokens, (std::vector<int>{51, 61, 70}));
  EXPECT_EQ(m.batch.positions, (std::vector<int>{5, 3, 3}));
  EXPECT_EQ(m.batch.slots, (std::vector<int>{5, 39, 19}));
  EXPECT_EQ(m.hidden_rows, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(m.batch.logit_rows, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(m.drafting, (std::vector<Sequence*>{&a, &b, &c}));
  EXPECT_EQ(m.batch.seqs[0].context_len, 6);
}

TEST(SpeculativeOptions, MtpTakesTheDraftsAStep) {
  SpeculativeOptions o;
  o.method = "mtp";
  o.ngram.max_tokens = 1;
  EXPECT_NO_THROW(check_speculative(o));
  EXPECT_TRUE(drafts_with_mtp(o));
  EngineOptions eo;
  apply_speculative(o, eo);
  EXPECT_EQ(eo.mtp_drafts, 1);
  EXPECT_EQ(eo.drafter, nullptr);
  o.ngram.max_tokens = 3;  // the layer chained
  apply_speculative(o, eo);
  EXPECT_EQ(eo.mtp_drafts, 3);
  o.ngram.max_tokens = 0;  // off
  EXPECT_FALSE(drafts_with_mtp(o));
  o.method = "eagle";
  EXPECT_THROW(check_speculative(o), Error);
}

namespace {

struct Generated {
  std::vector<std::vector<int>> tokens;
  EngineStats stats;
};

// Generates every prompt at once; with `mtp` drafts a step from the MTP layer.
Generated generate(Model& model, Backend& backend, const std::vector<GenerationRequest>& requests, int mtp,
                   int tensor_budget = 16) {
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  o.block_size = kBlock;
  o.max_batched_tokens = tensor_budget;  // chunked prefill
  o.mtp_drafts = mtp;
  Engine engine(model, backend, o);
  std::mutex mu;
  std::map<uint64_t, std::vector<int>> out;
  std::vector<uint64_t> ids;
  for (const GenerationRequest& r : requests)
    ids.push_back(engine.submit(r, [&](const TokenEvent& ev) {
      std::lock_guard lock(mu);
      if (ev.token >= 0) out[ev.request_id].push_back(ev.token);
      return true;
    }));
  engine.wait_idle();
  Generated run;
  for (uint64_t id : ids) run.tokens.push_back(out[id]);
  run.stats = engine.stats();
  return run;
}

std::vector<GenerationRequest> requests() {
  const std::vector<int> ids = prompt_ids();
  std::vector<GenerationRequest> r = {greedy(std::vector<int>(ids.begin(), ids.begin() + 5), 24),
                                      greedy(std::vector<int>(ids.begin() + 10, ids.begin() + 41), 17),
                                      greedy({ids[3]}, 20)};
  r[1].sampling.temperature = 0.8f;
  r[1].sampling.seed = 5;
  return r;
}

// The drafts of a HiddenOnly layer repeat the sequence's last token (the head's argmax of the
// main model's hidden state at the last position is the token sampled there). Replays the steps
// of a greedy output: a draft is proposed while one more token fits after it, and accepted when
// the model repeats its last token, the step then sampling one more. Returns {drafted, accepted}.
std::pair<int64_t, int64_t> repeat_drafts(const std::vector<int>& out) {
  int64_t drafted = 0, accepted = 0;
  const size_t n = out.size();
  for (size_t last = 0; last + 1 < n;) {  // out[0] comes from the prompt's step
    const bool drafts = last + 2 < n;
    drafted += drafts ? 1 : 0;
    if (drafts && out[last + 1] == out[last]) {
      ++accepted;
      last += 2;
    } else {
      last += 1;
    }
  }
  return {drafted, accepted};
}

}  // namespace

TEST(MtpDrafting, OutputIsWhatItIsWithoutDrafts) {
  MtpModel m(MtpWeights::Random, "mtp_engine");
  const auto reqs = requests();
  const Generated plain = generate(*m.model, *m.backend, reqs, 0);
  const Generated drafted = generate(*m.model, *m.backend, reqs, 1);
  EXPECT_EQ(drafted.tokens, plain.tokens);
  EXPECT_EQ(plain.stats.draft_tokens, 0);
  EXPECT_GT(drafted.stats.draft_tokens, 0);
  EXPECT_LE(drafted.stats.accepted_draft_tokens, drafted.stats.draft_tokens);
  // Chained, up to three drafts a step. (How many a batch drafts depends on when its requests
  // arrive; one request alone steps the same way every run.)
  const Generated chained = generate(*m.model, *m.backend, reqs, 3);
  EXPECT_EQ(chained.tokens, plain.tokens);
  const EngineStats three = generate(*m.model, *m.backend, {reqs[0]}, 3).stats;
  EXPECT_GT(three.draft_tokens, generate(*m.model, *m.backend, {reqs[0]}, 1).stats.draft_tokens);
  // By position: a later draft is made (and held) only where the ones before it were.
  ASSERT_EQ(three.drafted_at.size(), 3u);
  int64_t drafted_sum = 0, accepted_sum = 0;
  for (size_t p = 0; p < 3; ++p) {
    drafted_sum += three.drafted_at[p];
    accepted_sum += three.accepted_at[p];
    EXPECT_LE(three.accepted_at[p], three.drafted_at[p]);
    if (p > 0) EXPECT_LE(three.drafted_at[p], three.drafted_at[p - 1]);
    if (p > 0) EXPECT_LE(three.accepted_at[p], three.accepted_at[p - 1]);
  }
  EXPECT_EQ(drafted_sum, three.draft_tokens);
  EXPECT_EQ(accepted_sum, three.accepted_draft_tokens);
  EngineStats s;
  s.draft_tokens = 15;
  s.accepted_draft_tokens = 10;
  s.drafted_at = {10, 5};
  s.accepted_at = {8, 2};
  EXPECT_EQ(speculation_summary(s),
            "speculative decoding: 10 of 15 drafted tokens accepted (67 %); by position 80 %, 40 %");
}

TEST(MtpDrafting, AcceptsExactlyTheDraftsThatHold) {
  MtpModel m(MtpWeights::HiddenOnly, "mtp_repeat");
  int64_t accepted = 0;
  std::vector<GenerationRequest> reqs = requests();
  for (int token : {3, 77}) reqs.push_back(greedy({token}, 40));  // outputs that repeat a token
  for (GenerationRequest r : reqs) {                              // one at a time, greedy
    r.sampling.temperature = 0.0f;
    const Generated run = generate(*m.model, *m.backend, {r}, 1);
    EXPECT_EQ(run.tokens, generate(*m.model, *m.backend, {r}, 0).tokens);
    const auto [want_drafted, want_accepted] = repeat_drafts(run.tokens[0]);
    EXPECT_EQ(run.stats.draft_tokens, want_drafted);
    EXPECT_EQ(run.stats.accepted_draft_tokens, want_accepted);
    if (want_drafted > 0) {  // one draft a step: all at the first position
      EXPECT_EQ(run.stats.drafted_at, std::vector<int64_t>{want_drafted});
      EXPECT_EQ(run.stats.accepted_at, std::vector<int64_t>{want_accepted});
    }
    accepted += run.stats.accepted_draft_tokens;
  }
  EXPECT_GT(accepted, 0) << "no output repeats a token: the test checks only rejections";
}

TEST(MtpDrafting, TwoRanksDraftAsOneDoes) {
  TempPath dir("mtp_tp");
  make_mtp_checkpoint("ds3-tiny", MtpWeights::Random, dir.path());
  auto run = [&](int ranks) {
    LoadOptions lo;
    lo.tensor_parallel = ranks;
    lo.model.mtp = true;
    LoadedModel m = load_for_generation(dir.path().string(), lo);
    // Together, then one alone (whose steps, and so its drafts, do not depend on arrival times).
    return std::make_pair(generate(*m.model, *m.backend, requests(), 3),
                          generate(*m.model, *m.backend, {requests()[1]}, 3));
  };
  const auto [one, one_alone] = run(1);
  const auto [two, two_alone] = run(2);
  EXPECT_EQ(two.tokens, one.tokens);
  EXPECT_EQ(two_alone.tokens, one_alone.tokens);
  EXPECT_GT(one_alone.stats.draft_tokens, 0);
  EXPECT_EQ(two_alone.stats.draft_tokens, one_alone.stats.draft_tokens);
  EXPECT_EQ(two_alone.stats.accepted_draft_tokens, one_alone.stats.accepted_draft_tokens);
}
