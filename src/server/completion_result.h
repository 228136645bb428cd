// CompletionResult: everything a finished request produced, independent of how it is sent
// (one JSON response or an SSE stream). Streaming and non-streaming responses are both built
// from it, and the response cache stores it, so a cached answer serves either form.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "text/tool_call_parser.h"

namespace dsinfer {

struct TokenLogprob {
  int token = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int, float>> top;  // alternatives, most likely first
  int rank = 0;                            // prompt tokens: 1 + how many were more likely
};

struct CompletionResult {
  std::string content;    // the answer (after stop strings and, with a reasoning parser, after </think>)
  std::string reasoning;  // the text inside <think> ... </think>, when a reasoning parser split it
  std::vector<ToolCall> tool_calls;  // the answer's tool calls, when a tool-call parser split them
  std::vector<int> prompt_ids, output_ids;
  std::vector<TokenLogprob> logprobs;  // per output token, when requested
  std::vector<TokenLogprob> prompt_logprobs;  // per prompt token after the first (echo with logprobs)
  std::string finish_reason;           // "stop", "length" or "tool_calls"
  int prompt_tokens = 0, completion_tokens = 0, cached_prompt_tokens = 0;
};

nlohmann::json result_to_json(const CompletionResult& r);
// Throws nlohmann::json::exception when `j` was not written by result_to_json.
CompletionResult result_from_json(const nlohmann::json& j);

}  // namespace dsinfer
