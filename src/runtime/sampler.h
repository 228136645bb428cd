// Sampler: turns one row of logits into the next token, with penalties, temperature, top-k,
// top-p, min-p and banned ids (EOS under --ignore-eos), and reports logprobs when asked.
#pragma once
#include <random>
#include <utility>
#include <vector>

#include "runtime/sampling_params.h"

namespace dsinfer {

struct SampleResult {
  int token = -1;
  float logprob = 0.0f;  // log-softmax of the penalized logits, before temperature
  std::vector<std::pair<int, float>> top_logprobs;
  int rank = 0;  // token_logprob: 1 + how many tokens are more likely (vLLM's rank)
};

struct SampleContext {
  const std::vector<int>* prompt = nullptr;     // for the repetition penalty
  const std::vector<int>* generated = nullptr;  // for all penalties
  const std::vector<int>* banned = nullptr;     // never sampled
};

// The log-softmax of `token` in raw logits, with the `top_n` most likely tokens' (a prompt
// token's logprob).
SampleResult token_logprob(const float* logits, int vocab, int token, int top_n);

// `logits` is modified in place (penalties, bans, filtering).
SampleResult sample_token(float* logits, int vocab, const SamplingParams& p, const SampleContext& ctx,
                          std::mt19937_64& rng);

}  // namespace dsinfer
