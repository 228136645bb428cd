// TokenTrie: a vocabulary's tokens by the bytes they decode to, in a trie, so the tokens a grammar
// state can take are found by walking the bytes once for every shared prefix (structured outputs
// mask every other token's logit at each step). Special tokens have no bytes here: a caller
// decides about them (EOS).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "text/grammar.h"
#include "text/tokenizer.h"

namespace dsinfer {

class TokenTrie {
 public:
  explicit TokenTrie(const Tokenizer& tokenizer);
  // Sets allowed[id] = 1 for every token whose bytes `state` takes, whole (others untouched).
  void allowed(const GrammarState& state, std::vector<char>& allowed) const;
  // The bytes of token `id` ("" for special and unknown ids).
  const std::string& bytes(int id) const;
  int vocab_size() const { return static_cast<int>(bytes_.size()); }

 private:
  // Nodes in depth-first order, flat: a walk reads them, their edges and their tokens front to
  // back. V3's vocabulary inside a JSON string (126k tokens allowed, 186k nodes): 26-34 ms a walk
  // with a node's children and tokens in vectors of its own, ~5 ms flat, 3.4-4.6 ms with subtrees
  // taken whole (Walk::loops); OutputGrammarBench on the 2-core CI machine, session 61. The trie
  // takes ~50 ms longer to make (150-194 ms), once a model.
  struct Node {
    int edges = 0, edges_end = 0;    // its children: edges_[edges, edges_end)
    int tokens = 0, tokens_end = 0;  // the tokens that end here: order_[tokens, tokens_end)
    int subtree_end = 0;             // its subtree's tokens, its own first: order_[tokens, subtree_end)
    // The bytes of the edges below it, one bit each: where a state takes every one of them back
    // to itself, the whole subtree is allowed without walking it.
    std::array<uint64_t, 4> below{};
  };
  struct Edge {
    uint8_t byte;
    int node;
  };
  class Walk;
  struct BuildNode;  // the trie as it is built
  void flatten(const std::vector<BuildNode>& built);

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<int> order_;  // token ids by node, depth first
  std::vector<std::string> bytes_;
};

}  // namespace dsinfer
