#include "text/token_trie.h"

#include <algorithm>
#include <array>
#include <deque>
#include <optional>
#include <unordered_map>

namespace dsinfer {

// A node's children and tokens in vectors of their own while the trie grows.
struct TokenTrie::BuildNode {
  std::vector<std::pair<uint8_t, int>> children;  // (byte, node), sorted
  std::vector<int> tokens;
};

TokenTrie::TokenTrie(const Tokenizer& tokenizer) : bytes_(static_cast<size_t>(tokenizer.vocab_size())) {
  std::vector<BuildNode> built(1);
  for (int id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.is_special(id)) continue;
    bytes_[id] = tokenizer.token_text(id);
    int node = 0;
    for (char c : bytes_[id]) {
      const uint8_t b = static_cast<uint8_t>(c);
      auto& kids = built[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, 0));
      if (it == kids.end() || it->first != b) {
        it = kids.insert(it, {b, static_cast<int>(built.size())});
        const int child = it->second;
        built.emplace_back();
        node = child;
      } else {
        node = it->second;
      }
    }
    if (node != 0) built[node].tokens.push_back(id);
  }
  flatten(built);
}

// Depth first without recursion (a token's bytes can be long): a node is numbered and its tokens
// placed when it is reached, its edges' targets as its children are, its subtree's end and
// `below` once they are all done.
void TokenTrie::flatten(const std::vector<BuildNode>& built) {
  nodes_.resize(built.size());
  edges_.resize(built.size() - 1);  // every node but the root is one edge's target
  order_.reserve(bytes_.size());
  int placed = 0, edges = 0;
  const auto place = [&](int old_id) {
    Node& n = nodes_[placed];
    n.tokens = static_cast<int>(order_.size());
    order_.insert(order_.end(), built[old_id].tokens.begin(), built[old_id].tokens.end());
    n.tokens_end = static_cast<int>(order_.size());
    n.edges = edges;
    edges += static_cast<int>(built[old_id].children.size());
    n.edges_end = edges;
    return placed++;
  };
  struct Open {
    int old_id, id;
    size_t next;  // the child of built[old_id] to place next
  };
  std::vector<Open> path{{0, place(0), 0}};
  while (!path.empty()) {
    Open& top = path.back();
    const auto& kids = built[top.old_id].children;
    if (top.next < kids.size()) {
      const auto [b, child_old] = kids[top.next];
      const int child = place(child_old);
      edges_[nodes_[top.id].edges + top.next++] = {b, child};
      path.push_back({child_old, child, 0});
      continue;
    }
    Node& done = nodes_[top.id];
    done.subtree_end = static_cast<int>(order_.size());
    for (int e = done.edges; e < done.edges_end; ++e) {
      const uint8_t b = edges_[e].byte;
      done.below[b >> 6] |= uint64_t{1} << (b & 63);
      for (int w = 0; w < 4; ++w) done.below[w] |= nodes_[edges_[e].node].below[w];
    }
    path.pop_back();
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
    const Node& here = trie_.nodes_[node];
    for (int e = here.edges; e < here.edges_end; ++e) {
      const Edge& edge = trie_.edges_[e];
      const int n = next(state, edge.byte);
      if (n == kDead) continue;
      const Node& c = trie_.nodes_[edge.node];
      const bool whole = c.subtree_end - c.tokens >= kWholeSubtree && loops(n, c.below);
      for (int i = c.tokens; i < (whole ? c.subtree_end : c.tokens_end); ++i) allowed_[trie_.order_[i]] = 1;
      if (!whole) visit(edge.node, n);
    }
  }

  // Whether state `id` takes every byte of `bytes` back to itself (inside a JSON string, any
  // printable ASCII but the quote and the backslash), so every token made of them is allowed.
  // UTF-8 bytes do not qualify (a lead byte waits for its continuations): a subtree with any is
  // walked.
  bool loops(int id, const std::array<uint64_t, 4>& bytes) {
    for (int w = 0; w < 4; ++w)
      for (uint64_t bits = bytes[w]; bits; bits &= bits - 1)
        if (next(id, static_cast<uint8_t>(w * 64 + __builtin_ctzll(bits))) != id) return false;
    return true;
  }
  // Subtrees with fewer tokens are walked (the test above costs up to a lookup a byte).
  static constexpr int kWholeSubtree = 16;

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
