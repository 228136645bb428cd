// BlockManager: the paged KV cache's block allocator. Blocks are ref-counted so sequences can
// share them; full blocks are keyed by the hash of their whole token prefix (prefix caching).
// A cached block whose last user left stays cached (evictable, least recently used first)
// until its memory is needed.
#pragma once
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

namespace dsinfer {

class BlockManager {
 public:
  BlockManager(int num_blocks, int block_size);

  // Hash of a full block given the hash of everything before it.
  static uint64_t block_hash(uint64_t parent, const int* tokens, int n);

  // A fresh block (ref count 1), or nullopt when none is free or evictable.
  std::optional<int> allocate();
  // Takes a reference to the cached block holding this exact prefix, if any.
  std::optional<int> lookup(uint64_t hash, uint64_t parent, const int* tokens);
  // Records that `block` (full, computed) holds the prefix with this hash.
  void register_full(int block, uint64_t hash, uint64_t parent, const int* tokens);
  void release(int block);

  int num_blocks() const { return static_cast<int>(refs_.size()); }
  int block_size() const { return block_size_; }
  int available() const { return static_cast<int>(free_.size() + evictable_.size()); }
  int used() const { return num_blocks() - available(); }

 private:
  struct Cached {
    int block;
    uint64_t parent;
    std::vector<int> tokens;  // verified on lookup, so a hash collision can never share wrong data
  };
  void uncache(int block);

  int block_size_;
  std::vector<int> refs_;
  std::vector<int> free_;
  std::list<int> evictable_;  // LRU order: front is evicted first
  std::vector<std::list<int>::iterator> evictable_pos_;
  std::vector<std::optional<uint64_t>> block_key_;
  std::unordered_map<uint64_t, Cached> cache_;
};

}  // namespace dsinfer
