// A batch of sequences over a paged cache for attention tests: each sequence has `past` tokens
// already cached and `len` new ones, its cache blocks drawn from a shuffled pool.
#pragma once
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "backend/forward_batch.h"

namespace dsinfer::testing {

struct SeqSpec {
  int past;  // tokens already in the cache
  int len;   // new tokens in this step
};

// The sequences back to back, their cache blocks (of `block` slots) drawn from a shuffled pool
// of `blocks`.
inline ForwardBatch paged_batch(const std::vector<SeqSpec>& specs, int blocks, uint32_t seed, int block) {
  std::vector<int> pool(blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), std::mt19937(seed));
  ForwardBatch b;
  b.block_size = block;
  size_t next = 0;
  for (const SeqSpec& sp : specs) {
    SeqSlice s;
    s.query_start = b.num_tokens();
    s.query_len = sp.len;
    s.context_len = sp.past + sp.len;
    for (int i = 0; i < (s.context_len + block - 1) / block; ++i) s.block_table.push_back(pool.at(next++));
    for (int p = sp.past; p < s.context_len; ++p) {
      b.tokens.push_back(0);
      b.positions.push_back(p);
      b.slots.push_back(s.block_table[p / block] * block + p % block);
    }
    b.seqs.push_back(s);
  }
  return b;
}

// Blocks the specs use, and a few never used.
inline int blocks_needed(const std::vector<SeqSpec>& specs, int block) {
  int n = 0;
  for (const SeqSpec& s : specs) n += (s.past + s.len + block - 1) / block;
  return n + 3;
}

}  // namespace dsinfer::testing
