// StepGraphs' choices that do not need a GPU: bucket sizes, which batches count as decode or
// verification steps and how they are padded, and that a backend without recordings runs every
// step itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "../paged_runner.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "model/step_graphs.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

ForwardBatch decode_batch(int seqs) {
  ForwardBatch b;
  for (int s = 0; s < seqs; ++s) {
    b.tokens.push_back(s + 1);
    b.positions.push_back(5);
    b.slots.push_back(16 * s + 5);
    b.seqs.push_back(SeqSlice{s, 1, 6, {s}});
    b.logit_rows.push_back(s);
  }
  return b;
}

bool is_decode(const ForwardBatch& b) { return StepGraphs::step_width(b) == 1; }

}  // namespace

TEST(StepGraphs, BucketsArePowersOfTwoThenMultiplesOfEightUpToTheLargest) {
  EXPECT_EQ(StepGraphs::bucket_sizes(1), (std::vector<int>{1}));
  EXPECT_EQ(StepGraphs::bucket_sizes(3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(StepGraphs::bucket_sizes(12), (std::vector<int>{1, 2, 4, 8, 12}));
  EXPECT_EQ(StepGraphs::bucket_sizes(32), (std::vector<int>{1, 2, 4, 8, 16, 24, 32}));
  EXPECT_TRUE(StepGraphs::bucket_sizes(0).empty());
}

TEST(StepGraphs, OnlyOneTokenAndOneLogitRowPerSequenceInOrderIsADecodeStep) {
  EXPECT_TRUE(is_decode(decode_batch(3)));
  ForwardBatch prefill = decode_batch(2);
  prefill.seqs[1].query_len = 2;
  prefill.tokens.push_back(9);
  EXPECT_FALSE(is_decode(prefill));
  ForwardBatch fewer_rows = decode_batch(3);
  fewer_rows.logit_rows.pop_back();
  EXPECT_FALSE(is_decode(fewer_rows));
  ForwardBatch reordered = decode_batch(2);
  std::swap(reordered.logit_rows[0], reordered.logit_rows[1]);
  EXPECT_FALSE(is_decode(reordered));
  EXPECT_FALSE(is_decode(ForwardBatch()));
}

// Sequences of the given token counts, every token with a logit row, in order.
ForwardBatch draft_batch(const std::vector<int>& lens) {
  ForwardBatch b;
  b.block_size = 16;
  for (int s = 0; s < static_cast<int>(lens.size()); ++s) {
    const int context = 10 + s, start = b.num_tokens();
    for (int i = 0; i < lens[s]; ++i) {
      const int pos = context - lens[s] + i;
      b.logit_rows.push_back(b.num_tokens());
      b.tokens.push_back(100 * s + i);
      b.positions.push_back(pos);
      b.slots.push_back(1000 * s + pos);
    }
    b.seqs.push_back(SeqSlice{start, lens[s], context, {3 * s, 3 * s + 1, 3 * s + 2}});
  }
  return b;
}

TEST(StepGraphs, VerificationStepsTakeTheWidthOfTheirLongestSequence) {
  EXPECT_EQ(StepGraphs::step_width(draft_batch({1, 1})), 1);
  EXPECT_EQ(StepGraphs::step_width(draft_batch({2, 1})), 2);
  EXPECT_EQ(StepGraphs::step_width(draft_batch({1, 3})), 3);
  EXPECT_EQ(StepGraphs::step_width(draft_batch({5, 1, 8})), 8);
  EXPECT_EQ(StepGraphs::step_width(draft_batch({9})), 0);  // more tokens than a recorded step holds
  ForwardBatch last_rows_only = draft_batch({3, 2});
  last_rows_only.logit_rows = {2, 4};
  EXPECT_EQ(StepGraphs::step_width(last_rows_only), 0);
  ForwardBatch gap = draft_batch({2, 2});
  gap.seqs[1].query_start = 3;
  EXPECT_EQ(StepGraphs::step_width(gap), 0);
  ForwardBatch stray = draft_batch({2});  // a token no sequence holds
  stray.tokens.push_back(7);
  stray.positions.push_back(0);
  stray.slots.push_back(0);
  stray.logit_rows.push_back(2);
  EXPECT_EQ(StepGraphs::step_width(stray), 0);
}

TEST(StepGraphs, PaddingKeepsTheRealRowsFirstAndWritesNothing) {
  const ForwardBatch b = draft_batch({1, 3});
  const ForwardBatch p = StepGraphs::padded(b, 4, 4);
  ASSERT_EQ(p.num_tokens(), 16);
  ASSERT_EQ(p.seqs.size(), 4u);
  // The real tokens' rows first, in the batch's order, then every padding row.
  ASSERT_EQ(p.logit_rows.size(), 16u);
  EXPECT_EQ(std::vector<int>(p.logit_rows.begin(), p.logit_rows.begin() + 4), (std::vector<int>{0, 4, 5, 6}));
  std::vector<int> sorted = p.logit_rows;
  std::sort(sorted.begin(), sorted.end());
  for (int r = 0; r < 16; ++r) EXPECT_EQ(sorted[r], r);
  for (int r = 0; r < 4; ++r) {
    const int t = p.logit_rows[r];
    EXPECT_EQ(p.tokens[t], b.tokens[r]);
    EXPECT_EQ(p.positions[t], b.positions[r]);
    EXPECT_EQ(p.slots[t], b.slots[r]);
  }
  for (size_t r = 4; r < p.logit_rows.size(); ++r) EXPECT_EQ(p.slots[p.logit_rows[r]], -1);
  // A real sequence keeps its context and table; its padding sits at its last position.
  EXPECT_EQ(p.seqs[1].query_start, 4);
  EXPECT_EQ(p.seqs[1].query_len, 4);
  EXPECT_EQ(p.seqs[1].context_len, 11);
  EXPECT_EQ(p.seqs[1].block_table, b.seqs[1].block_table);
  EXPECT_EQ(p.positions[7], p.positions[6]);
  EXPECT_EQ(p.positions[1], p.positions[0]);
  // Every sequence is valid: its positions inside its context, its context inside its table.
  for (const SeqSlice& q : p.seqs) {
    EXPECT_LE(q.query_len, q.context_len);
    EXPECT_GE(static_cast<int>(q.block_table.size()) * p.block_size, q.context_len);
    for (int t = q.query_start; t < q.query_start + q.query_len; ++t) EXPECT_LT(p.positions[t], q.context_len);
  }
}

TEST(StepGraphs, ABackendThatCannotRecordLeavesEveryStepToTheCaller) {
  auto cpu = make_cpu_backend();
  StepGraphs graphs(*cpu, 8, 16);
  int passes = 0;
  auto logits = graphs.run(decode_batch(3), [&](const ForwardBatch&, Arena&) {
    ++passes;
    return StepOutput{};
  });
  EXPECT_FALSE(logits.has_value());
  EXPECT_EQ(passes, 0);
}

namespace {

// Records (by running the pass) only buckets of fewer than `fail_from` sequences, as a MoE model
// whose larger steps take a path that cannot be captured; replays whatever it recorded.
class SizeLimitedRecorder final : public CpuBackend {
 public:
  explicit SizeLimitedRecorder(int fail_from) : fail_from_(fail_from) {}
  bool can_record() const override { return true; }
  bool record(int key, const std::function<void()>& pass) override {
    attempts.push_back(key);
    if (key / 16 >= fail_from_) return false;
    pass();
    return true;
  }
  bool replay(int key) override {
    replays.push_back(key);
    return true;
  }
  std::vector<int> attempts, replays;

 private:
  int fail_from_;
};

StepOutput rows_of(const ForwardBatch& b, Arena& a) {
  return {a.tensor(DType::F32, {b.num_tokens(), 1}), a.tensor(DType::F32, {b.num_tokens(), 1})};
}

}  // namespace

TEST(StepGraphs, AFailedCaptureFailsOnlyItsWidthsBucketsAsLargeOrLarger) {
  SizeLimitedRecorder rec(4);
  StepGraphs graphs(rec, 8, 16);
  EXPECT_EQ(graphs.record_all(rows_of), 2);  // buckets 1 and 2; 4 failed
  EXPECT_EQ(rec.attempts, (std::vector<int>{1 * 16 + 1, 2 * 16 + 1, 4 * 16 + 1}));  // 8 not tried
  ASSERT_TRUE(graphs.run(decode_batch(2), rows_of).has_value());
  EXPECT_EQ(rec.replays, (std::vector<int>{2 * 16 + 1}));
  EXPECT_FALSE(graphs.run(decode_batch(3), rows_of).has_value());  // bucket 4: op by op
  EXPECT_FALSE(graphs.run(decode_batch(6), rows_of).has_value());
  // A verification width is recorded on first use, and fails alone.
  ASSERT_TRUE(graphs.run(draft_batch({3, 1}), rows_of).has_value());
  EXPECT_EQ(rec.attempts.back(), 2 * 16 + 3);
  EXPECT_FALSE(graphs.run(draft_batch({3, 1, 2, 1, 3}), rows_of).has_value());
  EXPECT_EQ(rec.attempts.back(), 8 * 16 + 3);
}

namespace {

// Records by running the pass, and fails an allocation made while recording, as CUDA does.
class AllocationFreeRecorder final : public CpuBackend {
 public:
  bool can_record() const override { return true; }
  bool record(int, const std::function<void()>& pass) override {
    recording_ = true;
    try {
      pass();
    } catch (const Error&) {
      recording_ = false;
      return false;
    }
    recording_ = false;
    return true;
  }
  bool replay(int) override { return true; }
  Buffer alloc(size_t bytes) override {
    if (recording_) fail("allocation of ", bytes, " bytes while recording");
    return CpuBackend::alloc(bytes);
  }

 private:
  bool recording_ = false;
};

// A pass whose scratch grows with its tokens: 1 MiB each, so the buckets' passes together
// exceed the arena's first 64 MiB chunk.
StepOutput megabyte_a_token(const ForwardBatch& b, Arena& a) {
  a.tensor(DType::F32, {b.num_tokens(), 1 << 18});
  return rows_of(b, a);
}

}  // namespace

// Every capture starts from the arena's start, as its warm-up did: none needs to allocate.
TEST(StepGraphs, CapturesTakeNoMoreScratchThanTheirWarmUps) {
  AllocationFreeRecorder rec;
  StepGraphs graphs(rec, 8, 16);
  const int buckets = static_cast<int>(StepGraphs::bucket_sizes(8).size());
  EXPECT_EQ(graphs.record_all(megabyte_a_token, true), buckets * 8);  // widths 1 to 8
}

TEST(StepGraphs, BatchesOfAnotherBlockSizeRunOpByOp) {
  SizeLimitedRecorder rec(64);
  StepGraphs graphs(rec, 8, 16);
  ASSERT_GT(graphs.record_all(rows_of), 0);
  ForwardBatch b = decode_batch(2);
  EXPECT_TRUE(graphs.run(b, rows_of).has_value());
  b.block_size = 32;
  EXPECT_FALSE(graphs.run(b, rows_of).has_value());
}

namespace {

// A CPU backend that "records" a pass by running it and never replays// A CPU backend that "records" a pass by running it and never replays, so every step StepGraphs
// takes runs its padded batch through the float32 reference.
class RunningRecorder final : public CpuBackend {
 public:
  bool can_record() const override { return true; }
  bool record(int, const std::function<void()>& pass) override {
    pass();
    ++recordings;
    return true;
  }
  bool replay(int) override { return false; }
  int recordings = 0;
};

class PaddedSteps : public ::testing::TestWithParam<std::string> {};

}  // namespace

// The padded batches of decode and verification buckets (sequences padded at their last position,
// padding sequences, the real rows first) give every real row the logits of the step unpadded,
// on every fixture's model: the padding is invisible to the tokens it pads.
TEST_P(PaddedSteps, GiveTheUnpaddedLogits) {
  const std::string name = GetParam();
  auto eager_backend = make_cpu_backend();
  RunningRecorder recorder;
  auto eager = load_model(ModelDir::open(fixture_dir(name)), *eager_backend);
  auto padded = load_model(ModelDir::open(fixture_dir(name)), recorder);
  const int vocab = eager->config().vocab_size;
  const std::vector<std::vector<int>> seqs = fixture_sequences(name);
  PagedRunner a(*eager, *eager_backend, 64), b(*padded, recorder, 64);
  padded->record_decode_steps(4, b.cache());  // verification buckets recorded on first use
  std::vector<std::pair<int, std::vector<int>>> prefill;
  for (int i = 0; i < 3; ++i) {
    const std::vector<int>& q = seqs[i % seqs.size()];
    prefill.emplace_back(i, std::vector<int>(q.begin(), q.begin() + std::min<size_t>(q.size(), 12)));
  }
  a.step(prefill);
  b.step(prefill);
  for (int s = 0; s < 6; ++s) {
    std::vector<std::pair<int, std::vector<int>>> work;
    for (int i = 0; i < (s < 4 ? 3 : 1); ++i) {
      std::vector<int> tokens(1 + (s + 3 * i) % 6);  // 1-6 tokens: decode and verification widths
      for (size_t j = 0; j < tokens.size(); ++j) tokens[j] = static_cast<int>((11 * s + 5 * i + 3 * j) % vocab);
      work.emplace_back(i, std::move(tokens));
    }
    const int before = recorder.recordings;
    const std::vector<float> want = a.step(work), got = b.step(work);
    EXPECT_GT(recorder.recordings, before) << name << ": step " << s << " ran unpadded";
    ASSERT_EQ(got.size(), want.size()) << name << ": step " << s;
    float largest = 0.0f, worst = 0.0f;
    for (size_t k = 0; k < want.size(); ++k) {
      largest = std::max(largest, std::fabs(want[k]));
      worst = std::max(worst, std::fabs(got[k] - want[k]));
    }
    EXPECT_LE(worst, 1e-4f * largest) << name << ": step " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PaddedSteps, ::testing::ValuesIn(all_fixtures()),
                         fixture_test_name);
