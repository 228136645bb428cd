#include "runtime/block_manager.h"

#include <algorithm>

#include "core/error.h"

namespace dsinfer {

BlockManager::BlockManager(int num_blocks, int block_size)
    : block_size_(block_size), refs_(num_blocks, 0), evictable_pos_(num_blocks), block_key_(num_blocks) {
  free_.reserve(num_blocks);
  for (int b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

uint64_t BlockManager::block_hash(uint64_t parent, const int* tokens, int n) {
  uint64_t h = parent ^ 0x9e3779b97f4a7c15ull;  // FNV-1a over the parent hash and the token ids
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<uint32_t>(tokens[i]);
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

std::optional<int> BlockManager::allocate() {
  int b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!evictable_.empty()) {
    b = evictable_.front();
    evictable_.pop_front();
    uncache(b);
  } else {
    return std::nullopt;
  }
  refs_[b] = 1;
  return b;
}

std::optional<int> BlockManager::lookup(uint64_t hash, uint64_t parent, const int* tokens) {
  auto it = cache_.find(hash);
  if (it == cache_.end() || it->second.parent != parent ||
      !std::equal(it->second.tokens.begin(), it->second.tokens.end(), tokens))
    return std::nullopt;
  int b = it->second.block;
  if (refs_[b] == 0) evictable_.erase(evictable_pos_[b]);
  ++refs_[b];
  return b;
}

void BlockManager::register_full(int block, uint64_t hash, uint64_t parent, const int* tokens) {
  if (block_key_[block] || cache_.count(hash)) return;  // already cached (this block or a twin)
  cache_.emplace(hash, Cached{block, parent, std::vector<int>(tokens, tokens + block_size_)});
  block_key_[block] = hash;
}

void BlockManager::release(int block) {
  if (refs_.at(block) <= 0) fail("internal: block ", block, " released more often than taken");
  if (--refs_[block] > 0) return;
  if (block_key_[block]) {
    evictable_.push_back(block);
    evictable_pos_[block] = std::prev(evictable_.end());
  } else {
    free_.push_back(block);
  }
}

void BlockManager::uncache(int block) {
  if (block_key_[block]) cache_.erase(*block_key_[block]);
  block_key_[block].reset();
}

}  // namespace dsinfer
