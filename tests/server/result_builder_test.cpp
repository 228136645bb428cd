// ResultBuilder: folding streamed updates into the final result, with the R1 reasoning split.
#include <gtest/gtest.h>

#include "server/result_builder.h"

using namespace dsinfer;

namespace {

GenerationUpdate text(const std::string& t, bool finished = false) {
  GenerationUpdate u;
  u.text = t;
  u.tokens = {1};
  if (finished) {
    u.finished = true;
    u.reason = FinishReason::Stop;
    u.prompt_tokens = 5;
    u.completion_tokens = 3;
  }
  return u;
}

TEST(ResultBuilder, SplitsThinkBlockAcrossUpdates) {
  ResultBuilder b({7, 8}, /*reasoning=*/true, /*starts_in_reasoning=*/false);
  StreamDelta d1 = b.add(text("<thi"));
  EXPECT_TRUE(d1.content.empty() && d1.reasoning.empty());
  StreamDelta d2 = b.add(text("nk>I wonder</th"));
  EXPECT_EQ(d2.reasoning, "I wonder");
  StreamDelta d3 = b.add(text("ink>Answer", true));
  EXPECT_EQ(d3.content, "Answer");
  const CompletionResult& r = b.result();
  EXPECT_EQ(r.reasoning, "I wonder");
  EXPECT_EQ(r.content, "Answer");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.prompt_ids, (std::vector<int>{7, 8}));
  EXPECT_EQ(r.output_ids.size(), 3u);
  EXPECT_EQ(r.completion_tokens, 3);
}

TEST(ResultBuilder, PromptThatOpenedThinkStartsInReasoning) {
  ResultBuilder b({}, true, /*starts_in_reasoning=*/true);
  b.add(text("plan it"));
  b.add(text("</think>done", true));
  EXPECT_EQ(b.result().reasoning, "plan it");
  EXPECT_EQ(b.result().content, "done");
}

TEST(ResultBuilder, UnfinishedThinkIsAllReasoning) {
  ResultBuilder b({}, true, true);
  b.add(text("still thinking", true));
  EXPECT_EQ(b.result().reasoning, "still thinking");
  EXPECT_EQ(b.result().content, "");
}

TEST(ResultBuilder, WithoutParserTagsStayInContent) {
  ResultBuilder b({}, false, false);
  b.add(text("<think>x</think>y", true));
  EXPECT_EQ(b.result().content, "<think>x</think>y");
  EXPECT_EQ(b.result().reasoning, "");
}

TEST(ResultBuilder, ResultRoundTripsThroughJson) {
  ResultBuilder b({1, 2}, true, true);
  GenerationUpdate u = text("r</think>c", true);
  u.logprobs = {{1, -0.5f, {{1, -0.5f}, {4, -1.5f}}}};
  b.add(u);
  CompletionResult back = result_from_json(result_to_json(b.result()));
  EXPECT_EQ(result_to_json(back), result_to_json(b.result()));
  EXPECT_EQ(back.logprobs[0].top[1].first, 4);
}

}  // namespace
