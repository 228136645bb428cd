// Splits DeepSeek's tool calls out of a chat answer, as vLLM's deepseek_v3 parser does. Their
// chat templates write a call turn as
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// (V3, R1), or with <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜> (V3.1); the model
// answers in the same form. Works on streamed chunks: text before the first marker is content
// (a possible partial marker held back until decided), the rest is parsed once the answer ends.
// Calls that do not parse are given back as content, markers and all, and text after
// <｜tool▁calls▁end｜> stays content: nothing is lost.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer {

struct ToolCall {
  std::string name;
  std::string arguments;  // the JSON text the model wrote, trimmed (a call whose text is not JSON does not parse)

  bool operator==(const ToolCall&) const = default;
};

class ToolCallParser {
 public:
  // What opens an answer's calls (a chat template that writes it knows DeepSeek's tool calls).
  static constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";

  // The content a chunk adds.
  std::string push(std::string_view chunk);
  // End of the answer: the content held back and any text after the calls, or the calls' text
  // when they do not parse.
  std::string flush();
  // The calls, after flush(); empty when the answer had none.
  const std::vector<ToolCall>& calls() const { return calls_; }

  // The calls in `text` (between <｜tool▁calls▁begin｜> and its end marker); empty when any is
  // malformed or anything but whitespace lies between them.
  static std::vector<ToolCall> parse_calls(std::string_view text);

 private:
  std::string held_;     // content that may be the start of the marker
  std::string calls_text_;  // everything from the marker on
  bool in_calls_ = false;
  std::vector<ToolCall> calls_;
};

}  // namespace dsinfer
