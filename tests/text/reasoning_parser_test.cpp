// Splitting R1-style output into reasoning_content and content, whole and streamed.
#include <gtest/gtest.h>

#include "text/reasoning_parser.h"

using dsinfer::ReasoningParser;

namespace {

// Feeds `text` in chunks of `size` bytes and joins the deltas.
ReasoningParser::Delta stream(const std::string& text, size_t size, bool starts_in_reasoning) {
  ReasoningParser p(starts_in_reasoning);
  ReasoningParser::Delta all;
  for (size_t i = 0; i < text.size(); i += size) {
    ReasoningParser::Delta d = p.push(text.substr(i, size));
    all.reasoning += d.reasoning;
    all.content += d.content;
  }
  ReasoningParser::Delta d = p.flush();
  return {all.reasoning + d.reasoning, all.content + d.content};
}

TEST(ReasoningParser, SplitsThinkBlockFromAnswer) {
  auto d = ReasoningParser::parse("<think>\nLet me add.\n</think>\n\nThe answer is 4.", false);
  EXPECT_EQ(d.reasoning, "\nLet me add.\n");
  EXPECT_EQ(d.content, "\n\nThe answer is 4.");
}

TEST(ReasoningParser, TagsSplitAcrossEveryChunkBoundary) {
  const std::string text = "<think>I reason <b>here</b></think>Answer <think> stays";
  for (size_t size = 1; size <= text.size(); ++size) {
    auto d = stream(text, size, false);
    EXPECT_EQ(d.reasoning, "I reason <b>here</b>") << "chunk size " << size;
    EXPECT_EQ(d.content, "Answer <think> stays") << "chunk size " << size;
  }
}

TEST(ReasoningParser, PromptAlreadyOpenedTheThinkBlock) {
  // R1's template ends the prompt with "<think>\n": output starts inside the reasoning.
  const std::string text = "First, 2+2.\n</think>\n\n4";
  for (size_t size = 1; size <= text.size(); ++size) {
    auto d = stream(text, size, true);
    EXPECT_EQ(d.reasoning, "First, 2+2.\n");
    EXPECT_EQ(d.content, "\n\n4");
  }
}

TEST(ReasoningParser, ARepeatedOpenTagAfterAnOpenedPromptIsDropped) {
  // Some R1 builds write <think> again although the prompt opened it.
  for (size_t size = 1; size <= 8; ++size) {
    auto d = stream("<think>\nr</think>c", size, true);
    EXPECT_EQ(d.reasoning, "\nr");
    EXPECT_EQ(d.content, "c");
  }
  auto d = stream("\n\n", 1, true);  // only whitespace, still reasoning
  EXPECT_EQ(d.reasoning, "\n\n");
}

TEST(ReasoningParser, PartialCloseTagIsHeldBackThenReleased) {
  ReasoningParser p(true);
  auto a = p.push("thinking </thi");
  EXPECT_EQ(a.reasoning, "thinking ");
  EXPECT_TRUE(a.content.empty());
  EXPECT_TRUE(p.in_reasoning());
  auto b = p.push("nk>done");
  EXPECT_EQ(b.reasoning, "");
  EXPECT_EQ(b.content, "done");
  EXPECT_FALSE(p.in_reasoning());
}

TEST(ReasoningParser, TextThatOnlyLooksLikeATagPrefixIsReasoning) {
  ReasoningParser p(true);
  EXPECT_EQ(p.push("a </th").reasoning, "a ");
  EXPECT_EQ(p.push("ing> b").reasoning, "</thing> b");
}

TEST(ReasoningParser, OutputWithoutThinkIsAllContent) {
  auto d = ReasoningParser::parse("Just an answer.", false);
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Just an answer.");
  d = stream("  \n", 1, false);  // whitespace only: content, released at the end
  EXPECT_EQ(d.content, "  \n");
}

TEST(ReasoningParser, LeadingWhitespaceBeforeOpenTagIsDropped) {
  auto d = stream("\n<think>r</think>c", 2, false);
  EXPECT_EQ(d.reasoning, "r");
  EXPECT_EQ(d.content, "c");
}

TEST(ReasoningParser, UnfinishedReasoningStaysReasoning) {
  auto d = stream("<think>still going </thi", 3, false);
  EXPECT_EQ(d.reasoning, "still going </thi");
  EXPECT_EQ(d.content, "");
}

TEST(ReasoningParser, EmptyThinkBlockWhenThinkingIsDisabled) {
  // Qwen3 with enable_thinking=False writes "<think>\n\n</think>\n\n" itself.
  auto d = ReasoningParser::parse("<think>\n\n</think>\n\nHi", false);
  EXPECT_EQ(d.reasoning, "\n\n");
  EXPECT_EQ(d.content, "\n\nHi");
}

}  // namespace
