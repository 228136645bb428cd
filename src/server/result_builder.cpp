#include "server/result_builder.h"

#include "text/utf8.h"

namespace dsinfer {

ResultBuilder::ResultBuilder(std::vector<int> prompt_ids, bool reasoning, bool starts_in_reasoning, bool tool_calls) {
  result_.prompt_ids = std::move(prompt_ids);
  if (reasoning) parser_.emplace(starts_in_reasoning);
  if (tool_calls) tools_.emplace();
}

StreamDelta ResultBuilder::add(const GenerationUpdate& u) {
  StreamDelta d;
  d.text_offset = content_chars_;
  d.tokens = u.tokens;
  d.logprobs = u.logprobs;
  if (parser_) {
    ReasoningParser::Delta split = parser_->push(u.text);
    if (u.finished) {
      ReasoningParser::Delta rest = parser_->flush();
      split.reasoning += rest.reasoning;
      split.content += rest.content;
    }
    d.reasoning = std::move(split.reasoning);
    d.content = std::move(split.content);
  } else {
    d.content = u.text;
  }
  if (tools_) {
    d.content = tools_->push(d.content);
    if (u.finished) {
      d.content += tools_->flush();
      d.tool_calls = tools_->calls();
      result_.tool_calls = tools_->calls();
    }
  }
  result_.content += d.content;
  content_chars_ += utf8_decode(d.content).size();
  result_.reasoning += d.reasoning;
  result_.output_ids.insert(result_.output_ids.end(), u.tokens.begin(), u.tokens.end());
  result_.logprobs.insert(result_.logprobs.end(), u.logprobs.begin(), u.logprobs.end());
  result_.prompt_logprobs.insert(result_.prompt_logprobs.end(), u.prompt_logprobs.begin(), u.prompt_logprobs.end());
  if (u.finished) {
    result_.finish_reason = openai_finish_reason(u.reason);
    if (!result_.tool_calls.empty() && u.reason != FinishReason::Length) result_.finish_reason = "tool_calls";
    result_.prompt_tokens = u.prompt_tokens;
    result_.completion_tokens = u.completion_tokens;
    result_.cached_prompt_tokens = u.cached_prompt_tokens;
  }
  return d;
}

const char* openai_finish_reason(FinishReason r) { return r == FinishReason::Length ? "length" : "stop"; }

}  // namespace dsinfer
