// ResultBuilder: folding streamed updates into the final result, with the R1 reasoning split
// and DeepSeek's tool calls.
#include <gtest/gtest.h>

#include "server/result_builder.h"
#include "server/response_format.h"
#include "server/stream_writer.h"

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

// With the tool-call parser: R1's reasoning, then content, then a call, across updates that
// split the markers; the calls come in the last delta, the finish reason is tool_calls, and the
// response carries them in OpenAI's shape (content null when the answer is only calls).
TEST(ResultBuilder, ToolCallsLeaveTheAnswerAndFinishWithToolCalls) {
  ResultBuilder b({}, true, true, /*tool_calls=*/true);
  std::string streamed;
  for (const std::string piece : {"need weather</think>Checking. <｜tool▁calls", "▁begin｜><｜tool▁call▁begin｜>function",
                                  "<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Oslo\"}\n```<｜tool▁call▁end｜>"})
    streamed += b.add(text(piece)).content;
  StreamDelta last = b.add(text("<｜tool▁calls▁end｜>", true));
  streamed += last.content;
  const CompletionResult& r = b.result();
  EXPECT_EQ(r.reasoning, "need weather");
  EXPECT_EQ(r.content, "Checking. ");
  EXPECT_EQ(streamed, r.content);
  ASSERT_EQ(r.tool_calls, (std::vector<ToolCall>{{"get_weather", "{\"city\": \"Oslo\"}"}}));
  EXPECT_EQ(last.tool_calls, r.tool_calls);
  EXPECT_EQ(r.finish_reason, "tool_calls");

  const ResponseMeta meta = make_response_meta(Endpoint::Chat, "m", true, false, nullptr);
  const nlohmann::json msg = response_json(meta, {r})["choices"][0]["message"];
  ASSERT_EQ(msg["tool_calls"].size(), 1u);
  EXPECT_EQ(msg["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], "{\"city\": \"Oslo\"}");
  EXPECT_EQ(msg["tool_calls"][0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(msg["content"], "Checking. ");
  CompletionResult only_calls = r;
  only_calls.content.clear();
  EXPECT_TRUE(response_json(meta, {only_calls})["choices"][0]["message"]["content"].is_null());
  const nlohmann::json chunk = chunk_json(meta, last, false)["choices"][0]["delta"];
  EXPECT_EQ(chunk["tool_calls"][0]["index"], 0);
  EXPECT_EQ(chunk["tool_calls"][0]["function"]["name"], "get_weather");
  // The response cache keeps them, and a cached result streamed again carries them.
  EXPECT_EQ(result_from_json(result_to_json(r)).tool_calls, r.tool_calls);
  const std::string sse = result_as_sse(meta, r, false, false);
  EXPECT_NE(sse.find("\"tool_calls\":[{"), std::string::npos) << sse;
  EXPECT_NE(sse.find("\"finish_reason\":\"tool_calls\""), std::string::npos) << sse;
}

TEST(ResultBuilder, WithoutTheToolParserCallsStayText) {
  ResultBuilder b({}, false, false);
  const std::string calls = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>";
  b.add(text(calls, true));
  EXPECT_EQ(b.result().content, calls);
  EXPECT_TRUE(b.result().tool_calls.empty());
  EXPECT_EQ(b.result().finish_reason, "stop");
}
