#include "runtime/token_mask_cache.h"

namespace dsinfer {

bool TokenMaskCache::find(const GrammarState& state, std::vector<char>& allowed) const {
  const size_t hash = state.hash();
  std::lock_guard lock(mu_);
  for (const Entry& e : entries_) {
    if (e.hash != hash || !(e.state == state)) continue;
    for (size_t w = 0; w < e.bits.size(); ++w)
      for (uint64_t bits = e.bits[w]; bits; bits &= bits - 1)
        allowed[w * 64 + static_cast<size_t>(__builtin_ctzll(bits))] = 1;
    return true;
  }
  return false;
}

void TokenMaskCache::put(const GrammarState& state, const std::vector<char>& allowed) {
  std::vector<uint64_t> bits((allowed.size() + 63) / 64, 0);
  for (size_t id = 0; id < allowed.size(); ++id)
    if (allowed[id]) bits[id / 64] |= uint64_t{1} << (id % 64);
  Entry e{state, state.hash(), std::move(bits)};
  std::lock_guard lock(mu_);
  if (capacity_ == 0) return;
  if (entries_.size() < capacity_) return entries_.push_back(std::move(e));
  entries_[oldest_] = std::move(e);
  oldest_ = (oldest_ + 1) % capacity_;
}

}  // namespace dsinfer
