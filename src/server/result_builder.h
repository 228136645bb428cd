// ResultBuilder: folds a generation's updates into the CompletionResult, splitting the text
// into reasoning_content and content on the way when the model reasons, and tells what each
// update adds, for the stream.
#pragma once
#include <optional>
#include <vector>

#include "server/completion_result.h"
#include "server/generation.h"
#include "server/response_format.h"
#include "text/reasoning_parser.h"
#include "text/tool_call_parser.h"

namespace dsinfer {

class ResultBuilder {
 public:
  // `reasoning`: split <think> blocks out of the text; `starts_in_reasoning`: the prompt
  // already opened the block (the chat template ended with <think>); `tool_calls`: split
  // DeepSeek tool-call blocks out of the answer.
  ResultBuilder(std::vector<int> prompt_ids, bool reasoning, bool starts_in_reasoning, bool tool_calls = false);

  // Adds one update; returns its piece for a stream chunk (never with a finish_reason: the
  // stream closes a choice with a chunk of its own).
  StreamDelta add(const GenerationUpdate& u);
  const CompletionResult& result() const { return result_; }

 private:
  std::optional<ReasoningParser> parser_;
  std::optional<ToolCallParser> tools_;
  CompletionResult result_;
  size_t content_chars_ = 0;  // characters (code points) of result_.content: logprobs' text_offset
};

// "stop" / "length" for the finish reasons a finished request reports to its client (a result
// with tool calls finishes with "tool_calls" instead of "stop").
const char* openai_finish_reason(FinishReason r);

}  // namespace dsinfer
