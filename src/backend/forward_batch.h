// ForwardBatch: one engine step's packed tokens. Sequences are laid out back to back; each
// token has a position and a KV-cache slot (block * block_size + offset in the block).
#pragma once
#include <cstdint>
#include <vector>

namespace dsinfer {

struct SeqSlice {
  int query_start = 0;  // first token of this sequence in the packed batch
  int query_len = 0;    // tokens of this sequence in this step
  int context_len = 0;  // tokens in the cache once this step is written (past + new)
  std::vector<int> block_table;  // cache blocks holding positions [0, context_len)
};

struct ForwardBatch {
  std::vector<int> tokens;     // [T]
  std::vector<int> positions;  // [T]
  std::vector<int> slots;      // [T]
  std::vector<SeqSlice> seqs;
  std::vector<int> logit_rows;  // which of the T tokens need logits, in output order
  int block_size = 16;

  int num_tokens() const { return static_cast<int>(tokens.size()); }
  int max_context() const;
  // Where each sequence's context starts when the contexts are packed back to back (see KvLayer):
  // [seqs + 1] prefix sums of context_len, the last the total.
  std::vector<int64_t> context_starts() const;
};

}  // namespace dsinfer
