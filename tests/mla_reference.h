// DeepSeek's MLA the way transformers computes it ("expanded"): per-head keys and values made
// from the cached latent through kv_b_proj, then causal softmax attention, in double. The
// absorbed path the backends run (W_UK folded into the query, attention over the latent cache,
// W_UV applied after) is checked against it.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/forward_batch.h"

namespace dsinfer::testing {

struct MlaShape {
  int heads, nope, rope, v, lora;
};

// out [T, heads, v] for q_nope [T, heads, nope], q_rope [T, heads, rope] (already rotated), the
// cache [slots, lora + rope] (normalized latent, rotated key part) and kv_b [heads * (nope + v),
// lora]: token t at position p attends to its sequence's positions 0..p.
inline std::vector<float> mla_expanded(const ForwardBatch& b, const MlaShape& s, const std::vector<float>& q_nope,
                                       const std::vector<float>& q_rope, const std::vector<float>& cache,
                                       const std::vector<float>& kv_b, float scale) {
  const int width = s.lora + s.rope, per_head = s.nope + s.v;
  std::vector<float> out(static_cast<size_t>(b.num_tokens()) * s.heads * s.v);
  // Every head's key (nope part) and value rows of a slot's latent, made on the slot's first use.
  std::vector<std::vector<double>> expanded(cache.size() / width);
  auto kv = [&](int slot) -> const std::vector<double>& {
    std::vector<double>& rows = expanded[slot];
    if (rows.empty()) {
      rows.resize(static_cast<size_t>(s.heads) * per_head);
      for (size_t r = 0; r < rows.size(); ++r) {
        double acc = 0;
        for (int i = 0; i < s.lora; ++i) acc += double(kv_b[r * s.lora + i]) * cache[size_t(slot) * width + i];
        rows[r] = acc;
      }
    }
    return rows;
  };
  for (const SeqSlice& seq : b.seqs)
    for (int t = seq.query_start; t < seq.query_start + seq.query_len; ++t) {
      const int keys = b.positions[t] + 1;
      for (int h = 0; h < s.heads; ++h) {
        const size_t qh = static_cast<size_t>(t) * s.heads + h;
        std::vector<double> score(keys);
        std::vector<int> slots(keys);
        for (int j = 0; j < keys; ++j) {
          slots[j] = seq.block_table[j / b.block_size] * b.block_size + j % b.block_size;
          double dot = 0;
          const double* k = kv(slots[j]).data() + static_cast<size_t>(h) * per_head;
          for (int i = 0; i < s.nope; ++i) dot += q_nope[qh * s.nope + i] * k[i];
          for (int i = 0; i < s.rope; ++i) dot += double(q_rope[qh * s.rope + i]) * cache[size_t(slots[j]) * width + s.lora + i];
          score[j] = dot * scale;
        }
        const double top = *std::max_element(score.begin(), score.end());
        double sum = 0;
        for (double& x : score) sum += (x = std::exp(x - top));
        for (int i = 0; i < s.v; ++i) {
          double acc = 0;
          for (int j = 0; j < keys; ++j) acc += score[j] * kv(slots[j])[static_cast<size_t>(h) * per_head + s.nope + i];
          out[qh * s.v + i] = static_cast<float>(acc / sum);
        }
      }
    }
  return out;
}

// kv_b's per-head blocks as the absorbed path takes them: w_uk [heads, nope, lora] and
// w_uv [heads, v, lora].
inline void split_kv_b(const MlaShape& s, const std::vector<float>& kv_b, std::vector<float>& w_uk,
                       std::vector<float>& w_uv) {
  const size_t lora = s.lora;
  w_uk.clear();
  w_uv.clear();
  for (int h = 0; h < s.heads; ++h) {
    const auto head = kv_b.begin() + static_cast<size_t>(h) * (s.nope + s.v) * lora;
    w_uk.insert(w_uk.end(), head, head + s.nope * lora);
    w_uv.insert(w_uv.end(), head + s.nope * lora, head + (s.nope + s.v) * lora);
  }
}

}  // namespace dsinfer::testing
