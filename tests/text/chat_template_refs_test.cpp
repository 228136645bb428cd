// The fixtures' real chat templates against transformers' apply_chat_template renderings.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "fixtures.h"
#include "io/json_file.h"
#include "text/chat_template.h"

using namespace dsinfer;
using dsinfer::testing::fixture_tokenizer;
using dsinfer::testing::tokenizer_config_of;
using dsinfer::testing::tokenizer_refs;

namespace {

TEST(ChatTemplateRefs, RenderingsMatchTransformers) {
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"}) {
    ChatTemplate t = ChatTemplate::from_tokenizer_config(tokenizer_config_of(name));
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"])
      EXPECT_EQ(t.render(c["messages"], true), c["rendered"].get<std::string>()) << name;
  }
}

TEST(ChatTemplateRefs, TokenizedRenderingsMatchTransformers) {
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"}) {
    ChatTemplate t = ChatTemplate::from_tokenizer_config(tokenizer_config_of(name));
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"])
      EXPECT_EQ(fixture_tokenizer(name).encode(t.render(c["messages"], true), false), c["ids"].get<std::vector<int>>()) << name;
  }
}

TEST(ChatTemplateRefs, FixtureTemplatesDoNotOpenThinkBlocks) {
  // DeepSeek-V3's and Llama-3's prompts end at the assistant header; Qwen3's closes its think
  // block only when thinking is disabled, which is not the default.
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"})
    EXPECT_FALSE(ChatTemplate::from_tokenizer_config(tokenizer_config_of(name)).opens_think_block()) << name;
}

std::string test_data(const std::string& name) {
  std::ifstream in(std::string(DSINFER_SOURCE_DIR) + "/tests/text/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "fixture:<dir>" names a fixture's tokenizer_config.json template, anything else a file here.
std::string template_source(const std::string& ref) {
  if (ref.rfind("fixture:", 0) == 0)
    return read_json_file(dsinfer::testing::fixture_path(ref.substr(8)) + "/tokenizer_config.json")["chat_template"];
  return test_data(ref);
}

// Five real templates (the fixtures', R1-Distill's, Llama-3.1's) over conversations with
// system prompts, multi-turn reasoning, tool calls and tool results, tools, and
// add_generation_prompt on and off, against Jinja2 with transformers' settings.
TEST(ChatTemplateRefs, RealTemplatesMatchJinja2) {
  // Key order matters (tojson prints tools in insertion order), hence ordered_json.
  auto spec = nlohmann::ordered_json::parse(test_data("chat_template_cases.json"));
  for (const auto& c : spec["cases"]) {
    const auto& ctx = c["context"];
    nlohmann::json cfg = nlohmann::json::object();
    for (const char* key : {"bos_token", "eos_token"})
      if (ctx.contains(key)) cfg[key] = ctx[key].get<std::string>();
    std::string name = c["template"];
    ChatTemplate t = ChatTemplate::from_source(template_source(name), name, &cfg);
    ChatTemplate::Options options;
    options.add_generation_prompt = ctx["add_generation_prompt"];
    options.tools = ctx["tools"];
    if (ctx.contains("enable_thinking")) options.extra["enable_thinking"] = ctx["enable_thinking"];
    const auto& messages = ctx["messages"];
    if (c.contains("error")) {
      EXPECT_THROW(t.render(messages, options), Error) << c["template"];
    } else {
      EXPECT_EQ(t.render(messages, options), c["rendered"].get<std::string>()) << c["template"] << " " << ctx.dump();
    }
  }
}

TEST(ChatTemplateRefs, R1TemplateOpensThinkBlock) {
  nlohmann::json cfg = {{"bos_token", "<｜begin▁of▁sentence｜>"}};
  ChatTemplate r1 = ChatTemplate::from_source(test_data("r1_distill_chat_template.jinja"), "r1", &cfg);
  EXPECT_TRUE(r1.opens_think_block());
  EXPECT_EQ(r1.render(nlohmann::json::parse(R"([{"role": "user", "content": "Hi"}])"), true),
            "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n");
  ChatTemplate llama = ChatTemplate::from_source(test_data("llama31_chat_template.jinja"), "llama31", &cfg);
  EXPECT_FALSE(llama.opens_think_block());
}

TEST(ChatTemplateRefs, MissingOrBrokenTemplatesAreClearErrors) {
  try {
    ChatTemplate::from_tokenizer_config(nlohmann::json{{"bos_token", "x"}});
    ADD_FAILURE() << "no error without a chat_template";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no chat_template"), std::string::npos);
  }
  try {
    ChatTemplate::from_tokenizer_config(nlohmann::json{{"chat_template", "ok\n{% for m in messages %}{{ m }"}});
    ADD_FAILURE() << "no error for a broken template";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplateRefs, NamedTemplatesPickDefaultOrToolUse) {
  nlohmann::json cfg = {{"chat_template", {{{"name", "default"}, {"template", "plain"}}, {{"name", "tool_use"}, {"template", "tools:{{ tools | length }}"}}}}};
  ChatTemplate t = ChatTemplate::from_tokenizer_config(cfg);
  EXPECT_EQ(t.render(nlohmann::json::array(), true), "plain");
  ChatTemplate::Options with_tools;
  with_tools.tools = nlohmann::ordered_json::parse(R"([{"type": "function"}])");
  EXPECT_EQ(t.render(nlohmann::ordered_json::array(), with_tools), "tools:1");
}

}  // namespace
