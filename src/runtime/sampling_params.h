// How one request picks its next tokens (OpenAI / vLLM semantics).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace dsinfer {

class OutputGrammar;

// The most alternatives a logprob reports (OpenAI's bound).
constexpr int kMaxTopLogprobs = 20;

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  float repetition_penalty = 1.0f;  // HF style: logits of seen tokens divided (>0) or multiplied (<0)
  float presence_penalty = 0.0f;    // OpenAI style, over generated tokens
  float frequency_penalty = 0.0f;   // OpenAI style, over generated tokens
  std::optional<uint64_t> seed;     // fixed seed makes sampling reproducible
  int top_logprobs = -1;            // -1: no logprobs; 0..20: logprob of the chosen token + this many alternatives
  std::vector<std::pair<int, float>> logit_bias;  // OpenAI: (token id, added to its logit), with the penalties
  std::shared_ptr<const OutputGrammar> grammar;   // structured output: the tokens held to it

  bool greedy() const { return temperature <= 0.0f; }
};

}  // namespace dsinfer
