// NgramDrafter: prompt lookup, speculative decoding without a draft model. A sequence's last n
// tokens are looked up earlier in its own tokens (prompt and output), and the tokens that
// followed there are proposed as its next ones. Text that repeats its context (code edits,
// quotes, extraction, summaries) drafts well.
#pragma once
#include <memory>

#include "runtime/drafter.h"

namespace dsinfer {

struct NgramDraftOptions {
  int max_tokens = 0;  // drafted per step; 0: off
  int min_n = 2;       // the shortest suffix looked up
  int max_n = 4;       // the longest, tried first
};

class NgramDrafter final : public Drafter {
 public:
  // Throws when the suffix lengths are not 1 <= min_n <= max_n.
  explicit NgramDrafter(const NgramDraftOptions& o);
  // The tokens that followed the most recent earlier occurrence of the longest recurring suffix.
  std::vector<int> propose(const std::vector<int>& tokens, int max_tokens) const override;

 private:
  NgramDraftOptions o_;
};

// An NgramDrafter, or null when o.max_tokens is 0.
std::shared_ptr<const Drafter> make_ngram_drafter(const NgramDraftOptions& o);

}  // namespace dsinfer
