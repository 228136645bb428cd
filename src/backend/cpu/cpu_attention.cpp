// Causal attention over the paged KV cache (GQA and absorbed MLA), float32 reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/latent_fp8.h"

namespace dsinfer {
namespace {

// Softmax in place over scores[0, n); returns nothing, scores become probabilities.
void softmax_inplace(float* scores, int n) {
  float mx = *std::max_element(scores, scores + n);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    scores[i] = std::exp(scores[i] - mx);
    sum += scores[i];
  }
  for (int i = 0; i < n; ++i) scores[i] /= sum;
}

// Calls fn(seq index, token index in batch, position, head) for every query head of the batch.
// `width` is the values per cached token a query reads (for the threading threshold).
template <typename Fn>
void for_each_query(const ForwardBatch& batch, int heads, int64_t width, Fn fn) {
  std::vector<std::pair<int, int>> work;  // (seq, token)
  for (int s = 0; s < static_cast<int>(batch.seqs.size()); ++s)
    for (int i = 0; i < batch.seqs[s].query_len; ++i) work.emplace_back(s, batch.seqs[s].query_start + i);
  const int64_t total = static_cast<int64_t>(work.size()) * heads;
#pragma omp parallel for schedule(dynamic, 4) if (total * batch.max_context() * width > kParallelWork)
  for (int64_t w = 0; w < total; ++w) {
    auto [s, t] = work[w / heads];
    fn(s, t, batch.positions[t], static_cast<int>(w % heads));
  }
}

}  // namespace

void CpuBackend::attention(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads, int head_dim,
                           int v_head_dim, float scale, Tensor out) {
  const int heads = static_cast<int>(q.dim(1));
  const int group = heads / kv_heads;
  const int64_t k_width = static_cast<int64_t>(kv_heads) * head_dim, v_width = static_cast<int64_t>(kv_heads) * v_head_dim;
  const std::vector<int64_t> starts = batch.context_starts();
  // The row of sequence s's key at position p: packed contexts, or the paged cache.
  auto row = [&](int s, int p) -> int64_t {
    return kv.packed ? starts[s] + p : cache_slot(batch.seqs[s], p, batch.block_size);
  };
  for_each_query(batch, heads, head_dim + v_head_dim, [&](int s, int t, int pos, int h) {
    const int kvh = h / group;
    const float* qv = q.ptr<float>() + (static_cast<int64_t>(t) * heads + h) * head_dim;
    std::vector<float> scores(pos + 1);
    for (int p = 0; p <= pos; ++p)
      scores[p] = dot_f32(qv, kv.k.ptr<float>() + row(s, p) * k_width + kvh * head_dim, head_dim) * scale;
    softmax_inplace(scores.data(), pos + 1);
    float* o = out.ptr<float>() + (static_cast<int64_t>(t) * heads + h) * v_head_dim;
    std::fill(o, o + v_head_dim, 0.0f);
    for (int p = 0; p <= pos; ++p) {
      const float* vv = kv.v.ptr<float>() + row(s, p) * v_width + kvh * v_head_dim;
      for (int d = 0; d < v_head_dim; ++d) o[d] += scores[p] * vv[d];
    }
  });
}

void CpuBackend::mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                               const Tensor& latent_cache, int kv_lora_rank, float scale, Tensor out_lat) {
  const int heads = static_cast<int>(q_lat.dim(1));
  const int rope_dim = static_cast<int>(q_rope.dim(2));
  const int64_t width = kv_lora_rank + rope_dim;
  // An FP8 cache's context rows, gathered and dequantized once for all heads (as the expanded
  // prefill reads them): [context_starts[s] + p, width].
  std::vector<float> rows;
  const std::vector<int64_t> starts = batch.context_starts();
  const bool fp8 = latent_cache.dtype == DType::U8;
  if (fp8) {
    check_latent_fp8_cache(latent_cache, latent_fp8_layout(kv_lora_rank, rope_dim), "mla_attention");
    std::vector<uint8_t> packed(starts.back() * latent_cache.shape.back());
    const Tensor packed_rows{DType::U8, {starts.back(), latent_cache.shape.back()}, packed.data(), {}};
    gather_context(batch, latent_cache, packed_rows);
    rows.resize(starts.back() * width);
    dequantize_latent(packed_rows, kv_lora_rank, Tensor{DType::F32, {starts.back(), width}, rows.data(), {}});
  } else if (latent_cache.shape.back() != width) {
    fail("mla_attention: latent ", kv_lora_rank, " + rope ", rope_dim, " over a cache of ", shape_str(latent_cache.shape));
  }
  auto row = [&](int s, int p) {
    return fp8 ? rows.data() + (starts[s] + p) * width
               : latent_cache.ptr<float>() + cache_slot(batch.seqs[s], p, batch.block_size) * width;
  };
  for_each_query(batch, heads, 2 * width, [&](int s, int t, int pos, int h) {
    const float* ql = q_lat.ptr<float>() + (static_cast<int64_t>(t) * heads + h) * kv_lora_rank;
    const float* qr = q_rope.ptr<float>() + (static_cast<int64_t>(t) * heads + h) * rope_dim;
    std::vector<float> scores(pos + 1);
    for (int p = 0; p <= pos; ++p) {
      const float* c = row(s, p);
      scores[p] = (dot_f32(ql, c, kv_lora_rank) + dot_f32(qr, c + kv_lora_rank, rope_dim)) * scale;
    }
    softmax_inplace(scores.data(), pos + 1);
    float* o = out_lat.ptr<float>() + (static_cast<int64_t>(t) * heads + h) * kv_lora_rank;
    std::fill(o, o + kv_lora_rank, 0.0f);
    for (int p = 0; p <= pos; ++p) {
      const float* c = row(s, p);
      for (int d = 0; d < kv_lora_rank; ++d) o[d] += scores[p] * c[d];
    }
  });
}

}  // namespace dsinfer
