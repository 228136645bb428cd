// The grammar of a chat answer that is DeepSeek tool calls and nothing else, for tool_choice
// "required" or a named function: <｜tool▁calls▁begin｜>, one or more calls (one, of the named
// function), <｜tool▁calls▁end｜>. A call is written the way the model's chat template writes
// them (tool_call_parser.h): V3 / R1's
//   <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
// or V3.1's <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>, ARGS held to the tool's
// parameters schema (json_schema_grammar.h).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "text/grammar.h"

namespace dsinfer {

enum class ToolCallFormat { V3, V31 };

// V3 / R1's form when the chat template fences arguments in ```json, V3.1's otherwise.
ToolCallFormat tool_call_format(std::string_view chat_template);

// `tools`: OpenAI tool objects ({"type": "function", "function": {"name", "parameters"}});
// `name`: the only function that may be called, or empty for any of them. Throws naming what is
// wrong (no such function, a schema the grammar cannot enforce).
Grammar tool_call_grammar(const nlohmann::ordered_json& tools, const std::string& name, ToolCallFormat format);

}  // namespace dsinfer
