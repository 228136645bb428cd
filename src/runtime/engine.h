// Engine: the serving loop. A thread-safe submit API takes requests; a single engine thread
// runs steps of continuous batching (decode tokens of running sequences plus chunks of new
// prompts under a token budget) over the paged KV cache, samples, and streams tokens back
// through per-request callbacks.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "model/model.h"
#include "runtime/drafter.h"
#include "runtime/sampler.h"
#include "runtime/sampling_params.h"

namespace dsinfer {

enum class FinishReason { None, Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);

struct GenerationRequest {
  std::vector<int> prompt;
  int max_tokens = 16;
  SamplingParams sampling;
  std::vector<int> eos_ids;  // generation stops at any of these (not emitted as text by callers)
  bool ignore_eos = false;   // suppress eos ids entirely (they are never sampled)
  int min_tokens = 0;        // eos ids are never sampled before this many tokens (vLLM's min_tokens)
  int priority = 0;          // lower runs first; FIFO within a level
  // >= 0: the log-probability of every prompt token after the first (from the model's raw logits
  // at the position before it) and this many alternatives, sent with the request's first event
  // (OpenAI's echo, vLLM's prompt_logprobs). Such a prompt is computed whole (no prefix cache),
  // and max_tokens may be 0: the prompt scored, nothing generated.
  int prompt_logprobs = -1;
};

struct TokenEvent {
  uint64_t request_id = 0;
  int token = -1;            // -1 on a final event that carries no token
  float logprob = 0.0f;      // of the chosen token (when requested)
  std::vector<std::pair<int, float>> top_logprobs;
  bool finished = false;
  FinishReason reason = FinishReason::None;
  int prompt_tokens = 0, completion_tokens = 0;
  int cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  std::string error;         // set when reason == Error
  std::vector<SampleResult> prompt_logprobs;  // on the first event, when the request asked for them
};

// Called on the engine thread for every generated token and once more (or on the last token)
// with finished = true. Returning false stops the request (finish reason Stop), e.g. when the
// caller has matched a stop string.
using TokenCallback = std::function<bool(const TokenEvent&)>;

struct EngineOptions {
  int block_size = 0;              // cache slots a block; 0: the model's (cache_block_size)
  int64_t kv_cache_tokens = 0;     // 0: derive from kv_cache_bytes
  size_t kv_cache_bytes = 0;       // used when kv_cache_tokens == 0
  double memory_utilization = 0.9; // both 0: this share of the device's memory, less weights and workspace
  int max_batched_tokens = 512;    // token budget of one step (chunked prefill)
  int max_running = 64;            // sequences in the running batch
  int max_waiting = 256;           // queued requests before submit() refuses
  bool prefix_caching = true;
  bool cuda_graphs = true;         // decode steps replay recorded passes where the backend can
  // Speculative decoding: each step, a decoding sequence runs with the tokens this proposes after
  // it (where the step's budget and the cache have room), verified in the same step. Null: off.
  std::shared_ptr<const Drafter> drafter;
  // Or, > 0: this many drafts a step from the model's own multi-token-prediction layer
  // (Model::has_mtp), proposed at the end of the step before (the layer chained for each after
  // the first).
  int mtp_drafts = 0;
  int draft_below_batch = 0;       // > 0: no drafts while this many sequences or more run (vLLM's
                                   // disable_by_batch_size: at large batches verification costs more than it saves)
};

struct EngineStats {
  int running = 0, waiting = 0;
  int kv_blocks_used = 0, kv_blocks_total = 0;
  int64_t prefix_cache_queries = 0, prefix_cache_hits = 0;  // in tokens
  int64_t prompt_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, steps = 0;
  int64_t draft_tokens = 0, accepted_draft_tokens = 0;  // speculative decoding
  // The same by draft position (the 1st draft of a step, the 2nd, ...): how deep drafts hold, for
  // choosing --num-speculative-tokens (a chained MTP layer's later drafts hold less often).
  std::vector<int64_t> drafted_at, accepted_at;
};

// "speculative decoding: A of D drafted tokens accepted (P %)", then each position's rate when
// steps drafted more than one.
std::string speculation_summary(const EngineStats& s);

class EngineFull : public Error {
 public:
  using Error::Error;
};

class EngineStopping : public Error {
 public:
  using Error::Error;
};

// The cache's slots a block: `block_size`, or where it is 0 the size dsinfer plan counts with
// for the model (64 for MLA's latent cache, 16 otherwise: plan::kv_block_tokens).
int cache_block_size(int block_size, const Model& m);

class Engine {
 public:
  Engine(Model& model, Backend& backend, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request; throws EngineFull when max_waiting is reached, Error when the request
  // can never fit (prompt + max_tokens over the cache or the model's context).
  uint64_t submit(GenerationRequest request, TokenCallback callback);
  // Cancels a queued or running request; its blocks are freed before the next step. Its
  // callback receives a final event with reason Cancelled.
  void cancel(uint64_t request_id);
  EngineStats stats() const;
  int64_t kv_cache_tokens() const;
  int max_model_len() const;
  // Blocks until no request is queued or running.
  void wait_idle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsinfer
