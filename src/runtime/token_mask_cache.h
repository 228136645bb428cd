// TokenMaskCache: the tokens a grammar's vocabulary walk allowed from its most recent distinct
// states, so that a state met again costs a lookup, not a walk. Inside a JSON string or key every
// plain character leads back to the same recognizer state, so most steps of a long value repeat
// the mask of the step before (a walk takes ~3-5 ms there at DeepSeek-V3's vocabulary, 10-35 ms
// before session 61's flat trie).
// Thread-safe: the sequences of one request (n > 1) are masked in parallel.
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "text/grammar.h"

namespace dsinfer {

class TokenMaskCache {
 public:
  explicit TokenMaskCache(size_t capacity = 16) : capacity_(capacity) {}
  // When `state` is cached: sets allowed[id] = 1 for each token it allowed (allowed holds at least
  // the vocabulary and is all zeros) and returns true.
  bool find(const GrammarState& state, std::vector<char>& allowed) const;
  // Remembers the flags a walk from `state` set; the oldest entry goes once `capacity` are held.
  void put(const GrammarState& state, const std::vector<char>& allowed);

 private:
  struct Entry {
    GrammarState state;
    size_t hash;
    std::vector<uint64_t> bits;  // one per token: 16 KB at a 129k vocabulary
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  size_t capacity_, oldest_ = 0;
};

}  // namespace dsinfer
