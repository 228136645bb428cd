// Splits R1-style model output into reasoning and answer: text between <think> and </think>
// is reasoning_content, the rest content. Works on streamed chunks (a tag may be split across
// chunks; a possible partial tag is held back until it is decided) and when the chat template
// already opened <think> in the prompt, so generation starts inside the reasoning part.
#pragma once
#include <string>
#include <string_view>

namespace dsinfer {

class ReasoningParser {
 public:
  static constexpr std::string_view kOpen = "<think>", kClose = "</think>";

  struct Delta {
    std::string reasoning;
    std::string content;

    bool empty() const { return reasoning.empty() && content.empty(); }
  };

  // `starts_in_reasoning`: the prompt ended inside an open <think> block
  // (ChatTemplate::opens_think_block()). Either way a <think> that opens the output (after
  // optional whitespace) is dropped and starts the reasoning part.
  explicit ReasoningParser(bool starts_in_reasoning = false);

  Delta push(std::string_view chunk);
  // End of output: releases held-back text in the current part.
  Delta flush();
  bool in_reasoning() const {
    return state_ == State::Reasoning || (state_ == State::Start && after_start_ == State::Reasoning);
  }

  // The whole-text form: push(text) then flush().
  static Delta parse(std::string_view text, bool starts_in_reasoning);

 private:
  // Start: output so far is whitespace that may precede an opening <think>.
  enum class State { Start, Reasoning, Content };

  void step(Delta& out);

  State state_ = State::Start;
  State after_start_;  // where output without an opening <think> belongs
  std::string buffer_;  // undecided text: a possible partial tag (and, at Start, whitespace)
};

}  // namespace dsinfer
