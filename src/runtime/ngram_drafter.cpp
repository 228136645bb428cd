#include "runtime/ngram_drafter.h"

#include <algorithm>

#include "core/error.h"

namespace dsinfer {

namespace {

// Start of the most recent earlier occurrence of the last n tokens, or -1.
int find_earlier(const std::vector<int>& tokens, int n) {
  const int len = static_cast<int>(tokens.size());
  const int* suffix = tokens.data() + len - n;
  for (int start = len - n - 1; start >= 0; --start)
    if (std::equal(suffix, suffix + n, tokens.data() + start)) return start;
  return -1;
}

}  // namespace

NgramDrafter::NgramDrafter(const NgramDraftOptions& o) : o_(o) {
  if (o.min_n < 1 || o.min_n > o.max_n)
    fail("prompt lookup: the shortest suffix looked up (--prompt-lookup-min ", o.min_n,
         ") must be at least 1 and at most the longest (--prompt-lookup-max ", o.max_n, ")");
}

std::vector<int> NgramDrafter::propose(const std::vector<int>& tokens, int max_tokens) const {
  const int len = static_cast<int>(tokens.size());
  const int want = std::min(max_tokens, o_.max_tokens);
  if (want <= 0) return {};
  for (int n = std::min(o_.max_n, len - 1); n >= o_.min_n; --n) {
    const int start = find_earlier(tokens, n);
    if (start < 0) continue;
    // What followed the match; it may run into the suffix itself (a repeating pattern).
    const int from = start + n, to = std::min(len, from + want);
    return {tokens.begin() + from, tokens.begin() + to};
  }
  return {};
}

std::shared_ptr<const Drafter> make_ngram_drafter(const NgramDraftOptions& o) {
  if (o.max_tokens <= 0) return nullptr;
  return std::make_shared<NgramDrafter>(o);
}

}  // namespace dsinfer
