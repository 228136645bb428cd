// KV-cache sizes and capacity. The engine sizes its paged cache with these same functions,
// so `dsinfer plan` predicts the number the engine allocates.
#pragma once
#include <cstdint>

#include "model/model_config.h"
#include "plan/precision.h"

namespace dsinfer::plan {

// Tokens per KV block of the engine's paged cache: 64 for MLA's latent cache, 16 otherwise
// (vLLM's default). The GPU's MLA decode reads 64-key tiles whose TMA boxes never straddle a
// page: with pages of 16 a tile takes four boxes a piece, and FP8 rows decoded 20-25 % slower
// at V3's shape (16 heads, batch 32-64 x 4096; bf16 rows 4 %). FlashMLA's pages are 64 too.
int kv_block_tokens(const ModelConfig& c);

// Bytes one token caches in one layer on one GPU of a TP group of `tp`.
// MLA: one (kv_lora_rank + qk_rope_head_dim) latent row, shared by all heads, so every GPU
// of the group holds all of it. GQA: K and V of the kv heads the GPU owns (heads are
// replicated once tp exceeds them).
int64_t kv_bytes_per_token_per_layer(const ModelConfig& c, KvDtype d, int tp = 1);
// All layers, one GPU holding everything: the model's figure.
int64_t kv_bytes_per_token(const ModelConfig& c, KvDtype d);

// What is left for the KV cache: memory * mem_util - weights - workspace (negative when short).
int64_t kv_cache_bytes_available(double memory_bytes, double mem_util, int64_t weight_bytes, int64_t workspace_bytes);
// Tokens that fit in whole blocks of `block_tokens`.
int64_t kv_cache_max_tokens(int64_t bytes_available, int64_t bytes_per_token, int block_tokens);
// Sequences of `context` tokens that fit in a cache of `max_tokens` (each takes whole blocks).
int64_t kv_cache_max_sequences(int64_t max_tokens, int64_t context, int block_tokens);

}  // namespace dsinfer::plan
