#include "text/tool_call_grammar.h"

#include "core/error.h"
#include "text/json_schema_grammar.h"
#include "text/tool_call_parser.h"

namespace dsinfer {
namespace {

using json = nlohmann::ordered_json;
using E = GrammarElement;

constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>", kCallEnd = "<｜tool▁call▁end｜>",
                           kSep = "<｜tool▁sep｜>", kCallsEnd = "<｜tool▁calls▁end｜>";

// One call of `tool`, in `format`.
int call_rule(Grammar& g, const json& tool, size_t index, ToolCallFormat format) {
  const std::string where = "tools[" + std::to_string(index) + "]";
  if (!tool.is_object() || !tool.contains("function") || !tool["function"].is_object() ||
      !tool["function"].contains("name") || !tool["function"]["name"].is_string())
    fail(where, ": expected {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": {...}}}");
  const json& f = tool["function"];
  const std::string name = f["name"].get<std::string>();
  int args;
  try {
    args = add_json_schema(g, f.contains("parameters") ? f["parameters"] : json{{"type", "object"}});
  } catch (const Error& e) {
    fail(where, " (", name, ") parameters: ", e.what());
  }
  const bool v3 = format == ToolCallFormat::V3;
  const std::string head =
      std::string(kCallBegin) + (v3 ? "function" + std::string(kSep) + name + "\n```json\n" : name + std::string(kSep));
  const std::string tail = (v3 ? "\n```" : "") + std::string(kCallEnd);
  const int r = g.add_rule();
  g.add_alternative(r, {E::ref(g.literal(head)), E::ref(args), E::ref(g.literal(tail))});
  return r;
}

}  // namespace

// V3 and R1's templates fence the arguments (tool['type'] + sep + name + ```json ...), V3.1's do not.
ToolCallFormat tool_call_format(std::string_view chat_template) {
  return chat_template.find("```json") != std::string_view::npos ? ToolCallFormat::V3 : ToolCallFormat::V31;
}

Grammar tool_call_grammar(const nlohmann::ordered_json& tools, const std::string& name, ToolCallFormat format) {
  if (!tools.is_array() || tools.empty()) fail("tool_choice: forcing a call needs tools");
  Grammar g;
  const int call = g.add_rule();
  for (size_t i = 0; i < tools.size(); ++i) {
    const bool named = tools[i].is_object() && tools[i].contains("function") && tools[i]["function"].is_object() &&
                       tools[i]["function"].contains("name") && tools[i]["function"]["name"] == name;
    if (name.empty() || named) g.add_alternative(call, {E::ref(call_rule(g, tools[i], i, format))});
  }
  if (g.alternatives(call).empty()) fail("tool_choice: no tool is named '", name, "'");
  // Calls after the first, a newline between (whitespace the parser allows); one call when named.
  const int more = g.add_rule();
  g.add_alternative(more, {E::ref(g.literal(std::string(kCallsEnd)))});
  if (name.empty()) {
    g.add_alternative(more, {E::ref(call), E::ref(more)});
    g.add_alternative(more, {E::bytes("\n"), E::ref(call), E::ref(more)});
  }
  const int root = g.add_rule();
  g.add_alternative(root, {E::ref(g.literal(ToolCallParser::kCallsBegin)), E::ref(call), E::ref(more)});
  g.set_root(root);
  g.check();
  return g;
}

}  // namespace dsinfer
