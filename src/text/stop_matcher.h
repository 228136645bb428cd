// StopMatcher: finds OpenAI `stop` strings in streamed text. The engine knows only token ids,
// so the server matches stops on the detokenized text; text that might be the start of a stop
// string is held back until the next piece decides it, so a stream never shows a stop string
// (or the part of one) that the final response would not contain.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds generated text; returns the text now safe to emit. Once a stop string is seen the
  // result ends just before it, stopped() turns true, and later pushes return nothing.
  std::string push(std::string_view text);
  // The held-back text, at the end of generation (no stop string followed it).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  // Length of the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t partial_match_length() const;

  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace dsinfer
