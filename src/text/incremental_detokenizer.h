// Streaming detokenization: turns generated ids into text as they arrive, never emitting half
// of a UTF-8 character (a character may span several byte-level tokens, e.g. emoji or CJK).
// The pushed pieces plus flush() concatenate to Tokenizer::decode of the same ids.
#pragma once
#include <string>

#include "text/tokenizer.h"

namespace dsinfer {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);

  // The text completed by `id` (may be empty while a character is still incomplete).
  std::string push(int id);
  // The rest: bytes of a character that never completed become U+FFFD.
  std::string flush();

 private:
  Tokenizer tokenizer_;  // shares the loaded tables; cheap to copy
  bool skip_special_;
  std::string pending_;  // bytes not yet emitted: at most an incomplete character
};

}  // namespace dsinfer
