// TokenTrie: a vocabulary's tokens by the bytes they decode to, in a trie, so the tokens a grammar
// state can take are found by walking the bytes once for every shared prefix (structured outputs
// mask every other token's logit at each step). Special tokens have no bytes here: a caller
// decides about them (EOS).
#pragma once
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
  struct Node {
    std::vector<std::pair<uint8_t, int>> children;  // (byte, node), sorted
    std::vector<int> tokens;                        // the tokens that end here
  };
  class Walk;

  std::vector<Node> nodes_;
  std::vector<std::string> bytes_;
};

}  // namespace dsinfer
