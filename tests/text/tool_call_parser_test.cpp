// DeepSeek's tool calls split from an answer: both template formats, several calls, content
// before them, chunks that split a marker anywhere, and malformed calls kept as content.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "io/model_dir.h"
#include "text/tool_call_parser.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

const std::string kV3Calls =
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```"
    "<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜>"
    "<｜tool▁calls▁end｜>";

// The answer fed `chunk` bytes at a time: (content, calls).
std::pair<std::string, std::vector<ToolCall>> run(const std::string& text, size_t chunk) {
  ToolCallParser p;
  std::string content;
  for (size_t i = 0; i < text.size(); i += chunk) content += p.push(std::string_view(text).substr(i, chunk));
  content += p.flush();
  return {content, p.calls()};
}

}  // namespace

TEST(ToolCallParser, V3CallsAfterContentInAnyChunking) {
  const std::vector<ToolCall> want = {{"get_weather", "{\"city\": \"Paris\"}"}, {"get_time", "{}"}};
  for (size_t chunk : {1, 2, 3, 7, 1000}) {
    auto [content, calls] = run("Let me check. " + kV3Calls, chunk);
    EXPECT_EQ(content, "Let me check. ") << chunk;
    EXPECT_EQ(calls, want) << chunk;
  }
}

TEST(ToolCallParser, TextAfterTheCallsStaysContent) {
  auto [content, calls] = run("A" + kV3Calls + " and B", 3);
  EXPECT_EQ(content, "A and B");
  EXPECT_EQ(calls.size(), 2u);
}

TEST(ToolCallParser, V31CallsWithoutTypeOrFences) {
  auto [content, calls] = run(
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"dsinfer\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>", 5);
  EXPECT_EQ(content, "");
  EXPECT_EQ(calls, (std::vector<ToolCall>{{"search", "{\"q\": \"dsinfer\"}"}}));
}

TEST(ToolCallParser, AnswersWithoutCallsPassThrough) {
  // Text that only starts like the marker is released once it cannot be one.
  for (const std::string text : {"Plain answer.", "a <｜tool▁ thing", "<｜", "ends in <｜tool▁calls"}) {
    auto [content, calls] = run(text, 1);
    EXPECT_EQ(content, text);
    EXPECT_TRUE(calls.empty());
  }
}

TEST(ToolCallParser, MalformedOrTruncatedCallsStayContent) {
  for (const std::string calls_text :
       {std::string("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\""),  // cut off
        std::string("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>no separator<｜tool▁call▁end｜>"),
        std::string("<｜tool▁calls▁begin｜>no call at all"),
        std::string("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{not json<｜tool▁call▁end｜>"),
        std::string("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>stray text"
                    "<｜tool▁call▁begin｜>g<｜tool▁sep｜>{}<｜tool▁call▁end｜>")}) {
    auto [content, calls] = run("Hi. " + calls_text, 4);
    EXPECT_EQ(content, "Hi. " + calls_text);
    EXPECT_TRUE(calls.empty());
  }
}

// The parser reads decoded text: DeepSeek's tokenizer keeps its tool markers there even when
// special tokens are skipped (they are added tokens, not special ones).
TEST(ToolCallParser, DeepSeekTokenizerKeepsTheMarkersInDecodedText) {
  const Tokenizer tok = Tokenizer::from_model_dir(ModelDir::open(model_dir_of("deepseek_v3")));
  const std::vector<int> ids = tok.encode(kV3Calls, false);
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), kV3Calls);
  auto [content, calls] = run(tok.decode(ids, true), 9);
  EXPECT_EQ(calls.size(), 2u);
}
