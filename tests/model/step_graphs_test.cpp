// StepGraphs' choices that do not need a GPU: bucket sizes, which batches count as decode steps,
// and that a backend without recordings runs every step itself.
#include <gtest/gtest.h>

#include "model/step_graphs.h"

using namespace dsinfer;

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

}  // namespace

TEST(StepGraphs, BucketsArePowersOfTwoThenMultiplesOfEightUpToTheLargest) {
  EXPECT_EQ(StepGraphs::bucket_sizes(1), (std::vector<int>{1}));
  EXPECT_EQ(StepGraphs::bucket_sizes(3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(StepGraphs::bucket_sizes(12), (std::vector<int>{1, 2, 4, 8, 12}));
  EXPECT_EQ(StepGraphs::bucket_sizes(32), (std::vector<int>{1, 2, 4, 8, 16, 24, 32}));
  EXPECT_TRUE(StepGraphs::bucket_sizes(0).empty());
}

TEST(StepGraphs, OnlyOneTokenAndOneLogitRowPerSequenceInOrderIsADecodeStep) {
  EXPECT_TRUE(StepGraphs::is_decode(decode_batch(3)));
  ForwardBatch prefill = decode_batch(2);
  prefill.seqs[1].query_len = 2;
  prefill.tokens.push_back(9);
  EXPECT_FALSE(StepGraphs::is_decode(prefill));
  ForwardBatch fewer_rows = decode_batch(3);
  fewer_rows.logit_rows.pop_back();
  EXPECT_FALSE(StepGraphs::is_decode(fewer_rows));
  ForwardBatch reordered = decode_batch(2);
  std::swap(reordered.logit_rows[0], reordered.logit_rows[1]);
  EXPECT_FALSE(StepGraphs::is_decode(reordered));
  EXPECT_FALSE(StepGraphs::is_decode(ForwardBatch()));
}

TEST(StepGraphs, ABackendThatCannotRecordLeavesEveryStepToTheCaller) {
  auto cpu = make_cpu_backend();
  StepGraphs graphs(*cpu, 8);
  int passes = 0;
  auto logits = graphs.run(decode_batch(3), [&](const ForwardBatch&, Arena&) {
    ++passes;
    return Tensor();
  });
  EXPECT_FALSE(logits.has_value());
  EXPECT_EQ(passes, 0);
}
