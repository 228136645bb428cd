// Parsing the OpenAI request schema: accepted shapes and the field named in each refusal.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/openai_request.h"

using namespace dsinfer;
using nlohmann::json;

namespace {

std::string refused_field(Endpoint e, const json& body) {
  try {
    parse_api_request(e, body.dump());
  } catch (const ApiError& err) {
    EXPECT_EQ(err.status, 400);
    return err.param;
  }
  return "<accepted>";
}

TEST(OpenAiRequest, ChatFieldsAreRead) {
  json body = {{"model", "m"},
               {"messages", {{{"role", "developer"}, {"content", "be brief"}},
                             {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}}}},
               {"max_tokens", 5},
               {"max_completion_tokens", 7},
               {"temperature", 0.5},
               {"top_p", 0.9},
               {"top_k", -1},
               {"seed", -1},
               {"stop", "x"},
               {"logprobs", true},
               {"top_logprobs", 2},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"user", "ignored"}};
  ApiRequest r = parse_api_request(Endpoint::Chat, body.dump());
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "a\nb");  // text parts joined by newlines, as vLLM joins them
  EXPECT_EQ(r.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(*r.temperature, 0.5f);
  EXPECT_EQ(r.top_k, 0);
  EXPECT_EQ(r.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.top_logprobs, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiRequest, NullMeansDefault) {
  ApiRequest r = parse_api_request(Endpoint::Completion, R"({"prompt": "p", "temperature": null, "stop": null})");
  EXPECT_FALSE(r.temperature);
  EXPECT_TRUE(r.stop.empty());
}

TEST(OpenAiRequest, PromptShapes) {
  EXPECT_EQ(*parse_api_request(Endpoint::Completion, R"({"prompt": ["one"]})").prompt_text, "one");
  EXPECT_EQ(parse_api_request(Endpoint::Completion, R"({"prompt": [1, 2]})").prompt_ids, (std::vector<int>{1, 2}));
  EXPECT_EQ(parse_api_request(Endpoint::Completion, R"({"prompt": [[3]]})").prompt_ids, (std::vector<int>{3}));
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", {{1}, {2}}}}), "prompt");
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", ""}}), "prompt");
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", {1, "a"}}}), "prompt[1]");
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", "p"}, {"echo", true}}), "<accepted>");
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", "p"}, {"echo", true}, {"stream", true}}), "<accepted>");
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", "p"}, {"echo", true}, {"max_tokens", 0}}), "<accepted>");
  EXPECT_EQ(refused_field(Endpoint::Completion, {{"prompt", "p"}, {"max_tokens", 0}}), "max_tokens");
}

TEST(OpenAiRequest, OutOfRangeValuesNameTheirField) {
  json base = {{"messages", {{{"role", "user"}, {"content", "x"}}}}};
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"temperature", 2.5}, {"top_p", 0.0}, {"min_p", -0.1}, {"presence_penalty", 2.1}, {"max_tokens", 0},
           {"n", 0}, {"n", 200}, {"best_of", 2}, {"repetition_penalty", 0}, {"seed", 1.5}, {"top_k", "5"}}) {
    json b = base;
    b[field] = value;
    EXPECT_EQ(refused_field(Endpoint::Chat, b), field) << b.dump();
  }
  EXPECT_EQ(refused_field(Endpoint::Chat, {{"messages", {{{"role", "assistant"}}}}}), "<accepted>");
  EXPECT_EQ(refused_field(Endpoint::Chat, {{"max_tokens", 1}}), "messages");
}

TEST(OpenAiRequest, MalformedJsonHasNoField) {
  try {
    parse_api_request(Endpoint::Chat, "{");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "");
    EXPECT_EQ(e.code, "invalid_json");
  }
}

TEST(OpenAiRequest, CacheKeyIgnoresStreamingOnly) {
  ApiRequest a = parse_api_request(Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"temperature":0})");
  ApiRequest b = parse_api_request(Endpoint::Chat,
                                   R"({"messages":[{"role":"user","content":"x"}],"temperature":0,"stream":true,"stream_options":{"include_usage":true}})");
  ApiRequest c = parse_api_request(Endpoint::Chat, R"({"messages":[{"role":"user","content":"y"}],"temperature":0})");
  EXPECT_EQ(output_defining_fields(a), output_defining_fields(b));
  EXPECT_NE(output_defining_fields(a), output_defining_fields(c));
}

}  // namespace

TEST(OpenAiRequest, ToolCallTurnsToolsAndTemplateKwargsReachTheTemplate) {
  const std::string body = R"({"messages":[{"role":"user","content":"hi"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"1","content":"42"}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
    "chat_template_kwargs":{"enable_thinking":false}})";
  ApiRequest r = parse_api_request(Endpoint::Chat, body);
  EXPECT_EQ(r.messages[1]["content"], "");  // a turn of tool calls only
  EXPECT_EQ(r.messages[1]["tool_calls"].size(), 1u);
  ASSERT_TRUE(r.tools.is_array());
  EXPECT_EQ(r.tools[0].begin().key(), "type");  // the client's key order, which tojson prints
  EXPECT_EQ(r.chat_template_kwargs["enable_thinking"], false);
  EXPECT_NE(output_defining_fields(r)["tools"], nlohmann::json(nullptr));
  EXPECT_THROW(parse_api_request(Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"tools":{}})"), ApiError);
  EXPECT_THROW(parse_api_request(Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":[]})"),
               ApiError);
}

TEST(OpenAiRequest, LogitBiasIsReadAndStructuredOutputsCompiled) {
  ApiRequest r = parse_api_request(Endpoint::Completion, R"({"prompt":"x","logit_bias":{"42":100,"7":-5.5},
                                                             "response_format":{"type":"text"},"min_p":0})");
  EXPECT_EQ(r.logit_bias, (std::vector<std::pair<int, float>>{{42, 100.0f}, {7, -5.5f}}));
  EXPECT_EQ(r.min_p, 0.0f);  // set: it overrides a model default
  EXPECT_FALSE(r.repetition_penalty.has_value());
  EXPECT_EQ(r.grammar, nullptr);  // text is no constraint
  EXPECT_THROW(parse_api_request(Endpoint::Completion, R"({"prompt":"x","logit_bias":{"a":1}})"), ApiError);
  EXPECT_THROW(parse_api_request(Endpoint::Completion, R"({"prompt":"x","logit_bias":{"1":101}})"), ApiError);
  for (const char* key : {" 1", "+1", "01", "-1", "1e3", ""})  // each would have read as a valid id
    EXPECT_THROW(parse_api_request(Endpoint::Completion, std::string(R"({"prompt":"x","logit_bias":{")") + key + R"(":1}})"),
                 ApiError) << key;
  const char* chat = R"({"messages":[{"role":"user","content":"x"}],"response_format":)";
  EXPECT_NE(parse_api_request(Endpoint::Chat, std::string(chat) + R"({"type":"json_object"}})").grammar, nullptr);
  // A schema's property order is the client's, and part of what the response cache keys on.
  const ApiRequest ab = parse_api_request(Endpoint::Chat, std::string(chat) +
      R"({"type":"json_schema","json_schema":{"name":"s","schema":{"properties":{"b":{},"a":{}}}}}})");
  const ApiRequest ba = parse_api_request(Endpoint::Chat, std::string(chat) +
      R"({"type":"json_schema","json_schema":{"name":"s","schema":{"properties":{"a":{},"b":{}}}}}})");
  EXPECT_NE(ab.grammar, nullptr);
  EXPECT_NE(output_defining_fields(ab), output_defining_fields(ba));
  EXPECT_THROW(parse_api_request(Endpoint::Chat, std::string(chat) +
                                                     R"({"type":"json_schema","json_schema":{"schema":{"minimum":1}}}})"),
               ApiError);
  // Values of the wrong JSON type inside them are 400s too, not 500s.
  for (const char* bad : {R"({"type":"json_schema","json_schema":{"schema":{"$ref":"#foo"}}}})",
                          R"({"type":"json_schema","json_schema":{"schema":{"type":5}}}})",
                          R"({"type":"json_schema","json_schema":{"schema":{"$ref":"#"}}}})"})
    EXPECT_THROW(parse_api_request(Endpoint::Chat, std::string(chat) + bad), ApiError) << bad;
  EXPECT_THROW(parse_api_request(Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],
      "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":1}})"),
               ApiError);
}
