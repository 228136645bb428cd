#include "text/incremental_detokenizer.h"

#include "text/utf8.h"

namespace dsinfer {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::push(int id) {
  if (skip_special_ && tokenizer_.is_special(id)) return "";
  pending_ += tokenizer_.token_text(id);
  // Bytes that can no longer become valid (e.g. a partial character followed by an added
  // token's text) turn into U+FFFD now, as decode() does; only a valid-so-far tail waits.
  size_t ready = utf8_complete_prefix(pending_);
  std::string out = utf8_lossy(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace dsinfer
