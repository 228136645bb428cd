// Structured outputs over the API: response_format (json_object, json_schema) and vLLM's
// guided_json / guided_choice hold the answer to its grammar, streamed or not; what cannot be
// enforced is a 400 naming it.
#include <gtest/gtest.h>

#include "server_process.h"
#include "text/json_schema_grammar.h"

using namespace dsinfer::testing;

namespace {

const json kSchema = json::parse(R"({"type": "object", "properties": {"name": {"enum": ["Ann", "Bo"]},
  "age": {"enum": [30, 40]}, "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2}},
  "required": ["name", "age"]})");

class StructuredOutput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess("qwen2-tiny"); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->ready()); }

  static json chat(json extra) {
    json b = {{"messages", {{{"role", "user"}, {"content", "Who is it? Answer in JSON."}}}}, {"max_tokens", 400}};
    b.update(extra);
    return b;
  }

  // The body's answer (or 400 error message, with `status`).
  std::string answer(const std::string& path, const json& body, int status = 200) {
    auto res = server_->post(path, body);
    EXPECT_TRUE(res);
    if (!res) return "";
    EXPECT_EQ(res->status, status) << res->body;
    const json r = json::parse(res->body);
    if (status != 200) return r["error"]["message"].get<std::string>();
    const json& c = r["choices"][0];
    EXPECT_EQ(c["finish_reason"], "stop") << res->body;
    return c.contains("message") ? c["message"]["content"].get<std::string>() : c["text"].get<std::string>();
  }

  static ServerProcess* server_;
};

ServerProcess* StructuredOutput::server_ = nullptr;

void expect_person(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << text;
  EXPECT_TRUE(j["name"] == "Ann" || j["name"] == "Bo") << text;
  EXPECT_TRUE(j["age"] == 30 || j["age"] == 40) << text;
  for (auto it = j.begin(); it != j.end(); ++it)
    EXPECT_TRUE(it.key() == "name" || it.key() == "age" || it.key() == "pets");
}

}  // namespace

TEST_F(StructuredOutput, AJsonSchemaHoldsTheAnswerSampledOrGreedyStreamedOrNot) {
  const json format = {{"type", "json_schema"}, {"json_schema", {{"name", "person"}, {"schema", kSchema}}}};
  for (double temperature : {0.0, 1.0}) {
    const json body = chat({{"response_format", format}, {"temperature", temperature}, {"seed", 3}});
    const std::string text = answer("/v1/chat/completions", body);
    expect_person(text);
    json stream = body;
    stream["stream"] = true;
    auto res = server_->post("/v1/chat/completions", stream);
    ASSERT_TRUE(res);
    EXPECT_EQ(streamed_text(sse_events(res->body)), text);
  }
  expect_person(answer("/v1/completions", {{"prompt", "A person:"}, {"max_tokens", 400}, {"guided_json", kSchema}}));
}

TEST_F(StructuredOutput, JsonModeAndChoices) {
  // A random model's object may not close within 60 tokens: what it wrote is the start of one,
  // and whole when it stopped.
  auto res =
      server_->post("/v1/chat/completions", chat({{"response_format", {{"type", "json_object"}}}, {"max_tokens", 60}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json r = json::parse(res->body);
  const json& c = r["choices"][0];
  const std::string object = c["message"]["content"].get<std::string>();
  const dsinfer::Grammar any_object = dsinfer::json_object_grammar();
  dsinfer::GrammarState state(any_object);
  EXPECT_TRUE(state.accept(object)) << object;
  EXPECT_EQ(c["finish_reason"] == "stop", state.closed()) << object;
  for (int seed : {1, 2, 3}) {
    const std::string choice = answer(
        "/v1/completions",
        {{"prompt", "Yes or no?"}, {"max_tokens", 10}, {"seed", seed}, {"guided_choice", {"yes", "no", "maybe not"}}});
    EXPECT_TRUE(choice == "yes" || choice == "no" || choice == "maybe not") << choice;
  }
}

TEST_F(StructuredOutput, WhatCannotBeEnforcedIsRefusedByName) {
  const json pattern = {{"type", "string"}, {"pattern", "^[a-z]+$"}};
  EXPECT_NE(
      answer(
          "/v1/chat/completions",
          chat({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "p"}, {"schema", pattern}}}}}}),
          400)
          .find("pattern"),
      std::string::npos);
  EXPECT_NE(answer("/v1/chat/completions", chat({{"response_format", {{"type", "yaml"}}}}), 400).find("json_schema"),
            std::string::npos);
  EXPECT_NE(answer("/v1/chat/completions",
                   chat({{"response_format", {{"type", "json_object"}}}, {"guided_choice", {"a"}}}), 400)
                .find("one of"),
            std::string::npos);
  EXPECT_NE(answer("/v1/completions", {{"prompt", "x"}, {"guided_choice", json::array()}}, 400).find("guided_choice"),
            std::string::npos);
  // Plain text is no constraint.
  auto res = server_->post("/v1/chat/completions", chat({{"response_format", {{"type", "text"}}}, {"max_tokens", 4}}));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

namespace {

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
    "properties": {"city": {"enum": ["Paris", "Rome"]}, "days": {"enum": [1, 2, 3]}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}])");

}  // namespace

// tool_choice "required" or a named function on a DeepSeek-V3 template: the answer is calls, in
// the template's form, their arguments held to the tools' schemas, returned as tool_calls.
TEST(ForcedToolCalls, RequiredOrNamedCallsComeBackAsToolCalls) {
  ServerProcess server("ds3-tiny");
  ASSERT_TRUE(server.ready());
  auto ask = [&](const json& choice, int seed) {
    json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Rome?"}}}},
                 {"tools", kTools},
                 {"tool_choice", choice},
                 {"max_tokens", 400},
                 {"seed", seed},
                 {"return_token_ids", true}};
    auto res = server.post("/v1/chat/completions", body);
    EXPECT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    const json c = json::parse(res->body)["choices"][0];
    // The model writes its template's form (V3: function<sep>NAME and a json fence).
    auto text = server.post("/detokenize", {{"tokens", c["token_ids"]}});
    EXPECT_TRUE(text && text->status == 200);
    const std::string raw = json::parse(text->body)["prompt"].get<std::string>();
    EXPECT_NE(raw.find("function<｜tool▁sep｜>"), std::string::npos) << raw;
    EXPECT_NE(raw.find("```json"), std::string::npos) << raw;
    return c;
  };
  for (int seed : {1, 2}) {
    const json c = ask("required", seed);
    ASSERT_EQ(c["finish_reason"], "tool_calls") << c.dump();
    ASSERT_FALSE(c["message"]["tool_calls"].empty()) << c.dump();
    for (const json& call : c["message"]["tool_calls"]) {
      const std::string name = call["function"]["name"];
      const json args = json::parse(call["function"]["arguments"].get<std::string>());
      EXPECT_TRUE(name == "get_weather" || name == "now") << name;
      if (name == "get_weather") EXPECT_TRUE(args["city"] == "Paris" || args["city"] == "Rome") << args.dump();
    }
  }
  const json named = ask({{"type", "function"}, {"function", {{"name", "now"}}}}, 3);
  ASSERT_EQ(named["finish_reason"], "tool_calls") << named.dump();
  ASSERT_EQ(named["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(named["message"]["tool_calls"][0]["function"]["name"], "now");
  auto unknown = server.post("/v1/chat/completions",
                             {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                              {"tools", kTools},
                              {"tool_choice", {{"type", "function"}, {"function", {{"name", "delete_all"}}}}}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400) << unknown->body;
  EXPECT_NE(unknown->body.find("delete_all"), std::string::npos);
}

