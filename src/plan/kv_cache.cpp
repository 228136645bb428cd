#include "plan/kv_cache.h"

#include <algorithm>
#include <cmath>

#include "core/latent_fp8.h"

namespace dsinfer::plan {

int64_t kv_bytes_per_token_per_layer(const ModelConfig& c, KvDtype d, int tp) {
  // MLA in FP8: the engine's latent row (a scale per 128 values, the rope key in bf16).
  if (c.is_deepseek() && d == KvDtype::FP8) return latent_fp8_layout(c.kv_lora_rank, c.qk_rope_head_dim).row_bytes;
  if (c.is_deepseek()) return kv_vector_bytes(d, c.kv_lora_rank + c.qk_rope_head_dim);
  const int heads_here = c.num_kv_heads / std::min(tp, c.num_kv_heads);
  return 2 * int64_t(heads_here) * kv_vector_bytes(d, c.head_dim);
}

int64_t kv_bytes_per_token(const ModelConfig& c, KvDtype d) {
  return int64_t(c.num_layers) * kv_bytes_per_token_per_layer(c, d, 1);
}

int kv_block_tokens(const ModelConfig& c) { return c.is_deepseek() ? 64 : 16; }

int64_t kv_cache_bytes_available(double memory_bytes, double mem_util, int64_t weight_bytes, int64_t workspace_bytes) {
  return int64_t(std::floor(memory_bytes * mem_util)) - weight_bytes - workspace_bytes;
}

int64_t kv_cache_max_tokens(int64_t bytes_available, int64_t bytes_per_token, int block_tokens) {
  if (bytes_available <= 0 || bytes_per_token <= 0) return 0;
  return bytes_available / (bytes_per_token * block_tokens) * block_tokens;
}

int64_t kv_cache_max_sequences(int64_t max_tokens, int64_t context, int block_tokens) {
  const int64_t blocks_per_seq = std::max<int64_t>(1, (context + block_tokens - 1) / block_tokens);
  return max_tokens / block_tokens / blocks_per_seq;
}

}  // namespace dsinfer::plan
