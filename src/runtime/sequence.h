// Sequence: one request's state inside the engine: its tokens (prompt, then generated), how
// many of them have KV in the cache, the cache blocks it holds and their prefix hashes.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "runtime/engine.h"
#include "runtime/output_grammar.h"

namespace dsinfer {

struct Sequence {
  uint64_t id = 0;
  uint64_t arrival = 0;  // submission order, for FIFO within a priority level
  GenerationRequest request;
  TokenCallback callback;
  std::vector<int> tokens;     // prompt + generated
  std::vector<int> generated;
  int prompt_len = 0;
  int computed = 0;            // tokens whose keys/values are in the cache
  std::vector<int> blocks;     // block table
  std::vector<uint64_t> hashes;  // prefix hashes of the leading full blocks registered so far
  int cached_prompt_tokens = 0;
  std::mt19937_64 rng;
  std::optional<OutputGrammarState> grammar;  // where the output is in request.sampling.grammar
  // request.prompt_logprobs: those of prompt tokens 1.. so far (a recomputed prompt adds none
  // twice), until sent with the first event.
  std::vector<SampleResult> prompt_logprobs;
  bool prompt_logprobs_sent = false;
  // Speculative decoding with the model's MTP layer: its drafts for the tokens after `tokens`, as
  // they were when it proposed them (mtp_drafts_for of them).
  std::vector<int> mtp_drafts;
  size_t mtp_drafts_for = 0;

  int remaining() const { return static_cast<int>(tokens.size()) - computed; }
  // The first position a step from `computed` scores for prompt logprobs: the first without one.
  int first_scored() const { return std::max(computed, static_cast<int>(prompt_logprobs.size())); }
  // Logit rows a step computing `n` tokens from `computed` needs for prompt logprobs: positions
  // from first_scored() up to the prompt's second to last.
  int prompt_logprob_rows(int n) const {
    if (request.prompt_logprobs < 0 || prompt_logprobs_sent) return 0;
    return std::max(0, std::min(computed + n, prompt_len - 1) - first_scored());
  }
  // The MTP layer's drafts, if proposed for the tokens as they are now.
  std::vector<int> current_mtp_drafts() const {
    return mtp_drafts_for == tokens.size() ? mtp_drafts : std::vector<int>{};
  }
  // Lower runs first: by priority, then by arrival.
  bool before(const Sequence& o) const {
    return request.priority != o.request.priority ? request.priority < o.request.priority : arrival < o.arrival;
  }
};

}  // namespace dsinfer
