#include "text/tool_call_parser.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "text/partial_marker.h"

namespace dsinfer {
namespace {

constexpr std::string_view kCallsBegin = ToolCallParser::kCallsBegin;
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// V3 / R1: "function<sep>NAME\n```json\nARGS\n```"; V3.1: "NAME<sep>ARGS". False when malformed.
bool parse_call(std::string_view body, ToolCall& call) {
  const size_t sep = body.find(kSep);
  if (sep == std::string_view::npos) return false;
  std::string_view head = trim(body.substr(0, sep)), rest = body.substr(sep + kSep.size());
  if (head == "function") {
    const size_t eol = rest.find('\n');
    std::string_view name = trim(rest.substr(0, eol)), args = eol == std::string_view::npos ? "" : rest.substr(eol + 1);
    args = trim(args);
    if (args.substr(0, 7) == "```json") args.remove_prefix(7);
    else if (args.substr(0, 3) == "```") args.remove_prefix(3);
    if (args.size() >= 3 && args.substr(args.size() - 3) == "```") args.remove_suffix(3);
    call = {std::string(name), std::string(trim(args))};
  } else {
    call = {std::string(head), std::string(trim(rest))};
  }
  return !call.name.empty() && nlohmann::json::accept(call.arguments);
}

}  // namespace

std::string ToolCallParser::push(std::string_view chunk) {
  if (in_calls_) {
    calls_text_ += chunk;
    return {};
  }
  held_ += chunk;
  if (const size_t at = held_.find(kCallsBegin); at != std::string::npos) {
    std::string content = held_.substr(0, at);
    calls_text_ = held_.substr(at);
    held_.clear();
    in_calls_ = true;
    return content;
  }
  const size_t keep = partial_marker_suffix(held_, kCallsBegin);
  std::string content = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return content;
}

std::string ToolCallParser::flush() {
  std::string out = std::move(held_);
  held_.clear();
  if (in_calls_) {
    std::string_view calls = std::string_view(calls_text_).substr(kCallsBegin.size()), after;
    if (const size_t end = calls.find(kCallsEnd); end != std::string_view::npos) {
      after = calls.substr(end + kCallsEnd.size());
      calls = calls.substr(0, end);
    }
    calls_ = parse_calls(calls);
    if (calls_.empty()) return out + calls_text_;  // not calls after all: the text stays the answer's
    out += after;  // what the model wrote after its calls stays the answer's too
  }
  return out;
}

std::vector<ToolCall> ToolCallParser::parse_calls(std::string_view text) {
  std::vector<ToolCall> calls;
  size_t from = 0;  // past the last call
  for (size_t at = text.find(kCallBegin); at != std::string_view::npos; at = text.find(kCallBegin, from)) {
    const size_t body = at + kCallBegin.size(), end = text.find(kCallEnd, body);
    ToolCall call;
    // Only whitespace between calls: other text there would be lost.
    if (!trim(text.substr(from, at - from)).empty() || end == std::string_view::npos ||
        !parse_call(text.substr(body, end - body), call))
      return {};
    calls.push_back(std::move(call));
    from = end + kCallEnd.size();
  }
  if (!trim(text.substr(from)).empty()) return {};
  return calls;
}

}  // namespace dsinfer
