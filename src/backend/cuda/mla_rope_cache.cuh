// MLA's rope-and-cache work for one decode or prefill token, as device functions: its own kernel
// runs them (mla_rope_cache_kernel, norm_rope.cu), and so does the launch that also applies W_UK
// to the query (mla_absorb.cu). q [T, H, nope + rope] and the latent kv [T, lora + rope] come
// from the projections; the cache row is [rmsnorm(kv[:lora]) * norm, rope(kv[lora:])], in bf16 or
// as an FP8 latent row (core/latent_fp8.h).
#pragma once
#include "backend/cuda/device_batch.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/latent_fp8.cuh"
#include "backend/cuda/rotary.cuh"

namespace dsinfer::cuda {

// A head's share of a token's query work: its nope values copied into q_nope (none when q_nope is
// null: the consumer then reads them in q), then its rope/2 rotated pairs into q_rope.
__host__ __device__ inline int mla_query_values_per_head(const MlaRopeCacheParams& p) {
  return (p.q_nope != nullptr ? p.nope : 0) + p.rope / 2;
}

// Value j (< heads * mla_query_values_per_head) of token t's query work, by one thread.
__device__ __forceinline__ void mla_query_value(const DeviceBatch& b, const MlaRopeCacheParams& p, int t, int j) {
  const int per_head = mla_query_values_per_head(p), copies = per_head - p.rope / 2;
  const int64_t th = static_cast<int64_t>(t) * p.heads + j / per_head;
  const int i = j % per_head;
  const bf16* qh = p.q + th * (p.nope + p.rope);
  if (i < copies)
    p.q_nope[th * p.nope + i] = qh[i];
  else
    rotate_pair_at(qh + p.nope, p.q_rope + th * p.rope, i - copies, p.rope / 2, static_cast<float>(b.positions[t]),
                   p.inv_freq, p.attention_factor, p.neox);
}

// Token t's cache row, by the calling block (every thread calls it; a barrier inside unless the
// token has no slot, which the whole block then skips alike). A second call needs a barrier first.
__device__ inline void mla_cache_row(const DeviceBatch& b, const MlaRopeCacheParams& p, int t) {
  const int64_t slot = b.slots[t];
  if (slot < 0) return;  // a padding token, written nowhere
  const int width = p.lora + p.rope, half = p.rope / 2;
  const bf16* kv = p.kv + static_cast<int64_t>(t) * width;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < p.lora; i += blockDim.x) {
    const float v = __bfloat162float(kv[i]);
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(p.lora) + p.eps);
  auto value = [&](int i) { return weight_at(p.norm, 0, i) * (__bfloat162float(kv[i]) * inv); };
  const float pos = static_cast<float>(b.positions[t]);
  bf16* rope_out;
  if (p.cache_fp8 != nullptr) {  // --kv-dtype fp8
    uint8_t* row = p.cache_fp8 + slot * p.fp8.row_bytes;
    write_latent_fp8(row, p.fp8, value);
    rope_out = reinterpret_cast<bf16*>(row + p.fp8.rope_offset);
  } else {
    bf16* row = p.cache + slot * width;
    for (int i = threadIdx.x; i < p.lora; i += blockDim.x) row[i] = __float2bfloat16(value(i));
    rope_out = row + p.lora;
  }
  for (int i = threadIdx.x; i < half; i += blockDim.x)
    rotate_pair_at(kv + p.lora, rope_out, i, half, pos, p.inv_freq, p.attention_factor, p.neox);
}

}  // namespace dsinfer::cuda
