// A string -> id lookup for vocabularies: open addressing over the ids, the strings kept once
// in an id-indexed table. Several times faster to build and query than a node-based map,
// which matters when loading 100k+ tokens and checking 300k merges.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

class TokenIndex {
 public:
  // Registers `token` as `id`; returns false (keeping the first) when the token is known.
  bool insert(std::string token, int id);
  std::optional<int> find(std::string_view token) const;
  // The token of `id`, or nullptr.
  const std::string* token(int id) const;
  // One past the largest id.
  int size() const { return static_cast<int>(tokens_.size()); }
  void reserve(size_t count);

 private:
  // A slot keeps the token's hash so that probing past other tokens rarely touches their
  // strings (each such touch is a cache miss).
  struct Slot {
    int id = -1;  // -1: empty
    uint32_t hash = 0;
  };
  void grow();
  size_t slot_of(std::string_view token, uint32_t hash) const;

  std::vector<std::string> tokens_;
  std::vector<bool> present_;
  std::vector<Slot> slots_;  // size is a power of two
  size_t count_ = 0;
};

}  // namespace dsinfer
