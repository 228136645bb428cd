#include "runtime/output_grammar.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace dsinfer {

OutputGrammar::OutputGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> vocab,
                             std::optional<int> after_token)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), after_(after_token) {}

OutputGrammarState OutputGrammar::start() const { return {GrammarState(*grammar_), !after_.has_value()}; }

int OutputGrammar::mask(const OutputGrammarState& s, float* logits, int vocab, const std::vector<int>& eos_ids,
                        bool eos_allowed) const {
  if (!s.active) return vocab;
  std::vector<char> allowed(static_cast<size_t>(std::max(vocab, vocab_->vocab_size())), 0);
  if (!masks_.find(s.text, allowed)) {
    vocab_->allowed(s.text, allowed);
    masks_.put(s.text, allowed);
  }
  // An id that ends the answer (EOS, a stop token id, which may be an ordinary token's) only once
  // the text is whole.
  for (int id : eos_ids)
    if (id >= 0 && id < vocab) allowed[id] = eos_allowed && s.text.complete();
  int left = 0;
  for (int id = 0; id < vocab; ++id) {
    if (allowed[id])
      ++left;
    else
      logits[id] = -std::numeric_limits<float>::infinity();
  }
  return left;
}

void OutputGrammar::advance(OutputGrammarState& s, int token, const std::vector<int>& eos_ids) const {
  if (!s.active) {
    s.active = after_ && token == *after_;
    return;
  }
  if (std::count(eos_ids.begin(), eos_ids.end(), token)) return;
  const std::string& bytes = vocab_->bytes(token);
  if (bytes.empty() || !s.text.accept(bytes))
    fail("token ", token, " does not continue the output's grammar (structured output)");
}

}  // namespace dsinfer
