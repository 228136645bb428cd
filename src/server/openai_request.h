// The OpenAI request schema of /v1/chat/completions and /v1/completions, parsed and validated
// into one struct. Every rejected value raises ApiError 400 naming the field, so a client learns
// what to fix; fields the server does not use are ignored, as OpenAI-compatible servers do.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "text/grammar.h"

namespace dsinfer {

enum class Endpoint { Chat, Completion };

struct ApiRequest {
  Endpoint endpoint = Endpoint::Chat;
  std::string model;  // empty: the served model

  nlohmann::json messages;          // chat: [{role, content: string}], content parts joined
  // chat: what else the template renders, in the client's key order (templates print tools with
  // tojson): the tool schemas (null: none) and chat_template_kwargs (e.g. enable_thinking).
  nlohmann::ordered_json tools = nullptr;
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();
  bool parse_tool_calls = true;  // tool_choice "auto" (default); "none": calls in the answer stay text
  bool tool_required = false;    // tool_choice "required" or a named function: the answer is calls
  std::string tool_name;         // the named function (empty: any of the tools)
  std::optional<std::string> prompt_text;  // completions: a text prompt ...
  std::vector<int> prompt_ids;             // ... or token ids

  std::optional<int> max_tokens;  // max_completion_tokens wins over max_tokens
  std::optional<float> temperature, top_p;  // unset: the model's generation_config, else OpenAI's
  std::optional<int> top_k;
  std::optional<float> min_p, repetition_penalty;  // unset: the model's generation_config
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: no logprobs; else logprobs of the chosen token + this many alternatives
  std::vector<std::pair<int, float>> logit_bias;  // (token id, bias in [-100, 100])
  int n = 1;  // choices, each sampled on its own (with a seed, choice i with seed + i)

  bool stream = false;
  bool include_usage = false;      // stream_options.include_usage
  bool ignore_eos = false;         // vLLM extension: generate exactly max_tokens
  int min_tokens = 0;              // vLLM extension: no EOS or stop token id before this many tokens
  std::vector<int> stop_token_ids; // vLLM extension: more ids that end the answer, as EOS does
  bool return_token_ids = false;   // vLLM extension: token ids of prompt and output in each choice
  bool skip_special_tokens = true; // vLLM extension
  bool echo = false;               // completions: the prompt returned before the completion (with its logprobs)
  int prompt_logprobs = -1;        // vLLM extension: each prompt token's logprob and this many alternatives
  // Structured output: response_format json_object / json_schema, or vLLM's guided_json /
  // guided_choice, as given (in the client's key order, which orders a schema's properties) and
  // compiled; null / none: free text.
  nlohmann::ordered_json structured_output = nullptr;
  std::shared_ptr<const Grammar> grammar;
};

// The most choices (`n`) one request may ask for.
constexpr int kMaxChoices = 128;
// The most alternatives prompt_logprobs may ask for (the engine's bound on logprobs).
constexpr int kMaxPromptLogprobs = 20;

// Parses a request body; throws ApiError (400) for malformed JSON and bad field values.
ApiRequest parse_api_request(Endpoint endpoint, const std::string& body);

// The fields of a request that decide its output, as canonical JSON: the response cache key.
nlohmann::json output_defining_fields(const ApiRequest& r);

}  // namespace dsinfer
