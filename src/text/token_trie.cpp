#include "text/token_trie.h"

#include <algorithm>

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

void TokenTrie::allowed(const GrammarState& state, std::vector<char>& allowed) const {
  if (allowed.size() < bytes_.size()) allowed.resize(bytes_.size(), 0);
  walk(0, state, allowed);
}

void TokenTrie::walk(int node, const GrammarState& state, std::vector<char>& allowed) const {
  for (const auto& [b, child] : nodes_[node].children) {
    GrammarState next = state;
    if (!next.accept(b)) continue;
    for (int id : nodes_[child].tokens) allowed[id] = 1;
    walk(child, next, allowed);
  }
}

}  // namespace dsinfer
