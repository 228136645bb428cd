// Forced tool calls' grammar: DeepSeek's call blocks in both forms, the tools' argument schemas
// held, what the tool-call parser reads back.
#include "text/tool_call_grammar.h"

#include <gtest/gtest.h>

#include "../fixture_util.h"
#include "core/error.h"
#include "io/json_file.h"
#include "text/tool_call_parser.h"

using namespace dsinfer;
using json = nlohmann::ordered_json;

namespace {

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
    "properties": {"city": {"enum": ["Paris", "Rome"]}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}])");

std::string v3_call(const std::string& name, const std::string& args) {
  return "<｜tool▁call▁begin｜>function<｜tool▁sep｜>" + name + "\n```json\n" + args + "\n```<｜tool▁call▁end｜>";
}

// The calls the parser reads between the block's markers.
std::vector<ToolCall> parsed(const std::string& block) {
  const std::string begin = "<｜tool▁calls▁begin｜>", end = "<｜tool▁calls▁end｜>";
  EXPECT_EQ(block.rfind(begin, 0), 0u);
  EXPECT_EQ(block.substr(block.size() - end.size()), end);
  return ToolCallParser::parse_calls(block.substr(begin.size(), block.size() - begin.size() - end.size()));
}

bool accepts(const Grammar& g, const std::string& text) {
  GrammarState s(g);
  return s.accept(text) && s.complete();
}

}  // namespace

TEST(ToolCallGrammar, V3CallsOfTheToolsWithTheirArguments) {
  const Grammar any = tool_call_grammar(kTools, "", ToolCallFormat::V3);
  const std::string one =
      "<｜tool▁calls▁begin｜>" + v3_call("get_weather", R"({"city": "Rome"})") + "<｜tool▁calls▁end｜>";
  EXPECT_TRUE(accepts(any, one));
  const std::vector<ToolCall> calls = parsed(one);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments, R"({"city": "Rome"})");
  const std::string two = "<｜tool▁calls▁begin｜>" + v3_call("now", "{}") + "\n" +
                          v3_call("get_weather", R"({"city":"Paris"})") + "<｜tool▁calls▁end｜>";
  EXPECT_TRUE(accepts(any, two));
  EXPECT_EQ(parsed(two).size(), 2u);
  const std::vector<std::string> bad_texts = {
      "<｜tool▁calls▁begin｜>" + v3_call("get_weather", R"({"city": "Oslo"})") + "<｜tool▁calls▁end｜>",
      "<｜tool▁calls▁begin｜>" + v3_call("delete_all", "{}") + "<｜tool▁calls▁end｜>",
      "<｜tool▁calls▁begin｜><｜tool▁calls▁end｜>", "Sure! " + one};
  for (const std::string& bad : bad_texts) EXPECT_FALSE(accepts(any, bad)) << bad;
  // Named: that function, once.
  const Grammar named = tool_call_grammar(kTools, "now", ToolCallFormat::V3);
  EXPECT_TRUE(accepts(named, "<｜tool▁calls▁begin｜>" + v3_call("now", "{}") + "<｜tool▁calls▁end｜>"));
  EXPECT_FALSE(accepts(named, one));
  EXPECT_FALSE(accepts(named, two));
}

TEST(ToolCallGrammar, V31FormAndTheTemplatesThatWriteEach) {
  const Grammar g = tool_call_grammar(kTools, "get_weather", ToolCallFormat::V31);
  const std::string text =
      R"(<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city":"Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>)";
  EXPECT_TRUE(accepts(g, text));
  ASSERT_EQ(parsed(text).size(), 1u);
  // V3's template (the fixture's) fences the arguments; V3.1's writes NAME<sep>ARGS.
  const auto config = read_json_file(dsinfer::testing::fixture_dir("ds3-tiny") + "/tokenizer_config.json");
  EXPECT_EQ(tool_call_format(config["chat_template"].get<std::string>()), ToolCallFormat::V3);
  EXPECT_EQ(tool_call_format("{{'<｜tool▁call▁begin｜>' + tool['function']['name'] + '<｜tool▁sep｜>' + "
                             "tool['function']['arguments'] + '<｜tool▁call▁end｜>'}}"),
            ToolCallFormat::V31);
}

TEST(ToolCallGrammar, RefusesWhatItCannotForce) {
  EXPECT_THROW(tool_call_grammar(kTools, "delete_all", ToolCallFormat::V3), Error);
  EXPECT_THROW(tool_call_grammar(json::array(), "", ToolCallFormat::V3), Error);
  const json patterned = json::parse(R"([{"type": "function", "function": {"name": "f", "parameters":
      {"type": "object", "properties": {"x": {"type": "string", "pattern": "a+"}}}}}])");
  try {
    tool_call_grammar(patterned, "", ToolCallFormat::V3);
    ADD_FAILURE() << "a pattern was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tools[0] (f)"), std::string::npos) << e.what();
  }
}
