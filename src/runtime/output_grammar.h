// OutputGrammar: a request's output held to a grammar (structured outputs: JSON mode, a JSON
// schema, a choice of strings). Before each sample the tokens whose bytes the text so far cannot
// be followed by are banned, and the EOS ids too until the text is complete; once nothing more can
// follow, the request ends. With `after_token` (a reasoning model's end-of-thinking token) the
// output is free until that token, and held to the grammar from the next one (vLLM's reasoning +
// structured outputs). Logprobs are those of the masked distribution.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "runtime/token_mask_cache.h"
#include "text/grammar.h"
#include "text/token_trie.h"

namespace dsinfer {

// Where one sequence is in its grammar.
struct OutputGrammarState {
  GrammarState text;
  bool active = true;  // false until after_token is sampled
};

class OutputGrammar {
 public:
  OutputGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> vocab,
                std::optional<int> after_token = std::nullopt);
  OutputGrammarState start() const;
  // Sets the logit of every token the state cannot take to -inf; `eos_ids` (EOS and stop token
  // ids, which end the answer; some may be ordinary tokens) stay only where `eos_allowed` and the
  // text is complete. Returns how many tokens are left.
  int mask(const OutputGrammarState& s, float* logits, int vocab, const std::vector<int>& eos_ids,
           bool eos_allowed = true) const;
  // The state after `token`; throws when the state cannot take it (a token mask() banned).
  void advance(OutputGrammarState& s, int token, const std::vector<int>& eos_ids) const;
  // Nothing may follow: the output is done.
  bool done(const OutputGrammarState& s) const { return s.active && s.text.closed(); }

 private:
  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenTrie> vocab_;
  std::optional<int> after_;
  mutable TokenMaskCache masks_;  // the vocabulary walk's result for recent states
};

}  // namespace dsinfer
