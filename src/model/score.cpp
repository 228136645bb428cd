#include "model/score.h"

#include <numeric>

#include "core/error.h"

namespace dsinfer {

std::vector<float> score_tokens(Model& model, Backend& backend, const std::vector<int>& ids) {
  const int max_len = model.config().max_position_embeddings;
  if (ids.size() > static_cast<size_t>(max_len))
    fail("cannot score ", ids.size(), " tokens: the model's context (max_position_embeddings) is ", max_len);
  const int n = static_cast<int>(ids.size()), block = 16;
  const int blocks = (n + block - 1) / block;
  KvCache cache(backend, model.kv_spec(), blocks, block);
  ForwardBatch b;
  b.block_size = block;
  b.tokens = ids;
  b.positions.resize(n);
  std::iota(b.positions.begin(), b.positions.end(), 0);
  b.slots = b.positions;  // blocks 0..blocks-1 in order
  SeqSlice s;
  s.query_len = s.context_len = n;
  s.block_table.resize(blocks);
  std::iota(s.block_table.begin(), s.block_table.end(), 0);
  b.seqs.push_back(s);
  b.logit_rows = b.positions;
  Tensor logits = model.forward(b, cache);
  std::vector<float> out(logits.numel());
  backend.copy_to_host(logits, out.data());
  return out;
}

}  // namespace dsinfer
