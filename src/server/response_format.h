// The OpenAI response schema: chat.completion / text_completion objects, their streamed chunk
// forms, usage, logprobs, and SSE framing. Pure functions of what was generated.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/completion_result.h"
#include "server/openai_request.h"
#include "text/tokenizer.h"

namespace dsinfer {

// What every object of one response shares.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::Chat;
  std::string id;  // chatcmpl-... / cmpl-...
  int64_t created = 0;
  std::string model;
  bool reasoning = false;         // chat messages carry reasoning_content
  bool return_token_ids = false;  // choices carry token ids (vLLM extension)
  const Tokenizer* tokenizer = nullptr;  // names tokens in logprobs; null: "token_id:N"
  // Completions' echo: the prompt's text (as given, or decoded from its ids) begins the text, and
  // with echo_logprobs its tokens' logprobs begin the logprobs.
  bool echo = false, echo_logprobs = false;
  std::string echo_text;
  size_t echo_chars = 0;  // echo_text's length in characters: where streamed completions' offsets start
  bool prompt_logprobs = false;  // vLLM's prompt_logprobs: per completions choice, once in a chat response
};

ResponseMeta make_response_meta(Endpoint endpoint, std::string model, bool reasoning, bool return_token_ids,
                                const Tokenizer* tokenizer);

// The non-streaming response: a choice per result, in order (index i); usage counts the prompt
// once and every choice's tokens.
nlohmann::json response_json(const ResponseMeta& meta, const std::vector<CompletionResult>& choices);

// One streamed piece of a choice.
struct StreamDelta {
  int index = 0;       // the choice
  bool first = false;  // chat: the chunk that announces the assistant role
  std::string content, reasoning;
  std::vector<int> tokens;
  std::vector<TokenLogprob> logprobs;
  std::vector<ToolCall> tool_calls;  // chat: the answer's calls, in the delta of its last piece
  bool want_logprobs = false;
  std::optional<std::string> finish_reason;
  size_t text_offset = 0;  // completions logprobs: offset of this piece in the whole text, in characters
  // Completions' echo: this is the choice's first piece, which the prompt's text (and with
  // echo_logprobs its tokens and their logprobs, prompt_logprobs of tokens 1..) begins.
  bool echo = false;
  std::vector<int> prompt_ids;
  std::vector<TokenLogprob> prompt_logprobs;
};

// A chunk object; `usage_field` adds "usage": null, as OpenAI does when include_usage is on.
nlohmann::json chunk_json(const ResponseMeta& meta, const StreamDelta& d, bool usage_field);
// The last chunk of a stream with include_usage: no choices, only usage.
nlohmann::json usage_chunk_json(const ResponseMeta& meta, const std::vector<CompletionResult>& choices);

nlohmann::json usage_json(int prompt_tokens, int completion_tokens, int cached_prompt_tokens);
// Usage of a response's choices: the prompt once, every choice's tokens.
nlohmann::json usage_json(const std::vector<CompletionResult>& choices);

// Serializes JSON for the wire; invalid UTF-8 (never expected) becomes U+FFFD instead of throwing.
std::string to_wire(const nlohmann::json& j);
// One SSE event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& j);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

}  // namespace dsinfer
