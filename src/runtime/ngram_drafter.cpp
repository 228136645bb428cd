#include "runtime/ngram_drafter.h"

#include <algorithm>

#include "core/error.h"

namespace dsinfer {

namespace {

struct Match {
  int start = -1;  // where the earlier occurrence starts
  int n = 0;       // how many tokens of the suffix it repeats
};

// The most recent earlier occurrence of the longest suffix of max_n..min_n tokens, in one pass
// from the end (a long context is read once, not once per length); stops at a whole max_n match.
Match longest_recent_match(const std::vector<int>& tokens, int min_n, int max_n) {
  const int len = static_cast<int>(tokens.size());
  Match best;
  for (int end = len - 2; end >= 0; --end) {  // the occurrence ends at `end`, before the suffix's last token
    int n = 0;
    while (n < max_n && n <= end && tokens[end - n] == tokens[len - 1 - n]) ++n;
    if (n >= min_n && n > best.n) best = {end - n + 1, n};
    if (best.n == max_n) break;
  }
  return best;
}

}  // namespace

NgramDrafter::NgramDrafter(const NgramDraftOptions& o) : o_(o) {
  if (o.min_n < 1 || o.min_n > o.max_n)
    fail("prompt lookup: the shortest suffix looked up (--prompt-lookup-min ", o.min_n,
         ") must be at least 1 and at most the longest (--prompt-lookup-max ", o.max_n, ")");
}

std::vector<int> NgramDrafter::propose(const std::vector<int>& tokens, int max_tokens) const {
  const int want = std::min(max_tokens, o_.max_tokens);
  if (want <= 0 || tokens.size() < 2) return {};
  const Match m = longest_recent_match(tokens, o_.min_n, std::min<int>(o_.max_n, static_cast<int>(tokens.size()) - 1));
  if (m.start < 0) return {};
  // What followed the match; it may run into the suffix itself (a repeating pattern).
  const int from = m.start + m.n, to = std::min(static_cast<int>(tokens.size()), from + want);
  return {tokens.begin() + from, tokens.begin() + to};
}

std::shared_ptr<const Drafter> make_ngram_drafter(const NgramDraftOptions& o) {
  if (o.max_tokens <= 0) return nullptr;
  return std::make_shared<NgramDrafter>(o);
}

}  // namespace dsinfer
