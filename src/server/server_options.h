// The knobs of `dsinfer serve` (documented in docs/api.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/model.h"
#include "runtime/speculative_options.h"

namespace dsinfer {

struct ServerOptions {
  std::string model_dir;
  std::string device = "cpu";
  bool enforce_eager = false;     // decode op by op, without CUDA graphs
  int tensor_parallel = 1;        // ranks: devices from `device` on
  ModelOptions model_options;     // --mla-prefill (DeepSeek models)
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string served_model_name;  // empty: the model directory's name
  std::string api_key;            // empty: no authentication
  int max_running = 64;           // sequences in the running batch
  int max_waiting = 256;          // queued requests before 429
  int64_t kv_cache_tokens = 0;    // 0: a default (CPU) or what the device's memory allows
  double gpu_memory_utilization = 0.9;  // on a GPU with no --kv-cache-tokens: share of memory to use
  int max_batched_tokens = 512;   // token budget of one engine step
  int block_size = 0;             // KV cache slots a block; 0: the model's (64 for MLA, 16 otherwise)
  SpeculativeOptions speculative;  // speculative decoding (off by default)
  int speculative_disable_by_batch_size = 0;  // > 0: no drafts while this many sequences run
  double request_timeout_s = 600; // a request still running after this is cancelled
  double drain_timeout_s = 30;    // on SIGTERM, how long running requests may finish
  size_t max_body_bytes = size_t(8) << 20;
  std::string response_cache;     // empty, "memory" or "redis://HOST:PORT"
  int response_cache_ttl_s = 3600;
  std::string reasoning_parser = "auto";  // auto, deepseek-r1 or none
  std::string tool_call_parser = "auto";  // auto, deepseek or none
};

}  // namespace dsinfer
