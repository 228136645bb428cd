#include "text/reasoning_parser.h"

#include <algorithm>

#include "text/partial_marker.h"

namespace dsinfer {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

ReasoningParser::ReasoningParser(bool starts_in_reasoning)
    : after_start_(starts_in_reasoning ? State::Reasoning : State::Content) {}

ReasoningParser::Delta ReasoningParser::push(std::string_view chunk) {
  buffer_ += chunk;
  Delta out;
  step(out);
  return out;
}

void ReasoningParser::step(Delta& out) {
  while (!buffer_.empty()) {
    if (state_ == State::Start) {
      size_t lead = std::find_if_not(buffer_.begin(), buffer_.end(), is_space) - buffer_.begin();
      std::string_view rest = std::string_view(buffer_).substr(lead);
      if (rest.substr(0, kOpen.size()) == kOpen) {
        // The whitespace before the opening tag belongs to neither part.
        buffer_.erase(0, lead + kOpen.size());
        state_ = State::Reasoning;
        continue;
      }
      if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;  // still undecided
      state_ = after_start_;
      continue;
    }
    if (state_ == State::Content) {
      out.content += buffer_;
      buffer_.clear();
      return;
    }
    size_t close = buffer_.find(kClose);
    if (close != std::string::npos) {
      out.reasoning += buffer_.substr(0, close);
      buffer_.erase(0, close + kClose.size());
      state_ = State::Content;
      continue;
    }
    size_t hold = partial_marker_suffix(buffer_, kClose);
    out.reasoning += buffer_.substr(0, buffer_.size() - hold);
    buffer_.erase(0, buffer_.size() - hold);
    return;
  }
}

ReasoningParser::Delta ReasoningParser::flush() {
  Delta out;
  if (state_ == State::Start) state_ = after_start_;
  (state_ == State::Reasoning ? out.reasoning : out.content) += buffer_;
  buffer_.clear();
  return out;
}

ReasoningParser::Delta ReasoningParser::parse(std::string_view text, bool starts_in_reasoning) {
  ReasoningParser p(starts_in_reasoning);
  Delta a = p.push(text);
  Delta b = p.flush();
  return {a.reasoning + b.reasoning, a.content + b.content};
}

}  // namespace dsinfer
