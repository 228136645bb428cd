#include "text/token_trie.h"

#include <algorithm>
#include <array>
#include <deque>
#include <optional>
#include <unordered_map>

namespace dsinfer {

TokenTrie::TokenTrie(const Tokenizer& tokenizer) : nodes_(1), bytes_(static_cast<size_t>(tokenizer.vocab_size())) {
  for (int id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.is_special(id)) continue;
    bytes_[id] = tokenizer.token_text(id);
    int node = 0;
    for (char c : bytes_[id]) {
      const uint8_t b = static_cast<uint8_t>(c);
      auto& kids = nodes_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, 0));
      if (it == kids.end() || it->first != b) {
        it = kids.insert(it, {b, static_cast<int>(nodes_.size())});
        const int child = it->second;
        nodes_.emplace_back();
        node = child;
      } else {
        node = it->second;
      }
    }
    if (node != 0) nodes_[node].tokens.push_back(id);
  }
}

const std::string& TokenTrie::bytes(int id) const {
  static const std::string none;
  return id >= 0 && id < vocab_size() ? bytes_[id] : none;
}

// One walk of the trie from a state. Most trie nodes reach a state seen before (inside a JSON
// string every plain character leads back to the same one), so states are interned and their
// steps kept in a table: each distinct (state, byte) is stepped once, the rest are lookups.
class TokenTrie::Walk {
 public:
  Walk(const TokenTrie& trie, std::vector<char>& allowed) : trie_(trie), allowed_(allowed) {}

  void run(const GrammarState& start) { visit(0, intern(start)); }

 private:
  static constexpr int kUnknown = -2, kDead = -1;
  struct Interned {
    GrammarState state;
    std::array<int, 256> next;
  };

  int intern(const GrammarState& s) {
    std::vector<int>& same_hash = index_[s.hash()];
    for (int id : same_hash)
      if (states_[id].state == s) return id;
    states_.push_back({s, {}});
    states_.back().next.fill(kUnknown);
    same_hash.push_back(static_cast<int>(states_.size()) - 1);
    return same_hash.back();
  }

  int next(int id, uint8_t b) {
    if (states_[id].next[b] != kUnknown) return states_[id].next[b];
    if (!step_) step_.emplace(states_[id].state);
    const int n = states_[id].state.step(b, *step_, scratch_) ? intern(*step_) : kDead;
    states_[id].next[b] = n;
    return n;
  }

  void visit(int node, int state) {
    for (const auto& [b, child] : trie_.nodes_[node].children) {
      const int n = next(state, b);
      if (n == kDead) continue;
      for (int id : trie_.nodes_[child].tokens) allowed_[id] = 1;
      visit(child, n);
    }
  }

  const TokenTrie& trie_;
  std::vector<char>& allowed_;
  std::deque<Interned> states_;  // stable addresses as it grows
  std::unordered_map<size_t, std::vector<int>> index_;
  std::optional<GrammarState> step_;
  GrammarState::Stack scratch_;
};

void TokenTrie::allowed(const GrammarState& state, std::vector<char>& allowed) const {
  if (allowed.size() < bytes_.size()) allowed.resize(bytes_.size(), 0);
  Walk(*this, allowed).run(state);
}

}  // namespace dsinfer
