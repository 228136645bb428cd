// From an OpenAI request to the engine's GenerationRequest: the prompt's token ids (chat
// template or raw prompt), max_tokens checked against the context, sampling fields resolved
// against the model's defaults, EOS ids.
#pragma once
#include "runtime/engine.h"
#include "server/openai_request.h"
#include "server/served_model.h"

namespace dsinfer {

// Throws ApiError 404 when a request names a model (non-empty `name`) this server does not serve.
void check_model_name(const std::string& name, const ServedModel& model);

// Throws ApiError 400 naming the field when the prompt cannot be built or does not fit.
GenerationRequest build_generation_request(const ApiRequest& r, const ServedModel& model);

// The prompt's token ids: the chat template rendered and encoded, a text encoded with the
// tokenizer's special tokens, or the ids given. Throws ApiError 400 naming the field.
std::vector<int> prompt_tokens(const ApiRequest& r, const ServedModel& model);

// Greedy, or sampled with a fixed seed: the same request gives the same output.
bool deterministic(const SamplingParams& p);

}  // namespace dsinfer
