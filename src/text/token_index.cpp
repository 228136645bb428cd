#include "text/token_index.h"

#include <functional>

namespace dsinfer {
namespace {

uint32_t hash_of(std::string_view token) { return static_cast<uint32_t>(std::hash<std::string_view>()(token)); }

}  // namespace

void TokenIndex::reserve(size_t count) {
  size_t want = 16;
  while (want < count * 2) want *= 2;
  if (want <= slots_.size()) return;
  slots_.assign(want, Slot{});
  for (int id = 0; id < size(); ++id) {
    if (!present_[id]) continue;
    uint32_t h = hash_of(tokens_[id]);
    slots_[slot_of(tokens_[id], h)] = {id, h};
  }
}

void TokenIndex::grow() { reserve(slots_.empty() ? 8 : slots_.size()); }

// The slot holding `token`, or the empty slot where it would go (linear probing).
size_t TokenIndex::slot_of(std::string_view token, uint32_t hash) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0 || (s.hash == hash && tokens_[s.id] == token)) return i;
  }
}

bool TokenIndex::insert(std::string token, int id) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  uint32_t h = hash_of(token);
  size_t slot = slot_of(token, h);
  if (slots_[slot].id >= 0) return false;
  if (id >= size()) {
    tokens_.resize(id + 1);
    present_.resize(id + 1, false);
  }
  if (present_[id]) return false;  // a second token for one id keeps the first
  tokens_[id] = std::move(token);
  present_[id] = true;
  slots_[slot] = {id, h};
  ++count_;
  return true;
}

std::optional<int> TokenIndex::find(std::string_view token) const {
  if (slots_.empty()) return std::nullopt;
  int id = slots_[slot_of(token, hash_of(token))].id;
  if (id < 0) return std::nullopt;
  return id;
}

const std::string* TokenIndex::token(int id) const {
  return id >= 0 && id < size() && present_[id] ? &tokens_[id] : nullptr;
}

}  // namespace dsinfer
